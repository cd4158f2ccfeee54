//! Kernel families: the one shared classifier of the trace crate
//! (`references/kernel-families.json`, first match wins), mapped to an enum so the
//! roofline and the layer-phase rule can branch on it. There is no second copy of the
//! rules: if that reference file cannot be loaded (a broken `$VLLM_SOTA_REFERENCES`
//! override), the tool refuses to run ([`ensure_classifier`]).

use serde::Serialize;
use std::sync::OnceLock;
use vllm_sota_trace::Classifier;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Communication,
    Memcpy,
    Memset,
    KvCacheWrite,
    Attention,
    Moe,
    MoeRouting,
    Norm,
    Gemm,
    Rotary,
    Activation,
    Quantization,
    Sampling,
    InputPrep,
    CopyConcat,
    Elementwise,
    Reduction,
    Other,
}

const ALL: &[(Family, &str)] = &[
    (Family::Communication, "communication"),
    (Family::Memcpy, "memcpy"),
    (Family::Memset, "memset"),
    (Family::KvCacheWrite, "kv_cache_write"),
    (Family::Attention, "attention"),
    (Family::Moe, "moe"),
    (Family::MoeRouting, "moe_routing"),
    (Family::Norm, "norm"),
    (Family::Gemm, "gemm"),
    (Family::Rotary, "rotary"),
    (Family::Activation, "activation"),
    (Family::Quantization, "quantization"),
    (Family::Sampling, "sampling"),
    (Family::InputPrep, "input_prep"),
    (Family::CopyConcat, "copy_concat"),
    (Family::Elementwise, "elementwise"),
    (Family::Reduction, "reduction"),
    (Family::Other, "other"),
];

impl Family {
    pub fn label(self) -> &'static str {
        ALL.iter()
            .find(|(f, _)| *f == self)
            .map(|(_, n)| *n)
            .unwrap_or("other")
    }

    /// Family from a classifier family name (unknown names → `Other`).
    pub fn from_name(name: &str) -> Family {
        ALL.iter()
            .find(|(_, n)| *n == name)
            .map(|(f, _)| *f)
            .unwrap_or(Family::Other)
    }

    /// Families a roofline can be computed for (from launching-op shapes).
    pub fn has_roofline(self) -> bool {
        matches!(self, Family::Gemm | Family::Attention | Family::Moe)
    }
}

fn shared() -> &'static Result<Classifier, String> {
    static C: OnceLock<Result<Classifier, String>> = OnceLock::new();
    C.get_or_init(|| Classifier::load().map_err(|e| format!("{e:#}")))
}

/// The shared classifier, when it loaded (see [`ensure_classifier`]).
pub(crate) fn classifier() -> Option<&'static Classifier> {
    shared().as_ref().ok()
}

/// Family of a kernel name by the shared classifier (`Other` when it could not be
/// loaded: the tool refuses to run then, see [`ensure_classifier`]).
pub(crate) fn classify(name: &str) -> Family {
    match shared() {
        Ok(c) => Family::from_name(&c.classify(name).name),
        Err(_) => Family::Other,
    }
}

/// An error naming the file when the shared classifier cannot be loaded (a broken
/// `$VLLM_SOTA_REFERENCES/kernel-families.json` override): families would be wrong.
pub(crate) fn ensure_classifier() -> anyhow::Result<()> {
    match shared() {
        Ok(_) => Ok(()),
        Err(e) => anyhow::bail!("kernel families cannot be classified: {e}"),
    }
}

/// The one kernel-name shortener ([`vllm_sota_core::kname`]), shared with every tool.
pub(crate) use vllm_sota_core::kname::short as short_name;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_kernel_names_from_the_fixtures_get_the_expected_family() {
        let cases = [
            ("nvjet_sm90_tst_256x64_64x5_4x1_v_bz_TNT", Family::Gemm),
            (
                "void cutlass::device_kernel<flash::enable_sm90_or_later<flash::FlashAttnFwdSm90<flash::CollectiveMainloopFwdSm90",
                Family::Attention,
            ),
            ("triton_red_fused_fused_add_rms_norm_0", Family::Norm),
            (
                "triton_red_fused__to_copy_embedding_rms_norm_0",
                Family::Norm,
            ),
            (
                "void vllm::reshape_and_cache_flash_kernel<__nv_bfloat16, __nv_bfloat16, (vllm::Fp8KVCacheDataType)0>",
                Family::KvCacheWrite,
            ),
            ("_topk_topp_kernel", Family::Sampling),
            ("triton_poi_fused_mul_silu_slice_1", Family::Activation),
            (
                "void cublasLt::splitKreduce_kernel<32, 16, int, float, __nv_bfloat16>",
                Family::Gemm,
            ),
            (
                "cudnn_generated_fort_native_sdpa_sm80_flash_fprop_wmma_f16_knob_35",
                Family::Attention,
            ),
            (
                "void at::native::(anonymous namespace)::CatArrayBatchedCopy_vectorized<at::native::(anonymous namespace)::OpaqueType<2u>",
                Family::CopyConcat,
            ),
            (
                "ncclDevKernel_AllReduce_Sum_bf16_RING_LL",
                Family::Communication,
            ),
            ("fused_moe_kernel", Family::Moe),
            ("Memcpy DtoD (Device -> Device)", Family::Memcpy),
            (
                "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctorOnSelf_add<float>>",
                Family::Elementwise,
            ),
            ("something_unknown", Family::Other),
        ];
        for (name, want) in cases {
            assert_eq!(classify(name), want, "{name}");
        }
        assert!(ensure_classifier().is_ok());
        for (f, n) in ALL {
            assert_eq!(Family::from_name(n), *f);
        }
    }
}
