//! Acceptance tests on the real H200 fixtures (`vllm_sota_core::refs::fixtures_dir()`).
//! Facts asserted here can be checked by opening the files (see the fixtures README).

use std::path::PathBuf;
use vllm_sota_core::tool::ToolContext;
use vllm_sota_trace::Classifier;
use vllm_sota_trace::map_graph_kernels;
use vllm_sota_trace::*;
use vllm_sota_trace::{ProfileTablesRequest, run_tables};
use vllm_sota_trace::{Stage, select_traces};
use vllm_sota_trace::{read_trace, read_trace_bytes};

fn fx(rel: &str) -> PathBuf {
    vllm_sota_core::refs::fixtures_dir().join(rel)
}

fn request(trace: PathBuf) -> ProfileTablesRequest {
    ProfileTablesRequest::for_trace(trace, None)
}

#[test]
fn worker_trace_is_chosen_over_the_api_server_trace() {
    let sel = select_traces(&fx("h200-vllm-0.26/prefill")).unwrap();
    assert_eq!(sel.chosen.len(), 1);
    let name = sel.chosen[0]
        .path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    assert!(
        name.starts_with("rank0.") && name.ends_with(".pt.trace.json.gz"),
        "{name}"
    );
    assert_eq!(sel.chosen[0].stage, Stage::Prefill);
    let skipped = sel
        .skipped
        .iter()
        .find(|s| s.path.to_string_lossy().contains("async_llm"))
        .expect("API-server trace skipped");
    assert!(skipped.reason.contains("API-server"), "{}", skipped.reason);
}

#[test]
fn a_directory_with_only_api_server_traces_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_dir(fx("h200-vllm-0.26/prefill"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("async_llm"))
        .unwrap();
    std::os::unix::fs::symlink(&src, dir.path().join(src.file_name().unwrap())).unwrap();
    let err = select_traces(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("API-server") && err.contains("async_llm"),
        "{err}"
    );
    // The API-server trace given directly is refused too.
    let err = select_traces(&src).unwrap_err().to_string();
    assert!(err.contains("API-server"), "{err}");
}

