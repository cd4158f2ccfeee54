//! One side of a comparison: the repeats of one candidate command as a sample, the
//! interval rule between two SLA-passing samples, and the profile shapes of a row.

use std::collections::BTreeMap;
use vllm_sota_core::results::{
    CandidateRow, MetricsRow, Percentiles, RankingMetric, RowRef, RunStatus, compare_rank,
};

use super::decide::{PREFIX_CACHE_HIT_RATE, Sourced};
use super::{Decision, ProfileShapes, SideSummary, Thresholds};
use crate::stats;

/// The repeats of one candidate command in one scenario.
pub(super) struct Group {
    pub(super) framework: String,
    pub(super) candidate_id: String,
    pub(super) rows: Vec<Sourced>,
    pub(super) values: Vec<f64>,
    pub(super) synthetic: CandidateRow,
    pub(super) passes_sla: bool,
}

fn mean_of(rows: &[&CandidateRow], f: impl Fn(&MetricsRow) -> Option<f64>) -> Option<f64> {
    let xs: Vec<f64> = rows
        .iter()
        .filter_map(|r| r.metrics.as_ref().and_then(&f))
        .collect();
    stats::mean(&xs)
}

impl Group {
    pub(super) fn new(rows: Vec<Sourced>, metric: RankingMetric) -> Self {
        let ok: Vec<&CandidateRow> = rows
            .iter()
            .map(|s| &s.row)
            .filter(|r| r.status == RunStatus::Ok && metric.value(r).is_some())
            .collect();
        let values: Vec<f64> = ok.iter().filter_map(|r| metric.value(r)).collect();
        let passes_sla = !rows.is_empty() && rows.iter().all(|s| s.row.passed_sla());
        // The ranking rule applied to the mean of the repeats, not to the luckiest run.
        let mut synthetic = rows[0].row.clone();
        if let Some(first_ok) = ok.first() {
            let mut m = first_ok.metrics.clone().unwrap_or_default();
            m.request_throughput = mean_of(&ok, |m| m.request_throughput);
            m.output_throughput = mean_of(&ok, |m| m.output_throughput);
            m.ttft_ms = Some(Percentiles {
                p50: mean_of(&ok, MetricsRow::p50_ttft_ms),
                ..Default::default()
            });
            m.tpot_ms = Some(Percentiles {
                p50: mean_of(&ok, MetricsRow::p50_tpot_ms),
                ..Default::default()
            });
            synthetic.metrics = Some(m);
            synthetic.status = RunStatus::Ok;
        } else {
            synthetic.metrics = None;
        }
        synthetic.sla.passed = Some(passes_sla);
        Group {
            framework: rows[0].row.framework.clone(),
            candidate_id: rows[0].row.candidate_id.clone(),
            rows,
            values,
            synthetic,
            passes_sla,
        }
    }

    pub(super) fn mean(&self) -> Option<f64> {
        stats::mean(&self.values)
    }
    pub(super) fn sd(&self) -> Option<f64> {
        stats::sample_sd(&self.values)
    }
    pub(super) fn p50_ttft(&self) -> Option<f64> {
        self.synthetic
            .metrics
            .as_ref()
            .and_then(MetricsRow::p50_ttft_ms)
    }
    pub(super) fn p50_tpot(&self) -> Option<f64> {
        self.synthetic
            .metrics
            .as_ref()
            .and_then(MetricsRow::p50_tpot_ms)
    }

    /// Mean prefix-cache hit rate over the runs that report one.
    pub(super) fn cache_hit_rate(&self) -> Option<f64> {
        let xs: Vec<f64> = self
            .rows
            .iter()
            .filter_map(|s| s.row.metrics.as_ref())
            .filter_map(|m| m.extra.get(PREFIX_CACHE_HIT_RATE).copied())
            .filter(|x| x.is_finite())
            .collect();
        stats::mean(&xs)
    }

    /// Why this group has no measured value (every run failed, was skipped, or lacks the metric).
    pub(super) fn unmeasured_reason(&self) -> String {
        let s = &self.rows[0].row;
        format!(
            "{} has no measured run ({} run(s); first: {:?}{})",
            self.candidate_id,
            self.rows.len(),
            s.status,
            s.failure_reason
                .as_deref()
                .map(|r| format!(", {r}"))
                .unwrap_or_default()
        )
    }

