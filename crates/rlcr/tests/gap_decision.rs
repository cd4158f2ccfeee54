//! gap_decision on constructed rows (every decision, the repeat logic, the two-rounds
//! rule, profiling choices) and on rows imported from real `vllm bench serve` files.

mod common;

use common::*;
use serde_json::{Value, json};
use vllm_sota_core::layout::CampaignPaths;
use vllm_sota_core::results::{RowRef, Sla};
use vllm_sota_core::{Tool, ToolContext};
use vllm_sota_rlcr::stats;
use vllm_sota_rlcr::{
    Decision, GapDecision, GapDecisionReport, GapDecisionRequest, StopClaim, StopClaimKind,
};

fn setup(baseline: &[vllm_sota_core::results::CandidateRow]) -> (tempfile::TempDir, CampaignPaths) {
    let dir = tempfile::tempdir().unwrap();
    let paths = make_campaign(
        dir.path(),
        &campaign_record(None, None, &["vllm", "sglang", "tensorrt_llm"]),
    );
    write_rows(&paths.candidates(), baseline);
    (dir, paths)
}

/// The fixed baseline of one chat scenario: SGLang and vLLM repeats (candidates `sg`, `vl`).
fn sg_vs_vl(sglang: &[f64], vllm: &[f64]) -> Vec<vllm_sota_core::results::CandidateRow> {
    let mut base = repeats("sg", "sglang", "sg", "chat", sglang);
    base.extend(repeats("vl", "vllm", "vl", "chat", vllm));
    base
}

fn request(paths: &CampaignPaths, round: u32, current_files: &[&str]) -> GapDecisionRequest {
    serde_json::from_value(json!({
        "campaign_dir": paths.root,
        "round": round,
        "current_files": current_files,
    }))
    .unwrap()
}

fn decide(req: GapDecisionRequest) -> GapDecisionReport {
    GapDecision::run(req, &ToolContext::new()).unwrap()
}

fn lineage(paths: &CampaignPaths) -> Vec<Value> {
    vllm_sota_core::fsx::read_jsonl(&paths.lineage()).unwrap()
}

#[test]
fn behind_with_tight_repeats_is_patch_and_profiles_vllm_and_leader() {
    let mut base = repeats("sg", "sglang", "sg-best", "chat", &[10.0, 10.05, 9.95]);
    base.extend(repeats(
        "vl0",
        "vllm",
        "vl-best",
        "chat",
        &[9.0, 9.02, 8.98],
    ));
    let (_d, paths) = setup(&base);
    write_rows(
        &paths.revalidation(1),
        &repeats("vl", "vllm", "vl-best", "chat", &[9.0, 9.05, 8.95]),
    );
    let r = decide(request(
        &paths,
        2,
        &["benchmark/revalidation/round-1.jsonl"],
    ));
    let s = &r.scenarios[0];
    assert_eq!(s.decision, Decision::Patch, "{}", s.reason);
    assert_eq!(r.decision, Decision::Patch);
    // (9.0 - 10.0) / 10.0 = -10 %.
    assert!((s.throughput_delta_pct.unwrap() + 10.0).abs() < 1e-9);
    assert!(s.ci_high_pct.unwrap() < -1.0 && s.ci_low_pct.unwrap() < s.ci_high_pct.unwrap());
    assert!(s.enough_repeats);
    assert_eq!(s.leader.as_ref().unwrap().framework, "sglang");
    assert_eq!(s.vllm.as_ref().unwrap().n, 3);
    assert_eq!(r.frameworks_to_profile, vec!["vllm", "sglang"]);
    let shapes = r.profile_shapes.as_ref().unwrap();
    assert_eq!(
        (
            shapes.prefill_input_len,
            shapes.prefill_output_len,
            shapes.decode_input_len,
            shapes.decode_output_len
        ),
        (1000, 1, 1, 1000)
    );
    // Recorded: lineage row and the decision file.
    let l = lineage(&paths);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0]["kind"], "gap_decision");
    assert_eq!(l[0]["round"], 2);
    assert_eq!(l[0]["decision"], "patch");
    assert_eq!(l[0]["scenarios"][0]["vllm_mean"].as_f64().unwrap(), 9.0);
    assert!(
        paths
            .root
            .join("analysis/round-2/gap-decision.md")
            .is_file()
    );
    assert!(
        paths
            .root
            .join("analysis/round-2/gap-decision.json")
            .is_file()
    );
    // Prior best is the baseline vLLM (9.0); the current mean is 9.0: 0 % improvement.
    assert!(r.geomean_improvement_pct.unwrap().abs() < 1e-9);
}

