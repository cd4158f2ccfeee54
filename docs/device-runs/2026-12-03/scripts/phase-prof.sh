#!/usr/bin/env bash
# ON THE DEVICE: profile one framework's baseline server at the chat scenario's shapes (1000 -> 1000, concurrency 80):
# start it with the profiler on (CUDA graphs as served, then the eager twin), profile_capture through MCP (prefill and
# decode), tear down; then profile_tables (eager twin as mapping) and layer_pipeline on the decode trace.
# Usage: phase-prof.sh vllm|sglang [graph|eager ...]. Idempotent: a stage with capture output is skipped.
set -uo pipefail
FW=$1; shift; MODES=${*:-graph eager}
D=$(cd "$(dirname "$0")" && pwd); BIN=$D/vllm-sota; R=/tmp/res; mkdir -p $R
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
CAMP=$(ls -d /tmp/campaigns/runs/*_sota_humanize 2>/dev/null | head -1); P=${CAMP:-/tmp/res}/profiles/round-1/$FW; mkdir -p $P
M=/tmp/model/dummy-llama-3.1-8b
waitup() { # port pid
  for i in $(seq 1 300); do
    python3 -c "import urllib.request;urllib.request.urlopen('http://127.0.0.1:$1/v1/models',timeout=3)" 2>/dev/null && return 0
    kill -0 $2 2>/dev/null || return 1; sleep 2; done; return 1; }
for MODE in $MODES; do
  SUF=""; [ $MODE = eager ] && SUF="-eager"
  [ -d $P/decode$SUF ] && { echo "$FW $MODE: done already"; continue; }
  TD=/tmp/prof/$FW-$MODE; rm -rf $TD; mkdir -p $TD; t0=$(date +%s)
  if [ $FW = vllm ]; then
    PORT=8000; CFG="{\"profiler\":\"torch\",\"torch_profiler_dir\":\"$TD\",\"torch_profiler_record_shapes\":true,\"delay_iterations\":0,\"max_iterations\":8}"
    CMD=(python3 -m vllm.entrypoints.cli.main serve $M --served-model-name dummy-llama-8b --load-format dummy --dtype bfloat16 --attention-backend FLASH_ATTN --max-model-len 10240 --gpu-memory-utilization 0.85 --host 127.0.0.1 --port $PORT --profiler-config "$CFG")
    [ $MODE = eager ] && CMD+=(--enforce-eager)
    PYTHONPATH=/tmp/site VLLM_USE_FLASHINFER_SAMPLER=0 setsid "${CMD[@]}" > $R/server-$FW-$MODE.log 2>&1 < /dev/null &
  else
    PORT=30000
    CMD=(python3 -m sglang.launch_server --model-path $M --served-model-name dummy-llama-8b --load-format dummy --dtype bfloat16 --sampling-backend pytorch --host 127.0.0.1 --port $PORT --mem-fraction-static 0.85 --context-length 10240)
    [ $MODE = eager ] && CMD+=(--disable-cuda-graph)
    PYTHONPATH=/tmp/sgl-site SGLANG_TORCH_PROFILER_DIR=$TD setsid "${CMD[@]}" > $R/server-$FW-$MODE.log 2>&1 < /dev/null &
  fi
  PID=$!
  waitup $PORT $PID || { echo "$FW $MODE: server did not come up"; tail -30 $R/server-$FW-$MODE.log; kill -- -$PID; continue; }
  echo "$FW $MODE: up after $(( $(date +%s) - t0 )) s"
  SC=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "${CMD[@]}")
  OUTD=/tmp/cap/$FW-$MODE; rm -rf $OUTD
  python3 $D/mcp_call.py $BIN profile_capture "{\"base_url\": \"http://127.0.0.1:$PORT\", \"framework\": \"$FW\", \"trace_dir\": \"$TD\", \"out_dir\": \"$OUTD\", \"concurrency\": 80, \"input_len\": 1000, \"output_len\": 1000, \"tokenizer\": \"$M\", \"server_command\": $SC, \"timeout_s\": 240, \"stages\": ${STAGES:-[\"prefill\", \"decode\"]}}" | tee -a $R/mcp-calls.jsonl | cut -c1-1500
  for s in prefill decode; do [ -d $OUTD/$s ] && mv $OUTD/$s $P/$s$SUF; done
  kill -- -$PID; sleep 3; kill -9 -- -$PID 2>/dev/null; sleep 5
  echo "$FW $MODE: took $(( $(date +%s) - t0 )) s"; ls -la $P
done
