//! Golden outputs of the three tables (kernel, overlap-opportunity, fuse-pattern) on the
//! real fixtures: the cases, and the JSON that `tests/golden.rs` compares byte for byte
//! with `crates/trace/tests/golden/<case>.json`.
//!
//! A test never rewrites these files. They are written only by the explicit example
//! `cargo run -p vllm-sota-trace --example golden [-- <fixtures dir>]`, after a change whose
//! output difference is intended (the diff is then reviewed in the commit).

use crate::tool::{ProfileTablesReport, ProfileTablesRequest, StageTables, run_tables};
use anyhow::Result;
use std::path::{Path, PathBuf};
use vllm_sota_core::tool::ToolContext;

/// One golden case: a trace (file or directory, relative to the fixtures directory) and
/// optionally its eager mapping twin.
pub struct GoldenCase {
    pub name: &'static str,
    pub trace: &'static str,
    pub mapping: Option<&'static str>,
}

/// The cases: a plain PyTorch eager decode (one stream, long host gaps), a vLLM decode
/// with CUDA graphs mapped through its eager twin (two streams), an SGLang prefill with
/// breakable CUDA graphs (three streams, real overlap), and a heterogeneous MoE prefill.
pub const CASES: &[GoldenCase] = &[
    GoldenCase {
        name: "llama8b_decode",
        trace: "h200-torch-traces/llama8b_decode.trace.json.gz",
        mapping: None,
    },
    GoldenCase {
        name: "vllm_decode_graph_mapped",
        trace: "h200-vllm-0.26/decode-graph",
        mapping: Some("h200-vllm-0.26/decode-eager"),
    },
    GoldenCase {
        name: "sglang_prefill",
        trace: "h200-sglang-0.5.17/prefill",
        mapping: None,
    },
    GoldenCase {
        name: "qwen2moe_prefill",
        trace: "h200-torch-traces/qwen2moe_prefill.trace.json.gz",
        mapping: None,
    },
];

/// profile_tables with default options (no files written) on a trace under `fixtures` and
/// its optional eager mapping twin: the one way the goldens and the fixture tests load tables.
pub fn fixture_tables(
    fixtures: &Path,
    trace: &str,
    mapping: Option<&str>,
) -> Result<(ProfileTablesReport, Vec<StageTables>)> {
    let req =
        ProfileTablesRequest::for_trace(fixtures.join(trace), mapping.map(|m| fixtures.join(m)));
    run_tables(&req, &ToolContext::new())
}

/// The first stage's tables of a trace under the fixtures directory
/// ([`vllm_sota_core::refs::fixtures_dir`]), for tests that assert facts of one stage.
pub fn fixture_stage(trace: &str, mapping: Option<&str>) -> Result<StageTables> {
    let (_, mut stages) = fixture_tables(&vllm_sota_core::refs::fixtures_dir(), trace, mapping)?;
    anyhow::ensure!(!stages.is_empty(), "{trace}: no stage");
    Ok(stages.remove(0))
}

/// Where the golden files live (in the source tree).
pub fn golden_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden"))
}

/// The golden JSON of one case: per stage, the framework label, the three tables at the
/// default cutoff (1%) and the host stalls (groups, count and the first twelve), pretty-printed. No file paths of this machine appear in it.
pub fn render(case: &GoldenCase, fixtures: &Path) -> Result<String> {
    let (_, tables) = fixture_tables(fixtures, case.trace, case.mapping)?;
    let stages: Vec<serde_json::Value> = tables
        .iter()
        .map(|t| {
            serde_json::json!({
                "stage": t.stage,
                "framework": t.framework,
                "kernel_table": t.kernel_table,
                "overlap_table": t.overlap_table,
                "host_stalls": {
                    "steps": t.host_stalls.steps,
                    "step_pattern": t.host_stalls.step_pattern,
                    "groups": t.host_stalls.groups,
                    "stall_count": t.host_stalls.stalls.len(),
                    "first_stalls": t.host_stalls.stalls.iter().take(12).collect::<Vec<_>>(),
                    "note": t.host_stalls.note,
                },
                "fuse_table": t.fuse_table,
            })
        })
        .collect();
    Ok(serde_json::to_string_pretty(&stages)? + "\n")
}
