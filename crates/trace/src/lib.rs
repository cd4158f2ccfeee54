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
pub mod attrib;
pub mod capture;

pub mod classify;
pub mod discover;
pub mod golden;
pub mod graph;
pub mod hoststall;
pub mod link;
pub mod names;
pub mod reader;
pub mod selfbench;
pub mod store;
pub mod tables;
pub mod tool;

pub use capture::{ProfileCapture, ProfileLaunch};
pub use reader::{read_trace, read_trace_bytes};
pub use store::TraceStore;
pub use tool::ProfileTables;
