//! `checkpoint` and `final_report`: documents rebuilt from the campaign's records
//! (campaign.json, benchmark rows, lineage, ledgers' JSONL copies, profiles, NCU
//! digests, the vLLM checkout), never from what the agent remembers.

use anyhow::Result;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use vllm_sota_core::fsx;
use vllm_sota_core::layout::{Campaign, CampaignPaths, now_rfc3339};
use vllm_sota_core::results::{CandidateRow, RankingMetric};
use vllm_sota_core::{Tool, ToolContext};

use crate::git::{self, ChangedFile};
use crate::records::{self, num_field, round_of, str_field, text_field};
use crate::summary;
use crate::verdict::{Verdict, VerdictInput};

/// Everything both documents read, gathered once.
struct Gathered {
    paths: CampaignPaths,
    campaign: Campaign,
    baseline: Vec<CandidateRow>,
    /// (round, rows) of the latest revalidation file with rows.
    post_patch: Option<(u32, Vec<CandidateRow>)>,
    lineage: Vec<Value>,
    attempts: Vec<Value>,
    optimizations: Vec<Value>,
    ideas: Vec<Value>,
    git: GitState,
}

#[derive(Default)]
struct GitState {
    branch: Option<String>,
    commit: Option<String>,
    changed: Option<Vec<ChangedFile>>,
    error: Option<String>,
}

fn gather(campaign_dir: &Path) -> Result<Gathered> {
    let paths = CampaignPaths::open(campaign_dir)?;
    let campaign = paths.campaign()?;
    let baseline = records::read_rows(&paths.candidates())?;
    let mut post_patch = None;
    for r in records::revalidation_rounds(&paths).into_iter().rev() {
        let rows = records::read_rows(&paths.revalidation(r))?;
        if !rows.is_empty() {
            post_patch = Some((r, rows));
            break;
        }
    }
    let lineage = records::read_objects(&paths.lineage())?;
    let attempts = records::read_objects(&records::jsonl_beside(&paths.attempt_ledger()))?;
    let optimizations =
        records::read_objects(&records::jsonl_beside(&paths.optimization_ledger()))?;
    let ideas = records::read_objects(&records::jsonl_beside(&paths.source_idea_ledger()))?;
    let mut g = GitState::default();
    match &campaign.vllm_checkout {
        None => g.error = Some("campaign.json has no vllm_checkout".into()),
        Some(dir) => match git::open(dir) {
            Err(e) => g.error = Some(format!("{e:#}")),
            Ok(repo) => {
                g.branch = git::current_branch(&repo);
                g.commit = git::head_commit(&repo);
                match &campaign.vllm_base_commit {
                    None => {
                        g.error = Some(
                            "campaign.json has no vllm_base_commit (the base for patch diffs)"
                                .into(),
                        )
                    }
                    Some(base) => match git::changed_files(&repo, base) {
                        Ok(c) => g.changed = Some(c),
                        Err(e) => g.error = Some(format!("{e:#}")),
                    },
                }
            }
        },
    }
    Ok(Gathered {
        paths,
        campaign,
        baseline,
        post_patch,
        lineage,
        attempts,
        optimizations,
        ideas,
        git: g,
    })
}

