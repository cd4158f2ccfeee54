//! GPU peak figures from `references/gpu-specs.json`, for rooflines.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuSpec {
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub compute_capability: String,
    pub sm_count: u32,
    pub memory_gib: f64,
    /// GB/s (1e9 bytes per second).
    pub memory_bandwidth_gbps: f64,
    pub l2_cache_mb: f64,
    /// Dense peak TFLOP/s by dtype (`bf16`, `fp16`, `fp8`, `tf32`, `fp32`, ...).
    pub peak_tflops: BTreeMap<String, f64>,
    pub source: String,
}

impl GpuSpec {
    /// Ridge point in FLOP per byte for a dtype: below it a kernel is memory-bound.
    pub fn ridge_flop_per_byte(&self, dtype: &str) -> Option<f64> {
        self.peak_tflops
            .get(dtype)
            .map(|t| t * 1e12 / (self.memory_bandwidth_gbps * 1e9))
    }

    /// Ideal time in microseconds for `flops` and `bytes` (the larger of the two floors).
    pub fn ideal_us(&self, flops: f64, bytes: f64, dtype: &str) -> Option<f64> {
        let peak = self.peak_tflops.get(dtype)? * 1e12;
        let t_compute = flops / peak;
        let t_memory = bytes / (self.memory_bandwidth_gbps * 1e9);
        Some(t_compute.max(t_memory) * 1e6)
    }
}

#[derive(Deserialize)]
struct SpecFile {
    gpus: Vec<GpuSpec>,
}

/// All GPU specs (see [`crate::refs::load`] for where they come from).
pub fn all() -> Result<Vec<GpuSpec>> {
    let (text, origin) = crate::refs::load(
        "gpu-specs.json",
        Some(include_str!("../../../references/gpu-specs.json")),
    )?;
    let file: SpecFile =
        serde_json::from_str(&text).with_context(|| format!("invalid GPU specs in {origin}"))?;
    Ok(file.gpus)
}

/// Find a GPU by name or alias, case-insensitively; also matches `nvidia-smi` names
/// such as "NVIDIA H200" or "NVIDIA H100 80GB HBM3".
pub fn find(name: &str) -> Result<GpuSpec> {
    let wanted = name.trim().to_ascii_lowercase();
    let specs = all()?;
    let hit = specs.iter().find(|g| {
        g.name.to_ascii_lowercase() == wanted
            || g.aliases.iter().any(|a| a.to_ascii_lowercase() == wanted)
    });
    let hit = hit.or_else(|| {
        // "nvidia h200 nvl" → H200: the first spec whose name appears as a word in the query.
        specs.iter().find(|g| {
            wanted
                .split(|c: char| !c.is_ascii_alphanumeric())
                .any(|w| w == g.name.to_ascii_lowercase())
        })
    });
    hit.cloned().with_context(|| {
        format!(
            "unknown GPU '{name}': known are {} (add it to references/gpu-specs.json)",
            specs
                .iter()
                .map(|g| g.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn h200_is_found_by_smi_name_and_has_a_lower_ridge_than_h100() {
        let h200 = super::find("NVIDIA H200").unwrap();
        let h100 = super::find("NVIDIA H100 80GB HBM3").unwrap();
        let (r200, r100) = (
            h200.ridge_flop_per_byte("bf16").unwrap(),
            h100.ridge_flop_per_byte("bf16").unwrap(),
        );
        assert!((r200 - 206.1).abs() < 1.0, "{r200}");
        assert!((r100 - 295.3).abs() < 1.0, "{r100}");
        assert!(super::find("TPU v5").is_err());
    }
}
