//! vllm-sota-trace: one fast trace store and the profile tables.
//!
//! Parts:
//! - [`store`]: the compact columnar [`store::TraceStore`] (interned names; kernels,
//!   CPU ops, annotations, runtime launches, flows, Python frames with parent ids),
//!   shared with the layer-pipeline crate (see `STORE_API.md`).
//! - [`reader`]: one streaming pass over a (gzipped) torch-profiler Chrome trace —
//!   decompression on a helper thread, a hand-written resumable JSON scanner, no DOM;
//!   events parsed in parallel batches and merged in file order (identical to sequential).
//! - [`link`]: sorting and derived links (kernel → launch → CPU op → Python frames).
//! - [`discover`]: which files to read (worker vs API-server trace, ranks, stages) and
//!   framework detection.
//! - [`classify`]: the one kernel classifier (`references/kernel-families.json`) and
//!   kernel-name canonicalization.
//! - [`attrib`]: kernel → CPU op → Python source attribution.
//! - [`graph`]: CUDA-graph attribution from an eager mapping trace (sequence alignment).
//! - [`tables`]: kernel, overlap-opportunity and fuse-pattern tables
//!   (`references/fuse-patterns.json`), similarity note, cross-trace comparison.
//! - [`tool`]: the `profile_tables` tool ([`ProfileTables`]); [`capture`]: `profile_capture` ([`ProfileCapture`]).
//! - [`selfbench`]: speed/memory self-benchmark.

#![warn(unreachable_pub)]
mod attrib;
mod capture;

mod classify;
mod discover;
mod golden;
mod graph;
mod hoststall;
mod link;
/// The trace names (step, layer and module scopes): shared with the layer pipeline.
pub mod names;
mod reader;
mod selfbench;
mod store;
mod tables;
mod tool;

// The API: what the binary, the other crates, the tests and the examples use.
pub use attrib::attribute_kernel;
pub use capture::launch::{
    JOB_KIND as PROFILE_LAUNCH_JOB_KIND, profiled_argv, run_job as run_profile_launch_job,
};
/// The `profile_launch` job (kind and body) for the binary's job dispatch.
pub use capture::launch::{ProfileLaunchRequest, job_path, launch_plan};
pub use capture::load::{StagePlan, start as start_stage_load};
pub use capture::window::{
    Server as CaptureServer, analyze_samples, parse_step, run_window, step_samples,
};
pub use capture::{ProfileCaptureRequest, run_capture, twin_advice};
pub use classify::{Classifier, canonical_name};
pub use discover::{Stage, detect_framework, eager_twin, framework_label, select_traces};
pub use golden::{CASES, fixture_stage, fixture_tables, golden_dir, render as render_golden};
pub use graph::map_graph_kernels;
pub use hoststall::host_stalls;
pub use reader::{
    ReadOptions, read_trace_bytes_with, read_trace_bytes_with_workers, read_trace_parallel_strict,
    read_trace_with, read_trace_with_workers,
};
pub use selfbench::{SelfbenchSummary, selfbench};
pub use store::{GpuKind, NONE, is_graph_launch_name};
pub use tables::{
    FuseCatalog, StageKernels, fuse_table, kernel_table, mapping_hint, overlap_table,
};
pub use tool::{ProfileTablesRequest, StageTables, render_stage_md, run_tables};

pub use capture::ProfileCapture;
pub use capture::launch::ProfileLaunch;
pub use reader::{read_trace, read_trace_bytes};
pub use store::TraceStore;
pub use tool::ProfileTables;
