//! `checkpoint` and `final_report`: documents rebuilt from the campaign's records
//! (campaign.json, benchmark rows, lineage, ledgers' JSONL copies, profiles, NCU
//! digests, the vLLM checkout), never from what the agent remembers.

mod checkpoint;
mod final_report;

use anyhow::Result;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use vllm_sota_core::layout::{Campaign, CampaignPaths};
use vllm_sota_core::md::{self, Align};
use vllm_sota_core::results::{CandidateRow, RankingMetric};

use crate::git::{self, ChangedFile};
use crate::records::{self, num_field, round_of, str_field, text_field};
use crate::summary;

pub use checkpoint::{Checkpoint, CheckpointReport};
pub use final_report::FinalReport;

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
    let mut t = md::Table::new(&[
        ("File", Align::Left),
        ("Status", Align::Left),
        ("+", Align::Left),
        ("−", Align::Left),
    ]);
    for c in changed.iter().take(limit) {
        t.row(&[
            format!("`{}`", c.path),
            c.status.clone(),
            c.insertions.to_string(),
            c.deletions.to_string(),
        ]);
    }
    let mut s = t.render();
    if changed.len() > limit {
        // Written as is: a table row would space the empty cells differently.
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
