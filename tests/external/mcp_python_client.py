"""Drive `vllm-sota mcp` with the official Python MCP SDK (a client no one here wrote).

Usage: python mcp_python_client.py <path to vllm-sota> <fixtures dir>
Exits non-zero (AssertionError) when any check fails; prints one line per check.
"""
import json
import os
import sys
import tempfile

import anyio
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

passed = 0


def check(cond, what):
    global passed
    assert cond, what
    passed += 1
    print(f"ok - {what}")


async def main(binary, fixtures):
    params = StdioServerParameters(command=binary, args=["mcp"], env={"RUST_LOG": "warn"})
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            check(init.server_info.name == "vllm-sota", "server identifies as vllm-sota")
            tools = {t.name: t for t in (await session.list_tools()).tools}
            for name in ("campaign_init", "campaign_status", "ledger_append"):
                check(name in tools and tools[name].output_schema is not None, f"{name} listed with an output schema")
            with tempfile.TemporaryDirectory() as root:
                res = await session.call_tool(
                    "campaign_init",
                    {"model": f"{fixtures}/dummy-llama-3.1-8b", "artifact_root": root, "gpu_ids": [0]},
                )
                check(not res.is_error and res.structured_content["created"] is True, "campaign_init creates a campaign")
                campaign = res.structured_content["campaign_dir"]
                res = await session.call_tool("campaign_status", {"campaign_dir": campaign})
                gates = {g["gate"]: g["state"] for g in res.structured_content["gates"]}
                check(gates.get("campaign_initialized") == "done", "campaign_status reports the init gate done")
                attempt = {"campaign_dir": campaign, "entry": {"ledger": "attempt", "round": 1, "hypothesis": "h",
                                                                "target": "t", "change": "c", "status": "planned"}}
                res = await session.call_tool("ledger_append", attempt)
                text = " ".join(c.text for c in res.content if getattr(c, "text", None))
                check(res.is_error and "gap_decision" in text and "root-cause.md" in text,
                      "an attempt before the round's evidence is refused, naming what is missing")
                # The round's evidence, as gap_decision, profile_tables and layer_pipeline leave it.
                with open(os.path.join(campaign, "humanize", "lineage.jsonl"), "a") as f:
                    f.write(json.dumps({"kind": "gap_decision", "round": 1, "decision": "patch",
                                        "reason": "r", "scenarios": []}) + "\n")
                analysis = os.path.join(campaign, "analysis", "round-1")
                os.makedirs(analysis, exist_ok=True)
                for name in ("root-cause.md", "layer-pipeline.md"):
                    with open(os.path.join(analysis, name), "w") as f:
                        f.write("# evidence\n")
                res = await session.call_tool("ledger_append", attempt)
                check(not res.is_error and res.structured_content["row_id"] == "r1-a01",
                      "with the evidence in place ledger_append appends an attempt row")
                res = await session.call_tool(
                    "ledger_append",
                    {"campaign_dir": campaign, "entry": {"ledger": "optimization", "round": 1, "attempt_id": "r1-a01",
                                                          "summary": "s", "correctness": {"passed": True, "detail": "d"}}},
                )
                text = " ".join(c.text for c in res.content if getattr(c, "text", None))
                check(res.is_error and "measured_improvement" in text, "an optimization row without a measurement is refused by name")
    print(json.dumps({"client": "python mcp", "checks_passed": passed}))


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2])
