#!/usr/bin/env bash
# ON THE DEVICE: profile_tables (eager twin as mapping, cross-framework comparison) and layer_pipeline per framework; packs results.
set -uo pipefail
D=$(cd "$(dirname "$0")" && pwd); BIN=$D/vllm-sota; R=/tmp/res
CAMP=$(ls -d /tmp/campaigns/runs/*_sota_humanize | head -1); P=$CAMP/profiles/round-1
w() { ls $1/*.pt.trace.json.gz $1/*.trace.json.gz 2>/dev/null | grep -v async_llm | head -1; }
for FW in vllm sglang; do
  for S in decode prefill; do
    T=$(w $P/$FW/$S); E=$(w $P/$FW/$S-eager); [ -n "$T" ] || continue
    MAP=""; [ -n "$E" ] && MAP=", \"mapping_trace\": \"$E\""
    python3 $D/mcp_call.py $BIN profile_tables "{\"trace\": \"$T\"$MAP, \"framework\": \"$FW\", \"campaign_dir\": \"$CAMP\", \"round\": 1}" | tee -a $R/mcp-calls.jsonl | cut -c1-3000
    python3 $D/mcp_call.py $BIN layer_pipeline "{\"trace\": \"$T\"$MAP, \"stage\": \"$S\", \"config\": \"/tmp/model/dummy-llama-3.1-8b/config.json\", \"framework\": \"$FW\", \"campaign_dir\": \"$CAMP\", \"round\": 1}" | tee -a $R/mcp-calls.jsonl | cut -c1-3000
  done
done
TV=$(w $P/vllm/decode); TS=$(w $P/sglang/decode)
[ -n "$TV" ] && [ -n "$TS" ] && python3 $D/mcp_call.py $BIN profile_tables "{\"trace\": \"$TV\", \"framework\": \"vllm\", \"competitor_trace\": \"$TS\", \"competitor_framework\": \"sglang\", \"campaign_dir\": \"$CAMP\", \"round\": 1}" | tee -a $R/mcp-calls.jsonl | cut -c1-3000
mkdir -p $OUT; cp /tmp/res/*.log $R/mcp-calls.jsonl /tmp/res/ 2>/dev/null
tar -C /tmp/campaigns/runs -cJf $OUT/campaign-notraces.tar.xz --exclude='*.trace.json.gz' --exclude='*.pt.trace.json.gz' .
tar -C /tmp/res -cJf $OUT/res.tar.xz --exclude=profiles .
find $P -name '*trace.json.gz' -size -15M | head -6 | while read f; do cp $f $OUT/$(echo ${f#$P/} | tr / _); done
ls -la $OUT
