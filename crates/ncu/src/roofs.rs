//! Which hardware unit a kernel saturates. `references/ncu-rules.json` lists the
//! units (`roofs`): each is the largest of its raw-page metrics (% of peak) and of
//! facts read from ncu's own rule text (HighPipeUtilization); the bound classes then
//! test `<class>_pct >= 80` in the listed order, and [`name_roof`] names the unit.

use std::collections::BTreeMap;

use crate::csvpage::LaunchData;
use crate::rules::{self, BoundClass, RulesFile};

/// The line at which a unit counts as a roof (ncu SOLBottleneck's "High Throughput").
const ROOF_PCT: f64 = 80.0;

/// Add `roof_<id>_pct` for every unit measured in this launch and `<class>_pct` for
/// every roof class (the largest of its units). A unit whose `only_when` does not hold,
/// or with no metric in the report, adds nothing: an unmeasured roof is never 0.
pub(crate) fn add_roof_facts(rules: &RulesFile, l: &LaunchData, facts: &mut BTreeMap<String, f64>) {
    let mut by_class: BTreeMap<String, f64> = BTreeMap::new();
    for roof in &rules.roofs {
        if !roof.only_when.iter().all(|c| rules::holds(facts, c)) {
            continue;
        }
        let value = roof
            .metrics
            .iter()
            .filter_map(|m| l.raw.get(m).and_then(|v| v.value))
            .chain(roof.facts.iter().filter_map(|f| facts.get(f).copied()))
            .max_by(|a, b| a.total_cmp(b));
        let Some(v) = value else { continue };
        facts.insert(format!("roof_{}_pct", roof.id), v);
        let e = by_class.entry(roof.class.clone()).or_insert(v);
        *e = e.max(v);
    }
    for (class, v) in by_class {
        facts.insert(format!("{class}_pct"), v);
    }
}

/// Name the saturated unit of an at-roof class: the hottest unit of that class, and
/// every other unit at or above the same 80% line beside it.
pub(crate) fn name_roof(rules: &RulesFile, facts: &BTreeMap<String, f64>, b: &mut BoundClass) {
    let measured: Vec<(&str, &str, f64)> = rules
        .roofs
        .iter()
        .filter_map(|r| {
            facts
                .get(&format!("roof_{}_pct", r.id))
                .map(|v| (r.class.as_str(), r.label.as_str(), *v))
        })
        .collect();
    let hottest = measured
        .iter()
        .filter(|(c, _, _)| *c == b.class)
        .max_by(|a, b| a.2.total_cmp(&b.2));
    match hottest {
        Some((_, label, v)) => {
            b.roof = Some(label.to_string());
            b.roof_pct = Some(*v);
        }
        None => {
            // memory_roof / compute_roof: SOL numbers only, the unit is not in the report.
            let (label, key) = if b.class.starts_with("memory") {
                ("memory (unit not in the report)", "mem_pct")
            } else {
                ("SM (unit not in the report)", "sm_pct")
            };
            b.roof = Some(label.to_string());
            b.roof_pct = facts.get(key).copied();
        }
    }
    // The hottest unit of each other class at or above the line, hottest first.
    let mut others: Vec<&(&str, &str, f64)> = measured
        .iter()
        .filter(|(class, _, v)| *v >= ROOF_PCT && *class != b.class)
        .collect();
    others.sort_by(|a, b| b.2.total_cmp(&a.2));
    let mut seen: Vec<&str> = Vec::new();
    for (class, label, v) in others {
        if !seen.contains(class) {
            seen.push(class);
            b.also_at.push(format!(
                "{label} {}%",
                rules::fmt_num((v * 10.0).round() / 10.0)
            ));
        }
    }
}