    pub(super) fn summary(&self) -> SideSummary {
        let mean = self.mean();
        let sd = self.sd();
        let mut sla_failures: Vec<String> = Vec::new();
        for s in &self.rows {
            if !s.row.passed_sla() {
                let why = if s.row.status != RunStatus::Ok {
                    format!("{}: status {}", s.row.row_id, s.row.status_text())
                } else if s.row.sla.reasons.is_empty() {
                    format!("{}: SLA not passed", s.row.row_id)
                } else {
                    format!("{}: {}", s.row.row_id, s.row.sla.reasons.join("; "))
                };
                if sla_failures.len() < 5 {
                    sla_failures.push(why);
                }
            }
        }
        SideSummary {
            framework: self.framework.clone(),
            candidate_id: self.candidate_id.clone(),
            runs: self.rows.len() as u32,
            n: self.values.len() as u32,
            mean,
            sd,
            cv_pct: match (mean, sd) {
                (Some(m), Some(s)) if m > 0.0 => Some(s / m * 100.0),
                _ => None,
            },
            passes_sla: self.passes_sla,
            sla_passed_runs: self.rows.iter().filter(|s| s.row.passed_sla()).count() as u32,
            sla_failures,
            p50_ttft_ms_mean: self.p50_ttft(),
            p50_tpot_ms_mean: self.p50_tpot(),
            row_refs: self
                .rows
                .iter()
                .take(8)
                .map(|s| RowRef {
                    file: s.file.clone(),
                    row_id: s.row.row_id.clone(),
                })
                .collect(),
        }
    }
}

/// Group rows by (framework, candidate) and sort best first by the ranking rule.
pub(super) fn groups(rows: Vec<Sourced>, metric: RankingMetric) -> Vec<Group> {
    let mut by_key: BTreeMap<(String, String), Vec<Sourced>> = BTreeMap::new();
    for s in rows {
        by_key
            .entry((s.row.framework.clone(), s.row.candidate_id.clone()))
            .or_default()
            .push(s);
    }
    let mut out: Vec<Group> = by_key
        .into_values()
        .map(|rows| Group::new(rows, metric))
        .collect();
    out.sort_by(|a, b| compare_rank(&a.synthetic, &b.synthetic, metric));
    out
}

pub(super) fn pct(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some((a - b) / b * 100.0),
        _ => None,
    }
}

/// Smallest equal k per side whose projected interval half-width (percent of the leader mean)
/// is below `distance`; `(k, resolvable)`.
fn additional_runs(v: &Group, c: &Group, distance: f64, t: &Thresholds) -> (u32, bool) {
    let nv = v.values.len() as u32;
    let nc = c.values.len() as u32;
    let base = t
        .min_repeats
        .saturating_sub(nv)
        .max(t.min_repeats.saturating_sub(nc))
        .max(1);
    let (Some(mv), Some(mc)) = (v.mean(), c.mean()) else {
        return (base, true);
    };
    // Borrow the other side's spread when one side has a single run.
    let (sv, sc) = match (v.sd(), c.sd()) {
        (Some(a), Some(b)) => (a, b),
        (Some(a), None) => (a, a * mc / mv),
        (None, Some(b)) => (b * mv / mc, b),
        (None, None) => return (base, true),
    };
    for k in base..=t.cap.max(base) {
        let Some(w) = stats::welch_from_summary(
            mv,
            sv,
            (nv + k) as usize,
            mc,
            sc,
            (nc + k) as usize,
            t.confidence,
        ) else {
            continue;
        };
        let half_pct = w.t_critical * w.standard_error / mc * 100.0;
        if half_pct < distance {
            return (k, true);
        }
    }
    (t.cap.max(base), false)
}

pub(super) struct Compared {
    pub(super) decision: Decision,
    pub(super) reason: String,
    pub(super) ci: Option<(f64, f64, f64)>,
    pub(super) enough: bool,
    pub(super) more: Option<(u32, bool)>,
}

