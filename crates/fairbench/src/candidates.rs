//! Bounded candidate generation: baseline first, then tiered variations of the search
//! space, deduplicated and capped (the SGLang `auto_benchmark` tiers, bounded).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::OrderedMap;
use vllm_sota_core::Framework;

/// One deployment to launch and measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Candidate {
    pub framework: Framework,
    /// `c00-baseline`, `c01-max-num-seqs=256`, ...: stable for a given config.
    pub candidate_id: String,
    pub is_baseline: bool,
    /// Every server flag of this candidate (base flags with the variation applied), target spelling.
    pub flags: OrderedMap<Value>,
    /// Only the flags that differ from the baseline.
    pub varied: OrderedMap<Value>,
}

fn canonical(flags: &OrderedMap<Value>) -> String {
    let mut pairs: Vec<String> = flags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.sort();
    pairs.join(" ")
}

fn slug(varied: &OrderedMap<Value>) -> String {
    if varied.is_empty() {
        return "baseline".into();
    }
    let text: String = varied
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                k.trim_start_matches('-'),
                crate::flags::scalar_text(v)
            )
        })
        .collect::<Vec<_>>()
        .join(",");
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "=.,_-".contains(c) {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if clean.len() <= 60 {
        clean
    } else {
        format!(
            "{}~{}",
            &clean[..48],
            &crate::config::stable_hash(clean.as_bytes())[..8]
        )
    }
}

/// Variations (lists of (flag, value) overrides) for a tier, generated lazily up to `cap`.
fn variations(space: &OrderedMap<Vec<Value>>, tier: u8, cap: usize) -> Vec<Vec<(String, Value)>> {
    let knobs: Vec<&(String, Vec<Value>)> = space.iter().collect();
    let mut out: Vec<Vec<(String, Value)>> = Vec::new();
    let product = |knobs: &[&(String, Vec<Value>)], out: &mut Vec<Vec<(String, Value)>>| {
        if knobs.is_empty() {
            return;
        }
        // Odometer over the knobs' values, stopping at the cap (bounded, never materialized).
        let mut idx = vec![0usize; knobs.len()];
        loop {
            if out.len() >= cap {
                return;
            }
            out.push(
                knobs
                    .iter()
                    .zip(&idx)
                    .map(|(k, &i)| (k.0.clone(), k.1[i].clone()))
                    .collect(),
            );
            let mut pos = knobs.len();
            loop {
                if pos == 0 {
                    return;
                }
                pos -= 1;
                idx[pos] += 1;
                if idx[pos] < knobs[pos].1.len() {
                    break;
                }
                idx[pos] = 0;
            }
        }
    };
    let one_at_a_time = |knobs: &[&(String, Vec<Value>)], out: &mut Vec<Vec<(String, Value)>>| {
        for k in knobs {
            for v in &k.1 {
                if out.len() >= cap {
                    return;
                }
                out.push(vec![(k.0.clone(), v.clone())]);
            }
        }
    };
    match tier {
        1 => one_at_a_time(&knobs, &mut out),
        2 => {
            let split = knobs.len().min(3);
            product(&knobs[..split], &mut out);
            one_at_a_time(&knobs[split..], &mut out);
        }
        _ => product(&knobs, &mut out),
    }
    out
}

/// Baseline first, then the tier's variations; duplicates (including a variation equal to
/// the baseline) dropped; at most `max_candidates` in all.
pub(crate) fn generate(
    framework: Framework,
    base: &OrderedMap<Value>,
    space: &OrderedMap<Vec<Value>>,
    tier: u8,
    max_candidates: usize,
) -> Vec<Candidate> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    seen.insert(canonical(base));
    out.push(Candidate {
        framework,
        candidate_id: "c00-baseline".into(),
        is_baseline: true,
        flags: base.clone(),
        varied: OrderedMap::default(),
    });
    // Generate more than needed so dedup does not starve the cap; still bounded.
    let budget = max_candidates.saturating_mul(8).max(64);
    for var in variations(space, tier, budget) {
        if out.len() >= max_candidates {
            break;
        }
        let mut flags = base.clone();
        let mut varied = OrderedMap::default();
        for (k, v) in var {
            if base.get(&k) != Some(&v) {
                varied.insert(k.clone(), v.clone());
            }
            flags.insert(k, v);
        }
        if !seen.insert(canonical(&flags)) {
            continue;
        }
        let id = format!("c{:02}-{}", out.len(), slug(&varied));
        out.push(Candidate {
            framework,
            candidate_id: id,
            is_baseline: false,
            flags,
            varied,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn space() -> OrderedMap<Vec<Value>> {
        OrderedMap(vec![
            ("--max-num-seqs".into(), vec![json!(128), json!(256)]),
            (
                "--max-num-batched-tokens".into(),
                vec![json!(8192), json!(16384)],
            ),
            ("--enforce-eager".into(), vec![json!(true), json!(false)]),
            ("--block-size".into(), vec![json!(16), json!(32)]),
        ])
    }

    #[test]
    fn tier1_is_baseline_then_one_knob_at_a_time_deduped_and_capped() {
        let base = OrderedMap(vec![
            ("--max-num-seqs".into(), json!(256)),
            ("--gpu-memory-utilization".into(), json!(0.9)),
        ]);
        let c = generate(Framework::Vllm, &base, &space(), 1, 100);
        assert_eq!(c[0].candidate_id, "c00-baseline");
        assert!(c[0].is_baseline && c[0].varied.is_empty());
        // 8 one-knob variations minus `max-num-seqs=256`, equal to the baseline.
        assert_eq!(c.len(), 1 + 7);
        assert_eq!(c[1].candidate_id, "c01-max-num-seqs=128");
        assert_eq!(
            c[1].flags.get("--gpu-memory-utilization"),
            Some(&json!(0.9))
        );
        assert!(c[1..].iter().all(|x| x.varied.len() == 1));
        let capped = generate(Framework::Vllm, &base, &space(), 1, 3);
        assert_eq!(capped.len(), 3);
    }

    #[test]
    fn tier2_products_first_three_knobs_tier3_everything_bounded() {
        let base = OrderedMap::default();
        let t2 = generate(Framework::Sglang, &base, &space(), 2, 1000);
        // 2*2*2 product of the first three + 2 one-at-a-time for the fourth.
        assert_eq!(t2.len(), 1 + 8 + 2);
        let t3 = generate(Framework::Sglang, &base, &space(), 3, 1000);
        assert_eq!(t3.len(), 1 + 16);
        // A huge space is not materialized: 12 knobs × 10 values = 10^12 combos, capped at 8.
        let big = OrderedMap(
            (0..12)
                .map(|i| (format!("--k{i}"), (0..10).map(|v| json!(v)).collect()))
                .collect(),
        );
        let t = generate(Framework::Vllm, &base, &big, 3, 8);
        assert_eq!(t.len(), 8);
        let ids: std::collections::HashSet<_> = t.iter().map(|c| c.candidate_id.clone()).collect();
        assert_eq!(ids.len(), 8);
    }
}
