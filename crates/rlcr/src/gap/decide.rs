//! The pure decision: rows in, a decision per scenario and overall out. No I/O: the
//! caller ([`super::run`]) reads the records and hands every fact in.
//!
//! Rules (also in `references/gap-policy.json`):
//! - a competitor is evidence only with measured rows (status ok, a value of the ranking
//!   metric) on the same machine (GPU model, single/multi node) and workload (dataset,
//!   lengths, prompt count, endpoint) as vLLM's sample, and without vLLM holding a warmer
//!   prefix cache than it;
//! - rows of a reduced workload (a `label`, or fewer prompts / shorter lengths than the
//!   scenario's full rows) inform but never decide a stop;
//! - throughput is compared only between SLA-passing sides; when no side passes the SLA the
//!   scenario is `patch` (vLLM must meet it) and says so;
//! - a stop needs vLLM rows that measured the checkout's code (commit) and, for patched code,
//!   a passing greedy correctness probe; a failing probe is `patch`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use vllm_sota_core::results::{CandidateRow, RankingMetric, RunStatus, compare_rank};

use super::sample::{Group, compare, groups, pct};
use super::{CompetitorNote, Decision, ScenarioDecision, Thresholds};

/// Key of `metrics.extra` holding the prefix-cache hit rate (fraction of prompt tokens served
/// from the cache) of a run.
pub(crate) const PREFIX_CACHE_HIT_RATE: &str = "prefix_cache_hit_rate";

/// A row with the file it came from.
#[derive(Debug, Clone)]
pub(crate) struct Sourced {
    pub file: String,
    pub row: CandidateRow,
}

/// The full size of a scenario's workload: the largest prompt count and lengths among its
/// unlabeled rows. A row below it in any dimension is a reduced workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct WorkloadSize {
    pub num_prompts: u64,
    pub input_len: u64,
    pub output_len: u64,
}

impl WorkloadSize {
    /// Component-wise maximum over the unlabeled rows; `None` when every row is labeled.
    pub(crate) fn full_of<'a>(rows: impl IntoIterator<Item = &'a CandidateRow>) -> Option<Self> {
        rows.into_iter()
            .filter(|r| r.workload.label.is_none())
            .map(|r| WorkloadSize {
                num_prompts: r.workload.num_prompts,
                input_len: r.workload.input_len,
                output_len: r.workload.output_len,
            })
            .reduce(|a, b| WorkloadSize {
                num_prompts: a.num_prompts.max(b.num_prompts),
                input_len: a.input_len.max(b.input_len),
                output_len: a.output_len.max(b.output_len),
            })
    }
}

/// Why `row` is a reduced workload against the scenario's full size, if it is.
pub(crate) fn reduced_reason(row: &CandidateRow, full: Option<WorkloadSize>) -> Option<String> {
    let w = &row.workload;
    if let Some(label) = &w.label {
        return Some(format!(
            "row {} carries the reduced-workload label `{label}`",
            row.row_id
        ));
    }
    let full = full?;
    let mut short = Vec::new();
    if w.num_prompts < full.num_prompts {
        short.push(format!("{} of {} prompts", w.num_prompts, full.num_prompts));
    }
    if w.input_len < full.input_len {
        short.push(format!("input {} < {}", w.input_len, full.input_len));
    }
    if w.output_len < full.output_len {
        short.push(format!("output {} < {}", w.output_len, full.output_len));
    }
    (!short.is_empty()).then(|| {
        format!(
            "row {} is smaller than the scenario's full workload ({})",
            row.row_id,
            short.join(", ")
        )
    })
}

/// Everything one scenario's decision reads.
#[derive(Debug, Clone, Default)]
pub(crate) struct ScenarioInput {
    pub scenario: String,
    /// vLLM's current rows (a revalidation, explicit refs, or the fixed baseline's).
    pub vllm: Vec<Sourced>,
    /// Competitor rows of this scenario (fixed baseline and re-runs).
    pub competitors: Vec<Sourced>,
    /// Competitor rows that concern every scenario (preflight environment gaps, rejections).
    pub competitor_notes_rows: Vec<Sourced>,
    /// Competitor frameworks the campaign enables (campaign.json).
    pub enabled_competitors: Vec<String>,
    /// The scenario's full workload size (see [`WorkloadSize::full_of`]).
    pub full_workload: Option<WorkloadSize>,
    /// The commit the vLLM checkout is at, when known.
    pub checkout_head: Option<String>,
    /// The campaign's vLLM base commit, when known.
    pub base_commit: Option<String>,
    /// The user's recorded waiver of unavailable competitors.
    pub waiver: Option<String>,
}