#[test]
fn api_server_trace_really_has_no_kernels() {
    let src = std::fs::read_dir(fx("h200-vllm-0.26/prefill"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("async_llm"))
        .unwrap();
    let s = read_trace(&src).unwrap();
    assert_eq!(s.kernels.len(), 0);
    assert_eq!(s.counts.python_functions, 135_825);
    // And profile_tables on it (as a plain file name without the marker) says so.
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("worker.pt.trace.json.gz");
    std::os::unix::fs::symlink(&src, &link).unwrap();
    let err = format!(
        "{:#}",
        run_tables(&request(link.clone()), &ToolContext::new()).unwrap_err()
    );
    assert!(
        err.contains("no GPU kernels") && err.contains("worker.pt.trace.json.gz"),
        "{err}"
    );
}

#[test]
fn prefill_worker_trace_counts_match_the_file() {
    let sel = select_traces(&fx("h200-vllm-0.26/prefill")).unwrap();
    let s = read_trace(&sel.chosen[0].path).unwrap();
    // Counted with python json.load on the same file.
    assert_eq!(s.counts.total, 45_947);
    assert_eq!(s.counts.kernels, 914);
    assert_eq!(s.counts.memcpy, 20);
    assert_eq!(s.counts.memset, 10);
    assert_eq!(s.counts.cpu_ops, 3_028);
    assert_eq!(s.counts.python_functions, 39_732);
    assert_eq!(s.meta.base_time_ns, Some(1_790_857_026_000_000_000));
    assert_eq!(s.meta.display_time_unit.as_deref(), Some("ms"));
    let graph_launches = (0..s.launches.len())
        .filter(|&i| s.name(s.launches.name[i]) == "cudaGraphLaunch")
        .count();
    assert_eq!(graph_launches, 66);
    // vLLM step annotation and framework detection
    assert!(
        (0..s.annotations.len())
            .any(|i| s.name(s.annotations.name[i]) == "execute_context_1(16)_generation_0(0)")
    );
    assert_eq!(
        vllm_sota_trace::detect_framework(&s).0,
        Some(vllm_sota_core::Framework::Vllm)
    );
    // Python frames carry parent links.
    let linked = s.frames.parent.iter().filter(|&&p| p != u32::MAX).count();
    assert!(linked > 39_000, "{linked}");
}

#[test]
fn llama8b_decode_top_kernel_is_cat_array_batched_copy() {
    let (report, tables) = run_tables(
        &request(fx("h200-torch-traces/llama8b_decode.trace.json.gz")),
        &ToolContext::new(),
    )
    .unwrap();
    assert_eq!(report.stages.len(), 1);
    assert_eq!(report.stages[0].stage, "decode");
    let top = &tables[0].kernel_table.rows[0];
    assert!(
        top.full_name.contains("CatArrayBatchedCopy"),
        "{}",
        top.full_name
    );
    assert_eq!(top.family, "copy_concat");
    assert!((top.share_pct - 20.6).abs() < 0.1, "{}", top.share_pct);
    assert_eq!(top.calls, 320);
    assert_eq!(top.cpu_op, "aten::cat");
    assert!(
        top.location.starts_with("transformers/cache_utils.py:"),
        "{}",
        top.location
    );
    // cumulative share is monotone and the cutoff note counts hidden rows
    let rows = &tables[0].kernel_table.rows;
    assert!(
        rows.windows(2)
            .all(|w| w[1].cumulative_pct >= w[0].cumulative_pct)
    );
    assert!(rows.iter().all(|r| r.share_pct >= 1.0));
    assert!(tables[0].kernel_table.hidden_rows > 0);
    // fuse table: the torch.cat KV cache growth and the split RMSNorm chain are found by adjacency
    let ft = &tables[0].fuse_table;
    let kv = ft
        .rows
        .iter()
        .find(|r| r.id == "kv-cache-concat")
        .expect("kv-cache-concat row");
    assert_eq!(kv.status, "split present");
    assert!(
        (kv.split_share_pct - 20.6).abs() < 0.2,
        "{}",
        kv.split_share_pct
    );
    assert_eq!(
        ft.rows
            .iter()
            .find(|r| r.id == "rmsnorm-elementwise-chain")
            .unwrap()
            .status,
        "split present"
    );
    assert_eq!(
        ft.rows
            .iter()
            .find(|r| r.id == "splitk-gemm-reduce")
            .unwrap()
            .status,
        "split present"
    );
    // HF eager MLP: SiLU, then the up-projection GEMM, then the multiply
    assert_eq!(
        ft.rows
            .iter()
            .find(|r| r.id == "silu-and-mul")
            .unwrap()
            .status,
        "split present"
    );
}

fn classify(name: &str) -> String {
    Classifier::shared().classify(name).name.clone()
}

#[test]
fn classifier_pins_real_kernel_names() {
    // Names copied from the fixture traces; each is asserted to occur in one of them below.
    let fa3 = "void cutlass::device_kernel<flash::enable_sm90_or_later<flash::FlashAttnFwdSm90<flash::CollectiveMainloopFwdSm90<2, cute::tuple<cute::C<1>, cute::C<1>, cute::C<1> >";
    let cases: &[(&str, &str)] = &[
        ("nvjet_sm90_tst_128x16_64x11_2x1_v_bz_TNT", "gemm"),
        ("nvjet_sm90_tst_128x16_64x11_2x1_v_bz_splitK_TNT", "gemm"),
        (
            "void cublasLt::splitKreduce_kernel<32, 16, int, float",
            "gemm",
        ),
        (fa3, "attention"),
        (
            "void cutlass::device_kernel<flash::FlashAttnFwdCombine<cute::tuple<cute::C<8>, cute::C<128> >",
            "attention",
        ),
        (
            "cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_7_64x128x128_4x1x1_cga1x1x1_kernel0_0",
            "attention",
        ),
        ("triton_red_fused_fused_add_rms_norm_0", "norm"),
        ("triton_red_fused_fused_add_rms_norm_2", "norm"),
        (
            "void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<c10::BFloat16, float, true>",
            "norm",
        ),
        (
            "void vllm::reshape_and_cache_flash_kernel<__nv_bfloat16, __nv_bfloat16, (vllm::Fp8KVCacheDataType)0>",
            "kv_cache_write",
        ),
        ("triton_poi_fused_mul_silu_slice_1", "activation"),
        (
            "void at::native::(anonymous namespace)::CatArrayBatchedCopy<at::native::(anonymous namespace)::OpaqueType<2u>, unsigned int, 4, 64, 64>",
            "copy_concat",
        ),
        (
            "_ZN7cutlass13device_kernelIN2at4cuda6detail25enable_3x_kernel_for_sm9xINS_4gemm6kernel13GemmUniversalINS5_17GroupProblemShapeIN4cute5tupleIJiiiEEEEENS",
            "moe",
        ),
        ("_topk_topp_kernel", "sampling"),
        ("_gumbel_sample_kernel", "sampling"),
        (
            "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, at::native::ArgMaxOps<float>, unsigned int, long, 4, 4> >",
            "sampling",
        ),
        ("Memcpy HtoD (Pinned -> Device)", "memcpy"),
        ("Memset (Device)", "memset"),
        ("_compute_slot_mappings_kernel", "input_prep"),
        (
            "void at::native::vectorized_elementwise_kernel<8, at::native::CUDAFunctor_add<c10::BFloat16>, std::array<char*, 3ul> >",
            "elementwise",
        ),
    ];
    for (name, fam) in cases {
        assert_eq!(&classify(name), fam, "{name}");
    }
    // Families the fixtures lack, on names from public kernels.
    let extra: &[(&str, &str)] = &[
        (
            "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevKernelArgsStorage<4096ul>)",
            "communication",
        ),
        (
            "void vllm::cross_device_reduce_1stage<__nv_bfloat16, 8>",
            "communication",
        ),
        (
            "void flashinfer::BatchPrefillWithPagedKVCacheKernel<128>",
            "attention",
        ),
        (
            "void vllm::rotary_embedding_kernel<c10::BFloat16, true>",
            "rotary",
        ),
        (
            "void vllm::act_and_mul_kernel<c10::BFloat16, &vllm::silu_kernel>",
            "activation",
        ),
        (
            "void vllm::scaled_fp8_quant_kernel<c10::BFloat16>",
            "quantization",
        ),
        ("fused_moe_kernel", "moe"),
        (
            "void xformers::efficient_attention_forward_cutlass",
            "attention",
        ),
        ("void vllm::paged_attention_v2_kernel<128>", "attention"),
    ];
    for (name, fam) in extra {
        assert_eq!(&classify(name), fam, "{name}");
    }
    // The fixture names really occur.
    let mut seen = std::collections::HashSet::new();
    for f in [
        "h200-vllm-0.26/prefill/rank0.1795957285380924090.pt.trace.json.gz",
        "h200-torch-traces/llama8b_prefill.trace.json.gz",
        "h200-torch-traces/qwen2moe_prefill.trace.json.gz",
        "h200-torch-traces/minillama_eager_decode.trace.json.gz",
    ] {
        let s = read_trace(&fx(f)).unwrap();
        for &n in &s.kernels.name {
            seen.insert(s.name(n).to_string());
        }
    }
    for (name, _) in cases.iter().filter(|(n, _)| {
        *n != "_topk_topp_kernel" && !n.starts_with("triton_red_fused_fused_add_rms_norm_2x")
    }) {
        assert!(
            seen.iter().any(|s| s.starts_with(name)),
            "fixture lacks {name}"
        );
    }
}

#[test]
fn minillama_graph_kernels_map_to_layers_of_the_eager_twin() {
    let g = read_trace(&fx(
        "h200-torch-traces/minillama_graph_decode.trace.json.gz",
    ))
    .unwrap();
    let e = read_trace(&fx(
        "h200-torch-traces/minillama_eager_decode.trace.json.gz",
    ))
    .unwrap();
    let m = map_graph_kernels(&g, &e, Classifier::shared());
    assert_eq!(m.summary.graph_launches, 5);
    assert_eq!(m.summary.graph_kernels, 2250);
    assert_eq!(m.summary.unique_graphs, 1);
    assert!(m.summary.match_rate > 0.99, "{}", m.summary.note);
    // Within the first replay, attributed layers go 0..31 in order.
    let first_launch = (0..g.kernels.len())
        .filter(|&k| g.kernel_is_graph_replay(k))
        .map(|k| g.kernels.launch[k])
        .min()
        .unwrap();
    let layers: Vec<u32> = (0..g.kernels.len())
        .filter(|&k| g.kernels.launch[k] == first_launch)
        .filter_map(|k| m.per_kernel[k].as_ref())
        .filter_map(|t| {
            t.attribution
                .annotation
                .as_deref()?
                .strip_prefix("layers.")?
                .parse()
                .ok()
        })
        .collect();
    assert!(layers.len() >= 440, "{}", layers.len());
    assert_eq!(layers.first(), Some(&0));
    assert_eq!(layers.last(), Some(&31));
    assert!(layers.windows(2).all(|w| w[1] >= w[0]));
    // Without the mapping trace, the same kernels are reported as graph-replayed and unattributed.
    let (_, tables) = run_tables(
        &request(fx("h200-torch-traces/minillama_graph_decode.trace.json.gz")),
        &ToolContext::new(),
    )
    .unwrap();
    let kt = &tables[0].kernel_table;
    assert!(
        kt.rows
            .iter()
            .filter(|r| r.graph_replayed_calls > 0)
            .all(|r| r.attribution == "graph_unattributed")
    );
    assert!(
        kt.graph_note
            .as_deref()
            .unwrap()
            .contains("graph_unattributed")
    );
    // With it, rows carry the eager CPU op.
    let mut req = request(fx("h200-torch-traces/minillama_graph_decode.trace.json.gz"));
    req.mapping_trace = Some(fx("h200-torch-traces/minillama_eager_decode.trace.json.gz"));
    let (_, tables) = run_tables(&req, &ToolContext::new()).unwrap();
    let top = &tables[0].kernel_table.rows[0];
    assert_eq!(top.attribution, "graph_twin");
    assert_eq!(top.cpu_op, "aten::_cudnn_attention_forward");
    assert!(top.annotation.as_deref().unwrap().starts_with("layers."));
}

#[test]
fn minillama_eager_overlap_and_fuse_tables() {
    let (_, tables) = run_tables(
        &request(fx("h200-torch-traces/minillama_eager_decode.trace.json.gz")),
        &ToolContext::new(),
    )
    .unwrap();
    let t = &tables[0];
    let ot = &t.overlap_table;
    assert!(ot.gpu_busy_ms > 0.0 && ot.gpu_busy_ms <= ot.wall_ms + 1e-9);
    assert_eq!(ot.streams.len(), 1);
    assert_eq!(ot.max_concurrent_streams, 1);
    // residual add then layer-norm kernel back to back: split present
    assert_eq!(
        t.fuse_table
            .rows
            .iter()
            .find(|r| r.id == "residual-add-rmsnorm")
            .unwrap()
            .status,
        "split present"
    );
    assert_eq!(
        t.fuse_table
            .rows
            .iter()
            .find(|r| r.id == "silu-and-mul")
            .unwrap()
            .status,
        "split present"
    );
}

#[test]
fn vllm_prefill_fused_kernels_are_recognized() {
    let (report, tables) =
        run_tables(&request(fx("h200-vllm-0.26/prefill")), &ToolContext::new()).unwrap();
    assert_eq!(report.framework, "vllm");
    let ft = &tables[0].fuse_table;
    for id in ["residual-add-rmsnorm", "silu-and-mul"] {
        let r = ft.rows.iter().find(|r| r.id == id).unwrap();
        assert!(
            r.status == "already fused" || r.status == "both",
            "{id}: {}",
            r.status
        );
        assert!(r.fused_share_pct > 1.0);
    }
    // prefill uses piecewise CUDA graphs: some rows are graph-replayed and said so
    assert!(tables[0].kernel_table.graph_note.is_some());
}

/// HEAVY (name prefix `heavy_`: filter with `--skip heavy_` locally). The big vLLM pair: one test
/// reading each file once (about 10 s with the dev-profile
/// opt-level settings in the report; minutes fully unoptimized).
#[test]
fn heavy_vllm_decode_graph_kernels_get_cpu_ops_from_the_eager_trace() {
    let g = read_trace(&fx(
        "h200-vllm-0.26/decode-graph/rank0.decode.pt.trace.json.gz",
    ))
    .unwrap();
    assert_eq!(g.counts.kernels, 53_534);
    assert_eq!(g.counts.python_functions, 1_140_612);
    let launches = (0..g.launches.len())
        .filter(|&i| g.name(g.launches.name[i]) == "cudaGraphLaunch")
        .count();
    assert_eq!(launches, 227);
    let classifier = Classifier::shared();
    let sk = StageKernels::heaviest_device(&g);
    let kt = kernel_table(&sk, classifier, None, 1.0);
    let top = &kt.rows[0];
    assert!(top.kernel.starts_with("nvjet"), "{}", top.kernel);
    assert_eq!(top.attribution, "graph_unattributed");
    assert!(
        kt.rows
            .iter()
            .any(|r| r.full_name.contains("FlashAttnFwdSm90") && r.family == "attention")
    );
    assert!(
        kt.rows
            .iter()
            .any(|r| r.full_name.contains("_topk_topp_kernel") && r.family == "sampling")
    );
    drop(sk);
    let e = read_trace(&fx(
        "h200-vllm-0.26/decode-eager/rank0.decode.pt.trace.json.gz",
    ))
    .unwrap();
    assert_eq!(e.counts.kernels, 51_530);
    let m = map_graph_kernels(&g, &e, classifier);
    assert_eq!(m.summary.graph_launches, 227);
    assert!(m.summary.match_rate > 0.5, "{}", m.summary.note);
    let sk = StageKernels::heaviest_device(&g);
    let kt = kernel_table(&sk, classifier, Some(&m), 1.0);
    let top = &kt.rows[0];
    assert_eq!(top.attribution, "graph_twin");
    assert_ne!(top.cpu_op, "cudaGraphLaunch");
    assert!(top.location.starts_with("vllm/"), "{}", top.location);
    assert!(kt.graph_note.as_deref().unwrap().contains("aligned"));
}

// ------------------------------------------------------------ bad input

fn tmp_with(bytes: &[u8], name: &str) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    (d, p)
}