fn tests_from(attempts: &[Value], extra: &[String]) -> Vec<String> {
    let mut out: Vec<String> = extra.to_vec();
    for a in attempts {
        for key in ["tests", "tests_run"] {
            match a.get(key) {
                Some(Value::Array(items)) => {
                    out.extend(items.iter().filter_map(|i| i.as_str().map(str::to_string)))
                }
                Some(Value::String(s)) if !s.trim().is_empty() => out.push(s.clone()),
                _ => {}
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|t| seen.insert(t.clone()));
    out
}

fn rejected(g: &Gathered) -> Vec<String> {
    let bad = ["rejected", "failed", "reverted", "regressed", "abandoned"];
    let mut out = Vec::new();
    for (kind, rows) in [("source idea", &g.ideas), ("attempt", &g.attempts)] {
        for r in rows {
            let status = str_field(r, &["status", "verdict"])
                .unwrap_or("")
                .to_lowercase();
            if bad.iter().any(|b| status.contains(b)) {
                let id = text_field(r, &["idea_id", "attempt_id", "ledger_row_id", "id"])
                    .unwrap_or_default();
                let round = round_of(r)
                    .map(|x| format!("round {x}"))
                    .unwrap_or_default();
                let summary = text_field(r, &["summary", "idea", "change", "hypothesis", "title"])
                    .unwrap_or_default();
                let why = text_field(r, &["reason", "rejection_reason", "status_reason", "notes"])
                    .map(|w| format!(" — {w}"))
                    .unwrap_or_default();
                out.push(format!("{kind} {id} ({round}, {status}): {summary}{why}"));
            }
        }
    }
    out
}

fn best_vllm_rows(rows: &[CandidateRow]) -> Vec<&CandidateRow> {
    let vllm: Vec<CandidateRow> = rows
        .iter()
        .filter(|r| r.framework == "vllm")
        .cloned()
        .collect();
    let winners = summary::winners(&vllm, RankingMetric::default());
    let ids: Vec<String> = winners
        .values()
        .flat_map(|v| v.iter().map(|r| r.row_id.clone()))
        .collect();
    rows.iter().filter(|r| ids.contains(&r.row_id)).collect()
}

fn gap_lines(d: &Value) -> Vec<String> {
    let mut out = vec![format!(
        "Round {} decision `{}`: {}",
        round_of(d).unwrap_or(0),
        str_field(d, &["decision"]).unwrap_or("?"),
        str_field(d, &["reason"]).unwrap_or("")
    )];
    for s in d
        .get("scenarios")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let f = |k: &str| {
            num_field(s, &[k])
                .map(|x| format!("{x:+.2}%"))
                .unwrap_or_else(|| "—".into())
        };
        out.push(format!(
            "- {}: `{}`, vLLM vs {} {} (CI {} .. {}), vLLM SLA {}",
            str_field(s, &["scenario"]).unwrap_or("?"),
            str_field(s, &["decision"]).unwrap_or("?"),
            str_field(s, &["leader_framework"]).unwrap_or("?"),
            f("delta_pct"),
            f("ci_low_pct"),
            f("ci_high_pct"),
            if s.get("vllm_passes_sla").and_then(Value::as_bool) == Some(true) {
                "pass"
            } else {
                "FAIL"
            }
        ));
    }
    if let Some(g) = num_field(d, &["geomean_improvement_pct"]) {
        out.push(format!(
            "Geomean improvement over the prior best vLLM: {g:+.2}%"
        ));
    }
    out
}

fn first_lines(path: &Path, n: usize) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains(vllm_sota_core::layout::PLACEHOLDER_MARKER))
        .take(n)
        .map(str::to_string)
        .collect()
}

fn rel(g: &Gathered, p: &Path) -> String {
    records::relative(&g.paths, p)
}

fn changed_table(changed: &[ChangedFile], limit: usize) -> String {
    let mut s = String::from("| File | Status | + | − |\n|---|---|---|---|\n");
    for c in changed.iter().take(limit) {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} |",
            c.path, c.status, c.insertions, c.deletions
        );
    }
    if changed.len() > limit {
        let _ = writeln!(s, "| … {} more | | | |", changed.len() - limit);
    }
    s
}

fn layer_pipeline_paths(g: &Gathered) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if CampaignPaths::is_written(&g.paths.layer_pipeline()) {
        out.push(g.paths.layer_pipeline());
    }
    for r in 1..=g
        .lineage
        .iter()
        .filter_map(round_of)
        .max()
        .unwrap_or(0)
        .max(
            records::profile_rounds(&g.paths)
                .last()
                .copied()
                .unwrap_or(0),
        )
    {
        let p = g.paths.round_layer_pipeline(r);
        if p.is_file() {
            out.push(p);
        }
    }
    out
}

