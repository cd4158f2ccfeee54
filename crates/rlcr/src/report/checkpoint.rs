//! `checkpoint`: humanize/model-loop-checkpoint.md rewritten from the campaign records,
//! and the active Humanize round's files scaffolded from the same records.

use anyhow::Result;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;
use vllm_sota_core::fsx;
use vllm_sota_core::layout::{CampaignPaths, now_rfc3339};
use vllm_sota_core::results::RankingMetric;
use vllm_sota_core::{Tool, ToolContext};

use super::{
    Gathered, best_vllm_rows, changed_table, first_lines, gap_lines, layer_pipeline_paths,
    optimization_lines, planned_text, rejected, rel, tests_from,
};
use crate::records::{self, round_of, str_field};
use crate::summary;

/// Request of `checkpoint`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckpointRequest {
    /// Campaign run directory (holds campaign.json).
    pub campaign_dir: PathBuf,
    /// The next planned vLLM patch, in a sentence or two. Default: the latest attempt row with status `planned`.
    #[serde(default)]
    pub next_planned_patch: Option<String>,
    /// Test commands run since the last checkpoint (merged with `tests` recorded in the attempt ledger).
    #[serde(default)]
    pub tests_run: Vec<String>,
}

/// Report of `checkpoint`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CheckpointReport {
    pub checkpoint_path: String,
    pub vllm_branch: Option<String>,
    pub vllm_commit: Option<String>,
    pub changed_files: Option<usize>,
    pub latest_gap_decision: Option<String>,
    pub latest_round: Option<u32>,
    pub profile_tables: Vec<String>,
    pub ncu_digests: Vec<String>,
    pub applied_patches: usize,
    pub rejected_ideas: usize,
    pub next_planned_patch: Option<String>,
    /// Records not available yet (informational: the checkpoint is written anyway).
    pub not_yet_available: Vec<String>,
    /// The active Humanize round's contract and summary, scaffolded from the records.
    pub round_files: Option<crate::round::RoundFiles>,
}

pub struct Checkpoint;

impl Tool for Checkpoint {
    const NAME: &'static str = "checkpoint";
    const DESCRIPTION: &'static str = "Rewrite humanize/model-loop-checkpoint.md from the campaign's records so the campaign can resume after a crash or context loss: model, tokenizer, precision, quantization, hardware, workload, SLA, artifact root, winner commands; vLLM branch, commit, changed files against the base commit, applied patches, tests; current best vLLM rows; remaining gap (latest gap_decision); latest profile table rows, history notes, layer-pipeline notes, NCU digest paths, rejected ideas and the next planned patch. With an active Humanize loop it also scaffolds the loop's round-N-contract.md and round-N-summary.md (with its `## BitLesson Delta` section) from the same records unless the agent already wrote them, and lists blockers the runtime would refuse (files over 2,000 lines, tracked `.humanize/`). Call after every accepted round and before exiting a Humanize round.";
    type Request = CheckpointRequest;
    type Report = CheckpointReport;

    fn run(request: Self::Request, ctx: &ToolContext) -> Result<Self::Report> {
        run_checkpoint(request, ctx)
    }

    fn markdown(r: &Self::Report) -> String {
        let mut s = format!("# Checkpoint written\n\n`{}`\n\n", r.checkpoint_path);
        let _ = writeln!(
            s,
            "- vLLM: {} @ {}",
            r.vllm_branch.as_deref().unwrap_or("?"),
            r.vllm_commit.as_deref().unwrap_or("?")
        );
        if let Some(d) = &r.latest_gap_decision {
            let _ = writeln!(s, "- Latest gap decision: {d}");
        }
        let _ = writeln!(
            s,
            "- Profile tables: {}; NCU digests: {}; patches: {}; rejected ideas: {}",
            r.profile_tables.len(),
            r.ncu_digests.len(),
            r.applied_patches,
            r.rejected_ideas
        );
        if !r.not_yet_available.is_empty() {
            let _ = writeln!(s, "- Not yet available: {}", r.not_yet_available.join("; "));
        }
        if let Some(f) = &r.round_files {
            let _ = writeln!(s, "{}", crate::round::describe(f));
        }
        s
    }
}

