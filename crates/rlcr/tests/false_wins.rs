//! The false-win suite: campaign states that must never yield "vLLM reached SOTA".
//! Each builds a scratch campaign (a git checkout with a committed patch, history notes,
//! profiles, the fixed baseline and round-1 revalidation rows), runs the public tools
//! (gap_decision, then final_report) and checks that neither claims a win.

mod common;

use common::*;
use serde_json::json;
use vllm_sota_core::layout::CampaignPaths;
use vllm_sota_core::results::{CandidateRow, Correctness, RunStatus};
use vllm_sota_core::{Tool, ToolContext};
use vllm_sota_rlcr::{Decision, FinalReport, GapDecision};

struct Built {
    _dir: tempfile::TempDir,
    paths: CampaignPaths,
    base: String,
    head: String,
}

/// A campaign through round 1: checkout with base and patched commits, history notes,
/// profile tables and a layer pipeline (so final_report reports instead of refusing).
fn scratch() -> Built {
    let dir = tempfile::tempdir().unwrap();
    let Scratch {
        repo,
        checkout,
        base,
        paths,
    } = scratch_campaign(dir.path());
    write_written(&paths.history_notes(), HISTORY_NOTES);
    write_written(
        &paths
            .profile_stage_dir(1, "vllm", "decode")
            .join("tables.md"),
        "| Kernel | GPU time % |\n|---|---|\n| nvjet | 40.0 |\n",
    );
    write_written(&paths.layer_pipeline(), "# Layer pipeline\n\nlayer 7\n");
    std::fs::write(
        checkout.join("vllm/model_executor/models/llama.py"),
        "def forward(x):\n    return fused(x)\n",
    )
    .unwrap();
    let head = commit_all(&repo, "patch");
    Built {
        _dir: dir,
        paths,
        base,
        head,
    }
}

/// Revalidation rows as revalidate writes them: the checkout's commit and a passing probe.
fn reval(s: &Built, prefix: &str, values: &[f64]) -> Vec<CandidateRow> {
    let mut rows = repeats(prefix, "vllm", "vl", "chat", values);
    for r in &mut rows {
        r.round = 1;
        r.vllm_commit = Some(s.head.clone());
        r.correctness = Some(passed_probe());
    }
    rows
}

/// gap_decision (round 2, on the round-1 revalidation), then final_report; asserts no win
/// anywhere and returns the decision and the verdict.
fn assert_no_false_win(
    s: &Built,
    baseline: &[CandidateRow],
    post: &[CandidateRow],
) -> (Decision, String) {
    write_rows(&s.paths.candidates(), baseline);
    write_rows(&s.paths.revalidation(1), post);
    let gap = GapDecision::run(
        serde_json::from_value(json!({"campaign_dir": s.paths.root, "round": 2,
            "current_files": ["benchmark/revalidation/round-1.jsonl"]}))
        .unwrap(),
        &ToolContext::new(),
    )
    .unwrap();
    for sc in &gap.scenarios {
        assert!(!sc.decision.is_win(), "{}: {}", sc.scenario, sc.reason);
    }
    assert!(!gap.decision.is_win(), "{:?}: {}", gap.decision, gap.reason);
    let r = FinalReport::run(
        serde_json::from_value(
            json!({"campaign_dir": s.paths.root, "allow_unfinished": true,
            "tests_run": ["cargo test"]}),
        )
        .unwrap(),
        &ToolContext::new(),
    )
    .unwrap();
    assert!(!r.reached_sota, "{}", r.verdict);
    assert!(r.verdict.starts_with("not reached"), "{}", r.verdict);
    let text = std::fs::read_to_string(s.paths.final_report()).unwrap();
    assert!(
        text.contains("**vLLM did not reach SOTA in the target environment**")
            && !text.contains("**vLLM reached SOTA"),
        "{text}"
    );
    (gap.decision, r.verdict)
}

#[test]
fn no_competitor_ran_only_environment_gap_rows() {
    let s = scratch();
    let mut base = repeats("vl0", "vllm", "vl", "chat", &[9.0, 9.01, 8.99]);
    for fw in ["sglang", "tensorrt_llm"] {
        let mut gap = row(&format!("{fw}-gap"), fw, "environment", "all", 0.0, 0.0);
        gap.status = RunStatus::Skipped;
        gap.failure_reason = Some(format!("{fw} is not installed"));
        gap.metrics = None;
        base.push(gap);
    }
    let (d, verdict) = assert_no_false_win(&s, &base, &reval(&s, "r1", &[10.5, 10.52, 10.48]));
    assert_eq!(d, Decision::BlockedCompetitorUnavailable);
    assert!(
        verdict.contains("missing competitor is not a win"),
        "{verdict}"
    );
}

