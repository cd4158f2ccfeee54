//! `gap_decision`: where vLLM stands against the best competitor, per scenario and
//! overall, with repeats and a confidence interval instead of a single number.
//!
//! The statistic (also in `references/gap-policy.json`): per scenario, the runs of
//! vLLM's best candidate and of the leader (the best competitor by the ranking rule,
//! `results::compare_rank`, applied to the mean of each candidate's repeats) are two
//! samples of the ranking throughput. Welch's t-interval on the difference of means,
//! divided by the leader's mean, bounds the relative gap in percent. Decisions compare
//! that interval with ±noise threshold; the number of additional runs is the smallest
//! equal k per side whose projected interval (observed SDs, n + k runs) would be
//! narrower than the distance from the point estimate to the nearest boundary.

use anyhow::{Context, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use vllm_sota_core::fsx;
use vllm_sota_core::layout::{CampaignPaths, now_rfc3339, round_label};
use vllm_sota_core::results::{
    CandidateRow, MetricsRow, Percentiles, RankingMetric, RowRef, RunStatus, compare_rank,
};
use vllm_sota_core::{Tool, ToolContext, refs};

use crate::records::{self, num_field, round_of, str_field};
use crate::stats;

/// The rules file this tool follows (`references/gap-policy.json`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct GapPolicy {
    pub noise_threshold_pct: f64,
    pub min_repeats: u32,
    pub confidence_level: f64,
    pub max_additional_runs: u32,
    #[serde(default)]
    pub ranking_metric: RankingMetric,
    pub two_rounds_rule: TwoRoundsRule,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct TwoRoundsRule {
    pub consecutive_rounds: u32,
    pub min_geomean_improvement_pct: f64,
    pub action: String,
}

impl GapPolicy {
    /// Load `gap-policy.json` (embedded copy, or `$VLLM_SOTA_REFERENCES/gap-policy.json`).
    pub fn load() -> Result<Self> {
        let (text, origin) = refs::load(
            "gap-policy.json",
            Some(include_str!("../../../references/gap-policy.json")),
        )?;
        serde_json::from_str(&text).with_context(|| format!("invalid gap policy in {origin}"))
    }
}

/// One of the decisions the loop acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// vLLM is behind by more than the threshold, or fails the SLA where another framework passes: patch vLLM.
    Patch,
    /// Not enough evidence yet: run the winning commands again (the report says how many times).
    Rerun,
    /// vLLM beats the best competitor beyond the noise threshold.
    StopBeats,
    /// vLLM is within the noise threshold of the best competitor after repeats.
    StopTied,
    /// The remaining gap is proven external to vLLM (caller-supplied evidence).
    StopExternal,
    /// The hot path is at the hardware or algorithmic limit (caller-supplied profile evidence).
    StopAtLimit,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Patch => "patch",
            Decision::Rerun => "rerun",
            Decision::StopBeats => "stop_beats",
            Decision::StopTied => "stop_tied",
            Decision::StopExternal => "stop_external",
            Decision::StopAtLimit => "stop_at_limit",
        }
    }
    pub fn is_stop(self) -> bool {
        matches!(
            self,
            Decision::StopBeats
                | Decision::StopTied
                | Decision::StopExternal
                | Decision::StopAtLimit
        )
    }
}

/// Kind of caller-supplied stop claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StopClaimKind {
    /// The gap is external to vLLM (missing hardware support, dependency, unloadable weights...).
    External,
    /// Profile evidence shows the hot path at the hardware/algorithmic limit.
    AtLimit,
}

/// A claim that the loop should stop although vLLM is not ahead; accepted only with evidence files.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StopClaim {
    pub kind: StopClaimKind,
    /// Why, in one or two sentences.
    pub reason: String,
    /// Files (relative to the campaign directory) that prove it. `at_limit` needs at least one
    /// under `profiles/`, `analysis/` or `kernel/ncu-digests/`.
    pub evidence: Vec<String>,
}

fn yes() -> bool {
    true
}

