//! Every fuse-pattern catalog entry: its split signature is found by same-stream adjacency
//! and its fused signature is recognized, on small synthetic traces with real kernel names.

use vllm_sota_trace::Classifier;
use vllm_sota_trace::read_trace_bytes;
use vllm_sota_trace::{FuseCatalog, StageKernels, fuse_table};

/// Kernels back to back on one stream; with `context`, each is launched (`cudaLaunchKernel`)
/// inside a CPU op of that name, as a module's forward would launch them.
fn trace_in(names: &[&str], context: Option<&str>) -> vllm_sota_trace::TraceStore {
    let mut events = Vec::new();
    let mut ts = 1000.0;
    if let Some(op) = context {
        events.push(
            serde_json::json!({"ph": "X", "cat": "cpu_op", "name": op, "pid": 1, "tid": 1,
            "ts": 900.0, "dur": 12.0 * names.len() as f64 + 100.0, "args": {}}),
        );
    }
    for (i, n) in names.iter().enumerate() {
        let c = if context.is_some() { i as i64 + 1 } else { 1 };
        if context.is_some() {
            events.push(
                serde_json::json!({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel",
                "pid": 1, "tid": 1, "ts": ts - 50.0, "dur": 5.0, "args": {"correlation": c}}),
            );
        }
        events.push(serde_json::json!({"ph": "X", "cat": "kernel", "name": n, "pid": 0, "tid": 7, "ts": ts, "dur": 10.0,
            "args": {"device": 0, "stream": 7, "correlation": c}}));
        ts += 12.0;
    }
    let doc = serde_json::json!({"traceEvents": events});
    read_trace_bytes(doc.to_string().as_bytes(), "synthetic").unwrap()
}

fn status(id: &str, names: &[&str]) -> String {
    status_in(id, names, None)
}

fn status_in(id: &str, names: &[&str], context: Option<&str>) -> String {
    let c = Classifier::shared();
    let cat = FuseCatalog::load(c).unwrap();
    let s = trace_in(names, context);
    let sk = StageKernels::heaviest_device(&s);
    let t = fuse_table(&sk, c, &cat, "vllm");
    t.rows
        .iter()
        .find(|r| r.id == id)
        .map(|r| r.status.clone())
        .unwrap_or_else(|| "not applicable".into())
}

const ADD: &str = "void at::native::vectorized_elementwise_kernel<8, at::native::CUDAFunctor_add<c10::BFloat16>, std::array<char*, 3ul> >";
const RMS: &str = "void vllm::rms_norm_kernel<c10::BFloat16, 8, 1>";
const ROPE: &str = "void vllm::rotary_embedding_kernel<c10::BFloat16, true>";
const KVW: &str = "void vllm::reshape_and_cache_flash_kernel<__nv_bfloat16, __nv_bfloat16, (vllm::Fp8KVCacheDataType)0>";
const QUANT: &str = "void vllm::scaled_fp8_quant_kernel<c10::BFloat16, c10::Float8_e4m3fn>";
const FA3: &str = "void cutlass::device_kernel<flash::enable_sm90_or_later<flash::FlashAttnFwdSm90<flash::CollectiveMainloopFwdSm90<2> > > >";
const AR: &str = "void vllm::cross_device_reduce_1stage<__nv_bfloat16, 8>";
const GEMM: &str = "nvjet_sm90_tst_256x64_64x5_4x1_v_bz_TNT";

