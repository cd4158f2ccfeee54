//! Cost-model profiles calibrated on real engines, shipped as data in
//! `references/sim-cost-profiles.json`: per profile the step-cost values, the machine,
//! and the real figures (with their source files) it was fitted to. The simulator applies
//! the profile of the framework it impersonates; the calibration test replays each
//! measured workload against it.

use super::parse_framework;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use vllm_sota_core::Framework;

const FILE: &str = "sim-cost-profiles.json";

/// The whole file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CostProfiles {
    pub schema_version: u32,
    pub about: Vec<String>,
    /// Framework, spelled as `--framework` takes it (`vllm`, `sglang`, `trtllm`...) → profile name.
    pub default_by_framework: BTreeMap<String, String>,
    pub profiles: BTreeMap<String, CostProfile>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CostProfile {
    pub framework: String,
    /// What was measured where (GPU, driver, engine version, model, flags).
    pub machine: String,
    pub cost: CostModel,
    pub fit_note: String,
    /// Scenario name → the real figures the profile reproduces.
    pub measured: BTreeMap<String, MeasuredScenario>,
    /// Scenario name → why there is no real figure for it.
    #[serde(default)]
    pub not_measured: BTreeMap<String, String>,
}

/// The values of the simulator's step-cost knobs (µs; see `SimConfig`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CostModel {
    pub step_base_us: f64,
    pub prefill_us_per_token: f64,
    pub decode_us_per_seq: f64,
    pub attn_us_per_ctx_token: f64,
    pub output_us_per_seq: f64,
    pub admit_us_per_seq: f64,
}

/// One real run: its workload and the three figures a profile must reproduce.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MeasuredScenario {
    pub workload: MeasuredWorkload,
    pub request_throughput: f64,
    pub p50_ttft_ms: f64,
    pub p50_tpot_ms: f64,
    /// The file(s) the figures come from.
    pub source: String,
    pub date: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MeasuredWorkload {
    pub dataset: String,
    pub num_prompts: usize,
    pub input_len: u64,
    pub output_len: u64,
    pub max_concurrency: usize,
    pub warmup_requests: usize,
    pub client: String,
    pub endpoint: String,
}

/// Reads and checks `references/sim-cost-profiles.json` (embedded, or
/// `$VLLM_SOTA_REFERENCES`).
pub fn load() -> Result<CostProfiles> {
    let (text, origin) = vllm_sota_core::refs::load(
        FILE,
        Some(include_str!(
            "../../../../references/sim-cost-profiles.json"
        )),
    )?;
    let p: CostProfiles =
        serde_json::from_str(&text).with_context(|| format!("{origin}: not a valid {FILE}"))?;
    if p.schema_version != 1 {
        bail!("{origin}: schema_version {} (expected 1)", p.schema_version);
    }
    for (fw, name) in &p.default_by_framework {
        parse_framework(fw).with_context(|| format!("{origin}: default_by_framework"))?;
        let Some(prof) = p.profiles.get(name) else {
            bail!("{origin}: default_by_framework.{fw} names unknown profile {name:?}");
        };
        if prof.framework != *fw {
            bail!(
                "{origin}: default_by_framework.{fw} names {name:?}, a profile of {}",
                prof.framework
            );
        }
    }
    for (name, prof) in &p.profiles {
        let c = &prof.cost;
        let values = [
            c.step_base_us,
            c.prefill_us_per_token,
            c.decode_us_per_seq,
            c.attn_us_per_ctx_token,
            c.output_us_per_seq,
            c.admit_us_per_seq,
        ];
        if values.iter().any(|v| !v.is_finite() || *v < 0.0) {
            bail!("{origin}: profiles.{name}.cost: every value must be a finite number >= 0");
        }
    }
    Ok(p)
}

/// The named profile.
pub fn profile(name: &str) -> Result<CostProfile> {
    let all = load()?;
    all.profiles.get(name).cloned().ok_or_else(|| {
        anyhow::anyhow!(
            "--sim-cost-profile {name:?}: unknown; known are {} (or `none`)",
            all.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })
}

/// The profile a framework gets by default, if it has one.
pub fn default_profile(framework: Framework) -> Result<Option<String>> {
    Ok(load()?
        .default_by_framework
        .into_iter()
        .find(|(fw, _)| parse_framework(fw).ok() == Some(framework))
        .map(|(_, name)| name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_loads_and_each_measured_figure_names_its_source() {
        let p = load().unwrap();
        assert_eq!(
            default_profile(Framework::Vllm).unwrap().as_deref(),
            Some("h200-vllm-0.26")
        );
        assert_eq!(
            default_profile(Framework::Sglang).unwrap().as_deref(),
            Some("h200-sglang-0.5.17")
        );
        assert_eq!(default_profile(Framework::TensorrtLlm).unwrap(), None);
        for (name, prof) in &p.profiles {
            assert!(!prof.measured.is_empty(), "{name}");
            for (sc, m) in &prof.measured {
                assert!(m.source.contains('/'), "{name}.{sc}: a file");
                assert!(m.request_throughput > 0.0 && m.p50_ttft_ms > 0.0 && m.p50_tpot_ms > 0.0);
            }
        }
        let e = profile("h100-nothing").unwrap_err().to_string();
        assert!(e.contains("h200-vllm-0.26"), "{e}");
    }
}
