//! Acceptance facts on the real H200 traces in `fixtures/h200-torch-traces/` (see its
//! README: HF transformers Llama-3.1-8B-shaped and Qwen2-MoE-shaped models, and a
//! hand-written Llama decode step run eagerly with `layers.N` annotations and replayed
//! from a CUDA graph).

use std::path::PathBuf;
use std::sync::OnceLock;
use vllm_sota_layers::{
    Analysis, ConfigLayers, Family, GapCause, GapPlace, LayerSource, Options, SpanKind, TraceView,
    analyze, find_passes, load_rules, load_trace_view, read_config, segment,
};

fn dir() -> PathBuf {
    vllm_sota_core::refs::fixtures_dir().join("h200-torch-traces")
}

fn view(name: &str) -> &'static TraceView {
    static CACHE: OnceLock<
        std::sync::Mutex<std::collections::HashMap<String, &'static TraceView>>,
    > = OnceLock::new();
    let m = CACHE.get_or_init(Default::default);
    if let Some(v) = m.lock().unwrap().get(name) {
        return v;
    }
    let v: &'static TraceView = Box::leak(Box::new(
        load_trace_view(&dir().join(name)).expect("fixture trace loads"),
    ));
    m.lock().unwrap().insert(name.to_string(), v);
    v
}

fn config_at(path: &std::path::Path) -> ConfigLayers {
    read_config(path, &load_rules().unwrap()).unwrap()
}

fn cfg(name: &str) -> ConfigLayers {
    config_at(&dir().join(name))
}

/// The analysis of `v` (with its mapping twin) on an H200 with default options.
fn analyze_on_h200(v: &TraceView, mapping: Option<&TraceView>, c: ConfigLayers) -> Analysis {
    let gpu = vllm_sota_core::gpu::find("H200").unwrap();
    analyze(v, mapping, c, &gpu, &Options::default()).unwrap()
}

fn run(trace: &str, config: Option<&str>, mapping: Option<&str>) -> Analysis {
    let c = config
        .map(cfg)
        .unwrap_or_else(|| ConfigLayers::absent("none"));
    analyze_on_h200(view(trace), mapping.map(view), c)
}

/// The type-table row of one layer type.
fn type_row<'a>(a: &'a Analysis, layer_type: &str) -> &'a vllm_sota_layers::TypeRow {
    a.type_table
        .iter()
        .find(|t| t.layer_type == layer_type)
        .unwrap_or_else(|| panic!("{layer_type}: {:?}", a.type_table))
}

/// The representative layer of one layer type.
fn representative<'a>(
    a: &'a Analysis,
    layer_type: &str,
) -> &'a vllm_sota_layers::RepresentativeLayer {
    a.representative_layers
        .iter()
        .find(|r| r.layer_type == layer_type)
        .unwrap_or_else(|| panic!("no representative {layer_type} layer"))
}

fn layer_source_says(a: &Analysis, text: &str) -> bool {
    a.layer_source.as_deref().is_some_and(|s| s.contains(text))
}

