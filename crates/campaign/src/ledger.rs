//! `ledger_append`: the campaign's memory of every attempt.
//!
//! Each ledger is a JSONL machine copy (`humanize/<name>.jsonl`, the source of truth)
//! and a markdown table people read (`humanize/<name>.md`), regenerated from the JSONL
//! on every append so the two never disagree. Every append also adds a row to
//! `humanize/lineage.jsonl`. One campaign-wide lock (`humanize/.ledger.lock`) makes
//! validate → append → render atomic across processes; the JSONL append itself is
//! torn-tail safe (see `fsx::append_line`).

use anyhow::{Context, Result, bail};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use vllm_sota_core::fsx;
use vllm_sota_core::layout::{CampaignPaths, now_rfc3339};
use vllm_sota_core::md::{self, Align};
use vllm_sota_core::results::{CandidateRow, RankingMetric, RowRef, RunStatus};
use vllm_sota_core::{Tool, ToolContext};

use crate::{gates, git};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    Planned,
    Applied,
    Kept,
    Reverted,
    Failed,
    Rejected,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckResult {
    pub passed: bool,
    /// What was checked (test names, probe match rate, ...).
    pub detail: String,
}

/// One patch attempt. Every patch attempt gets one, kept or not.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttemptRow {
    /// Unique id; default `r<round>-a<NN>`.
    #[serde(default)]
    pub attempt_id: Option<String>,
    /// RLCR round (1, 2, ...).
    pub round: u32,
    /// What the patch is expected to improve and why (cite the table rows).
    pub hypothesis: String,
    /// vLLM source path or kernel family the patch touches.
    pub target: String,
    /// What was changed.
    pub change: String,
    pub status: AttemptStatus,
    /// Save the vLLM checkout's diff against the campaign base commit as patches/<attempt_id>.diff.
    #[serde(default)]
    pub attach_patch: bool,
    #[serde(default)]
    pub commit: Option<String>,
    #[serde(default)]
    pub correctness: Option<CheckResult>,
    /// The benchmark row that measured this attempt. Its stored probe result, when it has one,
    /// is the attempt's correctness (a contradicting `correctness` is refused).
    #[serde(default)]
    pub benchmark_ref: Option<RowRef>,
    /// For a kernel edit: the four conditions of the kernel gate.
    #[serde(default)]
    pub kernel: Option<KernelGate>,
    #[serde(default)]
    pub notes: Option<String>,
}

/// The kernel gate: a kernel edit needs the layer pipeline to have identified the target, a
/// correctness reference, the model's shapes and the path that wires the kernel into the model.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KernelGate {
    /// The kernel (or kernel family) edited; the round's `analysis/round-N/layer-pipeline.md` must name it.
    pub kernel: String,
    /// The reference the edited kernel is checked against: a test or reference implementation,
    /// a path in the vLLM checkout or in the campaign directory (`path[::test]`).
    pub correctness_reference: String,
    /// The model shapes the kernel runs at (e.g. `M=64 N=4096 K=4096`), at least one.
    pub model_shapes: Vec<String>,
    /// Where the kernel is wired into the model: a file in the vLLM checkout (`path[:line]`).
    pub wiring_path: String,
}

