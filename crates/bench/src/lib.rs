//! `vllm-sota-bench`: the benchmark client every framework is measured with, the
//! importers of native benchmark results, and `sim-serve`, a serving-engine simulator
//! for tests.
//!
//! Parts:
//! - [`workload`]: the random dataset built in token space with the model's
//!   `tokenizer.json` (exact input lengths) and the normalized JSONL workload.
//! - [`arrival`]: `inf` or a rate with gamma burstiness, precomputed absolute times.
//! - [`sse`]: split-read-safe SSE parsing and an exact, allocation-free chunk scanner.
//! - [`client`]: [`client::run_load`], HTTP/1.1 keep-alive pool, per-request records;
//!   the streaming path and the readiness probes read responses with
//!   `vllm_sota_core::http`'s async engine (one keep-alive connection, in-place chunked
//!   decoding; hyper only serves `sim`); [`metrics`]: their aggregation into
//!   [`vllm_sota_core::results::MetricsRow`] (absent = not measured, never 0).
//! - [`import`]: `vllm bench serve` JSON, `sglang.bench_serving` JSONL (bare `Infinity`),
//!   TensorRT-LLM `benchmark_serving` JSON, AIPerf export → the same row.
//! - [`sim`]: the engine simulator (continuous batching on a virtual GPU, real framework
//!   flag spellings, fault injection, per-request ground truth). A test tool.
//! - [`cli`]: `sim_serve_cli` and `bench_load_cli`, the argv entry points the root
//!   binary exposes as `vllm-sota sim-serve` and `vllm-sota bench load`.

#![warn(unreachable_pub)]

mod arrival;
mod cli;
mod client;
mod import;
mod metrics;
mod rng;
pub mod sim;
mod sse;
mod workload;

// The API: what the binary, the other crates, the tests and the examples use.
pub use arrival::arrival_offsets;
pub use client::{fetch_model_id, wait_ready};
pub use metrics::{percentile_sorted, percentile_unsorted};
pub use workload::{LengthStats, Prompt};

pub use arrival::RequestRate;
pub use cli::{bench_import_cli, bench_load_cli, sim_serve_cli};
pub use client::{Endpoint, LiveCounters, LoadConfig, LoadReport, run_load, run_load_blocking};
pub use import::{NativeFormat, import_native, import_native_file};
pub use metrics::{DistStats, GoodputSla, LoadSummary, RequestRecord};
pub use sim::{SimConfig, SimServer};
pub use workload::{
    RandomDatasetConfig, TokenizerHandle, Workload, WorkloadRequest, load_jsonl_workload,
    random_workload,
};