#[test]
fn llama8b_prefill_has_32_dense_full_attention_layers_with_lm_head_post_layer() {
    let a = run(
        "llama8b_prefill.trace.json.gz",
        Some("llama8b_config.json"),
        None,
    );
    assert_eq!(a.passes_found, 1, "one execute_model_step_0 window");
    assert_eq!(a.layers.len(), 32);
    assert!(
        matches!(a.layer_source.as_deref(), Some(s) if s.contains("LlamaDecoderLayer")),
        "{:?}",
        a.layer_source
    );
    assert_eq!(a.type_table.len(), 1);
    assert_eq!(a.type_table[0].layer_type, "full_attention + dense");
    assert_eq!(a.type_table[0].layers, "0–31");
    // Embedding before layer 0, final norm + lm_head after layer 31: not folded into layers.
    assert!(a.pre_layer.kernels > 0 && a.post_layer.kernels > 0);
    let top = &a.post_layer.top[0];
    assert!(
        top.name.starts_with("nvjet") && top.ms > 5.0,
        "lm_head GEMM [8000,4096]x[4096,128256] dominates post-layer work: {:?}",
        a.post_layer.top
    );
    // Every layer has the same kernel count in an eager HF prefill.
    assert!(
        a.layers.iter().all(|l| l.kernels == a.layers[0].kernels),
        "{:?}",
        a.layers.iter().map(|l| l.kernels).collect::<Vec<_>>()
    );
    // The representative layer's hot list has GEMMs with a compute-bound roofline (M = 8000 tokens).
    let rep = &a.representative_layers[0];
    let g = rep
        .hot_kernels
        .iter()
        .find(|h| h.family == Family::Gemm)
        .unwrap();
    let r = g
        .roofline
        .as_ref()
        .expect("record_shapes gives aten::mm dims");
    assert!(r.shape.contains("8000") && r.bound == "compute", "{r:?}");
    assert!(g.percent_of_roofline.unwrap() > 10.0 && g.percent_of_roofline.unwrap() <= 100.0);
    // Perfetto: the pass range lies inside the trace and uses ns = ts × 1000.
    let p = &a.representative_pass.perfetto;
    assert!(p.url_query.starts_with("?visStart=") && p.start_ns < p.end_ns);
    assert!(
        p.wall_clock_start_utc
            .as_deref()
            .unwrap()
            .starts_with("2026-11-29T"),
        "baseTimeNanoseconds + ts: the capture day"
    );
}

#[test]
fn llama8b_decode_skips_the_warm_up_step_and_surfaces_the_kv_cache_cat() {
    let a = run(
        "llama8b_decode.trace.json.gz",
        Some("llama8b_config.json"),
        None,
    );
    assert_eq!(a.passes_found, 5);
    assert!(a.selection.first_excluded);
    assert_ne!(a.representative_pass.index, 0);
    assert_eq!(a.layers.len(), 32);
    assert_eq!(a.type_table.len(), 1);
    assert!(a.pre_layer.kernels > 0 && a.post_layer.kernels > 0);
    // README: the DynamicCache torch.cat (CatArrayBatchedCopy) is the largest kernel, ~20.6% of GPU time.
    let top = &a.pass_hot_kernels[0];
    assert!(top.name.contains("CatArrayBatchedCopy"), "{}", top.name);
    assert_eq!(top.family, Family::CopyConcat);
    assert!(
        (0.18..0.23).contains(&top.share_of_layer),
        "{}",
        top.share_of_layer
    );
}

#[test]
fn llama8b_decode_kernel_sequence_alone_finds_the_same_32_layers() {
    // Drop the nn.Module scopes: the repeating kernel sequence must recover 32 layers of
    // the same size as the module scopes give.
    let v = view("llama8b_decode.trace.json.gz");
    let ps = find_passes(v);
    let p = &ps[2];
    let by_scope = segment(v, p, Some(32)).unwrap();
    let mut stripped = v.clone();
    stripped.spans.retain(|s| s.kind != SpanKind::PythonModule);
    let by_seq = segment(&stripped, p, Some(32)).unwrap();
    assert!(
        matches!(by_seq.source, LayerSource::Period { .. }),
        "{:?}",
        by_seq.source
    );
    assert_eq!(by_seq.layers.len(), 32);
    let LayerSource::Period {
        kernels_per_layer, ..
    } = by_seq.source
    else {
        unreachable!()
    };
    assert_eq!(kernels_per_layer, by_scope.layers[5].len());
    // Layers are rotations of the scoped ones: each starts within a few kernels of the scope boundary.
    let scoped_first: Vec<usize> = by_scope.layers.iter().map(|l| l[0]).collect();
    let seq_first: Vec<usize> = by_seq.layers.iter().map(|l| l[0]).collect();
    let shift = seq_first[0] as i64 - scoped_first[0] as i64;
    assert!(
        seq_first
            .iter()
            .zip(&scoped_first)
            .all(|(a, b)| *a as i64 - *b as i64 == shift),
        "constant phase shift"
    );
    assert!(shift.abs() < kernels_per_layer as i64);
}

