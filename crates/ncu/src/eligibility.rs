//! The skill's gate for kernel work: the kernel (or kernel family) must hold at
//! least 1% of the stage's GPU time in the latest kernel table, and the gap to the
//! best framework must be above 1%.

use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;

/// Whether the kernel-evidence step is allowed, and why.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Eligibility {
    /// `met`, `not_met` or `unknown` (an input is missing).
    pub status: String,
    pub kernel_share_pct: Option<f64>,
    pub gap_pct: Option<f64>,
    /// Where the share came from (`request` or the kernel-table file and its matched rows).
    pub share_source: String,
    pub why: String,
}

const NAME_KEYS: &[&str] = &[
    "kernel",
    "full_name",
    "name",
    "kernel_name",
    "short_name",
    "family",
];
const SHARE_KEYS: &[&str] = &[
    "share_pct",
    "pct",
    "gpu_time_pct",
    "pct_of_stage",
    "percent",
    "time_pct",
    "share",
];

/// Sum the share of every row whose name (or family) matches `re` in a kernel-table JSON.
///
/// Reads `profile_tables`' `profiles/round-N/<framework>/<stage>/tables.json`
/// (`kernel_table.rows[]` with `kernel`, `full_name`, `family`, `share_pct`); other
/// files are read tolerantly: the first array of objects (depth-first) whose objects
/// carry a name field and a percent field. A row counts when any of its name fields
/// (`kernel`, `full_name`, `name`, `kernel_name`, `short_name`, `family`) matches, so a
/// family regex gives the family's share. Returns (share %, rows matched, rows read).
pub(crate) fn share_from_table(path: &Path, re: &regex::Regex) -> Result<(f64, usize, usize)> {
    let v: serde_json::Value = vllm_sota_core::fsx::read_json(path)?;
    let rows = v
        .get("kernel_table")
        .and_then(|k| k.get("rows"))
        .and_then(|r| r.as_array())
        .or_else(|| find_rows(&v))
        .with_context(|| {
            format!(
                "{}: no kernel_table.rows and no array of kernel rows with a name field ({}) and a percent field ({})",
                path.display(),
                NAME_KEYS.join("/"),
                SHARE_KEYS.join("/")
            )
        })?;
    let mut total = 0.0;
    let mut matched = 0;
    for row in rows {
        let hit = NAME_KEYS
            .iter()
            .filter_map(|k| row.get(*k).and_then(|x| x.as_str()))
            .any(|n| re.is_match(n));
        let share = SHARE_KEYS
            .iter()
            .find_map(|k| row.get(*k).and_then(|x| x.as_f64()))
            .unwrap_or(0.0);
        if hit {
            total += share;
            matched += 1;
        }
    }
    Ok((total, matched, rows.len()))
}

fn find_rows(v: &serde_json::Value) -> Option<&Vec<serde_json::Value>> {
    match v {
        serde_json::Value::Array(items) => {
            let ok = !items.is_empty()
                && items.iter().all(|i| i.is_object())
                && items.iter().any(|i| {
                    NAME_KEYS
                        .iter()
                        .any(|k| i.get(*k).is_some_and(|x| x.is_string()))
                })
                && items.iter().any(|i| {
                    SHARE_KEYS
                        .iter()
                        .any(|k| i.get(*k).is_some_and(|x| x.is_number()))
                });
            if ok {
                return Some(items);
            }
            items.iter().find_map(find_rows)
        }
        serde_json::Value::Object(map) => map.values().find_map(find_rows),
        _ => None,
    }
}

