//! `gap_decision`: where vLLM stands against the best competitor, per scenario and
//! overall, with repeats and a confidence interval instead of a single number.
//!
//! The statistic (also in `references/gap-policy.json`): per scenario, the runs of
//! vLLM's best candidate and of the leader (the best comparable competitor by the ranking
//! rule, `results::compare_rank`, applied to the mean of each candidate's repeats) are two
//! samples of the ranking throughput. Welch's t-interval on the difference of means,
//! divided by the leader's mean, bounds the relative gap in percent. Decisions compare
//! that interval with ±noise threshold; the number of additional runs is the smallest
//! equal k per side whose projected interval (observed SDs, n + k runs) would be
//! narrower than the distance from the point estimate to the nearest boundary.
//!
//! A win (`stop_beats`, `stop_tied`) needs evidence on both sides: a competitor measured
//! on the same machine and workload, both on the campaign's full workload, a passing SLA,
//! and vLLM rows that measured the checkout's code with a passing correctness probe.
//!
//! Modules: [`policy`] (rules file, thresholds), [`decide`] (the pure decision: rows in,
//! decisions out; `sample` holds one side's repeats and the interval rule), [`run`] (reading the records, recording the decision), [`render`]
//! (markdown and the lineage row).

pub(crate) mod decide;
pub(crate) mod policy;
pub(crate) mod render;
pub(crate) mod run;
mod sample;

use anyhow::Result;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use vllm_sota_core::results::{RankingMetric, RowRef};
use vllm_sota_core::{Tool, ToolContext};

pub use policy::GapPolicy;
pub(crate) use policy::{Thresholds, TwoRoundsRule};
pub(crate) use render::render_markdown;
pub(crate) use run::run_gap_decision;

/// One of the decisions the loop acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// vLLM is behind by more than the threshold, fails the SLA where another framework passes,
    /// no framework passes the SLA, or the patched vLLM fails its correctness probe: patch vLLM.
    Patch,
    /// Not enough evidence yet: run the winning commands again (the report says how many times).
    Rerun,
    /// vLLM beats the best measured competitor beyond the noise threshold.
    StopBeats,
    /// vLLM is within the noise threshold of the best measured competitor after repeats.
    StopTied,
    /// The remaining gap is proven external to vLLM (caller-supplied evidence), or no competitor
    /// could run and the user waived the comparison (recorded). Not a win.
    StopExternal,
    /// The hot path is at the hardware or algorithmic limit (caller-supplied profile evidence).
    StopAtLimit,
    /// No competitor has measured rows in this scenario (not installed, failed, skipped): no verdict.
    BlockedCompetitorUnavailable,
    /// Competitors were measured, but none on the same machine and workload as vLLM (or with a
    /// like-for-like prefix cache): no verdict until they are.
    BlockedNotComparable,
    /// The rows come from a reduced (flow-check) workload: they inform but cannot decide a stop.
    BlockedReducedWorkload,
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
            Decision::BlockedCompetitorUnavailable => "blocked_competitor_unavailable",
            Decision::BlockedNotComparable => "blocked_not_comparable",
            Decision::BlockedReducedWorkload => "blocked_reduced_workload",
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
    /// The decisions that say vLLM reached SOTA.
    pub fn is_win(self) -> bool {
        matches!(self, Decision::StopBeats | Decision::StopTied)
    }
    pub fn is_blocked(self) -> bool {
        matches!(
            self,
            Decision::BlockedCompetitorUnavailable
                | Decision::BlockedNotComparable
                | Decision::BlockedReducedWorkload
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

/// The user's decision to stop without a competitor that could not run here.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompetitorWaiver {
    /// Who waived it and why, in a sentence (e.g. "user: TensorRT-LLM cannot be installed on this host").
    pub reason: String,
}

/// Why a competitor framework does not count as evidence in a scenario.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CompetitorNote {
    pub framework: String,
    /// `unavailable` (no measured row) or `not_comparable` (measured on another machine or
    /// workload, or with a warmer prefix cache on vLLM's side).
    pub state: String,
    pub reason: String,
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
    /// The user's waiver of the competitor comparison where no competitor could run here
    /// (recorded in the decision): such a scenario becomes `stop_external`, never a win.
    #[serde(default)]
    pub competitor_waiver: Option<CompetitorWaiver>,
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
    /// For a `blocked_reduced_workload` scenario: what the reduced rows suggest (information only).
    pub informative_decision: Option<Decision>,
    /// Best comparable competitor by the ranking rule (SLA-passing first).
    pub leader: Option<SideSummary>,
    /// Best candidate of each comparable competitor framework.
    pub competitors: Vec<SideSummary>,
    /// Competitor frameworks that are not evidence here, and why.
    pub competitor_notes: Vec<CompetitorNote>,
    /// Why vLLM's rows are a reduced workload (label, fewer prompts, shorter lengths), when they are.
    pub reduced_workload: Option<String>,
    /// Neither vLLM nor any comparable competitor passes the SLA.
    pub no_sla_pass: bool,
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
    /// The user's waiver, when one was given.
    pub competitor_waiver: Option<CompetitorWaiver>,
    /// analysis/round-N/gap-decision.md (when recorded).
    pub decision_path: Option<String>,
    pub recorded: bool,
}

pub struct GapDecision;

impl Tool for GapDecision {
    const NAME: &'static str = "gap_decision";
    const DESCRIPTION: &'static str = "Decide, at the start of a loop round, whether vLLM must be patched, the winning commands re-run, or the loop stopped. Reads the fixed baseline (benchmark/candidates.jsonl) and the current vLLM rows (a revalidation file or explicit row refs; repeats of one command form a sample), finds per scenario the best competitor measured on the same machine and workload and vLLM's best, and compares them with a Welch confidence interval against the 1% noise threshold: patch, rerun (with how many more runs), stop_beats, stop_tied, or, with evidence files, stop_external / stop_at_limit. Never a win without evidence: no measured competitor gives blocked_competitor_unavailable (stop_external only with a recorded competitor_waiver), competitors on another machine or workload give blocked_not_comparable, a reduced (flow-check) workload gives blocked_reduced_workload, no SLA-passing framework gives patch, and patched vLLM rows need the checkout's commit and a passing correctness probe. Also reports the geomean improvement over the prior best vLLM, the two-weak-rounds flag (expand code-first research), which frameworks to profile and the prefill/decode profile shapes. Appends the decision to humanize/lineage.jsonl and writes analysis/round-N/gap-decision.md.";
    type Request = GapDecisionRequest;
    type Report = GapDecisionReport;

    fn run(request: Self::Request, ctx: &ToolContext) -> Result<Self::Report> {
        run_gap_decision(request, ctx)
    }

    fn markdown(report: &Self::Report) -> String {
        render_markdown(report)
    }
}