pub(crate) fn run_checkpoint(
    req: CheckpointRequest,
    ctx: &ToolContext,
) -> Result<CheckpointReport> {
    let g = super::gather(&req.campaign_dir)?;
    ctx.progress(1.0, Some(2.0), "records read");
    let f = CheckpointFacts::collect(&g, &req);
    let mut missing = Vec::new();
    let s = checkpoint_markdown(&g, &f, &mut missing);
    let path = g.paths.checkpoint();
    fsx::write_text(&path, &s)?;
    let round_files = crate::round::scaffold(
        &g.paths,
        &g.campaign,
        &g.lineage,
        &g.attempts,
        g.git.changed.as_deref(),
        &f.tests,
        f.next.as_deref(),
    )?;
    ctx.progress(2.0, Some(2.0), "checkpoint written");
    Ok(CheckpointReport {
        checkpoint_path: rel(&g, &path),
        vllm_branch: g.git.branch.clone(),
        vllm_commit: g.git.commit.clone(),
        changed_files: g.git.changed.as_ref().map(Vec::len),
        latest_gap_decision: f.latest.map(|d| {
            format!(
                "round {} {}",
                round_of(d).unwrap_or(0),
                str_field(d, &["decision"]).unwrap_or("?")
            )
        }),
        latest_round: f.latest.and_then(round_of),
        profile_tables: f.tables.iter().map(|t| rel(&g, t)).collect(),
        ncu_digests: f.digests.iter().map(|t| rel(&g, t)).collect(),
        applied_patches: f.patches.len().max(g.optimizations.len()),
        rejected_ideas: f.rejected.len(),
        next_planned_patch: f.next,
        not_yet_available: missing,
        round_files,
    })
}

/// What the checkpoint lists beyond the gathered records, looked up once for both the
/// document and the report.
struct CheckpointFacts<'a> {
    patches: Vec<PathBuf>,
    tests: Vec<String>,
    latest: Option<&'a Value>,
    /// Profile tables of the latest profiled round.
    tables: Vec<PathBuf>,
    digests: Vec<PathBuf>,
    rejected: Vec<String>,
    next: Option<String>,
}

impl<'a> CheckpointFacts<'a> {
    fn collect(g: &'a Gathered, req: &CheckpointRequest) -> Self {
        let rounds = records::profile_rounds(&g.paths);
        CheckpointFacts {
            patches: records::patch_files(&g.paths),
            tests: tests_from(&g.attempts, &req.tests_run),
            latest: records::latest_gap_decision(&g.lineage),
            tables: rounds
                .last()
                .map(|r| records::profile_tables(&g.paths, *r))
                .unwrap_or_default(),
            digests: records::ncu_digests(&g.paths),
            rejected: rejected(g),
            next: req.next_planned_patch.clone().or_else(|| next_planned(g)),
        }
    }
}

/// The latest attempt row with status `planned`, as a sentence.
fn next_planned(g: &Gathered) -> Option<String> {
    g.attempts
        .iter()
        .rev()
        .find(|a| str_field(a, &["status"]).is_some_and(|s| s.eq_ignore_ascii_case("planned")))
        .and_then(planned_text)
}

/// The checkpoint document, section by section; records not available yet are added to
/// `missing`.
fn checkpoint_markdown(g: &Gathered, f: &CheckpointFacts, missing: &mut Vec<String>) -> String {
    let mut s = String::new();
    write_campaign(&mut s, g);
    write_vllm(&mut s, g, f, missing);
    write_best_and_gap(&mut s, g, f.latest, missing);
    write_profile_rows(&mut s, g, &f.tables, missing);
    write_notes_and_digests(&mut s, g, &f.digests);
    write_rejected_and_next(&mut s, &f.rejected, f.next.as_deref());
    s
}

/// Title, campaign facts, workload and SLA, and the benchmark winner commands.
fn write_campaign(s: &mut String, g: &Gathered) {
    let c = &g.campaign;
    let _ = writeln!(s, "# Model loop checkpoint: {}\n", c.model);
    let _ = writeln!(
        s,
        "Rewritten by `checkpoint` at {} from the campaign records in `{}`.\n",
        now_rfc3339(),
        g.paths.root.display()
    );
    let _ = writeln!(s, "## Campaign\n");
    let _ = writeln!(
        s,
        "- Model: `{}` (slug `{}`, family `{}`)",
        c.model, c.model_slug, c.model_family
    );
    let _ = writeln!(s, "- Tokenizer: `{}`", c.tokenizer);
    let _ = writeln!(
        s,
        "- Precision: {}; quantization: {}",
        c.precision,
        c.quantization.as_deref().unwrap_or("none")
    );
    let _ = writeln!(s, "- Hardware: {}", summary::hardware(&g.baseline, c));
    let _ = writeln!(s, "- Artifact root: `{}`", g.paths.root.display());
    let _ = writeln!(s, "- Frameworks: {}\n", c.frameworks.join(", "));
    let _ = writeln!(
        s,
        "## Workload and SLA\n\n{}\nSLA: {}\n",
        summary::workload_table(&g.baseline),
        summary::sla_text(&g.baseline)
    );
    let _ = writeln!(
        s,
        "## Benchmark winner commands\n\n{}",
        summary::winners_markdown(&g.baseline, RankingMetric::default())
    );
}

