#!/usr/bin/env bash
# ON THE DEVICE, with no vLLM server running: campaign_init, then fair_benchmark (vLLM part,
# flowcheck-vllm.yaml) through the MCP tool via mcp_call.py, polling job_status. Artifacts under $1.
set -uo pipefail
OUTDIR=$1; BIN=$(realpath "${BIN:-./vllm-sota}"); HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=/tmp/campaigns; mkdir -p "$ROOT" "$OUTDIR"
python3 "$HERE/mcp_call.py" "$BIN" campaign_init \
  "{\"model\": \"/tmp/stash/dummy-llama-3.1-8b\", \"artifact_root\": \"$ROOT\", \"frameworks\": [\"vllm\", \"sglang\"]}" | tee "$OUTDIR/init.jsonl"
CAMP=$(ls -d $ROOT/runs/*_sota_humanize | head -1)
timeout "${MAX_S:-480}" python3 "$HERE/mcp_call.py" "$BIN" fair_benchmark \
  "{\"campaign_dir\": \"$CAMP\", \"config_path\": \"$HERE/flowcheck-vllm.yaml\", \"wait_s\": 5}" \
  --poll "{\"campaign_dir\": \"$CAMP\", \"job\": \"fair_benchmark\"}" --poll-every 30 --max-wait "${MAX_S:-480}" | tee "$OUTDIR/fairbench.jsonl"
tar -C "$ROOT/runs" -cJf "$OUTDIR/campaign.tar.xz" .