#[test]
fn vllm_failing_sla_where_leader_passes_is_patch() {
    let mut base = vec![row("sg", "sglang", "sg", "chat", 9.0, 20.0)];
    // vLLM is faster but its p50 TPOT (60 ms) breaks the 50 ms SLA.
    base.push(row("vl", "vllm", "vl", "chat", 10.0, 60.0));
    let (_d, paths) = setup(&base);
    let r = decide(request(&paths, 1, &[]));
    let s = &r.scenarios[0];
    assert_eq!(s.decision, Decision::Patch);
    assert!(!s.vllm_passes_sla);
    assert!(s.reason.contains("p50 TPOT ms 60.00 > 50"), "{}", s.reason);
    assert!(s.reason.contains("sglang sg passes"), "{}", s.reason);
    assert!(r.current_source.contains("fixed baseline"));
    // p50 TPOT delta: (60 - 20) / 20 = +200 %.
    assert!((s.p50_tpot_delta_pct.unwrap() - 200.0).abs() < 1e-9);
    // Round 1 measures no improvement.
    assert!(r.geomean_improvement_pct.is_none());
}

#[test]
fn ahead_beyond_threshold_after_repeats_is_stop_beats() {
    let base = sg_vs_vl(&[10.0, 10.02, 9.98], &[10.5, 10.52, 10.48]);
    let (_d, paths) = setup(&base);
    let r = decide(request(&paths, 1, &[]));
    assert_eq!(
        r.scenarios[0].decision,
        Decision::StopBeats,
        "{}",
        r.scenarios[0].reason
    );
    assert!(r.scenarios[0].ci_low_pct.unwrap() > 1.0);
    assert_eq!(r.decision, Decision::StopBeats);
    assert!(r.frameworks_to_profile.is_empty());
    assert!(r.profile_shapes.is_none());
}

#[test]
fn inside_threshold_after_repeats_is_stop_tied() {
    let base = sg_vs_vl(&[10.0, 10.01, 9.99], &[10.02, 10.0, 9.98]);
    let (_d, paths) = setup(&base);
    let r = decide(request(&paths, 1, &[]));
    let s = &r.scenarios[0];
    assert_eq!(s.decision, Decision::StopTied, "{}", s.reason);
    assert!(s.ci_low_pct.unwrap() >= -1.0 && s.ci_high_pct.unwrap() <= 1.0);
    assert_eq!(r.decision, Decision::StopTied);
}

#[test]
fn single_runs_inside_threshold_rerun_to_min_repeats() {
    let base = vec![
        row("sg", "sglang", "sg", "chat", 10.0, 12.0),
        row("vl", "vllm", "vl", "chat", 10.05, 12.0),
    ];
    let (_d, paths) = setup(&base);
    let r = decide(request(&paths, 1, &[]));
    let s = &r.scenarios[0];
    assert_eq!(s.decision, Decision::Rerun);
    assert!(!s.enough_repeats);
    // No spread is known yet: reach the 3 repeats the policy requires.
    assert_eq!(s.additional_runs_needed, Some(2));
    assert!(s.ci_low_pct.is_none());
    // A single run ahead by 5 % is not enough to stop either.
    let base = vec![
        row("sg", "sglang", "sg", "chat", 10.0, 12.0),
        row("vl", "vllm", "vl", "chat", 10.5, 12.0),
    ];
    let (_d2, paths2) = setup(&base);
    let mut req = request(&paths2, 1, &[]);
    req.record = false;
    let r2 = decide(req);
    assert_eq!(r2.scenarios[0].decision, Decision::Rerun);
    // record: false leaves the lineage and analysis/ untouched.
    assert!(!r2.recorded && r2.decision_path.is_none());
    assert!(lineage(&paths2).is_empty());
    assert!(!paths2.root.join("analysis/round-1").exists());
    // But a single run behind by 5 % is a patch.
    let base = vec![
        row("sg", "sglang", "sg", "chat", 10.0, 12.0),
        row("vl", "vllm", "vl", "chat", 9.5, 12.0),
    ];
    let (_d3, paths3) = setup(&base);
    assert_eq!(
        decide(request(&paths3, 1, &[])).scenarios[0].decision,
        Decision::Patch
    );
}

