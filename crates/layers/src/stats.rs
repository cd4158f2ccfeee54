//! Summary statistics with stated definitions (people compare these numbers with
//! HTA and their own scripts, so the method is part of the contract):
//! - median and p95: the project's one percentile definition (`vllm_sota_core::stats`,
//!   linear interpolation between the nearest ranks, NumPy's default), so the median is the
//!   mean of the two middle values for an even count;
//! - representative element: the lower median by value (ties broken by position), so
//!   it is always a real layer or pass.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, schemars::JsonSchema)]
pub(crate) struct Summary {
    pub count: usize,
    pub mean: f64,
    pub median: f64,
    pub p95: f64,
    pub min: f64,
    pub max: f64,
}

/// Mean / median / p95 / min / max of `values`; `None` when empty or any value is not finite.
pub(crate) fn summarize(values: &[f64]) -> Option<Summary> {
    if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let mean = sorted.iter().sum::<f64>() / n as f64;
    let pct = |p| vllm_sota_core::stats::percentile_sorted(&sorted, p).unwrap_or(f64::NAN);
    Some(Summary {
        count: n,
        mean,
        median: pct(50.0),
        p95: pct(95.0),
        min: sorted[0],
        max: sorted[n - 1],
    })
}

/// Position (into `values`) of the lower-median element; ties go to the earliest position.
pub(crate) fn median_index(values: &[f64]) -> Option<usize> {
    if values.is_empty() {
        return None;
    }
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]).then(a.cmp(&b)));
    Some(order[(values.len() - 1) / 2])
}

/// Median absolute deviation around the median.
pub(crate) fn mad(values: &[f64]) -> Option<f64> {
    let med = summarize(values)?.median;
    let dev: Vec<f64> = values.iter().map(|v| (v - med).abs()).collect();
    Some(summarize(&dev)?.median)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_ten_values_uses_the_interpolated_p95_and_midpoint_median() {
        let v: Vec<f64> = (1..=10).map(|x| x as f64).collect();
        let s = summarize(&v).unwrap();
        assert_eq!(s.count, 10);
        assert_eq!(s.mean, 5.5);
        assert_eq!(s.median, 5.5);
        assert!((s.p95 - 9.55).abs() < 1e-12); // rank 0.95·9 = 8.55 → 9 + 0.55·(10 − 9)
        assert_eq!((s.min, s.max), (1.0, 10.0));
        let v20: Vec<f64> = (1..=20).map(|x| x as f64).collect();
        assert!((summarize(&v20).unwrap().p95 - 19.05).abs() < 1e-12);
    }

    #[test]
    fn odd_count_median_is_the_middle_value_and_empty_or_nan_gives_none() {
        assert_eq!(summarize(&[3.0, 1.0, 2.0]).unwrap().median, 2.0);
        assert!(summarize(&[]).is_none());
        assert!(summarize(&[1.0, f64::NAN]).is_none());
    }

    #[test]
    fn median_index_picks_the_lower_median_and_the_earliest_tie() {
        assert_eq!(median_index(&[5.0, 1.0, 3.0]), Some(2));
        assert_eq!(median_index(&[4.0, 1.0, 3.0, 2.0]), Some(3)); // sorted 1,2,3,4 → lower median 2 at index 3
        assert_eq!(median_index(&[2.0, 2.0, 2.0]), Some(1));
        assert_eq!(median_index(&[]), None);
    }

    #[test]
    fn mad_of_values_with_one_outlier_ignores_it() {
        assert_eq!(mad(&[10.0, 10.0, 11.0, 9.0, 100.0]), Some(1.0));
    }
}
