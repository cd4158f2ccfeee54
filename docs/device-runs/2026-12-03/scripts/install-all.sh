#!/usr/bin/env bash
# ON THE DEVICE, idempotent: installs vLLM 0.26.0 into /tmp/site and SGLang 0.5.17 into /tmp/sgl-site from the wheel
# parts stashed in /tmp/stash (w.part-*: one tar of the union of both wheel sets; the lists say which go where).
set -euo pipefail
S=/tmp/stash; D=$(cd "$(dirname "$0")" && pwd); t0=$(date +%s)
echo "parts: $(ls $S/w.part-* | wc -l)"
if [ ! -f /tmp/site/.ok ] || [ ! -f /tmp/sgl-site/.ok ]; then
  rm -rf /tmp/w; mkdir -p /tmp/w; cat $S/w.part-* | tar -x -C /tmp/w
fi
inst() { # list target
  [ -f $2/.ok ] && return 0
  rm -rf $2; mkdir -p $2
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target $2 $(sed 's#^#/tmp/w/#' $1) && touch $2/.ok
}
inst $D/vllm-wheels.txt /tmp/site & inst $D/sgl-wheels.txt /tmp/sgl-site & wait
echo "installed in $(( $(date +%s) - t0 )) s"
mkdir -p /tmp/model; [ -d /tmp/model/dummy-llama-3.1-8b ] || cp -r $D/dummy-llama-3.1-8b /tmp/model/
PYTHONPATH=/tmp/site python3 -c 'import vllm; print("vllm", vllm.__version__, vllm.__file__)'
PYTHONPATH=/tmp/sgl-site python3 -c 'import sglang; print("sglang", sglang.__version__)'