/// One scenario decided; `slow` is the gap that ranks it for profile shapes (patch only).
pub(crate) struct Decided {
    pub decision: ScenarioDecision,
    pub slow: Option<(f64, CandidateRow)>,
}

fn blank(scenario: &str) -> ScenarioDecision {
    ScenarioDecision {
        scenario: scenario.to_string(),
        decision: Decision::Rerun,
        reason: String::new(),
        informative_decision: None,
        leader: None,
        competitors: Vec::new(),
        competitor_notes: Vec::new(),
        reduced_workload: None,
        no_sla_pass: false,
        vllm: None,
        vllm_passes_sla: false,
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
    }
}

/// Same machine: GPU model (when both rows name one) and single/multi node.
fn same_machine(a: &CandidateRow, b: &CandidateRow) -> Result<(), String> {
    if let (Some(x), Some(y)) = (&a.hardware.gpu_model, &b.hardware.gpu_model)
        && !x.eq_ignore_ascii_case(y)
    {
        return Err(format!("GPU {y} vs vLLM's {x}"));
    }
    if a.hardware.multi_node != b.hardware.multi_node {
        return Err("multi-node differs from vLLM's run".into());
    }
    Ok(())
}

/// Same workload: dataset, lengths, prompt count, endpoint, label.
fn same_workload(a: &CandidateRow, b: &CandidateRow) -> Result<(), String> {
    let (x, y) = (&a.workload, &b.workload);
    let mut diff = Vec::new();
    if x.dataset != y.dataset {
        diff.push(format!("dataset {} vs {}", y.dataset, x.dataset));
    }
    if (x.input_len, x.output_len) != (y.input_len, y.output_len) {
        diff.push(format!(
            "lengths {}/{} vs {}/{}",
            y.input_len, y.output_len, x.input_len, x.output_len
        ));
    }
    if x.num_prompts != y.num_prompts {
        diff.push(format!("{} vs {} prompts", y.num_prompts, x.num_prompts));
    }
    if x.endpoint != y.endpoint {
        diff.push(format!("endpoint {} vs {}", y.endpoint, x.endpoint));
    }
    if x.label != y.label {
        diff.push(format!("label {:?} vs {:?}", y.label, x.label));
    }
    if diff.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "another workload than vLLM's ({})",
            diff.join(", ")
        ))
    }
}

/// Classify competitor groups (best first) against vLLM's sample: the comparable ones, and a
/// note for every enabled or present competitor framework that is not evidence.
fn classify_competitors<'a>(
    v: &Group,
    comp: &'a [Group],
    inp: &ScenarioInput,
    t: &Thresholds,
    metric: RankingMetric,
) -> (Vec<&'a Group>, Vec<CompetitorNote>) {
    let metric_value = |r: &CandidateRow| metric.value(r);
    let vrow = &v.rows[0].row;
    let v_cache = v.cache_hit_rate();
    let mut comparable = Vec::new();
    let mut why: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for g in comp {
        let first_ok = g
            .rows
            .iter()
            .find(|s| s.row.status == RunStatus::Ok && metric_value(&s.row).is_some());
        let Some(first_ok) = first_ok.filter(|_| !g.values.is_empty()) else {
            why.entry(g.framework.clone())
                .or_default()
                .push(g.unmeasured_reason());
            continue;
        };
        let check = same_machine(vrow, &first_ok.row)
            .and_then(|_| same_workload(vrow, &first_ok.row))
            .and_then(|_| match v_cache {
                Some(hv) if hv > g.cache_hit_rate().unwrap_or(0.0) + t.max_cache_gap => Err(format!(
                    "vLLM's prefix-cache hit rate {hv:.2} exceeds its {} (warm cache on one side only)",
                    g.cache_hit_rate()
                        .map(|x| format!("{x:.2}"))
                        .unwrap_or_else(|| "unmeasured rate".into())
                )),
                _ => Ok(()),
            });
        match check {
            Ok(()) => comparable.push(g),
            Err(e) => why
                .entry(g.framework.clone())
                .or_default()
                .push(format!("{} measured on {e}", g.candidate_id)),
        }
    }
    let ok_fw: BTreeSet<&str> = comparable.iter().map(|g| g.framework.as_str()).collect();
    let measured_fw: BTreeSet<&str> = comp
        .iter()
        .filter(|g| !g.values.is_empty())
        .map(|g| g.framework.as_str())
        .collect();
    for s in &inp.competitor_notes_rows {
        if s.row.status != RunStatus::Ok {
            why.entry(s.row.framework.clone())
                .or_default()
                .push(format!("{}: {}", s.row.row_id, s.row.status_text()));
        }
    }
    for fw in &inp.enabled_competitors {
        if !why.contains_key(fw) && !ok_fw.contains(fw.as_str()) {
            why.entry(fw.clone())
                .or_default()
                .push("enabled in campaign.json but has no row in this scenario".into());
        }
    }
    let notes = why
        .into_iter()
        .filter(|(fw, _)| !ok_fw.contains(fw.as_str()))
        .map(|(fw, mut reasons)| {
            reasons.truncate(4);
            CompetitorNote {
                state: if measured_fw.contains(fw.as_str()) {
                    "not_comparable".into()
                } else {
                    "unavailable".into()
                },
                framework: fw,
                reason: reasons.join("; "),
            }
        })
        .collect();
    (comparable, notes)
}

