//! `final_report`: final_report.md rebuilt from the campaign records, refused with the
//! list of what is missing while the campaign is incomplete.

use anyhow::Result;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;
use vllm_sota_core::fsx;
use vllm_sota_core::layout::{CampaignPaths, now_rfc3339};
use vllm_sota_core::results::{CandidateRow, RankingMetric};
use vllm_sota_core::{Tool, ToolContext};

use super::{Gathered, changed_table, layer_pipeline_paths, optimization_lines, rel, tests_from};
use crate::cost::PhaseCost;
use crate::git::ChangedFile;
use crate::records::{self, num_field, round_of, str_field};
use crate::summary;
use crate::verdict::{Verdict, VerdictInput};

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
    /// GPU-minutes the records account for (start-ups, benchmark runs, profile_launch
    /// jobs); absent when no record is timed.
    pub gpu_minutes: Option<f64>,
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
    let g = super::gather(&req.campaign_dir)?;
    ctx.progress(1.0, Some(2.0), "records read");
    let latest = records::latest_gap_decision(&g.lineage);
    let all_tables: Vec<PathBuf> = records::profile_rounds(&g.paths)
        .into_iter()
        .flat_map(|r| records::profile_tables(&g.paths, r))
        .collect();
    let lp = layer_pipeline_paths(&g);
    let tests = tests_from(&g.attempts, &req.tests_run);
    let missing = missing_pieces(&g, latest, req.allow_unfinished, &all_tables, &lp, &tests);
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
    let costs = campaign_costs(&g);
    let digests = records::ncu_digests(&g.paths);
    let s = final_report_markdown(&FinalDoc {
        g: &g,
        reached_sota,
        verdict: &verdict,
        hardware: &hardware,
        post_round,
        post_rows: &post_rows,
        costs: &costs,
        all_tables: &all_tables,
        lp: &lp,
        digests: &digests,
        changed: &changed,
        tests: &tests,
    });
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
        gpu_minutes: (!costs.is_empty()).then(|| costs.iter().map(|c| c.gpu_minutes).sum()),
    })
}

/// Every piece a complete campaign has and this one lacks (empty when complete).
fn missing_pieces(
    g: &Gathered,
    latest: Option<&Value>,
    allow_unfinished: bool,
    all_tables: &[PathBuf],
    lp: &[PathBuf],
    tests: &[String],
) -> Vec<String> {
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
    let decision = latest
        .and_then(|d| str_field(d, &["decision"]))
        .unwrap_or("");
    match latest {
        None => missing.push("humanize/lineage.jsonl: no gap_decision recorded".into()),
        Some(d) if !decision.starts_with("stop_") && !allow_unfinished => missing.push(format!(
            "a stop decision: the latest gap_decision (round {}) is `{decision}`; finish the loop, or pass allow_unfinished: true to report that SOTA was not reached",
            round_of(d).unwrap_or(0)
        )),
        _ => {}
    }
    let patched = g.lineage.iter().any(|d| {
        str_field(d, &["kind"]) == Some("gap_decision")
            && str_field(d, &["decision"]) == Some("patch")
    });
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
    if tests.is_empty() {
        missing.push("tests run: pass tests_run or record `tests` in the attempt ledger".into());
    }
    missing
}

/// What the campaign cost: every row measured (fixed benchmark and revalidations).
fn campaign_costs(g: &Gathered) -> Vec<PhaseCost> {
    let mut timed = g.baseline.clone();
    for r in records::revalidation_rounds(&g.paths) {
        timed.extend(records::read_rows(&g.paths.revalidation(r)).unwrap_or_default());
    }
    crate::cost::phase_costs(&g.paths, &timed, g.campaign.gpu_ids.len() as u32)
}

/// Everything the final report document shows, decided before it is written.
struct FinalDoc<'a> {
    g: &'a Gathered,
    reached_sota: bool,
    verdict: &'a str,
    hardware: &'a str,
    post_round: u32,
    post_rows: &'a [CandidateRow],
    costs: &'a [PhaseCost],
    all_tables: &'a [PathBuf],
    lp: &'a [PathBuf],
    digests: &'a [PathBuf],
    changed: &'a [ChangedFile],
    tests: &'a [String],
}

