//! Re-running `history_notes` over notes already written: the scaffold is regenerated and
//! everything the agent wrote is carried into the new file, keyed by PR (`repo#number`).
//!
//! What is generated (and so regenerated) is recognised line by line: the header, the
//! "Paths read" list, the blocker paragraphs, the per-framework file/symbol tables, each
//! card's `- Link:` / `- Mentions` / `- Files:` / `- Symbols:` / `- Risk (` lines and the
//! unfilled slots. Everything else is the agent's and is kept: a filled
//! `- Decision it influences:` or `- How we will validate:` slot, other lines under a card,
//! lines added to a generated section, filled rows of the decisions table, and whole
//! sections the agent added. A card whose PR is no longer in the documents read keeps its
//! old lines and is marked, never dropped.

use schemars::JsonSchema;
use serde::Serialize;
use std::fmt::Write as _;

pub(super) const DECISION_SLOT: &str = "- Decision it influences:";
pub(super) const DECISION_TODO: &str =
    "_to fill in (profile row, patch target or ruling this PR informs, or \"none\")_";
pub(super) const VALIDATE_SLOT: &str = "- How we will validate:";
pub(super) const VALIDATE_TODO: &str = "_to fill in (the probe, accuracy eval, shape, dtype or GPU that would catch this risk for our patch, or \"not applicable\" and why)_";
pub(super) const VANISHED_HEADING: &str = "## PR cards no longer in the source";
const STATUS_PREFIX: &str = "- Source status:";
/// Heading prefix of the agent's lines from a generated section this run does not write
/// (e.g. "Blocker" once the history is read); such a section is the agent's from then on.
const KEPT_PREFIX: &str = "Kept from the earlier notes:";

/// What a re-run kept from the notes it replaced.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct MergeReport {
    /// Number of filled-in "Decision it influences" lines carried over.
    pub kept_decision_count: usize,
    /// The PRs (`repo#number`) whose filled-in decision was carried over.
    pub kept_decisions: Vec<String>,
    /// PRs whose validation plan ("How we will validate") was carried over.
    pub kept_validation_plans: Vec<String>,
    /// PRs whose card held other text the agent wrote, carried over.
    pub kept_card_notes: Vec<String>,
    /// Filled rows of the "Decisions influenced" table carried over.
    pub kept_table_rows: usize,
    /// Headings of sections the agent added (or generated sections with added lines), carried over.
    pub kept_sections: Vec<String>,
    /// PRs whose card was kept although the documents read no longer mention them.
    pub no_longer_in_source: Vec<String>,
}

#[derive(Debug, Default, Clone)]
pub(super) struct Card {
    heading: String,
    generated: Vec<String>,
    before: Vec<String>,
    slot: Option<String>,
    slot_seen: bool,
    after: Vec<String>,
}

impl Card {
    fn has_content(&self) -> bool {
        self.slot.is_some() || !self.before.is_empty() || !self.after.is_empty()
    }
    /// Sort one line of a card of the earlier notes: generated, the slot, or the agent's.
    fn take_line(&mut self, risk: bool, line: &str) {
        let slot = if risk { VALIDATE_SLOT } else { DECISION_SLOT };
        if let Some(v) = filled(line, slot) {
            self.slot = self.slot.take().or(v);
            self.slot_seen = true;
            return;
        }
        let gen_prefixes: &[&str] = if risk {
            &["- Risk (", "- Risks left out:"]
        } else {
            &[
                "- Link:",
                "- Mentions in the document:",
                "- Files:",
                "- Symbols:",
            ]
        };
        if gen_prefixes.iter().any(|g| line.starts_with(g)) {
            self.generated.push(line.to_string());
        } else if line.trim_start().starts_with(STATUS_PREFIX) {
            // Regenerated when the card is written again.
        } else if self.slot_seen {
            push_extra(&mut self.after, line);
        } else {
            push_extra(&mut self.before, line);
        }
    }