/// The measured improvement of an optimization row: `improvement_pct` (what ledger_append
/// writes), or `measured_improvement_pct` in rows written before the name was unified.
fn improvement_of(o: &Value) -> Option<f64> {
    num_field(o, &["improvement_pct", "measured_improvement_pct"])
}

fn optimization_lines(g: &Gathered) -> Vec<String> {
    g.optimizations
        .iter()
        .map(|o| {
            format!(
                "round {}: {} ({}{})",
                round_of(o)
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "?".into()),
                text_field(o, &["summary"]).unwrap_or_default(),
                improvement_of(o)
                    .map(|x| format!("{x:+.2}%"))
                    .unwrap_or_else(|| "improvement not recorded".into()),
                o.get("row_ref")
                    .map(|r| format!(", row {}", text_field(r, &["row_id"]).unwrap_or_default()))
                    .unwrap_or_default()
            )
        })
        .collect()
}

/// What a planned attempt row says it will do: its `change` (with the target), else its
/// hypothesis or summary.
fn planned_text(a: &Value) -> Option<String> {
    let change = text_field(a, &["change", "summary", "hypothesis"])?;
    Some(match text_field(a, &["target"]) {
        Some(t) if !change.contains(&t) => format!("{change} (target: {t})"),
        _ => change,
    })
}

// ---------------------------------------------------------------- checkpoint

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
    let g = gather(&req.campaign_dir)?;
    ctx.progress(1.0, Some(2.0), "records read");
    let c = &g.campaign;
    let mut missing = Vec::new();
    let mut s = String::new();
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
    let patches = records::patch_files(&g.paths);
    let _ = writeln!(s, "### Applied patches\n");
    for p in &patches {
        let _ = writeln!(s, "- `{}`", rel(&g, p));
    }
    for o in optimization_lines(&g) {
        let _ = writeln!(s, "- optimization: {o}");
    }
    if patches.is_empty() && g.optimizations.is_empty() {
        let _ = writeln!(s, "(none yet)");
    }
    let tests = tests_from(&g.attempts, &req.tests_run);
    let _ = writeln!(s, "\n### Tests run\n");
    if tests.is_empty() {
        let _ = writeln!(s, "(none recorded)");
        missing.push("tests run".into());
    }
    for t in &tests {
        let _ = writeln!(s, "- `{t}`");
    }

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
    let latest = records::latest_gap_decision(&g.lineage);
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

    let rounds = records::profile_rounds(&g.paths);
    let tables = rounds
        .last()
        .map(|r| records::profile_tables(&g.paths, *r))
        .unwrap_or_default();
    let _ = writeln!(s, "\n## Latest profile rows\n");
    if tables.is_empty() {
        let _ = writeln!(s, "(no profiles yet)");
        missing.push("profiles/round-N/<framework>/<stage>/tables.md".into());
    }
    for t in &tables {
        let text = std::fs::read_to_string(t).unwrap_or_default();
        let _ = writeln!(s, "`{}`:\n", rel(&g, t));
        let rows = records::first_table_rows(&text, 7);
        if rows.is_empty() {
            let _ = writeln!(s, "(no table found)\n");
        } else {
            let _ = writeln!(s, "{}\n", rows.join("\n"));
        }
    }
    let notes = g.paths.history_notes();
    let _ = writeln!(
        s,
        "## History notes\n\n`{}` ({})\n",
        rel(&g, &notes),
        if CampaignPaths::is_written(&notes) {
            "written"
        } else {
            "NOT written"
        }
    );
    let _ = writeln!(s, "## Layer-pipeline notes\n");
    let lp = layer_pipeline_paths(&g);
    if lp.is_empty() {
        let _ = writeln!(s, "(none yet)");
    }
    for p in &lp {
        let _ = writeln!(s, "`{}`:\n", rel(&g, p));
        for l in first_lines(p, 6) {
            let _ = writeln!(s, "> {l}");
        }
        let _ = writeln!(s);
    }
    let digests = records::ncu_digests(&g.paths);
    let _ = writeln!(s, "## NCU digests\n");
    if digests.is_empty() {
        let _ = writeln!(s, "(none)");
    }
    for d in &digests {
        let _ = writeln!(s, "- `{}`", rel(&g, d));
    }
    let rej = rejected(&g);
    let _ = writeln!(s, "\n## Rejected ideas\n");
    if rej.is_empty() {
        let _ = writeln!(s, "(none recorded)");
    }
    for r in &rej {
        let _ = writeln!(s, "- {r}");
    }
    let next = req.next_planned_patch.clone().or_else(|| {
        g.attempts
            .iter()
            .rev()
            .find(|a| str_field(a, &["status"]).is_some_and(|s| s.eq_ignore_ascii_case("planned")))
            .and_then(planned_text)
    });
    let _ = writeln!(
        s,
        "\n## Next planned patch\n\n{}",
        next.clone().unwrap_or_else(|| {
            "(not stated: pass next_planned_patch or record an attempt with status `planned`)"
                .into()
        })
    );
    let path = g.paths.checkpoint();
    fsx::write_text(&path, &s)?;
    let round_files = crate::round::scaffold(
        &g.paths,
        c,
        &g.lineage,
        &g.attempts,
        g.git.changed.as_deref(),
        &tests,
        next.as_deref(),
    )?;
    ctx.progress(2.0, Some(2.0), "checkpoint written");
    Ok(CheckpointReport {
        checkpoint_path: rel(&g, &path),
        vllm_branch: g.git.branch.clone(),
        vllm_commit: g.git.commit.clone(),
        changed_files: g.git.changed.as_ref().map(Vec::len),
        latest_gap_decision: latest.map(|d| {
            format!(
                "round {} {}",
                round_of(d).unwrap_or(0),
                str_field(d, &["decision"]).unwrap_or("?")
            )
        }),
        latest_round: latest.and_then(round_of),
        profile_tables: tables.iter().map(|t| rel(&g, t)).collect(),
        ncu_digests: digests.iter().map(|t| rel(&g, t)).collect(),
        applied_patches: patches.len().max(g.optimizations.len()),
        rejected_ideas: rej.len(),
        next_planned_patch: next,
        not_yet_available: missing,
        round_files,
    })
}