/// Why a stop on vLLM's sample cannot be trusted: rows of other code than the checkout, or
/// patched code without a passing correctness probe. `Err` carries the replacing decision.
fn vllm_evidence(v: &Group, inp: &ScenarioInput) -> Result<(), (Decision, String)> {
    for s in &v.rows {
        if let Some(c) = s.row.correctness.as_ref().filter(|c| !c.passed) {
            return Err((
                Decision::Patch,
                format!(
                    "the measured vLLM fails the greedy correctness probe on row {} ({}/{} matched{}): a faster wrong answer is not a win; fix or revert the patch",
                    s.row.row_id,
                    c.matched,
                    c.probes,
                    c.detail
                        .as_deref()
                        .map(|d| format!(", {d}"))
                        .unwrap_or_default()
                ),
            ));
        }
    }
    let head = inp.checkout_head.as_deref();
    let base = inp.base_commit.as_deref();
    for s in &v.rows {
        match (s.row.vllm_commit.as_deref(), head) {
            (Some(c), Some(h)) if c != h => {
                return Err((
                    Decision::Rerun,
                    format!(
                        "row {} measured vLLM commit {c}, but the checkout is at {h}: revalidate the checkout's code",
                        s.row.row_id
                    ),
                ));
            }
            (None, Some(h)) if base.is_some_and(|b| b != h) => {
                return Err((
                    Decision::Rerun,
                    format!(
                        "row {} names no vLLM commit while the checkout ({h}) differs from the base: revalidate so the rows prove which code they measured",
                        s.row.row_id
                    ),
                ));
            }
            _ => {}
        }
        let patched = match (s.row.vllm_commit.as_deref(), base) {
            (Some(c), Some(b)) => c != b,
            _ => false,
        };
        if patched && s.row.correctness.is_none() {
            return Err((
                Decision::Rerun,
                format!(
                    "row {} measured patched vLLM ({}) without a correctness probe result: revalidate with the probe on",
                    s.row.row_id,
                    s.row.vllm_commit.as_deref().unwrap_or("?")
                ),
            ));
        }
    }
    Ok(())
}

fn fill_deltas(d: &mut ScenarioDecision, v: &Group, c: &Group) {
    d.throughput_delta_pct = pct(v.mean(), c.mean());
    d.p50_ttft_delta_pct = pct(v.p50_ttft(), c.p50_ttft());
    d.p50_tpot_delta_pct = pct(v.p50_tpot(), c.p50_tpot());
}

