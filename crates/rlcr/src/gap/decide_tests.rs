//! Unit tests of the pure decision.
use super::*;
use vllm_sota_core::results::{
    Correctness, Hardware, MetricsRow, Percentiles, Provenance, Sla, SlaResult, Workload,
};

fn t() -> Thresholds {
    Thresholds {
        thr: 1.0,
        min_repeats: 3,
        confidence: 0.95,
        cap: 10,
        max_cache_gap: 0.05,
    }
}

fn sla() -> Sla {
    Sla {
        max_p50_tpot_ms: Some(50.0),
        min_success_rate: Some(0.99),
        ..Default::default()
    }
}

fn row(id: &str, fw: &str, rps: f64, tpot: f64) -> CandidateRow {
    let metrics = MetricsRow {
        num_requests: 80,
        completed: Some(80),
        success_rate: Some(1.0),
        request_throughput: Some(rps),
        output_throughput: Some(rps * 1000.0),
        tpot_ms: Some(Percentiles {
            p50: Some(tpot),
            ..Default::default()
        }),
        provenance: Provenance::default(),
        ..Default::default()
    };
    CandidateRow {
        candidate_id: format!("{fw}-best"),
        is_baseline: true,
        hardware: Hardware {
            gpu_count: 1,
            gpu_model: Some("NVIDIA H200".into()),
            gpu_ids: vec![0],
            multi_node: false,
        },
        workload: Workload {
            dataset: "random".into(),
            scenario: "chat".into(),
            input_len: 1000,
            output_len: 1000,
            num_prompts: 80,
            endpoint: "/v1/completions".into(),
            ..Default::default()
        },
        ..CandidateRow::measured(id, fw, "chat", metrics, &sla())
    }
}

fn sample(fw: &str, values: &[f64], tpot: f64) -> Vec<Sourced> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut r = row(&format!("{fw}-{i}"), fw, *v, tpot);
            r.repeat = i as u32;
            Sourced {
                file: "benchmark/candidates.jsonl".into(),
                row: r,
            }
        })
        .collect()
}

/// A campaign input: vLLM 10 % ahead of SGLang with three tight repeats each.
fn ahead() -> ScenarioInput {
    ScenarioInput {
        scenario: "chat".into(),
        vllm: sample("vllm", &[11.0, 11.01, 10.99], 12.0),
        competitors: sample("sglang", &[10.0, 10.01, 9.99], 12.0),
        enabled_competitors: vec!["sglang".into()],
        full_workload: Some(WorkloadSize {
            num_prompts: 80,
            input_len: 1000,
            output_len: 1000,
        }),
        ..Default::default()
    }
}

fn decide(inp: &ScenarioInput) -> ScenarioDecision {
    decide_scenario(inp, &t(), RankingMetric::RequestThroughput).decision
}

fn environment_gap(fw: &str) -> Sourced {
    let mut r = row(&format!("{fw}/environment-gap/all/0"), fw, 0.0, 0.0);
    r.scenario = "all".into();
    r.status = RunStatus::Skipped;
    r.metrics = None;
    r.sla = SlaResult::default();
    r.failure_reason = Some(format!("`{fw}` is not installed here: environment gap"));
    Sourced {
        file: "benchmark/candidates.jsonl".into(),
        row: r,
    }
}

#[test]
fn measured_competitor_behind_is_the_only_way_to_stop_beats() {
    let d = decide(&ahead());
    assert_eq!(d.decision, Decision::StopBeats, "{}", d.reason);
    assert_eq!(d.leader.as_ref().unwrap().framework, "sglang");
    assert!(d.competitor_notes.is_empty(), "{:?}", d.competitor_notes);
}

