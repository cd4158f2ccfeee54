//! Small evidence rules of profile_tables on the real fixtures: kernel counts without
//! copies, one location per kernel across tables, the framework's own flag in advice.

use vllm_sota_trace::fixture_stage;

#[test]
fn the_kernel_count_leaves_memcpy_and_memset_apart() {
    // The fixtures README: 53,534 kernels in the vLLM decode-graph window.
    let t = fixture_stage(
        "h200-vllm-0.26/decode-graph",
        Some("h200-vllm-0.26/decode-eager"),
    )
    .unwrap();
    let kt = &t.kernel_table;
    assert_eq!(kt.kernel_count, 53_534);
    assert_eq!((kt.memcpy_count, kt.memset_count), (697, 70));
}

#[test]
fn an_overlap_row_has_the_kernel_tables_location() {
    for (trace, mapping) in [
        ("h200-torch-traces/qwen2moe_prefill.trace.json.gz", None),
        ("h200-torch-traces/llama8b_decode.trace.json.gz", None),
        ("h200-sglang-0.5.17/prefill", None),
        (
            "h200-vllm-0.26/decode-graph",
            Some("h200-vllm-0.26/decode-eager"),
        ),
    ] {
        let t = fixture_stage(trace, mapping).unwrap();
        assert!(!t.overlap_table.rows.is_empty(), "{trace}");
        for r in &t.overlap_table.rows {
            let k = t
                .kernel_table
                .rows
                .iter()
                .find(|k| k.full_name == r.full_name)
                .unwrap_or_else(|| panic!("{trace}: {} has no kernel row", r.kernel));
            assert!(
                r.location.starts_with(&k.location),
                "{trace}: {}: overlap {:?} vs kernel {:?}",
                r.kernel,
                r.location,
                k.location
            );
        }
    }
}

#[test]
fn graph_advice_names_the_traces_own_framework_flag() {
    let t = fixture_stage("h200-sglang-0.5.17/prefill", None).unwrap();
    assert_eq!(t.framework, "sglang");
    let note = t.kernel_table.graph_note.as_deref().unwrap();
    assert!(note.contains("--disable-cuda-graph"), "{note}");
    assert!(!note.contains("--enforce-eager"), "{note}");
    assert_eq!(
        vllm_sota_trace::mapping_hint("vllm"),
        "For vLLM, capture it with `--enforce-eager`."
    );
}
