//! Which launch of the matching kernel each side digests.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;

use crate::csvpage::LaunchData;
use crate::metrics;

/// Select the launch to digest among those matching the regex.
#[allow(clippy::type_complexity)]
pub(crate) fn select_launch<'a>(
    launches: &'a BTreeMap<u64, LaunchData>,
    re: &regex::Regex,
    how: Option<&str>,
    side: &str,
) -> Result<(&'a LaunchData, Vec<(u64, Option<f64>)>)> {
    let matching: Vec<&LaunchData> = launches
        .values()
        .filter(|l| re.is_match(&l.kernel_name))
        .collect();
    if matching.is_empty() {
        let mut names: Vec<&str> = launches.values().map(|l| l.kernel_name.as_str()).collect();
        names.dedup();
        names.truncate(10);
        bail!(
            "{side}: no launch matches kernel_regex '{}'; the report holds: {}",
            re.as_str(),
            names.join(" | ")
        );
    }
    let listed: Vec<(u64, Option<f64>)> = matching
        .iter()
        .map(|l| (l.id, metrics::duration_ns(l)))
        .collect();
    let how = how.unwrap_or("median").trim();
    let chosen = match how {
        "first" => matching[0],
        "last" => matching[matching.len() - 1],
        "median" => {
            let mut by_dur: Vec<&LaunchData> = matching.clone();
            by_dur.sort_by(|a, b| {
                metrics::duration_ns(a)
                    .unwrap_or(f64::MAX)
                    .total_cmp(&metrics::duration_ns(b).unwrap_or(f64::MAX))
                    .then(a.id.cmp(&b.id))
            });
            by_dur[(by_dur.len() - 1) / 2]
        }
        s if s.starts_with("id:") => {
            let id: u64 = s[3..]
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("launch '{s}': id:N needs a number"))?;
            matching
                .iter()
                .find(|l| l.id == id)
                .copied()
                .with_context(|| {
                    format!(
                        "{side}: launch id {id} is not among the matching launches {:?}",
                        listed.iter().map(|x| x.0).collect::<Vec<_>>()
                    )
                })?
        }
        s => {
            let n: usize = s.parse().map_err(|_| {
                anyhow::anyhow!("launch '{s}': use median, first, last, an index or id:N")
            })?;
            matching.get(n).copied().with_context(|| {
                format!(
                    "{side}: launch index {n} but only {} launches match",
                    matching.len()
                )
            })?
        }
    };
    Ok((chosen, listed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csvpage;
    use std::path::Path;

    fn page() -> BTreeMap<u64, LaunchData> {
        // Three launches of `k` (durations 5, 1, 3 us) and one of `other`.
        let text = "\"ID\",\"Kernel Name\",\"gpu__time_duration.sum\"\n\"\",\"\",\"us\"\n\"0\",\"k\",\"5\"\n\"1\",\"other\",\"9\"\n\"2\",\"k\",\"1\"\n\"3\",\"k\",\"3\"\n";
        csvpage::parse_page(Path::new("p.csv"), text)
            .unwrap()
            .launches
    }

    #[test]
    fn launch_selection_by_median_position_and_id() {
        let l = page();
        let re = regex::Regex::new("^k$").unwrap();
        let (m, listed) = select_launch(&l, &re, None, "baseline").unwrap();
        assert_eq!(m.id, 3, "median duration of 5, 1, 3 us is launch 3");
        assert_eq!(
            listed,
            vec![(0, Some(5000.0)), (2, Some(1000.0)), (3, Some(3000.0))]
        );
        assert_eq!(select_launch(&l, &re, Some("first"), "b").unwrap().0.id, 0);
        assert_eq!(select_launch(&l, &re, Some("last"), "b").unwrap().0.id, 3);
        assert_eq!(select_launch(&l, &re, Some("1"), "b").unwrap().0.id, 2);
        assert_eq!(select_launch(&l, &re, Some("id:2"), "b").unwrap().0.id, 2);
        let err = select_launch(&l, &re, Some("id:1"), "candidate")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("candidate: launch id 1 is not among the matching launches [0, 2, 3]"),
            "{err}"
        );
        let err = select_launch(&l, &re, Some("7"), "b")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("launch index 7 but only 3 launches match"),
            "{err}"
        );
        assert!(select_launch(&l, &re, Some("middle"), "b").is_err());
    }
}
