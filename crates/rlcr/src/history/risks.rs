//! Validation risks: the sentences of a history document that name an accuracy or
//! correctness regression, a revert, a breakage, numerics, or a hardware- or dtype-specific
//! guard, attributed to the PR card they stand in (or to the one PR a line outside the
//! cards references). The words are data: `references/history-risk-keywords.json`.

use anyhow::{Context, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::extract::{CardTracker, PrKey, referenced_prs};

/// At most this many risk sentences per PR and document (the notes say how many more).
pub(super) const MAX_PER_PR: usize = 8;

/// One sentence of the history that names a risk for a PR.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ValidationRisk {
    /// The PR, `repo#number` (the key of its card in the notes).
    pub pr: String,
    /// Framework whose history names it (`vllm`, `sglang`).
    pub framework: String,
    /// The document, relative to the knowledge root.
    pub doc: String,
    /// Categories of `references/history-risk-keywords.json` that matched.
    pub categories: Vec<String>,
    /// The words that matched, as written in the keyword file.
    pub terms: Vec<String>,
    /// The sentence as written in the document (markdown list and table markers removed).
    pub sentence: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct RiskKeywords {
    categories: BTreeMap<String, Vec<String>>,
}

pub(super) fn load_keywords() -> Result<RiskKeywords> {
    let (text, origin) = vllm_sota_core::refs::load(
        "history-risk-keywords.json",
        Some(include_str!(
            "../../../../references/history-risk-keywords.json"
        )),
    )?;
    let k: RiskKeywords = serde_json::from_str(&text)
        .with_context(|| format!("{origin}: invalid history risk keyword file"))?;
    if k.categories.values().all(Vec::is_empty) {
        anyhow::bail!("{origin}: `categories` holds no keyword");
    }
    Ok(k)
}

/// Whether `term` (lowercase; a trailing `*` allows a longer word) occurs in `lower` on word
/// boundaries (a boundary is anything but an ASCII letter or digit).
fn term_matches(lower: &str, term: &str) -> bool {
    let (t, prefix) = match term.strip_suffix('*') {
        Some(t) => (t, true),
        None => (term, false),
    };
    if t.is_empty() {
        return false;
    }
    let bytes = lower.as_bytes();
    let mut from = 0;
    while let Some(i) = lower[from..].find(t) {
        let start = from + i;
        let end = start + t.len();
        let before_ok = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
        let after_ok = prefix || end == bytes.len() || !bytes[end].is_ascii_alphanumeric();
        if before_ok && after_ok {
            return true;
        }
        from = start + t.chars().next().map_or(1, char::len_utf8);
    }
    false
}

impl RiskKeywords {
    /// The categories and terms a sentence matches (empty when none).
    fn classify(&self, sentence: &str) -> (Vec<String>, Vec<String>) {
        let lower = sentence.to_lowercase();
        let mut cats = Vec::new();
        let mut terms = Vec::new();
        for (cat, list) in &self.categories {
            for term in list {
                if term_matches(&lower, &term.to_lowercase()) {
                    if !cats.contains(cat) {
                        cats.push(cat.clone());
                    }
                    if !terms.contains(term) {
                        terms.push(term.clone());
                    }
                }
            }
        }
        (cats, terms)
    }
}

/// Sentences of one line: table rows by cell; prose split after `.`, `;`, `!` or `?` followed
/// by a space; list markers removed.
fn sentences(line: &str) -> Vec<String> {
    let t = line.trim();
    if t.starts_with('|') {
        return t
            .split('|')
            .map(str::trim)
            .filter(|c| !c.is_empty() && !c.chars().all(|ch| ch == '-' || ch == ':'))
            .map(str::to_string)
            .collect();
    }
    let t = t
        .trim_start_matches(['-', '*', '>'])
        .trim_start()
        .trim_start_matches('#')
        .trim();
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        cur.push(c);
        if matches!(c, '.' | ';' | '!' | '?') && chars.peek().is_some_and(|n| n.is_whitespace()) {
            out.push(std::mem::take(&mut cur));
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The risk sentences of one document, grouped per PR in document order, at most
/// [`MAX_PER_PR`] per PR; the second value counts the sentences left out per PR.
pub(super) fn scan(
    text: &str,
    framework: &str,
    doc: &str,
    keywords: &RiskKeywords,
) -> (Vec<(PrKey, ValidationRisk)>, BTreeMap<PrKey, usize>) {
    let mut cards = CardTracker::new(framework);
    let mut in_fence = false;
    let mut out: Vec<(PrKey, ValidationRisk)> = Vec::new();
    let mut left_out: BTreeMap<PrKey, usize> = BTreeMap::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        cards.step(line);
        let owner = match &cards.current {
            Some(k) => Some(k.clone()),
            None => {
                let mut refs = referenced_prs(line, framework);
                refs.dedup();
                (refs.len() == 1).then(|| refs.remove(0))
            }
        };
        let Some(owner) = owner else { continue };
        for sentence in sentences(line) {
            let (categories, terms) = keywords.classify(&sentence);
            if categories.is_empty() {
                continue;
            }
            let pr = format!("{}#{}", owner.0, owner.1);
            let seen = out.iter().filter(|(k, _)| *k == owner).count();
            if out
                .iter()
                .any(|(k, r)| *k == owner && r.sentence == sentence)
            {
                continue;
            }
            if seen >= MAX_PER_PR {
                *left_out.entry(owner.clone()).or_default() += 1;
                continue;
            }
            out.push((
                owner.clone(),
                ValidationRisk {
                    pr,
                    framework: framework.to_string(),
                    doc: doc.to_string(),
                    categories,
                    terms,
                    sentence,
                },
            ));
        }
    }
    (out, left_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw() -> RiskKeywords {
        load_keywords().unwrap()
    }

    #[test]
    fn terms_match_on_word_boundaries_only() {
        assert!(term_matches("a regression in fp8", "regress*"));
        assert!(term_matches("is_hopper() guard", "hopper"));
        assert!(!term_matches("unbreakable", "breaks"));
        assert!(!term_matches("financial", "nan"));
        assert!(term_matches("returns nan for", "nan"));
        assert!(term_matches("fp8_e4m3 kv cache", "fp8*"));
        assert!(!term_matches("a hangar", "hang"));
    }

    #[test]
    fn cards_code_fences_and_timeline_rows_are_attributed() {
        let text = "# t\n\n| 2026-04-08 | [#39181](https://github.com/vllm-project/vllm/pull/39181) | merged | [Bugfix]Fix EP precision for Qwen3.5 | `x/y.py` |\n\n### PR #100 - Speed up decode\n\n- Risk and verification: Runtime changes concentrate in `a/b.py`; regression risk is weight loading. Nothing else here.\n\n```diff\n+    if dtype == fp8: revert()\n```\n\n### PR #200 - Docs\n\n- Motivation: none.\n";
        let (risks, left) = scan(text, "vllm", "vllm/x/README.en.md", &kw());
        assert!(left.is_empty());
        let got: Vec<(&str, &str, &Vec<String>)> = risks
            .iter()
            .map(|(_, r)| (r.pr.as_str(), r.sentence.as_str(), &r.categories))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "vllm-project/vllm#39181",
                    "[Bugfix]Fix EP precision for Qwen3.5",
                    &vec!["numerics".to_string()]
                ),
                (
                    "vllm-project/vllm#100",
                    "regression risk is weight loading.",
                    &vec!["regression".to_string()]
                ),
            ]
        );
    }
}