#[test]
fn only_a_flow_check_ran() {
    let s = scratch();
    let mut base = repeats("sg", "sglang", "sg", "chat", &[10.0, 10.02, 9.98]);
    base.extend(repeats("vl0", "vllm", "vl", "chat", &[9.0, 9.01, 8.99]));
    let mut post = reval(&s, "r1", &[10.5, 10.52, 10.48]);
    for r in base.iter_mut().chain(post.iter_mut()) {
        r.workload.label = Some("flow-check".into());
        r.workload.num_prompts = 32;
    }
    let (d, verdict) = assert_no_false_win(&s, &base, &post);
    assert_eq!(d, Decision::BlockedReducedWorkload);
    assert!(verdict.contains("flow-check"), "{verdict}");
}

#[test]
fn vllm_faster_only_with_a_warm_prefix_cache() {
    let s = scratch();
    let mut base = repeats("sg", "sglang", "sg", "chat", &[10.0, 10.02, 9.98]);
    for r in &mut base {
        let m = r.metrics.as_mut().unwrap();
        m.extra.insert("prefix_cache_hit_rate".into(), 0.001);
    }
    base.extend(repeats("vl0", "vllm", "vl", "chat", &[9.0, 9.01, 8.99]));
    let mut post = reval(&s, "r1", &[12.0, 12.02, 11.98]);
    for r in &mut post {
        let m = r.metrics.as_mut().unwrap();
        m.extra.insert("prefix_cache_hit_rate".into(), 0.9);
    }
    let (d, _) = assert_no_false_win(&s, &base, &post);
    assert_eq!(d, Decision::BlockedNotComparable);
}

#[test]
fn revalidation_measured_the_unpatched_code() {
    let s = scratch();
    let mut base = repeats("sg", "sglang", "sg", "chat", &[10.0, 10.02, 9.98]);
    base.extend(repeats("vl0", "vllm", "vl", "chat", &[9.0, 9.01, 8.99]));
    let mut post = reval(&s, "r1", &[10.5, 10.52, 10.48]);
    for r in &mut post {
        r.vllm_commit = Some(s.base.clone());
    }
    let (d, _) = assert_no_false_win(&s, &base, &post);
    assert_eq!(d, Decision::Rerun);
    let md =
        std::fs::read_to_string(s.paths.root.join("analysis/round-2/gap-decision.md")).unwrap();
    assert!(
        md.contains(&format!("measured vLLM commit {}", s.base)),
        "{md}"
    );
}

#[test]
fn a_patch_that_skips_work_fails_the_correctness_probe() {
    let s = scratch();
    let mut base = repeats("sg", "sglang", "sg", "chat", &[10.0, 10.02, 9.98]);
    base.extend(repeats("vl0", "vllm", "vl", "chat", &[9.0, 9.01, 8.99]));
    // Twice as fast because it skips work: the greedy probe no longer matches.
    let mut post = reval(&s, "r1", &[20.0, 20.02, 19.98]);
    for r in &mut post {
        r.correctness = Some(Correctness {
            probes: 8,
            matched: 2,
            match_rate: 0.25,
            passed: false,
            detail: Some("outputs differ from the reference".into()),
        });
    }
    let (d, _) = assert_no_false_win(&s, &base, &post);
    assert_eq!(d, Decision::Patch);
}

#[test]
fn an_improvement_inside_the_noise() {
    let s = scratch();
    let mut base = repeats("sg", "sglang", "sg", "chat", &[10.0, 10.02, 9.98]);
    base.extend(repeats("vl0", "vllm", "vl", "chat", &[9.97, 9.98, 9.96]));
    // One lucky run, +0.5 % over SGLang: inside the 1 % noise threshold, no repeats.
    let (d, _) = assert_no_false_win(&s, &base, &reval(&s, "r1", &[10.05]));
    assert_eq!(d, Decision::Rerun);
}

#[test]
fn no_framework_passes_the_sla() {
    let s = scratch();
    let slow = |mut rows: Vec<CandidateRow>| {
        for r in &mut rows {
            r.metrics.as_mut().unwrap().tpot_ms.as_mut().unwrap().p50 = Some(60.0);
            r.sla = sla().evaluate(r.metrics.as_ref());
        }
        rows
    };
    let mut base = slow(repeats("sg", "sglang", "sg", "chat", &[10.0, 10.02, 9.98]));
    base.extend(slow(repeats(
        "vl0",
        "vllm",
        "vl",
        "chat",
        &[9.0, 9.01, 8.99],
    )));
    let post = slow(reval(&s, "r1", &[12.0, 12.02, 11.98]));
    let (d, verdict) = assert_no_false_win(&s, &base, &post);
    assert_eq!(d, Decision::Patch);
    assert!(verdict.contains("latest decision `patch`"), "{verdict}");
}
