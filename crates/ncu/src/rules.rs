//! The decision data (`references/ncu-rules.json`) and the deterministic procedure
//! that turns one candidate's facts into a bound class and exactly one next edit.
//! `references/ncu-next-edit-rule.md` documents the same procedure for people.

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::csvpage::RuleRow;

/// `references/ncu-rules.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct RulesFile {
    pub schema_version: u32,
    pub thresholds: Thresholds,
    pub rule_facts: Vec<RuleFact>,
    #[serde(default)]
    pub rule_values: Vec<RuleValue>,
    #[serde(default)]
    pub roofs: Vec<RoofDef>,
    #[serde(default)]
    pub library_kernels: Vec<LibraryDef>,
    pub bound_classes: Vec<ClassRule>,
    pub class_defaults: BTreeMap<String, Template>,
    pub findings: Vec<FindingDef>,
    pub non_actionable_rules: Vec<NonActionable>,
    pub stall_advice: BTreeMap<String, String>,
    pub blocker_patterns: Vec<BlockerPattern>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Thresholds {
    pub noise_band_pct: f64,
    pub eligibility_min_kernel_share_pct: f64,
    pub eligibility_min_gap_pct: f64,
    pub tie_window_pct: f64,
    pub progress_drop_fraction: f64,
    pub top_stalls: usize,
    pub top_rules: usize,
}

/// A fact taken from a rule row's estimated speedup (rule name + text fragment).
#[derive(Debug, Clone, Deserialize)]
pub struct RuleFact {
    pub fact: String,
    pub rule: String,
    #[serde(default)]
    pub contains: Option<String>,
}

/// A fact read from a rule row's text: the first participating capture group of
/// `regex` in the description of a row of `rule`.
#[derive(Debug, Clone, Deserialize)]
pub struct RuleValue {
    pub fact: String,
    pub rule: String,
    pub regex: String,
    #[serde(default)]
    pub note: Option<String>,
}

/// One hardware unit that can be a roof: `roof_<id>_pct` is the largest of its
/// metrics (raw page, % of peak) and facts present; `<class>_pct` the largest over
/// the roofs of that class. `only_when` conditions gate the unit (e.g. data banks
/// count as shared memory only when no global access goes through L1).
#[derive(Debug, Clone, Deserialize)]
pub struct RoofDef {
    pub id: String,
    pub label: String,
    pub class: String,
    #[serde(default)]
    pub metrics: Vec<String>,
    #[serde(default)]
    pub facts: Vec<String>,
    #[serde(default)]
    pub only_when: Vec<Cond>,
    #[serde(default)]
    pub note: Option<String>,
}

/// A closed-source library whose kernels get call-site edits only.
#[derive(Debug, Clone, Deserialize)]
pub struct LibraryDef {
    pub library: String,
    /// Rust regexes, matched case-insensitively against the full kernel name.
    pub patterns: Vec<String>,
    /// Fills `{call_site}` in the `library` wordings.
    pub call_site: String,
}

/// `[fact, op, number-or-fact]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Cond(pub String, pub String, pub serde_json::Value);