// ---------------------------------------------------------------- final report

/// Request of `final_report`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FinalReportRequest {
    /// Campaign run directory (holds campaign.json).
    pub campaign_dir: PathBuf,
    /// Test commands run (merged with `tests` recorded in the attempt ledger); at least one is required.
    #[serde(default)]
    pub tests_run: Vec<String>,
    /// Write the report although the latest gap decision is not a stop decision (it then says SOTA
    /// was not reached and why). Default false: the report is refused.
    #[serde(default)]
    pub allow_unfinished: bool,
}

/// Report of `final_report`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FinalReportReport {
    pub final_report_path: String,
    /// vLLM reached SOTA in the target environment (beats or ties the best competitor).
    pub reached_sota: bool,
    pub verdict: String,
    pub post_patch_round: u32,
    pub changed_files: usize,
    /// First 20 changed files.
    pub changed_files_top: Vec<ChangedFile>,
    pub profile_tables: usize,
    pub ncu_digests: usize,
    pub tests_run: usize,
}

pub struct FinalReport;

impl Tool for FinalReport {
    const NAME: &'static str = "final_report";
    const DESCRIPTION: &'static str = "Write final_report.md: the fixed benchmark table, the post-patch table (latest revalidation), all winner commands, the history notes path, profile, layer-pipeline and NCU digest paths, vLLM changed files (git diff of the checkout against campaign.json's vllm_base_commit), tests run, the optimizations and the per-round decisions, and whether vLLM reached SOTA in the target environment. Refuses, listing every missing piece, when the campaign is incomplete (no fixed benchmark, no post-patch rows, no history notes, no gap decision or no stop decision, no profiles or layer-pipeline report after a patch decision, no base commit or checkout for the diff, no tests).";
    type Request = FinalReportRequest;
    type Report = FinalReportReport;

    fn run(request: Self::Request, ctx: &ToolContext) -> Result<Self::Report> {
        run_final_report(request, ctx)
    }

    fn markdown(r: &Self::Report) -> String {
        format!(
            "# Final report written\n\n`{}`\n\n**{}** — {}\n\nPost-patch round {}; {} changed file(s); {} profile table(s); {} NCU digest(s); {} test command(s).\n",
            r.final_report_path,
            if r.reached_sota {
                "SOTA reached"
            } else {
                "SOTA not reached"
            },
            r.verdict,
            r.post_patch_round,
            r.changed_files,
            r.profile_tables,
            r.ncu_digests,
            r.tests_run
        )
    }
}

