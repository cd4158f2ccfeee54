#!/usr/bin/env bash
# Run ON THE DEVICE after all parts are in /tmp/stash (see stash-part.sh).
# Joins the parts, checks them against SHA256SUMS if it was stashed too,
# untars the wheels and installs them into /tmp/site (no index, no deps:
# everything else comes from the machine's image: torch 2.11, transformers, ...).
# Usage: bash scripts/device/install-vllm.sh [EXPECTED_PART_COUNT]
set -euo pipefail
S=/tmp/stash; W=/tmp/wheels; SITE=/tmp/site
cd "$S"
n=$(ls vllm.tar.part-* | wc -l)
echo "install: $n part(s) in $S"
if [ -n "${1:-}" ] && [ "$n" != "$1" ]; then echo "install: expected $1 parts, found $n" >&2; exit 1; fi
if [ -f SHA256SUMS ]; then sha256sum -c --quiet SHA256SUMS; echo "install: checksums OK"; fi
t0=$(date +%s)
rm -rf "$W" "$SITE"; mkdir -p "$W" "$SITE"   # a retry starts clean
cat vllm.tar.part-* | tar -x -C "$W"      # parts sort in split's order (aa, ab, ...)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
  --target "$SITE" "$W"/*.whl
rm -rf "$W" vllm.tar.part-*              # parts are kept until pip succeeded (retry)
echo "install: $(ls "$SITE" | wc -l) entries in $SITE, took $(( $(date +%s) - t0 )) s"
# `--version` builds the whole CLI (serve, bench, ...): a missing dependency fails here.
PYTHONPATH=$SITE python3 -m vllm.entrypoints.cli.main --version
