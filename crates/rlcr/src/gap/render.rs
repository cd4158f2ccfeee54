//! The decision as people read it (`analysis/round-N/gap-decision.md`) and as the lineage
//! keeps it (one compact `kind: gap_decision` row per call).

use serde_json::{Value, json};
use std::fmt::Write as _;
use vllm_sota_core::layout::now_rfc3339;
use vllm_sota_core::md::{self, Align};
use vllm_sota_core::results::RankingMetric;

use super::{GapDecisionReport, SideSummary};

pub(crate) fn metric_name(m: RankingMetric) -> &'static str {
    match m {
        RankingMetric::RequestThroughput => "request_throughput",
        RankingMetric::OutputThroughput => "output_throughput",
    }
}

/// The compact lineage row (`kind: gap_decision`).
pub(crate) fn lineage_row(r: &GapDecisionReport) -> Value {
    json!({
        "kind": "gap_decision",
        "round": r.round,
        "at": now_rfc3339(),
        "decision": r.decision.as_str(),
        "reason": r.reason,
        "metric": metric_name(r.ranking_metric),
        "noise_threshold_pct": r.noise_threshold_pct,
        "geomean_improvement_pct": r.geomean_improvement_pct,
        "expand_research": r.expand_research,
        "frameworks_to_profile": r.frameworks_to_profile,
        "profile_shapes": r.profile_shapes,
        "decision_path": r.decision_path,
        "competitor_waiver": r.competitor_waiver,
        "scenarios": r.scenarios.iter().map(|d| json!({
            "scenario": d.scenario,
            "decision": d.decision.as_str(),
            "leader_framework": d.leader.as_ref().map(|l| &l.framework),
            "leader_candidate": d.leader.as_ref().map(|l| &l.candidate_id),
            "leader_mean": d.leader.as_ref().and_then(|l| l.mean),
            "vllm_candidate": d.vllm.as_ref().map(|v| &v.candidate_id),
            "vllm_mean": d.vllm.as_ref().and_then(|v| v.mean),
            "vllm_n": d.vllm.as_ref().map(|v| v.n),
            "vllm_passes_sla": d.vllm_passes_sla,
            "delta_pct": d.throughput_delta_pct,
            "ci_low_pct": d.ci_low_pct,
            "ci_high_pct": d.ci_high_pct,
            "additional_runs_needed": d.additional_runs_needed,
            "vllm_row_refs": d.vllm.as_ref().map(|v| &v.row_refs),
            "informative_decision": d.informative_decision.map(|x| x.as_str()),
            "reduced_workload": d.reduced_workload,
            "no_sla_pass": d.no_sla_pass,
            "leader_passes_sla": d.leader.as_ref().map(|l| l.passes_sla),
            "leader_n": d.leader.as_ref().map(|l| l.n),
            "competitor_notes": d.competitor_notes,
        })).collect::<Vec<_>>(),
    })
}

fn f2(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.2}")).unwrap_or_else(|| "—".into())
}
fn f4(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.4}")).unwrap_or_else(|| "—".into())
}

/// One row per scenario: decision, leader and vLLM with their means, the delta and its
/// interval, the latency deltas, and the runs still needed.
fn scenario_table(r: &GapDecisionReport) -> String {
    let mut t = md::Table::new(&[
        ("Scenario", Align::Left),
        ("Decision", Align::Left),
        ("Leader", Align::Left),
        ("Leader mean (n)", Align::Left),
        ("vLLM", Align::Left),
        ("vLLM mean (n)", Align::Left),
        ("vLLM SLA", Align::Left),
        ("Δ %", Align::Left),
        ("CI %", Align::Left),
        ("p50 TTFT Δ %", Align::Left),
        ("p50 TPOT Δ %", Align::Left),
        ("More runs", Align::Left),
    ]);
    for d in &r.scenarios {
        let side = |x: &Option<SideSummary>| {
            x.as_ref()
                .map(|v| {
                    (
                        format!("{} `{}`", v.framework, v.candidate_id),
                        format!("{} ({})", f4(v.mean), v.n),
                    )
                })
                .unwrap_or(("—".into(), "—".into()))
        };
        let (ln, lm) = side(&d.leader);
        let (vn, vm) = side(&d.vllm);
        let ci = match (d.ci_low_pct, d.ci_high_pct) {
            (Some(a), Some(b)) => format!("{a:.2} .. {b:.2}"),
            _ => "—".into(),
        };
        t.row(&[
            d.scenario.clone(),
            format!("`{}`", d.decision.as_str()),
            ln,
            lm,
            vn,
            vm,
            if d.vllm_passes_sla { "pass" } else { "FAIL" }.to_string(),
            f2(d.throughput_delta_pct),
            ci,
            f2(d.p50_ttft_delta_pct),
            f2(d.p50_tpot_delta_pct),
            d.additional_runs_needed
                .map(|k| k.to_string())
                .unwrap_or_else(|| "—".into()),
        ]);
    }
    t.render()
}

pub(crate) fn render_markdown(r: &GapDecisionReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Gap decision: round {}\n", r.round);
    let _ = writeln!(
        s,
        "**Decision: `{}`** — {}\n",
        r.decision.as_str(),
        r.reason
    );
    let _ = writeln!(
        s,
        "Ranking metric `{}`; noise threshold ±{}%; {} repeats per side before a stop; {:.0}% Welch t-interval on (vLLM − leader) / leader. Current vLLM: {}.\n",
        metric_name(r.ranking_metric),
        r.noise_threshold_pct,
        r.min_repeats,
        r.confidence_level * 100.0,
        r.current_source
    );
    s.push_str(&scenario_table(r));
    let _ = writeln!(s);
    for d in &r.scenarios {
        let _ = writeln!(s, "- **{}**: {}", d.scenario, d.reason);
        for n in &d.competitor_notes {
            let _ = writeln!(s, "  - {} ({}): {}", n.framework, n.state, n.reason);
        }
    }
    if let Some(w) = &r.competitor_waiver {
        let _ = writeln!(s, "\nCompetitor waiver (recorded): {}", w.reason);
    }
    let _ = writeln!(s);
    match r.geomean_improvement_pct {
        Some(g) => {
            let _ = writeln!(
                s,
                "Geomean improvement over the prior best vLLM: **{g:+.2}%**."
            );
        }
        None => {
            let _ = writeln!(
                s,
                "Geomean improvement over the prior best vLLM: not measured (round 1, baseline rows, or no prior value)."
            );
        }
    }
    if let Some(why) = &r.expand_research_reason {
        let _ = writeln!(
            s,
            "\n**Expand code-first research before the next edit.** {why}"
        );
    }
    if !r.frameworks_to_profile.is_empty() {
        let _ = writeln!(s, "\nProfile: {}.", r.frameworks_to_profile.join(", "));
    }
    if let Some(p) = &r.profile_shapes {
        let _ = writeln!(
            s,
            "Profile shapes (slowest scenario `{}`, {}): prefill {} → {} token(s); decode {} → {} token(s).",
            p.scenario,
            p.source,
            p.prefill_input_len,
            p.prefill_output_len,
            p.decode_input_len,
            p.decode_output_len
        );
    }
    if let Some(c) = &r.stop_claim {
        let _ = writeln!(
            s,
            "\nStop claim ({:?}): {} — {}",
            c.kind,
            if c.accepted { "accepted" } else { "not used" },
            c.detail
        );
    }
    if let Some(p) = &r.decision_path {
        let _ = writeln!(s, "\nRecorded: `{p}` and humanize/lineage.jsonl.");
    }
    s
}