    fn absorb(&mut self, other: Card) {
        self.before.extend(other.before);
        if self.slot.is_none() {
            self.slot = other.slot;
        }
        self.after.extend(other.after);
    }
}

/// The agent's content of notes written before.
#[derive(Debug, Default)]
pub(super) struct Previous {
    preamble: Vec<String>,
    /// Lines added to generated sections, by section heading.
    section_extras: Vec<(String, Vec<String>)>,
    pr_cards: Vec<(String, Card)>,
    risk_cards: Vec<(String, Card)>,
    table_rows: Vec<String>,
    free_sections: Vec<(String, Vec<String>)>,
    pub report: MergeReport,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Preamble,
    Paths,
    Blocker,
    Framework,
    Risks,
    Vanished,
    Decisions,
    Free,
}

fn kind_of(heading: &str) -> Kind {
    let h = heading.trim_start_matches("## ").trim();
    match h {
        "Paths read" => Kind::Paths,
        "Blocker" => Kind::Blocker,
        "Validation risks" => Kind::Risks,
        "Decisions influenced" => Kind::Decisions,
        _ if heading.trim() == VANISHED_HEADING => Kind::Vanished,
        _ if h.starts_with(KEPT_PREFIX) => Kind::Free,
        _ if h.contains(" history: `") => Kind::Framework,
        _ => Kind::Free,
    }
}

/// `repo#number` of a card heading `#### repo#number — title`.
fn card_key(line: &str) -> Option<String> {
    let rest = line.strip_prefix("#### ")?;
    let key = rest.split(" — ").next()?.trim();
    let (repo, n) = key.rsplit_once('#')?;
    (!repo.is_empty()
        && !repo.contains(char::is_whitespace)
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit()))
    .then(|| key.to_string())
}

fn filled(line: &str, slot: &str) -> Option<Option<String>> {
    let v = line.strip_prefix(slot)?.trim();
    Some((!v.is_empty() && !v.starts_with("_to fill in")).then(|| v.to_string()))
}

fn push_extra(v: &mut Vec<String>, line: &str) {
    if line.trim().is_empty() {
        if v.last().is_some_and(|l| !l.trim().is_empty()) {
            v.push(String::new());
        }
    } else {
        v.push(line.to_string());
    }
}

fn trimmed(v: &[String]) -> &[String] {
    let end = v
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(0, |i| i + 1);
    &v[..end]
}

fn generated_in(kind: Kind, line: &str, known_sub: bool) -> bool {
    let t = line.trim_start();
    match kind {
        Kind::Preamble => {
            t.starts_with("# Model PR history notes")
                || t.starts_with("Written by `history_notes`")
                || t.starts_with("Knowledge root: `")
                || t.starts_with("**Blocker:**")
        }
        Kind::Paths => t.starts_with("- `") || t.starts_with("**Blocker:**"),
        Kind::Blocker => t.starts_with("Phase 0.5 could not read model PR history"),
        Kind::Framework => {
            known_sub && (t.starts_with('|') || t.starts_with('`') || t.starts_with("(none found)"))
                || t.starts_with("Document title: ")
        }
        Kind::Risks => {
            t.starts_with("Sentences of the history documents") || t.starts_with("(none named")
        }
        Kind::Vanished => t.starts_with("Cards of PRs that the documents read"),
        Kind::Decisions => {
            t.starts_with("Fill in as the loop uses this history")
                || t.starts_with("| Item | Decision it influences")
                || t.starts_with("|---")
                || t.replace([' ', '|'], "").is_empty() && t.starts_with('|')
                || t.starts_with("| (none yet) |")
        }
        Kind::Free => false,
    }
}

