//! The rules file `references/gap-policy.json` and the thresholds one decision uses.

use anyhow::{Context, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vllm_sota_core::refs;
use vllm_sota_core::results::RankingMetric;

/// The rules file this tool follows (`references/gap-policy.json`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct GapPolicy {
    pub noise_threshold_pct: f64,
    pub min_repeats: u32,
    pub confidence_level: f64,
    pub max_additional_runs: u32,
    #[serde(default)]
    pub ranking_metric: RankingMetric,
    /// vLLM's prefix-cache hit rate (fraction) may exceed the competitor's by at most this much
    /// before the two rows stop being like for like.
    #[serde(default = "default_cache_gap")]
    pub max_prefix_cache_hit_rate_gap: f64,
    pub two_rounds_rule: TwoRoundsRule,
}

fn default_cache_gap() -> f64 {
    0.05
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct TwoRoundsRule {
    pub consecutive_rounds: u32,
    pub min_geomean_improvement_pct: f64,
    pub action: String,
}

impl GapPolicy {
    /// Load `gap-policy.json` (embedded copy, or `$VLLM_SOTA_REFERENCES/gap-policy.json`).
    pub fn load() -> Result<Self> {
        let (text, origin) = refs::load(
            "gap-policy.json",
            Some(include_str!("../../../../references/gap-policy.json")),
        )?;
        serde_json::from_str(&text).with_context(|| format!("invalid gap policy in {origin}"))
    }
}

/// The numbers one decision is taken with (policy defaults, request overrides).
#[derive(Debug, Clone)]
pub(crate) struct Thresholds {
    /// Noise threshold, percent.
    pub thr: f64,
    pub min_repeats: u32,
    pub confidence: f64,
    /// Most additional runs per side a rerun may ask for.
    pub cap: u32,
    /// See [`GapPolicy::max_prefix_cache_hit_rate_gap`].
    pub max_cache_gap: f64,
}

impl Thresholds {
    /// Policy values with the request's overrides, validated (errors name the field).
    pub(crate) fn new(
        policy: &GapPolicy,
        noise_threshold_pct: Option<f64>,
        min_repeats: Option<u32>,
        confidence_level: Option<f64>,
    ) -> Result<Self> {
        let t = Thresholds {
            thr: noise_threshold_pct.unwrap_or(policy.noise_threshold_pct),
            min_repeats: min_repeats.unwrap_or(policy.min_repeats),
            confidence: confidence_level.unwrap_or(policy.confidence_level),
            cap: policy.max_additional_runs,
            max_cache_gap: policy.max_prefix_cache_hit_rate_gap,
        };
        if !(t.thr > 0.0 && t.thr.is_finite()) {
            anyhow::bail!(
                "noise_threshold_pct: must be a positive number, got {}",
                t.thr
            );
        }
        if t.min_repeats < 2 {
            anyhow::bail!(
                "min_repeats: must be at least 2 (an interval needs two runs per side), got {}",
                t.min_repeats
            );
        }
        if !(t.confidence > 0.5 && t.confidence < 1.0) {
            anyhow::bail!(
                "confidence_level: must be in (0.5, 1), got {}",
                t.confidence
            );
        }
        Ok(t)
    }
}
