//! `history_notes` (Phase 0.5): the model-PR-history gate.
//!
//! A knowledge root is laid out like BBuf's `model-pr-optimization-history`:
//! `<root>/<framework>/<family>/README.en.md` (and `README.zh.md`) per framework
//! (`vllm`, `sglang`, ...) and `<root>/scripts/query.py`. The tool finds the model's
//! family (exact slug, fuzzy prefix match, then the query script when python3 is on
//! PATH), reads the vLLM history (and SGLang's when SGLang is compared or leads),
//! extracts PR numbers, source files and symbols, and scaffolds
//! `history/model-pr-history-notes.md` with one "decision it influences" slot per PR and a
//! "Validation risks" section (the sentences that name accuracy, revert, breakage,
//! numerics, hardware or dtype risks, with a "how we will validate" slot each).
//! A missing root is written into the notes as a blocker; the campaign continues.
//! A re-run merges: the scaffold is regenerated and the agent's text is carried over
//! ([`merge`]); `overwrite: true` regenerates from scratch.

mod extract;
mod merge;
mod risks;

use anyhow::Result;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use vllm_sota_core::fsx;
use vllm_sota_core::layout::{CampaignPaths, now_rfc3339};
use vllm_sota_core::md::{self, Align};
use vllm_sota_core::results::{CandidateRow, RankingMetric, compare_rank};
use vllm_sota_core::{Tool, ToolContext};

use crate::records;
pub(crate) use extract::match_family;
use extract::{PrKey, extract, families, query_script_family};
pub use merge::MergeReport;
use merge::Previous;
pub use risks::ValidationRisk;

/// Environment variable naming the default knowledge root.
pub(crate) const KNOWLEDGE_ROOT_ENV: &str = "MODEL_PR_HISTORY_ROOT";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    #[default]
    En,
    Zh,
}

fn yes() -> bool {
    true
}

/// Request of `history_notes`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryNotesRequest {
    /// Campaign run directory (holds campaign.json).
    pub campaign_dir: PathBuf,
    /// The knowledge root (a `model-pr-optimization-history` directory). Default: $MODEL_PR_HISTORY_ROOT.
    #[serde(default)]
    pub knowledge_root: Option<PathBuf>,
    /// Family folder name to use instead of matching, e.g. `llama31`.
    #[serde(default)]
    pub family: Option<String>,
    /// Read SGLang's history too. Default: when SGLang is in campaign.json's frameworks or leads a scenario.
    #[serde(default)]
    pub include_sglang: Option<bool>,
    /// Which README to read first: `en` (default) or `zh`; the other is the fallback.
    #[serde(default)]
    pub lang: Lang,
    /// Ask `scripts/query.py` (python3) when slug and fuzzy matching fail (default true).
    #[serde(default = "yes")]
    pub use_query_script: bool,
    /// Regenerate notes already written from scratch, dropping what the agent wrote there.
    /// Default false: a re-run merges (the scaffold is regenerated, the agent's text kept).
    #[serde(default)]
    pub overwrite: bool,
    /// At most this many PR items per framework in the notes (default 60).
    #[serde(default)]
    pub max_prs: Option<usize>,
}

/// A PR mentioned in a history document.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PrItem {
    /// `owner/repo` (or the prefix used in the text, e.g. `sgl-cookbook`).
    pub repo: String,
    pub number: u64,
    pub title: Option<String>,
    pub mentions: u32,
    pub files: Vec<String>,
    pub symbols: Vec<String>,
}

/// One history document read.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DocRead {
    pub framework: String,
    /// Path relative to the knowledge root.
    pub path: String,
    pub lines: usize,
    pub pr_count: usize,
    pub file_count: usize,
    pub symbol_count: usize,
}

/// Report of `history_notes`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HistoryNotesReport {
    pub notes_path: String,
    /// `written` or `blocked` (the blocker is in the notes).
    pub status: String,
    pub blocker: Option<String>,
    pub knowledge_root: Option<String>,
    pub family: Option<String>,
    /// `request`, `exact`, `fuzzy` or `query.py`.
    pub match_method: Option<String>,
    pub docs_read: Vec<DocRead>,
    /// Most-mentioned PRs (at most 10; the notes list all up to max_prs).
    pub top_prs: Vec<PrItem>,
    /// Most-mentioned source files (at most 10).
    pub top_files: Vec<String>,
    /// Most-mentioned symbols (at most 10).
    pub top_symbols: Vec<String>,
    /// Sentences of the documents read that name a validation risk for a listed PR
    /// (keywords: `references/history-risk-keywords.json`); the notes' `## Validation risks`.
    pub validation_risks: Vec<ValidationRisk>,
    /// What was carried over from notes already written; absent on a first run or with
    /// `overwrite: true`.
    pub merged: Option<MergeReport>,
}

