//! The report of `ncu_digest` (returned to the client and written as `digest.json`).

use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::csvpage::RuleRow;
use crate::eligibility;
use crate::library::LibraryMatch;
use crate::metrics::Stall;
use crate::request::{HarnessResult, Mode};
use crate::rules::{BoundClass, Considered};

/// One side in the report.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SideReport {
    pub kernel_name: String,
    pub launch_id: u64,
    /// (ID, duration ns) of every matching launch (at most 32 listed).
    pub matched_launches: Vec<(u64, Option<f64>)>,
    pub block: Option<String>,
    pub grid: Option<String>,
    pub device_name: Option<String>,
    pub compute_capability: Option<String>,
    pub bound_class: BoundClass,
    pub top_stalls: Vec<Stall>,
    /// NCU rule results with an estimated speedup or of type OPT/WRN, largest first (bounded).
    pub rules: Vec<RuleRow>,
    pub roofline: Option<Roofline>,
    /// Where it was read (`file:line`).
    pub origin: Vec<String>,
    /// Quantities in the report that do not apply to this kernel (0 of 0), with why.
    pub not_applicable: Vec<String>,
    /// ncu's own SOLBottleneck verdict for this launch, when the report has it.
    pub ncu_bottleneck: Option<String>,
}

/// One headline comparison row.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HeadlineRow {
    pub label: String,
    /// ncu metric ID (or `derived: ...`).
    pub metric: String,
    pub unit: String,
    pub baseline: Option<f64>,
    pub candidate: Option<f64>,
    /// (candidate - baseline) / baseline in percent.
    pub delta_pct: Option<f64>,
}

/// Roofline placement of one side.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Roofline {
    /// DRAM peak used, bytes/s.
    pub peak_bytes_per_s: f64,
    pub peak_source: String,
    /// DRAM peak ncu computes from the report (bytes/cycle x DRAM clock), bytes/s.
    pub ncu_peak_bytes_per_s: Option<f64>,
    pub achieved_bytes_per_s: Option<f64>,
    /// Achieved / peak bandwidth, percent.
    pub bandwidth_pct_of_peak: Option<f64>,
    pub flops: Option<f64>,
    /// FLOP per DRAM byte.
    pub arithmetic_intensity: Option<f64>,
    pub ridge_flop_per_byte: Option<f64>,
    /// Achieved FLOP/s over attainable (min(peak, AI x BW)), percent.
    pub pct_of_attainable: Option<f64>,
    /// One sentence.
    pub placement: String,
}

/// Report of `ncu_digest` (also written as `digest.json`, with every fact).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct NcuDigestReport {
    pub version: String,
    /// `capture` or `import`.
    pub mode: Mode,
    /// One report digested alone (no candidate): no delta, no regression gate.
    pub single_report: bool,
    pub digest_md: PathBuf,
    pub digest_json: PathBuf,
    pub kernel_regex: String,
    pub gpu: Option<String>,
    /// The single `Next edit:` line.
    pub next_edit: String,
    /// How it was chosen: `gate:<name>`, `finding:<id>`, `fallback:<id>`, `class_default:<class>`.
    pub chosen_by: String,
    /// Faster/slower by the harness (or ncu duration when no harness timing), with deltas.
    pub verdict: String,
    /// Why counters could not be read, when they could not.
    pub blocker: Option<String>,
    pub eligibility: eligibility::Eligibility,
    pub baseline: Option<SideReport>,
    pub candidate: Option<SideReport>,
    pub baseline_harness: Option<HarnessResult>,
    pub candidate_harness: Option<HarnessResult>,
    pub headline: Vec<HeadlineRow>,
    /// Findings that triggered on the digested side (the candidate, else the baseline)
    /// and what the rule did with them.
    pub considered: Vec<Considered>,
    /// `triton` / `cuda` / `generic` / `library`: wording of the edit.
    pub kernel_language: String,
    /// The closed-source library the kernel belongs to (its edits go to the call site).
    pub library: Option<LibraryMatch>,
    pub warnings: Vec<String>,
    /// Details page vs raw page agreement per side, e.g. "baseline: 29 of 29 quantities agree".
    pub cross_checks: Vec<String>,
    /// Files written or read (reports, CSV exports, logs).
    pub artifacts: Vec<PathBuf>,
    /// Exact commands run (capture / export), secrets redacted.
    pub commands: Vec<String>,
}

/// `digest.json`: the report plus every fact of each side.
#[derive(Serialize)]
pub(crate) struct DigestFile<'a> {
    #[serde(flatten)]
    pub report: &'a NcuDigestReport,
    pub baseline_facts: Option<&'a BTreeMap<String, f64>>,
    pub candidate_facts: Option<&'a BTreeMap<String, f64>>,
}
