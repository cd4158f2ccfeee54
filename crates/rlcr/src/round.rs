//! The Humanize round's own files, scaffolded from the campaign records (called by
//! `checkpoint`): `round-N-contract.md` and `round-N-summary.md` in the active loop
//! directory, N being the loop's `current_round`. The runtime's stop hook blocks the
//! agent's exit unless both exist and the summary has a valid `## BitLesson Delta`
//! section (`scripts/bitlesson-validate-delta.sh`); it also blocks on tracked
//! `.humanize/` state and on uncommitted code or documentation files over 2,000 lines.
//!
//! A file is written only when it is absent, still the runtime's template (it holds a
//! `[Describe what …]` placeholder) or an earlier scaffold of ours (it carries
//! [`SCAFFOLD_MARKER`]): an agent's own text is never overwritten.

use anyhow::Result;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;
use vllm_sota_core::fsx;
use vllm_sota_core::humanize::{self, LoopPhase};
use vllm_sota_core::layout::{Campaign, CampaignPaths};

use crate::git::{self, ChangedFile};
use crate::records::{self, round_of, str_field, text_field};

/// First line of every file scaffolded here.
pub const SCAFFOLD_MARKER: &str = "<!-- vllm-sota checkpoint scaffold";
/// The runtime's line limit for code and documentation files (stop hook `MAX_LINES`).
pub(crate) const MAX_FILE_LINES: usize = 2000;
/// Extensions the runtime's large-file check counts (code, then documentation).
const COUNTED_EXTENSIONS: &[&str] = &[
    "py", "js", "ts", "tsx", "jsx", "java", "c", "cpp", "cc", "cxx", "h", "hpp", "cs", "go", "rs",
    "rb", "php", "swift", "kt", "kts", "scala", "sh", "bash", "zsh", "md", "rst", "txt", "adoc",
    "asciidoc",
];

/// What was scaffolded for the loop's current round.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RoundFiles {
    pub loop_dir: String,
    /// The loop's `current_round` (Humanize's round, counted from 0).
    pub humanize_round: u32,
    pub summary_path: String,
    /// False when the agent's own summary was kept.
    pub summary_written: bool,
    pub contract_path: String,
    pub contract_written: bool,
    /// Files the runtime will refuse (over 2,000 lines) or staged `.humanize/` paths.
    pub blockers: Vec<String>,
}

/// True when `path` may be (re)written: absent, the runtime's template or our scaffold.
fn replaceable(path: &Path) -> bool {
    match std::fs::read_to_string(path) {
        Err(_) => true,
        Ok(t) => t.starts_with(SCAFFOLD_MARKER) || t.contains("[Describe what"),
    }
}

/// Changed files the runtime would refuse for their length, and `.humanize/` paths in the index.
fn blockers(checkout: &Path, changed: &[ChangedFile]) -> Vec<String> {
    let mut out = Vec::new();
    for c in changed {
        let ext = Path::new(&c.path)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_lowercase)
            .unwrap_or_default();
        if !COUNTED_EXTENSIONS.contains(&ext.as_str()) {
            continue;
        }
        let lines = std::fs::read(checkout.join(&c.path))
            .map(|b| b.iter().filter(|&&x| x == b'\n').count())
            .unwrap_or(0);
        if lines > MAX_FILE_LINES {
            out.push(format!(
                "`{}` has {lines} lines: Humanize refuses code and documentation files over {MAX_FILE_LINES} lines; split it",
                c.path
            ));
        }
    }
    if let Ok(index) = git::open(checkout).and_then(|r| Ok(r.index()?)) {
        let staged: Vec<String> = index
            .iter()
            .map(|e| String::from_utf8_lossy(&e.path).to_string())
            .filter(|p| git::is_humanize_path(p))
            .collect();
        if !staged.is_empty() {
            out.push(format!(
                "`.humanize` state is tracked by git ({}): `git rm -r --cached .humanize` and commit; Humanize blocks the round otherwise",
                staged.join(", ")
            ));
        }
    }
    out
}

/// Target acceptance criteria of the refined plan for a gap decision (1-2, as the runtime asks).
fn target_acs(decision: Option<&str>) -> &'static str {
    match decision {
        Some(d) if d.starts_with("stop") => "AC-9",
        Some("patch") => "AC-5, AC-7",
        _ => "AC-3",
    }
}