#[test]
fn qwen2moe_prefill_types_layers_0_1_dense_and_2_11_moe_with_different_cost_and_kernels() {
    let a = run(
        "qwen2moe_prefill.trace.json.gz",
        Some("qwen2moe_config.json"),
        None,
    );
    assert_eq!(a.layers.len(), 12);
    assert_eq!(a.type_table.len(), 2);
    let dense = type_row(&a, "full_attention + dense");
    let moe = type_row(&a, "full_attention + moe");
    assert_eq!((dense.layers.as_str(), dense.count), ("0–1", 2));
    assert_eq!((moe.layers.as_str(), moe.count), ("2–11", 10));
    assert!(
        moe.gpu_median_ms > dense.gpu_median_ms * 1.3,
        "MoE layers cost more: {} vs {}",
        moe.gpu_median_ms,
        dense.gpu_median_ms
    );
    let rd = representative(&a, &dense.layer_type);
    let rm = representative(&a, &moe.layer_type);
    assert!(rd.layer <= 1 && rm.layer >= 2);
    assert!(
        rm.kernels > rd.kernels,
        "the expert loop launches more kernels"
    );
    let dense_names: Vec<&str> = rd.hot_kernels.iter().map(|h| h.name.as_str()).collect();
    assert!(
        rm.hot_kernels
            .iter()
            .take(3)
            .any(|h| !dense_names.contains(&h.name.as_str())),
        "MoE hot kernels differ"
    );
}

#[test]
fn minillama_eager_uses_gpu_layer_annotations_and_the_graph_replay_takes_them_via_mapping() {
    let eager = run(
        "minillama_eager_decode.trace.json.gz",
        Some("llama8b_config.json"),
        None,
    );
    assert_eq!(eager.layers.len(), 32);
    assert!(layer_source_says(&eager, "GPU layer annotations"));
    let graph = run(
        "minillama_graph_decode.trace.json.gz",
        Some("llama8b_config.json"),
        Some("minillama_eager_decode.trace.json.gz"),
    );
    assert_eq!(graph.passes_found, 5);
    assert_eq!(graph.layers.len(), 32);
    assert!(
        layer_source_says(&graph, "mapping trace"),
        "{:?}",
        graph.layer_source
    );
    let per_layer: Vec<usize> = graph.layers.iter().map(|l| l.kernels).collect();
    let eager_per_layer: Vec<usize> = eager.layers.iter().map(|l| l.kernels).collect();
    assert_eq!(
        per_layer, eager_per_layer,
        "same 32 layers, kernel for kernel"
    );
    // argmax sampling runs outside the graph: post-layer work, not layer 31.
    assert!(graph.post_layer.kernels >= 1);
    // Shapes come from the eager twin: the graph replay's GEMMs get a roofline.
    assert!(
        graph.representative_layers[0]
            .hot_kernels
            .iter()
            .any(|h| h.roofline.is_some())
    );
    // Without the mapping, the graph pass is segmented by its kernel sequence: still 32 layers.
    let alone = run(
        "minillama_graph_decode.trace.json.gz",
        Some("llama8b_config.json"),
        None,
    );
    assert_eq!(alone.layers.len(), 32);
    assert!(layer_source_says(&alone, "repeating kernel sequence"));
}