#[test]
fn wide_spread_reruns_with_the_computed_number_of_runs() {
    let leader = [10.0, 10.05, 9.95];
    let vllm = [10.0, 10.08, 9.92];
    let base = sg_vs_vl(&leader, &vllm);
    let (_d, paths) = setup(&base);
    let r = decide(request(&paths, 1, &[]));
    let s = &r.scenarios[0];
    assert_eq!(s.decision, Decision::Rerun, "{}", s.reason);
    assert!(s.reason.contains("crosses"), "{}", s.reason);
    let k = s.additional_runs_needed.unwrap();
    assert_eq!(s.resolvable_within_cap, Some(true));
    // Check the number: with k more runs per side the projected half-width is below the
    // distance to the nearest ±1 % boundary; with k - 1 it is not.
    let (mv, sv) = (
        stats::mean(&vllm).unwrap(),
        stats::sample_sd(&vllm).unwrap(),
    );
    let (mc, sc) = (
        stats::mean(&leader).unwrap(),
        stats::sample_sd(&leader).unwrap(),
    );
    let d = (mv - mc) / mc * 100.0;
    let distance = (d - 1.0).abs().min((d + 1.0).abs());
    let half = |k: u32| {
        let w = stats::welch_from_summary(mv, sv, 3 + k as usize, mc, sc, 3 + k as usize, 0.95)
            .unwrap();
        w.t_critical * w.standard_error / mc * 100.0
    };
    assert!(half(k) < distance, "k={k}");
    assert!(
        k == 1 || half(k - 1) >= distance,
        "k={k} is not the smallest"
    );
}

#[test]
fn gap_sitting_on_the_threshold_is_unresolvable_within_the_cap() {
    // vLLM exactly 1 % behind with spread: no number of runs separates it from the boundary.
    let base = sg_vs_vl(&[10.0, 10.2, 9.8], &[9.9, 10.1, 9.7]);
    let (_d, paths) = setup(&base);
    let s = &decide(request(&paths, 1, &[])).scenarios[0];
    assert_eq!(s.decision, Decision::Rerun);
    assert_eq!(s.resolvable_within_cap, Some(false));
    assert_eq!(s.additional_runs_needed, Some(10));
    assert!(s.reason.contains("boundary"), "{}", s.reason);
}

#[test]
fn both_competitors_ahead_profiles_both_and_one_within_threshold_does_not() {
    let mut base = repeats("sg", "sglang", "sg", "chat", &[12.0, 12.01, 11.99]);
    base.extend(repeats(
        "trt",
        "tensorrt_llm",
        "trt",
        "chat",
        &[11.5, 11.51, 11.49],
    ));
    base.extend(repeats("vl", "vllm", "vl", "chat", &[10.0, 10.01, 9.99]));
    let (_d, paths) = setup(&base);
    let r = decide(request(&paths, 1, &[]));
    assert_eq!(
        r.frameworks_to_profile,
        vec!["vllm", "sglang", "tensorrt_llm"]
    );
    assert_eq!(r.scenarios[0].competitors.len(), 2);

    let mut base = repeats("sg", "sglang", "sg", "chat", &[12.0, 12.01, 11.99]);
    base.extend(repeats(
        "trt",
        "tensorrt_llm",
        "trt",
        "chat",
        &[10.05, 10.06, 10.04],
    ));
    base.extend(repeats("vl", "vllm", "vl", "chat", &[10.0, 10.01, 9.99]));
    let (_d2, paths2) = setup(&base);
    assert_eq!(
        decide(request(&paths2, 1, &[])).frameworks_to_profile,
        vec!["vllm", "sglang"]
    );
}

#[test]
fn overall_patch_wins_and_slowest_scenario_sets_profile_shapes() {
    let mut base = repeats("sgc", "sglang", "sg", "chat", &[10.0, 10.01, 9.99]);
    base.extend(repeats("vlc", "vllm", "vl", "chat", &[9.5, 9.51, 9.49]));
    base.extend(repeats("sgs", "sglang", "sg", "summ", &[2.0, 2.001, 1.999]));
    base.extend(repeats("vls", "vllm", "vl", "summ", &[1.6, 1.601, 1.599]));
    let (_d, paths) = setup(&base);
    let r = decide(request(&paths, 1, &[]));
    assert_eq!(r.decision, Decision::Patch);
    // summ: -20 %, chat: -5 %: summ is the slow scenario (8000 → 1000).
    let shapes = r.profile_shapes.unwrap();
    assert_eq!(shapes.scenario, "summ");
    assert_eq!(
        (shapes.prefill_input_len, shapes.decode_output_len),
        (8000, 1000)
    );
}

