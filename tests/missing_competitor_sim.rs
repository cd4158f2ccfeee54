//! A sim campaign where SGLang is enabled but its server command does not exist on this
//! machine: fair_benchmark runs for real (vLLM served by sim-serve, SGLang an environment
//! gap), revalidate measures vLLM again, then gap_decision and final_report must not turn
//! the missing competitor into a win.

mod common;
#[path = "../crates/fairbench/tests/common/search.rs"]
mod fair_search;

use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use vllm_sota_core::jobs::{self, JobStatus};
use vllm_sota_core::layout::CampaignPaths;
use vllm_sota_core::results::{CandidateRow, RunStatus};
use vllm_sota_core::{Tool, ToolContext, fsx};
use vllm_sota_fairbench::{FairBenchmarkRequest, RevalidateRequest};
use vllm_sota_rlcr::{Decision, FinalReport, GapDecision};

/// A git checkout whose `vllm` package is importable with `PYTHONPATH=<checkout>`.
fn checkout(dir: &Path) -> PathBuf {
    let c = dir.join("vllm");
    std::fs::create_dir_all(c.join("vllm")).unwrap();
    std::fs::write(c.join("vllm/__init__.py"), "__version__ = '0.0.0+sim'\n").unwrap();
    std::fs::write(
        c.join("vllm/_version.py"),
        "__version__ = version = '0.0.0+sim'\n",
    )
    .unwrap();
    common::git::commit_all(&common::git::init_main(&c), "base");
    c
}

fn config(checkout: &Path) -> serde_json::Value {
    let b = bin().display().to_string();
    sim_fair_config(
        json!({"num_prompts": 12, "scenario_names": ["chat"], "input_len": [64], "output_len": [32]}),
        json!({"max_concurrency": [12], "repeats": 3,
               "sla": {"max_p50_tpot_ms": 5000, "min_success_rate": 0.99},
               "warmup_prompts": 2, "request_timeout_s": 60}),
        1,
        json!({
            "vllm": {"server_command": [b, "sim-serve", "--framework", "vllm", "{model}"],
                     "help_command": recorded_help("vllm"),
                     "python_command": ["python3"],
                     "env": {"PYTHONPATH": checkout},
                     "base_server_flags": {"--max-num-seqs": 4, "--gpu-memory-utilization": 0.9},
                     "search_skipped_reason": "one deployment is enough for this test"},
            "sglang": {"server_command": ["vllm-sota-test-no-such-sglang-server", "--model-path", "{model}"],
                       "help_command": recorded_help("sglang"),
                       "base_server_flags": {"--max-running-requests": 8},
                       "search_skipped_reason": "its server is not installed in this test"}
        }),
    )
}

#[test]
fn sglang_enabled_but_not_installed_is_never_a_win() {
    let tmp = tempfile::tempdir().unwrap();
    let checkout = checkout(tmp.path());
    let root = sim_campaign(
        &tmp.path().join("artifacts"),
        json!({"vllm_checkout": checkout}),
    );
    let paths = CampaignPaths::new(&root);

    // Phase 1: the fixed benchmark, for real.
    fair_search::run_fair_benchmark_inline(
        &root,
        FairBenchmarkRequest {
            campaign_dir: root.display().to_string(),
            config_path: None,
            config: Some(config(&checkout)),
            dry_run: false,
            wait_s: None,
        },
    );
    let rows: Vec<CandidateRow> = fsx::read_jsonl(&paths.candidates()).unwrap();
    let measured = |fw: &str| {
        rows.iter()
            .filter(|r| r.framework.as_str() == fw && r.status == RunStatus::Ok)
            .count()
    };
    assert_eq!(measured("vllm"), 3, "vLLM measured 3 repeats: {rows:#?}");
    assert_eq!(measured("sglang"), 0, "SGLang cannot run here: {rows:#?}");
    assert!(
        rows.iter().any(|r| r.framework.as_str() == "sglang"
            && r.failure_reason
                .as_deref()
                .is_some_and(|m| m.contains("vllm-sota-test-no-such-sglang-server"))),
        "an SGLang row names the missing command: {rows:#?}"
    );

    // Round 1 revalidation of vLLM (unpatched here, probe on).
    let rv = RevalidateRequest {
        campaign_dir: root.display().to_string(),
        round: 1,
        repeats: 3,
        include_leader: true,
        scenarios: None,
        vllm_commit: None,
        correctness: true,
        min_match_rate: 1.0,
        wait_s: None,
    };
    let st = jobs::run_inline(
        &root.join("benchmark/revalidation/round-1.job.json"),
        "revalidate",
        serde_json::to_value(rv).unwrap(),
        vllm_sota_fairbench::run_revalidate_job,
    )
    .unwrap();
    assert_eq!(st.status, JobStatus::Succeeded, "{:?}", st.error);

    let gap = GapDecision::run(
        serde_json::from_value(json!({"campaign_dir": root, "round": 2,
            "current_files": ["benchmark/revalidation/round-1.jsonl"]}))
        .unwrap(),
        &ToolContext::new(),
    )
    .unwrap();
    for sc in &gap.scenarios {
        assert!(!sc.decision.is_win(), "{}: {}", sc.scenario, sc.reason);
    }
    assert!(
        !matches!(gap.decision, Decision::StopBeats | Decision::StopTied),
        "{:?}: {}",
        gap.decision,
        gap.reason
    );
    assert_eq!(
        gap.decision,
        Decision::BlockedCompetitorUnavailable,
        "{}",
        gap.reason
    );

    let r = FinalReport::run(
        serde_json::from_value(json!({"campaign_dir": root, "allow_unfinished": true,
            "tests_run": ["cargo test --test missing_competitor_sim"]}))
        .unwrap(),
        &ToolContext::new(),
    )
    .unwrap();
    assert!(!r.reached_sota, "{}", r.verdict);
    assert!(r.verdict.starts_with("not reached"), "{}", r.verdict);
    let text = std::fs::read_to_string(paths.final_report()).unwrap();
    assert!(
        text.contains("**vLLM did not reach SOTA in the target environment**")
            && !text.contains("**vLLM reached SOTA"),
        "{text}"
    );
}
