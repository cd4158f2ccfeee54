#!/usr/bin/env bash
# Run ON THE DEVICE against a server started by serve-vllm.sh: vLLM's own
# client, `vllm bench serve`, on the random dataset. The defaults repeat the
# fixture shared/fixtures/h200-vllm-0.26/bench/chat_1000_1000.json
# (80 prompts, 1000 -> 1000 tokens, concurrency 80, no warm-up; about 17 s of
# benchmark on an H200), so the result can be compared with it and with our
# own client run on the same workload.
# Usage: bash scripts/device/vllm-bench.sh MODEL_DIR PORT RESULT_DIR [extra flags]
# Env: PROMPTS=80 IN=1000 OUT=1000 CONC=80 WARMUPS=0 SEED=0 NAME=vllm_bench_<IN>_<OUT>_c<CONC>.json
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 MODEL_DIR PORT RESULT_DIR [extra flags]" >&2; exit 2; }
MODEL=$1; PORT=$2; RES=$3; shift 3
PROMPTS=${PROMPTS:-80}; IN=${IN:-1000}; OUT=${OUT:-1000}; CONC=${CONC:-80}
WARMUPS=${WARMUPS:-0}; SEED=${SEED:-0}
NAME=${NAME:-vllm_bench_${IN}_${OUT}_c${CONC}.json}
mkdir -p "$RES"
t0=$(date +%s)
# --ignore-eos: dummy weights emit EOS at random; every request must produce OUT tokens.
# --tokenizer MODEL_DIR: the served name is not a path; prompts are built with the dummy tokenizer.
PYTHONPATH=${SITE:-/tmp/site} HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 \
  python3 -m vllm.entrypoints.cli.main bench serve \
    --backend vllm --host 127.0.0.1 --port "$PORT" \
    --model dummy-llama-8b --tokenizer "$MODEL" \
    --dataset-name random --random-input-len "$IN" --random-output-len "$OUT" \
    --num-prompts "$PROMPTS" --max-concurrency "$CONC" --num-warmups "$WARMUPS" \
    --seed "$SEED" --ignore-eos --disable-tqdm \
    --save-result --save-detailed --result-dir "$RES" --result-filename "$NAME" \
    --percentile-metrics ttft,tpot,itl,e2el --metric-percentiles 50,90,95,99 "$@"
echo "vllm-bench: $RES/$NAME ($(( $(date +%s) - t0 )) s)"