pub struct HistoryNotes;

impl Tool for HistoryNotes {
    const NAME: &'static str = "history_notes";
    const DESCRIPTION: &'static str = "Phase 0.5, the model-PR-history gate: find the model's family in a knowledge root laid out like BBuf's model-pr-optimization-history (<root>/vllm/<family>/README.en.md, <root>/sglang/<family>/..., scripts/query.py), read the vLLM history (and SGLang's when SGLang is compared or leads), and scaffold history/model-pr-history-notes.md with the paths read, PR numbers, source files and symbols mentioned, and a slot per PR for the decision it influences. It also lists, per PR card, the sentences of the history that name a validation risk (accuracy or correctness regressions, reverts, breakages, numerics, hardware- or dtype-specific guards; keywords in references/history-risk-keywords.json) with a slot for how the risk will be validated. A missing root or family is written into the notes as a blocker and the campaign continues. Run again on written notes, it merges: the scaffold is regenerated (new PRs, new documents) and every filled-in decision, validation plan, note under a card and section the agent added is kept, keyed by PR; cards of PRs no longer in the documents are kept and marked. overwrite: true regenerates from scratch.";
    type Request = HistoryNotesRequest;
    type Report = HistoryNotesReport;

    fn run(request: Self::Request, ctx: &ToolContext) -> Result<Self::Report> {
        run_history_notes(request, ctx)
    }

    fn markdown(r: &Self::Report) -> String {
        let mut s = format!(
            "# History notes: {}\n\nNotes: `{}`\n\n",
            r.status, r.notes_path
        );
        if let Some(b) = &r.blocker {
            let _ = writeln!(s, "**Blocker:** {b}\n");
        }
        if let (Some(f), Some(m)) = (&r.family, &r.match_method) {
            let _ = writeln!(
                s,
                "Family `{f}` ({m}) in `{}`.\n",
                r.knowledge_root.as_deref().unwrap_or("?")
            );
        }
        for d in &r.docs_read {
            let _ = writeln!(
                s,
                "- {} `{}`: {} lines, {} PRs, {} files, {} symbols",
                d.framework, d.path, d.lines, d.pr_count, d.file_count, d.symbol_count
            );
        }
        if !r.validation_risks.is_empty() {
            let prs: BTreeSet<&str> = r.validation_risks.iter().map(|v| v.pr.as_str()).collect();
            let _ = writeln!(
                s,
                "\nValidation risks: {} sentence(s) for {} PR(s): {}",
                r.validation_risks.len(),
                prs.len(),
                prs.into_iter().collect::<Vec<_>>().join(", ")
            );
        }
        if let Some(m) = &r.merged {
            let _ = writeln!(
                s,
                "\nMerged with the notes already written: kept {} filled-in decision(s){}; {} validation plan(s); notes under {} card(s); {} table row(s); {} section(s); {} card(s) no longer in the source{}.",
                m.kept_decision_count,
                if m.kept_decisions.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", m.kept_decisions.join(", "))
                },
                m.kept_validation_plans.len(),
                m.kept_card_notes.len(),
                m.kept_table_rows,
                m.kept_sections.len(),
                m.no_longer_in_source.len(),
                if m.no_longer_in_source.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", m.no_longer_in_source.join(", "))
                },
            );
        }
        if !r.top_prs.is_empty() {
            let _ = writeln!(
                s,
                "\nTop PRs: {}",
                r.top_prs
                    .iter()
                    .map(|p| format!("{}#{}", p.repo, p.number))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        s
    }
}

/// True when SGLang ranks first in any scenario of the fixed baseline.
fn sglang_leads(rows: &[CandidateRow]) -> bool {
    let mut by_sc: BTreeMap<&str, Vec<&CandidateRow>> = BTreeMap::new();
    for r in rows {
        by_sc.entry(r.scenario.as_str()).or_default().push(r);
    }
    by_sc.values_mut().any(|v| {
        v.sort_by(|a, b| compare_rank(a, b, RankingMetric::RequestThroughput));
        v.first().is_some_and(|r| r.framework == "sglang")
    })
}

