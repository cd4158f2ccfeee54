//! Small, dependency-free statistics for the gap decision: sample moments, the
//! Student t distribution (CDF through the regularized incomplete beta function,
//! quantile by bisection) and Welch's unequal-variance t-interval.

/// Arithmetic mean; `None` for an empty slice.
pub fn mean(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    Some(xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Sample standard deviation (n − 1 denominator); `None` below two values.
pub fn sample_sd(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let m = mean(xs)?;
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    Some((ss / (xs.len() - 1) as f64).sqrt())
}

/// ln Γ(x) for x > 0 (Lanczos approximation, g = 7, 9 coefficients; ~1e-15 relative).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection formula.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Continued fraction for the incomplete beta function (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let away_from_zero = |v: f64| if v.abs() < TINY { TINY } else { v };
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / away_from_zero(1.0 - qab * x / qap);
    let mut h = d;
    // One Lentz step with coefficient `aa`: updates c and d, returns the factor for h.
    let step = |aa: f64, c: &mut f64, d: &mut f64| {
        *d = 1.0 / away_from_zero(1.0 + aa * *d);
        *c = away_from_zero(1.0 + aa / *c);
        *d * *c
    };
    for m in 1..=300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        h *= step(m * (b - m) * x / ((qam + m2) * (a + m2)), &mut c, &mut d);
        let del = step(
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
            &mut c,
            &mut d,
        );
        h *= del;
        if (del - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// Regularized incomplete beta I_x(a, b).
pub fn inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(a, b, x) / a
    } else {
        1.0 - front * beta_cf(b, a, 1.0 - x) / b
    }
}

/// P(T ≤ t) for Student's t with `df` (may be fractional, as Welch's is) degrees of freedom.
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    let x = df / (df + t * t);
    let tail = 0.5 * inc_beta(df / 2.0, 0.5, x);
    if t >= 0.0 { 1.0 - tail } else { tail }
}

/// The t value with P(T ≤ t) = p, for p in (0.5, 1). Bisection to 1e-10.
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    assert!(
        p > 0.5 && p < 1.0 && df > 0.0,
        "quantile defined here for p in (0.5, 1) and df > 0"
    );
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    while student_t_cdf(hi, df) < p {
        hi *= 2.0;
        if hi > 1e12 {
            return f64::INFINITY;
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if student_t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-10 {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// Welch's t-interval for mean(a) − mean(b).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WelchInterval {
    pub difference: f64,
    pub standard_error: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    pub t_critical: f64,
    pub low: f64,
    pub high: f64,
}

/// Welch interval from summary statistics (means, sample SDs, counts; both counts ≥ 2).
pub fn welch_from_summary(
    ma: f64,
    sa: f64,
    na: usize,
    mb: f64,
    sb: f64,
    nb: usize,
    confidence: f64,
) -> Option<WelchInterval> {
    if na < 2 || nb < 2 || !(confidence > 0.0 && confidence < 1.0) {
        return None;
    }
    let va = sa * sa / na as f64;
    let vb = sb * sb / nb as f64;
    let se2 = va + vb;
    let difference = ma - mb;
    // Zero spread on both sides: the interval collapses to the point; use the pooled df.
    let df = if se2 > 0.0 {
        se2 * se2 / (va * va / (na - 1) as f64 + vb * vb / (nb - 1) as f64)
    } else {
        (na + nb - 2) as f64
    };
    let t_critical = student_t_quantile(0.5 + confidence / 2.0, df);
    let standard_error = se2.sqrt();
    let half = t_critical * standard_error;
    Some(WelchInterval {
        difference,
        standard_error,
        df,
        t_critical,
        low: difference - half,
        high: difference + half,
    })
}

/// Welch interval of mean(a) − mean(b) from raw samples.
pub fn welch(a: &[f64], b: &[f64], confidence: f64) -> Option<WelchInterval> {
    welch_from_summary(
        mean(a)?,
        sample_sd(a)?,
        a.len(),
        mean(b)?,
        sample_sd(b)?,
        b.len(),
        confidence,
    )
}

/// Geometric mean of positive ratios; `None` when empty or any ratio is not positive.
pub fn geomean(ratios: &[f64]) -> Option<f64> {
    if ratios.is_empty() || ratios.iter().any(|r| !r.is_finite() || *r <= 0.0) {
        return None;
    }
    Some((ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Critical values from any t table (two-sided 95%): df 1 → 12.706, 2 → 4.303, 4 → 2.776,
    // 10 → 2.228, 30 → 2.042; 99%: df 5 → 4.032.
    #[test]
    fn t_quantiles_match_tables() {
        for (df, p, want) in [
            (1.0, 0.975, 12.706),
            (2.0, 0.975, 4.303),
            (4.0, 0.975, 2.776),
            (10.0, 0.975, 2.228),
            (30.0, 0.975, 2.042),
            (5.0, 0.995, 4.032),
        ] {
            let got = student_t_quantile(p, df);
            assert!((got - want).abs() < 1e-3, "df {df} p {p}: {got} vs {want}");
        }
        // Large df approaches the normal 1.95996.
        assert!((student_t_quantile(0.975, 1e7) - 1.959_96).abs() < 1e-4);
    }

    #[test]
    fn t_cdf_is_symmetric() {
        assert!((student_t_cdf(0.0, 3.0) - 0.5).abs() < 1e-12);
        let a = student_t_cdf(1.3, 7.5);
        let b = student_t_cdf(-1.3, 7.5);
        assert!((a + b - 1.0).abs() < 1e-12);
    }

    #[test]
    fn welch_matches_hand_computation() {
        // a = [10, 12, 14]: mean 12, sd 2; b = [9, 10, 11]: mean 10, sd 1.
        // se² = 4/3 + 1/3 = 5/3; df = (5/3)² / ((4/3)²/2 + (1/3)²/2) = 2.7778/0.9444 = 2.9412.
        let w = welch(&[10.0, 12.0, 14.0], &[9.0, 10.0, 11.0], 0.95).unwrap();
        assert!((w.difference - 2.0).abs() < 1e-12);
        assert!((w.standard_error - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((w.df - 2.941_176).abs() < 1e-5, "{}", w.df);
        assert!(w.low < 0.0 && w.high > 4.0, "{w:?}");
        assert!(welch(&[1.0], &[1.0, 2.0], 0.95).is_none());
    }

    #[test]
    fn geomean_of_ratios() {
        assert!((geomean(&[1.1, 1.0 / 1.1]).unwrap() - 1.0).abs() < 1e-12);
        assert!((geomean(&[1.02, 1.02]).unwrap() - 1.02).abs() < 1e-12);
        assert!(geomean(&[]).is_none());
        assert!(geomean(&[1.0, 0.0]).is_none());
    }
}