#[test]
fn unknown_config_gives_a_clear_message_and_a_generic_untyped_table() {
    let dirt = tempfile::tempdir().unwrap();
    let p = dirt.path().join("config.json");
    std::fs::write(
        &p,
        r#"{"model_type": "mystery-net", "depth": 32, "width": 4096}"#,
    )
    .unwrap();
    let c = config_at(&p);
    let a = analyze_on_h200(view("llama8b_prefill.trace.json.gz"), None, c);
    let problem = a.config.problem.as_deref().unwrap();
    assert!(
        problem.contains("no layer count") && problem.contains("untyped"),
        "{problem}"
    );
    assert!(a.notes.iter().any(|n| n.starts_with("config:")));
    assert_eq!(a.type_table.len(), 1);
    assert_eq!(a.type_table[0].layer_type, "untyped");
    assert_eq!(
        a.layers.len(),
        32,
        "decoder-layer module scopes still delimit the layers"
    );
}

#[test]
fn heterogeneous_stack_without_scopes_is_fitted_group_by_group() {
    // Qwen2-MoE: dense layers 0–1 and MoE layers 2–11 have different kernel sequences,
    // so no one unit repeats 12 times; the config's groups (2 dense, 10 MoE) are fitted
    // one after the other and must agree with the nn.Module scopes.
    let scoped = run(
        "qwen2moe_prefill.trace.json.gz",
        Some("qwen2moe_config.json"),
        None,
    );
    let mut v = view("qwen2moe_prefill.trace.json.gz").clone();
    v.spans.retain(|s| s.kind != SpanKind::PythonModule);
    let a = analyze_on_h200(&v, None, cfg("qwen2moe_config.json"));
    let sizes: Vec<usize> = a.layers.iter().map(|l| l.kernels).collect();
    let scoped_sizes: Vec<usize> = scoped.layers.iter().map(|l| l.kernels).collect();
    assert_eq!(a.layers_found, 12, "{:?}", a.notes);
    assert!(
        a.notes.iter().any(|n| n.contains("group by group")),
        "{:?}",
        a.notes
    );
    assert_eq!(
        sizes, scoped_sizes,
        "the same kernel count in every layer as the module scopes give"
    );
    let moe = type_row(&a, "full_attention + moe");
    let dense = type_row(&a, "full_attention + dense");
    assert!(moe.gpu_median_ms > dense.gpu_median_ms);
}

#[test]
fn llama8b_decode_types_use_gpu_time_and_the_cudnn_host_stall_in_layer_0_is_flagged_and_attributed()
{
    // HF eager decode: `aten::_cudnn_attention_forward` holds the CPU ~65 ms once per
    // step before the SDPA kernel, inside layer 0 (wall 68 ms against 0.31 ms of GPU time).
    let a = run(
        "llama8b_decode.trace.json.gz",
        Some("llama8b_config.json"),
        None,
    );
    let t = &a.type_table[0];
    assert!(
        t.gpu_mean_ms < 0.4 && t.gpu_p95_ms < 0.4,
        "GPU time per layer ≈ 0.31 ms: {t:?}"
    );
    assert!(
        t.wall_mean_ms > 4.0,
        "wall time beside it keeps the stall visible: {t:?}"
    );
    assert!(
        (0.9..=1.0).contains(&t.gpu_share_of_pass),
        "layers hold nearly all GPU time: {t:?}"
    );
    assert_eq!(t.gap_layers, vec![0], "{t:?}");
    let g = &a.idle_gaps[0];
    assert_eq!(g.place, GapPlace::InsideLayer { layer: 0 });
    assert!((60.0..70.0).contains(&g.ms), "{g:?}");
    assert!(g.share_of_pass > 0.4, "{g:?}");
    assert!(g.kernel_after.contains("sdpa"), "{g:?}");
    match &g.cause {
        GapCause::HostStall {
            op, host_late_ms, ..
        } => {
            assert_eq!(op.as_deref(), Some("aten::_cudnn_attention_forward"));
            assert!(*host_late_ms > 60.0);
        }
        c => panic!("expected a host stall: {c:?}"),
    }
    assert!(
        a.idle_gaps.iter().skip(1).all(|g| g.ms < 5.0),
        "one stall per step: {:?}",
        a.idle_gaps
    );
    assert!(
        a.notes
            .iter()
            .any(|n| n.starts_with("host stall") && n.contains("aten::_cudnn_attention_forward")),
        "{:?}",
        a.notes
    );
    let rep = &a.representative_layers[0];
    assert_ne!(
        rep.layer, 0,
        "the stalled layer is not the median by GPU time"
    );
}