/// A kept improvement: needs a passing correctness check and a measured improvement.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OptimizationRow {
    pub round: u32,
    /// The attempt this optimization came from (must already be in the attempt ledger).
    pub attempt_id: String,
    pub summary: String,
    /// Must have passed.
    pub correctness: CheckResult,
    /// Required: the benchmark row proving the improvement.
    #[serde(default)]
    pub measured_improvement: Option<MeasuredImprovement>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MeasuredImprovement {
    /// The row (in a results JSONL of this campaign) that measured the patched vLLM.
    pub row_ref: RowRef,
    #[serde(default)]
    pub metric: RankingMetric,
    /// The prior best vLLM row to beat. Default: the best vLLM row of the same scenario in the fixed
    /// baseline and earlier optimization rows.
    #[serde(default)]
    pub prior_best: Option<RowRef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Provenance {
    Vllm,
    Sglang,
    TensorrtLlm,
    Tokenspeed,
    Ncu,
    PrHistory,
}

impl Provenance {
    /// Read in a framework's source code or PR history (not a profiler tool).
    pub fn is_code_first(self) -> bool {
        !matches!(self, Provenance::Ncu)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdeaStatus {
    Proposed,
    Tried,
    Kept,
    Rejected,
}

/// An idea taken from a source, with the evidence it rests on.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceIdeaRow {
    pub round: u32,
    pub idea: String,
    /// The main source of the idea.
    pub provenance: Provenance,
    /// Further sources the idea combines (e.g. an SGLang kernel seen through an NCU digest).
    #[serde(default)]
    pub also_from: Vec<Provenance>,
    /// Default `proposed`.
    #[serde(default)]
    pub status: Option<IdeaStatus>,
    /// Why it was rejected or kept.
    #[serde(default)]
    pub status_reason: Option<String>,
    /// NCU reports or digests behind the idea (paths relative to campaign_dir; must exist).
    #[serde(default)]
    pub ncu_reports: Vec<String>,
    /// Profiler table rows the idea rests on: `<path relative to campaign_dir>[#row]`, e.g.
    /// `profiles/round-1/vllm/decode/tables.json#gemm`. The path must exist.
    pub profiler_rows: Vec<String>,
    /// Layer-pipeline evidence: `<path>[#anchor]` (e.g. `analysis/round-1/layer-pipeline.md#moe`). The path must exist.
    pub layer_pipeline_evidence: Vec<String>,
    /// Source locations in the framework the idea comes from (file:line, PR number, symbol).
    #[serde(default)]
    pub source_refs: Vec<String>,
    #[serde(default)]
    pub attempt_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "ledger", rename_all = "snake_case")]
pub enum LedgerEntry {
    Attempt(AttemptRow),
    Optimization(OptimizationRow),
    SourceIdea(SourceIdeaRow),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LedgerAppendRequest {
    /// The campaign run directory (from campaign_init).
    pub campaign_dir: PathBuf,
    /// The row; `ledger` selects attempt / optimization / source_idea.
    pub entry: LedgerEntry,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LedgerAppendReport {
    pub ledger: String,
    /// The id given to the row (attempt id, or `<ledger>-<n>`).
    pub row_id: String,
    /// Rows in this ledger after the append.
    pub rows: usize,
    pub markdown_path: String,
    pub jsonl_path: String,
    /// patches/<attempt>.diff when a patch was attached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_path: Option<String>,
    /// For optimization rows: the measured improvement over the prior best, in %.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub improvement_pct: Option<f64>,
}

pub struct LedgerAppend;

struct LedgerSpec {
    name: &'static str,
    md: &'static str,
    title: &'static str,
    columns: &'static [(&'static str, &'static str)],
}

const ATTEMPT: LedgerSpec = LedgerSpec {
    name: "attempt",
    md: "humanize/attempt-ledger.md",
    title: "Attempt ledger",
    columns: &[
        ("attempt", "attempt_id"),
        ("round", "round"),
        ("status", "status"),
        ("hypothesis", "hypothesis"),
        ("target", "target"),
        ("change", "change"),
        ("correctness", "correctness"),
        ("benchmark row", "benchmark_ref"),
        ("patch", "patch_path"),
        ("commit", "commit"),
        ("at", "at"),
    ],
};
const OPTIMIZATION: LedgerSpec = LedgerSpec {
    name: "optimization",
    md: "humanize/optimization-ledger.md",
    title: "Optimization ledger",
    columns: &[
        ("round", "round"),
        ("attempt", "attempt_id"),
        ("summary", "summary"),
        ("metric", "metric"),
        ("value", "value"),
        ("prior best", "prior_best_value"),
        ("improvement %", "improvement_pct"),
        ("CI %", "improvement_ci_pct"),
        ("runs", "runs"),
        ("correctness", "correctness"),
        ("benchmark row", "row_ref"),
        ("at", "at"),
    ],
};
const SOURCE_IDEA: LedgerSpec = LedgerSpec {
    name: "source_idea",
    md: "humanize/source-idea-ledger.md",
    title: "Source-idea ledger",
    columns: &[
        ("round", "round"),
        ("status", "status"),
        ("provenance", "provenance"),
        ("also from", "also_from"),
        ("idea", "idea"),
        ("profiler rows", "profiler_rows"),
        ("layer-pipeline evidence", "layer_pipeline_evidence"),
        ("source refs", "source_refs"),
        ("NCU reports", "ncu_reports"),
        ("attempt", "attempt_id"),
        ("at", "at"),
    ],
};

fn spec_for_md(rel: &str) -> Option<&'static LedgerSpec> {
    [&ATTEMPT, &OPTIMIZATION, &SOURCE_IDEA]
        .into_iter()
        .find(|s| s.md == rel)
}

fn jsonl_path(paths: &CampaignPaths, spec: &LedgerSpec) -> PathBuf {
    paths.root.join(spec.md.replace(".md", ".jsonl"))
}

/// The header-only markdown of a ledger (used by campaign_init).
pub(crate) fn empty_ledger_markdown(rel: &str) -> Option<String> {
    spec_for_md(rel).map(|s| render_markdown(s, &[]))
}

/// The text of one ledger value as a table cell shows it, unescaped: the table escapes
/// each cell once when the row is added (array items are joined first, then escaped).
fn cell_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| cell_text(Some(i)))
            .collect::<Vec<_>>()
            .join("; "),
        Some(Value::Object(o)) if o.contains_key("file") && o.contains_key("row_id") => {
            format!(
                "{}#{}",
                o["file"].as_str().unwrap_or(""),
                o["row_id"].as_str().unwrap_or("")
            )
        }
        Some(Value::Object(o)) if o.contains_key("passed") => {
            format!(
                "{} ({})",
                if o["passed"] == true { "pass" } else { "FAIL" },
                o.get("detail").and_then(|d| d.as_str()).unwrap_or("")
            )
        }
        Some(Value::Number(n)) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.3}"),
            _ => n.to_string(),
        },
        Some(other) => other.to_string(),
    }
}

