//! `history_notes` (Phase 0.5): the model-PR-history gate.
//!
//! A knowledge root is laid out like BBuf's `model-pr-optimization-history`:
//! `<root>/<framework>/<family>/README.en.md` (and `README.zh.md`) per framework
//! (`vllm`, `sglang`, ...) and `<root>/scripts/query.py`. The tool finds the model's
//! family (exact slug, fuzzy prefix match, then the query script when python3 is on
//! PATH), reads the vLLM history (and SGLang's when SGLang is compared or leads),
//! extracts PR numbers, source files and symbols, and scaffolds
//! `history/model-pr-history-notes.md` with one "decision it influences" slot per PR.
//! A missing root is written into the notes as a blocker; the campaign continues.

use anyhow::Result;
use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;
use vllm_sota_core::fsx;
use vllm_sota_core::layout::{CampaignPaths, now_rfc3339};
use vllm_sota_core::results::{CandidateRow, RankingMetric, compare_rank};
use vllm_sota_core::{Tool, ToolContext};

use crate::records;
use vllm_sota_core::proc;

/// Environment variable naming the default knowledge root.
pub const KNOWLEDGE_ROOT_ENV: &str = "MODEL_PR_HISTORY_ROOT";

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
    /// Regenerate notes that were already written (filled-in decisions would be lost). Default false.
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
}

pub struct HistoryNotes;

impl Tool for HistoryNotes {
    const NAME: &'static str = "history_notes";
    const DESCRIPTION: &'static str = "Phase 0.5, the model-PR-history gate: find the model's family in a knowledge root laid out like BBuf's model-pr-optimization-history (<root>/vllm/<family>/README.en.md, <root>/sglang/<family>/..., scripts/query.py), read the vLLM history (and SGLang's when SGLang is compared or leads), and scaffold history/model-pr-history-notes.md with the paths read, PR numbers, source files and symbols mentioned, and a slot per PR for the decision it influences. A missing root or family is written into the notes as a blocker and the campaign continues. Refuses to overwrite notes already written unless overwrite is true.";
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

/// Normalize like the knowledge root's folder names: lowercase, runs of non-alphanumerics → `-`.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

fn alnum(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

/// Framework folders that exist in the root (`vllm`, `sglang`, ...), and their family folders.
fn families(root: &Path) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for fw in ["vllm", "sglang", "tensorrt_llm", "tokenspeed"] {
        let mut names: Vec<String> = std::fs::read_dir(root.join(fw))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect();
        names.sort();
        if !names.is_empty() {
            out.insert(fw.to_string(), names);
        }
    }
    out
}

/// Match a family folder: exact slug, then fuzzy (a folder name that is a prefix of the model
/// name with punctuation removed, longest wins; or the family key a prefix of one folder only).
pub fn match_family(keys: &[String], folders: &[String]) -> Option<(String, &'static str)> {
    for k in keys {
        let k = slug(k);
        if let Some(f) = folders.iter().find(|f| **f == k) {
            return Some((f.clone(), "exact"));
        }
    }
    let mut best: Option<(usize, &String)> = None;
    let mut tie = false;
    for k in keys {
        let nk = alnum(k);
        if nk.len() < 3 {
            continue;
        }
        for f in folders {
            let nf = alnum(f);
            let score = if nk.starts_with(&nf) && nf.len() >= 3 {
                1000 + nf.len()
            } else {
                0
            };
            if score == 0 {
                continue;
            }
            match best {
                Some((s, b)) if s == score && b != f => tie = true,
                Some((s, _)) if s >= score => {}
                _ => {
                    best = Some((score, f));
                    tie = false;
                }
            }
        }
    }
    if let (Some((_, f)), false) = (best, tie) {
        return Some((f.clone(), "fuzzy"));
    }
    // A short family key ("llama") that prefixes exactly one folder.
    for k in keys {
        let nk = alnum(k);
        if nk.len() < 3 {
            continue;
        }
        let hits: Vec<&String> = folders
            .iter()
            .filter(|f| alnum(f).starts_with(&nk))
            .collect();
        if hits.len() == 1 {
            return Some((hits[0].clone(), "fuzzy"));
        }
    }
    None
}