#[test]
fn truncated_gzip_is_an_error_naming_the_file() {
    let bytes =
        std::fs::read(fx("h200-torch-traces/minillama_graph_decode.trace.json.gz")).unwrap();
    let (_d, p) = tmp_with(&bytes[..bytes.len() / 2], "cut.trace.json.gz");
    let err = format!("{:#}", read_trace(&p).unwrap_err());
    assert!(err.contains("cut.trace.json.gz"), "{err}");
    assert!(
        err.contains("truncated") || err.contains("corrupt"),
        "{err}"
    );
}

#[test]
fn invalid_json_is_an_error_with_line() {
    let (_d, p) = tmp_with(
        b"{\"traceEvents\": [\n{\"ph\": \"X\", \"name\": }\n]}",
        "bad.json",
    );
    let err = format!("{:#}", read_trace(&p).unwrap_err());
    assert!(err.contains("bad.json") && err.contains("line 2"), "{err}");
    let (_d, p) = tmp_with(b"", "empty.json");
    let err = format!("{:#}", read_trace(&p).unwrap_err());
    assert!(err.contains("empty.json") && err.contains("empty"), "{err}");
    let (_d, p) = tmp_with(b"{\"foo\": 1}", "nokey.json");
    let err = format!("{:#}", read_trace(&p).unwrap_err());
    assert!(err.contains("traceEvents"), "{err}");
    let (_d, p) = tmp_with(b"{\"traceEvents\": [1, 2]}", "notobj.json");
    let err = format!("{:#}", read_trace(&p).unwrap_err());
    assert!(err.contains("traceEvents[0] is not an object"), "{err}");
    let (_d, p) = tmp_with(b"{\"traceEvents\": [{\"ph\":\"X\",\"cat\":\"kernel\",\"name\":\"k\",\"ts\":\"abc\",\"dur\":1}]}", "badts.json");
    let err = format!("{:#}", read_trace(&p).unwrap_err());
    assert!(err.contains("\"ts\""), "{err}");
}