fn seed_lineage(paths: &CampaignPaths, rows: &[Value]) {
    for r in rows {
        vllm_sota_core::fsx::append_jsonl(&paths.lineage(), r).unwrap();
    }
}

/// Round 2's revalidation rows (vLLM at `values`), then round 3's decision on them.
fn round_3_after_round_2(values: &[f64], paths: &CampaignPaths) -> GapDecisionReport {
    write_rows(
        &paths.revalidation(2),
        &repeats("vl2", "vllm", "vl", "chat", values),
    );
    decide(request(paths, 3, &["benchmark/revalidation/round-2.jsonl"]))
}

#[test]
fn two_consecutive_weak_rounds_expand_research() {
    let base = sg_vs_vl(&[12.0, 12.01, 11.99], &[10.0, 10.01, 9.99]);
    let (_d, paths) = setup(&base);
    // Round 2's decision measured +0.4 % with vLLM at 10.0.
    seed_lineage(
        &paths,
        &[
            json!({"kind": "gap_decision", "round": 2, "at": "2026-11-29T14:00:00Z", "decision": "patch", "metric": "request_throughput",
        "geomean_improvement_pct": 0.4, "scenarios": [{"scenario": "chat", "vllm_mean": 10.0}]}),
        ],
    );
    // Round 3: vLLM at 10.05, +0.5 % over the prior best 10.0.
    let r = round_3_after_round_2(&[10.05, 10.06, 10.04], &paths);
    assert!(
        (r.geomean_improvement_pct.unwrap() - 0.5).abs() < 1e-9,
        "{:?}",
        r.geomean_improvement_pct
    );
    assert!(r.expand_research);
    let why = r.expand_research_reason.unwrap();
    assert!(
        why.contains("round 2: +0.40%") && why.contains("round 3: +0.50%"),
        "{why}"
    );
    assert_eq!(lineage(&paths).last().unwrap()["expand_research"], true);
}

#[test]
fn a_strong_previous_round_or_a_gap_in_rounds_resets_the_rule() {
    let base = sg_vs_vl(&[12.0, 12.01, 11.99], &[10.0, 10.01, 9.99]);
    let (_d, paths) = setup(&base);
    seed_lineage(
        &paths,
        &[
            json!({"kind": "gap_decision", "round": 2, "decision": "patch", "metric": "request_throughput",
        "geomean_improvement_pct": 3.0, "scenarios": [{"scenario": "chat", "vllm_mean": 10.3}]}),
        ],
    );
    let r = round_3_after_round_2(&[10.32, 10.33, 10.31], &paths);
    // Prior best is round 2's 10.3: +0.194 %, weak, but round 2 was strong.
    assert!((r.geomean_improvement_pct.unwrap() - (10.32 / 10.3 - 1.0) * 100.0).abs() < 1e-9);
    assert!(!r.expand_research);

    // A weak round 1 followed by a weak round 3 (no round 2 recorded) is not "consecutive".
    let (_d2, paths2) = setup(&base);
    seed_lineage(
        &paths2,
        &[
            json!({"kind": "gap_decision", "round": 1, "decision": "patch", "metric": "request_throughput",
        "geomean_improvement_pct": 0.1, "scenarios": [{"scenario": "chat", "vllm_mean": 10.0}]}),
        ],
    );
    assert!(!round_3_after_round_2(&[10.02, 10.03, 10.01], &paths2).expand_research);
}

