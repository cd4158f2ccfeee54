//! Step 1 of the documented rule (gates), the wording language, and the names an
//! edit uses; then [`rules::choose`] does steps 2-6.

use anyhow::{Result, bail};
use std::collections::BTreeMap;

use crate::digest;
use crate::library::LibraryMatch;
use crate::metrics::{self, KernelSummary};
use crate::report::SideReport;
use crate::request::{HarnessResult, NcuDigestRequest};
use crate::rules::{self, RulesFile};

/// The wording of the edit. A kernel of a closed-source library is `library` whatever
/// the request says (its source is not the user's to edit); an explicit other language
/// for it is overridden with a warning.
pub(crate) fn language_of(
    req: &NcuDigestRequest,
    kernel_name: Option<&str>,
    lib: Option<&LibraryMatch>,
    warnings: &mut Vec<String>,
) -> Result<String> {
    let asked = req.kernel_language.as_deref().unwrap_or("auto");
    if !matches!(asked, "triton" | "cuda" | "generic" | "library" | "auto") {
        bail!("kernel_language '{asked}': use triton, cuda, generic, library or auto");
    }
    if let Some(l) = lib {
        if !matches!(asked, "auto" | "library") {
            warnings.push(format!(
                "kernel_language={asked} not used: the kernel name matches the {} pattern '{}' (references/ncu-rules.json library_kernels), so the edit goes to the call site",
                l.library, l.pattern
            ));
        }
        return Ok("library".into());
    }
    match asked {
        "triton" => Ok("triton".into()),
        "cuda" => Ok("cuda".into()),
        "generic" => Ok("generic".into()),
        "library" => {
            warnings.push(
                "kernel_language=library but the kernel name matches no library_kernels pattern: generic wording".into(),
            );
            Ok("generic".into())
        }
        _ => Ok(match kernel_name {
            Some(n) if n.contains('(') || n.contains('<') || n.starts_with("void ") => {
                "cuda".into()
            }
            Some(_) => "triton".into(),
            None => "generic".into(),
        }),
    }
}

/// Step 1 (gates) of the documented rule, then [`rules::choose`].
#[allow(clippy::too_many_arguments)]
/// In single-report mode (no candidate requested) the baseline is the subject: the
/// correctness gate reads its harness, and there is no regression gate.
pub(crate) fn decide_next_edit(
    rules: &RulesFile,
    req: &NcuDigestRequest,
    summaries: &BTreeMap<&str, KernelSummary>,
    subject_report: Option<&SideReport>,
    base_h: Option<&HarnessResult>,
    cand_h: Option<&HarnessResult>,
    blocker: Option<&str>,
    language: &str,
    lib: Option<&LibraryMatch>,
) -> rules::Decision {
    let single = !req.source.has_candidate();
    let (subject, subject_h) = if single {
        ("baseline", base_h)
    } else {
        ("candidate", cand_h)
    };
    let kernel = summaries
        .get(subject)
        .or(summaries.get("baseline"))
        .map(|s| short_kernel(&s.kernel_name))
        .unwrap_or_else(|| req.kernel_regex.clone());
    let gate = |name: &str, line: String| rules::Decision {
        line,
        chosen_by: format!("gate:{name}"),
        estimate_pct: None,
        considered: Vec::new(),
    };
    // Gate 1: a wrong kernel is fixed before anything else.
    if let Some(h) = subject_h
        && h.correct == Some(false)
    {
        return gate(
            "correctness",
            format!(
                "Next edit: fix {kernel}'s correctness before any speed work — because the {subject} harness did not pass ({}); no counter evidence counts until it passes.",
                h.note.as_deref().unwrap_or("correct=false")
            ),
        );
    }
    // Gate 2: no counters for the subject.
    let Some(cand) = summaries.get(subject) else {
        return gate(
            "blocker",
            format!(
                "Next edit: unblock ncu for {kernel} ({}) and rerun ncu_digest — because without counters only the harness timing above is evidence.",
                blocker.unwrap_or("no counters")
            ),
        );
    };
    // Gate 3: a slower candidate is reverted or repaired (not in single-report mode).
    let base = if single {
        None
    } else {
        summaries.get("baseline")
    };
    let (bt, ct, source) = match (
        base_h.and_then(|h| h.time_us),
        cand_h.and_then(|h| h.time_us),
    ) {
        _ if single => (None, None, "none"),
        (Some(b), Some(c)) => (Some(b), Some(c), "harness"),
        _ => (
            base.and_then(|b| b.facts.get("duration_us").copied()),
            cand.facts.get("duration_us").copied(),
            "ncu duration (no harness timing)",
        ),
    };
    if let (Some(b), Some(c)) = (bt, ct)
        && b > 0.0
        && (c - b) / b * 100.0 > rules.thresholds.noise_band_pct
    {
        let worst = base
            .map(|b| digest::largest_adverse_move(&b.facts, &cand.facts))
            .unwrap_or_default();
        return gate(
            "regression",
            format!(
                "Next edit: revert or repair the candidate change to {kernel} — because the {source} says it is slower: {} → {} us (+{}%){}.",
                rules::fmt_num(b),
                rules::fmt_num(c),
                rules::fmt_num((c - b) / b * 100.0),
                if worst.is_empty() {
                    String::new()
                } else {
                    format!("; largest adverse counter move: {worst}")
                }
            ),
        );
    }
    let class = subject_report
        .map(|r| r.bound_class.clone())
        .unwrap_or_else(|| rules::classify(rules, &cand.facts));
    let limiter = pick_limiter(&cand.facts);
    let cx = rules::Context {
        kernel: &kernel,
        language,
        limiter,
        library: lib,
    };
    rules::choose(
        rules,
        &class,
        &cand.facts,
        base.map(|b| &b.facts),
        &cand.rules,
        &cx,
    )
}

/// The occupancy limiter an edit should name: among tied limiters, blocks-per-SM
/// first when blocks are small (fewer than 4 warps), then registers, shared memory, warps.
pub fn pick_limiter(f: &BTreeMap<String, f64>) -> Option<&'static str> {
    let names = metrics::limiter_names(f);
    let small_blocks = f.get("warps_per_block").is_some_and(|w| *w < 4.0);
    let order: &[&str] = if small_blocks {
        &[
            "blocks per SM",
            "registers",
            "shared memory",
            "warps",
            "barriers",
        ]
    } else {
        &[
            "registers",
            "shared memory",
            "warps",
            "blocks per SM",
            "barriers",
        ]
    };
    order.iter().find(|n| names.contains(n)).copied()
}

/// A kernel name short enough for a sentence: the one shortener of every tool.
pub(crate) use vllm_sota_core::kname::short as short_kernel;
