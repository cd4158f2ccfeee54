#!/usr/bin/env bash
# The project's one test command (README and .ci/run call it): every Rust test in the
# workspace, then the checks with tools no one here wrote: the official Python MCP SDK
# driving our server, and `npx skills add --list` finding the skill.
# Those two need python3 and npx; without them they are skipped with a note, except in CI
# (CI=true), where they must run.
set -euo pipefail
cd "$(dirname "$0")/.."

# Plain `cargo test` also builds every example at target/debug/examples/<name>: the fairbench
# end-to-end tests launch sim-serve and the job runner from there.
cargo test --workspace --locked

need_external() {
  if command -v "$1" >/dev/null 2>&1; then return 0; fi
  if [ "${CI:-}" = "true" ]; then echo "FAILED - $1 is required in CI for the external client checks" >&2; exit 1; fi
  echo "note: $1 not found: skipping $2" >&2
  return 1
}

if need_external python3 "the Python MCP SDK check"; then
  venv="${VLLM_SOTA_TEST_VENV:-target/test-venv}"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check mcp==2.3.0
  cargo build --locked --bin vllm-sota
  fixtures="${VLLM_SOTA_FIXTURES:-$(cd .. && pwd)/shared/fixtures}"
  "$venv/bin/python" tests/external/mcp_python_client.py "${CARGO_TARGET_DIR:-target}/debug/vllm-sota" "$fixtures"
fi

if need_external npx "the npx skills add check"; then
  # Node 22 comes from the npm registry as a package; HOME is a throwaway so nothing is installed.
  skills_out="$(HOME="$(mktemp -d)" DISABLE_TELEMETRY=1 npx -y -p node@22 -p skills@1.7.4 -- skills add "$PWD" --list 2>&1)"
  if grep -q "vllm-sota-humanize-loop" <<<"$skills_out"; then
    echo "ok - npx skills add --list finds vllm-sota-humanize-loop"
  else
    echo "$skills_out" >&2
    echo "FAILED - npx skills add --list did not find vllm-sota-humanize-loop" >&2
    exit 1
  fi
fi

if need_external npx "the MCP Inspector strict schema check"; then
  # The official MCP Inspector lists our tools and checks every schema in strict mode
  # (no bare `true`, one `type` per schema, standard formats). It exits non-zero on an error;
  # a warning fails here too, so the tool list stays clean for strict clients.
  cargo build --locked --bin vllm-sota
  bin="${CARGO_TARGET_DIR:-target}/debug/vllm-sota"
  if inspector_out="$(HOME="$(mktemp -d)" DISABLE_TELEMETRY=1 npx -y -p node@22 -p @modelcontextprotocol/inspector@2.12.0 -- \
      mcp-inspector --cli "$bin" mcp --method tools/list --strict 2>&1)" \
      && ! grep -q "^Warning: tool" <<<"$inspector_out"; then
    echo "ok - MCP Inspector --strict accepts every tool schema"
  else
    grep -v "EBADENGINE\|^npm warn" <<<"$inspector_out" >&2
    echo "FAILED - MCP Inspector --strict rejects the tool schemas" >&2
    exit 1
  fi
fi