#[test]
fn no_competitor_ran_is_blocked_and_a_waiver_is_stop_external() {
    let mut inp = ahead();
    inp.competitors.clear();
    inp.competitor_notes_rows = vec![environment_gap("sglang")];
    let d = decide(&inp);
    assert_eq!(d.decision, Decision::BlockedCompetitorUnavailable);
    assert_eq!(d.competitor_notes.len(), 1);
    assert_eq!(d.competitor_notes[0].state, "unavailable");
    assert!(d.competitor_notes[0].reason.contains("not installed here"));
    // Failed competitor runs in the scenario are not measurements either.
    let mut failed = sample("sglang", &[10.0], 12.0);
    failed[0].row.status = RunStatus::Failed;
    failed[0].row.metrics = None;
    inp.competitors = failed;
    assert_eq!(
        decide(&inp).decision,
        Decision::BlockedCompetitorUnavailable
    );
    inp.waiver = Some("user: SGLang cannot be installed on this host".into());
    let d = decide(&inp);
    assert_eq!(d.decision, Decision::StopExternal);
    assert!(!d.decision.is_win());
    assert!(d.reason.contains("user waived"), "{}", d.reason);
    // An enabled framework without a single row is unavailable too.
    let mut inp = ahead();
    inp.competitors.clear();
    let d = decide(&inp);
    assert_eq!(d.decision, Decision::BlockedCompetitorUnavailable);
    assert!(d.competitor_notes[0].reason.contains("no row"));
}

#[test]
fn reduced_workloads_inform_but_never_decide() {
    let mut inp = ahead();
    for s in inp.vllm.iter_mut().chain(inp.competitors.iter_mut()) {
        s.row.workload.label = Some("flow-check".into());
    }
    inp.full_workload = None;
    let d = decide(&inp);
    assert_eq!(d.decision, Decision::BlockedReducedWorkload);
    assert_eq!(d.informative_decision, Some(Decision::StopBeats));
    assert!(d.reason.contains("flow-check"), "{}", d.reason);
    // Fewer prompts than the scenario's full rows, without a label.
    let mut inp = ahead();
    for s in inp.vllm.iter_mut().chain(inp.competitors.iter_mut()) {
        s.row.workload.num_prompts = 32;
    }
    let d = decide(&inp);
    assert_eq!(d.decision, Decision::BlockedReducedWorkload);
    assert!(d.reason.contains("32 of 80 prompts"), "{}", d.reason);
    // A reduced vLLM sample against the full competitor rows: not comparable, still no win.
    let mut inp = ahead();
    for s in inp.vllm.iter_mut() {
        s.row.workload.output_len = 128;
    }
    assert_eq!(decide(&inp).decision, Decision::BlockedReducedWorkload);
    // A patch decision on reduced rows stands (patching is not a verdict).
    let mut inp = ahead();
    inp.vllm = sample("vllm", &[8.0, 8.01, 7.99], 12.0);
    for s in inp.vllm.iter_mut().chain(inp.competitors.iter_mut()) {
        s.row.workload.label = Some("flow-check".into());
    }
    assert_eq!(decide(&inp).decision, Decision::Patch);
}

#[test]
fn a_warm_prefix_cache_on_vllm_alone_is_not_like_for_like() {
    let mut inp = ahead();
    for s in &mut inp.vllm {
        let m = s.row.metrics.as_mut().unwrap();
        m.extra.insert(PREFIX_CACHE_HIT_RATE.into(), 0.9);
    }
    let d = decide(&inp);
    assert_eq!(d.decision, Decision::BlockedNotComparable, "{}", d.reason);
    assert!(
        d.reason.contains("prefix-cache hit rate 0.90"),
        "{}",
        d.reason
    );
    // Both sides equally warm: comparable again.
    for s in &mut inp.competitors {
        let m = s.row.metrics.as_mut().unwrap();
        m.extra.insert(PREFIX_CACHE_HIT_RATE.into(), 0.88);
    }
    assert_eq!(decide(&inp).decision, Decision::StopBeats);
}

#[test]
fn another_machine_or_workload_is_not_comparable() {
    let mut inp = ahead();
    for s in &mut inp.competitors {
        s.row.hardware.gpu_model = Some("NVIDIA A100".into());
    }
    let d = decide(&inp);
    assert_eq!(d.decision, Decision::BlockedNotComparable);
    assert_eq!(d.competitor_notes[0].state, "not_comparable");
    assert!(d.competitor_notes[0].reason.contains("A100"));
    let mut inp = ahead();
    for s in &mut inp.competitors {
        s.row.workload.dataset = "jsonl:prod.jsonl".into();
    }
    assert_eq!(decide(&inp).decision, Decision::BlockedNotComparable);
}