#[test]
fn qwen2moe_with_a_host_stall_in_a_dense_layer_keeps_gpu_shares_and_flags_the_gap() {
    // The held-out HF Qwen2-MoE decode shape: a 50 ms host stall inside layer 0 (dense)
    // once made dense layers look like half of the pass by wall time. Reproduce it on
    // the real prefill trace: delay every kernel after layer 0's attention by 50 ms and
    // let the launching thread sit in one CPU op meanwhile.
    let clean = run(
        "qwen2moe_prefill.trace.json.gz",
        Some("qwen2moe_config.json"),
        None,
    );
    let mut v = view("qwen2moe_prefill.trace.json.gz").clone();
    let ps = find_passes(&v);
    let seg = segment(&v, &ps[0], Some(12)).unwrap();
    let layer0 = &seg.layers[0];
    let cut = layer0[layer0.len() / 2];
    let shift = 50_000_000;
    let cut_ts = v.kernels[cut].ts_ns;
    let prev_end = v.kernels[..cut].iter().map(|k| k.end_ns()).max().unwrap();
    for k in v.kernels.iter_mut().filter(|k| k.ts_ns >= cut_ts) {
        k.ts_ns += shift;
        if let Some(l) = k.launch.as_mut() {
            l.ts_ns += shift;
        }
    }
    for s in v.spans.iter_mut() {
        if s.ts_ns >= cut_ts {
            s.ts_ns += shift;
        } else if s.end_ns() > cut_ts {
            s.dur_ns += shift;
        }
    }
    v.host_stalls.push(vllm_sota_layers::HostStallAt {
        start_ns: prev_end,
        dur_ns: cut_ts + shift - prev_end,
        held_by: "aten::held_by_test".into(),
        kind: "cpu_op".into(),
    });
    v.normalize();
    let a = analyze_on_h200(&v, None, cfg("qwen2moe_config.json"));
    let dense = |a: &Analysis| type_row(a, "full_attention + dense").clone();
    let (d0, d1) = (dense(&clean), dense(&a));
    assert!(
        d1.wall_share_of_pass > 0.5,
        "by wall, dense layers now look like most of the pass: {d1:?}"
    );
    assert!(
        (d1.gpu_share_of_pass - d0.gpu_share_of_pass).abs() < 1e-9,
        "the GPU share does not move: {d0:?} vs {d1:?}"
    );
    assert_eq!(d1.gap_layers, vec![0]);
    assert!((d1.gap_ms - 50.0).abs() < 1.0, "{d1:?}");
    let g = &a.idle_gaps[0];
    assert_eq!(g.place, GapPlace::InsideLayer { layer: 0 });
    assert!(
        matches!(&g.cause, GapCause::HostStall { op: Some(op), .. } if op == "aten::held_by_test"),
        "{g:?}"
    );
    assert!(
        clean.idle_gaps.iter().all(|g| g.ms < 1.0),
        "{:?}",
        clean.idle_gaps
    );
}