/// What both round files are written from.
struct RoundFacts<'a> {
    /// The loop's `current_round`.
    n: u32,
    /// The scaffold's first line ([`SCAFFOLD_MARKER`] and where it came from).
    stamp: String,
    /// The latest gap decision's overall decision.
    decision: Option<&'a str>,
    /// The campaign round of the latest gap decision.
    round: Option<u32>,
    blockers: Vec<String>,
    next_patch: Option<&'a str>,
}

/// Scaffold the active loop's round files. None when the campaign has no active loop
/// in its rounds phase (no checkout, no loop, or finalize/ended).
pub(crate) fn scaffold(
    paths: &CampaignPaths,
    campaign: &Campaign,
    lineage: &[Value],
    attempts: &[Value],
    changed: Option<&[ChangedFile]>,
    tests: &[String],
    next_patch: Option<&str>,
) -> Result<Option<RoundFiles>> {
    let Some(checkout) = campaign.vllm_checkout.as_deref() else {
        return Ok(None);
    };
    let Some(l) = humanize::newest_loop(checkout).filter(|l| l.phase == LoopPhase::Active) else {
        return Ok(None);
    };
    let Some(n) = l.current_round else {
        return Ok(None);
    };
    let gap = records::latest_gap_decision(lineage);
    let facts = RoundFacts {
        n,
        stamp: format!(
            "{SCAFFOLD_MARKER}: written from the campaign records in {}; complete it, then exit so Codex reviews the round -->\n",
            paths.root.display()
        ),
        decision: gap.and_then(|d| str_field(d, &["overall_decision", "decision"])),
        round: gap.and_then(round_of),
        blockers: blockers(checkout, changed.unwrap_or_default()),
        next_patch,
    };

    let contract_path = l.dir.join(format!("round-{n}-contract.md"));
    let contract_written = replaceable(&contract_path);
    if contract_written {
        fsx::write_text(&contract_path, &contract_text(&facts))?;
    }

    let summary_path = l.dir.join(format!("round-{n}-summary.md"));
    let summary_written = replaceable(&summary_path);
    if summary_written {
        let s = summary_text(&facts, paths, attempts, changed, tests);
        fsx::write_text(&summary_path, &s)?;
    }
    Ok(Some(RoundFiles {
        loop_dir: l.dir.display().to_string(),
        humanize_round: n,
        summary_path: summary_path.display().to_string(),
        summary_written,
        contract_path: contract_path.display().to_string(),
        contract_written,
        blockers: facts.blockers,
    }))
}

/// `round-N-contract.md`: the mainline objective (from the gap decision or the next
/// planned patch), the target ACs, the blockers in scope and the success criteria.
fn contract_text(f: &RoundFacts) -> String {
    let objective = match (f.decision, f.next_patch) {
        (Some(d), _) if d.starts_with("stop") => format!(
            "gap_decision says `{d}`: confirm the stop criterion with repeats and write final_report.md"
        ),
        (_, Some(p)) => format!("the next planned vLLM patch: {p}"),
        (Some(d), None) => format!(
            "act on gap_decision `{d}` for campaign round {}",
            f.round.unwrap_or(0)
        ),
        (None, None) => {
            "call gap_decision and act on it (profile, layer pipeline, one patch, revalidate)"
                .into()
        }
    };
    let mut c = f.stamp.clone();
    let _ = writeln!(c, "# Round {} Contract\n", f.n);
    let _ = writeln!(c, "- Mainline Objective: {objective}");
    let _ = writeln!(c, "- Target ACs: {}", target_acs(f.decision));
    let _ = writeln!(
        c,
        "- Blocking Side Issues In Scope: {}",
        if f.blockers.is_empty() {
            "none recorded".to_string()
        } else {
            f.blockers.join("; ")
        }
    );
    let _ = writeln!(
        c,
        "- Queued Side Issues Out of Scope: everything not needed for the mainline objective (record it as `[queued]`)"
    );
    let _ = writeln!(
        c,
        "- Success Criteria: the round's evidence files exist (gap decision, profiles and root cause when behind, layer pipeline, patch with its attempt row, revalidation) and the changes are committed"
    );
    c
}

