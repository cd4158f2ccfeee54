#!/usr/bin/env bash
# Run HERE (not on the device), from the repo root. Prepares what the device
# calls carry; everything goes under .device/, which git ignores
# (.gitignore has /.device; .git/info/exclude has /.device/).
#   .device/wheels-src/   the pinned wheels (does NOT travel)
#   .device/parts/        vllm.tar.part-aa, -ab, ... (50 MiB each) + SHA256SUMS
#   .device/model/        the dummy Llama-3.1-8B config + tokenizer
# Usage: bash scripts/device/make-parts.sh [REQ_FILE]
# Env: SKIP_DOWNLOAD=1  reuse the wheels already in .device/wheels-src.
#      SLIM=1  drop vllm's FlashAttention-2 library (_vllm_fa2_C, 129 MB of
#      the 304 MB wheel) to save two transfer calls. On an H200 vLLM 0.26 uses
#      FlashAttention 3 (fixture log: "Using FlashAttention version 3") and
#      imports FA2 inside try/except, but the fixtures were made with the full wheel.
set -euo pipefail
REQ=${1:?usage: make-parts.sh REQ_FILE (e.g. ../shared/tools/vllm-0.26.0-h200-min-requirements.txt); env MODEL_SRC=model dir}
MODEL_SRC=${MODEL_SRC:?set MODEL_SRC to the model directory to carry (config.json, tokenizer.json)}
D=.device; mkdir -p $D/wheels-src $D/parts $D/model
grep -qxF '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
# The device runs CPython 3.12 on x86-64; pip matches manylinux_2_N exactly,
# so list the usual N (llguidance 1.7.6 needs 2_31).
PLAT=""; for t in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux1 \
                 manylinux_2_5 manylinux_2_24 manylinux_2_26 manylinux_2_31 manylinux_2_34 manylinux_2_35; do
  PLAT="$PLAT --platform ${t}_x86_64"; done
fail=0
[ "${SKIP_DOWNLOAD:-0}" = 1 ] ||   # SKIP_DOWNLOAD=1: reuse .device/wheels-src as it is
for pin in $(grep -vE '^\s*(#|$)' "$REQ"); do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp $PLAT -d $D/wheels-src "$pin" || { echo "FAILED: $pin" >&2; fail=1; }
done
[ $fail = 0 ] || exit 1
if [ "${SLIM:-0}" = 1 ]; then   # remove the FA2 library and its RECORD line
  w=$(readlink -f $D/wheels-src/vllm-*.whl); so=vllm/vllm_flash_attn/_vllm_fa2_C.abi3.so
  if unzip -l "$w" "$so" >/dev/null 2>&1; then
    rec=$(unzip -Z1 "$w" | grep 'dist-info/RECORD$'); tmp=$(mktemp -d)
    (cd "$tmp" && unzip -q "$w" "$rec" && sed -i "\#^$so,#d" "$rec")
    zip -q -d "$w" "$so"; (cd "$tmp" && zip -q "$w" "$rec"); rm -rf "$tmp"
  fi
fi
rm -f $D/parts/vllm.tar.part-* $D/parts/SHA256SUMS
(cd $D/wheels-src && tar -cf - *.whl) | split -b 50M - $D/parts/vllm.tar.part-
(cd $D/parts && sha256sum vllm.tar.part-* > SHA256SUMS)
rm -rf $D/model/$(basename "$MODEL_SRC"); cp -r "$MODEL_SRC" $D/model/; chmod -R u+w $D/model
echo "wheels: $(ls $D/wheels-src/*.whl | wc -l) of $(grep -cvE '^\s*(#|$)' "$REQ") pins"
ls -l $D/parts; du -sh $D/model/*
