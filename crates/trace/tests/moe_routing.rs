//! MoE routing kernels are told from sampling kernels by their launch context, on the real
//! HF Qwen2-MoE prefill and the dense vLLM Llama decode.

use vllm_sota_trace::fixture_stage;

#[test]
fn qwen2moe_router_kernels_are_moe_routing_and_give_no_sampling_note() {
    let t = fixture_stage("h200-torch-traces/qwen2moe_prefill.trace.json.gz", None).unwrap();
    let fams: Vec<&str> = t
        .kernel_table
        .families
        .iter()
        .map(|f| f.family.as_str())
        .collect();
    assert!(fams.contains(&"moe_routing"), "{fams:?}");
    // The model samples nothing in this window: no kernel is sampling.
    assert!(!fams.contains(&"sampling"), "{fams:?}");
    let sort = t
        .kernel_table
        .rows
        .iter()
        .find(|r| r.kernel.contains("RadixSort"))
        .expect("the router's radix sort row");
    assert_eq!(sort.family, "moe_routing");
    assert!(sort.location.contains("moe"), "{}", sort.location);
    for n in &t.fuse_table.similarity {
        assert!(!n.pattern.contains("sampling"), "{n:?}");
    }
    assert!(
        t.fuse_table
            .rows
            .iter()
            .all(|r| r.id != "topk-topp-sampling"),
        "{:?}",
        t.fuse_table.rows
    );
}

#[test]
fn dense_vllm_llama_decode_has_sampling_and_no_moe_router_note() {
    let t = fixture_stage(
        "h200-vllm-0.26/decode-graph",
        Some("h200-vllm-0.26/decode-eager"),
    )
    .unwrap();
    let fams: Vec<&str> = t
        .kernel_table
        .families
        .iter()
        .map(|f| f.family.as_str())
        .collect();
    assert!(fams.contains(&"sampling"), "{fams:?}");
    assert!(!fams.contains(&"moe_routing"), "{fams:?}");
    for n in &t.fuse_table.similarity {
        assert!(!n.pattern.contains("MoE"), "{n:?}");
    }
    assert!(t.fuse_table.rows.iter().all(|r| r.id != "moe-router-topk"));
}