/// The decision with no comparable competitor.
fn without_competitor(d: &mut ScenarioDecision, v: &Group, inp: &ScenarioInput) {
    let notes: Vec<String> = d
        .competitor_notes
        .iter()
        .map(|n| format!("{} {}: {}", n.framework, n.state, n.reason))
        .collect();
    let notes = if notes.is_empty() {
        "no competitor row exists for this scenario".to_string()
    } else {
        notes.join("; ")
    };
    let any_measured = d
        .competitor_notes
        .iter()
        .any(|n| n.state == "not_comparable");
    if !v.passes_sla {
        d.decision = Decision::Patch;
        d.reason = format!(
            "vLLM fails the SLA ({}) and no competitor is evidence here ({notes})",
            v.summary().sla_failures.join("; ")
        );
    } else if let Some(r) = &d.reduced_workload {
        d.decision = Decision::BlockedReducedWorkload;
        d.reason = format!(
            "{r}: reduced rows inform but cannot decide; and no competitor is evidence here ({notes})"
        );
    } else if any_measured {
        d.decision = Decision::BlockedNotComparable;
        d.reason = format!(
            "no competitor was measured on vLLM's machine and workload ({notes}): re-run them like for like"
        );
    } else if let Some(w) = &inp.waiver {
        d.decision = Decision::StopExternal;
        d.reason = format!(
            "no competitor could run here ({notes}); the user waived the comparison: {w}. Not a win"
        );
    } else {
        d.decision = Decision::BlockedCompetitorUnavailable;
        d.reason = format!(
            "no competitor has measured rows ({notes}): a missing competitor is not a win; install and benchmark one, or record a competitor_waiver (stop_external)"
        );
    }
}

