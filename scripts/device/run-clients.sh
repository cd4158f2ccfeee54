#!/usr/bin/env bash
# ON THE DEVICE, after serve-vllm.sh: the same workload through vLLM's own client and ours,
# against the same server, one after the other. Results under $1.
# Env: NP=80 ILEN=1000 OLEN=1000 CONC=80 (the fixture chat_1000_1000.json workload).
set -uo pipefail
RES=$1; BIN=${BIN:-./vllm-sota}; M=${M:-/tmp/stash/dummy-llama-3.1-8b}; PORT=${PORT:-8000}
NP=${NP:-80} ILEN=${ILEN:-1000} OLEN=${OLEN:-1000} CONC=${CONC:-80}
mkdir -p "$RES"
PROMPTS=$NP IN=$ILEN OUT=$OLEN CONC=$CONC bash "$(dirname "$0")/vllm-bench.sh" "$M" "$PORT" "$RES" 2>&1 | tail -40
"$BIN" bench load --base-url "http://127.0.0.1:$PORT" --model dummy-llama-8b --tokenizer "$M/tokenizer.json" \
  --num-prompts "$NP" --input-len "$ILEN" --output-len "$OLEN" --max-concurrency "$CONC" \
  --output "$RES/vllm-sota-client.json" 2>&1 | tail -40
