//! Layer boundaries from the kernel sequence alone: find the unit of kernels that
//! repeats `N` times in a forward pass (N = `num_hidden_layers` when the config gives
//! it), without any boundary kernel.
//!
//! For each candidate period `p` we mark `m[i] = (s[i] == s[i+p])` and slide a window
//! of `(N−1)·p` positions over `m`: the window with most matches is where the N copies
//! sit. The largest `p` whose best window matches at least [`MIN_MATCH`] of its
//! positions wins (sub-periods of a self-similar unit also match, but explain fewer
//! kernels). Partial matching (not exact) tolerates data-dependent kernels such as an
//! MoE layer whose expert loop launches a varying number of kernels.
//!
//! The phase is then chosen so that a layer starts at a normalization kernel when the
//! kernels just before the repeated region look like its tail (by family): fused
//! `add + rms_norm` kernels make the first layer's norm differ from the others (in
//! vLLM it is fused with the embedding), and the last repeat then ends with the
//! final norm: rotating the phase keeps the final norm in post-layer work.

use crate::families::Family;

/// Fraction of positions in the best window that must match.
pub(crate) const MIN_MATCH: f64 = 0.9;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PeriodFit {
    /// Kernels per layer.
    pub period: usize,
    /// Index of the first kernel of layer 0.
    pub start: usize,
    /// Number of layers.
    pub layers: usize,
    /// Fraction of compared positions that matched.
    pub match_fraction: f64,
    /// Why the phase was moved, if it was.
    pub phase_note: Option<String>,
}

impl PeriodFit {
    /// Half-open kernel index range of each layer.
    pub(crate) fn ranges(&self) -> Vec<(usize, usize)> {
        (0..self.layers)
            .map(|l| {
                (
                    self.start + l * self.period,
                    self.start + (l + 1) * self.period,
                )
            })
            .collect()
    }
}

/// Best window for period `p` and `copies` repeats: (matches, compared, start).
fn best_window(seq: &[u32], p: usize, copies: usize) -> Option<(usize, usize, usize)> {
    let n = seq.len();
    if p == 0 || copies < 2 || copies * p > n {
        return None;
    }
    let w = (copies - 1) * p; // positions compared inside one placement
    let last_start = n - copies * p; // placement must fit entirely
    let m: Vec<u32> = (0..n - p).map(|i| (seq[i] == seq[i + p]) as u32).collect();
    let mut sum: usize = m[..w].iter().map(|&x| x as usize).sum();
    let mut best = (sum, 0usize);
    for start in 1..=last_start {
        sum += m[start + w - 1] as usize;
        sum -= m[start - 1] as usize;
        if sum > best.0 {
            best = (sum, start);
        }
    }
    Some((best.0, w, best.1))
}

/// Fit exactly `layers` repeats into `seq` (kernel name ids of one stream of one pass).
/// `families` gives the family of each position (same length), used for the phase.
pub(crate) fn fit_period(seq: &[u32], families: &[Family], layers: usize) -> Option<PeriodFit> {
    let n = seq.len();
    if layers < 2 || n < 2 * layers {
        return None;
    }
    let mut chosen: Option<PeriodFit> = None;
    for p in (1..=n / layers).rev() {
        if let Some((hits, compared, start)) = best_window(seq, p, layers) {
            let frac = hits as f64 / compared as f64;
            if frac >= MIN_MATCH {
                chosen = Some(PeriodFit {
                    period: p,
                    start,
                    layers,
                    match_fraction: frac,
                    phase_note: None,
                });
                break;
            }
        }
    }
    let mut fit = chosen?;
    adjust_phase(seq, families, &mut fit);
    Some(fit)
}

/// Longest sequences considered without a layer count (the search is O(n²)).
pub(crate) const MAX_DETECT_LEN: usize = 20_000;

/// Without a layer count: for each period `p` the longest exact run of `s[i] == s[i+p]`
/// gives `run / p + 1` copies; the period explaining the most kernels (at least 4
/// copies; on ties the shorter unit, not a multiple of it) is then refined by [`fit_period`] with that count.
pub(crate) fn detect_period(seq: &[u32], families: &[Family]) -> Option<PeriodFit> {
    let seq = &seq[..seq.len().min(MAX_DETECT_LEN)];
    let families = &families[..families.len().min(seq.len())];
    let n = seq.len();
    let mut best: Option<(usize, usize)> = None; // (covered, copies)
    let mut best_p = 0;
    for p in 1..=n / 4 {
        let mut run = 0usize;
        let mut longest = 0usize;
        for i in 0..n - p {
            if seq[i] == seq[i + p] {
                run += 1;
                longest = longest.max(run);
            } else {
                run = 0;
            }
        }
        let copies = longest / p + 1;
        if copies < 4 {
            continue;
        }
        let covered = copies * p;
        if best.is_none_or(|(c, _)| covered > c) {
            best = Some((covered, copies));
            best_p = p;
        }
    }
    let (_, copies) = best?;
    let fit = fit_period(seq, families, copies)?;
    (fit.period == best_p || fit.period * fit.layers >= best_p * copies).then_some(fit)
}