#[test]
fn a_trace_without_kernels_is_a_clear_error() {
    let (_d, p) = tmp_with(
        br#"{"traceEvents": [{"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1, "tid": 1, "ts": 1.0, "dur": 2.0}]}"#,
        "cpu_only.trace.json",
    );
    let err = format!(
        "{:#}",
        run_tables(&request(p), &ToolContext::new()).unwrap_err()
    );
    assert!(
        err.contains("cpu_only.trace.json") && err.contains("no GPU kernels"),
        "{err}"
    );
}

/// Deterministic "proptest-like" test: truncated and garbled prefixes of a real trace
/// must give Err (truncation) or Ok/Err (garbling), never a panic.
#[test]
fn truncated_and_garbled_prefixes_never_panic() {
    let gz = std::fs::read(fx("h200-torch-traces/minillama_graph_decode.trace.json.gz")).unwrap();
    let mut json = Vec::new();
    use std::io::Read;
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut json)
        .unwrap();
    let json = &json[..json.len().min(200_000)];
    // a small xorshift for reproducible positions
    let mut x: u64 = 0x9E3779B97F4A7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..150 {
        let cut = (next() % json.len() as u64) as usize;
        let prefix = &json[..cut];
        let r = std::panic::catch_unwind(|| read_trace_bytes(prefix, "prefix"));
        let r = r.expect("reader panicked on a truncated prefix");
        assert!(r.is_err(), "a truncated document parsed at cut {cut}");
        let mut garbled = prefix.to_vec();
        for _ in 0..4 {
            if garbled.is_empty() {
                break;
            }
            let at = (next() % garbled.len() as u64) as usize;
            garbled[at] = b"{}[]\",:\\x0 \n"[(next() % 12) as usize];
        }
        garbled.extend_from_slice(b"]}");
        let r = std::panic::catch_unwind(|| read_trace_bytes(&garbled, "garbled"));
        assert!(r.is_ok(), "reader panicked on garbled input");
    }
    // truncated gzip streams too
    for cut in [10usize, 100, 1000, gz.len() / 3, gz.len() - 8] {
        let r = std::panic::catch_unwind(|| read_trace_bytes(&gz[..cut], "gz-prefix"))
            .expect("no panic");
        assert!(r.is_err());
    }
}

