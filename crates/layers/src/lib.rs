//! vllm-sota-layers: the `layer_pipeline` tool — which forward pass is representative,
//! which layer types a model has and what each costs, and which kernels dominate a
//! representative layer, with Perfetto ranges to open.
//!
//! Parts:
//! - [`model`]: [`model::TraceView`], the slice of a trace the analysis reads (filled
//!   from the trace store by [`source`], or by hand in tests).
//! - [`passes`]: forward-pass boundaries (step annotations named in
//!   `references/trace-step-names.json`, read by [`names`], else idle gaps) and the
//!   representative-pass rule (dominant kind, no warm-up, no outliers, median).
//! - [`gaps`]: outlier GPU-idle gaps of the pass, placed in a layer and attributed to
//!   the host op holding the launching thread (or a GPU-side wait).
//! - [`layers`]: layers inside a pass (layer annotations, `nn.Module` scopes), with
//!   pre-/post-/between-layer work (and work after the step annotation) kept apart; [`period`]: the repeating kernel sequence
//!   when no scope exists; [`mapping`]: boundaries carried from an eager twin to a
//!   CUDA-graph replay by sequence alignment.
//! - [`config`]: HF `config.json` → per-layer types (dense/MoE, full/sliding/linear
//!   attention, hybrid, MTP, the seed's compress-ratio and hash layers), driven by
//!   `references/model-layer-rules.json`.
//! - [`families`]: kernel families (the trace crate's one classifier,
//!   `references/kernel-families.json`) and short display names; [`roofline`]: ideal GEMM/attention time from the
//!   launching op's shapes against `references/gpu-specs.json`; [`stats`]: mean,
//!   median, interpolated p95 (core::stats), median element; [`perfetto`]: ranges in the forms the
//!   Perfetto UI and trace processor accept.
//! - [`analyze`]: the pure pipeline; [`render`]: its markdown; [`tool`]: the
//!   `layer_pipeline` tool (request, size-bounded report, markdown and JSON artifacts).

#![warn(unreachable_pub)]

mod analyze;
mod config;
mod families;
mod gaps;
mod layers;
mod mapping;
mod model;
/// The trace names (step, layer and module scopes) are the trace crate's: one loader of
/// `references/trace-step-names.json` for both tools.
use vllm_sota_trace::names;
mod passes;
mod perfetto;
mod period;
mod render;
mod roofline;
mod source;
mod stats;
mod tool;

// The API: what the binary, the other crates, the tests and the examples use.
pub use analyze::{Analysis, Options, RepresentativeLayer, TypeRow, analyze};
pub use config::{ConfigLayers, interpret, load_rules, read_config};
pub use families::Family;
pub use gaps::{GapCause, GapPlace};
pub use layers::{LayerSource, segment};
pub use model::{HostStallAt, SpanKind, TraceView, ViewBuilder};
pub use passes::find_passes;
pub use source::{load as load_trace_view, pick_trace_file};

pub use tool::{LayerPipeline, LayerPipelineReport, LayerPipelineRequest};
