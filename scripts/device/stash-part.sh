#!/usr/bin/env bash
# Run ON THE DEVICE, once per transfer call.
# Moves carried files/folders (vLLM tar parts, SHA256SUMS, the model dir) out of
# the repo copy into /tmp/stash. Carried paths are replaced on every call, but
# /tmp survives as long as the machine stays warm (30 s after each call), so the
# transfer calls must follow one another quickly.
# Usage: bash scripts/device/stash-part.sh PATH [PATH...]
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 PATH [PATH...]" >&2; exit 2; }
STASH=${STASH:-/tmp/stash}   # where parts wait between calls (override with STASH)
mkdir -p "$STASH"
for p in "$@"; do
  [ -e "$p" ] || { echo "stash: missing $p (not carried?)" >&2; exit 1; }
  rm -rf "$STASH/$(basename "$p")"   # a re-sent part replaces the old copy
  mv "$p" "$STASH/"
done
# Show what has arrived so far: the lead checks the count before installing.
echo "stash: $(ls "$STASH" | grep -c '\.part-' || true) part(s), $(du -sh "$STASH" | cut -f1) in $STASH"
ls -l "$STASH"
