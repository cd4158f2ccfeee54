//! The loop's decisions and gates (issue 8): tools whose answers the agent cannot
//! talk its way around.
//!
//! - [`GapDecision`] (`gap_decision`): per scenario and overall, `patch` / `rerun` /
//!   `stop_beats` / `stop_tied` (and evidence-backed `stop_external` / `stop_at_limit`)
//!   from the fixed baseline and the current vLLM rows, using repeats and a Welch
//!   t-interval against the noise threshold of `references/gap-policy.json`; geomean
//!   improvement over the prior best vLLM, the two-weak-rounds flag, frameworks to
//!   profile and the prefill/decode profile shapes; appended to the lineage. A win needs a
//!   competitor measured on the same machine and workload, the full workload, a passing SLA
//!   and vLLM rows of the checkout's code with a passing correctness probe; otherwise the
//!   decision is `blocked_*`, `rerun` or `patch` and says why.
//! - [`HistoryNotes`] (`history_notes`, Phase 0.5): reads a knowledge root laid
//!   out like BBuf's `model-pr-optimization-history` and scaffolds
//!   `history/model-pr-history-notes.md` (or writes the blocker).
//! - [`StartRlcr`] (`start_rlcr`): preconditions (git2), the refined plan from
//!   `references/refined-plan-template.md`, Humanize's `setup-rlcr-loop.sh` run with
//!   captured output, and verification of the started loop. Contract:
//!   `references/humanize-contract.md`.
//! - [`Checkpoint`] (`checkpoint`) and [`FinalReport`] (`final_report`):
//!   documents rebuilt from the campaign records; the final report refuses, listing what
//!   is missing, on an incomplete campaign; `verdict` writes "reached SOTA" only when the
//!   decision chain and the post-patch rows support it.
//!
//! Support modules: [`stats`] (t distribution, Welch interval, geomean), `records`
//! (tolerant readers of rows, lineage and ledger JSONL), `summary` (benchmark tables),
//! `git` (libgit2 checks and diffs), `round` (the Humanize round's contract and
//! summary scaffolds, called by `checkpoint`). Child processes go through
//! `vllm_sota_core::proc`; the loop's on-disk state is read by `vllm_sota_core::humanize`.

#![warn(unreachable_pub)]

// Modules are private: what the binary, the campaign crate and the tests use is
// re-exported below, and everything else is crate-internal (dead code shows).
mod gap;
mod git;
mod history;
mod records;
mod report;
mod round;
mod start;
pub mod stats;
mod summary;
mod verdict;

// The tools (typed request in, typed report out).
/// The gap policy file (`references/gap-policy.json`), read by `ledger_append`'s noise rule.
pub use gap::GapPolicy;
pub use gap::{
    Decision, GapDecision, GapDecisionReport, GapDecisionRequest, StopClaim, StopClaimKind,
};
pub use history::{
    HistoryNotes, HistoryNotesReport, HistoryNotesRequest, MergeReport, ValidationRisk,
};
pub use report::{Checkpoint, CheckpointReport, FinalReport};
/// Marker of a Humanize round scaffold not yet completed by the agent.
pub use round::SCAFFOLD_MARKER;
/// The `start_rlcr` job (kind and runner) for the binary's job dispatch.
pub use start::{JOB_KIND as START_RLCR_JOB_KIND, run_job as run_start_rlcr_job};
pub use start::{PLAN_REL, StartRlcr, StartRlcrReport, StartRlcrRequest, StartStatus};
/// Pieces of `start_rlcr` that the Humanize contract tests drive directly.
pub use start::{
    Precondition, acceptance_ids, acceptance_section, active_states, find_program, locate_runtime,
    render_template, run_start_rlcr_with_path, runtime_candidates,
};