fn render_markdown(spec: &LedgerSpec, rows: &[Value]) -> String {
    let columns: Vec<(&str, Align)> = spec
        .columns
        .iter()
        .map(|(h, _)| (*h, Align::Left))
        .collect();
    let mut t = md::Table::new(&columns);
    for row in rows {
        let cells: Vec<String> = spec
            .columns
            .iter()
            .map(|(_, key)| cell_text(row.get(*key)))
            .collect();
        t.row(&cells);
    }
    format!(
        "# {}\n\nMachine copy: `{}`. One row per entry, oldest first.\n\n{}",
        spec.title,
        spec.md.replace(".md", ".jsonl"),
        t.render()
    )
}

/// Keep the markdown table in step with the JSONL: append the new row when the table
/// already holds all earlier rows (the common case: O(1) per append), else re-render it whole.
fn write_markdown(path: &Path, spec: &LedgerSpec, rows: &[Value]) -> Result<()> {
    let table_rows = std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .skip_while(|l| !l.starts_with("|---"))
                .skip(1)
                .filter(|l| l.starts_with('|'))
                .count()
        })
        .unwrap_or(usize::MAX);
    if table_rows + 1 == rows.len() {
        let full = render_markdown(spec, &rows[rows.len() - 1..]);
        let last = full.lines().last().unwrap_or_default();
        return fsx::append_line(path, last);
    }
    fsx::write_text(path, &render_markdown(spec, rows))
}

/// The prior best: its value, a label naming it, and its row (with its file) when it is one.
type Prior = (f64, String, Option<(String, CandidateRow)>);

