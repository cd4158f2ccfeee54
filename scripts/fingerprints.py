#!/usr/bin/env python3
"""Table fingerprints: run profile_tables, layer_pipeline and ncu_digest (the CLI subcommands)
with one binary on the real fixtures and print one line per output file: its name, the
sha256 (first 16 hex digits) of its text after paths and timestamps are normalised, and its
length. Run it with the binaries of two commits and compare the lines (docs/refactor-fingerprints.md).

usage: fingerprints.py BINARY FIXTURES_DIR WORK_DIR
  (FIXTURES_DIR: the shared fixtures, e.g. ../shared/fixtures; WORK_DIR: where outputs go,
  emptied first; the normalised texts stay there as *.norm for diffing)"""
import hashlib, json, os, re, shutil, subprocess, sys
if len(sys.argv) != 4:
    sys.exit(__doc__)
BIN, FX, ROOT = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
T = FX + "/h200-torch-traces"
LIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates/ncu/tests/data/h200-library")
LIB = os.path.normpath(LIB)
shutil.rmtree(ROOT, ignore_errors=True)
os.makedirs(ROOT)
V = FX + "/h200-vllm-0.26"
S = FX + "/h200-sglang-0.5.17"
cases = {
  "profile-tables": {
    "llama8b_decode": {"trace": f"{T}/llama8b_decode.trace.json.gz"},
    "llama8b_prefill": {"trace": f"{T}/llama8b_prefill.trace.json.gz"},
    "qwen2moe_prefill": {"trace": f"{T}/qwen2moe_prefill.trace.json.gz"},
    "minillama_graph_mapped": {"trace": f"{T}/minillama_graph_decode.trace.json.gz", "mapping_trace": f"{T}/minillama_eager_decode.trace.json.gz"},
    "vllm_decode_graph_mapped": {"trace": f"{V}/decode-graph", "mapping_trace": f"{V}/decode-eager"},
    "vllm_prefill": {"trace": f"{V}/prefill"},
    "sglang_prefill": {"trace": f"{S}/prefill"},
    "vllm_vs_sglang_prefill": {"trace": f"{V}/prefill", "competitor_trace": f"{S}/prefill", "competitor_framework": "sglang"},
  },
  "layer-pipeline": {
    "llama8b_prefill": {"trace": f"{T}/llama8b_prefill.trace.json.gz", "config": f"{T}/llama8b_config.json", "stage": "prefill"},
    "llama8b_decode": {"trace": f"{T}/llama8b_decode.trace.json.gz", "config": f"{T}/llama8b_config.json", "stage": "decode"},
    "qwen2moe_prefill": {"trace": f"{T}/qwen2moe_prefill.trace.json.gz", "config": f"{T}/qwen2moe_config.json", "stage": "prefill"},
    "minillama_graph_mapped": {"trace": f"{T}/minillama_graph_decode.trace.json.gz", "mapping_trace": f"{T}/minillama_eager_decode.trace.json.gz", "config": f"{T}/llama8b_config.json", "stage": "decode"},
    "vllm_decode_graph_mapped": {"trace": f"{V}/decode-graph", "mapping_trace": f"{V}/decode-eager", "config": f"{FX}/dummy-llama-3.1-8b/config.json", "stage": "decode"},
    "sglang_prefill": {"trace": f"{S}/prefill", "config": f"{FX}/dummy-llama-3.1-8b/config.json", "stage": "prefill", "framework": "sglang"},
  },
  "ncu-digest": {
    "rms_pair_harness": {"version": "rms-onepass", "kernel_regex": "^rms_",
        "import": {"baseline": {"details_csv": f"{FX}/h200-ncu/rms_base_details_base.csv", "raw_csv": f"{FX}/h200-ncu/rms_base_raw.csv"},
                   "candidate": {"details_csv": f"{FX}/h200-ncu/rms_cand_details_base.csv", "raw_csv": f"{FX}/h200-ncu/rms_cand_raw.csv"}},
        "baseline_harness": {"time_us": 54.349, "correct": True, "note": "max abs err 0.015625"},
        "candidate_harness": {"time_us": 38.570, "correct": True, "note": "max abs err 0.03125"},
        "kernel_share_pct": 2.0, "gap_pct": 3.0},
    "rms_pair_auto_units": {"version": "rms-auto", "kernel_regex": "^rms_",
        "import": {"baseline": {"details_csv": f"{FX}/h200-ncu/rms_base_details.csv", "raw_csv": f"{FX}/h200-ncu/rms_base_raw.csv"},
                   "candidate": {"details_csv": f"{FX}/h200-ncu/rms_cand_details.csv", "raw_csv": f"{FX}/h200-ncu/rms_cand_raw.csv"}},
        "kernel_share_pct": 5.0, "gap_pct": 10.0},
    "gemm_skinny_vs_big": {"version": "gemm", "kernel_regex": "nvjet",
        "import": {"baseline": {"details_csv": f"{LIB}/gemm_skinny_details_base.csv", "raw_csv": f"{LIB}/gemm_skinny_raw.csv"},
                   "candidate": {"details_csv": f"{LIB}/gemm_big_details_base.csv", "raw_csv": f"{LIB}/gemm_big_raw.csv"}},
        "kernel_share_pct": 5.0, "gap_pct": 10.0},
  },
}
TS = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?")
def norm(text, out):
    text = text.replace(out, "<OUT>").replace(FX, "<FX>").replace(LIB, "<LIB>")
    text = text.replace(ROOT, "<WORK>")
    text = re.sub(r"/tmp/[A-Za-z0-9_.-]+", "<TMP>", text)
    return TS.sub("<TS>", text)
for tool, cs in cases.items():
    for name, req in cs.items():
        out = f"{ROOT}/{tool}/{name}"
        os.makedirs(out + "/out")
        req = dict(req, out_dir=out + "/out")
        rp = f"{out}/req.json"
        json.dump(req, open(rp, "w"))
        p = subprocess.run([BIN, tool, "--request", rp, "--json"], capture_output=True, text=True)
        open(f"{out}/stdout.json", "w").write(p.stdout)
        open(f"{out}/stderr.txt", "w").write(p.stderr)
        files = {"stdout.json": p.stdout, "rc": str(p.returncode)}
        for dp, _, fns in os.walk(out + "/out"):
            for fn in fns:
                fp = os.path.join(dp, fn)
                files[os.path.relpath(fp, out)] = open(fp, errors="replace").read()
        for k in sorted(files):
            n = norm(files[k], out)
            open(f"{out}/{k.replace('/', '__')}.norm", "w").write(n)
            print(f"{tool}/{name}/{k}\t{hashlib.sha256(n.encode()).hexdigest()[:16]}\t{len(n)}")