/// The decision between vLLM and a comparable leader, before the evidence checks.
fn against_leader(d: &mut ScenarioDecision, v: &Group, c: &Group, t: &Thresholds) {
    fill_deltas(d, v, c);
    let fail = |g: &Group| g.summary().sla_failures.join("; ");
    if c.passes_sla && !v.passes_sla {
        d.decision = Decision::Patch;
        d.reason = format!(
            "vLLM fails the SLA ({}) while {} {} passes",
            fail(v),
            c.framework,
            c.candidate_id
        );
    } else if !c.passes_sla && !v.passes_sla {
        d.decision = Decision::Patch;
        d.no_sla_pass = true;
        d.reason = format!(
            "no framework passes the SLA in this scenario (vLLM: {}; best competitor {} {}: {}): throughput is not compared; vLLM must meet the SLA",
            fail(v),
            c.framework,
            c.candidate_id,
            fail(c)
        );
    } else if v.passes_sla && !c.passes_sla {
        let n = v.values.len() as u32;
        if n >= t.min_repeats {
            d.decision = Decision::StopBeats;
            d.enough_repeats = c.values.len() as u32 >= t.min_repeats;
            d.reason = format!(
                "vLLM passes the SLA in all {n} runs; no measured competitor does (best: {} {}: {})",
                c.framework,
                c.candidate_id,
                fail(c)
            );
        } else {
            d.decision = Decision::Rerun;
            let k = t.min_repeats - n;
            d.additional_runs_needed = Some(k);
            d.resolvable_within_cap = Some(true);
            d.reason = format!(
                "vLLM passes the SLA where no measured competitor does, but in {n} run(s) only: run vLLM's winning command {k} more time(s)"
            );
        }
    } else {
        let cmp = compare(v, c, t);
        d.decision = cmp.decision;
        d.reason = cmp.reason;
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
}

/// Decide one scenario.
pub(crate) fn decide_scenario(
    inp: &ScenarioInput,
    t: &Thresholds,
    metric: RankingMetric,
) -> Decided {
    let mut d = blank(&inp.scenario);
    let vllm_groups = groups(inp.vllm.clone(), metric);
    let comp_groups = groups(inp.competitors.clone(), metric);
    let Some(v) = vllm_groups.first() else {
        d.decision = Decision::Rerun;
        d.reason = format!(
            "no current vLLM row for scenario {}: run vLLM's winning command {} time(s)",
            inp.scenario, t.min_repeats
        );
        d.additional_runs_needed = Some(t.min_repeats);
        return Decided {
            decision: d,
            slow: None,
        };
    };
    d.vllm = Some(v.summary());
    d.vllm_passes_sla = v.passes_sla;
    d.reduced_workload = v
        .rows
        .iter()
        .find_map(|s| reduced_reason(&s.row, inp.full_workload));
    let (comparable, notes) = classify_competitors(v, &comp_groups, inp, t, metric);
    d.competitor_notes = notes;
    let mut seen = BTreeSet::new();
    let best_per_fw: Vec<&Group> = comparable
        .iter()
        .copied()
        .filter(|g| seen.insert(g.framework.clone()))
        .collect();
    d.competitors = best_per_fw.iter().map(|g| g.summary()).collect();
    let Some(c) = comparable.first().copied() else {
        without_competitor(&mut d, v, inp);
        return Decided {
            decision: d,
            slow: None,
        };
    };
    d.leader = Some(c.summary());
    against_leader(&mut d, v, c, t);
    if let Err((decision, why)) = vllm_evidence(v, inp)
        && (d.decision.is_stop() || decision == Decision::Patch)
    {
        d.reason = if decision == Decision::Patch && d.decision == Decision::Patch {
            format!("{why}; also: {}", d.reason)
        } else {
            format!(
                "{why} (the rows alone would say {}: {})",
                d.decision.as_str(),
                d.reason
            )
        };
        d.decision = decision;
    }
    if d.decision.is_win()
        && let Some(r) = d.reduced_workload.clone()
    {
        d.informative_decision = Some(d.decision);
        d.reason = format!(
            "{r}: reduced rows inform but cannot decide (they suggest {}: {})",
            d.decision.as_str(),
            d.reason
        );
        d.decision = Decision::BlockedReducedWorkload;
    }
    let mut slow = None;
    if d.decision == Decision::Patch {
        d.frameworks_to_profile = profile_list(v, c, &best_per_fw, t, metric);
        // Slowest scenario: an SLA failure against a passing leader counts as the largest gap.
        let gap = if !v.passes_sla && c.passes_sla {
            f64::INFINITY
        } else {
            -d.throughput_delta_pct.unwrap_or(0.0)
        };
        slow = Some((gap, c.rows[0].row.clone()));
    }
    Decided { decision: d, slow }
}

/// vLLM, the leader, and every other comparable competitor ahead of vLLM beyond the threshold.
fn profile_list(
    v: &Group,
    c: &Group,
    best_per_fw: &[&Group],
    t: &Thresholds,
    metric: RankingMetric,
) -> Vec<String> {
    let mut fws = vec!["vllm".to_string(), c.framework.clone()];
    for g in best_per_fw {
        let ahead_on_sla = g.passes_sla && !v.passes_sla;
        let ahead_on_tp = pct(v.mean(), g.mean()).is_some_and(|x| x < -t.thr);
        if compare_rank(&g.synthetic, &v.synthetic, metric) == Ordering::Less
            && (ahead_on_sla || ahead_on_tp)
            && !fws.contains(&g.framework)
        {
            fws.push(g.framework.clone());
        }
    }
    fws
}

/// The overall decision: patch if any scenario is patch; else rerun if any is rerun; else the
/// first blocked state (competitor unavailable, not comparable, reduced workload); else
/// stop_external if any scenario is (a waiver); else stop_beats if every scenario beats;
/// else stop_tied. No scenario at all is a rerun, never a win.
pub(crate) fn overall(out: &[ScenarioDecision]) -> (Decision, String) {
    let names = |x: Decision| -> Vec<&str> {
        out.iter()
            .filter(|d| d.decision == x)
            .map(|d| d.scenario.as_str())
            .collect()
    };
    if out.is_empty() {
        return (
            Decision::Rerun,
            "rerun: no scenario has benchmark rows to decide on".into(),
        );
    }
    for (x, what) in [
        (Decision::Patch, "patch: vLLM is behind or fails the SLA in"),
        (Decision::Rerun, "rerun: not enough evidence in"),
        (
            Decision::BlockedCompetitorUnavailable,
            "blocked: no competitor has measured rows in",
        ),
        (
            Decision::BlockedNotComparable,
            "blocked: no competitor was measured on vLLM's machine and workload in",
        ),
        (
            Decision::BlockedReducedWorkload,
            "blocked: only reduced (flow-check) rows exist in",
        ),
        (
            Decision::StopExternal,
            "stop_external: no competitor could run and the user waived the comparison in",
        ),
    ] {
        let n = names(x);
        if !n.is_empty() {
            return (x, format!("{what} {}", n.join(", ")));
        }
    }
    if out.iter().all(|d| d.decision == Decision::StopBeats) {
        (
            Decision::StopBeats,
            "vLLM beats the best measured competitor in every scenario".to_string(),
        )
    } else {
        (
            Decision::StopTied,
            "vLLM is at least tied within the noise threshold in every scenario".to_string(),
        )
    }
}

/// Mean of the ranking metric of the best candidate among `rows` (by the ranking rule).
pub(crate) fn best_mean(rows: Vec<Sourced>, metric: RankingMetric) -> Option<f64> {
    groups(rows, metric).first().and_then(Group::mean)
}

/// `(a − b) / b` in percent.
pub(crate) fn pct_of(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    pct(a, b)
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;

pub(crate) use super::sample::shapes_for;