/// One history document read, with what was extracted from it.
struct Doc {
    read: DocRead,
    title: String,
    ex: extract::Extracted,
    risks: Vec<(PrKey, ValidationRisk)>,
    risks_left_out: BTreeMap<PrKey, usize>,
}

fn key_str(k: &PrKey) -> String {
    format!("{}#{}", k.0, k.1)
}

fn card_heading(p: &PrItem) -> String {
    format!(
        "#### {}#{}{}",
        p.repo,
        p.number,
        p.title
            .as_ref()
            .map(|t| format!(" — {t}"))
            .unwrap_or_default()
    )
}

fn framework_label(fw: &str) -> &str {
    match fw {
        "vllm" => "vLLM",
        "sglang" => "SGLang",
        other => other,
    }
}

fn write_header(s: &mut String, campaign: &vllm_sota_core::layout::Campaign) {
    let _ = writeln!(s, "# Model PR history notes: {}\n", campaign.model);
    let _ = writeln!(
        s,
        "Written by `history_notes` at {}. Model family in campaign.json: `{}`; slug `{}`.\n",
        now_rfc3339(),
        campaign.model_family,
        campaign.model_slug
    );
}

fn write_lines(s: &mut String, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    for l in lines {
        let _ = writeln!(s, "{l}");
    }
    let _ = writeln!(s);
}

fn write_decisions_table(s: &mut String, prev: Option<&mut Previous>, empty_row: &str) {
    let (rows, extras) = match prev {
        Some(p) => (
            p.take_table_rows(),
            p.take_section_extras("## Decisions influenced"),
        ),
        None => (vec![], vec![]),
    };
    // The rows are lines kept verbatim from the earlier notes (the agent writes them), and
    // the placeholder row is the exact line the merge recognizes: only the header comes
    // from the table, so neither is re-escaped nor re-spaced.
    let header = md::Table::new(&[
        ("Item", Align::Left),
        ("Decision it influences", Align::Left),
        ("Round", Align::Left),
    ]);
    let _ = write!(
        s,
        "## Decisions influenced\n\nFill in as the loop uses this history (one row per decision).\n\n{}",
        header.render()
    );
    for r in &rows {
        let _ = writeln!(s, "{r}");
    }
    if rows.is_empty() {
        let _ = writeln!(s, "{empty_row}");
    }
    if !extras.is_empty() {
        let _ = writeln!(s);
        for l in &extras {
            let _ = writeln!(s, "{l}");
        }
    }
}

/// The status line of a card kept from earlier notes whose PR this run did not read.
fn vanished_status() -> String {
    format!(
        "not in the history documents read by `history_notes` at {}; kept from the earlier notes",
        now_rfc3339()
    )
}

/// Where the knowledge root and the family are, or the blocker (and the root, when known).
fn locate(
    req: &HistoryNotesRequest,
    campaign: &vllm_sota_core::layout::Campaign,
) -> std::result::Result<(PathBuf, String, &'static str), (String, Option<PathBuf>)> {
    let root = req
        .knowledge_root
        .clone()
        .or_else(|| std::env::var_os(KNOWLEDGE_ROOT_ENV).map(PathBuf::from));
    let Some(root) = root else {
        return Err((
            format!(
                "no knowledge root: pass knowledge_root or set ${KNOWLEDGE_ROOT_ENV} to a model-pr-optimization-history checkout"
            ),
            None,
        ));
    };
    if !root.is_dir() {
        return Err((
            format!("knowledge root {} does not exist", root.display()),
            Some(root),
        ));
    }
    let fams = families(&root);
    let vllm_folders = fams.get("vllm").cloned().unwrap_or_default();
    let mut all_folders: Vec<String> = fams.values().flatten().cloned().collect();
    all_folders.sort();
    all_folders.dedup();
    if let Some(f) = &req.family {
        if !all_folders.contains(f) {
            return Err((
                format!(
                    "family {f:?} (from the request) has no folder under {}",
                    root.display()
                ),
                Some(root),
            ));
        }
        return Ok((root, f.clone(), "request"));
    }
    let keys = vec![
        campaign.model_family.clone(),
        campaign.model_slug.clone(),
        vllm_sota_core::layout::slugify(&campaign.model),
    ];
    let folders = if vllm_folders.is_empty() {
        &all_folders
    } else {
        &vllm_folders
    };
    if let Some((f, m)) = match_family(&keys, folders) {
        return Ok((root, f, m));
    }
    let query = format!("{} {}", campaign.model_slug, campaign.model_family);
    match req
        .use_query_script
        .then(|| query_script_family(&root, &query))
        .flatten()
    {
        Some(f) => Ok((root, f, "query.py")),
        None => Err((
            format!(
                "no family folder matches model {:?} (family {:?}) under {} (vLLM folders: {}); pass family explicitly",
                campaign.model,
                campaign.model_family,
                root.display(),
                vllm_folders.join(", ")
            ),
            Some(root),
        )),
    }
}

