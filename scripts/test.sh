#!/usr/bin/env bash
# The project's one test command (README and .ci/run call it): every Rust test in the
# workspace, then the external MCP client check (the official Python SDK against our server).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --all-targets --locked

# An MCP client no one here wrote: the Python SDK from PyPI, in a throwaway venv.
venv="${VLLM_SOTA_TEST_VENV:-target/test-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check mcp==2.3.0
cargo build --locked --bin vllm-sota
fixtures="${VLLM_SOTA_FIXTURES:-$(cd .. && pwd)/shared/fixtures}"
"$venv/bin/python" tests/external/mcp_python_client.py target/debug/vllm-sota "$fixtures"

# `npx skills add` must find the skill (Node 22 comes from the npm registry as a package).
skills_out="$(HOME="$(mktemp -d)" DISABLE_TELEMETRY=1 npx -y -p node@22 -p skills@1.7.4 -- skills add "$PWD" --list 2>&1)"
if grep -q "vllm-sota-humanize-loop" <<<"$skills_out"; then
  echo "ok - npx skills add --list finds vllm-sota-humanize-loop"
else
  echo "$skills_out" >&2
  echo "FAILED - npx skills add --list did not find vllm-sota-humanize-loop" >&2
  exit 1
fi