/// Decide the gate from a share and a gap (either may be unknown).
pub(crate) fn decide(
    share: Option<f64>,
    gap: Option<f64>,
    share_source: String,
    min_share: f64,
    min_gap: f64,
) -> Eligibility {
    let mut reasons = Vec::new();
    let mut unknown = Vec::new();
    match share {
        Some(s) if s < min_share => reasons.push(format!(
            "kernel share {s:.2}% of stage GPU time is below {min_share}%"
        )),
        Some(_) => {}
        None => unknown.push("kernel share (pass kernel_share_pct or kernel_table_json)"),
    }
    match gap {
        Some(g) if g <= min_gap => reasons.push(format!(
            "gap to the best framework {g:.2}% is not above {min_gap}%"
        )),
        Some(_) => {}
        None => unknown.push("gap (pass gap_pct)"),
    }
    let (status, why) = if !reasons.is_empty() {
        ("not_met", format!("gate not met: {}", reasons.join("; ")))
    } else if !unknown.is_empty() {
        (
            "unknown",
            format!("gate not checked: missing {}", unknown.join(" and ")),
        )
    } else {
        (
            "met",
            format!(
                "gate met: share {:.2}% >= {min_share}% and gap {:.2}% > {min_gap}%",
                share.unwrap(),
                gap.unwrap()
            ),
        )
    };
    Eligibility {
        status: status.into(),
        kernel_share_pct: share,
        gap_pct: gap,
        share_source,
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_states_and_table_rows() {
        assert_eq!(
            decide(Some(3.0), Some(5.0), "request".into(), 1.0, 1.0).status,
            "met"
        );
        let e = decide(Some(0.4), Some(5.0), "request".into(), 1.0, 1.0);
        assert_eq!(e.status, "not_met");
        assert!(e.why.contains("kernel share 0.40%"), "{}", e.why);
        let e = decide(Some(3.0), Some(1.0), "request".into(), 1.0, 1.0);
        assert!(e.status == "not_met" && e.why.contains("gap"), "{}", e.why);
        assert_eq!(
            decide(None, Some(5.0), "none".into(), 1.0, 1.0).status,
            "unknown"
        );

        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tables.json");
        std::fs::write(&p, r#"{"stage":"decode","kernels":[{"name":"triton_red_fused_add_rms_norm_0","pct":2.5},{"name":"triton_red_fused_add_rms_norm_1","pct":1.0},{"name":"nvjet_gemm","pct":30.0}]}"#).unwrap();
        let (share, matched, total) =
            share_from_table(&p, &regex::Regex::new("rms_norm").unwrap()).unwrap();
        assert_eq!((share, matched, total), (3.5, 2, 3));
        // profile_tables' layout: kernel_table.rows with kernel / full_name / family / share_pct;
        // a fuse_table array before it (alphabetically) must not be picked up.
        std::fs::write(
            &p,
            r#"{"fuse_table":{"rows":[{"name":"rms_norm pattern","share_pct":50.0}]},
                "kernel_table":{"total_gpu_ms":10.0,"rows":[
                  {"family":"norm","kernel":"triton_red_fused_add_rms_norm_3","full_name":"triton_red_fused_add_rms_norm_3","share_pct":1.2},
                  {"family":"norm","kernel":"vllm::rms_norm_kernel","full_name":"void vllm::rms_norm_kernel<c10::BFloat16>","share_pct":0.3},
                  {"family":"gemm","kernel":"nvjet_tst_128x256","full_name":"nvjet_tst_128x256","share_pct":31.0}]}}"#,
        )
        .unwrap();
        let (share, matched, total) =
            share_from_table(&p, &regex::Regex::new("rms_norm").unwrap()).unwrap();
        assert_eq!((matched, total), (2, 3));
        assert!((share - 1.5).abs() < 1e-12);
        let (share, matched, _) =
            share_from_table(&p, &regex::Regex::new("^norm$").unwrap()).unwrap();
        assert_eq!(matched, 2, "the family field matches too");
        assert!((share - 1.5).abs() < 1e-12);
        std::fs::write(&p, r#"{"x":[1,2]}"#).unwrap();
        let err = share_from_table(&p, &regex::Regex::new("a").unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tables.json: no kernel_table.rows and no array of kernel rows"),
            "{err}"
        );
    }
}
