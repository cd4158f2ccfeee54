//! Phase 0 of a campaign and its records.
//!
//! - [`CampaignInit`] (`campaign_init`): creates the run directory with exactly the
//!   layout of [`vllm_sota_core::layout`], records the environment it can see (never guessed).
//! - [`CampaignStatus`] (`campaign_status`): every gate of the skill with its state
//!   and evidence path, read from disk only; what an agent calls after a restart.
//! - [`LedgerAppend`] (`ledger_append`): typed, validated, locked appends to the
//!   attempt / optimization / source-idea ledgers and `lineage.jsonl`.
//! - `gates`: what `ledger_append` enforces (round evidence before an attempt, the kernel
//!   gate, code-first research after two flat rounds, the noise rule on optimizations).
//! - `jobs` (`job_status`, `job_cancel`): the agent's view of detached jobs.
//! - `env`: probes of the environment (nvidia-smi, CUDA, NCCL, framework versions).
//! - `git`: the vLLM checkout's branch, commit and diff against the campaign's base.

#![warn(unreachable_pub)]

// Modules are private: the binary and the tests use the tools re-exported below;
// everything else is crate-internal (dead code shows).
mod env;
mod gates;
mod git;
mod init;
mod jobs;
mod ledger;
mod status;

pub use init::CampaignInit;
pub use jobs::{JobCancelTool, JobStatusTool};
pub use ledger::LedgerAppend;
pub use status::CampaignStatus;
