//! The final verdict: whether the campaign's records support "vLLM reached SOTA".
//!
//! A win is written only when the whole chain holds: the latest `gap_decision` is
//! `stop_beats` / `stop_tied` in every scenario, each scenario names a measured competitor
//! and no reduced workload, and the post-patch vLLM rows measured the checkout's code
//! (its HEAD commit; not the unpatched base when the checkout holds a patch) with no failed
//! correctness probe. Anything else is "not reached", with the reason. Rows of a reduced
//! workload anywhere in the fixed benchmark or the post-patch rows are named in the verdict
//! line: they inform but cannot decide.

use serde_json::Value;
use std::collections::BTreeSet;
use vllm_sota_core::results::CandidateRow;

use crate::records::{num_field, str_field};

/// What the verdict reads.
pub(crate) struct VerdictInput<'a> {
    /// The latest `gap_decision` lineage row.
    pub latest: Option<&'a Value>,
    pub baseline: &'a [CandidateRow],
    pub post_patch: &'a [CandidateRow],
    /// The vLLM checkout's HEAD commit, when known.
    pub checkout_head: Option<&'a str>,
    /// The campaign's vLLM base commit, when known.
    pub base_commit: Option<&'a str>,
    /// Files the checkout changed against the base (0 = no patch).
    pub changed_files: usize,
    /// Hardware in words, for the verdict line.
    pub hardware: &'a str,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Verdict {
    pub reached_sota: bool,
    /// One line: the claim (or "not reached: …") and why.
    pub text: String,
}

/// Labels (or `row … smaller`) of reduced-workload rows among `rows`.
fn reduced_labels(rows: &[CandidateRow]) -> BTreeSet<String> {
    rows.iter()
        .filter_map(|r| r.workload.label.clone())
        .collect()
}

/// Why the latest decision's scenarios do not support a win, if they do not.
fn decision_gap(latest: &Value) -> Option<String> {
    let scenarios: Vec<&Value> = latest
        .get("scenarios")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    if scenarios.is_empty() {
        return Some("the latest gap_decision lists no scenario".into());
    }
    for s in scenarios {
        let name = str_field(s, &["scenario"]).unwrap_or("?");
        let d = str_field(s, &["decision"]).unwrap_or("?");
        if d != "stop_beats" && d != "stop_tied" {
            return Some(format!("scenario {name} is `{d}`, not a win"));
        }
        if str_field(s, &["leader_framework"]).is_none() || num_field(s, &["leader_mean"]).is_none()
        {
            return Some(format!(
                "scenario {name} names no measured competitor: a missing competitor is not a win"
            ));
        }
        if let Some(r) = str_field(s, &["reduced_workload"]) {
            return Some(format!(
                "scenario {name} was decided on a reduced workload ({r})"
            ));
        }
        if s.get("no_sla_pass").and_then(Value::as_bool) == Some(true) {
            return Some(format!("no framework passes the SLA in scenario {name}"));
        }
    }
    None
}

/// Why the post-patch vLLM rows do not prove the checkout's code correct, if they do not.
fn code_gap(inp: &VerdictInput) -> Option<String> {
    let vllm: Vec<&CandidateRow> = inp
        .post_patch
        .iter()
        .filter(|r| r.framework == "vllm")
        .collect();
    if vllm.is_empty() {
        return Some("the post-patch rows hold no vLLM row".into());
    }
    for r in &vllm {
        if let Some(c) = r.correctness.as_ref().filter(|c| !c.passed) {
            return Some(format!(
                "post-patch row {} fails the correctness probe ({}/{} matched)",
                r.row_id, c.matched, c.probes
            ));
        }
        if let (Some(c), Some(h)) = (r.vllm_commit.as_deref(), inp.checkout_head)
            && c != h
        {
            return Some(format!(
                "post-patch row {} measured vLLM commit {c}, not the checkout's {h}",
                r.row_id
            ));
        }
        if inp.changed_files > 0 {
            match (r.vllm_commit.as_deref(), inp.base_commit) {
                (Some(c), Some(b)) if c == b => {
                    return Some(format!(
                        "post-patch row {} measured the unpatched base {b}",
                        r.row_id
                    ));
                }
                (None, _) => {
                    return Some(format!(
                        "post-patch row {} names no vLLM commit, so it does not prove it measured the patch",
                        r.row_id
                    ));
                }
                _ => {}
            }
            if r.correctness.is_none() {
                return Some(format!(
                    "post-patch row {} measured patched code without a correctness probe result",
                    r.row_id
                ));
            }
        }
    }
    None
}

/// The verdict of `final_report`.
pub(crate) fn verdict(inp: &VerdictInput) -> Verdict {
    let decision = inp
        .latest
        .and_then(|d| str_field(d, &["decision"]))
        .unwrap_or("");
    let reason = inp
        .latest
        .and_then(|d| str_field(d, &["reason"]))
        .unwrap_or("");
    let hw = inp.hardware;
    let mut labels = reduced_labels(inp.baseline);
    labels.extend(reduced_labels(inp.post_patch));
    let reduced = (!labels.is_empty()).then(|| {
        format!(
            "rows from a reduced workload ({}) inform but cannot decide",
            labels.into_iter().collect::<Vec<_>>().join(", ")
        )
    });
    let win_gap = match decision {
        "stop_beats" | "stop_tied" => inp
            .latest
            .and_then(decision_gap)
            .or_else(|| code_gap(inp))
            .or_else(|| reduced.clone()),
        _ => None,
    };
    let mut text = match (decision, &win_gap) {
        (_, Some(gap)) => format!(
            "not reached: the latest decision says `{decision}`, but the records do not support it: {gap}"
        ),
        ("stop_beats", None) => {
            format!("vLLM beats the best measured competitor on {hw}: {reason}")
        }
        ("stop_tied", None) => format!(
            "vLLM is tied with the best measured competitor within the noise threshold after repeats on {hw}: {reason}"
        ),
        ("stop_external", _) => format!(
            "not reached: the remaining gap is external to vLLM, or no competitor could run and the comparison was waived: {reason}"
        ),
        ("stop_at_limit", _) => {
            format!("not reached: the hot path is at the hardware/algorithmic limit: {reason}")
        }
        ("blocked_competitor_unavailable", _) => format!(
            "not reached: no competitor has measured rows here, and a missing competitor is not a win: {reason}"
        ),
        ("blocked_not_comparable", _) => format!(
            "not reached: no competitor was measured on vLLM's machine and workload: {reason}"
        ),
        ("blocked_reduced_workload", _) => format!(
            "not reached: only reduced-workload rows decided the last round; they inform but cannot decide: {reason}"
        ),
        (other, _) => format!(
            "not reached: the loop stopped unfinished (latest decision `{other}`): {reason}"
        ),
    };
    let reached_sota = matches!(decision, "stop_beats" | "stop_tied") && win_gap.is_none();
    if let Some(r) = reduced.filter(|r| !text.contains(r.as_str())) {
        text = format!("{text} (note: {r})");
    }
    Verdict { reached_sota, text }
}
