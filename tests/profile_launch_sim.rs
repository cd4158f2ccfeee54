//! `profile_launch` end to end on the engine simulator: fair_benchmark picks the winners of
//! vLLM and SGLang (both served by sim-serve in the framework's own flag spelling), then the
//! job launches each winner with the profiler on, captures prefill and decode at the winner's
//! concurrency, tears it down, launches the eager twin (vLLM `--enforce-eager`, SGLang
//! `--disable-cuda-graph`) and captures it at the same shapes. A second run resumes: every
//! stage is done, nothing is launched and nothing is rewritten.

mod common;
#[path = "../crates/fairbench/tests/common/search.rs"]
mod fair_search;

use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use vllm_sota_core::fsx;
use vllm_sota_core::jobs::{self, JobStatus};
use vllm_sota_core::layout::CampaignPaths;
use vllm_sota_core::results::{CandidateRow, RunStatus};
use vllm_sota_fairbench::FairBenchmarkRequest;
use vllm_sota_trace::{
    PROFILE_LAUNCH_JOB_KIND, ProfileLaunchRequest, job_path, launch_plan, run_profile_launch_job,
};

const CONCURRENCY: u64 = 16;

fn config() -> Value {
    let b = bin().display().to_string();
    sim_fair_config(
        json!({"num_prompts": 16, "scenario_names": ["chat"], "input_len": [256], "output_len": [64]}),
        json!({"max_concurrency": [CONCURRENCY], "repeats": 1,
               "sla": {"max_p50_tpot_ms": 5000, "min_success_rate": 0.99},
               "warmup_prompts": 2, "request_timeout_s": 60}),
        1,
        json!({
            "vllm": {"server_command": [b, "sim-serve", "--framework", "vllm", "{model}"],
                     "help_command": recorded_help("vllm"),
                     "base_server_flags": {"--max-num-seqs": 32, "--max-num-batched-tokens": 1024},
                     "search_skipped_reason": "one deployment is enough for this test"},
            "sglang": {"server_command": [b, "sim-serve", "--framework", "sglang", "--model-path", "{model}"],
                       "help_command": recorded_help("sglang"),
                       "base_server_flags": {"--max-running-requests": 32, "--chunked-prefill-size": 1024},
                       "search_skipped_reason": "one deployment is enough for this test"}
        }),
    )
}

fn fair_benchmark(root: &Path) {
    fair_search::run_fair_benchmark_inline(
        root,
        FairBenchmarkRequest {
            campaign_dir: root.display().to_string(),
            config_path: None,
            config: Some(config()),
            dry_run: false,
            wait_s: None,
        },
    );
    let rows: Vec<CandidateRow> = fsx::read_jsonl(&CampaignPaths::new(root).candidates()).unwrap();
    for fw in ["vllm", "sglang"] {
        assert!(
            rows.iter()
                .any(|r| r.framework.as_str() == fw && r.status == RunStatus::Ok),
            "{fw} has a measured row: {rows:#?}"
        );
    }
}

fn run_launch(root: &Path, fw: &str) -> jobs::JobState {
    let req: ProfileLaunchRequest = serde_json::from_value(json!({
        "campaign_dir": root, "framework": fw, "timeout_s": 120, "startup_timeout_s": 120
    }))
    .unwrap();
    let state = job_path(&CampaignPaths::new(root), 0, req.framework);
    jobs::run_inline(
        &state,
        PROFILE_LAUNCH_JOB_KIND,
        serde_json::to_value(&req).unwrap(),
        run_profile_launch_job,
    )
    .unwrap()
}

/// (stage directory name, capture.json) of every stage under profiles/round-0/<fw>/.
fn captures(root: &Path, fw: &str) -> Vec<(String, Value, std::time::SystemTime)> {
    let paths = CampaignPaths::new(root);
    ["prefill", "decode", "prefill-eager", "decode-eager"]
        .iter()
        .map(|s| {
            let p = paths.profile_stage_dir(0, fw, s).join("capture.json");
            let v: Value = fsx::read_json(&p).unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
            let m = std::fs::metadata(&p).unwrap().modified().unwrap();
            (s.to_string(), v, m)
        })
        .collect()
}

fn trace_in(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().contains(".trace.json"))
        .unwrap_or_else(|| panic!("no trace in {}", dir.display()))
}

