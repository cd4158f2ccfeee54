//! Helpers shared by the integration tests: the binary, temp campaigns, fixtures.
#![allow(dead_code)]

/// The real Humanize runtime (vendored snapshot) and a stub codex, shared with the rlcr tests.
#[path = "../../crates/rlcr/tests/common/humanize.rs"]
pub mod humanize_runtime;

/// Git helpers (git2), shared with the rlcr tests.
#[path = "../../crates/rlcr/tests/common/git.rs"]
pub mod git;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vllm-sota"))
}

pub fn fixtures() -> PathBuf {
    vllm_sota_core::refs::fixtures_dir()
}

/// Run a tool through the CLI with a JSON request; returns (exit ok, stdout JSON or Null, stderr).
pub fn cli(tool: &str, request: &Value) -> (bool, Value, String) {
    cli_env(tool, request, &[])
}

pub fn cli_env(tool: &str, request: &Value, env: &[(&str, &str)]) -> (bool, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let req = dir.path().join("req.json");
    std::fs::write(&req, serde_json::to_vec(request).unwrap()).unwrap();
    let mut cmd = Command::new(bin());
    cmd.arg(tool).arg("--request").arg(&req).arg("--json");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run vllm-sota");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.success(), value, stderr)
}

/// A fair_benchmark config for the dummy Llama fixture on one GPU whose servers are
/// `sim-serve` (fast launch polling and teardown): the given `dataset`, `benchmark` and
/// `frameworks` sections, a tier-1 search of at most `max_candidates` per framework.
pub fn sim_fair_config(
    dataset: Value,
    benchmark: Value,
    max_candidates: u64,
    frameworks: Value,
) -> Value {
    let model = fixtures().join("dummy-llama-3.1-8b");
    json!({
        "schema_version": 1,
        "model": {"name": model, "tokenizer": model.join("tokenizer.json")},
        "hardware": {"gpu_count": 1, "check_gpus_free": false},
        "dataset": dataset,
        "benchmark": benchmark,
        "search": {"tier": 1, "max_candidates_per_framework": max_candidates},
        "launch": {"startup_timeout_s": 120, "readiness_poll_s": 0.1, "shutdown_grace_s": 3},
        "frameworks": frameworks
    })
}

/// The `help_command` that prints a framework's recorded `--help` page (the H200 fixtures).
pub fn recorded_help(framework: &str) -> Value {
    let page = match framework {
        "vllm" => "h200-vllm-0.26/help/vllm_serve_help_all.txt",
        "sglang" => "h200-sglang-0.5.17/help/sglang_launch_server_help.txt",
        other => panic!("no recorded --help page for {other}"),
    };
    json!(["cat", fixtures().join(page)])
}

/// A campaign of the dummy Llama fixture under `artifacts` comparing vLLM and SGLang
/// (`extra` is merged into the campaign_init request), with Phase 0.5 done as a recorded
/// blocker (no knowledge root in tests). Returns the campaign directory.
pub fn sim_campaign(artifacts: &Path, extra: Value) -> PathBuf {
    let mut req = json!({
        "model": fixtures().join("dummy-llama-3.1-8b"), "artifact_root": artifacts,
        "gpu_ids": [0], "frameworks": ["vllm", "sglang"]
    });
    if let (Some(r), Value::Object(e)) = (req.as_object_mut(), extra) {
        r.extend(e);
    }
    let (ok, init, err) = cli("campaign-init", &req);
    assert!(ok, "campaign-init failed: {err}");
    let root = PathBuf::from(init["campaign_dir"].as_str().unwrap());
    let notes = root.join("history/model-pr-history-notes.md");
    std::fs::create_dir_all(notes.parent().unwrap()).unwrap();
    std::fs::write(
        notes,
        "# Model PR history notes: dummy\n\n## Blocker\n\nno knowledge root\n",
    )
    .unwrap();
    root
}

/// A fresh campaign for the dummy Llama fixture; returns (tempdir guard, campaign_dir).
pub fn new_campaign() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let (ok, report, err) = cli(
        "campaign-init",
        &json!({
            "model": fixtures().join("dummy-llama-3.1-8b"),
            "artifact_root": root.path(),
            "gpu_ids": [0],
            "model_slug": "dummy-llama-3.1-8b",
        }),
    );
    assert!(ok, "campaign-init failed: {err}");
    let dir = PathBuf::from(report["campaign_dir"].as_str().unwrap());
    (root, dir)
}

/// Every file under `dir`, relative, sorted (directories end in '/').
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            if p.is_dir() {
                out.push(format!("{rel}/"));
                walk(base, &p, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Every file's bytes under `dir`, concatenated (for secret scans).
pub fn all_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    tree(dir)
        .into_iter()
        .filter(|p| !p.ends_with('/'))
        .map(|p| {
            let bytes = std::fs::read(dir.join(&p)).unwrap();
            (p, bytes)
        })
        .collect()
}

pub fn append_row(campaign: &Path, entry: Value) -> (bool, Value, String) {
    cli(
        "ledger-append",
        &json!({"campaign_dir": campaign, "entry": entry}),
    )
}

/// A candidate row in the seed's schema (for constructed benchmark files).
pub fn candidate_row(
    row_id: &str,
    framework: &str,
    scenario: &str,
    req_tput: f64,
    round: u32,
) -> Value {
    json!({
        "schema_version": 1, "row_id": row_id, "framework": framework, "candidate_id": format!("{framework}-c0"),
        "is_baseline": true, "scenario": scenario, "round": round, "repeat": 0, "status": "ok",
        "hardware": {"gpu_count": 1, "gpu_ids": [0]},
        "workload": {"dataset": "random", "scenario": scenario, "input_len": 1000, "output_len": 1000, "num_prompts": 80, "endpoint": "/v1/completions"},
        "sla": {"max_p50_ttft_ms": 5000.0, "passed": true},
        "metrics": {"num_requests": 80, "completed": 80, "failed": 0, "success_rate": 1.0, "request_throughput": req_tput,
                    "output_throughput": req_tput * 1000.0,
                    "ttft_ms": {"p50": 100.0}, "tpot_ms": {"p50": 10.0},
                    "provenance": {"client": "vllm-sota", "token_count_source": "usage", "itl_granularity": "per_chunk", "duration_definition": "first send to last byte"}},
        "started_at": "2026-11-29T00:00:00Z", "finished_at": "2026-11-29T00:01:00Z"
    })
}
