//! Arrival schedules: all requests at once (`inf`) or a rate with gamma-distributed
//! gaps (burstiness 1 = Poisson), precomputed as absolute offsets from the start so
//! pacing never drifts (the TRT-LLM sleep-per-request drift, bench-spec §2).

use crate::rng::Rng;
use serde::{Deserialize, Serialize};

/// Target request rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestRate {
    /// Every request is released at t = 0 (only `max_concurrency` bounds them).
    Infinite,
    /// Requests per second.
    PerSecond(f64),
}

impl RequestRate {
    /// Parses `inf` or a positive number.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("inf") || t.eq_ignore_ascii_case("infinity") {
            return Ok(RequestRate::Infinite);
        }
        let v: f64 = t.parse().map_err(|_| {
            anyhow::anyhow!("request rate {s:?}: expected `inf` or a positive number")
        })?;
        if !(v > 0.0 && v.is_finite()) {
            anyhow::bail!("request rate {s:?}: must be > 0 (or `inf`)");
        }
        Ok(RequestRate::PerSecond(v))
    }

    pub fn per_second(&self) -> Option<f64> {
        match self {
            RequestRate::Infinite => None,
            RequestRate::PerSecond(r) => Some(*r),
        }
    }
}

/// Absolute send offsets in seconds for `n` requests.
///
/// Like `vllm bench serve`: gaps ~ Gamma(shape = burstiness, scale = 1/(rate·burstiness)),
/// cumulative-summed, then rescaled so the last arrival is exactly `n / rate` (removes
/// seed-to-seed variance of the total duration). `burstiness = inf` gives constant gaps.
pub fn arrival_offsets(
    n: usize,
    rate: RequestRate,
    burstiness: f64,
    seed: u64,
) -> anyhow::Result<Vec<f64>> {
    if burstiness.is_nan() || burstiness <= 0.0 {
        anyhow::bail!("burstiness must be > 0 (1 = Poisson), got {burstiness}");
    }
    let Some(rate) = rate.per_second() else {
        return Ok(vec![0.0; n]);
    };
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut rng = Rng::new(seed ^ 0xA11_1DA7E);
    let mut t = 0.0;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let gap = if burstiness.is_infinite() {
            1.0 / rate
        } else {
            rng.gamma(burstiness, 1.0 / (rate * burstiness))
        };
        t += gap;
        out.push(t);
    }
    let target_last = n as f64 / rate;
    let scale = target_last / t;
    for v in &mut out {
        *v *= scale;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infinite_rate_is_all_zero_and_rate_rescales_to_n_over_rate() {
        assert_eq!(
            arrival_offsets(3, RequestRate::Infinite, 1.0, 0).unwrap(),
            vec![0.0; 3]
        );
        let v = arrival_offsets(100, RequestRate::PerSecond(20.0), 1.0, 1).unwrap();
        assert!((v[99] - 5.0).abs() < 1e-9);
        assert!(v.windows(2).all(|w| w[1] >= w[0]));
        let c = arrival_offsets(4, RequestRate::PerSecond(2.0), f64::INFINITY, 1).unwrap();
        assert_eq!(c, vec![0.5, 1.0, 1.5, 2.0]);
        assert!(RequestRate::parse("0").is_err());
        assert!(
            RequestRate::parse("abc")
                .unwrap_err()
                .to_string()
                .contains("abc")
        );
        assert!(arrival_offsets(2, RequestRate::PerSecond(1.0), 0.0, 0).is_err());
    }
}