/// Request of `gap_decision`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GapDecisionRequest {
    /// Campaign run directory (holds campaign.json).
    pub campaign_dir: PathBuf,
    /// The loop round this decision opens (1 = first round, before any patch).
    pub round: u32,
    /// Result files with the current vLLM rows (and optional competitor re-runs), relative to the
    /// campaign directory, e.g. `benchmark/revalidation/round-1.jsonl`. All their rows are used.
    #[serde(default)]
    pub current_files: Vec<String>,
    /// Explicit current rows (`{"file", "row_id"}`), in addition to `current_files`.
    /// With neither, the fixed baseline's vLLM rows are the current vLLM.
    #[serde(default)]
    pub current_rows: Vec<RowRef>,
    /// `request_throughput` (default) or `output_throughput`.
    #[serde(default)]
    pub ranking_metric: Option<RankingMetric>,
    /// Override of the noise threshold in percent (default from gap-policy.json: 1.0).
    #[serde(default)]
    pub noise_threshold_pct: Option<f64>,
    /// Override of the repeats needed per side before a stop decision (default 3, minimum 2).
    #[serde(default)]
    pub min_repeats: Option<u32>,
    /// Override of the confidence level of the interval (default 0.95).
    #[serde(default)]
    pub confidence_level: Option<f64>,
    /// Evidence-backed claim for `stop_external` / `stop_at_limit`.
    #[serde(default)]
    pub stop_claim: Option<StopClaim>,
    /// Append the decision to humanize/lineage.jsonl and write analysis/round-N/gap-decision.{md,json} (default true).
    #[serde(default = "yes")]
    pub record: bool,
}

/// One side of a comparison: a candidate command and its repeats.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SideSummary {
    pub framework: String,
    pub candidate_id: String,
    /// Runs of this candidate in the scenario (all statuses).
    pub runs: u32,
    /// Runs with status ok and a value of the ranking metric (the sample).
    pub n: u32,
    /// Mean of the ranking metric over the sample.
    pub mean: Option<f64>,
    /// Sample standard deviation (n ≥ 2).
    pub sd: Option<f64>,
    /// Coefficient of variation in percent.
    pub cv_pct: Option<f64>,
    /// True only when every run has status ok and passes the SLA.
    pub passes_sla: bool,
    pub sla_passed_runs: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sla_failures: Vec<String>,
    pub p50_ttft_ms_mean: Option<f64>,
    pub p50_tpot_ms_mean: Option<f64>,
    /// Rows this sample came from (at most 8 listed).
    pub row_refs: Vec<RowRef>,
}

/// Decision for one scenario.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ScenarioDecision {
    pub scenario: String,
    pub decision: Decision,
    pub reason: String,
    /// Best competitor by the ranking rule (SLA-passing first).
    pub leader: Option<SideSummary>,
    /// Best candidate of each competitor framework.
    pub competitors: Vec<SideSummary>,
    /// vLLM's best current candidate.
    pub vllm: Option<SideSummary>,
    pub vllm_passes_sla: bool,
    /// (vLLM − leader) / leader on the ranking metric, percent: negative = vLLM behind.
    pub throughput_delta_pct: Option<f64>,
    /// Confidence interval of `throughput_delta_pct` (Welch), when both sides have ≥ 2 runs.
    pub ci_low_pct: Option<f64>,
    pub ci_high_pct: Option<f64>,
    pub ci_df: Option<f64>,
    /// (vLLM − leader) / leader of mean p50 TTFT, percent: positive = vLLM slower.
    pub p50_ttft_delta_pct: Option<f64>,
    /// (vLLM − leader) / leader of mean p50 TPOT, percent: positive = vLLM slower.
    pub p50_tpot_delta_pct: Option<f64>,
    /// Both sides have at least min_repeats runs.
    pub enough_repeats: bool,
    /// For `rerun`: more runs needed per side (vLLM and leader each).
    pub additional_runs_needed: Option<u32>,
    /// False when even max_additional_runs more runs would not separate the gap from the threshold.
    pub resolvable_within_cap: Option<bool>,
    /// Frameworks to profile for this scenario (when `patch`).
    pub frameworks_to_profile: Vec<String>,
    /// Prior best vLLM value of the ranking metric (baseline or earlier rounds).
    pub prior_best_vllm: Option<f64>,
    /// Current vLLM mean vs the prior best, percent.
    pub improvement_over_prior_pct: Option<f64>,
}

