#!/usr/bin/env bash
# Install vllm-sota and register its MCP server with Claude Code and Codex.
#
#   scripts/install.sh [--dry-run] [--bin PATH] [--prefix DIR] [--project DIR]
#                      [--no-claude] [--no-codex] [--plugin] [--tool-timeout-sec N]
#
# Idempotent: running it again rewrites the same entries, never duplicates them.
#   --dry-run        print what would be built and the exact registration, change nothing
#   --bin PATH       use this binary instead of building one
#   --prefix DIR     cargo install root (default: $CARGO_HOME or ~/.cargo); binary in DIR/bin
#   --project DIR    also write DIR/.mcp.json (Claude Code project scope)
#   --plugin         copy the binary to <repo>/bin/ for the Claude plugin manifest (.claude-plugin/plugin.json)
#   --tool-timeout-sec N   Codex per-call tool timeout (default 3600; Codex's own default of 60 s is too short)
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
dry_run=0; bin=""; prefix="${CARGO_HOME:-$HOME/.cargo}"; project=""; claude=1; codex=1; plugin=0; tool_timeout=3600
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --bin) bin="$2"; shift ;;
    --prefix) prefix="$2"; shift ;;
    --project) project="$2"; shift ;;
    --no-claude) claude=0 ;;
    --no-codex) codex=0 ;;
    --plugin) plugin=1 ;;
    --tool-timeout-sec) tool_timeout="$2"; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

say() { echo "install.sh: $*" >&2; }

# 1. The binary.
if [ -z "$bin" ]; then
  bin="$prefix/bin/vllm-sota"
  if [ "$dry_run" = 1 ]; then
    say "would run: cargo install --locked --path $repo --root $prefix"
  else
    cargo install --locked --path "$repo" --root "$prefix" >&2
  fi
fi
case "$bin" in /*) ;; *) bin="$(pwd)/$bin" ;; esac

# 2. The registration snippets (printed in dry-run, merged otherwise).
claude_json() {
  cat <<JSON
{"mcpServers": {"vllm-sota": {"type": "stdio", "command": "$bin", "args": ["mcp"], "env": {"RUST_LOG": "warn"}, "timeout": 86400000}}}
JSON
}
codex_toml() {
  cat <<TOML
[mcp_servers.vllm-sota]
command = "$bin"
args = ["mcp"]
startup_timeout_sec = 30
tool_timeout_sec = $tool_timeout

[mcp_servers.vllm-sota.env]
RUST_LOG = "warn"
TOML
}

# Merge our server into a JSON file's mcpServers (python3: present wherever GPUs are).
merge_json() {
  local file="$1"
  mkdir -p "$(dirname "$file")"
  python3 - "$file" "$(claude_json)" <<'PY'
import json, os, sys
path, ours = sys.argv[1], json.loads(sys.argv[2])
data = {}
if os.path.exists(path) and os.path.getsize(path) > 0:
    with open(path) as f:
        data = json.load(f)
data.setdefault("mcpServers", {}).update(ours["mcpServers"])
tmp = path + ".tmp"
with open(tmp, "w") as f:
    json.dump(data, f, indent=2)
    f.write("\n")
os.replace(tmp, path)
PY
}

# Replace (or add) our [mcp_servers.vllm-sota] tables in a TOML file, leaving the rest as is.
merge_toml() {
  local file="$1"
  mkdir -p "$(dirname "$file")"
  touch "$file"
  local tmp="$file.tmp"
  awk '
    /^\[/ { skip = ($0 ~ /^\[mcp_servers\.vllm-sota(\.[^]]*)?\][ \t]*$/) }
    !skip { print }
  ' "$file" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' > "$tmp"
  { [ -s "$tmp" ] && echo; codex_toml; } >> "$tmp"
  mv "$tmp" "$file"
}

codex_home="${CODEX_HOME:-$HOME/.codex}"
if [ "$dry_run" = 1 ]; then
  echo "binary: $bin"
  if [ "$claude" = 1 ]; then
    echo "--- claude: .mcp.json (project scope${project:+: $project/.mcp.json}) / claude mcp add-json --scope user"
    claude_json
  fi
  if [ "$codex" = 1 ]; then
    echo "--- codex: $codex_home/config.toml"
    codex_toml
  fi
  echo "--- skill: npx skills add $repo --skill vllm-sota-humanize-loop -a claude-code -a codex"
  exit 0
fi

if [ "$claude" = 1 ]; then
  if [ -n "$project" ]; then
    merge_json "$project/.mcp.json"; say "wrote $project/.mcp.json"
  fi
  if command -v claude >/dev/null 2>&1; then
    claude mcp remove --scope user vllm-sota >/dev/null 2>&1 || true
    claude mcp add-json --scope user vllm-sota "$(claude_json | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["mcpServers"]["vllm-sota"]))')" >&2
    say "registered with Claude Code (user scope)"
  elif [ -z "$project" ]; then
    say "claude not on PATH: pass --project DIR to write DIR/.mcp.json instead"
  fi
fi
if [ "$codex" = 1 ]; then
  merge_toml "$codex_home/config.toml"; say "wrote [mcp_servers.vllm-sota] to $codex_home/config.toml"
fi
if [ "$plugin" = 1 ]; then
  mkdir -p "$repo/bin" && cp "$bin" "$repo/bin/vllm-sota"; say "copied the binary to $repo/bin/ for .claude-plugin/plugin.json"
fi
say "skill: npx skills add $repo --skill vllm-sota-humanize-loop -a claude-code -a codex"
