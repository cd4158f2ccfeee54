//! Acceptance on the live captures of 2026-12-03 (`docs/device-runs/2026-12-03/traces/`, in
//! this repository): `profile_capture` against real vLLM 0.26.0 and SGLang 0.5.17 servers on
//! one H200 (dummy Llama-3.1-8B), decode at concurrency 80, CUDA graphs as served plus the
//! eager twin of each. SGLang 0.5.17 names its steps `step[DECODE bs=80]`: a name seen in
//! these traces, not guessed.

use std::path::PathBuf;
use vllm_sota_layers::{ConfigLayers, Options, analyze, load_rules, load_trace_view, read_config};

fn trace(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/device-runs/2026-12-03/traces")
        .join(name)
}

fn llama_config() -> ConfigLayers {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo/config.json");
    read_config(&p, &load_rules().unwrap()).unwrap()
}

fn layers_of(fw: &str) -> (String, usize, Vec<String>) {
    let graph = load_trace_view(&trace(&format!("{fw}-decode-graph.trace.json.gz"))).unwrap();
    let eager = load_trace_view(&trace(&format!("{fw}-decode-eager.trace.json.gz"))).unwrap();
    let gpu = vllm_sota_core::gpu::find("H200").unwrap();
    let a = analyze(
        &graph,
        Some(&eager),
        llama_config(),
        &gpu,
        &Options::default(),
    )
    .unwrap();
    (
        a.representative_pass.name.clone(),
        a.layers.len(),
        a.notes.clone(),
    )
}

#[test]
fn sglang_decode_at_batch_80_has_32_layers_in_a_step_decode_pass() {
    let (pass, layers, notes) = layers_of("sglang");
    assert_eq!(pass, "step[DECODE bs=80]", "{notes:?}");
    assert_eq!(layers, 32, "{notes:?}");
}

#[test]
fn vllm_decode_at_batch_80_has_32_layers_in_a_generation_80_step() {
    let (pass, layers, notes) = layers_of("vllm");
    assert_eq!(pass, "execute_context_0(0)_generation_80(80)", "{notes:?}");
    assert_eq!(layers, 32, "{notes:?}");
}