/// `round-N-summary.md`: what was implemented, files changed, validation, remaining
/// items and the `## BitLesson Delta` section the stop hook validates.
fn summary_text(
    f: &RoundFacts,
    paths: &CampaignPaths,
    attempts: &[Value],
    changed: Option<&[ChangedFile]>,
    tests: &[String],
) -> String {
    let mut s = f.stamp.clone();
    let _ = writeln!(s, "# Round {} Summary\n\n## What Was Implemented\n", f.n);
    write_implemented(&mut s, f, attempts);
    let _ = writeln!(s, "\n## Files Changed\n");
    write_files_changed(&mut s, changed);
    let _ = writeln!(s, "\n## Validation\n");
    write_validation(&mut s, paths, tests, f.round);
    let _ = writeln!(s, "\n## Remaining Items\n");
    for b in &f.blockers {
        let _ = writeln!(s, "- BLOCKING: {b}");
    }
    let _ = writeln!(
        s,
        "- Next planned patch: {}",
        f.next_patch.unwrap_or("(not stated)")
    );
    let _ = writeln!(
        s,
        "\n## BitLesson Delta\n\nAction: none\nLesson ID(s): NONE\nNotes: no reusable lesson is recorded in the campaign records for this round; when the round solved a problem worth keeping, add it to .humanize/bitlesson.md and report `Action: add` with its Lesson ID"
    );
    s
}

/// The summary's implemented items: the gap decision and the attempts of its round.
fn write_implemented(s: &mut String, f: &RoundFacts, attempts: &[Value]) {
    match f.decision {
        Some(d) => {
            let _ = writeln!(
                s,
                "- Campaign round {}: gap_decision `{d}`",
                f.round.unwrap_or(0)
            );
        }
        None => {
            let _ = writeln!(s, "- No gap_decision recorded yet");
        }
    }
    let mine: Vec<&Value> = attempts
        .iter()
        .filter(|a| f.round.is_none() || round_of(a) == f.round)
        .collect();
    for a in &mine {
        let _ = writeln!(
            s,
            "- Attempt `{}` ({}): {}",
            str_field(a, &["attempt_id", "id"]).unwrap_or("?"),
            str_field(a, &["status"]).unwrap_or("?"),
            text_field(a, &["summary", "change"]).unwrap_or_default()
        );
    }
}

/// The summary's changed files against the base commit (at most 40).
fn write_files_changed(s: &mut String, changed: Option<&[ChangedFile]>) {
    match changed {
        Some([]) => {
            let _ = writeln!(s, "- none against the base commit");
        }
        Some(ch) => {
            for c in ch.iter().take(40) {
                let _ = writeln!(
                    s,
                    "- `{}` ({}, +{} -{})",
                    c.path, c.status, c.insertions, c.deletions
                );
            }
        }
        None => {
            let _ = writeln!(s, "- unavailable (no base commit or diff)");
        }
    }
}

/// The summary's validation: tests run and the round's revalidation rows.
fn write_validation(s: &mut String, paths: &CampaignPaths, tests: &[String], round: Option<u32>) {
    for t in tests {
        let _ = writeln!(s, "- `{t}`");
    }
    if let Some(r) = round {
        let reval = paths.revalidation(r);
        let rows = records::read_rows(&reval).map(|v| v.len()).unwrap_or(0);
        let _ = writeln!(
            s,
            "- revalidation: `{}` ({rows} rows)",
            records::relative(paths, &reval)
        );
    }
    if tests.is_empty() && round.is_none() {
        let _ = writeln!(s, "- none recorded");
    }
}

/// One markdown line per scaffolded file and blocker.
pub(crate) fn describe(r: &RoundFiles) -> String {
    let verb = |w: bool| {
        if w {
            "scaffolded"
        } else {
            "kept (the agent's own)"
        }
    };
    let mut s = format!(
        "- Humanize round {}: summary {} `{}`; contract {} `{}`",
        r.humanize_round,
        verb(r.summary_written),
        r.summary_path,
        verb(r.contract_written),
        r.contract_path
    );
    for b in &r.blockers {
        let _ = write!(s, "\n- BLOCKING: {b}");
    }
    s
}