/// Heterogeneous stacks: `counts` are the sizes of consecutive groups of same-type
/// layers (e.g. `[3, 58]` for 3 dense then 58 MoE layers). The largest group is fitted
/// first, then the kernels before and after it are fitted with the groups on each side,
/// recursively. Kernels between a fitted group and the next are attached to the last
/// layer of the earlier group (they are its trailing work). Every group needs ≥ 2 layers
/// (a single layer has no repeat to find). Returns per-layer ranges and the lowest match fraction.
pub(crate) fn fit_groups(
    seq: &[u32],
    families: &[Family],
    counts: &[usize],
) -> Option<(Vec<(usize, usize)>, f64)> {
    if counts.is_empty() || counts.contains(&0) || counts.iter().any(|&c| c < 2) {
        return None;
    }
    let big = (0..counts.len()).max_by_key(|&i| (counts[i], std::cmp::Reverse(i)))?;
    let fit = fit_period(seq, families, counts[big])?;
    let (s, e) = (fit.start, fit.start + fit.layers * fit.period);
    let mut ranges = vec![];
    let mut worst = fit.match_fraction;
    if big > 0 {
        let (left, m) = fit_groups(&seq[..s], &families[..s], &counts[..big])?;
        worst = worst.min(m);
        ranges.extend(left);
        // The left groups' last layer runs up to the big group's start.
        if let Some(last) = ranges.last_mut() {
            last.1 = s;
        }
    }
    ranges.extend(fit.ranges());
    if big + 1 < counts.len() {
        let (right, m) = fit_groups(&seq[e..], &families[e..], &counts[big + 1..])?;
        worst = worst.min(m);
        let first_right = right.first()?.0 + e;
        // Kernels between the big group and the right groups: trailing work of the big group's last layer.
        if let Some(last) = ranges.last_mut() {
            last.1 = first_right;
        }
        ranges.extend(right.into_iter().map(|(a, b)| (a + e, b + e)));
    }
    Some((ranges, worst))
}

