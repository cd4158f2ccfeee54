//! Tool-level request validation and dry runs (no server launched).

mod common;

use common::*;
use serde_json::json;
use std::path::Path;
use vllm_sota_core::{Tool, ToolContext};
use vllm_sota_fairbench::PreflightOptions;
use vllm_sota_fairbench::{
    FairBenchmark, FairBenchmarkRequest, RevalidateRequest, start_fair_benchmark, start_revalidate,
};

fn inline_config() -> serde_json::Value {
    json!({
        "schema_version": 1,
        "model": {"name": model_dir().display().to_string()},
        "dataset": {"num_prompts": 4, "scenario_names": ["chat"], "input_len": [100], "output_len": [10]},
        "frameworks": {"vllm": {
            "server_command": ["vllm", "serve", "{model}"],
            "help_command": ["cat", vllm_help().display().to_string()],
            "base_server_flags": {"--gpu-memory-utilization": 0.9},
            "search_space": {"max_num_seqs": [64, 128], "--no-such-flag": [true]}
        }}
    })
}

fn req(root: &Path) -> FairBenchmarkRequest {
    FairBenchmarkRequest {
        campaign_dir: root.display().to_string(),
        config_path: None,
        config: Some(inline_config()),
        dry_run: true,
        wait_s: None,
    }
}

fn err(r: anyhow::Result<impl std::fmt::Debug>) -> String {
    format!("{:#}", r.unwrap_err())
}