/// Write the blocked notes (carrying what earlier notes held) and the blocked report.
fn write_blocked(
    notes_path: &Path,
    notes_rel: String,
    campaign: &vllm_sota_core::layout::Campaign,
    mut prev: Option<Previous>,
    blocker: String,
    root: Option<PathBuf>,
) -> Result<HistoryNotesReport> {
    let mut s = String::new();
    write_header(&mut s, campaign);
    if let Some(p) = prev.as_mut() {
        write_lines(&mut s, &p.take_preamble());
    }
    let _ = writeln!(s, "## Blocker\n\n{blocker}\n");
    let _ = writeln!(
        s,
        "Phase 0.5 could not read model PR history. The campaign continues without it: record here any PR evidence found later, and re-run `history_notes` with `knowledge_root` (or `family`) once the history is available.\n"
    );
    if let Some(p) = prev.as_mut() {
        write_lines(&mut s, &p.take_section_extras("## Blocker"));
        let status = vanished_status();
        let mut risks = String::new();
        p.write_orphan_risk_cards(&mut risks, &status);
        if !risks.is_empty() {
            let _ = writeln!(s, "## Validation risks\n\n{risks}");
        }
        p.write_vanished_cards(&mut s, &status);
        p.write_free_sections(&mut s);
    }
    write_decisions_table(&mut s, prev.as_mut(), "| (none yet) | | |");
    fsx::write_text(notes_path, &s)?;
    Ok(HistoryNotesReport {
        notes_path: notes_rel,
        status: "blocked".into(),
        blocker: Some(blocker),
        knowledge_root: root.map(|r| r.display().to_string()),
        family: None,
        match_method: None,
        docs_read: vec![],
        top_prs: vec![],
        top_files: vec![],
        top_symbols: vec![],
        validation_risks: vec![],
        merged: prev.map(|p| p.report),
    })
}

/// Read the family's history documents of each framework (first existing README in `order`).
fn read_docs(
    root: &Path,
    family: &str,
    frameworks: &[&str],
    order: [&str; 2],
    ctx: &ToolContext,
) -> Result<(Vec<Doc>, Vec<String>)> {
    let keywords = risks::load_keywords()?;
    let mut docs = Vec::new();
    let mut missing = Vec::new();
    for fw in frameworks {
        ctx.check_cancelled()?;
        let dir = root.join(fw).join(family);
        let Some(path) = order.iter().map(|f| dir.join(f)).find(|p| p.is_file()) else {
            missing.push(format!("{fw}/{family}/{{{}}}", order.join(",")));
            continue;
        };
        let text = fsx::read_text(&path)?;
        let ex = extract(&text, fw);
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let (risks, risks_left_out) = risks::scan(&text, fw, &rel, &keywords);
        let title = text
            .lines()
            .find(|l| l.starts_with("# "))
            .map(|l| l.trim_start_matches("# ").trim())
            .unwrap_or("")
            .to_string();
        docs.push(Doc {
            read: DocRead {
                framework: fw.to_string(),
                path: rel,
                lines: text.lines().count(),
                pr_count: ex.prs.len(),
                file_count: ex.files.len(),
                symbol_count: ex.symbols.len(),
            },
            title,
            ex,
            risks,
            risks_left_out,
        });
    }
    Ok((docs, missing))
}