/// The interval rule between two SLA-passing sides (the only case ranked on throughput).
pub(super) fn compare(v: &Group, c: &Group, t: &Thresholds) -> Compared {
    let thr = t.thr;
    let (mv, mc) = (v.mean(), c.mean());
    let delta = pct(mv, mc);
    let nv = v.values.len() as u32;
    let nc = c.values.len() as u32;
    let enough = nv >= t.min_repeats && nc >= t.min_repeats;
    let ci = match (mv, v.sd(), mc, c.sd()) {
        (Some(mv), Some(sv), Some(mc), Some(sc)) if mc > 0.0 => {
            stats::welch_from_summary(mv, sv, nv as usize, mc, sc, nc as usize, t.confidence)
                .map(|w| (w.low / mc * 100.0, w.high / mc * 100.0, w.df))
        }
        _ => None,
    };
    let Some(d) = delta else {
        return Compared {
            decision: Decision::Rerun,
            reason: format!(
                "no measured {} on one side; run the winning commands again",
                "ranking metric"
            ),
            ci,
            enough,
            more: Some((t.min_repeats, true)),
        };
    };
    let distance = (d - thr).abs().min((d + thr).abs());
    if enough {
        let (lo, hi, _) = ci.expect("min_repeats >= 2 gives an interval");
        let conf = t.confidence * 100.0;
        if hi < -thr {
            Compared {
                decision: Decision::Patch,
                reason: format!(
                    "vLLM is behind by {:.2}% ({conf:.0}% CI {lo:.2}% .. {hi:.2}%, entirely below -{thr}%)",
                    -d
                ),
                ci,
                enough,
                more: None,
            }
        } else if lo > thr {
            Compared {
                decision: Decision::StopBeats,
                reason: format!(
                    "vLLM is ahead by {d:.2}% ({conf:.0}% CI {lo:.2}% .. {hi:.2}%, entirely above +{thr}%)"
                ),
                ci,
                enough,
                more: None,
            }
        } else if lo >= -thr && hi <= thr {
            Compared {
                decision: Decision::StopTied,
                reason: format!(
                    "vLLM is within ±{thr}% ({d:+.2}%, {conf:.0}% CI {lo:.2}% .. {hi:.2}%)"
                ),
                ci,
                enough,
                more: None,
            }
        } else {
            let (k, ok) = additional_runs(v, c, distance, t);
            let tail = if ok {
                format!("run both winning commands {k} more time(s) each")
            } else {
                format!(
                    "even {k} more runs each would not separate it from the threshold: the difference sits on the ±{thr}% boundary"
                )
            };
            Compared {
                decision: Decision::Rerun,
                reason: format!(
                    "{d:+.2}% but the {conf:.0}% CI {lo:.2}% .. {hi:.2}% crosses a ±{thr}% boundary (spread too wide); {tail}"
                ),
                ci,
                enough,
                more: Some((k, ok)),
            }
        }
    } else if d < -thr {
        Compared {
            decision: Decision::Patch,
            reason: format!(
                "vLLM is behind by {:.2}% on the point estimate (runs: vLLM {nv}, leader {nc}; below {} repeats no interval is required to patch)",
                -d, t.min_repeats
            ),
            ci,
            enough,
            more: None,
        }
    } else {
        let (k, ok) = additional_runs(v, c, distance, t);
        Compared {
            decision: Decision::Rerun,
            reason: format!(
                "{d:+.2}% with too few repeats (vLLM {nv}, leader {nc}; need {} each) to decide; run both winning commands {k} more time(s) each",
                t.min_repeats
            ),
            ci,
            enough,
            more: Some((k, ok)),
        }
    }
}

/// Profile shapes from the slow scenario's workload (or its recorded p50 bucket for custom datasets).
pub(crate) fn shapes_for(scenario: &str, row: &CandidateRow) -> ProfileShapes {
    let w = &row.workload;
    let extra = row.metrics.as_ref().map(|m| &m.extra);
    let custom = !w.dataset.is_empty() && w.dataset != "random";
    let bucket = |k: &str| {
        extra
            .and_then(|e| e.get(k))
            .copied()
            .filter(|v| *v >= 1.0)
            .map(|v| v.round() as u64)
    };
    let (isl, osl, source) = match (custom, bucket("input_len_p50"), bucket("output_len_p50")) {
        (true, Some(i), Some(o)) => (
            i,
            o,
            format!("recorded p50 bucket of custom dataset {}", w.dataset),
        ),
        (true, _, _) => (
            w.input_len,
            w.output_len,
            format!(
                "workload lengths (custom dataset {} has no recorded p50 bucket)",
                w.dataset
            ),
        ),
        _ => (
            w.input_len,
            w.output_len,
            "workload input/output lengths".to_string(),
        ),
    };
    ProfileShapes {
        scenario: scenario.to_string(),
        prefill_input_len: isl,
        prefill_output_len: 1,
        decode_input_len: 1,
        decode_output_len: osl,
        source,
    }
}