#[test]
fn qwen2moe_decode_capture_ranks_layer_types_by_gpu_time_and_names_the_cudnn_stall() {
    // A real HF Qwen2-MoE decode captured on an H200 (tests/data/qwen2moe-decode): layer 0
    // holds a ~66 ms GPU-idle gap while `aten::_cudnn_attention_forward` holds the CPU, so
    // by wall time the two dense layers look like more than half of the pass.
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/qwen2moe-decode");
    let v = load_trace_view(&d.join("qwen2moe_decode.trace.json.gz")).unwrap();
    let c = config_at(&d.join("qwen2moe_config.json"));
    let a = analyze_on_h200(&v, None, c);
    assert_eq!(a.layers.len(), 12);
    let (dense, moe) = (
        type_row(&a, "full_attention + dense"),
        type_row(&a, "full_attention + moe"),
    );
    assert_eq!(
        (dense.layers.as_str(), moe.layers.as_str()),
        ("0–1", "2–11")
    );
    assert!(dense.wall_share_of_pass > 0.5, "{dense:?}");
    assert!(dense.gpu_share_of_pass < 0.15, "{dense:?}");
    assert!(moe.gpu_share_of_pass > 0.8, "{moe:?}");
    assert!(moe.gpu_median_ms > 2.0 * dense.gpu_median_ms);
    assert_eq!(dense.gap_layers, vec![0]);
    assert!(moe.gap_layers.is_empty(), "{moe:?}");
    let g = &a.idle_gaps[0];
    assert_eq!(g.place, GapPlace::InsideLayer { layer: 0 });
    assert!(g.ms > 40.0 && g.share_of_pass > 0.4, "{g:?}");
    assert!(
        matches!(&g.cause, GapCause::HostStall { op: Some(op), .. } if op == "aten::_cudnn_attention_forward"),
        "{g:?}"
    );
    let rep_dense = representative(&a, &dense.layer_type);
    assert_eq!(
        rep_dense.layer, 1,
        "the median dense layer by GPU time, not the stalled one"
    );
}

#[test]
fn a_stage_label_that_contradicts_the_trace_is_noted() {
    let gpu = vllm_sota_core::gpu::find("H200").unwrap();
    let with_stage = |trace: &str, stage: &str| {
        let opts = Options {
            stage: Some(stage.into()),
            ..Options::default()
        };
        analyze(view(trace), None, ConfigLayers::absent("none"), &gpu, &opts)
            .unwrap()
            .notes
    };
    let wrong = |notes: &[String]| notes.iter().any(|n| n.contains("was requested but pass"));
    // Decode: SDPA query length 1; prefill: 8,000.
    let n = with_stage("llama8b_decode.trace.json.gz", "prefill");
    assert!(
        n.iter()
            .any(|n| n.starts_with("stage `prefill` was requested")
                && n.contains("looks like decode")
                && n.contains("query length 1")),
        "{n:?}"
    );
    assert!(!wrong(&with_stage(
        "llama8b_decode.trace.json.gz",
        "decode"
    )));
    let n = with_stage("llama8b_prefill.trace.json.gz", "decode");
    assert!(n.iter().any(|n| n.contains("looks like prefill")), "{n:?}");
    assert!(!wrong(&with_stage(
        "llama8b_prefill.trace.json.gz",
        "prefill"
    )));
    assert!(!wrong(&with_stage(
        "llama8b_prefill.trace.json.gz",
        "mixed"
    )));
}

#[test]
fn qwen2moe_router_kernels_are_moe_routing_as_in_profile_tables_not_sampling() {
    // The router's softmax / top-k launched under the MoE block: the trace crate's
    // per-stage family (launch context) is used, so no sampling kernel appears in a
    // model without a sampler in the trace.
    let v = view("qwen2moe_prefill.trace.json.gz");
    let fams: Vec<Family> = v.kernels.iter().map(|k| v.family(k)).collect();
    assert!(fams.contains(&Family::MoeRouting), "no moe_routing kernel");
    assert!(
        !fams.contains(&Family::Sampling),
        "router kernels taken for sampling"
    );
    let a = run(
        "qwen2moe_prefill.trace.json.gz",
        Some("qwen2moe_config.json"),
        None,
    );
    assert!(
        a.representative_layers
            .iter()
            .flat_map(|r| &r.hot_kernels)
            .all(|h| h.family != Family::Sampling)
    );
}