#[derive(Debug, Clone, Deserialize)]
pub struct ClassRule {
    pub class: String,
    /// At a hardware roof: only findings that name this class explicitly are eligible
    /// (no `*`, no fallback to other classes): the edit must move work off the roof.
    #[serde(default)]
    pub at_roof: bool,
    pub when: Vec<Cond>,
    pub why: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Template {
    pub edit: String,
    /// Call-site wording for closed-source library kernels.
    pub library: String,
    pub because: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RuleMatch {
    pub rule: String,
    #[serde(default)]
    pub contains: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Progress {
    pub fact: String,
    pub lower_is_better: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EditText {
    pub generic: String,
    #[serde(default)]
    pub triton: Option<String>,
    #[serde(default)]
    pub cuda: Option<String>,
    /// Call-site wording for closed-source library kernels; without it the finding does
    /// not apply to them (its edit is in the kernel's source).
    #[serde(default)]
    pub library: Option<String>,
}

impl EditText {
    /// The wording for a language; `library` has no fallback (None: not applicable).
    fn for_language(&self, lang: &str) -> Option<&str> {
        match lang {
            "library" => self.library.as_deref(),
            "triton" => Some(self.triton.as_deref().unwrap_or(&self.generic)),
            "cuda" => Some(self.cuda.as_deref().unwrap_or(&self.generic)),
            _ => Some(&self.generic),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct FindingDef {
    pub id: String,
    pub title: String,
    pub classes: Vec<String>,
    pub when: Vec<Cond>,
    #[serde(default)]
    pub when_any: Vec<Cond>,
    pub ncu_rules: Vec<RuleMatch>,
    pub estimate_fact: Option<String>,
    #[serde(default)]
    pub progress: Option<Progress>,
    pub edit: EditText,
    #[serde(default)]
    pub edit_by_limiter: BTreeMap<String, EditText>,
    pub because: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NonActionable {
    pub rule: String,
    pub why: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BlockerPattern {
    pub pattern: String,
    pub meaning: String,
}

/// Load and check the rules (embedded copy unless `$VLLM_SOTA_REFERENCES` overrides).
pub fn load_rules() -> Result<RulesFile> {
    let (text, origin) = vllm_sota_core::refs::load(
        "ncu-rules.json",
        Some(include_str!("../../../references/ncu-rules.json")),
    )?;
    let rules: RulesFile =
        serde_json::from_str(&text).with_context(|| format!("invalid ncu rules in {origin}"))?;
    validate(&rules).with_context(|| format!("invalid ncu rules in {origin}"))?;
    Ok(rules)
}

const OPS: &[&str] = &["<", "<=", ">", ">=", "==", "!="];

fn validate(r: &RulesFile) -> Result<()> {
    let classes: Vec<&str> = r.bound_classes.iter().map(|c| c.class.as_str()).collect();
    for c in r.bound_classes.iter().flat_map(|c| &c.when).chain(
        r.findings
            .iter()
            .flat_map(|f| f.when.iter().chain(&f.when_any)),
    ) {
        if !OPS.contains(&c.1.as_str()) {
            bail!("condition {:?}: unknown operator '{}'", c, c.1);
        }
        if !(c.2.is_number() || c.2.is_string()) {
            bail!(
                "condition {:?}: right side must be a number or a fact name",
                c
            );
        }
    }
    if r.bound_classes.last().is_none_or(|c| !c.when.is_empty()) {
        bail!("the last bound class must have an empty 'when' (the default)");
    }
    for f in &r.findings {
        for c in &f.classes {
            if c != "*" && !classes.contains(&c.as_str()) {
                bail!("finding '{}' names unknown class '{c}'", f.id);
            }
        }
    }
    for c in &classes {
        if !r.class_defaults.contains_key(*c) {
            bail!("class '{c}' has no entry in class_defaults");
        }
    }
    for roof in &r.roofs {
        if !classes.contains(&roof.class.as_str()) {
            bail!("roof '{}' names unknown class '{}'", roof.id, roof.class);
        }
    }
    for v in &r.rule_values {
        let re = regex::Regex::new(&v.regex)
            .with_context(|| format!("rule_values '{}': bad regex", v.fact))?;
        if re.captures_len() < 2 {
            bail!("rule_values '{}': the regex needs a capture group", v.fact);
        }
    }
    for l in &r.library_kernels {
        for p in &l.patterns {
            regex::RegexBuilder::new(p)
                .case_insensitive(true)
                .build()
                .with_context(|| format!("library_kernels '{}': bad pattern '{p}'", l.library))?;
        }
    }
    Ok(())
}

impl RulesFile {
    /// Whether a class is at a roof (any bound-class rule of that name says so).
    pub fn at_roof(&self, class: &str) -> bool {
        self.bound_classes
            .iter()
            .any(|c| c.class == class && c.at_roof)
    }
}

/// Evaluate one condition; a missing fact makes it false.
pub(crate) fn holds(facts: &BTreeMap<String, f64>, c: &Cond) -> bool {
    let Some(&lhs) = facts.get(&c.0) else {
        return false;
    };
    let rhs = match &c.2 {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => facts.get(s).copied(),
        _ => None,
    };
    let Some(rhs) = rhs else { return false };
    match c.1.as_str() {
        "<" => lhs < rhs,
        "<=" => lhs <= rhs,
        ">" => lhs > rhs,
        ">=" => lhs >= rhs,
        "==" => lhs == rhs,
        "!=" => lhs != rhs,
        _ => false,
    }
}

fn all_hold(facts: &BTreeMap<String, f64>, conds: &[Cond]) -> bool {
    conds.iter().all(|c| holds(facts, c))
}

fn rule_matches(row: &RuleRow, m: &RuleMatch) -> bool {
    row.rule == m.rule
        && m.contains
            .as_ref()
            .is_none_or(|t| row.description.to_lowercase().contains(&t.to_lowercase()))
}

/// Add rule-derived facts: `ncu_<Rule>_pct` (largest estimated speedup of that rule)
/// and the named `rule_facts`.
pub fn add_rule_facts(rules: &RulesFile, rows: &[RuleRow], facts: &mut BTreeMap<String, f64>) {
    for row in rows {
        if let Some(s) = row.speedup_pct {
            let k = format!("ncu_{}_pct", row.rule);
            let e = facts.entry(k).or_insert(s);
            *e = e.max(s);
        }
    }
    for rf in &rules.rule_facts {
        let m = RuleMatch {
            rule: rf.rule.clone(),
            contains: rf.contains.clone(),
        };
        if let Some(best) = rows
            .iter()
            .filter(|r| rule_matches(r, &m))
            .filter_map(|r| r.speedup_pct)
            .max_by(|a, b| a.total_cmp(b))
        {
            facts.insert(rf.fact.clone(), best);
        }
    }
    for rv in &rules.rule_values {
        let Ok(re) = regex::Regex::new(&rv.regex) else {
            continue; // validate() rejects a bad regex at load
        };
        let value = rows
            .iter()
            .filter(|r| r.rule == rv.rule)
            .filter_map(|r| re.captures(&r.description))
            .filter_map(|c| {
                c.iter()
                    .skip(1)
                    .flatten()
                    .next()
                    .and_then(|m| m.as_str().parse::<f64>().ok())
            })
            .max_by(|a, b| a.total_cmp(b));
        if let Some(v) = value {
            facts.insert(rv.fact.clone(), v);
        }
    }
}

/// The bound class of one side.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct BoundClass {
    /// An at-roof class (`tensor_roof`, `pipe_roof`, `dram_roof`, `l2_roof`, `shared_roof`,
    /// `l1_roof`, `memory_roof`, `compute_roof`) or memory / compute / balanced / latency /
    /// occupancy / tail / launch_overhead.
    pub class: String,
    /// Which rule of `bound_classes` fired (1-based) and why.
    pub rule_index: usize,
    pub why: String,
    /// The class is a hardware roof (>= 80% of a unit's peak).
    pub at_roof: bool,
    /// The saturated unit, named (e.g. `tensor pipe`), when at a roof.
    pub roof: Option<String>,
    /// Its utilisation, % of peak.
    pub roof_pct: Option<f64>,
    /// Other units at or above 80% of their peak, e.g. `shared memory 95%`.
    pub also_at: Vec<String>,
}

pub fn classify(rules: &RulesFile, facts: &BTreeMap<String, f64>) -> BoundClass {
    for (i, c) in rules.bound_classes.iter().enumerate() {
        if all_hold(facts, &c.when) {
            let mut b = BoundClass {
                class: c.class.clone(),
                rule_index: i + 1,
                why: c.why.clone(),
                at_roof: c.at_roof,
                roof: None,
                roof_pct: None,
                also_at: Vec::new(),
            };
            if c.at_roof {
                crate::roofs::name_roof(rules, facts, &mut b);
            }
            return b;
        }
    }
    unreachable!("validate() guarantees a default class")
}

/// One finding as evaluated for the candidate.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Considered {
    pub id: String,
    pub title: String,
    /// Estimated gain in percent (NCU's Estimated Speedup where a rule row matches, else the fallback fact).
    pub estimate_pct: Option<f64>,
    /// Where the estimate came from: `ncu <Rule>` or `fact <name>`.
    pub estimate_source: String,
    /// Position in the findings table: the tie-break (lower wins).
    pub precedence: usize,
    /// eligible / wrong class / progress (already improved) / not triggered.
    pub status: String,
}

/// The chosen next edit and how it was chosen.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Decision {
    /// The single `Next edit:` line.
    pub line: String,
    /// `gate:<name>`, `finding:<id>`, `fallback:<id>` (eligible only outside the class) or `class_default:<class>`.
    pub chosen_by: String,
    pub estimate_pct: Option<f64>,
    /// Every finding that triggered, with why it was or was not eligible.
    pub considered: Vec<Considered>,
}

/// Inputs beyond the facts: names filled into templates.
pub struct Context<'a> {
    pub kernel: &'a str,
    /// `triton`, `cuda`, `generic` or `library` (a closed-source library kernel).
    pub language: &'a str,
    pub limiter: Option<&'a str>,
    /// The library and its call site, for `library` wording.
    pub library: Option<&'a crate::library::LibraryMatch>,
}

/// Format a number for a template: integers plain, else 1 decimal above 10, 2 below.
pub(crate) fn fmt_num(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 && v.abs() < 1e15 {
        format!("{}", v.round() as i64)
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Fill `{name}` placeholders from the facts (numbers) and the context (names).
pub(crate) fn fill(template: &str, facts: &BTreeMap<String, f64>, cx: &Context) -> String {
    let re = regex::Regex::new(r"\{([a-zA-Z0-9_]+)\}").expect("static regex");
    re.replace_all(template, |c: &regex::Captures| {
        let name = &c[1];
        match name {
            "kernel" => cx.kernel.to_string(),
            "limiter" => cx.limiter.unwrap_or("n/a").to_string(),
            "library" => cx
                .library
                .map(|l| l.library.clone())
                .unwrap_or("n/a".into()),
            "call_site" => cx
                .library
                .map(|l| l.call_site.clone())
                .unwrap_or("the call site".into()),
            _ => facts
                .get(name)
                .map(|v| fmt_num(*v))
                .unwrap_or_else(|| "n/a".to_string()),
        }
    })
    .into_owned()
}

fn estimate(
    def: &FindingDef,
    rows: &[RuleRow],
    facts: &BTreeMap<String, f64>,
) -> (Option<f64>, String) {
    let from_rules = def
        .ncu_rules
        .iter()
        .flat_map(|m| rows.iter().filter(move |r| rule_matches(r, m)))
        .filter_map(|r| r.speedup_pct.map(|s| (s, r.rule.clone())))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((s, rule)) = from_rules {
        return (Some(s), format!("ncu {rule}"));
    }
    if let Some(f) = &def.estimate_fact
        && let Some(v) = facts.get(f)
    {
        return (Some(*v), format!("fact {f}"));
    }
    (None, "no estimate".into())
}

/// Fill a class-default or finding template, with the roof of the class.
fn fill_class(t: &str, facts: &BTreeMap<String, f64>, class: &BoundClass, cx: &Context) -> String {
    let roof = class.roof.as_deref().unwrap_or("n/a");
    let roof_pct = class.roof_pct.map(fmt_num).unwrap_or("n/a".into());
    let also = if class.also_at.is_empty() {
        String::new()
    } else {
        format!(" (also at or above 80%: {})", class.also_at.join(", "))
    };
    let t = t
        .replace("{roof_pct}", &roof_pct)
        .replace("{roof}", roof)
        .replace("{also_at}", &also);
    fill(&t, facts, cx)
}

/// Whether the finding's progress fact already improved from baseline to candidate by
/// more than `progress_drop_fraction` (the last edit is working on it).
fn progressed(
    rules: &RulesFile,
    def: &FindingDef,
    cand: &BTreeMap<String, f64>,
    base: Option<&BTreeMap<String, f64>>,
) -> bool {
    def.progress.as_ref().is_some_and(|p| {
        let (Some(b), Some(c)) = (base.and_then(|b| b.get(&p.fact)), cand.get(&p.fact)) else {
            return false;
        };
        if *b == 0.0 {
            return false;
        }
        let improvement = if p.lower_is_better {
            (b - c) / b.abs()
        } else {
            (c - b) / b.abs()
        };
        improvement > rules.thresholds.progress_drop_fraction
    })
}

/// Steps 2–5 of the procedure: findings → one edit. The gates (step 1) are applied
/// by the caller before this, because they need harness results.
pub fn choose(
    rules: &RulesFile,
    class: &BoundClass,
    cand: &BTreeMap<String, f64>,
    base: Option<&BTreeMap<String, f64>>,
    rows: &[RuleRow],
    cx: &Context,
) -> Decision {
    let mut considered = Vec::new();
    // (estimate, precedence, def, in_class)
    let mut pool: Vec<(f64, usize, &FindingDef, bool, String)> = Vec::new();
    for (i, def) in rules.findings.iter().enumerate() {
        let triggered = all_hold(cand, &def.when)
            && (def.when_any.is_empty() || def.when_any.iter().any(|c| holds(cand, c)));
        if !triggered {
            continue;
        }
        let (est, src) = estimate(def, rows, cand);
        // `*` means every class not at a roof: at a roof only findings naming the class apply.
        let in_class = def
            .classes
            .iter()
            .any(|c| (c == "*" && !class.at_roof) || *c == class.class);
        let text = cx
            .limiter
            .and_then(|l| def.edit_by_limiter.get(l))
            .unwrap_or(&def.edit);
        let applicable = text.for_language(cx.language).is_some();
        let progressed = progressed(rules, def, cand, base);
        let status = if !applicable {
            format!(
                "not applicable: an edit inside the kernel's source, and {} is a closed-source {} kernel",
                cx.kernel,
                cx.library.map(|l| l.library.as_str()).unwrap_or("library")
            )
        } else if progressed {
            "dropped: already improved by more than half from baseline".to_string()
        } else if in_class {
            "eligible".to_string()
        } else {
            format!("outside class {}", class.class)
        };
        considered.push(Considered {
            id: def.id.clone(),
            title: def.title.clone(),
            estimate_pct: est,
            estimate_source: src.clone(),
            precedence: i + 1,
            status,
        });
        if !progressed && applicable {
            pool.push((est.unwrap_or(0.0), i, def, in_class, src));
        }
    }
    let pick = |candidates: Vec<&(f64, usize, &FindingDef, bool, String)>| -> Option<(f64, usize, FindingDef, String)> {
        let top = candidates.iter().map(|c| c.0).fold(f64::NEG_INFINITY, f64::max);
        candidates
            .into_iter()
            .filter(|c| c.0 >= top - rules.thresholds.tie_window_pct)
            .min_by_key(|c| c.1)
            .map(|c| (c.0, c.1, c.2.clone(), c.4.clone()))
    };
    let in_class: Vec<_> = pool.iter().filter(|p| p.3).collect();
    // At a roof there is no fallback: an edit from another class would tune the kernel
    // instead of moving work off the roof.
    let (chosen, kind) = match pick(in_class) {
        Some(c) => (Some(c), "finding"),
        None if class.at_roof => (None, "fallback"),
        None => (pick(pool.iter().collect()), "fallback"),
    };
    if let Some((_, _, def, src)) = chosen {
        let est = considered
            .iter()
            .find(|c| c.id == def.id)
            .and_then(|c| c.estimate_pct);
        let text = cx
            .limiter
            .and_then(|l| def.edit_by_limiter.get(l))
            .unwrap_or(&def.edit)
            .for_language(cx.language)
            .unwrap_or(&def.edit.generic)
            .to_string();
        let edit = fill_class(&text, cand, class, cx);
        let because = fill_class(&def.because, cand, class, cx);
        let est_txt = match est {
            Some(e) => format!("{src}, est. +{}%", fmt_num(e)),
            None => "no estimate".into(),
        };
        return Decision {
            line: format!("Next edit: {edit} — because {because} ({est_txt})."),
            chosen_by: format!("{kind}:{}", def.id),
            estimate_pct: est,
            considered,
        };
    }
    let t = &rules.class_defaults[&class.class];
    let edit = if cx.language == "library" {
        &t.library
    } else {
        &t.edit
    };
    Decision {
        line: format!(
            "Next edit: {} — because {} (class default, no estimate).",
            fill_class(edit, cand, class, cx),
            fill_class(&t.because, cand, class, cx)
        ),
        chosen_by: format!("class_default:{}", class.class),
        estimate_pct: None,
        considered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn shipped_rules_load_and_classify_by_first_match() {
        let r = load_rules().unwrap();
        let mem = facts(&[
            ("sm_pct", 36.5),
            ("mem_pct", 72.9),
            ("max_sol_pct", 72.9),
            ("mem_minus_sm", 36.4),
            ("sm_minus_mem", -36.4),
            ("duration_us", 31.4),
        ]);
        assert_eq!(classify(&r, &mem).class, "memory");
        let small = facts(&[
            ("sm_pct", 5.0),
            ("mem_pct", 3.0),
            ("max_sol_pct", 5.0),
            ("mem_minus_sm", -2.0),
            ("sm_minus_mem", 2.0),
            ("duration_us", 40.0),
            ("waves_per_sm", 0.2),
        ]);
        assert_eq!(classify(&r, &small).class, "occupancy");
        let quick = facts(&[
            ("sm_pct", 5.0),
            ("mem_pct", 3.0),
            ("max_sol_pct", 5.0),
            ("duration_us", 4.0),
        ]);
        assert_eq!(classify(&r, &quick).class, "launch_overhead");
        let nothing = facts(&[]);
        assert_eq!(classify(&r, &nothing).class, "latency");
    }

    #[test]
    fn ties_within_the_window_go_to_the_earlier_finding() {
        let r = load_rules().unwrap();
        // Bank conflicts (precedence later) at 12%, long scoreboard (earlier) at 9%: within 5 points → long scoreboard.
        let f = facts(&[
            ("smem_conflict_pct", 12.0),
            ("stall_long_scoreboard_share", 0.5),
            ("stall_long_scoreboard_pct", 9.0),
            ("dram_pct", 40.0),
        ]);
        let class = BoundClass {
            class: "latency".into(),
            rule_index: 10,
            why: String::new(),
            at_roof: false,
            roof: None,
            roof_pct: None,
            also_at: Vec::new(),
        };
        let cx = Context {
            kernel: "k",
            language: "cuda",
            limiter: None,
            library: None,
        };
        let d = choose(&r, &class, &f, None, &[], &cx);
        assert_eq!(d.chosen_by, "finding:long_scoreboard");
        assert_eq!(d.line.matches("Next edit:").count(), 1);
        // Outside the window the larger estimate wins.
        let f2 = facts(&[
            ("smem_conflict_pct", 30.0),
            ("stall_long_scoreboard_share", 0.5),
            ("stall_long_scoreboard_pct", 9.0),
            ("dram_pct", 40.0),
        ]);
        assert_eq!(
            choose(&r, &class, &f2, None, &[], &cx).chosen_by,
            "finding:bank_conflicts"
        );
        // A finding that improved by more than half since the baseline is dropped.
        let base = facts(&[("smem_conflict_pct", 90.0)]);
        assert_eq!(
            choose(&r, &class, &f2, Some(&base), &[], &cx).chosen_by,
            "finding:long_scoreboard"
        );
        // Nothing triggers → the class default.
        assert_eq!(
            choose(&r, &class, &facts(&[]), None, &[], &cx).chosen_by,
            "class_default:latency"
        );
    }

    #[test]
    fn templates_fill_numbers_and_mark_missing_ones() {
        let cx = Context {
            kernel: "rms",
            language: "triton",
            limiter: Some("registers"),
            library: None,
        };
        let s = fill(
            "{kernel}: {a} of {b}, {limiter}, {missing}",
            &facts(&[("a", 60.789), ("b", 8192.0)]),
            &cx,
        );
        assert_eq!(s, "rms: 60.8 of 8192, registers, n/a");
        assert_eq!(fmt_num(7.7612), "7.76");
    }
}