/// Ask `scripts/query.py` for the best vLLM family; parses its `## vllm/<family> (...)` lines.
fn query_script_family(root: &Path, query: &str) -> Option<String> {
    let script = root.join("scripts/query.py");
    if !script.is_file() || !proc::on_path("python3") {
        return None;
    }
    let out = proc::Cmd::new("python3")
        .arg(&script)
        .args(["--framework", "vllm", "--limit", "1"])
        .arg(query)
        .current_dir(root)
        .run_capture(Duration::from_secs(30))
        .ok()?;
    if !out.success() {
        tracing::warn!(stderr = %proc::tail(&out.stderr, 500), "query.py failed");
        return None;
    }
    out.stdout.lines().find_map(|l| {
        let rest = l.strip_prefix("## vllm/")?;
        Some(
            rest.split(|c: char| c.is_whitespace() || c == '(')
                .next()?
                .to_string(),
        )
    })
}

struct Extracted {
    prs: Vec<PrItem>,
    files: Vec<(String, u32)>,
    symbols: Vec<(String, u32)>,
}

fn regexes() -> &'static [Regex; 5] {
    static R: OnceLock<[Regex; 5]> = OnceLock::new();
    R.get_or_init(|| {
        [
            // 0: a PR card heading: "### PR #8343 - title"
            Regex::new(r"^#{2,4}\s*PR\s+#(\d+)\s*[-–—:]?\s*(.*)$").unwrap(),
            // 1: linked PR: [#8343](https://github.com/owner/repo/pull/8343)
            Regex::new(r"https://github\.com/([\w.-]+/[\w.-]+)/pull/(\d+)").unwrap(),
            // 2: bare or prefixed PR reference: `#12345`, sgl-cookbook#100
            Regex::new(r"(?:^|[^\w#/&])([A-Za-z][\w.-]*)?#(\d{3,6})\b").unwrap(),
            // 3: a backticked source path
            Regex::new(r"`([\w./-]+/[\w.-]+\.(?:py|pyi|cu|cuh|cpp|cc|c|h|hpp|jinja|yaml|yml|json|toml|sh|rs|txt|md))`").unwrap(),
            // 4: "symbols: a, b" lists and "touching `sym`"
            Regex::new(r"(?:symbols:\s*([\w., ]+))|(?:touching `([\w.]+)`)").unwrap(),
        ]
    })
}

fn default_repo(framework: &str) -> &'static str {
    match framework {
        "vllm" => "vllm-project/vllm",
        "sglang" => "sgl-project/sglang",
        "tensorrt_llm" => "NVIDIA/TensorRT-LLM",
        _ => "unknown",
    }
}