#[test]
fn no_sla_passing_framework_is_never_a_win() {
    let mut inp = ahead();
    // Both break the 50 ms TPOT SLA; vLLM is 10 % faster on throughput.
    inp.vllm = sample("vllm", &[11.0, 11.01, 10.99], 70.0);
    inp.competitors = sample("sglang", &[10.0, 10.01, 9.99], 80.0);
    let d = decide(&inp);
    assert_eq!(d.decision, Decision::Patch);
    assert!(d.no_sla_pass);
    assert!(
        d.reason.starts_with("no framework passes the SLA"),
        "{}",
        d.reason
    );
    assert!(d.ci_low_pct.is_none(), "throughput is not compared");
}

#[test]
fn sla_pass_against_a_measured_failing_competitor_needs_repeats() {
    let mut inp = ahead();
    inp.competitors = sample("sglang", &[12.0, 12.01, 11.99], 80.0);
    inp.vllm = sample("vllm", &[9.0], 12.0);
    let d = decide(&inp);
    assert_eq!(d.decision, Decision::Rerun);
    assert_eq!(d.additional_runs_needed, Some(2));
    inp.vllm = sample("vllm", &[9.0, 9.01, 8.99], 12.0);
    assert_eq!(decide(&inp).decision, Decision::StopBeats);
}

#[test]
fn patched_rows_need_the_checkouts_commit_and_a_passing_probe() {
    let mut inp = ahead();
    inp.base_commit = Some("base".into());
    inp.checkout_head = Some("patched".into());
    // Rows of the unpatched base while the checkout holds a patch.
    for s in &mut inp.vllm {
        s.row.vllm_commit = Some("base".into());
    }
    let d = decide(&inp);
    assert_eq!(d.decision, Decision::Rerun);
    assert!(
        d.reason
            .contains("measured vLLM commit base, but the checkout is at patched"),
        "{}",
        d.reason
    );
    // Rows naming no commit cannot prove they measured the patch.
    for s in &mut inp.vllm {
        s.row.vllm_commit = None;
    }
    assert_eq!(decide(&inp).decision, Decision::Rerun);
    // The patched commit without a probe result.
    for s in &mut inp.vllm {
        s.row.vllm_commit = Some("patched".into());
    }
    let d = decide(&inp);
    assert_eq!(d.decision, Decision::Rerun);
    assert!(
        d.reason.contains("without a correctness probe"),
        "{}",
        d.reason
    );
    // A patch that skips work: faster, but the probe fails.
    for s in &mut inp.vllm {
        s.row.correctness = Some(Correctness {
            probes: 8,
            matched: 3,
            match_rate: 0.375,
            passed: false,
            detail: None,
        });
    }
    let d = decide(&inp);
    assert_eq!(d.decision, Decision::Patch);
    assert!(
        d.reason.contains("fails the greedy correctness probe"),
        "{}",
        d.reason
    );
    for s in &mut inp.vllm {
        s.row.correctness = Some(Correctness {
            probes: 8,
            matched: 8,
            match_rate: 1.0,
            passed: true,
            detail: None,
        });
    }
    assert_eq!(decide(&inp).decision, Decision::StopBeats);
}

#[test]
fn an_improvement_inside_the_noise_is_not_a_win() {
    let mut inp = ahead();
    // +0.5 % with tight repeats: tied, not beats; one lucky run is a rerun.
    inp.vllm = sample("vllm", &[10.05, 10.06, 10.04], 12.0);
    assert_eq!(decide(&inp).decision, Decision::StopTied);
    inp.vllm = sample("vllm", &[10.5], 12.0);
    assert_eq!(decide(&inp).decision, Decision::Rerun);
}

#[test]
fn overall_never_wins_by_default() {
    assert_eq!(overall(&[]).0, Decision::Rerun);
    let with = |ds: &[Decision]| -> Decision {
        let v: Vec<ScenarioDecision> = ds
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let mut s = blank(&format!("s{i}"));
                s.decision = *d;
                s
            })
            .collect();
        overall(&v).0
    };
    assert_eq!(
        with(&[Decision::StopBeats, Decision::StopExternal]),
        Decision::StopExternal
    );
    assert_eq!(
        with(&[Decision::StopBeats, Decision::BlockedReducedWorkload]),
        Decision::BlockedReducedWorkload
    );
    assert_eq!(
        with(&[Decision::BlockedCompetitorUnavailable, Decision::Rerun]),
        Decision::Rerun
    );
    assert_eq!(
        with(&[Decision::StopBeats, Decision::StopTied]),
        Decision::StopTied
    );
    assert_eq!(
        with(&[Decision::StopBeats, Decision::StopBeats]),
        Decision::StopBeats
    );
}