/// The PR cards a document's section lists: the first `max_prs` by mentions, plus any PR
/// further down whose card in the earlier notes holds the agent's text.
fn listed_prs<'a>(doc: &'a Doc, max_prs: usize, prev: Option<&Previous>) -> Vec<&'a PrItem> {
    doc.ex
        .prs
        .iter()
        .enumerate()
        .filter(|(i, p)| {
            *i < max_prs
                || prev.is_some_and(|pv| pv.has_pr_content(&format!("{}#{}", p.repo, p.number)))
        })
        .map(|(_, p)| p)
        .collect()
}

fn pr_card_lines(p: &PrItem) -> Vec<String> {
    let link = if p.repo.contains('/') {
        format!("https://github.com/{}/pull/{}", p.repo, p.number)
    } else {
        format!("{}#{}", p.repo, p.number)
    };
    let mut lines = vec![
        format!("- Link: {link}"),
        format!("- Mentions in the document: {}", p.mentions),
    ];
    let list = |v: &[String]| {
        v.iter()
            .take(8)
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !p.files.is_empty() {
        lines.push(format!("- Files: {}", list(&p.files)));
    }
    if !p.symbols.is_empty() {
        lines.push(format!("- Symbols: {}", list(&p.symbols)));
    }
    lines
}

/// One framework's section: document title, file and symbol tables, and the PR cards.
fn write_doc_section(
    s: &mut String,
    doc: &Doc,
    listed: &[&PrItem],
    max_prs: usize,
    mut prev: Option<&mut Previous>,
) {
    let heading = format!(
        "## {} history: `{}`",
        framework_label(&doc.read.framework),
        doc.read.path
    );
    let _ = writeln!(s, "{heading}\n");
    if !doc.title.is_empty() {
        let _ = writeln!(s, "Document title: {}\n", doc.title);
    }
    let mut files = md::Table::new(&[("File", Align::Left), ("Mentions", Align::Left)]);
    for (f, n) in doc.ex.files.iter().take(30) {
        files.row(&[format!("`{f}`"), n.to_string()]);
    }
    let _ = write!(s, "### Source files mentioned\n\n{}", files.render());
    if files.is_empty() {
        // Written as is: a table row would space the empty cell differently.
        let _ = writeln!(s, "| (none found) | |");
    }
    let _ = writeln!(s, "\n### Symbols mentioned\n");
    if doc.ex.symbols.is_empty() {
        let _ = writeln!(s, "(none found)");
    } else {
        let list: Vec<String> = doc
            .ex
            .symbols
            .iter()
            .take(40)
            .map(|(s, n)| format!("`{s}` ({n})"))
            .collect();
        let _ = writeln!(s, "{}", list.join(", "));
    }
    let _ = writeln!(
        s,
        "\n### PR items ({} found{})\n",
        doc.ex.prs.len(),
        if doc.ex.prs.len() > max_prs {
            format!(", first {max_prs} by mentions")
        } else {
            String::new()
        }
    );
    for p in listed {
        let key = format!("{}#{}", p.repo, p.number);
        let heading = card_heading(p);
        let lines = pr_card_lines(p);
        match prev.as_deref_mut() {
            Some(pv) => pv.write_card(s, &key, &heading, &lines, false),
            None => merge::write_fresh_card(s, &heading, &lines, false),
        }
    }
    if let Some(pv) = prev {
        write_lines(s, &pv.take_section_extras(&heading));
    }
}

/// The `## Validation risks` section: per listed PR with risk sentences, a card with the
/// sentences, their document, and the "How we will validate" slot.
fn write_risk_section(
    s: &mut String,
    docs: &[Doc],
    listed: &BTreeMap<PrKey, &PrItem>,
    mut prev: Option<&mut Previous>,
) -> Vec<ValidationRisk> {
    let _ = writeln!(
        s,
        "## Validation risks\n\nSentences of the history documents that name a risk for a listed PR (accuracy or correctness regressions, reverts, breakages, numerics, hardware- or dtype-specific guards; keywords in `references/history-risk-keywords.json`). Read this section before picking a patch; fill in how each risk will be validated.\n"
    );
    let mut out = Vec::new();
    let start = s.len();
    for doc in docs {
        let mut order: Vec<&PrKey> = Vec::new();
        for (k, _) in &doc.risks {
            if listed.contains_key(k) && !order.contains(&k) {
                order.push(k);
            }
        }
        for k in order {
            let mut lines = Vec::new();
            for (_, r) in doc.risks.iter().filter(|(rk, _)| rk == k) {
                lines.push(format!(
                    "- Risk ({}; {}): \"{}\" — `{}`",
                    r.categories.join(", "),
                    r.terms.join(", "),
                    r.sentence,
                    r.doc
                ));
                out.push(r.clone());
            }
            if let Some(n) = doc.risks_left_out.get(k) {
                lines.push(format!(
                    "- Risks left out: {n} more sentence(s) in `{}` (at most {} per PR)",
                    doc.read.path,
                    risks::MAX_PER_PR
                ));
            }
            let heading = card_heading(listed[k]);
            match prev.as_deref_mut() {
                Some(pv) => pv.write_card(s, &key_str(k), &heading, &lines, true),
                None => merge::write_fresh_card(s, &heading, &lines, true),
            }
        }
    }
    if let Some(pv) = prev.as_deref_mut() {
        pv.write_orphan_risk_cards(
            s,
            "the history documents read no longer name this risk; kept from the earlier notes",
        );
    }
    if s.len() == start {
        let _ = writeln!(s, "(none named by the history documents read)\n");
    }
    if let Some(pv) = prev {
        write_lines(s, &pv.take_section_extras("## Validation risks"));
    }
    out
}

pub(crate) fn run_history_notes(
    req: HistoryNotesRequest,
    ctx: &ToolContext,
) -> Result<HistoryNotesReport> {
    let paths = CampaignPaths::open(&req.campaign_dir)?;
    let campaign = paths.campaign()?;
    let notes_path = paths.history_notes();
    let mut prev = if !req.overwrite && CampaignPaths::is_written(&notes_path) {
        Some(Previous::parse(&fsx::read_text(&notes_path)?))
    } else {
        None
    };
    let notes_rel = records::relative(&paths, &notes_path);
    let (root, family, method) = match locate(&req, &campaign) {
        Ok(found) => found,
        Err((blocker, root)) => {
            return write_blocked(&notes_path, notes_rel, &campaign, prev, blocker, root);
        }
    };
    ctx.progress(1.0, Some(3.0), "family matched");

    let include_sglang = req.include_sglang.unwrap_or_else(|| {
        let baseline = records::read_rows(&paths.candidates()).unwrap_or_default();
        campaign.frameworks.iter().any(|f| f == "sglang") || sglang_leads(&baseline)
    });
    let mut frameworks = vec!["vllm"];
    if include_sglang {
        frameworks.push("sglang");
    }
    let max_prs = req.max_prs.unwrap_or(60);
    let (docs, missing) = read_docs(&root, &family, &frameworks, req.lang.readme_order(), ctx)?;
    ctx.progress(2.0, Some(3.0), "history read");

    let blocker = (!missing.is_empty())
        .then(|| format!("missing history document(s): {}", missing.join(", ")));
    let mut s = String::new();
    write_header(&mut s, &campaign);
    if let Some(p) = prev.as_mut() {
        write_lines(&mut s, &p.take_preamble());
    }
    let source = Source {
        root: &root,
        family: &family,
        method,
        include_sglang,
    };
    write_paths_read(&mut s, &source, &docs, blocker.as_deref());
    if let Some(p) = prev.as_mut() {
        write_lines(&mut s, &p.take_section_extras("## Paths read"));
    }
    let listed = write_doc_sections(&mut s, &docs, max_prs, prev.as_mut());
    let validation_risks = write_risk_section(&mut s, &docs, &listed, prev.as_mut());
    if let Some(p) = prev.as_mut() {
        write_carried_over(&mut s, p, &docs);
    }
    write_decisions_table(&mut s, prev.as_mut(), "| | | |");
    fsx::write_text(&notes_path, &s)?;
    ctx.progress(3.0, Some(3.0), "notes written");

    let totals = Totals::of(docs);
    let status = if totals.docs_read.is_empty() {
        "blocked"
    } else {
        "written"
    };
    Ok(HistoryNotesReport {
        notes_path: notes_rel,
        status: status.into(),
        blocker,
        knowledge_root: Some(root.display().to_string()),
        family: Some(family),
        match_method: Some(method.into()),
        docs_read: totals.docs_read,
        top_prs: totals.top_prs,
        top_files: totals.top_files,
        top_symbols: totals.top_symbols,
        validation_risks,
        merged: prev.map(|p| p.report),
    })
}

impl Lang {
    /// The READMEs to read, preferred language first.
    fn readme_order(self) -> [&'static str; 2] {
        match self {
            Lang::En => ["README.en.md", "README.zh.md"],
            Lang::Zh => ["README.zh.md", "README.en.md"],
        }
    }
}

/// Where the history was read from.
struct Source<'a> {
    root: &'a Path,
    family: &'a str,
    /// How the family was matched.
    method: &'a str,
    include_sglang: bool,
}

