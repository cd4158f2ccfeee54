//! Problem-derived facts (ideal bytes, arithmetic intensity) and the DRAM roofline placement.

use std::collections::BTreeMap;

use crate::report::Roofline;
use crate::request::{MeasuredPeaks, ProblemSpec};
use crate::rules;

pub(crate) fn add_problem_facts(f: &mut BTreeMap<String, f64>, p: Option<&ProblemSpec>) {
    let get = |f: &BTreeMap<String, f64>, k: &str| f.get(k).copied();
    if let Some(b) = get(f, "dram_bytes_total") {
        f.insert("dram_mb".into(), b / 1e6);
    }
    if let Some(t) = get(f, "theoretical_occupancy_pct") {
        f.insert("theoretical_occupancy_gap_pct".into(), (100.0 - t).max(0.0));
    }
    if let Some(w) = get(f, "target_warps_per_block") {
        f.insert("target_threads_per_block".into(), w * 32.0);
    }
    if let Some(x) = get(f, "ld_bytes_per_sector") {
        f.insert(
            "uncoalesced_est_pct".into(),
            ((1.0 - x / 32.0) * 100.0).max(0.0),
        );
    }
    if let Some(x) = get(f, "st_bytes_per_sector") {
        f.insert(
            "sparse_store_est_pct".into(),
            ((1.0 - x / 32.0) * 100.0).max(0.0),
        );
    }
    if let Some(x) = get(f, "threads_per_warp") {
        f.insert(
            "divergence_est_pct".into(),
            ((1.0 - x / 32.0) * 100.0).max(0.0),
        );
    }
    if get(f, "max_warps_per_sm").is_none() {
        f.insert("max_warps_per_sm".into(), 64.0);
    }
    let Some(p) = p else { return };
    if let Some(ideal) = p.ideal_bytes {
        f.insert("ideal_bytes".into(), ideal);
        f.insert("ideal_mb".into(), ideal / 1e6);
        if let Some(b) = get(f, "dram_bytes_total")
            && b > 0.0
        {
            f.insert("dram_excess_pct".into(), ((b - ideal) / b * 100.0).max(0.0));
        }
    }
    if let Some(fl) = p.flops {
        f.insert("flops".into(), fl);
        if let Some(b) = get(f, "dram_bytes_total")
            && b > 0.0
        {
            f.insert("arithmetic_intensity".into(), fl / b);
        }
    }
}

pub(crate) fn roofline(
    f: &BTreeMap<String, f64>,
    spec: Option<&vllm_sota_core::gpu::GpuSpec>,
    measured: Option<&MeasuredPeaks>,
    problem: Option<&ProblemSpec>,
) -> Option<Roofline> {
    let ncu_peak = f.get("ncu_dram_peak_bytes_per_s").copied();
    let (peak, source) = if let Some(g) = measured.and_then(|m| m.dram_gbps) {
        (g * 1e9, "measured (request)".to_string())
    } else if let Some(s) = spec {
        (
            s.memory_bandwidth_gbps * 1e9,
            format!("{} datasheet (references/gpu-specs.json)", s.name),
        )
    } else if let Some(p) = ncu_peak {
        (
            p,
            "ncu (dram__bytes.sum.peak_sustained x DRAM clock)".to_string(),
        )
    } else {
        return None;
    };
    let achieved = f
        .get("dram_bytes_total")
        .zip(f.get("duration_ns"))
        .filter(|(_, d)| **d > 0.0)
        .map(|(b, d)| b / (d * 1e-9))
        .or(f.get("dram_bytes_per_s").copied());
    let bw_pct = achieved.map(|a| a / peak * 100.0);
    let dtype = problem
        .and_then(|p| p.dtype.clone())
        .unwrap_or_else(|| "bf16".into());
    let peak_flops = measured
        .and_then(|m| m.tflops)
        .or_else(|| spec.and_then(|s| s.peak_tflops.get(&dtype).copied()))
        .map(|t| t * 1e12);
    let flops = f.get("flops").copied();
    let ai = f.get("arithmetic_intensity").copied();
    let ridge = peak_flops.map(|p| p / peak);
    let pct_att = match (flops, ai, peak_flops, f.get("duration_ns")) {
        (Some(fl), Some(ai), Some(pf), Some(d)) if *d > 0.0 => {
            let attainable = pf.min(ai * peak);
            Some(fl / (d * 1e-9) / attainable * 100.0)
        }
        _ => None,
    };
    let placement = match (ai, ridge) {
        (Some(ai), Some(r)) => format!(
            "AI {} FLOP/byte is {} the {dtype} ridge ({} FLOP/byte): {}-side of the roofline",
            rules::fmt_num(ai),
            if ai < r { "below" } else { "above" },
            rules::fmt_num(r),
            if ai < r { "memory" } else { "compute" }
        ),
        _ => match bw_pct {
            Some(p) => format!(
                "DRAM traffic runs at {}% of the {} peak (no FLOP count given: pass problem.flops for AI)",
                rules::fmt_num(p),
                if source.starts_with("measured") {
                    "measured"
                } else {
                    "datasheet"
                }
            ),
            None => "no DRAM byte count in the report".into(),
        },
    };
    Some(Roofline {
        peak_bytes_per_s: peak,
        peak_source: source,
        ncu_peak_bytes_per_s: ncu_peak,
        achieved_bytes_per_s: achieved,
        bandwidth_pct_of_peak: bw_pct,
        flops,
        arithmetic_intensity: ai,
        ridge_flop_per_byte: ridge,
        pct_of_attainable: pct_att,
        placement,
    })
}