/// Find a row by id in a results JSONL of the campaign.
fn load_row(paths: &CampaignPaths, r: &RowRef, field: &str) -> Result<CandidateRow> {
    if Path::new(&r.file).is_absolute() || r.file.contains("..") {
        bail!(
            "{field}.file: must be a path relative to campaign_dir, got '{}'",
            r.file
        );
    }
    let file = paths.root.join(&r.file);
    if !file.is_file() {
        bail!("{field}.file: {} does not exist", file.display());
    }
    let rows: Vec<CandidateRow> =
        fsx::read_jsonl(&file).with_context(|| format!("{field}.file"))?;
    rows.into_iter()
        .find(|row| row.row_id == r.row_id)
        .with_context(|| format!("{field}.row_id: no row '{}' in {}", r.row_id, r.file))
}

fn check_evidence_paths(paths: &CampaignPaths, field: &str, items: &[String]) -> Result<()> {
    if items.is_empty() {
        bail!("{field}: required, at least one entry (`<path relative to campaign_dir>[#row]`)");
    }
    for (i, item) in items.iter().enumerate() {
        let path = item.split('#').next().unwrap_or(item);
        if path.contains("..") || Path::new(path).is_absolute() || !paths.root.join(path).exists() {
            bail!("{field}[{i}]: '{path}' is not an existing path inside the campaign directory");
        }
    }
    Ok(())
}

fn nonempty(field: &str, v: &str) -> Result<()> {
    if v.trim().is_empty() {
        bail!("{field}: required, must not be empty");
    }
    Ok(())
}

/// Hold the campaign's ledger lock for the duration of `f`.
fn with_ledger_lock<T>(paths: &CampaignPaths, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let lock_path = paths.root.join("humanize/.ledger.lock");
    fsx::ensure_parent(&lock_path)?;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("cannot lock {}", lock_path.display()))?;
    let out = f();
    lock.unlock().ok();
    out
}

impl LedgerAppend {
    fn attempt(
        paths: &CampaignPaths,
        row: AttemptRow,
        existing: &[Value],
    ) -> Result<(Value, Option<String>)> {
        if row.round == 0 {
            bail!("round: rounds start at 1 (round 0 is the fixed baseline)");
        }
        nonempty("hypothesis", &row.hypothesis)?;
        nonempty("target", &row.target)?;
        nonempty("change", &row.change)?;
        let id = match &row.attempt_id {
            Some(id) => {
                nonempty("attempt_id", id)?;
                if !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                {
                    bail!("attempt_id: '{id}' may hold only letters, digits, '-', '_' and '.'");
                }
                id.clone()
            }
            None => {
                let n = existing.iter().filter(|r| r["round"] == row.round).count() + 1;
                format!("r{}-a{n:02}", row.round)
            }
        };
        if existing.iter().any(|r| r["attempt_id"] == id.as_str()) {
            bail!("attempt_id: '{id}' is already in the attempt ledger");
        }
        let decision = gates::attempt_gate(paths, row.round)?;
        gates::code_first_gate(paths, row.round, decision.as_ref())?;
        if let Some(k) = &row.kernel {
            gates::kernel_gate(paths, row.round, k)?;
        }
        // The probe result stored on the measured row is the attempt's correctness.
        let mut correctness = row.correctness.clone();
        if let Some(b) = &row.benchmark_ref {
            let measured = load_row(paths, b, "benchmark_ref")?;
            if let Some(c) = &measured.correctness {
                if row
                    .correctness
                    .as_ref()
                    .is_some_and(|x| x.passed != c.passed)
                {
                    bail!(
                        "correctness.passed: the caller says {}, but row '{}' stores a probe that {} ({}/{} matched)",
                        !c.passed,
                        measured.row_id,
                        if c.passed { "passed" } else { "failed" },
                        c.matched,
                        c.probes
                    );
                }
                correctness = Some(CheckResult {
                    passed: c.passed,
                    detail: format!(
                        "greedy probe on {}#{}: {}/{} matched",
                        b.file, b.row_id, c.matched, c.probes
                    ),
                });
            }
        }
        let mut patch_path = None;
        if row.attach_patch {
            let campaign = paths.campaign()?;
            let checkout = campaign
                .vllm_checkout
                .context("attach_patch: the campaign has no vllm_checkout")?;
            let base = campaign
                .vllm_base_commit
                .context("attach_patch: the campaign recorded no vLLM base commit")?;
            let diff = git::diff_against(&checkout, &base)?;
            if diff.trim().is_empty() {
                bail!("attach_patch: the vLLM checkout has no changes against base {base}");
            }
            let rel = format!("patches/{id}.diff");
            fsx::write_text(&paths.root.join(&rel), &diff)?;
            patch_path = Some(rel);
        }
        let mut v = serde_json::to_value(&row)?;
        v["correctness"] = serde_json::to_value(&correctness)?;
        v["attempt_id"] = json!(id);
        v["patch_path"] = json!(patch_path);
        v.as_object_mut().unwrap().remove("attach_patch");
        Ok((v, patch_path))
    }

