//! Acceptance on the real vLLM 0.26 decode traces (`fixtures/h200-vllm-0.26/`):
//! `decode-graph` is 358 MB of JSON (1.29 M events), `decode-eager` about 750 MB. The
//! workspace's dev profile optimizes zlib-rs and the trace reader, so reading both takes
//! seconds even in a test build (4.4 s measured on 2 cores), and the test runs in CI.

use std::path::PathBuf;
use vllm_sota_layers::{
    ConfigLayers, Family, Options, analyze, load_rules, load_trace_view, pick_trace_file,
    read_config,
};

fn vllm(rel: &str) -> PathBuf {
    vllm_sota_core::refs::fixtures_dir()
        .join("h200-vllm-0.26")
        .join(rel)
}

fn llama_config() -> ConfigLayers {
    let p = vllm_sota_core::refs::fixtures_dir().join("dummy-llama-3.1-8b/config.json");
    read_config(&p, &load_rules().unwrap()).unwrap()
}

#[test]
fn vllm_decode_graph_with_eager_mapping_finds_32_layers_in_a_generation_64_step() {
    let graph =
        load_trace_view(&pick_trace_file(&vllm("decode-graph"), "decode").unwrap()).unwrap();
    let eager =
        load_trace_view(&pick_trace_file(&vllm("decode-eager"), "decode").unwrap()).unwrap();
    let gpu = vllm_sota_core::gpu::find("H200").unwrap();
    for mapping in [Some(&eager), None] {
        let a = analyze(&graph, mapping, llama_config(), &gpu, &Options::default()).unwrap();
        // README: step annotations named like execute_context_0(0)_generation_64(64).
        assert_eq!(
            a.representative_pass.name,
            "execute_context_0(0)_generation_64(64)"
        );
        assert_eq!(
            a.selection.dominant_kind,
            "execute_context_0(0)_generation_64(64)"
        );
        assert!(a.selection.kind_count >= 100, "{}", a.selection.kind_count);
        let t = a.representative_pass.tokens.unwrap();
        assert_eq!(
            (
                t.generation_requests,
                t.generation_tokens,
                t.context_requests
            ),
            (64, 64, 0)
        );
        assert_eq!(a.layers.len(), 32, "{:?}", a.notes);
        assert_eq!(a.type_table.len(), 1);
        assert_eq!(a.type_table[0].layers, "0–31");
        // Layer work excludes step setup (pre) and the final norm / copy-out (post).
        assert!(a.pre_layer.kernels > 0 && a.post_layer.kernels > 0);
        // Hot kernels of a representative layer, with families: the nvjet GEMMs and FA3.
        let hot = &a.representative_layers[0].hot_kernels;
        assert!(
            hot.iter()
                .any(|h| h.family == Family::Gemm && h.name.starts_with("nvjet")),
            "{hot:?}"
        );
        assert!(
            hot.iter()
                .any(|h| h.family == Family::Attention && h.name.contains("FlashAttnFwdSm90")),
            "{hot:?}"
        );
        assert!(hot.iter().any(|h| h.family == Family::Norm), "{hot:?}");
        assert!(
            a.representative_layers[0]
                .perfetto
                .url_query
                .starts_with("?visStart=5100")
        );
        // vLLM 0.26 runs compute_logits (lm_head) and sampling after the step annotation
        // closes: reported as work after the pass, not folded into the last layer.
        let after: Vec<&str> = a.after_pass.top.iter().map(|t| t.name.as_str()).collect();
        assert!(
            after
                .iter()
                .any(|n| n.contains("topk_topp") || n.starts_with("nvjet")),
            "{after:?}"
        );
        if mapping.is_some() {
            assert!(
                a.notes.iter().any(|n| n.starts_with("mapping trace:")),
                "{:?}",
                a.notes
            );
        }
    }
}