#[test]
fn every_catalog_entry_has_split_and_fused_cases() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "residual-add-rmsnorm",
            &[ADD, RMS],
            &["void vllm::fused_add_rms_norm_kernel<c10::BFloat16, 8>"],
        ),
        (
            "rmsnorm-elementwise-chain",
            &[
                "void at::native::vectorized_elementwise_kernel<4, at::native::(anonymous namespace)::pow_tensor_scalar_kernel_impl<float, float>",
                "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, at::native::MeanOps<float, float, float, float>, unsigned int, float, 4, 4> >",
                "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctorOnSelf_add<float>, std::array<char*, 2ul> >",
                "void at::native::vectorized_elementwise_kernel<4, at::native::rsqrt_kernel_cuda",
            ],
            &[RMS],
        ),
        (
            "silu-and-mul",
            &[
                "void at::native::vectorized_elementwise_kernel<8, at::native::(anonymous namespace)::silu_kernel",
                GEMM,
                "void at::native::vectorized_elementwise_kernel<8, at::native::BinaryFunctor<c10::BFloat16, c10::BFloat16, c10::BFloat16, at::native::binary_internal::MulFunctor<float> >",
            ],
            &["triton_poi_fused_mul_silu_slice_1"],
        ),
        (
            "rope-kv-cache-write",
            &[ROPE, KVW],
            &["void vllm::fused_qk_rope_reshape_and_cache_kernel<c10::BFloat16>"],
        ),
        (
            "qk-norm-rope",
            &[RMS, ROPE],
            &["void vllm::fused_qk_norm_rope_kernel<c10::BFloat16>"],
        ),
        (
            "allreduce-rmsnorm",
            &[AR, RMS],
            &[
                "void flashinfer::trtllm_allreduce_fusion::allreduce_fusion_kernel_oneshot_lamport<__nv_bfloat16>",
            ],
        ),
        (
            "rmsnorm-quant",
            &[RMS, QUANT],
            &["void vllm::rms_norm_static_fp8_quant_kernel<c10::BFloat16>"],
        ),
        (
            "silu-mul-quant",
            &[
                "void vllm::act_and_mul_kernel<c10::BFloat16, &vllm::silu_kernel>",
                QUANT,
            ],
            &["void vllm::silu_and_mul_quant_kernel<c10::BFloat16>"],
        ),
        (
            "attention-quant",
            &[FA3, QUANT],
            &["void vllm::merge_attn_states_kernel_quant<__nv_bfloat16>"],
        ),
        (
            "moe-router-topk",
            &[
                "void at::native::(anonymous namespace)::cunn_SoftMaxForward<4, float, float, float>",
                "void at::native::sbtopk::gatherTopK<float, unsigned int, 2, false>",
            ],
            &["void vllm::moe::topkGatingSoftmax<8, 128>"],
        ),
        (
            "topk-topp-sampling",
            &[
                "void at::native::bitonicSortKVInPlace<2, -1, 16, 16, float, long>",
                "void at::native::(anonymous namespace)::cunn_SoftMaxForward<4, float, float, float>",
            ],
            &["_topk_topp_kernel"],
        ),
        (
            "kv-cache-concat",
            &[
                "void at::native::(anonymous namespace)::CatArrayBatchedCopy_vectorized<OpaqueType<2u>, unsigned int, 3>",
                "void at::native::(anonymous namespace)::CatArrayBatchedCopy_vectorized<OpaqueType<2u>, unsigned int, 3>",
            ],
            &[KVW],
        ),
        (
            "moe-sum-allreduce",
            &[
                "fused_moe_kernel",
                "ncclDevKernel_AllReduce_Sum_bf16_RING_LL",
            ],
            &["void sglang::fuse_sum_all_reduce_kernel<bf16>"],
        ),
        (
            "splitk-gemm-reduce",
            &[
                "nvjet_sm90_tst_96x64_64x10_2x1_v_bz_splitK_TNN",
                "void cublasLt::splitKreduce_kernel<32, 16, int, float, __nv_bfloat16>",
            ],
            &["void cutlass::gemm::kernel::GemmUniversal_streamk<bf16>"],
        ),
    ];
    let cat = FuseCatalog::load(Classifier::shared()).unwrap();
    for e in &cat.entries {
        assert!(
            cases.iter().any(|c| c.0 == e.id),
            "catalog entry {} has no test case",
            e.id
        );
    }
    for (id, split, fused) in cases {
        // The router's softmax and top-k are MoE routing only when an MoE block launched them.
        let context = (*id == "moe-router-topk").then_some("Qwen2MoeSparseMoeBlock.forward");
        assert_eq!(
            status_in(id, split, context),
            "split present",
            "{id}: split {split:?}"
        );
        assert_eq!(status(id, fused), "already fused", "{id}: fused {fused:?}");
    }
}

#[test]
fn an_unrelated_kernel_between_the_steps_breaks_adjacency() {
    assert_eq!(
        status("residual-add-rmsnorm", &[ADD, GEMM, RMS]),
        "not applicable"
    );
    assert_eq!(
        status("rope-kv-cache-write", &[ROPE, GEMM, KVW]),
        "not applicable"
    );
    // ...but the steps on two different streams are not adjacent either: covered by per-stream sequences.
}

const SOFTMAX: &str =
    "void at::native::(anonymous namespace)::cunn_SoftMaxForward<4, float, float, float>";
const GATHER_TOPK: &str = "void at::native::sbtopk::gatherTopK<float, unsigned int, 2, false>";

#[test]
fn softmax_and_topk_are_moe_routing_only_when_launched_from_an_moe_block() {
    let c = Classifier::shared();
    let family = |context: Option<&str>| {
        let s = trace_in(&[SOFTMAX, GATHER_TOPK], context);
        let sk = StageKernels::heaviest_device(&s);
        let t = vllm_sota_trace::kernel_table(&sk, c, None, 0.0);
        t.rows.iter().map(|r| r.family.clone()).collect::<Vec<_>>()
    };
    assert_eq!(
        family(Some("Qwen2MoeSparseMoeBlock.forward")),
        ["moe_routing", "moe_routing"]
    );
    assert_eq!(
        family(Some("router_logits")),
        ["moe_routing", "moe_routing"]
    );
    // A sampler (or no launch context at all) keeps the name family.
    assert_eq!(family(Some("Sampler.forward")), ["sampling", "sampling"]);
    assert_eq!(family(None), ["sampling", "sampling"]);
    // A dense MLP's gate projection is not a router gate.
    assert_eq!(family(Some("LlamaMLP.gate_proj")), ["sampling", "sampling"]);
    // No MoE-router split on a sampler's softmax + top-k.
    assert_eq!(
        status_in(
            "moe-router-topk",
            &[SOFTMAX, GATHER_TOPK],
            Some("Sampler.forward")
        ),
        "not applicable"
    );
}
