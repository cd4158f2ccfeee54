//! The loop's decisions and gates (issue 8): tools whose answers the agent cannot
//! talk its way around.
//!
//! - [`gap::GapDecision`] (`gap_decision`): per scenario and overall, `patch` / `rerun` /
//!   `stop_beats` / `stop_tied` (and evidence-backed `stop_external` / `stop_at_limit`)
//!   from the fixed baseline and the current vLLM rows, using repeats and a Welch
//!   t-interval against the noise threshold of `references/gap-policy.json`; geomean
//!   improvement over the prior best vLLM, the two-weak-rounds flag, frameworks to
//!   profile and the prefill/decode profile shapes; appended to the lineage.
//! - [`history::HistoryNotes`] (`history_notes`, Phase 0.5): reads a knowledge root laid
//!   out like BBuf's `model-pr-optimization-history` and scaffolds
//!   `history/model-pr-history-notes.md` (or writes the blocker).
//! - [`start::StartRlcr`] (`start_rlcr`): preconditions (git2), the refined plan from
//!   `references/refined-plan-template.md`, Humanize's `setup-rlcr-loop.sh` run with
//!   captured output, and verification of the started loop. Contract:
//!   `references/humanize-contract.md`.
//! - [`report::Checkpoint`] (`checkpoint`) and [`report::FinalReport`] (`final_report`):
//!   documents rebuilt from the campaign records; the final report refuses, listing what
//!   is missing, on an incomplete campaign.
//!
//! Support modules: [`stats`] (t distribution, Welch interval, geomean), [`records`]
//! (tolerant readers of rows, lineage and ledger JSONL), [`summary`] (benchmark tables),
//! [`git`] (libgit2 checks and diffs), [`proc`] (child processes with captured output and
//! a deadline).

pub mod gap;
pub mod git;
pub mod history;
pub mod proc;
pub mod records;
pub mod report;
pub mod round;
pub mod start;
pub mod stats;
pub mod summary;

pub use gap::GapDecision;
pub use history::HistoryNotes;
pub use report::{Checkpoint, FinalReport};
pub use start::StartRlcr;
