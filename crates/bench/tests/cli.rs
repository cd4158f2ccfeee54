//! The argv entry points the root binary exposes.

mod common;
use common::{Sim, fast_cfg, tokenizer_path};
use vllm_sota_bench::{bench_load_cli, sim_serve_cli};
use vllm_sota_core::Framework;

fn argv(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

#[test]
fn sim_serve_rejects_bad_flags_and_unfit_configs() {
    let e = sim_serve_cli(argv("--framework sglang --max-num-seqs 8"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("--max-num-seqs") && e.contains("sglang"), "{e}");
    let e = sim_serve_cli(argv("--framework tgi"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("tgi"), "{e}");
    let tok = tokenizer_path().display().to_string();
    let e = sim_serve_cli(argv(&format!(
        "--tokenizer {tok} --port 0 --gpu-memory-utilization 0.1"
    )))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("No available memory for the cache blocks"),
        "{e}"
    );
    let e = sim_serve_cli(argv("--port 0")).unwrap_err().to_string();
    assert!(e.contains("--tokenizer"), "{e}");
    assert!(sim_serve_cli(argv("--help")).is_ok());
}

#[test]
fn bench_load_end_to_end_writes_the_report() {
    let sim = Sim::start(fast_cfg(Framework::Vllm)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.json");
    bench_load_cli(argv(&format!(
        "--base-url {} --tokenizer {} --num-prompts 6 --input-len 40 --output-len 5 --max-concurrency 3 --warmup 2 --goodput ttft:60000 --output {}",
        sim.url(),
        tokenizer_path().display(),
        out.display()
    )))
    .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v["model"], "sim-llama", "model taken from GET /v1/models");
    assert_eq!(v["summary"]["row"]["completed"], 6);
    assert_eq!(v["summary"]["row"]["total_input_tokens"], 240);
    assert_eq!(v["summary"]["row"]["total_output_tokens"], 30);
    assert_eq!(
        v["records"].as_array().unwrap().len(),
        8,
        "6 measured + 2 warmup records"
    );
    assert!(v["summary"]["row"]["request_goodput"].as_f64().unwrap() > 0.0);
    assert_eq!(v["summary"]["row"]["provenance"]["client"], "vllm-sota");

    let e = bench_load_cli(argv(&format!(
        "--base-url {} --model m --num-prompts 1",
        sim.url()
    )))
    .unwrap_err()
    .to_string();
    assert!(e.contains("--tokenizer"), "{e}");
    let e = bench_load_cli(argv(
        "--request-rate fast --model m --dataset jsonl --workload /nonexistent.jsonl",
    ))
    .unwrap_err();
    assert!(format!("{e:#}").contains("/nonexistent.jsonl"), "{e:#}");
    let e = bench_load_cli(argv("--bogus")).unwrap_err().to_string();
    assert!(e.contains("--bogus"), "{e}");
}