/// The knowledge root line and the `## Paths read` section (with the missing-document
/// blocker, when any).
fn write_paths_read(s: &mut String, src: &Source, docs: &[Doc], blocker: Option<&str>) {
    let _ = writeln!(
        s,
        "Knowledge root: `{}`; family `{}` (matched by {}). SGLang history {}.\n",
        src.root.display(),
        src.family,
        src.method,
        if src.include_sglang {
            "included"
        } else {
            "not included (SGLang neither compared nor leading)"
        }
    );
    let _ = writeln!(s, "## Paths read\n");
    for d in docs {
        let d = &d.read;
        let _ = writeln!(
            s,
            "- `{}` ({} lines): {} PRs, {} source files, {} symbols",
            d.path, d.lines, d.pr_count, d.file_count, d.symbol_count
        );
    }
    if let Some(b) = blocker {
        let _ = writeln!(s, "\n**Blocker:** {b}");
    }
    let _ = writeln!(s);
}

/// One section per document read; returns the PRs listed with a card, first document first.
fn write_doc_sections<'a>(
    s: &mut String,
    docs: &'a [Doc],
    max_prs: usize,
    mut prev: Option<&mut Previous>,
) -> BTreeMap<PrKey, &'a PrItem> {
    let mut listed: BTreeMap<PrKey, &PrItem> = BTreeMap::new();
    for doc in docs {
        let cards = listed_prs(doc, max_prs, prev.as_deref());
        write_doc_section(s, doc, &cards, max_prs, prev.as_deref_mut());
        for p in cards {
            listed.entry((p.repo.clone(), p.number)).or_insert(p);
        }
    }
    listed
}