#[test]
fn profile_launch_captures_both_winners_with_eager_twins_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = sim_campaign(&tmp.path().join("artifacts"), json!({}));
    let paths = CampaignPaths::new(&root);
    fair_benchmark(&root);

    for fw in ["vllm", "sglang"] {
        // The dry run shows the winner's argv with the profiler on, and the twin's.
        let dry: ProfileLaunchRequest = serde_json::from_value(json!({
            "campaign_dir": root, "framework": fw, "dry_run": true
        }))
        .unwrap();
        let plan = launch_plan(&dry).unwrap();
        assert_eq!(plan.concurrency, CONCURRENCY, "{plan:?}");
        assert_eq!((plan.input_len, plan.output_len), (256, 64));
        let variants: Vec<&str> = plan.variants.iter().map(|v| v.variant.as_str()).collect();
        assert_eq!(variants, ["graph", "eager"]);
        let eager_flag = if fw == "vllm" {
            "--enforce-eager"
        } else {
            "--disable-cuda-graph"
        };
        assert!(!plan.variants[0].argv.iter().any(|a| a == eager_flag));
        assert!(plan.variants[1].argv.iter().any(|a| a == eager_flag));
        if fw == "vllm" {
            assert!(
                plan.variants[0]
                    .argv
                    .iter()
                    .any(|a| a == "--profiler-config")
            );
        } else {
            assert!(
                plan.variants[0]
                    .env_added
                    .contains_key("SGLANG_TORCH_PROFILER_DIR")
            );
        }

        let st = run_launch(&root, fw);
        if st.status != JobStatus::Succeeded {
            let job_log = std::fs::read_to_string(&st.log_path).unwrap_or_default();
            let dir = paths.profile_stage_dir(0, fw, "x");
            let dir = dir.parent().unwrap();
            let logs: String = ["graph", "eager"]
                .iter()
                .map(|v| {
                    let t = std::fs::read_to_string(dir.join(format!("server-{v}.log")))
                        .unwrap_or_default();
                    let tail: Vec<&str> = t.lines().rev().take(30).collect();
                    format!(
                        "--- server-{v}.log (last lines, reversed)\n{}\n",
                        tail.join("\n")
                    )
                })
                .collect();
            panic!("{fw}: {:?}\n--- job log\n{job_log}\n{logs}", st.error);
        }
        let caps = captures(&root, fw);
        for (stage, cap, _) in &caps {
            let s = cap;
            assert_eq!(s["concurrency"], CONCURRENCY, "{fw} {stage}: {cap:#}");
            assert_eq!(
                s["requests_ok"], s["requests_sent"],
                "{fw} {stage}: {cap:#}"
            );
            assert!(
                s["window"]["steps"].as_u64().unwrap() >= 1,
                "{fw} {stage}: {cap:#}"
            );
            if stage.starts_with("decode") {
                let b = s["window"]["window_batch"].as_f64().unwrap();
                assert!(
                    (b - CONCURRENCY as f64).abs() <= 0.2 * CONCURRENCY as f64,
                    "{fw} {stage}: the window saw batch {b}, not ~{CONCURRENCY}"
                );
                assert_eq!(s["window"]["representative"], true, "{fw} {stage}: {cap:#}");
                // The campaign's max length (256 + 64) is shorter than the output that
                // would outlast the window: the load stays within it (the server refuses
                // longer requests) and says so.
                assert!(
                    s["notes"].to_string().contains("capped at 192 tokens"),
                    "{fw} {stage}: {cap:#}"
                );
            } else {
                // As on the H200 (80 prompts of 1000 tokens, 8192-token steps), a wave
                // of prompts outgrows a step: 16 x 256 tokens in steps of 1024 tokens
                // hold 4 prompts each.
                let b = s["window"]["window_batch"].as_f64().unwrap();
                assert!((3.2..=4.8).contains(&b), "{fw} {stage}: {cap:#}");
                assert_eq!(s["window"]["representative"], true, "{fw} {stage}: {cap:#}");
            }
            trace_in(&paths.profile_stage_dir(0, fw, stage));
        }
        // Each server was torn down: its log is complete and its port answers no more.
        for v in ["graph", "eager"] {
            let log = paths
                .profile_stage_dir(0, fw, "x")
                .parent()
                .unwrap()
                .join(format!("server-{v}.log"));
            assert!(log.is_file(), "{}", log.display());
        }

        // Resume: everything is done; nothing is launched, no capture is rewritten.
        let t0 = std::time::Instant::now();
        let again = run_launch(&root, fw);
        assert_eq!(again.status, JobStatus::Succeeded, "{:?}", again.error);
        assert_eq!(
            again.result.as_ref().unwrap()["captured"],
            json!([]),
            "{fw}: a resumed job captured again"
        );
        assert!(
            t0.elapsed().as_secs() < 10,
            "{fw}: resume launched a server"
        );
        let after = captures(&root, fw);
        for ((s, _, m0), (_, _, m1)) in caps.iter().zip(&after) {
            assert_eq!(m0, m1, "{fw} {s}: capture.json was rewritten on resume");
        }
    }

    // profile_tables on a framework's round directory takes the eager twin as the mapping.
    for fw in ["vllm", "sglang"] {
        let out = tmp.path().join(format!("tables-{fw}"));
        let (ok, rep, err) = cli(
            "profile-tables",
            &json!({"trace": paths.profile_stage_dir(0, fw, "decode"), "out_dir": out}),
        );
        assert!(ok, "profile_tables {fw}: {err}");
        let text = rep.to_string();
        assert!(
            text.contains("decode-eager"),
            "{fw}: profile_tables did not pick the twin: {rep:#}"
        );
    }
}