#[test]
fn explicit_row_refs_select_the_current_rows() {
    let base = sg_vs_vl(&[10.0, 10.01, 9.99], &[9.0, 9.01, 8.99]);
    let (_d, paths) = setup(&base);
    let mut reval = repeats("a", "vllm", "vl", "chat", &[11.0, 11.01, 10.99]);
    reval.extend(repeats("b", "vllm", "vl-other", "chat", &[5.0]));
    write_rows(&paths.revalidation(1), &reval);
    let refs: Vec<RowRef> = ["a-0", "a-1", "a-2"]
        .iter()
        .map(|id| RowRef {
            file: "benchmark/revalidation/round-1.jsonl".into(),
            row_id: id.to_string(),
        })
        .collect();
    let mut req = request(&paths, 2, &[]);
    req.current_rows = refs;
    let r = decide(req);
    assert_eq!(r.scenarios[0].vllm.as_ref().unwrap().candidate_id, "vl");
    assert_eq!(r.scenarios[0].decision, Decision::StopBeats);
    // +22.2 % over the prior best vLLM (the baseline's 9.0).
    assert!((r.geomean_improvement_pct.unwrap() - (11.0 / 9.0 - 1.0) * 100.0).abs() < 1e-9);
    // An unknown row id is an error naming it.
    let mut bad = request(&paths, 2, &[]);
    bad.current_rows = vec![RowRef {
        file: "benchmark/revalidation/round-1.jsonl".into(),
        row_id: "nope".into(),
    }];
    let e = GapDecision::run(bad, &ToolContext::new())
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope") && e.contains("round-1.jsonl"), "{e}");
}

/// Round 1's decision with a stop claim of `kind` resting on `evidence` files.
fn decide_with_claim(
    paths: &CampaignPaths,
    kind: StopClaimKind,
    reason: &str,
    evidence: &[&str],
) -> GapDecisionReport {
    let mut req = request(paths, 1, &[]);
    req.stop_claim = Some(StopClaim {
        kind,
        reason: reason.into(),
        evidence: evidence.iter().map(|e| e.to_string()).collect(),
    });
    decide(req)
}

#[test]
fn stop_claims_need_existing_evidence() {
    let base = sg_vs_vl(&[10.0, 10.01, 9.99], &[9.0, 9.01, 8.99]);
    let (_d, paths) = setup(&base);
    write_written(
        &paths.root.join("benchmark/logs/trtllm-unsupported.log"),
        "TensorRT-LLM pytorch backend: model unsupported\n",
    );
    let r = decide_with_claim(
        &paths,
        StopClaimKind::External,
        "FP8 kernels unavailable on this driver",
        &["benchmark/logs/trtllm-unsupported.log"],
    );
    assert_eq!(r.decision, Decision::StopExternal);
    assert_eq!(
        r.scenarios[0].decision,
        Decision::Patch,
        "per-scenario decisions stay data-driven"
    );
    assert!(r.stop_claim.as_ref().unwrap().accepted);

    // at_limit with evidence outside profiles/analysis/ncu, and a missing file: rejected.
    let r = decide_with_claim(
        &paths,
        StopClaimKind::AtLimit,
        "at the HBM roofline",
        &[
            "benchmark/logs/trtllm-unsupported.log",
            "profiles/round-1/vllm/decode/tables.md",
        ],
    );
    assert_eq!(r.decision, Decision::Patch);
    let v = r.stop_claim.unwrap();
    assert!(!v.accepted);
    assert!(
        v.detail
            .contains("profiles/round-1/vllm/decode/tables.md does not exist"),
        "{}",
        v.detail
    );

    // at_limit with the profile evidence on disk: accepted.
    write_written(
        &paths
            .profile_stage_dir(1, "vllm", "decode")
            .join("tables.md"),
        "| Kernel | GPU time % |\n|---|---|\n| nvjet | 61.0 |\n",
    );
    let r = decide_with_claim(
        &paths,
        StopClaimKind::AtLimit,
        "decode GEMMs at 92% of HBM bandwidth",
        &["profiles/round-1/vllm/decode/tables.md"],
    );
    assert_eq!(r.decision, Decision::StopAtLimit);
    assert!(
        r.reason.contains("decode GEMMs at 92% of HBM bandwidth"),
        "{}",
        r.reason
    );
    assert_eq!(lineage(&paths).last().unwrap()["decision"], "stop_at_limit");

    // A claim is not used when the data already says stop.
    let base = sg_vs_vl(&[10.0, 10.01, 9.99], &[11.0, 11.01, 10.99]);
    let (_d2, paths2) = setup(&base);
    write_written(&paths2.root.join("analysis/limit.md"), "roofline\n");
    let r = decide_with_claim(&paths2, StopClaimKind::AtLimit, "r", &["analysis/limit.md"]);
    assert_eq!(r.decision, Decision::StopBeats);
    assert!(r.stop_claim.unwrap().detail.contains("not needed"));
}