/// Profile workloads derived from the slowest patch scenario.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProfileShapes {
    pub scenario: String,
    pub prefill_input_len: u64,
    pub prefill_output_len: u64,
    pub decode_input_len: u64,
    pub decode_output_len: u64,
    /// Where the lengths came from (workload lengths or a recorded p50 bucket).
    pub source: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StopClaimVerdict {
    pub kind: StopClaimKind,
    pub accepted: bool,
    pub detail: String,
}

/// Report of `gap_decision`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GapDecisionReport {
    pub round: u32,
    pub decision: Decision,
    pub reason: String,
    pub ranking_metric: RankingMetric,
    pub noise_threshold_pct: f64,
    pub min_repeats: u32,
    pub confidence_level: f64,
    /// Where the current vLLM rows came from.
    pub current_source: String,
    pub scenarios: Vec<ScenarioDecision>,
    /// Geometric mean over scenarios of current vLLM / prior best vLLM, minus 1, in percent.
    /// None in round 1 (no patch yet) or when no prior value exists.
    pub geomean_improvement_pct: Option<f64>,
    /// Two consecutive rounds under the minimum geomean improvement: expand code-first research first.
    pub expand_research: bool,
    pub expand_research_reason: Option<String>,
    /// Union over patch scenarios, vLLM first.
    pub frameworks_to_profile: Vec<String>,
    pub profile_shapes: Option<ProfileShapes>,
    pub stop_claim: Option<StopClaimVerdict>,
    /// analysis/round-N/gap-decision.md (when recorded).
    pub decision_path: Option<String>,
    pub recorded: bool,
}

pub struct GapDecision;

impl Tool for GapDecision {
    const NAME: &'static str = "gap_decision";
    const DESCRIPTION: &'static str = "Decide, at the start of a loop round, whether vLLM must be patched, the winning commands re-run, or the loop stopped. Reads the fixed baseline (benchmark/candidates.jsonl) and the current vLLM rows (a revalidation file or explicit row refs; repeats of one command form a sample), finds per scenario the best competitor by the ranking rule and vLLM's best, and compares them with a Welch confidence interval against the 1% noise threshold: patch, rerun (with how many more runs), stop_beats, stop_tied, or, with evidence files, stop_external / stop_at_limit. Also reports the geomean improvement over the prior best vLLM, the two-weak-rounds flag (expand code-first research), which frameworks to profile and the prefill/decode profile shapes. Appends the decision to humanize/lineage.jsonl and writes analysis/round-N/gap-decision.md.";
    type Request = GapDecisionRequest;
    type Report = GapDecisionReport;

    fn run(request: Self::Request, ctx: &ToolContext) -> Result<Self::Report> {
        run_gap_decision(request, ctx)
    }

    fn markdown(report: &Self::Report) -> String {
        render_markdown(report)
    }
}

/// A row with the file it came from.
#[derive(Debug, Clone)]
struct Sourced {
    file: String,
    row: CandidateRow,
}

/// The repeats of one candidate command in one scenario.
struct Group {
    framework: String,
    candidate_id: String,
    rows: Vec<Sourced>,
    values: Vec<f64>,
    synthetic: CandidateRow,
    passes_sla: bool,
}

fn mean_of(rows: &[&CandidateRow], f: impl Fn(&MetricsRow) -> Option<f64>) -> Option<f64> {
    let xs: Vec<f64> = rows
        .iter()
        .filter_map(|r| r.metrics.as_ref().and_then(&f))
        .collect();
    stats::mean(&xs)
}