    fn optimization(
        paths: &CampaignPaths,
        row: OptimizationRow,
        attempts: &[Value],
        existing: &[Value],
    ) -> Result<(Value, f64)> {
        nonempty("summary", &row.summary)?;
        if !attempts
            .iter()
            .any(|a| a["attempt_id"] == row.attempt_id.as_str())
        {
            bail!(
                "attempt_id: '{}' has no row in the attempt ledger; append the attempt first",
                row.attempt_id
            );
        }
        if !row.correctness.passed {
            bail!(
                "correctness.passed: an optimization needs a passing correctness check (got false: {})",
                row.correctness.detail
            );
        }
        nonempty("correctness.detail", &row.correctness.detail)?;
        let m = row.measured_improvement.as_ref().context(
            "measured_improvement: required; point row_ref at the benchmark row (file + row_id) that beats the prior best",
        )?;
        let measured = load_row(paths, &m.row_ref, "measured_improvement.row_ref")?;
        if measured.status != RunStatus::Ok {
            bail!(
                "measured_improvement.row_ref: row '{}' has status {:?}, not ok",
                measured.row_id,
                measured.status
            );
        }
        if measured.framework != "vllm" {
            bail!(
                "measured_improvement.row_ref: row '{}' measures {}, not vllm",
                measured.row_id,
                measured.framework
            );
        }
        let value = m.metric.value(&measured).with_context(|| {
            format!(
                "measured_improvement.row_ref: row '{}' has no {:?} value",
                measured.row_id, m.metric
            )
        })?;
        let (prior_value, prior_ref, prior_row) = match &m.prior_best {
            Some(r) => {
                let prior = load_row(paths, r, "measured_improvement.prior_best")?;
                let v = m.metric.value(&prior).with_context(|| {
                    format!("measured_improvement.prior_best: no {:?} value", m.metric)
                })?;
                (
                    v,
                    format!("{}#{}", r.file, r.row_id),
                    Some((r.file.clone(), prior)),
                )
            }
            None => Self::prior_best(paths, &measured, m.metric, existing)?,
        };
        if value <= prior_value {
            bail!(
                "measured_improvement: {:?} {value:.4} of row '{}' is not better than the prior best {prior_value:.4} ({prior_ref})",
                m.metric,
                measured.row_id
            );
        }
        let imp = gates::noise_rule(
            paths,
            &m.row_ref,
            &measured,
            m.metric,
            (prior_value, prior_row),
        )?;
        let improvement_pct = imp.improvement_pct;
        let mut v = serde_json::to_value(&row)?;
        v["metric"] = json!(m.metric);
        v["value"] = json!(imp.value);
        v["prior_best_value"] = json!(prior_value);
        v["prior_best_ref"] = json!(prior_ref);
        v["improvement_pct"] = json!(improvement_pct);
        v["improvement_ci_pct"] = json!([imp.ci_low_pct, imp.ci_high_pct]);
        v["runs"] = json!(imp.runs);
        v["row_refs"] = serde_json::to_value(&imp.row_refs)?;
        v["row_ref"] = serde_json::to_value(&m.row_ref)?;
        v["scenario"] = json!(measured.scenario);
        Ok((v, improvement_pct))
    }

