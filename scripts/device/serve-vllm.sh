#!/usr/bin/env bash
# Run ON THE DEVICE after install-vllm.sh. Starts vLLM in its own session
# (setsid, so it outlives the call that starts it while the machine stays warm),
# logs to /tmp/vllm-server-<port>.log, and waits until /v1/models answers and
# a 1-token completion succeeds. Prints the start-up time.
# Flags follow the H200 fixtures (shared/fixtures/README.md): dummy weights,
# FLASH_ATTN attention, no FlashInfer sampler (FlashInfer is not installed).
# Usage: bash scripts/device/serve-vllm.sh MODEL_DIR PORT [extra vllm serve flags]
# Env: TIMEOUT_S (default 420), LOG (default /tmp/vllm-server-PORT.log)
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 MODEL_DIR PORT [extra flags]" >&2; exit 2; }
MODEL=$1; PORT=$2; shift 2
TIMEOUT_S=${TIMEOUT_S:-420}
LOG=${LOG:-/tmp/vllm-server-$PORT.log}
t0=$(date +%s)
PYTHONPATH=${SITE:-/tmp/site} VLLM_USE_FLASHINFER_SAMPLER=0 HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 \
  setsid python3 -m vllm.entrypoints.cli.main serve "$MODEL" \
    --served-model-name dummy-llama-8b --load-format dummy --dtype bfloat16 \
    --attention-backend FLASH_ATTN --max-model-len 10240 \
    --gpu-memory-utilization 0.85 --host 127.0.0.1 --port "$PORT" "$@" \
    >"$LOG" 2>&1 </dev/null &
PID=$!
echo "$PID" > "/tmp/vllm-server-$PORT.pid"
echo "serve: pid $PID, log $LOG"
# Readiness probe in Python (curl may be absent from the image).
probe() {
  python3 - "$PORT" <<'PY'
import json, sys, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
urllib.request.urlopen(base + "/v1/models", timeout=5).read()
req = urllib.request.Request(base + "/v1/completions",
    data=json.dumps({"model": "dummy-llama-8b", "prompt": "hello", "max_tokens": 1}).encode(),
    headers={"Content-Type": "application/json"})
out = json.load(urllib.request.urlopen(req, timeout=60))
assert out["choices"], out
PY
}
while ! probe 2>/dev/null; do
  if ! kill -0 "$PID" 2>/dev/null; then echo "serve: server died; log tail:" >&2; tail -n 60 "$LOG" >&2; exit 1; fi
  if [ $(( $(date +%s) - t0 )) -ge "$TIMEOUT_S" ]; then echo "serve: not ready after $TIMEOUT_S s; log tail:" >&2; tail -n 60 "$LOG" >&2; exit 1; fi
  sleep 2
done
echo "serve: ready on port $PORT after $(( $(date +%s) - t0 )) s"
grep -E 'Model loading took|torch.compile took|GPU KV cache size|Graph capturing finished|init engine' "$LOG" || true