#[test]
fn bad_input_gives_errors_naming_the_problem() {
    let base = vec![row("sg", "sglang", "sg", "chat", 10.0, 12.0)];
    let (_d, paths) = setup(&base);
    let e = GapDecision::run(request(&paths, 0, &[]), &ToolContext::new())
        .unwrap_err()
        .to_string();
    assert!(e.contains("round"), "{e}");
    let e = GapDecision::run(
        request(&paths, 1, &["benchmark/revalidation/round-9.jsonl"]),
        &ToolContext::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("current_files") && e.contains("round-9.jsonl"),
        "{e}"
    );
    let mut req = request(&paths, 1, &[]);
    req.min_repeats = Some(1);
    let e = GapDecision::run(req, &ToolContext::new())
        .unwrap_err()
        .to_string();
    assert!(e.contains("min_repeats"), "{e}");
    // Unknown request fields are rejected by name.
    let e = serde_json::from_value::<GapDecisionRequest>(
        json!({"campaign_dir": "/x", "round": 1, "curent_files": []}),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("curent_files"), "{e}");
    // A corrupt candidates line names the file and line.
    let text = std::fs::read_to_string(paths.candidates()).unwrap();
    std::fs::write(
        paths.candidates(),
        format!("{text}{{\"row_id\": 3}}\n{text}"),
    )
    .unwrap();
    let e = format!(
        "{:#}",
        GapDecision::run(request(&paths, 1, &[]), &ToolContext::new()).unwrap_err()
    );
    assert!(e.contains("candidates.jsonl:2"), "{e}");
    // Not a campaign.
    let other = tempfile::tempdir().unwrap();
    let e = GapDecision::run(
        serde_json::from_value(json!({"campaign_dir": other.path(), "round": 1})).unwrap(),
        &ToolContext::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("campaign_init"), "{e}");
}

/// A vLLM row from a real `vllm bench serve --save-result` file, imported with the
/// benchmark crate's importer.
fn imported_row(
    file: &str,
    scenario: &str,
    id: &str,
    round: u32,
    sla: &Sla,
) -> vllm_sota_core::results::CandidateRow {
    let path = vllm_sota_core::refs::fixtures_dir()
        .join("h200-vllm-0.26/bench")
        .join(file);
    let runs =
        vllm_sota_bench::import_native_file(&path, vllm_sota_bench::NativeFormat::VllmBenchServe)
            .unwrap();
    assert_eq!(runs.len(), 1);
    let m = runs[0].row.clone();
    let mut r = row(id, "vllm", "vllm-default", scenario, 0.0, 0.0);
    r.round = round;
    r.workload.num_prompts = m.num_requests;
    r.workload.input_len = m.total_input_tokens.unwrap() / m.completed.unwrap();
    r.workload.output_len = m.total_output_tokens.unwrap() / m.completed.unwrap();
    r.sla = sla.evaluate(Some(&m));
    r.metrics = Some(m);
    r
}

