//! Carry layer boundaries (and launching-op shapes) from a mapping trace to a
//! graph-replayed pass: a CUDA-graph replay has no per-kernel CPU context, but its
//! eager twin does. The two passes' kernel-name sequences are aligned with a longest
//! common subsequence; each formal kernel takes the place (layer / pre / post) of its
//! aligned twin, unaligned kernels that of the previous aligned kernel.

use crate::layers::{LayerSource, Segmentation, Slot};
use crate::model::TraceView;
use crate::passes::Pass;

/// Alignment refused above this many DP cells (memory: one byte per cell).
pub(crate) const MAX_CELLS: usize = 60_000_000;

/// Fraction of formal kernels that must align for the boundaries to be trusted.
pub(crate) const MIN_MATCHED: f64 = 0.8;

/// LCS alignment of two sequences: pairs (i in a, j in b).
pub(crate) fn align(a: &[u32], b: &[u32]) -> Option<Vec<(usize, usize)>> {
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 {
        return Some(vec![]);
    }
    if n.saturating_mul(m) > MAX_CELLS {
        return None;
    }
    // Rolling lengths plus a direction table (0 = diag match, 1 = up, 2 = left).
    let mut dir = vec![0u8; n * m];
    let mut prev = vec![0u32; m + 1];
    let mut cur = vec![0u32; m + 1];
    for i in 0..n {
        for j in 0..m {
            if a[i] == b[j] {
                cur[j + 1] = prev[j] + 1;
                dir[i * m + j] = 0;
            } else if prev[j + 1] >= cur[j] {
                cur[j + 1] = prev[j + 1];
                dir[i * m + j] = 1;
            } else {
                cur[j + 1] = cur[j];
                dir[i * m + j] = 2;
            }
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    let (mut i, mut j) = (n, m);
    let mut pairs = vec![];
    while i > 0 && j > 0 {
        match dir[(i - 1) * m + (j - 1)] {
            0 => {
                pairs.push((i - 1, j - 1));
                i -= 1;
                j -= 1;
            }
            1 => i -= 1,
            _ => j -= 1,
        }
    }
    pairs.reverse();
    Some(pairs)
}

/// Result of carrying a mapping pass over to a formal pass.
pub(crate) struct Transfer {
    /// Layer segmentation of the formal pass, when enough kernels aligned.
    pub segmentation: Option<Segmentation>,
    /// Formal kernel index → mapping kernel index, for every aligned pair.
    pub twins: Vec<(usize, usize)>,
    pub note: String,
}

/// Align `formal_pass` (in `formal`) with `mapping_pass` (in `mapping`, segmented as `mapping_seg`).
pub(crate) fn transfer(
    formal: &TraceView,
    formal_pass: &Pass,
    mapping: &TraceView,
    mapping_pass: &Pass,
    mapping_seg: &Segmentation,
) -> Transfer {
    // Name ids differ between views: translate through the strings.
    let mut ids: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    let mut key = |s: &str| -> u32 {
        if let Some(&i) = ids.get(s) {
            return i;
        }
        let n = ids.len() as u32;
        ids.insert(s.to_string(), n);
        n
    };
    let a: Vec<u32> = formal_pass
        .kernels
        .iter()
        .map(|&k| key(formal.name(&formal.kernels[k])))
        .collect();
    let b: Vec<u32> = mapping_pass
        .kernels
        .iter()
        .map(|&k| key(mapping.name(&mapping.kernels[k])))
        .collect();
    let Some(pairs) = align(&a, &b) else {
        return Transfer {
            segmentation: None,
            twins: vec![],
            note: format!(
                "passes too long to align ({} × {} kernels)",
                a.len(),
                b.len()
            ),
        };
    };
    let matched = pairs.len() as f64 / a.len().max(1) as f64;
    let twins: Vec<(usize, usize)> = pairs
        .iter()
        .map(|&(i, j)| (formal_pass.kernels[i], mapping_pass.kernels[j]))
        .collect();
    let slots = mapping_seg.slots();
    let mut labels: Vec<Option<Slot>> = vec![None; a.len()];
    for &(i, j) in &pairs {
        labels[i] = slots.get(&mapping_pass.kernels[j]).copied();
    }
    // Fill gaps from the previous aligned kernel (the next one at the very start).
    let mut last = labels.iter().flatten().next().copied();
    for l in labels.iter_mut() {
        match l {
            Some(s) => last = Some(*s),
            None => *l = last,
        }
    }
    let layer_labels: Vec<Option<usize>> = labels
        .iter()
        .map(|s| match s {
            Some(Slot::Layer(i)) => Some(*i),
            _ => None,
        })
        .collect();
    let mapping_layers = mapping_seg.layers.len();
    let mut note = format!(
        "{} of {} formal kernels aligned with the mapping pass ({:.0}%)",
        pairs.len(),
        a.len(),
        matched * 100.0
    );
    let seg = if matched >= MIN_MATCHED {
        let s = Segmentation::from_labels(
            LayerSource::Mapping {
                matched_fraction: matched,
            },
            &formal_pass.kernels,
            &layer_labels,
            formal,
        );
        match s {
            Some(s) if s.layers.len() == mapping_layers => Some(s),
            Some(s) => {
                note.push_str(&format!("; alignment gave {} layers but the mapping pass has {mapping_layers}: not used", s.layers.len()));
                None
            }
            None => None,
        }
    } else {
        note.push_str(&format!("; below {:.0}%, so the mapping's boundaries were not used (kernels differ, e.g. compiled vs eager)", MIN_MATCHED * 100.0));
        None
    };
    Transfer {
        segmentation: seg,
        twins,
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lcs_alignment_skips_extra_kernels_on_either_side() {
        let a = [1, 2, 3, 4, 5];
        let b = [1, 9, 2, 3, 5];
        let p = align(&a, &b).unwrap();
        assert_eq!(p, vec![(0, 0), (1, 2), (2, 3), (4, 4)]);
        assert_eq!(align(&[], &b).unwrap(), vec![]);
    }
}
