mkdir -p /tmp/stash; for p in "$@"; do mv "$p" /tmp/stash/; done; ls /tmp/stash | wc -l; du -sh /tmp/stash