impl Previous {
    /// Parse notes written before (by this tool, then edited by the agent).
    pub(super) fn parse(text: &str) -> Previous {
        let mut p = Previous::default();
        let mut kind = Kind::Preamble;
        let mut heading = String::new();
        let mut known_sub = true;
        let mut blocker_para_done = false;
        let mut blocker_seen_text = false;
        let mut card: Option<(bool, String, Card)> = None;
        let mut extras: Vec<String> = Vec::new();
        let mut free: Option<(String, Vec<String>)> = None;
        let flush_card = |p: &mut Previous, card: &mut Option<(bool, String, Card)>| {
            if let Some((risk, key, c)) = card.take() {
                let list = if risk {
                    &mut p.risk_cards
                } else {
                    &mut p.pr_cards
                };
                match list.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, prev)) => prev.absorb(c),
                    None => list.push((key, c)),
                }
            }
        };
        for line in text.lines() {
            if line.starts_with("## ") {
                flush_card(&mut p, &mut card);
                p.close_section(kind, &heading, std::mem::take(&mut extras));
                if let Some(f) = free.take() {
                    p.free_sections.push(f);
                }
                kind = kind_of(line);
                heading = line.trim().to_string();
                known_sub = true;
                blocker_para_done = false;
                blocker_seen_text = false;
                if kind == Kind::Free {
                    free = Some((heading.clone(), vec![]));
                }
                continue;
            }
            if let Some((_, body)) = free.as_mut() {
                body.push(line.to_string());
                continue;
            }
            let card_section = matches!(kind, Kind::Framework | Kind::Risks | Kind::Vanished);
            if line.starts_with("#### ")
                && card_section
                && let Some(key) = card_key(line)
            {
                flush_card(&mut p, &mut card);
                let c = Card {
                    heading: line.trim().to_string(),
                    ..Default::default()
                };
                card = Some((kind == Kind::Risks, key, c));
                continue;
            }
            if line.starts_with("### ") && kind == Kind::Framework {
                flush_card(&mut p, &mut card);
                known_sub = [
                    "### Source files mentioned",
                    "### Symbols mentioned",
                    "### PR items",
                ]
                .iter()
                .any(|k| line.starts_with(k));
                if !known_sub {
                    push_extra(&mut extras, line);
                }
                continue;
            }
            if let Some((risk, _, c)) = card.as_mut() {
                c.take_line(*risk, line);
                continue;
            }
            if kind == Kind::Blocker && !blocker_para_done {
                if line.trim().is_empty() {
                    blocker_para_done = blocker_seen_text;
                } else {
                    blocker_seen_text = true;
                }
                continue;
            }
            if kind == Kind::Decisions
                && line.trim_start().starts_with('|')
                && !generated_in(kind, line, known_sub)
            {
                p.table_rows.push(line.trim().to_string());
                continue;
            }
            if !generated_in(kind, line, known_sub) {
                push_extra(&mut extras, line);
            }
        }
        flush_card(&mut p, &mut card);
        p.close_section(kind, &heading, extras);
        if let Some(f) = free.take() {
            p.free_sections.push(f);
        }
        p
    }

    fn close_section(&mut self, kind: Kind, heading: &str, extras: Vec<String>) {
        let extras = trimmed(&extras).to_vec();
        if extras.is_empty() {
            return;
        }
        if kind == Kind::Preamble {
            self.preamble = extras;
        } else {
            self.section_extras.push((heading.to_string(), extras));
        }
    }

    /// Lines the agent added at the top of the notes (emitted after the generated header).
    pub(super) fn take_preamble(&mut self) -> Vec<String> {
        std::mem::take(&mut self.preamble)
    }

    /// Lines the agent added to the generated section `heading` (emitted at its end).
    pub(super) fn take_section_extras(&mut self, heading: &str) -> Vec<String> {
        let key = heading.trim();
        let mut out = Vec::new();
        self.section_extras.retain(|(h, v)| {
            // A framework section's heading carries the document path; match on its name.
            let same = h == key
                || (kind_of(h) == Kind::Framework
                    && kind_of(key) == Kind::Framework
                    && h.split(" history: ").next() == key.split(" history: ").next());
            if same {
                out.extend(v.iter().cloned());
            }
            !same
        });
        if !out.is_empty() {
            self.report.kept_sections.push(key.to_string());
        }
        out
    }

    fn take_card(list: &mut Vec<(String, Card)>, key: &str) -> Option<Card> {
        let i = list.iter().position(|(k, _)| k == key)?;
        Some(list.remove(i).1)
    }

    /// Whether the previous notes hold agent content for this PR (its card or its risk card).
    pub(super) fn has_pr_content(&self, key: &str) -> bool {
        self.pr_cards
            .iter()
            .chain(&self.risk_cards)
            .any(|(k, c)| k == key && c.has_content())
    }

    /// Write a card of this run (a PR card, or with `risk` a validation-risk card): the
    /// regenerated lines, then what the agent wrote under the same PR's card before.
    pub(super) fn write_card(
        &mut self,
        out: &mut String,
        key: &str,
        heading: &str,
        generated: &[String],
        risk: bool,
    ) {
        let list = if risk {
            &mut self.risk_cards
        } else {
            &mut self.pr_cards
        };
        let prev = Self::take_card(list, key);
        let (slot, todo) = slot_of(risk);
        write_card(out, heading, generated, None, prev.as_ref(), slot, todo);
        self.note_card(key, prev.as_ref(), risk);
    }

    fn note_card(&mut self, key: &str, prev: Option<&Card>, risk: bool) {
        let Some(c) = prev else { return };
        if c.slot.is_some() {
            if risk {
                self.report.kept_validation_plans.push(key.to_string());
            } else {
                self.report.kept_decision_count += 1;
                self.report.kept_decisions.push(key.to_string());
            }
        }
        if (!c.before.is_empty() || !c.after.is_empty())
            && !self.report.kept_card_notes.iter().any(|k| k == key)
        {
            self.report.kept_card_notes.push(key.to_string());
        }
    }

    /// A card of the earlier notes written again as it was, with a status line.
    fn write_kept_card(&mut self, out: &mut String, key: &str, c: &Card, status: &str, risk: bool) {
        let (slot, todo) = slot_of(risk);
        write_card(
            out,
            &c.heading,
            &c.generated,
            Some(status),
            Some(c),
            slot,
            todo,
        );
        self.note_card(key, Some(c), risk);
    }

    /// Risk cards with a filled plan (or notes) whose risk the documents no longer name:
    /// kept under "Validation risks" with their old lines and a status line.
    pub(super) fn write_orphan_risk_cards(&mut self, out: &mut String, status: &str) {
        let cards: Vec<(String, Card)> = std::mem::take(&mut self.risk_cards)
            .into_iter()
            .filter(|(_, c)| c.has_content())
            .collect();
        for (key, c) in cards {
            self.write_kept_card(out, &key, &c, status, true);
        }
    }

    /// The section of PR cards the documents read no longer mention (empty when none).
    pub(super) fn write_vanished_cards(&mut self, out: &mut String, status: &str) {
        let cards = std::mem::take(&mut self.pr_cards);
        if cards.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "{VANISHED_HEADING}\n\nCards of PRs that the documents read by this run no longer mention, kept from the earlier notes.\n"
        );
        for (key, c) in cards {
            self.write_kept_card(out, &key, &c, status, false);
            self.report.no_longer_in_source.push(key);
        }
    }

    /// Drop the PR cards without agent text whose PR is still in the documents read (listed
    /// past `max_prs`): they are regenerated when listed again, not "no longer in the source".
    pub(super) fn forget_unfilled_cards(&mut self, in_source: &std::collections::BTreeSet<String>) {
        self.pr_cards
            .retain(|(k, c)| c.has_content() || !in_source.contains(k));
    }

    /// Filled rows of the decisions table.
    pub(super) fn take_table_rows(&mut self) -> Vec<String> {
        let rows = std::mem::take(&mut self.table_rows);
        self.report.kept_table_rows = rows.len();
        rows
    }

    /// Sections the agent added, verbatim, and extras of generated sections the new notes
    /// do not have (under their old heading).
    pub(super) fn write_free_sections(&mut self, out: &mut String) {
        let extras = std::mem::take(&mut self.section_extras);
        for (h, mut v) in extras {
            v.insert(0, String::new());
            let old = h.trim_start_matches("## ").replace('`', "");
            self.free_sections
                .push((format!("## {KEPT_PREFIX} {old}"), v));
        }
        for (h, body) in std::mem::take(&mut self.free_sections) {
            let _ = writeln!(out, "{h}");
            for l in trimmed(&body) {
                let _ = writeln!(out, "{l}");
            }
            let _ = writeln!(out);
            self.report.kept_sections.push(h);
        }
    }
}