/// The vLLM checkout: branch, commit, changed files against the base, applied patches
/// and tests run.
fn write_vllm(s: &mut String, g: &Gathered, f: &CheckpointFacts, missing: &mut Vec<String>) {
    let c = &g.campaign;
    let _ = writeln!(s, "## vLLM\n");
    let _ = writeln!(
        s,
        "- Checkout: `{}`",
        c.vllm_checkout
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(none)".into())
    );
    let _ = writeln!(
        s,
        "- Branch: {}; commit: {}",
        g.git.branch.as_deref().unwrap_or("?"),
        g.git.commit.as_deref().unwrap_or("?")
    );
    let _ = writeln!(
        s,
        "- Base commit: {}",
        c.vllm_base_commit.as_deref().unwrap_or("?")
    );
    match (&g.git.changed, &g.git.error) {
        (Some(ch), _) => {
            let _ = writeln!(
                s,
                "- Changed files against the base: {}\n\n{}",
                ch.len(),
                changed_table(ch, 30)
            );
        }
        (None, Some(e)) => {
            let _ = writeln!(s, "- Changed files: unavailable ({e})\n");
            missing.push(format!("vLLM diff: {e}"));
        }
        _ => {}
    }
    let _ = writeln!(s, "### Applied patches\n");
    for p in &f.patches {
        let _ = writeln!(s, "- `{}`", rel(g, p));
    }
    for o in optimization_lines(g) {
        let _ = writeln!(s, "- optimization: {o}");
    }
    if f.patches.is_empty() && g.optimizations.is_empty() {
        let _ = writeln!(s, "(none yet)");
    }
    let _ = writeln!(s, "\n### Tests run\n");
    if f.tests.is_empty() {
        let _ = writeln!(s, "(none recorded)");
        missing.push("tests run".into());
    }
    for t in &f.tests {
        let _ = writeln!(s, "- `{t}`");
    }
}

/// The current best vLLM rows (latest revalidation, else the fixed baseline) and the
/// remaining gap (latest gap decision).
fn write_best_and_gap(
    s: &mut String,
    g: &Gathered,
    latest: Option<&Value>,
    missing: &mut Vec<String>,
) {
    let _ = writeln!(s, "\n## Current best vLLM\n");
    match &g.post_patch {
        Some((r, rows)) => {
            let best = best_vllm_rows(rows);
            let _ = writeln!(
                s,
                "From `benchmark/revalidation/round-{r}.jsonl`:\n\n{}",
                summary::results_table(&best)
            );
        }
        None => {
            let best = best_vllm_rows(&g.baseline);
            let _ = writeln!(
                s,
                "No revalidation yet; the fixed baseline's best vLLM rows:\n\n{}",
                summary::results_table(&best)
            );
        }
    }
    let _ = writeln!(s, "## Remaining gap\n");
    match latest {
        Some(d) => {
            for l in gap_lines(d) {
                let _ = writeln!(s, "{l}");
            }
        }
        None => {
            let _ = writeln!(s, "(no gap_decision recorded yet)");
            missing.push("gap_decision".into());
        }
    }
}

/// The first rows of each profile table of the latest profiled round.
fn write_profile_rows(s: &mut String, g: &Gathered, tables: &[PathBuf], missing: &mut Vec<String>) {
    let _ = writeln!(s, "\n## Latest profile rows\n");
    if tables.is_empty() {
        let _ = writeln!(s, "(no profiles yet)");
        missing.push("profiles/round-N/<framework>/<stage>/tables.md".into());
    }
    for t in tables {
        let text = std::fs::read_to_string(t).unwrap_or_default();
        let _ = writeln!(s, "`{}`:\n", rel(g, t));
        let rows = records::first_table_rows(&text, 7);
        if rows.is_empty() {
            let _ = writeln!(s, "(no table found)\n");
        } else {
            let _ = writeln!(s, "{}\n", rows.join("\n"));
        }
    }
}

/// The history notes' state, the layer-pipeline notes' first lines and the NCU digest paths.
fn write_notes_and_digests(s: &mut String, g: &Gathered, digests: &[PathBuf]) {
    let notes = g.paths.history_notes();
    let _ = writeln!(
        s,
        "## History notes\n\n`{}` ({})\n",
        rel(g, &notes),
        if CampaignPaths::is_written(&notes) {
            "written"
        } else {
            "NOT written"
        }
    );
    let _ = writeln!(s, "## Layer-pipeline notes\n");
    let lp = layer_pipeline_paths(g);
    if lp.is_empty() {
        let _ = writeln!(s, "(none yet)");
    }
    for p in &lp {
        let _ = writeln!(s, "`{}`:\n", rel(g, p));
        for l in first_lines(p, 6) {
            let _ = writeln!(s, "> {l}");
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "## NCU digests\n");
    if digests.is_empty() {
        let _ = writeln!(s, "(none)");
    }
    for d in digests {
        let _ = writeln!(s, "- `{}`", rel(g, d));
    }
}

/// Rejected ideas and the next planned patch.
fn write_rejected_and_next(s: &mut String, rejected: &[String], next: Option<&str>) {
    let _ = writeln!(s, "\n## Rejected ideas\n");
    if rejected.is_empty() {
        let _ = writeln!(s, "(none recorded)");
    }
    for r in rejected {
        let _ = writeln!(s, "- {r}");
    }
    let _ = writeln!(
        s,
        "\n## Next planned patch\n\n{}",
        next.unwrap_or(
            "(not stated: pass next_planned_patch or record an attempt with status `planned`)"
        )
    );
}