fn adjust_phase(seq: &[u32], families: &[Family], fit: &mut PeriodFit) {
    if families.len() != seq.len() {
        return;
    }
    let p = fit.period;
    let region_end = fit.start + fit.layers * p;
    // Slide right while the copy keeps matching beyond the region (extra repeated
    // kernels after it), to find every placement of equal quality.
    let mut placements = vec![fit.start];
    let mut s = fit.start;
    while s + 1 + fit.layers * p <= seq.len() && seq[s] == seq[s + fit.layers * p] {
        s += 1;
        placements.push(s);
    }
    // Prefer a placement that starts at a norm kernel.
    if let Some(&norm_start) = placements.iter().find(|&&st| families[st] == Family::Norm) {
        if norm_start != fit.start {
            fit.phase_note = Some(format!(
                "phase moved by {} kernel(s) to start layers at a normalization kernel",
                norm_start - fit.start
            ));
            fit.start = norm_start;
        }
        return;
    }
    if families[fit.start] == Family::Norm {
        return;
    }
    // Rotate left: the `shift` kernels before the region must have the same families
    // as the region's last `shift` kernels, and the new first kernel must be a norm.
    for shift in 1..p.min(fit.start + 1) {
        let new_start = fit.start - shift;
        let tail_ok = (1..=shift).all(|j| families[fit.start - j] == families[region_end - j]);
        if !tail_ok {
            break;
        }
        if families[new_start] == Family::Norm {
            fit.phase_note = Some(format!(
                "phase moved back by {shift} kernel(s): layer 0 starts at its (differently fused) normalization kernel, the last repeat's trailing norm is post-layer work"
            ));
            fit.start = new_start;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Family::*;

    fn fams(seq: &[u32], norm_ids: &[u32]) -> Vec<Family> {
        seq.iter()
            .map(|x| if norm_ids.contains(x) { Norm } else { Other })
            .collect()
    }

    #[test]
    fn exact_repeats_with_pre_and_post_work_are_found() {
        // pre: 90 91; 4 layers of [1 2 3 4 5]; post: 1 92 (final norm + lm_head)
        let mut s = vec![90, 91];
        for _ in 0..4 {
            s.extend([1, 2, 3, 4, 5]);
        }
        s.extend([1, 92]);
        let f = fit_period(&s, &fams(&s, &[1]), 4).unwrap();
        assert_eq!((f.period, f.start, f.layers), (5, 2, 4));
        assert_eq!(f.ranges(), vec![(2, 7), (7, 12), (12, 17), (17, 22)]);
        assert_eq!(f.match_fraction, 1.0);
    }

    #[test]
    fn self_similar_unit_keeps_the_full_period_not_a_sub_period() {
        // unit [7 8 7 8 9] has sub-structure; 3 layers
        let mut s = vec![];
        for _ in 0..3 {
            s.extend([7, 8, 7, 8, 9]);
        }
        let f = fit_period(&s, &fams(&s, &[]), 3).unwrap();
        assert_eq!(f.period, 5);
    }

    #[test]
    fn phase_rotates_back_to_a_fused_first_norm() {
        // vLLM-like: prep 50 51, layer0 = [emb_norm(10) qkv(2) attn(3) add_norm(11) mlp(4)],
        // layers 1..3 = [add_norm2(12) qkv attn add_norm mlp], then final add_norm2(12), copy 60
        let mut s = vec![50, 51, 10, 2, 3, 11, 4];
        for _ in 0..3 {
            s.extend([12, 2, 3, 11, 4]);
        }
        s.extend([12, 60]);
        let f = fit_period(&s, &fams(&s, &[10, 11, 12]), 4).unwrap();
        assert_eq!(f.period, 5);
        assert_eq!(
            f.start, 2,
            "layer 0 starts at the embedding-fused norm: {f:?}"
        );
        assert!(f.phase_note.is_some());
        assert_eq!(
            f.ranges().last().unwrap().1,
            s.len() - 2,
            "final norm and copy stay post-layer"
        );
    }

    #[test]
    fn a_few_varying_kernels_in_a_layer_are_tolerated() {
        let mut s = vec![];
        for l in 0..20u32 {
            s.extend([1, 2, 3, 4, 5, 6, 7, 8, 9, 10 + (l % 2)]); // last kernel alternates
        }
        let f = fit_period(&s, &fams(&s, &[1]), 20).unwrap();
        assert_eq!((f.period, f.start), (10, 0));
        assert!(f.match_fraction < 1.0 && f.match_fraction >= MIN_MATCH);
    }

    #[test]
    fn groups_of_different_units_are_fitted_largest_first() {
        // pre 90; 2 dense layers [1 2 3]; 5 MoE layers [1 2 4 5 6 7]; post 1 92
        let mut s = vec![90];
        for _ in 0..2 {
            s.extend([1, 2, 3]);
        }
        for _ in 0..5 {
            s.extend([1, 2, 4, 5, 6, 7]);
        }
        s.extend([1, 92]);
        let f = fams(&s, &[1]);
        assert!(
            fit_period(&s, &f, 7).is_none(),
            "no single unit repeats 7 times"
        );
        let (ranges, m) = fit_groups(&s, &f, &[2, 5]).unwrap();
        assert_eq!(
            ranges,
            vec![
                (1, 4),
                (4, 7),
                (7, 13),
                (13, 19),
                (19, 25),
                (25, 31),
                (31, 37)
            ]
        );
        assert_eq!(m, 1.0);
        assert!(
            fit_groups(&s, &f, &[1, 6]).is_none(),
            "a single-layer group cannot be found"
        );
    }

    #[test]
    fn no_repetition_gives_none() {
        let s: Vec<u32> = (0..100).collect();
        assert!(fit_period(&s, &fams(&s, &[]), 4).is_none());
        assert!(fit_period(&[1, 2], &[Other, Other], 4).is_none());
        assert!(detect_period(&s, &fams(&s, &[])).is_none());
    }

    #[test]
    fn detect_without_a_count_finds_the_layer_count() {
        let mut s = vec![99];
        for _ in 0..6 {
            s.extend([1, 2, 3, 4]);
        }
        s.push(98);
        let f = detect_period(&s, &fams(&s, &[1])).unwrap();
        assert_eq!((f.period, f.layers, f.start), (4, 6, 1));
        // 8 copies: period 6 (two units) explains as many kernels; the unit itself wins.
        let mut s = vec![50, 51];
        for _ in 0..8 {
            s.extend([1, 2, 3]);
        }
        s.push(52);
        let f = detect_period(&s, &fams(&s, &[1])).unwrap();
        assert_eq!((f.period, f.layers, f.start), (3, 8, 2));
    }
}