/// A card of a first run (or `overwrite: true`): generated lines and the empty slot.
pub(super) fn write_fresh_card(out: &mut String, heading: &str, generated: &[String], risk: bool) {
    let (slot, todo) = slot_of(risk);
    write_card(out, heading, generated, None, None, slot, todo);
}

/// The slot line of a card and its placeholder: a risk card's validation plan, else the
/// decision a PR influences.
fn slot_of(risk: bool) -> (&'static str, &'static str) {
    if risk {
        (VALIDATE_SLOT, VALIDATE_TODO)
    } else {
        (DECISION_SLOT, DECISION_TODO)
    }
}

fn write_card(
    out: &mut String,
    heading: &str,
    generated: &[String],
    status: Option<&str>,
    prev: Option<&Card>,
    slot: &str,
    todo: &str,
) {
    let _ = writeln!(out, "{heading}\n");
    for l in generated {
        let _ = writeln!(out, "{l}");
    }
    if let Some(s) = status {
        let _ = writeln!(out, "{STATUS_PREFIX} {s}");
    }
    if let Some(c) = prev {
        for l in trimmed(&c.before) {
            let _ = writeln!(out, "{l}");
        }
    }
    let value = prev.and_then(|c| c.slot.as_deref()).unwrap_or(todo);
    let _ = writeln!(out, "{slot} {value}");
    if let Some(c) = prev {
        for l in trimmed(&c.after) {
            let _ = writeln!(out, "{l}");
        }
    }
    let _ = writeln!(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_lines_of_a_blocker_section_survive_two_regenerations() {
        let blocked = "# Model PR history notes: m\n\nWritten by `history_notes` at t.\n\n## Blocker\n\nknowledge root /x does not exist\n\nPhase 0.5 could not read model PR history. The campaign continues.\n\nFound later: vllm#123 fused the norm.\n\n## Decisions influenced\n\n| Item | Decision it influences | Round |\n|---|---|---|\n| (none yet) | | |\n";
        // Re-run still blocked: the lines stay in the Blocker section.
        let mut p = Previous::parse(blocked);
        assert_eq!(
            p.take_section_extras("## Blocker"),
            vec!["Found later: vllm#123 fused the norm."]
        );
        // Re-run with the history read: no Blocker section, so they become a section of
        // their own, which a further re-run keeps verbatim.
        let mut p = Previous::parse(blocked);
        let mut out = String::new();
        p.write_free_sections(&mut out);
        assert_eq!(
            out,
            "## Kept from the earlier notes: Blocker\n\nFound later: vllm#123 fused the norm.\n\n"
        );
        let mut again = Previous::parse(&format!("# Model PR history notes: m\n\n{out}"));
        let mut out2 = String::new();
        again.write_free_sections(&mut out2);
        assert_eq!(out2, out);
    }

    #[test]
    fn card_keys_and_slots() {
        assert_eq!(
            card_key("#### vllm-project/vllm#8343 — [Feature] x"),
            Some("vllm-project/vllm#8343".into())
        );
        assert_eq!(
            card_key("#### sgl-cookbook#100"),
            Some("sgl-cookbook#100".into())
        );
        assert_eq!(card_key("#### My thoughts on #12"), None);
        assert_eq!(
            filled("- Decision it influences: _to fill in (x)_", DECISION_SLOT),
            Some(None)
        );
        assert_eq!(
            filled(
                "- Decision it influences: patch target of round 2",
                DECISION_SLOT
            ),
            Some(Some("patch target of round 2".into()))
        );
    }
}
