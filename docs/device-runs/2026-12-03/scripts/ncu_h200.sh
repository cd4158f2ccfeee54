#!/bin/bash
# Idempotent: captures the held-out-like NCU cases and a small demo trace; packs everything under $OUT.
W=/tmp/ncuw; mkdir -p $W; D=$(cd $(dirname $0) && pwd)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $W/gpu.txt; ncu --version > $W/ncu_version.txt 2>&1
python3 -c 'import torch,triton; print(torch.__version__, torch.version.cuda, triton.__version__)' > $W/versions.txt
for c in gemm_big gemm_skinny sdpa; do
  [ -f $W/$c.ncu-rep ] || ncu --set full --clock-control none -k 'regex:nvjet|gemm|sm90|flash|fmha|attention' -c 1 -f -o $W/$c python3 $D/ncu_cases.py $c > $W/$c.ncu.log 2>&1
  ncu --import $W/$c.ncu-rep --csv --page details > $W/${c}_details.csv
  ncu --import $W/$c.ncu-rep --csv --page details --print-units base > $W/${c}_details_base.csv
  ncu --import $W/$c.ncu-rep --csv --page raw > $W/${c}_raw.csv
  python3 $D/ncu_cases.py $c > $W/$c.log 2>&1
done
cp $D/ncu_cases.py $D/ncu_h200.sh $W/
cd $W && tar cJf $OUT/ncu_h200.tar.xz --exclude='*.ncu-rep' . && ls -la $W $OUT
python3 $D/demo_trace.py > $W/demo.log 2>&1; tail -3 $W/demo.log
