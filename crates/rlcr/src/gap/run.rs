//! `gap_decision`'s I/O: read the campaign's rows, lineage and checkout, hand them to
//! [`super::decide`], and record the decision (`analysis/round-N/gap-decision.{md,json}`,
//! one lineage row).

use anyhow::Result;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use vllm_sota_core::ToolContext;
use vllm_sota_core::fsx;
use vllm_sota_core::layout::{CampaignPaths, round_label};
use vllm_sota_core::results::RankingMetric;

use super::decide::{self, ScenarioInput, Sourced, WorkloadSize};
use super::render::{lineage_row, metric_name, render_markdown};
use super::{
    Decision, GapDecisionReport, GapDecisionRequest, GapPolicy, ScenarioDecision, StopClaim,
    StopClaimKind, StopClaimVerdict, Thresholds, TwoRoundsRule,
};
use crate::records::{self, num_field, round_of, str_field};
use crate::{git, stats};

/// Scenario name of rows that concern every scenario (preflight environment gaps, rejections).
pub(crate) const ALL_SCENARIOS: &str = "all";

/// The rows one decision reads.
struct Loaded {
    baseline: Vec<Sourced>,
    /// Current rows (revalidation files, explicit refs); empty = the baseline's vLLM rows.
    current: Vec<Sourced>,
    current_source: String,
}

fn load_rows(paths: &CampaignPaths, req: &GapDecisionRequest) -> Result<Loaded> {
    let candidates_path = paths.candidates();
    let baseline = records::read_rows(&candidates_path)?;
    if baseline.is_empty() {
        anyhow::bail!(
            "{} has no rows: run the fixed benchmark first",
            candidates_path.display()
        );
    }
    let base_file = records::relative(paths, &candidates_path);
    let baseline: Vec<Sourced> = baseline
        .into_iter()
        .map(|row| Sourced {
            file: base_file.clone(),
            row,
        })
        .collect();
    let mut current: Vec<Sourced> = Vec::new();
    for f in &req.current_files {
        let p = records::resolve(paths, f);
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
    for (r, row) in records::rows_by_ref(paths, &req.current_rows)? {
        current.push(Sourced { file: r.file, row });
    }
    let current_source = if current.is_empty() {
        format!("the fixed baseline's vLLM rows ({base_file})")
    } else {
        let files: BTreeSet<&str> = current.iter().map(|s| s.file.as_str()).collect();
        format!(
            "{} row(s) from {}",
            current.len(),
            files.into_iter().collect::<Vec<_>>().join(", ")
        )
    };
    Ok(Loaded {
        baseline,
        current,
        current_source,
    })
}

/// What campaign.json and the checkout say: enabled competitors, the checkout's HEAD, the base.
struct CampaignFacts {
    enabled_competitors: Vec<String>,
    checkout_head: Option<String>,
    base_commit: Option<String>,
}

fn campaign_facts(paths: &CampaignPaths) -> CampaignFacts {
    let campaign = paths.campaign().ok();
    let checkout_head = campaign
        .as_ref()
        .and_then(|c| c.vllm_checkout.as_ref())
        .and_then(|dir| git::open(dir).ok())
        .and_then(|repo| git::head_commit(&repo));
    CampaignFacts {
        enabled_competitors: campaign
            .as_ref()
            .map(|c| {
                c.frameworks
                    .iter()
                    .filter(|f| f.as_str() != "vllm")
                    .cloned()
                    .collect()
            })
            .unwrap_or_default(),
        checkout_head,
        base_commit: campaign.and_then(|c| c.vllm_base_commit),
    }
}

fn scenario_input(
    sc: &str,
    rows: &Loaded,
    facts: &CampaignFacts,
    waiver: Option<String>,
) -> ScenarioInput {
    let in_sc = |s: &&Sourced| s.row.scenario == sc;
    let vllm_source = if rows.current.is_empty() {
        &rows.baseline
    } else {
        &rows.current
    };
    ScenarioInput {
        scenario: sc.to_string(),
        vllm: vllm_source
            .iter()
            .filter(in_sc)
            .filter(|s| s.row.framework == "vllm")
            .cloned()
            .collect(),
        competitors: rows
            .baseline
            .iter()
            .chain(rows.current.iter())
            .filter(in_sc)
            .filter(|s| s.row.framework != "vllm")
            .cloned()
            .collect(),
        competitor_notes_rows: rows
            .baseline
            .iter()
            .filter(|s| s.row.scenario == ALL_SCENARIOS && s.row.framework != "vllm")
            .cloned()
            .collect(),
        enabled_competitors: facts.enabled_competitors.clone(),
        full_workload: WorkloadSize::full_of(rows.baseline.iter().filter(in_sc).map(|s| &s.row)),
        checkout_head: facts.checkout_head.clone(),
        base_commit: facts.base_commit.clone(),
        waiver,
    }
}

/// Prior best vLLM value of a scenario: the baseline, earlier lineage values and earlier decisions.
fn prior_best(
    lineage: &[Value],
    sc: &str,
    round: u32,
    metric: RankingMetric,
    baseline_best: Option<f64>,
) -> Option<f64> {
    let mut prior: Vec<f64> = baseline_best.into_iter().collect();
    for row in lineage {
        if round_of(row).is_none_or(|r| r >= round) {
            continue;
        }
        let kind = str_field(row, &["kind"]).unwrap_or("");
        let metric_ok = str_field(row, &["metric"]).is_none_or(|m| m == metric_name(metric));
        if (kind == "vllm_best" || kind == "baseline_best")
            && metric_ok
            && str_field(row, &["scenario"]) == Some(sc)
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
                if str_field(s, &["scenario"]) == Some(sc) {
                    prior.extend(num_field(s, &["vllm_mean"]));
                }
            }
        }
    }
    prior
        .into_iter()
        .filter(|x| x.is_finite() && *x > 0.0)
        .reduce(f64::max)
}

