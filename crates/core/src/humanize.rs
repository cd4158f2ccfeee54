//! The Humanize RLCR loop as it lies on disk in a checkout: `.humanize/rlcr/<timestamp>/`
//! directories, each holding one state file whose *name* is the loop's phase
//! (`references/humanize-contract.md`, runtime commit 0ec921a):
//!
//! - `state.md`: active, in round `current_round`;
//! - `finalize-state.md`: Codex said COMPLETE, the finalize phase runs;
//! - `methodology-analysis-state.md`: the exit analysis runs before the loop ends;
//! - `<reason>-state.md` with reason `complete`, `cancel`, `maxiter`, `stop` or `unexpected`:
//!   the loop has ended.
//!
//! Readers here never write: start_rlcr, checkpoint and campaign_status share them so
//! the three agree on which loop exists and where it stands.

use std::path::{Path, PathBuf};

/// Where loops live, relative to the checkout.
pub const RLCR_DIR: &str = ".humanize/rlcr";

/// Active state files, in the runtime's precedence (`resolve_active_state_file`).
pub(crate) const ACTIVE_STATE_FILES: &[&str] = &[
    "methodology-analysis-state.md",
    "finalize-state.md",
    "state.md",
];

/// Where a loop stands, from its state file's name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoopPhase {
    /// `state.md`: rounds are running.
    Active,
    /// `finalize-state.md`.
    Finalize,
    /// `methodology-analysis-state.md`.
    MethodologyAnalysis,
    /// `complete-state.md`.
    Complete,
    /// `cancel-state.md`.
    Cancelled,
    /// `maxiter-state.md`: the iteration limit was reached.
    MaxIterations,
    /// `stop-state.md`: Codex's circuit breaker (or the drift stop) ended it.
    Stopped,
    /// `unexpected-state.md`: the runtime ended it on an invalid state.
    Unexpected,
    /// Some other `*-state.md` (a newer runtime's reason): ended, reason unknown here.
    EndedOther,
}

impl LoopPhase {
    /// Phase of a state file name, or None when the name is not a state file.
    pub(crate) fn of_file_name(name: &str) -> Option<LoopPhase> {
        Some(match name {
            "state.md" => LoopPhase::Active,
            "finalize-state.md" => LoopPhase::Finalize,
            "methodology-analysis-state.md" => LoopPhase::MethodologyAnalysis,
            "complete-state.md" => LoopPhase::Complete,
            "cancel-state.md" => LoopPhase::Cancelled,
            "maxiter-state.md" => LoopPhase::MaxIterations,
            "stop-state.md" => LoopPhase::Stopped,
            "unexpected-state.md" => LoopPhase::Unexpected,
            n if n.ends_with("-state.md") => LoopPhase::EndedOther,
            _ => return None,
        })
    }

    /// The loop still runs (a hook will act on the next exit attempt).
    pub(crate) fn is_active(&self) -> bool {
        matches!(
            self,
            LoopPhase::Active | LoopPhase::Finalize | LoopPhase::MethodologyAnalysis
        )
    }
}

/// One loop directory and its state file.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct LoopState {
    /// `<checkout>/.humanize/rlcr/<timestamp>`.
    pub dir: PathBuf,
    /// The state file that decided the phase.
    pub state_file: PathBuf,
    pub phase: LoopPhase,
    /// `current_round` from the state file's front matter.
    pub current_round: Option<u32>,
    pub max_iterations: Option<u32>,
    pub base_branch: Option<String>,
    pub plan_file: Option<String>,
}

/// The value of `key:` in a state file's YAML front matter (between the first two `---`).
pub fn front_matter_field(text: &str, key: &str) -> Option<String> {
    let mut lines = text.lines();
    if lines.next()?.trim() != "---" {
        return None;
    }
    for line in lines {
        if line.trim() == "---" {
            return None;
        }
        if let Some(v) = line
            .strip_prefix(key)
            .and_then(|rest| rest.strip_prefix(':'))
        {
            return Some(v.trim().to_string());
        }
    }
    None
}

