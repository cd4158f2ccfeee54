#!/usr/bin/env bash
# ON THE DEVICE: campaign_init, history_notes (no knowledge root here: a recorded blocker), then fair_benchmark as a
# detached job through MCP (mcp_call.py), polled until done or MAX_S. Idempotent: an existing campaign is reused and the
# job resumes. Everything is logged under /tmp/res (MCP call log) and the campaign under /tmp/campaigns.
set -uo pipefail
D=$(cd "$(dirname "$0")" && pwd); BIN=$D/vllm-sota; R=/tmp/res; ROOT=/tmp/campaigns; mkdir -p $R $ROOT
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
CAMP=$(ls -d $ROOT/runs/*_sota_humanize 2>/dev/null | head -1)
if [ -z "$CAMP" ]; then
  python3 $D/mcp_call.py $BIN campaign_init "{\"model\": \"/tmp/model/dummy-llama-3.1-8b\", \"tokenizer\": \"/tmp/model/dummy-llama-3.1-8b/tokenizer.json\", \"precision\": \"bf16\", \"gpu_ids\": [0], \"artifact_root\": \"$ROOT\", \"frameworks\": [\"vllm\", \"sglang\"], \"model_family\": \"llama\", \"model_slug\": \"dummy-llama-8b\"}" | tee -a $R/mcp-calls.jsonl
  CAMP=$(ls -d $ROOT/runs/*_sota_humanize | head -1)
  python3 $D/mcp_call.py $BIN history_notes "{\"campaign_dir\": \"$CAMP\", \"knowledge_root\": \"/tmp/no-model-pr-history\"}" | tee -a $R/mcp-calls.jsonl
fi
echo "campaign: $CAMP"
timeout ${MAX_S:-500} python3 $D/mcp_call.py $BIN fair_benchmark "{\"campaign_dir\": \"$CAMP\", \"config_path\": \"$D/h200-vllm-vs-sglang.yaml\", \"wait_s\": 5}" \
  --poll "{\"campaign_dir\": \"$CAMP\", \"job\": \"fair_benchmark\"}" --poll-every 30 --max-wait ${MAX_S:-500} | tee -a $R/mcp-calls.jsonl | cut -c1-600
ls $CAMP/benchmark; cat $CAMP/benchmark/summary.md 2>/dev/null | head -40