    /// Best vLLM value for the scenario among the fixed baseline and earlier optimization rows.
    fn prior_best(
        paths: &CampaignPaths,
        measured: &CandidateRow,
        metric: RankingMetric,
        existing: &[Value],
    ) -> Result<Prior> {
        let mut best: Option<Prior> = None;
        let mut consider = |v: f64, label: String, row: Option<(String, CandidateRow)>| {
            if best.as_ref().is_none_or(|(b, _, _)| v > *b) {
                best = Some((v, label, row));
            }
        };
        let baseline: Vec<CandidateRow> = fsx::read_jsonl(&paths.candidates())?;
        for r in baseline.iter().filter(|r| {
            r.framework == "vllm" && r.scenario == measured.scenario && r.status == RunStatus::Ok
        }) {
            if let Some(v) = metric.value(r) {
                consider(
                    v,
                    format!("benchmark/candidates.jsonl#{}", r.row_id),
                    Some(("benchmark/candidates.jsonl".to_string(), r.clone())),
                );
            }
        }
        for o in existing
            .iter()
            .filter(|o| o["scenario"] == measured.scenario.as_str() && o["metric"] == json!(metric))
        {
            if let Some(v) = o["value"].as_f64() {
                consider(
                    v,
                    format!(
                        "optimization ledger {}",
                        o["attempt_id"].as_str().unwrap_or("?")
                    ),
                    None,
                );
            }
        }
        best.with_context(|| {
            format!(
                "measured_improvement.prior_best: no vLLM row for scenario '{}' in benchmark/candidates.jsonl or earlier optimizations; pass prior_best",
                measured.scenario
            )
        })
    }

    fn source_idea(paths: &CampaignPaths, row: SourceIdeaRow) -> Result<Value> {
        nonempty("idea", &row.idea)?;
        check_evidence_paths(paths, "profiler_rows", &row.profiler_rows)?;
        check_evidence_paths(
            paths,
            "layer_pipeline_evidence",
            &row.layer_pipeline_evidence,
        )?;
        if !row.ncu_reports.is_empty() {
            check_evidence_paths(paths, "ncu_reports", &row.ncu_reports)?;
        }
        if matches!(row.status, Some(IdeaStatus::Rejected))
            && row
                .status_reason
                .as_deref()
                .is_none_or(|r| r.trim().is_empty())
        {
            bail!("status_reason: required for a rejected idea (say why)");
        }
        let mut v = serde_json::to_value(&row)?;
        v["status"] = json!(row.status.unwrap_or(IdeaStatus::Proposed));
        Ok(v)
    }
}