impl Group {
    fn new(rows: Vec<Sourced>, metric: RankingMetric) -> Self {
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

    fn mean(&self) -> Option<f64> {
        stats::mean(&self.values)
    }
    fn sd(&self) -> Option<f64> {
        stats::sample_sd(&self.values)
    }
    fn p50_ttft(&self) -> Option<f64> {
        self.synthetic
            .metrics
            .as_ref()
            .and_then(MetricsRow::p50_ttft_ms)
    }
    fn p50_tpot(&self) -> Option<f64> {
        self.synthetic
            .metrics
            .as_ref()
            .and_then(MetricsRow::p50_tpot_ms)
    }

    fn summary(&self) -> SideSummary {
        let mean = self.mean();
        let sd = self.sd();
        let mut sla_failures: Vec<String> = Vec::new();
        for s in &self.rows {
            if !s.row.passed_sla() {
                let why = if s.row.status != RunStatus::Ok {
                    format!(
                        "{}: status {:?}{}",
                        s.row.row_id,
                        s.row.status,
                        s.row
                            .failure_reason
                            .as_deref()
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default()
                    )
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
fn groups(rows: Vec<Sourced>, metric: RankingMetric) -> Vec<Group> {
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

fn pct(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some((a - b) / b * 100.0),
        _ => None,
    }
}

struct Thresholds {
    thr: f64,
    min_repeats: u32,
    confidence: f64,
    cap: u32,
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

struct Compared {
    decision: Decision,
    reason: String,
    delta: Option<f64>,
    ci: Option<(f64, f64, f64)>,
    enough: bool,
    more: Option<(u32, bool)>,
}

fn compare(v: &Group, c: &Group, t: &Thresholds, no_sla_pass: bool) -> Compared {
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
    let note = if no_sla_pass {
        " (no framework passes the SLA in this scenario; compared on throughput)"
    } else {
        ""
    };
    let Some(d) = delta else {
        return Compared {
            decision: Decision::Rerun,
            reason: format!(
                "no measured {} on one side; run the winning commands again{note}",
                "ranking metric"
            ),
            delta,
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
                    "vLLM is behind by {:.2}% ({conf:.0}% CI {lo:.2}% .. {hi:.2}%, entirely below -{thr}%){note}",
                    -d
                ),
                delta,
                ci,
                enough,
                more: None,
            }
        } else if lo > thr {
            Compared {
                decision: Decision::StopBeats,
                reason: format!(
                    "vLLM is ahead by {d:.2}% ({conf:.0}% CI {lo:.2}% .. {hi:.2}%, entirely above +{thr}%){note}"
                ),
                delta,
                ci,
                enough,
                more: None,
            }
        } else if lo >= -thr && hi <= thr {
            Compared {
                decision: Decision::StopTied,
                reason: format!(
                    "vLLM is within ±{thr}% ({d:+.2}%, {conf:.0}% CI {lo:.2}% .. {hi:.2}%){note}"
                ),
                delta,
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
                    "{d:+.2}% but the {conf:.0}% CI {lo:.2}% .. {hi:.2}% crosses a ±{thr}% boundary (spread too wide); {tail}{note}"
                ),
                delta,
                ci,
                enough,
                more: Some((k, ok)),
            }
        }
    } else if d < -thr {
        Compared {
            decision: Decision::Patch,
            reason: format!(
                "vLLM is behind by {:.2}% on the point estimate (runs: vLLM {nv}, leader {nc}; below {} repeats no interval is required to patch){note}",
                -d, t.min_repeats
            ),
            delta,
            ci,
            enough,
            more: None,
        }
    } else {
        let (k, ok) = additional_runs(v, c, distance, t);
        Compared {
            decision: Decision::Rerun,
            reason: format!(
                "{d:+.2}% with too few repeats (vLLM {nv}, leader {nc}; need {} each) to decide; run both winning commands {k} more time(s) each{note}",
                t.min_repeats
            ),
            delta,
            ci,
            enough,
            more: Some((k, ok)),
        }
    }
}

/// Profile shapes from the slow scenario's workload (or its recorded p50 bucket for custom datasets).
fn shapes_for(scenario: &str, row: &CandidateRow) -> ProfileShapes {
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

fn check_stop_claim(paths: &CampaignPaths, claim: &StopClaim) -> StopClaimVerdict {
    let mut problems = Vec::new();
    if claim.reason.trim().is_empty() {
        problems.push("reason is empty".to_string());
    }
    if claim.evidence.is_empty() {
        problems.push("no evidence files given".to_string());
    }
    for e in &claim.evidence {
        if !records::resolve(paths, e).is_file() {
            problems.push(format!("evidence file {e} does not exist"));
        }
    }
    if claim.kind == StopClaimKind::AtLimit
        && !claim.evidence.iter().any(|e| {
            let p = e.trim_start_matches("./");
            p.starts_with("profiles/")
                || p.starts_with("analysis/")
                || p.starts_with("kernel/ncu-digests/")
        })
    {
        problems.push("at_limit needs at least one evidence file under profiles/, analysis/ or kernel/ncu-digests/".to_string());
    }
    if problems.is_empty() {
        StopClaimVerdict {
            kind: claim.kind,
            accepted: true,
            detail: format!(
                "{} (evidence: {})",
                claim.reason.trim(),
                claim.evidence.join(", ")
            ),
        }
    } else {
        StopClaimVerdict {
            kind: claim.kind,
            accepted: false,
            detail: format!("stop claim rejected: {}", problems.join("; ")),
        }
    }
}

fn metric_name(m: RankingMetric) -> &'static str {
    match m {
        RankingMetric::RequestThroughput => "request_throughput",
        RankingMetric::OutputThroughput => "output_throughput",
    }
}

pub fn run_gap_decision(req: GapDecisionRequest, ctx: &ToolContext) -> Result<GapDecisionReport> {
    let policy = GapPolicy::load()?;
    let paths = CampaignPaths::open(&req.campaign_dir)?;
    if req.round == 0 {
        anyhow::bail!("round: must be >= 1 (round 0 is the fixed baseline)");
    }
    let metric = req.ranking_metric.unwrap_or(policy.ranking_metric);
    let t = Thresholds {
        thr: req
            .noise_threshold_pct
            .unwrap_or(policy.noise_threshold_pct),
        min_repeats: req.min_repeats.unwrap_or(policy.min_repeats),
        confidence: req.confidence_level.unwrap_or(policy.confidence_level),
        cap: policy.max_additional_runs,
    };
    if !(t.thr > 0.0 && t.thr.is_finite()) {
        anyhow::bail!(
            "noise_threshold_pct: must be a positive number, got {}",
            t.thr
        );
    }
    if t.min_repeats < 2 {
        anyhow::bail!(
            "min_repeats: must be at least 2 (an interval needs two runs per side), got {}",
            t.min_repeats
        );
    }
    if !(t.confidence > 0.5 && t.confidence < 1.0) {
        anyhow::bail!(
            "confidence_level: must be in (0.5, 1), got {}",
            t.confidence
        );
    }

    let candidates_path = paths.candidates();
    let baseline = records::read_rows(&candidates_path)?;
    if baseline.is_empty() {
        anyhow::bail!(
            "{} has no rows: run the fixed benchmark first",
            candidates_path.display()
        );
    }
    let base_file = records::relative(&paths, &candidates_path);
    let baseline: Vec<Sourced> = baseline
        .into_iter()
        .map(|row| Sourced {
            file: base_file.clone(),
            row,
        })
        .collect();

    let mut current: Vec<Sourced> = Vec::new();
    for f in &req.current_files {
        let p = records::resolve(&paths, f);
        if !p.is_file() {
            anyhow::bail!("current_files: {} does not exist", p.display());
        }
        let rows = records::read_rows(&p)?;
        if rows.is_empty() {
            anyhow::bail!("current_files: {} has no rows", p.display());
        }
        current.extend(rows.into_iter().map(|row| Sourced {
            file: f.clone(),
            row,
        }));
    }
    for (r, row) in records::rows_by_ref(&paths, &req.current_rows)? {
        current.push(Sourced { file: r.file, row });
    }
    let current_given = !current.is_empty();
    let current_source = if current_given {
        let files: BTreeSet<&str> = current.iter().map(|s| s.file.as_str()).collect();
        format!(
            "{} row(s) from {}",
            current.len(),
            files.into_iter().collect::<Vec<_>>().join(", ")
        )
    } else {
        format!("the fixed baseline's vLLM rows ({base_file})")
    };
    ctx.progress(1.0, Some(3.0), "rows loaded");

    let lineage = records::read_objects(&paths.lineage())?;
    let scenarios: BTreeSet<String> = baseline.iter().map(|s| s.row.scenario.clone()).collect();

    let mut out = Vec::new();
    let mut slow: Option<(f64, String, CandidateRow)> = None;
    for sc in &scenarios {
        ctx.check_cancelled()?;
        let competitor_rows: Vec<Sourced> = baseline
            .iter()
            .chain(current.iter())
            .filter(|s| &s.row.scenario == sc && s.row.framework != "vllm")
            .cloned()
            .collect();
        let vllm_source = if current_given { &current } else { &baseline };
        let vllm_rows: Vec<Sourced> = vllm_source
            .iter()
            .filter(|s| &s.row.scenario == sc && s.row.framework == "vllm")
            .cloned()
            .collect();
        let comp_groups = groups(competitor_rows, metric);
        let vllm_groups = groups(vllm_rows, metric);
        let baseline_vllm_best: Option<f64> = groups(
            baseline
                .iter()
                .filter(|s| &s.row.scenario == sc && s.row.framework == "vllm")
                .cloned()
                .collect(),
            metric,
        )
        .first()
        .and_then(Group::mean);

        // Best per competitor framework, in ranking order.
        let mut seen = BTreeSet::new();
        let best_per_fw: Vec<&Group> = comp_groups
            .iter()
            .filter(|g| seen.insert(g.framework.clone()))
            .collect();
        let leader = comp_groups.first();
        let vllm = vllm_groups.first();

        let mut d = ScenarioDecision {
            scenario: sc.clone(),
            decision: Decision::Rerun,
            reason: String::new(),
            leader: leader.map(Group::summary),
            competitors: best_per_fw.iter().map(|g| g.summary()).collect(),
            vllm: vllm.map(Group::summary),
            vllm_passes_sla: vllm.is_some_and(|g| g.passes_sla),
            throughput_delta_pct: None,
            ci_low_pct: None,
            ci_high_pct: None,
            ci_df: None,
            p50_ttft_delta_pct: None,
            p50_tpot_delta_pct: None,
            enough_repeats: false,
            additional_runs_needed: None,
            resolvable_within_cap: None,
            frameworks_to_profile: Vec::new(),
            prior_best_vllm: None,
            improvement_over_prior_pct: None,
        };

        match (leader, vllm) {
            (_, None) => {
                d.decision = Decision::Rerun;
                d.reason = format!(
                    "no current vLLM row for scenario {sc}: run vLLM's winning command {} time(s)",
                    t.min_repeats
                );
                d.additional_runs_needed = Some(t.min_repeats);
            }
            (None, Some(v)) => {
                if v.passes_sla {
                    d.decision = Decision::StopBeats;
                    d.reason =
                        "no competitor row exists for this scenario and vLLM passes the SLA".into();
                } else {
                    d.decision = Decision::Patch;
                    d.reason =
                        "vLLM fails the SLA (no competitor row exists for this scenario)".into();
                }
            }
            (Some(c), Some(v)) => {
                d.throughput_delta_pct = pct(v.mean(), c.mean());
                d.p50_ttft_delta_pct = pct(v.p50_ttft(), c.p50_ttft());
                d.p50_tpot_delta_pct = pct(v.p50_tpot(), c.p50_tpot());
                if c.passes_sla && !v.passes_sla {
                    d.decision = Decision::Patch;
                    let why = d
                        .vllm
                        .as_ref()
                        .map(|s| s.sla_failures.join("; "))
                        .unwrap_or_default();
                    d.reason = format!(
                        "vLLM fails the SLA ({why}) while {} {} passes",
                        c.framework, c.candidate_id
                    );
                } else if v.passes_sla && !c.passes_sla {
                    d.decision = Decision::StopBeats;
                    d.reason = "vLLM passes the SLA and no competitor does".into();
                } else {
                    let cmp = compare(v, c, &t, !c.passes_sla);
                    d.decision = cmp.decision;
                    d.reason = cmp.reason;
                    d.throughput_delta_pct = cmp.delta;
                    d.enough_repeats = cmp.enough;
                    if let Some((lo, hi, df)) = cmp.ci {
                        d.ci_low_pct = Some(lo);
                        d.ci_high_pct = Some(hi);
                        d.ci_df = Some(df);
                    }
                    if let Some((k, ok)) = cmp.more {
                        d.additional_runs_needed = Some(k);
                        d.resolvable_within_cap = Some(ok);
                    }
                }
                if d.decision == Decision::Patch {
                    let mut fws = vec!["vllm".to_string(), c.framework.clone()];
                    for g in &best_per_fw {
                        let ahead_on_sla = g.passes_sla && !v.passes_sla;
                        let ahead_on_tp = pct(v.mean(), g.mean()).is_some_and(|x| x < -t.thr);
                        if compare_rank(&g.synthetic, &v.synthetic, metric) == Ordering::Less
                            && (ahead_on_sla || ahead_on_tp)
                            && !fws.contains(&g.framework)
                        {
                            fws.push(g.framework.clone());
                        }
                    }
                    d.frameworks_to_profile = fws;
                    // Slowest scenario: SLA failure counts as the largest gap.
                    let gap = if !v.passes_sla && c.passes_sla {
                        f64::INFINITY
                    } else {
                        -d.throughput_delta_pct.unwrap_or(0.0)
                    };
                    if slow.as_ref().is_none_or(|(g, _, _)| gap > *g) {
                        slow = Some((gap, sc.clone(), c.rows[0].row.clone()));
                    }
                }
            }
        }

        // Prior best vLLM for the geomean: baseline, earlier lineage values and earlier decisions.
        let mut prior: Vec<f64> = baseline_vllm_best.into_iter().collect();
        for row in &lineage {
            if round_of(row).is_none_or(|r| r >= req.round) {
                continue;
            }
            let kind = str_field(row, &["kind"]).unwrap_or("");
            let metric_ok = str_field(row, &["metric"]).is_none_or(|m| m == metric_name(metric));
            if (kind == "vllm_best" || kind == "baseline_best")
                && metric_ok
                && str_field(row, &["scenario"]) == Some(sc.as_str())
            {
                prior.extend(num_field(row, &["value"]));
            }
            if kind == "gap_decision" && metric_ok {
                for s in row
                    .get("scenarios")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if str_field(s, &["scenario"]) == Some(sc.as_str()) {
                        prior.extend(num_field(s, &["vllm_mean"]));
                    }
                }
            }
        }
        d.prior_best_vllm = prior
            .into_iter()
            .filter(|x| x.is_finite() && *x > 0.0)
            .reduce(f64::max);
        if current_given && req.round > 1 {
            d.improvement_over_prior_pct =
                pct(d.vllm.as_ref().and_then(|v| v.mean), d.prior_best_vllm);
        }
        out.push(d);
    }
    ctx.progress(2.0, Some(3.0), "scenarios decided");

    // Overall.
    let any = |x: Decision| out.iter().any(|d| d.decision == x);
    let (mut decision, mut reason) = if any(Decision::Patch) {
        let names: Vec<&str> = out
            .iter()
            .filter(|d| d.decision == Decision::Patch)
            .map(|d| d.scenario.as_str())
            .collect();
        (
            Decision::Patch,
            format!("patch: vLLM is behind in {}", names.join(", ")),
        )
    } else if any(Decision::Rerun) {
        let names: Vec<&str> = out
            .iter()
            .filter(|d| d.decision == Decision::Rerun)
            .map(|d| d.scenario.as_str())
            .collect();
        (
            Decision::Rerun,
            format!("rerun: not enough evidence in {}", names.join(", ")),
        )
    } else if out.iter().all(|d| d.decision == Decision::StopBeats) {
        (
            Decision::StopBeats,
            "vLLM beats the best competitor in every scenario".to_string(),
        )
    } else {
        (
            Decision::StopTied,
            "vLLM is at least tied within the noise threshold in every scenario".to_string(),
        )
    };
    let stop_claim = req.stop_claim.as_ref().map(|claim| {
        let mut verdict = check_stop_claim(&paths, claim);
        if verdict.accepted && decision.is_stop() {
            verdict.accepted = false;
            verdict.detail = format!("not needed: the data already says {}", decision.as_str());
        }
        verdict
    });
    if let Some(v) = stop_claim.as_ref().filter(|v| v.accepted) {
        reason = format!(
            "{} overridden by an evidence-backed stop claim: {}",
            decision.as_str(),
            v.detail
        );
        decision = match v.kind {
            StopClaimKind::External => Decision::StopExternal,
            StopClaimKind::AtLimit => Decision::StopAtLimit,
        };
    }

    // Geomean improvement and the two-rounds rule.
    let ratios: Vec<f64> = out
        .iter()
        .filter_map(|d| d.improvement_over_prior_pct.map(|p| 1.0 + p / 100.0))
        .collect();
    let geomean_improvement_pct = stats::geomean(&ratios).map(|g| (g - 1.0) * 100.0);
    let rule = &policy.two_rounds_rule;
    let mut weak_rounds: Vec<(u32, f64)> = Vec::new();
    if let Some(g) = geomean_improvement_pct {
        weak_rounds.push((req.round, g));
        // Latest recorded decision per earlier round, walking back while rounds are consecutive.
        let mut per_round: BTreeMap<u32, Option<f64>> = BTreeMap::new();
        for row in lineage
            .iter()
            .filter(|r| str_field(r, &["kind"]) == Some("gap_decision"))
        {
            if let Some(r) = round_of(row).filter(|r| *r < req.round) {
                per_round.insert(r, num_field(row, &["geomean_improvement_pct"]));
            }
        }
        let mut r = req.round;
        while weak_rounds.len() < rule.consecutive_rounds as usize {
            r = match r.checked_sub(1) {
                Some(r) => r,
                None => break,
            };
            match per_round.get(&r).copied().flatten() {
                Some(x) => weak_rounds.push((r, x)),
                None => break,
            }
        }
    }
    let expand_research = weak_rounds.len() >= rule.consecutive_rounds as usize
        && weak_rounds
            .iter()
            .all(|(_, x)| *x < rule.min_geomean_improvement_pct);
    let expand_research_reason = expand_research.then(|| {
        let list: Vec<String> = weak_rounds
            .iter()
            .rev()
            .map(|(r, x)| format!("round {r}: {x:+.2}%"))
            .collect();
        format!(
            "{} consecutive rounds under {}% geomean improvement ({}). {}",
            rule.consecutive_rounds,
            rule.min_geomean_improvement_pct,
            list.join(", "),
            rule.action
        )
    });

    let mut frameworks_to_profile: Vec<String> = Vec::new();
    for d in out.iter().filter(|d| d.decision == Decision::Patch) {
        for f in &d.frameworks_to_profile {
            if !frameworks_to_profile.contains(f) {
                frameworks_to_profile.push(f.clone());
            }
        }
    }
    let profile_shapes = slow.map(|(_, sc, row)| shapes_for(&sc, &row));

    let mut report = GapDecisionReport {
        round: req.round,
        decision,
        reason,
        ranking_metric: metric,
        noise_threshold_pct: t.thr,
        min_repeats: t.min_repeats,
        confidence_level: t.confidence,
        current_source,
        scenarios: out,
        geomean_improvement_pct,
        expand_research,
        expand_research_reason,
        frameworks_to_profile,
        profile_shapes,
        stop_claim,
        decision_path: None,
        recorded: false,
    };

    if req.record {
        let md_path = paths
            .analysis_dir()
            .join(round_label(req.round))
            .join("gap-decision.md");
        fsx::write_text(&md_path, &render_markdown(&report))?;
        fsx::write_json(&md_path.with_extension("json"), &report)?;
        report.decision_path = Some(records::relative(&paths, &md_path));
        fsx::append_jsonl(&paths.lineage(), &lineage_row(&report))?;
        report.recorded = true;
    }
    ctx.progress(3.0, Some(3.0), "decision recorded");
    Ok(report)
}

/// The compact lineage row (`kind: gap_decision`).
fn lineage_row(r: &GapDecisionReport) -> Value {
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
        })).collect::<Vec<_>>(),
    })
}

fn f2(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.2}")).unwrap_or_else(|| "—".into())
}
fn f4(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.4}")).unwrap_or_else(|| "—".into())
}

pub fn render_markdown(r: &GapDecisionReport) -> String {
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
    let _ = writeln!(
        s,
        "| Scenario | Decision | Leader | Leader mean (n) | vLLM | vLLM mean (n) | vLLM SLA | Δ % | CI % | p50 TTFT Δ % | p50 TPOT Δ % | More runs |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|");
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
        let _ = writeln!(
            s,
            "| {} | `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            d.scenario,
            d.decision.as_str(),
            ln,
            lm,
            vn,
            vm,
            if d.vllm_passes_sla { "pass" } else { "FAIL" },
            f2(d.throughput_delta_pct),
            ci,
            f2(d.p50_ttft_delta_pct),
            f2(d.p50_tpot_delta_pct),
            d.additional_runs_needed
                .map(|k| k.to_string())
                .unwrap_or_else(|| "—".into())
        );
    }
    let _ = writeln!(s);
    for d in &r.scenarios {
        let _ = writeln!(s, "- **{}**: {}", d.scenario, d.reason);
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
