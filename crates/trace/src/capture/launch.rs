//! `profile_launch`: profile the winners, not a server that happens to be up.
//!
//! A detached, resumable job: for one framework of a campaign, rebuild the winning
//! candidate's launch argv from `benchmark/plan.json` (the same winner
//! `benchmark/winning-commands.md` shows: best row of `benchmark/candidates.jsonl` by the
//! campaign's ranking rule), add the profiler (vLLM `--profiler-config` bounded to the
//! window's steps; SGLang `SGLANG_TORCH_PROFILER_DIR`), launch it with fair_benchmark's
//! launch/readiness/teardown code, capture prefill and decode at the winner's concurrency
//! and lengths, tear it down, then do the same with CUDA graphs off (vLLM
//! `--enforce-eager`, SGLang `--disable-cuda-graph`) for the mapping twin. Traces land
//! in `profiles/round-N/<framework>/<stage>/` and `<stage>-eager/`; a stage directory
//! holding `capture.json` is done and skipped on resume.

use anyhow::{Context, Result, bail};
use std::path::Path;
use vllm_sota_core::fsx;
use vllm_sota_core::layout::CampaignPaths;
use vllm_sota_core::results::CandidateRow;
use vllm_sota_fairbench::artifacts::winners;
use vllm_sota_fairbench::preflight::Plan;
use vllm_sota_fairbench::search::plan_path;

use super::Shapes;

/// The winning row of `framework` for `scenario` (default: the first scenario with one).
pub fn winner_row(
    paths: &CampaignPaths,
    plan: &Plan,
    framework: &str,
    scenario: Option<&str>,
) -> Result<CandidateRow> {
    let rows: Vec<CandidateRow> = fsx::read_jsonl(&paths.candidates())
        .with_context(|| format!("{}", paths.candidates().display()))?;
    let win = winners(&rows, plan.config.benchmark.ranking_metric);
    let names: Vec<&str> = plan.scenarios.iter().map(|s| s.name.as_str()).collect();
    if let Some(s) = scenario
        && !names.contains(&s)
    {
        bail!(
            "field `scenario`: `{s}` is not a scenario of this campaign ({})",
            names.join(", ")
        );
    }
    for sc in &plan.scenarios {
        if scenario.is_some_and(|s| s != sc.name) {
            continue;
        }
        if let Some(r) = win
            .get(&sc.name)
            .and_then(|l| l.iter().find(|r| r.framework == framework))
        {
            return Ok(r.clone());
        }
    }
    bail!(
        "no successful {framework} row in {} for {}: run fair_benchmark first (winning-commands.md lists the winners)",
        paths.candidates().display(),
        scenario
            .map(|s| format!("scenario `{s}`"))
            .unwrap_or("any scenario".into())
    )
}

fn load_plan(paths: &CampaignPaths) -> Result<Plan> {
    fsx::read_json(&plan_path(paths))
        .with_context(|| format!("{} (written by fair_benchmark)", plan_path(paths).display()))
}

/// Concurrency and lengths of the framework's winning row.
pub fn winner_shapes(dir: &Path, framework: &str, scenario: Option<&str>) -> Result<Shapes> {
    let paths = CampaignPaths::new(dir);
    let plan = load_plan(&paths)?;
    let row = winner_row(&paths, &plan, framework, scenario)?;
    shapes_of(&row)
}

fn shapes_of(row: &CandidateRow) -> Result<Shapes> {
    let c = row.workload.max_concurrency.with_context(|| {
        format!(
            "winning row `{}` was measured by request rate, not at a concurrency: pass `concurrency`",
            row.row_id
        )
    })?;
    Ok(Shapes {
        concurrency: c,
        input_len: row.workload.input_len,
        output_len: row.workload.output_len,
    })
}
