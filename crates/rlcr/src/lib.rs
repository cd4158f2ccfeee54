//! The loop's decisions and gates (issue 8): tools whose answers the agent cannot
//! talk its way around.
//!
//! - [`gap::GapDecision`] (`gap_decision`): per scenario and overall, `patch` / `rerun` /
//!   `stop_beats` / `stop_tied` (and evidence-backed `stop_external` / `stop_at_limit`)
//!   from the fixed baseline and the current vLLM rows, using repeats and a Welch
//!   t-interval against the noise threshold of `references/gap-policy.json`; geomean
//!   improvement over the prior best vLLM, the two-weak-rounds flag, frameworks to
//!   profile and the prefill/decode profile shapes; appended to the lineage. A win needs a
//!   competitor measured on the same machine and workload, the full workload, a passing SLA
//!   and vLLM rows of the checkout's code with a passing correctness probe; otherwise the
//!   decision is `blocked_*`, `rerun` or `patch` and says why.
//! - [`history::HistoryNotes`] (`history_notes`, Phase 0.5): reads a knowledge root laid
//!   out like BBuf's `model-pr-optimization-history` and scaffolds
//!   `history/model-pr-history-notes.md` (or writes the blocker).
//! - [`start::StartRlcr`] (`start_rlcr`): preconditions (git2), the refined plan from
//!   `references/refined-plan-template.md`, Humanize's `setup-rlcr-loop.sh` run with
//!   captured output, and verification of the started loop. Contract:
//!   `references/humanize-contract.md`.
//! - [`report::Checkpoint`] (`checkpoint`) and [`report::FinalReport`] (`final_report`):
//!   documents rebuilt from the campaign records; the final report refuses, listing what
//!   is missing, on an incomplete campaign; [`verdict`] writes "reached SOTA" only when the
//!   decision chain and the post-patch rows support it.
//!
//! Support modules: [`stats`] (t distribution, Welch interval, geomean), [`records`]
//! (tolerant readers of rows, lineage and ledger JSONL), [`summary`] (benchmark tables),
//! [`git`] (libgit2 checks and diffs), [`round`] (the Humanize round's contract and
//! summary scaffolds, called by `checkpoint`). Child processes go through
//! `vllm_sota_core::proc`; the loop's on-disk state is read by `vllm_sota_core::humanize`.

pub mod gap;
pub mod git;
pub mod history;
pub mod records;
pub mod report;
pub mod round;
pub mod start;
pub mod stats;
pub mod summary;
pub mod verdict;

pub use gap::GapDecision;
pub use history::HistoryNotes;
pub use report::{Checkpoint, FinalReport};
pub use start::StartRlcr;
