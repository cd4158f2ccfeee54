//! `vllm-sota selfbench profile`: figures from fresh-process runs, and clear errors (no
//! panic) for a missing file, a zero run count and a truncated trace.

mod common;
use common::{bin, fixtures};
use std::process::Command;

fn selfbench(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin())
        .args(["selfbench", "profile"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn runs_are_summarised_by_medians() {
    let trace = fixtures().join("h200-torch-traces/llama8b_decode.trace.json.gz");
    let (ok, out, err) = selfbench(&[trace.to_str().unwrap(), "--runs", "2", "--json"]);
    assert!(ok, "{err}");
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["runs"], 2);
    assert_eq!(s["each"].as_array().unwrap().len(), 2);
    assert_eq!(
        s["each"][0]["events"], 80_517,
        "the llama8b decode trace's events"
    );
    let (lo, mid, hi) = (
        s["min_ratio"].as_f64().unwrap(),
        s["median_ratio"].as_f64().unwrap(),
        s["max_ratio"].as_f64().unwrap(),
    );
    assert!(lo <= mid && mid <= hi && lo > 0.0, "{s}");
    assert!(s["peak_rss_mb"].as_f64().unwrap() > 0.0);
}

#[test]
fn bad_inputs_give_clear_errors() {
    let (ok, _, err) = selfbench(&["/nonexistent/trace.json.gz", "--runs", "2"]);
    assert!(!ok);
    assert!(
        err.contains("selfbench: cannot read /nonexistent/trace.json.gz"),
        "{err}"
    );

    let trace = fixtures().join("h200-torch-traces/llama8b_decode.trace.json.gz");
    let (ok, _, err) = selfbench(&[trace.to_str().unwrap(), "--runs", "0"]);
    assert!(!ok);
    assert!(err.contains("--runs must be at least 1"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.json.gz");
    let bytes = std::fs::read(&trace).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (ok, _, err) = selfbench(&[cut.to_str().unwrap(), "--runs", "2"]);
    assert!(!ok);
    assert!(
        err.contains("cut.json.gz") && err.contains("run 1 of 2 failed"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