pub(crate) fn run_final_report(
    req: FinalReportRequest,
    ctx: &ToolContext,
) -> Result<FinalReportReport> {
    let g = gather(&req.campaign_dir)?;
    ctx.progress(1.0, Some(2.0), "records read");
    let mut missing: Vec<String> = Vec::new();
    if g.baseline.is_empty() {
        missing.push("benchmark/candidates.jsonl: the fixed benchmark rows".into());
    }
    if g.post_patch.is_none() {
        missing.push("benchmark/revalidation/round-N.jsonl: post-patch (revalidation) rows of the real model".into());
    }
    if !CampaignPaths::is_written(&g.paths.history_notes()) {
        missing.push(
            "history/model-pr-history-notes.md: model PR history notes (run history_notes)".into(),
        );
    }
    let latest = records::latest_gap_decision(&g.lineage);
    let decision = latest
        .and_then(|d| str_field(d, &["decision"]))
        .unwrap_or("");
    match latest {
        None => missing.push("humanize/lineage.jsonl: no gap_decision recorded".into()),
        Some(d) if !decision.starts_with("stop_") && !req.allow_unfinished => missing.push(format!(
            "a stop decision: the latest gap_decision (round {}) is `{decision}`; finish the loop, or pass allow_unfinished: true to report that SOTA was not reached",
            round_of(d).unwrap_or(0)
        )),
        _ => {}
    }
    let patched = g.lineage.iter().any(|d| {
        str_field(d, &["kind"]) == Some("gap_decision")
            && str_field(d, &["decision"]) == Some("patch")
    });
    let all_tables: Vec<PathBuf> = records::profile_rounds(&g.paths)
        .into_iter()
        .flat_map(|r| records::profile_tables(&g.paths, r))
        .collect();
    let lp = layer_pipeline_paths(&g);
    if patched && all_tables.is_empty() {
        missing.push("profiles/round-N/<framework>/<stage>/tables.md: profile tables (a round decided `patch`)".into());
    }
    if patched && lp.is_empty() {
        missing.push(
            "analysis/layer-pipeline.md: the layer-pipeline report (a round decided `patch`)"
                .into(),
        );
    }
    if let Some(e) = &g.git.error {
        missing.push(format!("vLLM changed files: {e}"));
    }
    let tests = tests_from(&g.attempts, &req.tests_run);
    if tests.is_empty() {
        missing.push("tests run: pass tests_run or record `tests` in the attempt ledger".into());
    }
    if !missing.is_empty() {
        anyhow::bail!(
            "final_report refused: the campaign is incomplete. Missing:\n- {}",
            missing.join("\n- ")
        );
    }
    let (post_round, post_rows) = g.post_patch.clone().expect("checked");
    let changed = g.git.changed.clone().unwrap_or_default();
    let hardware = summary::hardware(&g.baseline, &g.campaign);
    let Verdict {
        reached_sota,
        text: verdict,
    } = crate::verdict::verdict(&VerdictInput {
        latest,
        baseline: &g.baseline,
        post_patch: &post_rows,
        checkout_head: g.git.commit.as_deref(),
        base_commit: g.campaign.vllm_base_commit.as_deref(),
        changed_files: changed.len(),
        hardware: &hardware,
    });

    let c = &g.campaign;
    let mut s = String::new();
    let _ = writeln!(s, "# Final report: {}\n", c.model);
    let _ = writeln!(
        s,
        "Written by `final_report` at {} from `{}`.\n",
        now_rfc3339(),
        g.paths.root.display()
    );
    let _ = writeln!(
        s,
        "## Verdict\n\n**{}** — {verdict}\n",
        if reached_sota {
            "vLLM reached SOTA in the target environment"
        } else {
            "vLLM did not reach SOTA in the target environment"
        }
    );
    let _ = writeln!(
        s,
        "- Hardware: {hardware}\n- Precision: {}; quantization: {}; tokenizer `{}`\n- Workload and SLA: see below ({})\n",
        c.precision,
        c.quantization.as_deref().unwrap_or("none"),
        c.tokenizer,
        summary::sla_text(&g.baseline)
    );
    let _ = writeln!(
        s,
        "## Fixed benchmark (round 0)\n\n{}\n{}",
        summary::workload_table(&g.baseline),
        {
            let ordered: Vec<&CandidateRow> =
                summary::by_scenario(&g.baseline, RankingMetric::default())
                    .into_values()
                    .flatten()
                    .collect();
            summary::results_table(&ordered)
        }
    );
    let _ = writeln!(
        s,
        "## Post-patch results (benchmark/revalidation/round-{post_round}.jsonl)\n\n{}",
        {
            let ordered: Vec<&CandidateRow> =
                summary::by_scenario(&post_rows, RankingMetric::default())
                    .into_values()
                    .flatten()
                    .collect();
            summary::results_table(&ordered)
        }
    );
    let _ = writeln!(
        s,
        "## Winner commands\n\n{}",
        summary::winners_markdown(&g.baseline, RankingMetric::default())
    );
    let _ = writeln!(s, "## Decisions per round\n");
    for d in g
        .lineage
        .iter()
        .filter(|d| str_field(d, &["kind"]) == Some("gap_decision"))
    {
        let _ = writeln!(
            s,
            "- round {}: `{}`{}",
            round_of(d).unwrap_or(0),
            str_field(d, &["decision"]).unwrap_or("?"),
            num_field(d, &["geomean_improvement_pct"])
                .map(|x| format!(", geomean improvement {x:+.2}%"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(s, "\n## Optimizations\n");
    let opts = optimization_lines(&g);
    if opts.is_empty() {
        let _ = writeln!(s, "(none recorded)");
    }
    for o in opts {
        let _ = writeln!(s, "- {o}");
    }
    let _ = writeln!(s, "\n## Evidence paths\n");
    let _ = writeln!(
        s,
        "- Model PR history notes: `{}`",
        rel(&g, &g.paths.history_notes())
    );
    for t in &all_tables {
        let _ = writeln!(s, "- Profile tables: `{}`", rel(&g, t));
    }
    for p in &lp {
        let _ = writeln!(s, "- Layer pipeline: `{}`", rel(&g, p));
    }
    let digests = records::ncu_digests(&g.paths);
    for d in &digests {
        let _ = writeln!(s, "- NCU digest: `{}`", rel(&g, d));
    }
    if digests.is_empty() {
        let _ = writeln!(s, "- NCU digests: none (not used)");
    }
    let _ = writeln!(
        s,
        "\n## vLLM changed files\n\n`{}` from base `{}` to `{}` ({}): {} file(s)\n\n{}",
        c.vllm_checkout
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        c.vllm_base_commit.as_deref().unwrap_or("?"),
        g.git.commit.as_deref().unwrap_or("?"),
        g.git.branch.as_deref().unwrap_or("detached"),
        changed.len(),
        changed_table(&changed, 200)
    );
    let _ = writeln!(s, "## Tests run\n");
    for t in &tests {
        let _ = writeln!(s, "- `{t}`");
    }
    let path = g.paths.final_report();
    fsx::write_text(&path, &s)?;
    ctx.progress(2.0, Some(2.0), "final report written");
    Ok(FinalReportReport {
        final_report_path: rel(&g, &path),
        reached_sota,
        verdict,
        post_patch_round: post_round,
        changed_files: changed.len(),
        changed_files_top: changed.into_iter().take(20).collect(),
        profile_tables: all_tables.len(),
        ncu_digests: digests.len(),
        tests_run: tests.len(),
    })
}