/// What is left of the earlier notes after the regenerated sections: cards whose PRs
/// vanished from the documents, and the sections the agent added.
fn write_carried_over(s: &mut String, p: &mut Previous, docs: &[Doc]) {
    // PRs still in the documents but past max_prs, with nothing written: not vanished.
    let in_source: BTreeSet<String> = docs
        .iter()
        .flat_map(|d| d.ex.prs.iter().map(|p| format!("{}#{}", p.repo, p.number)))
        .collect();
    p.forget_unfilled_cards(&in_source);
    p.write_vanished_cards(s, &vanished_status());
    p.write_free_sections(s);
}

/// What the report lists of the documents read.
struct Totals {
    docs_read: Vec<DocRead>,
    /// The 10 most-mentioned PRs.
    top_prs: Vec<PrItem>,
    /// The 10 most-mentioned source files.
    top_files: Vec<String>,
    /// The 10 most-mentioned symbols.
    top_symbols: Vec<String>,
}

impl Totals {
    fn of(docs: Vec<Doc>) -> Self {
        let mut all_prs: Vec<PrItem> = Vec::new();
        let mut all_files: BTreeMap<String, u32> = BTreeMap::new();
        let mut all_symbols: BTreeMap<String, u32> = BTreeMap::new();
        let mut docs_read = Vec::new();
        for d in docs {
            for (f, n) in &d.ex.files {
                *all_files.entry(f.clone()).or_default() += n;
            }
            for (s, n) in &d.ex.symbols {
                *all_symbols.entry(s.clone()).or_default() += n;
            }
            all_prs.extend(d.ex.prs);
            docs_read.push(d.read);
        }
        all_prs.sort_by(|a, b| b.mentions.cmp(&a.mentions).then(a.number.cmp(&b.number)));
        let top = |m: BTreeMap<String, u32>| {
            let mut v: Vec<(String, u32)> = m.into_iter().collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            v.into_iter().take(10).map(|(k, _)| k).collect::<Vec<_>>()
        };
        Totals {
            docs_read,
            top_prs: all_prs.into_iter().take(10).collect(),
            top_files: top(all_files),
            top_symbols: top(all_symbols),
        }
    }
}