/// The final report document, section by section.
fn final_report_markdown(d: &FinalDoc) -> String {
    let mut s = String::new();
    write_verdict(&mut s, d);
    write_results(&mut s, d);
    s.push_str(&crate::cost::render(d.costs));
    write_decisions_and_optimizations(&mut s, d.g);
    write_evidence(&mut s, d);
    write_changes_and_tests(&mut s, d);
    s
}

/// Title, the verdict and the environment it holds in.
fn write_verdict(s: &mut String, d: &FinalDoc) {
    let c = &d.g.campaign;
    let _ = writeln!(s, "# Final report: {}\n", c.model);
    let _ = writeln!(
        s,
        "Written by `final_report` at {} from `{}`.\n",
        now_rfc3339(),
        d.g.paths.root.display()
    );
    let _ = writeln!(
        s,
        "## Verdict\n\n**{}** — {}\n",
        if d.reached_sota {
            "vLLM reached SOTA in the target environment"
        } else {
            "vLLM did not reach SOTA in the target environment"
        },
        d.verdict
    );
    let _ = writeln!(
        s,
        "- Hardware: {}\n- Precision: {}; quantization: {}; tokenizer `{}`\n- Workload and SLA: see below ({})\n",
        d.hardware,
        c.precision,
        c.quantization.as_deref().unwrap_or("none"),
        c.tokenizer,
        summary::sla_text(&d.g.baseline)
    );
}

/// `rows` as a results table, grouped by scenario in ranking order.
fn ordered_results_table(rows: &[CandidateRow]) -> String {
    let ordered: Vec<&CandidateRow> = summary::by_scenario(rows, RankingMetric::default())
        .into_values()
        .flatten()
        .collect();
    summary::results_table(&ordered)
}

/// The fixed benchmark, the post-patch results and the winner commands.
fn write_results(s: &mut String, d: &FinalDoc) {
    let _ = writeln!(
        s,
        "## Fixed benchmark (round 0)\n\n{}\n{}",
        summary::workload_table(&d.g.baseline),
        ordered_results_table(&d.g.baseline)
    );
    let _ = writeln!(
        s,
        "## Post-patch results (benchmark/revalidation/round-{}.jsonl)\n\n{}",
        d.post_round,
        ordered_results_table(d.post_rows)
    );
    let _ = writeln!(
        s,
        "## Winner commands\n\n{}",
        summary::winners_markdown(&d.g.baseline, RankingMetric::default())
    );
}

/// The gap decision of every round and the optimizations recorded.
fn write_decisions_and_optimizations(s: &mut String, g: &Gathered) {
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
    let opts = optimization_lines(g);
    if opts.is_empty() {
        let _ = writeln!(s, "(none recorded)");
    }
    for o in opts {
        let _ = writeln!(s, "- {o}");
    }
}

/// Paths of the history notes, profile tables, layer-pipeline reports and NCU digests.
fn write_evidence(s: &mut String, d: &FinalDoc) {
    let g = d.g;
    let _ = writeln!(s, "\n## Evidence paths\n");
    let _ = writeln!(
        s,
        "- Model PR history notes: `{}`",
        rel(g, &g.paths.history_notes())
    );
    for t in d.all_tables {
        let _ = writeln!(s, "- Profile tables: `{}`", rel(g, t));
    }
    for p in d.lp {
        let _ = writeln!(s, "- Layer pipeline: `{}`", rel(g, p));
    }
    for n in d.digests {
        let _ = writeln!(s, "- NCU digest: `{}`", rel(g, n));
    }
    if d.digests.is_empty() {
        let _ = writeln!(s, "- NCU digests: none (not used)");
    }
}

/// The vLLM checkout's changed files against the base commit and the tests run.
fn write_changes_and_tests(s: &mut String, d: &FinalDoc) {
    let (c, git) = (&d.g.campaign, &d.g.git);
    let _ = writeln!(
        s,
        "\n## vLLM changed files\n\n`{}` from base `{}` to `{}` ({}): {} file(s)\n\n{}",
        c.vllm_checkout
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        c.vllm_base_commit.as_deref().unwrap_or("?"),
        git.commit.as_deref().unwrap_or("?"),
        git.branch.as_deref().unwrap_or("detached"),
        d.changed.len(),
        changed_table(d.changed, 200)
    );
    let _ = writeln!(s, "## Tests run\n");
    for t in d.tests {
        let _ = writeln!(s, "- `{t}`");
    }
}
