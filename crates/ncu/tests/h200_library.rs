//! Tests on Nsight Compute 2025.3.1 reports of closed-source library kernels captured on
//! one H200 (`tests/data/h200-library/`, README there says how): a compute-bound bf16
//! GEMM (cuBLASLt nvjet, TMA loads), a decode-shaped GEMM (DRAM-bound nvjet) and a cuDNN
//! flash-attention forward. Expected numbers are the ones printed in those CSV files.

use std::path::{Path, PathBuf};

use vllm_sota_core::{Tool, ToolContext};
use vllm_sota_ncu::{NcuDigest, NcuDigestReport, NcuDigestRequest};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/h200-library")
        .join(name)
}

/// Digest one report alone; returns the report, digest.md and digest.json (read before the
/// temporary output folder goes).
fn single(
    case: &str,
    regex: &str,
    extra: serde_json::Value,
) -> (NcuDigestReport, String, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let mut v = serde_json::json!({
        "version": case, "kernel_regex": regex, "out_dir": dir.path(),
        "import": {"baseline": {
            "details_csv": data(&format!("{case}_details_base.csv")),
            "raw_csv": data(&format!("{case}_raw.csv"))}}
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    let req: NcuDigestRequest = serde_json::from_value(v).unwrap();
    let r = NcuDigest::run(req, &ToolContext::new()).unwrap();
    let md = std::fs::read_to_string(&r.digest_md).unwrap();
    let json = serde_json::from_str(&std::fs::read_to_string(&r.digest_json).unwrap()).unwrap();
    (r, md, json)
}

/// Words that only make sense inside a kernel's source (Triton or CUDA), never for a
/// closed-source library kernel.
const SOURCE_LEVEL: &[&str] = &[
    "tl.",
    "num_warps",
    "num_stages",
    "BLOCK_",
    "__launch_bounds__",
    "coalesce",
    "pad rows",
    "swizzle",
    "unroll",
    "registers per thread",
];

fn assert_call_site_only(line: &str) {
    for w in SOURCE_LEVEL {
        assert!(!line.contains(w), "source-level '{w}' in: {line}");
    }
}

#[test]
fn compute_bound_nvjet_gemm_is_at_the_tensor_roof_not_memory_and_gets_a_call_site_edit() {
    // gemm_big_raw.csv: sm__pipe_tensor_cycles_active 93.513856 %, Memory Throughput
    // (gpu__compute_memory_throughput) 94.682018 % = l1tex__data_pipe_lsu_wavefronts_mem_shared
    // 94.665465 %, DRAM 20.922200 %, 0 global load sectors and requests through L1 (TMA:
    // smsp__sass_inst_executed_op_tma_ld 1277952).
    let (r, md, json) = single("gemm_big", "nvjet", serde_json::json!({}));
    let b = r.baseline.as_ref().unwrap();
    assert_eq!(
        b.kernel_name,
        "nvjet_sm90_tst_320x128_64x3_1x2_h_bz_coopB_NNT"
    );
    let c = &b.bound_class;
    assert_eq!(c.class, "tensor_roof", "{c:?}");
    assert!(c.at_roof);
    assert_eq!(c.roof.as_deref(), Some("tensor pipe"));
    assert_eq!(c.roof_pct, Some(93.513856));
    assert_eq!(c.also_at.len(), 1, "{:?}", c.also_at);
    assert!(c.also_at[0].starts_with("shared memory") && c.also_at[0].ends_with("94.7%"));
    // The 0-of-0 coalescing ratio is not a fact and fires nothing.
    let facts = &json["baseline_facts"];
    assert_eq!(facts["ld_sectors"], 0.0);
    assert!(facts.get("ld_bytes_per_sector").is_none());
    assert!(facts.get("uncoalesced_est_pct").is_none());
    assert_eq!(facts["dram_pct"], 20.9222);
    assert_eq!(facts["mem_pct"], 94.682018);
    assert!(
        b.not_applicable
            .iter()
            .any(|n| n.starts_with("ld_bytes_per_sector: not applicable, 0 of 0 (ld_sectors = 0)")),
        "{:?}",
        b.not_applicable
    );
    assert!(r.considered.iter().all(|c| c.id != "uncoalesced_loads"));
    // Library kernel: call-site wording, moving work off the tensor roof.
    let lib = r.library.as_ref().unwrap();
    assert_eq!(lib.library, "cuBLAS/cuBLASLt");
    assert_eq!(r.kernel_language, "library");
    assert_eq!(r.chosen_by, "class_default:tensor_roof");
    assert!(
        r.next_edit.starts_with(
            "Next edit: cut the FLOPs of the torch.matmul / F.linear (cuBLASLt) call that launches nvjet_sm90_tst_320x128_64x3_1x2_h_bz_coopB_NNT: FP8"
        ),
        "{}",
        r.next_edit
    );
    assert!(
        r.next_edit
            .contains("the tensor pipe runs at 93.5% of peak")
    );
    assert_call_site_only(&r.next_edit);
    assert!(
        md.contains("| baseline | **tensor_roof — at the tensor pipe roof (93.5%)** |"),
        "{md}"
    );
    assert!(md.contains("Start by analyzing L1 in the Memory Workload Analysis section"));
    assert_eq!(md.matches("Next edit:").count(), 1);
    // Source-level findings that triggered are listed as not applicable, not chosen.
    let gmma = r.considered.iter().find(|c| c.id == "gmma").unwrap();
    assert!(gmma.status.starts_with("not applicable"), "{}", gmma.status);
}

#[test]
fn an_explicit_cuda_or_triton_language_does_not_turn_a_library_kernel_into_source_advice() {
    let (base, _, _) = single("gemm_big", "nvjet", serde_json::json!({}));
    for lang in ["cuda", "triton"] {
        let (r, _, _) = single(
            "gemm_big",
            "nvjet",
            serde_json::json!({"kernel_language": lang}),
        );
        assert_eq!(r.next_edit, base.next_edit, "{lang}");
        assert_eq!(r.kernel_language, "library");
        assert!(
            r.warnings
                .iter()
                .any(|w| w.starts_with(&format!("kernel_language={lang} not used"))),
            "{:?}",
            r.warnings
        );
    }
}

#[test]
fn an_own_kernel_with_the_same_counters_gets_an_off_the_roof_edit_in_its_language() {
    // The same report with the kernel renamed to a user's Triton kernel: still the tensor
    // roof, no coalescing advice (0 of 0 sectors), and an edit that cuts work, not a tuning knob.
    let dir = tempfile::tempdir().unwrap();
    for page in ["details_base", "raw"] {
        let text = std::fs::read_to_string(data(&format!("gemm_big_{page}.csv"))).unwrap();
        std::fs::write(
            dir.path().join(format!("own_{page}.csv")),
            text.replace(
                "nvjet_sm90_tst_320x128_64x3_1x2_h_bz_coopB_NNT",
                "matmul_kernel",
            ),
        )
        .unwrap();
    }
    let v = serde_json::json!({
        "version": "own", "kernel_regex": "^matmul_kernel$", "out_dir": dir.path().join("o"),
        "import": {"baseline": {"details_csv": dir.path().join("own_details_base.csv"),
                                "raw_csv": dir.path().join("own_raw.csv")}}
    });
    let req: NcuDigestRequest = serde_json::from_value(v).unwrap();
    let r = NcuDigest::run(req, &ToolContext::new()).unwrap();
    assert!(r.library.is_none());
    assert_eq!(r.kernel_language, "triton");
    assert_eq!(
        r.baseline.as_ref().unwrap().bound_class.class,
        "tensor_roof"
    );
    assert_eq!(r.chosen_by, "class_default:tensor_roof");
    assert!(
        r.next_edit.starts_with(
            "Next edit: cut the tensor-core work matmul_kernel is asked to do: a smaller dtype"
        ),
        "{}",
        r.next_edit
    );
    assert!(!r.next_edit.contains("coalesce") && !r.next_edit.contains("tl.arange"));
    // At a roof no tuning finding is chosen, even the ones that triggered.
    let gmma = r.considered.iter().find(|c| c.id == "gmma").unwrap();
    assert_eq!(gmma.status, "outside class tensor_roof");
}

#[test]
fn decode_shaped_nvjet_gemm_is_at_the_dram_roof_and_cuts_bytes_at_the_call_site() {
    // gemm_skinny_raw.csv: DRAM 83.568223 % (= Memory Throughput), tensor pipe 26.898443 %,
    // 112 blocks on 132 SMs, dram__bytes_read.sum + write = 237.9 MB.
    let (r, _, _) = single("gemm_skinny", "nvjet", serde_json::json!({}));
    let c = &r.baseline.as_ref().unwrap().bound_class;
    assert_eq!(c.class, "dram_roof");
    assert_eq!(
        (c.roof.as_deref(), c.roof_pct),
        (Some("DRAM"), Some(83.568223))
    );
    assert!(c.also_at.is_empty(), "{:?}", c.also_at);
    assert_eq!(r.chosen_by, "finding:memory_bytes");
    assert!(
        r.next_edit.starts_with(
            "Next edit: cut the DRAM bytes the torch.matmul / F.linear (cuBLASLt) call moves for nvjet_sm90_tst_256x64_64x5_4x1_v_bz_NNT (237.9 MB now"
        ),
        "{}",
        r.next_edit
    );
    assert_call_site_only(&r.next_edit);
    // Small grid triggers (LaunchConfiguration 15.15%) but is a tuning edit: not at a roof.
    let sg = r.considered.iter().find(|c| c.id == "small_grid").unwrap();
    assert_eq!(sg.status, "outside class dram_roof");
}

#[test]
fn cudnn_flash_attention_gets_no_source_level_advice() {
    // sdpa: SM 66.693356 %, memory 47.033256 %: ncu's 'High Compute Throughput' (below every
    // roof); SharedMemoryConflicts estimates 21.55 % but the kernel is a cuDNN binary.
    let (r, md, _) = single("sdpa", "cudnn", serde_json::json!({}));
    assert_eq!(r.library.as_ref().unwrap().library, "cuDNN");
    let c = &r.baseline.as_ref().unwrap().bound_class;
    assert_eq!((c.class.as_str(), c.at_roof), ("compute", false));
    let bank = r
        .considered
        .iter()
        .find(|c| c.id == "bank_conflicts")
        .unwrap();
    assert!(bank.status.starts_with("not applicable"), "{}", bank.status);
    assert_eq!(r.chosen_by, "class_default:compute");
    assert!(r.next_edit.contains("the cuDNN call"), "{}", r.next_edit);
    assert_call_site_only(&r.next_edit);
    assert_eq!(md.matches("Next edit:").count(), 1);
}
