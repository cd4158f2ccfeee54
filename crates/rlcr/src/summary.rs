//! Markdown summaries of the fixed benchmark shared by the plan, the checkpoint and
//! the final report: workload, SLA, hardware, winners with their exact commands, and
//! result tables.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use vllm_sota_core::layout::Campaign;
use vllm_sota_core::md::{self, Align};
use vllm_sota_core::results::{CandidateRow, RankingMetric, compare_rank};

use crate::records::shell_join;

fn f(x: Option<f64>, digits: usize) -> String {
    x.map(|v| format!("{v:.digits$}"))
        .unwrap_or_else(|| "—".into())
}

/// Rows grouped by scenario, each group sorted best first by the ranking rule.
pub(crate) fn by_scenario(
    rows: &[CandidateRow],
    metric: RankingMetric,
) -> BTreeMap<String, Vec<&CandidateRow>> {
    let mut m: BTreeMap<String, Vec<&CandidateRow>> = BTreeMap::new();
    for r in rows {
        m.entry(r.scenario.clone()).or_default().push(r);
    }
    for v in m.values_mut() {
        v.sort_by(|a, b| compare_rank(a, b, metric));
    }
    m
}

/// Best row of each framework per scenario (ranking order).
pub(crate) fn winners(
    rows: &[CandidateRow],
    metric: RankingMetric,
) -> BTreeMap<String, Vec<&CandidateRow>> {
    by_scenario(rows, metric)
        .into_iter()
        .map(|(sc, v)| {
            let mut seen = std::collections::BTreeSet::new();
            (
                sc,
                v.into_iter()
                    .filter(|r| seen.insert(r.framework.clone()))
                    .collect(),
            )
        })
        .collect()
}

pub(crate) fn hardware(rows: &[CandidateRow], campaign: &Campaign) -> String {
    if let Some(r) = rows.iter().find(|r| r.hardware.gpu_model.is_some()) {
        return format!(
            "{} × {}",
            r.hardware.gpu_count,
            r.hardware.gpu_model.as_deref().unwrap_or("GPU")
        );
    }
    let gpu = campaign.environment.get("gpu").and_then(|g| {
        g.as_str()
            .map(str::to_string)
            .or_else(|| g.get("name").and_then(|n| n.as_str()).map(str::to_string))
    });
    match gpu {
        Some(g) => format!("{} × {g}", campaign.gpu_ids.len().max(1)),
        None => format!(
            "{} GPU(s) (ids {:?})",
            campaign.gpu_ids.len(),
            campaign.gpu_ids
        ),
    }
}

pub(crate) fn workload_table(rows: &[CandidateRow]) -> String {
    let mut t = md::Table::new(&[
        ("Scenario", Align::Left),
        ("Dataset", Align::Left),
        ("Input len", Align::Left),
        ("Output len", Align::Left),
        ("Prompts", Align::Left),
        ("Max concurrency", Align::Left),
        ("Request rate", Align::Left),
        ("Endpoint", Align::Left),
    ]);
    let mut seen = std::collections::BTreeSet::new();
    for r in rows {
        if !seen.insert(r.scenario.clone()) {
            continue;
        }
        let w = &r.workload;
        t.row(&[
            r.scenario.clone(),
            w.dataset.to_string(),
            w.input_len.to_string(),
            w.output_len.to_string(),
            w.num_prompts.to_string(),
            w.max_concurrency
                .map(|c| c.to_string())
                .unwrap_or_else(|| "—".into()),
            w.request_rate
                .map(|c| c.to_string())
                .unwrap_or_else(|| "inf".into()),
            w.endpoint.to_string(),
        ]);
    }
    t.render()
}

pub(crate) fn sla_text(rows: &[CandidateRow]) -> String {
    let Some(t) = rows.first().map(|r| &r.sla.thresholds) else {
        return "(no rows)".into();
    };
    let mut parts = Vec::new();
    if let Some(x) = t.max_p50_ttft_ms {
        parts.push(format!("p50 TTFT ≤ {x} ms"));
    }
    if let Some(x) = t.max_p50_tpot_ms {
        parts.push(format!("p50 TPOT ≤ {x} ms"));
    }
    if let Some(x) = t.min_success_rate {
        parts.push(format!("success rate ≥ {x}"));
    }
    if parts.is_empty() {
        "no SLA thresholds recorded".into()
    } else {
        parts.join(", ")
    }
}

/// A results table: one line per row given.
pub(crate) fn results_table(rows: &[&CandidateRow]) -> String {
    let mut t = md::Table::new(&[
        ("Scenario", Align::Left),
        ("Framework", Align::Left),
        ("Candidate", Align::Left),
        ("Round", Align::Left),
        ("Repeat", Align::Left),
        ("Status", Align::Left),
        ("SLA", Align::Left),
        ("Req/s", Align::Left),
        ("Output tok/s", Align::Left),
        ("p50 TTFT ms", Align::Left),
        ("p50 TPOT ms", Align::Left),
    ]);
    for r in rows {
        let m = r.metrics.as_ref();
        t.row(&[
            r.scenario.clone(),
            r.framework.clone(),
            format!("`{}`", r.candidate_id),
            r.round.to_string(),
            r.repeat.to_string(),
            format!("{:?}", r.status),
            match r.sla.passed {
                Some(true) => "pass",
                Some(false) => "FAIL",
                None => "—",
            }
            .to_string(),
            f(m.and_then(|m| m.request_throughput), 3),
            f(m.and_then(|m| m.output_throughput), 1),
            f(m.and_then(|m| m.p50_ttft_ms()), 1),
            f(m.and_then(|m| m.p50_tpot_ms()), 2),
        ]);
    }
    t.render()
}

/// Winners per scenario with their exact server and benchmark commands.
pub(crate) fn winners_markdown(rows: &[CandidateRow], metric: RankingMetric) -> String {
    let mut s = String::new();
    for (sc, ws) in winners(rows, metric) {
        let _ = writeln!(s, "Scenario `{sc}` (best first by the ranking rule):\n");
        for r in ws {
            let m = r.metrics.as_ref();
            let _ = writeln!(
                s,
                "- {} `{}` — SLA {}, {} req/s, {} output tok/s, p50 TTFT {} ms, p50 TPOT {} ms (row `{}`)",
                r.framework,
                r.candidate_id,
                if r.passed_sla() { "pass" } else { "FAIL" },
                f(m.and_then(|m| m.request_throughput), 3),
                f(m.and_then(|m| m.output_throughput), 1),
                f(m.and_then(|m| m.p50_ttft_ms()), 1),
                f(m.and_then(|m| m.p50_tpot_ms()), 2),
                r.row_id
            );
            if !r.server_command.is_empty() {
                let _ = writeln!(s, "  - server: `{}`", shell_join(&r.server_command));
            }
            if !r.benchmark_command.is_empty() {
                let _ = writeln!(s, "  - benchmark: `{}`", shell_join(&r.benchmark_command));
            }
        }
        let _ = writeln!(s);
    }
    if s.is_empty() {
        "(no benchmark rows)\n".into()
    } else {
        s
    }
}