#[test]
fn campaign_outputs_and_root_cause_with_a_competitor() {
    let dir = tempfile::tempdir().unwrap();
    let mut req = request(fx("h200-torch-traces/llama8b_decode.trace.json.gz"));
    req.framework = Some(vllm_sota_core::Framework::Vllm);
    req.competitor_trace = Some(fx("h200-torch-traces/minillama_eager_decode.trace.json.gz"));
    req.competitor_framework = Some(vllm_sota_core::Framework::Sglang);
    req.campaign_dir = Some(dir.path().to_path_buf());
    req.round = Some(2);
    req.top_rows = 3;
    let (report, _) = run_tables(&req, &ToolContext::new()).unwrap();
    let st = &report.stages[0];
    assert_eq!(st.kernel_rows.len(), 3, "size-bounded: top_rows");
    let md = dir.path().join("profiles/round-2/vllm/decode/tables.md");
    assert_eq!(st.tables_md.as_deref(), Some(md.as_path()));
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(
        text.contains("### Kernel table")
            && text.contains("### Overlap-opportunity table")
            && text.contains("### Fuse-pattern table")
    );
    assert!(text.contains("rows below the 1.0% share cutoff are hidden"));
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("profiles/round-2/vllm/decode/tables.json"))
            .unwrap(),
    )
    .unwrap();
    assert!(
        json["kernel_table"]["rows"].as_array().unwrap().len() > 3,
        "the file holds all rows above the cutoff"
    );
    // Comparison: per step (llama8b: 5 CPU `execute_model_step_*` annotations; minillama eager: 2).
    let c = st.comparison.as_ref().unwrap();
    assert_eq!(c.ours_steps, 5);
    assert_eq!(c.theirs_steps, 2);
    let rc = std::fs::read_to_string(dir.path().join("analysis/round-2/root-cause.md")).unwrap();
    assert_eq!(
        rc,
        std::fs::read_to_string(dir.path().join("analysis/root-cause.md")).unwrap()
    );
    assert!(
        rc.contains("Slower stage: decode") && rc.contains("copy_concat"),
        "{rc}"
    );
    // The CLI markdown names the file.
    let md_out = <vllm_sota_trace::ProfileTables as vllm_sota_core::tool::Tool>::markdown(&report);
    assert!(md_out.contains("tables.md"));
}

#[test]
fn campaign_dir_without_round_is_an_error_naming_the_field() {
    let mut req = request(fx("h200-torch-traces/llama8b_decode.trace.json.gz"));
    req.campaign_dir = Some(std::env::temp_dir());
    let err = run_tables(&req, &ToolContext::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("round"), "{err}");
    let bad: Result<ProfileTablesRequest, _> =
        serde_json::from_str(r#"{"trace": "x", "share_cutof_pct": 2}"#);
    assert!(bad.unwrap_err().to_string().contains("share_cutof_pct"));
}
