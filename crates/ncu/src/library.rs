//! Closed-source library kernels (cuBLAS/nvjet, cuDNN, CUTLASS builds, FlashAttention,
//! ...), recognised by the name patterns in `references/ncu-rules.json`
//! (`library_kernels`). Their next edit is at the call site, never in their source.

use serde::Serialize;

use crate::rules::RulesFile;

/// A kernel name matched to a library.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct LibraryMatch {
    /// e.g. `cuBLAS/cuBLASLt`.
    pub library: String,
    /// The pattern that matched.
    pub pattern: String,
    /// Where edits go, e.g. "the torch.matmul / F.linear (cuBLASLt) call".
    pub call_site: String,
}

/// The first library (in file order) with a pattern matching the full kernel name,
/// case-insensitively.
pub(crate) fn detect(rules: &RulesFile, kernel_name: &str) -> Option<LibraryMatch> {
    rules.library_kernels.iter().find_map(|l| {
        l.patterns.iter().find_map(|p| {
            let re = regex::RegexBuilder::new(p)
                .case_insensitive(true)
                .build()
                .ok()?;
            re.is_match(kernel_name).then(|| LibraryMatch {
                library: l.library.clone(),
                pattern: p.clone(),
                call_site: l.call_site.clone(),
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_kernels_are_recognised_by_name_and_own_kernels_are_not() {
        let r = crate::rules::load_rules().unwrap();
        let lib = |n: &str| detect(&r, n).map(|m| m.library);
        assert_eq!(
            lib("nvjet_tst_256x128_64x4_1x2_h_bz_coopA_NNT").as_deref(),
            Some("cuBLAS/cuBLASLt")
        );
        assert_eq!(
            lib("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas").as_deref(),
            Some("cuBLAS/cuBLASLt")
        );
        assert_eq!(
            lib("cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_3_64x64x128_4x1x1_kernel0_0").as_deref(),
            Some("cuDNN")
        );
        assert_eq!(
            lib(
                "void cutlass::device_kernel<cutlass::gemm::kernel::GemmUniversal<...>>(T1::Params)"
            )
            .as_deref(),
            Some("CUTLASS build")
        );
        assert_eq!(
            lib("void flash::flash_fwd_splitkv_kernel<Flash_fwd_kernel_traits<128, 64>>(Flash_fwd_params)").as_deref(),
            Some("FlashAttention")
        );
        for own in [
            "rms_cand",
            "triton_red_fused_add_rms_norm_0",
            "void vllm::rms_norm_kernel<c10::BFloat16>(T1 *, const T1 *, const T1 *, float, int, int)",
            "_fwd_kernel",
        ] {
            assert_eq!(lib(own), None, "{own}");
        }
    }
}