/// Extract PRs (with per-card files and symbols), files and symbols from one history document.
fn extract(text: &str, framework: &str) -> Extracted {
    let [card, link, bare, file, sym] = regexes();
    let mut prs: BTreeMap<(String, u64), PrItem> = BTreeMap::new();
    let mut files: BTreeMap<String, u32> = BTreeMap::new();
    let mut symbols: BTreeMap<String, u32> = BTreeMap::new();
    let mut current_card: Option<(String, u64)> = None;
    let add = |prs: &mut BTreeMap<(String, u64), PrItem>,
               repo: String,
               number: u64,
               title: Option<String>| {
        let e = prs.entry((repo.clone(), number)).or_insert(PrItem {
            repo,
            number,
            title: None,
            mentions: 0,
            files: vec![],
            symbols: vec![],
        });
        e.mentions += 1;
        if e.title.is_none() {
            e.title = title.filter(|t| !t.is_empty());
        }
    };
    for line in text.lines() {
        if line.starts_with("#")
            && !line.starts_with("#### ")
            && !line.trim_start_matches('#').trim_start().starts_with("PR ")
        {
            current_card = None;
        }
        if let Some(c) = card.captures(line) {
            let n: u64 = c[1].parse().unwrap_or(0);
            let key = (default_repo(framework).to_string(), n);
            add(&mut prs, key.0.clone(), n, Some(c[2].trim().to_string()));
            current_card = Some(key);
            continue;
        }
        let mut linked = std::collections::BTreeSet::new();
        for c in link.captures_iter(line) {
            let n: u64 = c[2].parse().unwrap_or(0);
            linked.insert(n);
            add(&mut prs, c[1].to_string(), n, None);
        }
        for c in bare.captures_iter(line) {
            let n: u64 = c[2].parse().unwrap_or(0);
            if linked.contains(&n) {
                continue;
            }
            let repo = c
                .get(1)
                .map(|m| m.as_str().to_string())
                .unwrap_or_else(|| default_repo(framework).to_string());
            add(&mut prs, repo, n, None);
        }
        for c in file.captures_iter(line) {
            let f = c[1].to_string();
            *files.entry(f.clone()).or_default() += 1;
            if let Some(item) = current_card.as_ref().and_then(|k| prs.get_mut(k))
                && !item.files.contains(&f)
            {
                item.files.push(f);
            }
        }
        for c in sym.captures_iter(line) {
            let list: Vec<String> = if let Some(m) = c.get(1) {
                m.as_str()
                    .split(',')
                    .map(|s| s.trim().trim_end_matches('.').to_string())
                    .filter(|s| !s.is_empty() && !s.contains(' ') && s != "touching")
                    .collect()
            } else {
                vec![c[2].to_string()]
            };
            for s in list {
                *symbols.entry(s.clone()).or_default() += 1;
                if let Some(item) = current_card.as_ref().and_then(|k| prs.get_mut(k))
                    && !item.symbols.contains(&s)
                {
                    item.symbols.push(s);
                }
            }
        }
    }
    let mut prs: Vec<PrItem> = prs.into_values().collect();
    prs.sort_by(|a, b| b.mentions.cmp(&a.mentions).then(a.number.cmp(&b.number)));
    let mut files: Vec<(String, u32)> = files.into_iter().collect();
    files.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut symbols: Vec<(String, u32)> = symbols.into_iter().collect();
    symbols.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Extracted {
        prs,
        files,
        symbols,
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

pub fn run_history_notes(
    req: HistoryNotesRequest,
    ctx: &ToolContext,
) -> Result<HistoryNotesReport> {
    let paths = CampaignPaths::open(&req.campaign_dir)?;
    let campaign = paths.campaign()?;
    let notes_path = paths.history_notes();
    if !req.overwrite && CampaignPaths::is_written(&notes_path) {
        anyhow::bail!(
            "{} is already written; pass overwrite: true to regenerate it (decisions filled in there would be lost)",
            notes_path.display()
        );
    }
    let notes_rel = records::relative(&paths, &notes_path);
    let root = req
        .knowledge_root
        .clone()
        .or_else(|| std::env::var_os(KNOWLEDGE_ROOT_ENV).map(PathBuf::from));
    let header = |s: &mut String| {
        let _ = writeln!(s, "# Model PR history notes: {}\n", campaign.model);
        let _ = writeln!(
            s,
            "Written by `history_notes` at {}. Model family in campaign.json: `{}`; slug `{}`.\n",
            now_rfc3339(),
            campaign.model_family,
            campaign.model_slug
        );
    };
    let blocked = |blocker: String, root: Option<&Path>| -> Result<HistoryNotesReport> {
        let mut s = String::new();
        header(&mut s);
        let _ = writeln!(s, "## Blocker\n\n{blocker}\n");
        let _ = writeln!(
            s,
            "Phase 0.5 could not read model PR history. The campaign continues without it: record here any PR evidence found later, and re-run `history_notes` with `knowledge_root` (or `family`) once the history is available.\n"
        );
        let _ = writeln!(
            s,
            "## Decisions influenced\n\n| Item | Decision it influences | Round |\n|---|---|---|\n| (none yet) | | |"
        );
        fsx::write_text(&notes_path, &s)?;
        Ok(HistoryNotesReport {
            notes_path: notes_rel.clone(),
            status: "blocked".into(),
            blocker: Some(blocker),
            knowledge_root: root.map(|r| r.display().to_string()),
            family: None,
            match_method: None,
            docs_read: vec![],
            top_prs: vec![],
            top_files: vec![],
            top_symbols: vec![],
        })
    };
    let Some(root) = root else {
        return blocked(
            format!(
                "no knowledge root: pass knowledge_root or set ${KNOWLEDGE_ROOT_ENV} to a model-pr-optimization-history checkout"
            ),
            None,
        );
    };
    if !root.is_dir() {
        return blocked(
            format!("knowledge root {} does not exist", root.display()),
            Some(&root),
        );
    }
    let fams = families(&root);
    let vllm_folders = fams.get("vllm").cloned().unwrap_or_default();
    let mut all_folders: Vec<String> = fams.values().flatten().cloned().collect();
    all_folders.sort();
    all_folders.dedup();
    let (family, method) = if let Some(f) = &req.family {
        if !all_folders.contains(f) {
            return blocked(
                format!(
                    "family {f:?} (from the request) has no folder under {}",
                    root.display()
                ),
                Some(&root),
            );
        }
        (f.clone(), "request")
    } else {
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
        match match_family(&keys, folders) {
            Some((f, m)) => (f, m),
            None => match req
                .use_query_script
                .then(|| {
                    query_script_family(
                        &root,
                        &format!("{} {}", campaign.model_slug, campaign.model_family),
                    )
                })
                .flatten()
            {
                Some(f) => (f, "query.py"),
                None => {
                    return blocked(
                        format!(
                            "no family folder matches model {:?} (family {:?}) under {} (vLLM folders: {}); pass family explicitly",
                            campaign.model,
                            campaign.model_family,
                            root.display(),
                            vllm_folders.join(", ")
                        ),
                        Some(&root),
                    );
                }
            },
        }
    };
    ctx.progress(1.0, Some(3.0), "family matched");

    let baseline = records::read_rows(&paths.candidates()).unwrap_or_default();
    let include_sglang = req.include_sglang.unwrap_or_else(|| {
        campaign.frameworks.iter().any(|f| f == "sglang") || sglang_leads(&baseline)
    });
    let mut frameworks = vec!["vllm"];
    if include_sglang {
        frameworks.push("sglang");
    }
    let order = match req.lang {
        Lang::En => ["README.en.md", "README.zh.md"],
        Lang::Zh => ["README.zh.md", "README.en.md"],
    };
    let max_prs = req.max_prs.unwrap_or(60);
    let mut docs = Vec::new();
    let mut missing = Vec::new();
    let mut body = String::new();
    let mut all_prs: Vec<PrItem> = Vec::new();
    let mut all_files: BTreeMap<String, u32> = BTreeMap::new();
    let mut all_symbols: BTreeMap<String, u32> = BTreeMap::new();
    for fw in &frameworks {
        ctx.check_cancelled()?;
        let dir = root.join(fw).join(&family);
        let Some(path) = order.iter().map(|f| dir.join(f)).find(|p| p.is_file()) else {
            missing.push(format!("{fw}/{family}/{{{}}}", order.join(",")));
            continue;
        };
        let text = fsx::read_text(&path)?;
        let ex = extract(&text, fw);
        let rel = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .display()
            .to_string();
        docs.push(DocRead {
            framework: fw.to_string(),
            path: rel.clone(),
            lines: text.lines().count(),
            pr_count: ex.prs.len(),
            file_count: ex.files.len(),
            symbol_count: ex.symbols.len(),
        });
        let title = text
            .lines()
            .find(|l| l.starts_with("# "))
            .map(|l| l.trim_start_matches("# ").trim())
            .unwrap_or("");
        let _ = writeln!(
            body,
            "## {} history: `{rel}`\n",
            if *fw == "vllm" { "vLLM" } else { "SGLang" }
        );
        if !title.is_empty() {
            let _ = writeln!(body, "Document title: {title}\n");
        }
        let _ = writeln!(
            body,
            "### Source files mentioned\n\n| File | Mentions |\n|---|---|"
        );
        for (f, n) in ex.files.iter().take(30) {
            let _ = writeln!(body, "| `{f}` | {n} |");
        }
        if ex.files.is_empty() {
            let _ = writeln!(body, "| (none found) | |");
        }
        let _ = writeln!(body, "\n### Symbols mentioned\n");
        if ex.symbols.is_empty() {
            let _ = writeln!(body, "(none found)");
        } else {
            let list: Vec<String> = ex
                .symbols
                .iter()
                .take(40)
                .map(|(s, n)| format!("`{s}` ({n})"))
                .collect();
            let _ = writeln!(body, "{}", list.join(", "));
        }
        let _ = writeln!(
            body,
            "\n### PR items ({} found{})\n",
            ex.prs.len(),
            if ex.prs.len() > max_prs {
                format!(", first {max_prs} by mentions")
            } else {
                String::new()
            }
        );
        for p in ex.prs.iter().take(max_prs) {
            let link = if p.repo.contains('/') {
                format!("https://github.com/{}/pull/{}", p.repo, p.number)
            } else {
                format!("{}#{}", p.repo, p.number)
            };
            let _ = writeln!(
                body,
                "#### {}#{}{}\n",
                p.repo,
                p.number,
                p.title
                    .as_ref()
                    .map(|t| format!(" — {t}"))
                    .unwrap_or_default()
            );
            let _ = writeln!(body, "- Link: {link}");
            let _ = writeln!(body, "- Mentions in the document: {}", p.mentions);
            if !p.files.is_empty() {
                let _ = writeln!(
                    body,
                    "- Files: {}",
                    p.files
                        .iter()
                        .take(8)
                        .map(|f| format!("`{f}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            if !p.symbols.is_empty() {
                let _ = writeln!(
                    body,
                    "- Symbols: {}",
                    p.symbols
                        .iter()
                        .take(8)
                        .map(|f| format!("`{f}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            let _ = writeln!(
                body,
                "- Decision it influences: _to fill in (profile row, patch target or ruling this PR informs, or \"none\")_\n"
            );
        }
        for (f, n) in &ex.files {
            *all_files.entry(f.clone()).or_default() += n;
        }
        for (s, n) in &ex.symbols {
            *all_symbols.entry(s.clone()).or_default() += n;
        }
        all_prs.extend(ex.prs);
    }
    ctx.progress(2.0, Some(3.0), "history read");

    let mut s = String::new();
    header(&mut s);
    let _ = writeln!(
        s,
        "Knowledge root: `{}`; family `{family}` (matched by {method}). SGLang history {}.\n",
        root.display(),
        if include_sglang {
            "included"
        } else {
            "not included (SGLang neither compared nor leading)"
        }
    );
    let _ = writeln!(s, "## Paths read\n");
    for d in &docs {
        let _ = writeln!(
            s,
            "- `{}` ({} lines): {} PRs, {} source files, {} symbols",
            d.path, d.lines, d.pr_count, d.file_count, d.symbol_count
        );
    }
    let blocker = if missing.is_empty() {
        None
    } else {
        let b = format!("missing history document(s): {}", missing.join(", "));
        let _ = writeln!(s, "\n**Blocker:** {b}");
        Some(b)
    };
    let _ = writeln!(s);
    s.push_str(&body);
    let _ = writeln!(
        s,
        "## Decisions influenced\n\nFill in as the loop uses this history (one row per decision).\n\n| Item | Decision it influences | Round |\n|---|---|---|\n| | | |"
    );
    fsx::write_text(&notes_path, &s)?;
    ctx.progress(3.0, Some(3.0), "notes written");

    all_prs.sort_by(|a, b| b.mentions.cmp(&a.mentions).then(a.number.cmp(&b.number)));
    let top = |m: BTreeMap<String, u32>| {
        let mut v: Vec<(String, u32)> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.into_iter().take(10).map(|(k, _)| k).collect::<Vec<_>>()
    };
    let status = if docs.is_empty() {
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
        docs_read: docs,
        top_prs: all_prs.into_iter().take(10).collect(),
        top_files: top(all_files),
        top_symbols: top(all_symbols),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_matching() {
        let folders: Vec<String> = [
            "llama31",
            "llama33-70b",
            "llama4",
            "qwen3-core",
            "qwen3-next",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let k = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            match_family(&k(&["llama", "llama-3.1-8b-instruct"]), &folders),
            Some(("llama31".into(), "fuzzy"))
        );
        assert_eq!(
            match_family(&k(&["qwen3-next"]), &folders),
            Some(("qwen3-next".into(), "exact"))
        );
        assert_eq!(
            match_family(&k(&["llama4-scout"]), &folders),
            Some(("llama4".into(), "fuzzy"))
        );
        // "llama" alone prefixes three folders: ambiguous.
        assert_eq!(match_family(&k(&["llama"]), &folders), None);
        assert_eq!(match_family(&k(&["mistral"]), &folders), None);
    }

    #[test]
    fn extraction_of_cards_links_and_symbols() {
        let text = "# t\n\n| 2024 | [#8343](https://github.com/vllm-project/vllm/pull/8343) | merged |\n\n### PR #10164 - Fix templates\n\n- Key implementation: `tests/entrypoints/test_chat_utils.py` modified; symbols: test_resolve_content_format_hf_defined, touching `test_resolve_content_format_hf_defined`\n\nAlso see sgl-cookbook#100 and #8343.\n";
        let ex = extract(text, "vllm");
        let find = |repo: &str, n: u64| {
            ex.prs
                .iter()
                .find(|p| p.repo == repo && p.number == n)
                .cloned()
        };
        let p = find("vllm-project/vllm", 8343).unwrap();
        assert_eq!(p.mentions, 2);
        let card = find("vllm-project/vllm", 10164).unwrap();
        assert_eq!(card.title.as_deref(), Some("Fix templates"));
        assert_eq!(
            card.files,
            vec!["tests/entrypoints/test_chat_utils.py".to_string()]
        );
        assert_eq!(
            card.symbols,
            vec!["test_resolve_content_format_hf_defined".to_string()]
        );
        assert!(find("sgl-cookbook", 100).is_some());
    }
}