impl Tool for LedgerAppend {
    const NAME: &'static str = "ledger_append";
    const DESCRIPTION: &'static str = "Append one typed row to a campaign ledger: `attempt` (every patch attempt, kept or not; refused until the round's gap_decision says patch and analysis/round-N/root-cause.md and layer-pipeline.md are written; after two flat rounds it needs a source idea of the round with code-first provenance; a kernel edit passes the kernel gate: the layer pipeline names the kernel, a correctness reference, model shapes and a wiring path exist; the probe stored on benchmark_ref's row is its correctness; attach_patch saves the vLLM checkout's diff against the base as patches/<attempt_id>.diff), `optimization` (measured_improvement points at a benchmark row (file + row_id); its command needs min_repeats ok runs, each with a passing probe stored on the row, and the confidence interval of the improvement over the prior best must clear the 1% noise threshold; recomputed, not trusted), or `source_idea` (needs the profiler rows and layer-pipeline evidence it rests on, as existing paths, its provenance (vllm / sglang / tensorrt_llm / tokenspeed / ncu / pr_history, plus also_from), status (proposed / tried / kept / rejected with status_reason) and optional ncu_reports). Rejections name the field. Writes humanize/<ledger>.jsonl (machine copy), re-renders humanize/<ledger>.md, appends humanize/lineage.jsonl; atomic and locked across processes.";
    type Request = LedgerAppendRequest;
    type Report = LedgerAppendReport;

    fn run(req: LedgerAppendRequest, _ctx: &ToolContext) -> Result<LedgerAppendReport> {
        let paths = CampaignPaths::open(&req.campaign_dir)?;
        with_ledger_lock(&paths, || {
            let attempts: Vec<Value> = fsx::read_jsonl(&jsonl_path(&paths, &ATTEMPT))?;
            let (spec, mut row, patch_path, improvement_pct, round) = match req.entry {
                LedgerEntry::Attempt(a) => {
                    let round = a.round;
                    let (v, p) = Self::attempt(&paths, a, &attempts)?;
                    (&ATTEMPT, v, p, None, round)
                }
                LedgerEntry::Optimization(o) => {
                    let existing: Vec<Value> = fsx::read_jsonl(&jsonl_path(&paths, &OPTIMIZATION))?;
                    let round = o.round;
                    let (v, pct) = Self::optimization(&paths, o, &attempts, &existing)?;
                    (&OPTIMIZATION, v, None, Some(pct), round)
                }
                LedgerEntry::SourceIdea(s) => {
                    let round = s.round;
                    (
                        &SOURCE_IDEA,
                        Self::source_idea(&paths, s)?,
                        None,
                        None,
                        round,
                    )
                }
            };
            let jsonl = jsonl_path(&paths, spec);
            let mut rows: Vec<Value> = if spec.name == "attempt" {
                attempts
            } else {
                fsx::read_jsonl(&jsonl)?
            };
            let row_id = row
                .get("attempt_id")
                .and_then(|v| v.as_str())
                .filter(|_| spec.name == "attempt")
                .map(str::to_string)
                .unwrap_or_else(|| format!("{}-{}", spec.name, rows.len() + 1));
            let at = now_rfc3339();
            row["ledger_row_id"] = json!(row_id);
            row["at"] = json!(at);
            fsx::append_jsonl(&jsonl, &row)?;
            rows.push(row.clone());
            write_markdown(&paths.root.join(spec.md), spec, &rows)?;
            let summary = ["hypothesis", "summary", "idea"]
                .iter()
                .find_map(|k| row.get(*k).and_then(|v| v.as_str()))
                .unwrap_or("");
            fsx::append_jsonl(
                &paths.lineage(),
                &json!({"kind": spec.name, "round": round, "at": at, "ledger_row_id": row_id, "summary": summary,
                        "improvement_pct": improvement_pct, "row": row}),
            )?;
            Ok(LedgerAppendReport {
                ledger: spec.name.to_string(),
                row_id,
                rows: rows.len(),
                markdown_path: paths.root.join(spec.md).display().to_string(),
                jsonl_path: jsonl.display().to_string(),
                patch_path,
                improvement_pct,
            })
        })
    }

    fn markdown(r: &LedgerAppendReport) -> String {
        let mut s = format!(
            "Appended `{}` to the {} ledger ({} rows): {}\n",
            r.row_id, r.ledger, r.rows, r.markdown_path
        );
        if let Some(p) = &r.patch_path {
            s += &format!("Patch saved: {p}\n");
        }
        if let Some(pct) = r.improvement_pct {
            s += &format!("Measured improvement over the prior best: {pct:+.2}%\n");
        }
        s
    }
}

/// Rows of a ledger's JSONL machine copy (for status and reports).
pub(crate) fn read_ledger(paths: &CampaignPaths, ledger: &str) -> Result<Vec<Value>> {
    let spec = [&ATTEMPT, &OPTIMIZATION, &SOURCE_IDEA]
        .into_iter()
        .find(|s| s.name == ledger)
        .with_context(|| format!("unknown ledger '{ledger}'"))?;
    fsx::read_jsonl(&jsonl_path(paths, spec))
}
