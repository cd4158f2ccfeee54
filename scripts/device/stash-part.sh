#!/usr/bin/env bash
# Run ON THE DEVICE, once per transfer call.
# Moves carried files/folders (vLLM tar parts, SHA256SUMS, the model dir) out of
# the repo copy into /tmp/stash. Carried paths are replaced on every call, but
# /tmp survives as long as the machine stays warm (30 s after each call), so the
# transfer calls must follow one another quickly.
# Usage: bash scripts/device/stash-part.sh PATH [PATH...]
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 PATH [PATH...]" >&2; exit 2; }
mkdir -p /tmp/stash
for p in "$@"; do
  [ -e "$p" ] || { echo "stash: missing $p (not carried?)" >&2; exit 1; }
  rm -rf "/tmp/stash/$(basename "$p")"   # a re-sent part replaces the old copy
  mv "$p" /tmp/stash/
done
# Show what has arrived so far: the lead checks the count before installing.
echo "stash: $(ls /tmp/stash | grep -c '\.part-' || true) part(s), $(du -sh /tmp/stash | cut -f1) in /tmp/stash"
ls -l /tmp/stash