#[test]
fn dry_run_with_inline_config_writes_help_and_plan() {
    let dir = tempfile::tempdir().unwrap();
    let root = campaign(dir.path());
    let r = start_fair_benchmark(
        req(&root),
        &ToolContext::default(),
        Path::new("/nonexistent"),
        &PreflightOptions {
            skip_gpu_check: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.status, "dry_run");
    // Baseline + max-num-seqs 64 + 128 (spelling `max_num_seqs` → `--max-num-seqs`).
    assert_eq!(r.candidates_planned, 3);
    assert_eq!(r.rows_planned, 3 + 1);
    assert_eq!(r.preflight_rejections.len(), 1);
    assert!(
        r.preflight_rejections[0]
            .reason
            .contains("`--no-such-flag`")
    );
    assert!(root.join("help/vllm_serve_help.txt").is_file());
    assert!(root.join("benchmark/plan.json").is_file());
    let md = FairBenchmark::markdown(&r);
    assert!(
        md.contains("--no-such-flag") && md.contains("| vllm | ready | 3 |"),
        "{md}"
    );
    // The report is a JSON object (MCP output schema).
    assert!(serde_json::to_value(&r).unwrap().is_object());
    // Repeats multiply the measured rows (r0, r1), not the preflight rows.
    let mut rq = req(&root);
    rq.config.as_mut().unwrap()["benchmark"] = json!({"repeats": 2});
    let r2 = start_fair_benchmark(
        rq,
        &ToolContext::default(),
        Path::new("/nonexistent"),
        &PreflightOptions {
            skip_gpu_check: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r2.rows_planned, 3 * 2 + 1);
    let plan: vllm_sota_fairbench::Plan =
        vllm_sota_core::fsx::read_json(&root.join("benchmark/plan.json")).unwrap();
    let ids = vllm_sota_fairbench::planned_row_ids(&plan);
    assert!(
        ids.contains(&"vllm/c02-max-num-seqs=128/chat/r1".to_string()),
        "{ids:?}"
    );
}

#[test]
fn bad_requests_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let root = campaign(dir.path());
    let ctx = ToolContext::default();
    let o = PreflightOptions {
        skip_gpu_check: true,
        ..Default::default()
    };
    let mut r = req(&root);
    r.wait_s = Some(60.0);
    assert!(err(start_fair_benchmark(r, &ctx, Path::new("/x"), &o)).contains("wait_s"));
    let mut r = req(&root);
    r.config_path = Some("b.yaml".into());
    assert!(err(start_fair_benchmark(r, &ctx, Path::new("/x"), &o)).contains("not both"));
    let mut r = req(&root);
    r.config_path = Some("missing.yaml".into());
    r.config = None;
    assert!(err(start_fair_benchmark(r, &ctx, Path::new("/x"), &o)).contains("missing.yaml"));
    let mut r = req(dir.path());
    r.campaign_dir = dir.path().join("nope").display().to_string();
    assert!(err(start_fair_benchmark(r, &ctx, Path::new("/x"), &o)).contains("campaign_init"));
    let mut r = req(&root);
    r.config.as_mut().unwrap()["benchmark"] = json!({"max_concurrency": [0]});
    assert!(
        err(start_fair_benchmark(r, &ctx, Path::new("/x"), &o))
            .contains("benchmark.max_concurrency[0]")
    );
    let mut r = req(&root);
    r.config.as_mut().unwrap()["dataset"]["num_prompts"] = json!("many");
    assert!(
        err(start_fair_benchmark(r, &ctx, Path::new("/x"), &o)).contains("dataset.num_prompts")
    );
    // Without the history notes (or the blocker history_notes records), nothing is benchmarked.
    std::fs::remove_file(root.join("history/model-pr-history-notes.md")).unwrap();
    let e = err(start_fair_benchmark(req(&root), &ctx, Path::new("/x"), &o));
    assert!(
        e.contains("history/model-pr-history-notes.md") && e.contains("run history_notes"),
        "{e}"
    );
    std::fs::write(
        root.join("history/model-pr-history-notes.md"),
        "<!-- vllm-sota:placeholder -->\n# history\n",
    )
    .unwrap();
    let e = err(start_fair_benchmark(req(&root), &ctx, Path::new("/x"), &o));
    assert!(e.contains("run history_notes"), "{e}");
    assert!(!root.join("benchmark/job.json").exists());
    // Unknown request fields are refused (deny_unknown_fields).
    let e = serde_json::from_value::<FairBenchmarkRequest>(json!({"campaign_dir": "x", "wait": 3}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("wait"), "{e}");
}

#[test]
fn a_different_config_never_mixes_into_the_fixed_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let root = campaign(dir.path());
    let ctx = ToolContext::default();
    let o = PreflightOptions {
        skip_gpu_check: true,
        ..Default::default()
    };
    std::fs::write(
        root.join("benchmark/candidates.jsonl"),
        "{\"schema_version\":1,\"row_id\":\"vllm/c00-baseline/chat/r0\",\"framework\":\"vllm\",\"candidate_id\":\"c00-baseline\",\"scenario\":\"chat\",\"status\":\"ok\",\"hardware\":{\"gpu_count\":1},\"workload\":{\"dataset\":\"random\",\"scenario\":\"chat\",\"input_len\":1,\"output_len\":1,\"num_prompts\":1,\"endpoint\":\"/v1/completions\"},\"sla\":{\"passed\":null},\"normalization\":{\"config_hash\":\"0000000000000000\"}}\n",
    )
    .unwrap();
    let e = err(start_fair_benchmark(req(&root), &ctx, Path::new("/x"), &o));
    assert!(
        e.contains("different benchmark config") && e.contains("vllm/c00-baseline/chat/r0"),
        "{e}"
    );
}

#[test]
fn revalidate_requires_a_round_and_a_finished_search() {
    let dir = tempfile::tempdir().unwrap();
    let root = campaign(dir.path());
    let r = |round| RevalidateRequest {
        campaign_dir: root.display().to_string(),
        round,
        repeats: 3,
        include_leader: false,
        scenarios: None,
        vllm_commit: None,
        correctness: true,
        min_match_rate: 1.0,
        wait_s: None,
    };
    let ctx = ToolContext::default();
    assert!(err(start_revalidate(r(0), &ctx, Path::new("/x"))).contains("round"));
    assert!(
        err(start_revalidate(r(1), &ctx, Path::new("/x"))).contains("run fair_benchmark first")
    );
}