/// Real `vllm bench serve` results from the H200 fixtures, imported as vLLM rows.
#[test]
fn rows_imported_from_real_vllm_bench_serve_files() {
    let sla = Sla {
        max_p50_ttft_ms: Some(5000.0),
        max_p50_tpot_ms: Some(25.0),
        min_success_rate: Some(0.99),
    };
    let chat = imported_row("chat_1000_1000.json", "chat", "vllm-chat", 0, &sla);
    let summ = imported_row("summ_8000_1000.json", "summ", "vllm-summ", 0, &sla);
    // Facts in the files: chat 4.7396 req/s, p50 TPOT 12.938 ms, 80 × 1000 → 1000; summ 1.6693 req/s, 8000 → 1000.
    assert_eq!(chat.request_throughput(), Some(4.739600832615374));
    assert_eq!(
        chat.metrics.as_ref().unwrap().p50_tpot_ms(),
        Some(12.938208398398391)
    );
    assert_eq!(
        (
            chat.workload.input_len,
            chat.workload.output_len,
            chat.workload.num_prompts
        ),
        (1000, 1000, 80)
    );
    assert_eq!(summ.request_throughput(), Some(1.6693411624501298));
    assert_eq!(summ.workload.input_len, 8000);
    assert_eq!(summ.sla.passed, Some(true));

    // A competitor 5 % faster in chat and 2 % slower in summ (constructed), single runs.
    let mut sg_chat = row(
        "sg-chat",
        "sglang",
        "sg-best",
        "chat",
        4.739600832615374 * 1.05,
        12.0,
    );
    sg_chat.sla = sla.evaluate(sg_chat.metrics.as_ref());
    let mut sg_summ = row(
        "sg-summ",
        "sglang",
        "sg-best",
        "summ",
        1.6693411624501298 * 0.98,
        19.0,
    );
    sg_summ.sla = sla.evaluate(sg_summ.metrics.as_ref());
    // A competitor counts only on the same workload (the summ file holds 40 prompts).
    sg_chat.workload = chat.workload.clone();
    sg_summ.workload = summ.workload.clone();
    let (_d, paths) = setup(&[chat.clone(), summ.clone(), sg_chat, sg_summ]);
    // Current vLLM: the same files imported again as round-1 revalidation rows.
    write_rows(
        &paths.revalidation(1),
        &[
            imported_row("chat_1000_1000.json", "chat", "r1-chat", 1, &sla),
            imported_row("summ_8000_1000.json", "summ", "r1-summ", 1, &sla),
        ],
    );
    let r = decide(request(
        &paths,
        2,
        &["benchmark/revalidation/round-1.jsonl"],
    ));
    let by = |sc: &str| r.scenarios.iter().find(|s| s.scenario == sc).unwrap();
    let c = by("chat");
    assert_eq!(c.decision, Decision::Patch, "{}", c.reason);
    assert!((c.throughput_delta_pct.unwrap() - (1.0 / 1.05 - 1.0) * 100.0).abs() < 1e-9);
    // p50 TPOT: vLLM 12.938 ms vs 12.0 ms; p50 TTFT: vLLM 3900.94 ms vs 300 ms.
    assert!(
        (c.p50_tpot_delta_pct.unwrap() - (12.938208398398391 / 12.0 - 1.0) * 100.0).abs() < 1e-9
    );
    assert!(
        (c.p50_ttft_delta_pct.unwrap() - (3900.9387019999904 / 300.0 - 1.0) * 100.0).abs() < 1e-9
    );
    let s = by("summ");
    assert_eq!(
        s.decision,
        Decision::Rerun,
        "ahead on one run only: {}",
        s.reason
    );
    assert_eq!(s.additional_runs_needed, Some(2));
    assert_eq!(r.decision, Decision::Patch);
    assert_eq!(r.frameworks_to_profile, vec!["vllm", "sglang"]);
    let shapes = r.profile_shapes.unwrap();
    assert_eq!(
        (
            shapes.scenario.as_str(),
            shapes.prefill_input_len,
            shapes.decode_output_len
        ),
        ("chat", 1000, 1000)
    );
    // Same numbers as the baseline: 0 % improvement.
    assert!(r.geomean_improvement_pct.unwrap().abs() < 1e-12);
}

/// The 2-prompt 8000 → 1 file has no decode step: its TPOT is unmeasured, so an SLA on
/// TPOT fails with the reason instead of passing on vLLM's 0.0.
#[test]
fn real_prefill_only_file_has_no_tpot_and_fails_a_tpot_sla() {
    let sla = Sla {
        max_p50_tpot_ms: Some(25.0),
        ..Default::default()
    };
    let r = imported_row(
        "vllm-infqps-concurrency2-dummy-llama-8b-20261129-130124.json",
        "prefill",
        "p",
        0,
        &sla,
    );
    let m = r.metrics.as_ref().unwrap();
    assert!(m.p50_tpot_ms().is_none());
    assert_eq!(m.p50_ttft_ms(), Some(100.8751894999591));
    assert_eq!(r.sla.passed, Some(false));
    assert_eq!(r.sla.reasons, vec!["p50 TPOT ms not measured".to_string()]);
}

#[test]
fn markdown_names_the_decision_and_the_runs_needed() {
    let base = vec![
        row("sg", "sglang", "sg", "chat", 10.0, 12.0),
        row("vl", "vllm", "vl", "chat", 10.05, 12.0),
    ];
    let (_d, paths) = setup(&base);
    let r = decide(request(&paths, 1, &[]));
    let md = GapDecision::markdown(&r);
    assert!(md.contains("**Decision: `rerun`**"), "{md}");
    assert!(md.contains("| chat | `rerun` |"), "{md}");
    let on_disk =
        std::fs::read_to_string(paths.root.join("analysis/round-1/gap-decision.md")).unwrap();
    assert!(
        on_disk.contains("| chat | `rerun` |") && on_disk.contains("# Gap decision: round 1"),
        "{on_disk}"
    );
}
