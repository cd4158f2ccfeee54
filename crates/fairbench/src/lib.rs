//! `fair_benchmark` (phase 1 of a campaign) and `revalidate` (every round after a patch).
//!
//! Parts:
//! - [`config`]: the cookbook benchmark config (YAML or JSON, `schema_version: 1`), defaults, validation naming the key.
//! - [`flags`]: `references/framework-flags.json` (per-framework commands, readiness routes, translations,
//!   pinned memory knobs, excluded features) and flag validation against a captured `--help`.
//! - [`fairness`]: the config checked against `campaign.json`, the campaign's precision,
//!   quantization, tokenizer, trust-remote-code and max context given to every server in
//!   its own spelling, and no tuned-vs-defaults comparison without a recorded reason.
//! - [`candidates`]: bounded, baseline-first tiered candidate generation.
//! - [`preflight`]: help capture into `help/`, flag validation and translation, fairness rules, environment gaps,
//!   GPU-free check; produces the plan (`benchmark/plan.json`).
//! - [`procs`], [`launch`], [`http`]: server processes (own group, own log, no shell), readiness
//!   (`/v1/models` then a 1-token request), failure classification (`oom`/`failed`/`timeout`), teardown.
//! - [`measure`]: warmup, concurrency sweep and/or QPS binary search (≤ 5 rounds) with the shared client
//!   (`vllm_sota_bench`), fresh prompts per candidate, scenario, repeat and point.
//! - [`probe`]: the greedy correctness probe and its comparison with the unpatched build's answers.
//! - [`search`]: the detached `fair_benchmark` job ([`run_fair_benchmark_job`]): resumable, one row per
//!   candidate × scenario × repeat in `benchmark/candidates.jsonl`.
//! - [`artifacts`]: `summary.md`, `winning-commands.md`, `plots/<scenario>.svg`, `profiler-handoff.json`.
//! - [`interop`]: `benchmark/results.llm-serving-auto-benchmark.jsonl`, the rows in that skill's result schema.
//! - [`codecheck`]: revalidation asks the server's Python which `vllm` it imports and
//!   refuses unless it is the campaign's checkout.
//! - [`revalidate`]: the per-round revalidation job ([`run_revalidate_job`]) → `benchmark/revalidation/round-N.jsonl`.
//! - [`tools`]: the [`FairBenchmark`] and [`Revalidate`] tools (start or resume a job, optional long-poll).

#![warn(unreachable_pub)]

mod artifacts;
mod candidates;
mod codecheck;
mod config;
mod fairness;
mod flags;
mod interop;
mod launch;
mod measure;
mod preflight;
mod probe;
mod procs;
mod revalidate;
mod search;
mod tools;

// The API: what the binary, the other crates, the tests and the examples use.
pub use artifacts::winners;
pub use candidates::Candidate;
pub use config::{BenchmarkConfig, load_config, parse_config_text};
pub use flags::{HelpFlags, load_framework_flags, resolve_flag};
pub use interop::{export_jsonl, export_row};
pub use launch::{free_port, launch as launch_server, reap_stale, server_argv};
pub use measure::{length_buckets, resolve_tokenizer};
pub use preflight::{
    FrameworkPlan, FrameworkStatus, Plan, PreflightOptions, parse_compute_apps, preflight,
};
pub use search::{plan_path, planned_row_ids};
pub use tools::{FAIR_BENCHMARK_KIND, REVALIDATE_KIND};

pub use revalidate::{RevalidateRequest, run_revalidate_job};
pub use search::run_fair_benchmark_job;
pub use tools::{
    FairBenchmark, FairBenchmarkReport, FairBenchmarkRequest, Revalidate, RevalidateReport,
    start_fair_benchmark, start_revalidate,
};