/// Read one loop directory: active state files first (the runtime's precedence), then
/// the first terminal `*-state.md` by name. None when the directory has no state file.
pub(crate) fn read_loop(dir: &Path) -> Option<LoopState> {
    let state_file = ACTIVE_STATE_FILES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .or_else(|| {
            let mut terminal: Vec<PathBuf> = std::fs::read_dir(dir)
                .ok()?
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.is_file()
                        && p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.ends_with("-state.md"))
                })
                .collect();
            terminal.sort();
            terminal.into_iter().next()
        })?;
    let phase = LoopPhase::of_file_name(state_file.file_name()?.to_str()?)?;
    let text = std::fs::read_to_string(&state_file).unwrap_or_default();
    let num = |k: &str| front_matter_field(&text, k).and_then(|v| v.parse().ok());
    let string = |k: &str| front_matter_field(&text, k).filter(|v| !v.is_empty());
    Some(LoopState {
        dir: dir.to_path_buf(),
        phase,
        current_round: num("current_round"),
        max_iterations: num("max_iterations"),
        base_branch: string("base_branch"),
        plan_file: string("plan_file"),
        state_file,
    })
}

/// Every loop under `<checkout>/.humanize/rlcr/`, oldest first (directory names are
/// timestamps, so name order is time order).
pub fn loops(checkout: &Path) -> Vec<LoopState> {
    crate::fsx::sorted_entries(&checkout.join(RLCR_DIR), |p| p.is_dir())
        .iter()
        .filter_map(|d| read_loop(d))
        .collect()
}

/// The newest loop with a state file (the one the runtime's hooks act on).
pub fn newest_loop(checkout: &Path) -> Option<LoopState> {
    loops(checkout).pop()
}

/// Loops whose state file is active, in any directory (stricter than the runtime,
/// which looks at the newest directory only).
pub fn active_loops(checkout: &Path) -> Vec<LoopState> {
    loops(checkout)
        .into_iter()
        .filter(|l| l.phase.is_active())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_file_name_has_a_phase() {
        let cases = [
            ("state.md", LoopPhase::Active, true),
            ("finalize-state.md", LoopPhase::Finalize, true),
            (
                "methodology-analysis-state.md",
                LoopPhase::MethodologyAnalysis,
                true,
            ),
            ("complete-state.md", LoopPhase::Complete, false),
            ("cancel-state.md", LoopPhase::Cancelled, false),
            ("maxiter-state.md", LoopPhase::MaxIterations, false),
            ("stop-state.md", LoopPhase::Stopped, false),
            ("unexpected-state.md", LoopPhase::Unexpected, false),
            ("timeout-state.md", LoopPhase::EndedOther, false),
        ];
        for (name, phase, active) in cases {
            let p = LoopPhase::of_file_name(name).unwrap();
            assert_eq!((p.clone(), p.is_active()), (phase, active), "{name}");
        }
        assert_eq!(LoopPhase::of_file_name("round-0-summary.md"), None);
        assert_eq!(LoopPhase::of_file_name("goal-tracker.md"), None);
    }

    #[test]
    fn loops_are_read_with_the_runtime_precedence_and_front_matter() {
        let tmp = tempfile::tempdir().unwrap();
        let old = tmp.path().join(".humanize/rlcr/2026-01-01_00-00-00");
        let new = tmp.path().join(".humanize/rlcr/2026-02-01_00-00-00");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::create_dir_all(&new).unwrap();
        std::fs::write(old.join("cancel-state.md"), "---\ncurrent_round: 2\n---\n").unwrap();
        std::fs::write(
            new.join("state.md"),
            "---\ncurrent_round: 3\nmax_iterations: 42\nbase_branch: main\nplan_file: p.md\n---\nbase_branch: not-this\n",
        )
        .unwrap();
        std::fs::write(
            new.join("finalize-state.md"),
            "---\ncurrent_round: 4\n---\n",
        )
        .unwrap();
        let all = loops(tmp.path());
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].phase, LoopPhase::Cancelled);
        assert_eq!(all[0].current_round, Some(2));
        let newest = newest_loop(tmp.path()).unwrap();
        assert_eq!(
            newest.phase,
            LoopPhase::Finalize,
            "finalize wins over state.md"
        );
        assert_eq!(newest.current_round, Some(4));
        std::fs::remove_file(new.join("finalize-state.md")).unwrap();
        let newest = newest_loop(tmp.path()).unwrap();
        assert_eq!(
            (
                newest.phase.clone(),
                newest.current_round,
                newest.max_iterations,
                newest.base_branch.as_deref(),
                newest.plan_file.as_deref()
            ),
            (
                LoopPhase::Active,
                Some(3),
                Some(42),
                Some("main"),
                Some("p.md")
            )
        );
        assert_eq!(active_loops(tmp.path()).len(), 1);
        assert!(loops(&tmp.path().join("nowhere")).is_empty());
    }
}