pub(crate) fn check_stop_claim(paths: &CampaignPaths, claim: &StopClaim) -> StopClaimVerdict {
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

/// Rounds (this one first, then consecutive earlier ones) with their geomean improvement,
/// as far back as the two-rounds rule looks.
fn weak_rounds(
    lineage: &[Value],
    round: u32,
    geomean: Option<f64>,
    rule: &TwoRoundsRule,
) -> Vec<(u32, f64)> {
    let mut out: Vec<(u32, f64)> = Vec::new();
    let Some(g) = geomean else {
        return out;
    };
    out.push((round, g));
    // Latest recorded decision per earlier round, walking back while rounds are consecutive.
    let mut per_round: BTreeMap<u32, Option<f64>> = BTreeMap::new();
    for row in lineage
        .iter()
        .filter(|r| str_field(r, &["kind"]) == Some("gap_decision"))
    {
        if let Some(r) = round_of(row).filter(|r| *r < round) {
            per_round.insert(r, num_field(row, &["geomean_improvement_pct"]));
        }
    }
    let mut r = round;
    while out.len() < rule.consecutive_rounds as usize {
        r = match r.checked_sub(1) {
            Some(r) => r,
            None => break,
        };
        match per_round.get(&r).copied().flatten() {
            Some(x) => out.push((r, x)),
            None => break,
        }
    }
    out
}

/// `(expand_research, reason)` of the two-rounds rule.
fn two_rounds_rule(weak: &[(u32, f64)], rule: &TwoRoundsRule) -> (bool, Option<String>) {
    let expand = weak.len() >= rule.consecutive_rounds as usize
        && weak
            .iter()
            .all(|(_, x)| *x < rule.min_geomean_improvement_pct);
    let reason = expand.then(|| {
        let list: Vec<String> = weak
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
    (expand, reason)
}

/// Decide every scenario of the fixed baseline; the slowest patch scenario gives the shapes.
fn decide_all(
    req: &GapDecisionRequest,
    ctx: &ToolContext,
    rows: &Loaded,
    lineage: &[Value],
    t: &Thresholds,
    metric: RankingMetric,
    facts: &CampaignFacts,
) -> Result<(Vec<ScenarioDecision>, Option<super::ProfileShapes>)> {
    let waiver = req
        .competitor_waiver
        .as_ref()
        .map(|w| w.reason.trim().to_string());
    let scenarios: BTreeSet<&str> = rows
        .baseline
        .iter()
        .map(|s| s.row.scenario.as_str())
        .filter(|s| *s != ALL_SCENARIOS)
        .collect();
    let mut out = Vec::new();
    let mut slow: Option<(f64, String, vllm_sota_core::results::CandidateRow)> = None;
    for sc in scenarios {
        ctx.check_cancelled()?;
        let inp = scenario_input(sc, rows, facts, waiver.clone());
        let decided = decide::decide_scenario(&inp, t, metric);
        let mut d = decided.decision;
        if let Some((gap, row)) = decided.slow
            && slow.as_ref().is_none_or(|(g, _, _)| gap > *g)
        {
            slow = Some((gap, sc.to_string(), row));
        }
        let baseline_best = decide::best_mean(
            rows.baseline
                .iter()
                .filter(|s| s.row.scenario == sc && s.row.framework == "vllm")
                .cloned()
                .collect(),
            metric,
        );
        d.prior_best_vllm = prior_best(lineage, sc, req.round, metric, baseline_best);
        if !rows.current.is_empty() && req.round > 1 {
            d.improvement_over_prior_pct =
                decide::pct_of(d.vllm.as_ref().and_then(|v| v.mean), d.prior_best_vllm);
        }
        out.push(d);
    }
    Ok((out, slow.map(|(_, sc, row)| decide::shapes_for(&sc, &row))))
}

pub(crate) fn run_gap_decision(
    req: GapDecisionRequest,
    ctx: &ToolContext,
) -> Result<GapDecisionReport> {
    let policy = GapPolicy::load()?;
    let paths = CampaignPaths::open(&req.campaign_dir)?;
    if req.round == 0 {
        anyhow::bail!("round: must be >= 1 (round 0 is the fixed baseline)");
    }
    if let Some(w) = &req.competitor_waiver
        && w.reason.trim().is_empty()
    {
        anyhow::bail!("competitor_waiver.reason: required, say who waived it and why");
    }
    let metric = req.ranking_metric.unwrap_or(policy.ranking_metric);
    let t = Thresholds::new(
        &policy,
        req.noise_threshold_pct,
        req.min_repeats,
        req.confidence_level,
    )?;
    let rows = load_rows(&paths, &req)?;
    ctx.progress(1.0, Some(3.0), "rows loaded");
    let lineage = records::read_objects(&paths.lineage())?;
    let facts = campaign_facts(&paths);
    let (out, profile_shapes) = decide_all(&req, ctx, &rows, &lineage, &t, metric, &facts)?;
    ctx.progress(2.0, Some(3.0), "scenarios decided");

    let (mut decision, mut reason) = decide::overall(&out);
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

    let ratios: Vec<f64> = out
        .iter()
        .filter_map(|d| d.improvement_over_prior_pct.map(|p| 1.0 + p / 100.0))
        .collect();
    let geomean_improvement_pct = stats::geomean(&ratios).map(|g| (g - 1.0) * 100.0);
    let rule = &policy.two_rounds_rule;
    let weak = weak_rounds(&lineage, req.round, geomean_improvement_pct, rule);
    let (expand_research, expand_research_reason) = two_rounds_rule(&weak, rule);

    let mut frameworks_to_profile: Vec<String> = Vec::new();
    for d in out.iter().filter(|d| d.decision == Decision::Patch) {
        for f in &d.frameworks_to_profile {
            if !frameworks_to_profile.contains(f) {
                frameworks_to_profile.push(f.clone());
            }
        }
    }

    let mut report = GapDecisionReport {
        round: req.round,
        decision,
        reason,
        ranking_metric: metric,
        noise_threshold_pct: t.thr,
        min_repeats: t.min_repeats,
        confidence_level: t.confidence,
        current_source: rows.current_source,
        scenarios: out,
        geomean_improvement_pct,
        expand_research,
        expand_research_reason,
        frameworks_to_profile,
        profile_shapes,
        stop_claim,
        competitor_waiver: req.competitor_waiver.clone(),
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
