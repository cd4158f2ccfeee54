//! Reading a knowledge root: family folders, the family match, and the PRs, source files,
//! symbols and card boundaries of one history document.

use regex::Regex;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;
use vllm_sota_core::{Framework, fsx, proc};

use super::PrItem;

/// Normalize like the knowledge root's folder names: lowercase, runs of non-alphanumerics → `-`.
pub(super) fn slug(s: &str) -> String {
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
pub(super) fn families(root: &Path) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for fw in Framework::ALL.map(Framework::id) {
        let names: Vec<String> = fsx::sorted_entries(&root.join(fw), |p| p.is_dir())
            .iter()
            .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
            .collect();
        if !names.is_empty() {
            out.insert(fw.to_string(), names);
        }
    }
    out
}

/// Match a family folder: exact slug, then fuzzy (a folder name that is a prefix of the model
/// name with punctuation removed, longest wins; or the family key a prefix of one folder only).
pub(crate) fn match_family(keys: &[String], folders: &[String]) -> Option<(String, &'static str)> {
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
pub(super) fn query_script_family(root: &Path, query: &str) -> Option<String> {
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

pub(super) struct Extracted {
    pub prs: Vec<PrItem>,
    pub files: Vec<(String, u32)>,
    pub symbols: Vec<(String, u32)>,
}

/// A PR's identity: (`owner/repo` or text prefix, number).
pub(super) type PrKey = (String, u64);

/// Follow PR cards through a document, line by line: a card starts at a `### PR #N` heading
/// and ends at the next heading that is not a `####` sub-heading or another card.
pub(super) struct CardTracker<'a> {
    framework: &'a str,
    pub current: Option<PrKey>,
}

impl<'a> CardTracker<'a> {
    pub(super) fn new(framework: &'a str) -> Self {
        Self {
            framework,
            current: None,
        }
    }

    /// Advance over `line`; returns the card's key and title when `line` opens a card.
    pub(super) fn step(&mut self, line: &str) -> Option<(PrKey, String)> {
        if line.starts_with('#')
            && !line.starts_with("#### ")
            && !line.trim_start_matches('#').trim_start().starts_with("PR ")
        {
            self.current = None;
        }
        let c = regexes()[0].captures(line)?;
        let n: u64 = c[1].parse().unwrap_or(0);
        let key = (default_repo(self.framework).to_string(), n);
        self.current = Some(key.clone());
        Some((key, c[2].trim().to_string()))
    }
}

/// Every PR reference of a line, one entry per occurrence: links first, then `#N` /
/// `prefix#N` mentions of numbers the line does not link.
pub(super) fn referenced_prs(line: &str, framework: &str) -> Vec<PrKey> {
    let [_, link, bare, ..] = regexes();
    let mut out: Vec<PrKey> = link
        .captures_iter(line)
        .map(|c| (c[1].to_string(), c[2].parse().unwrap_or(0)))
        .collect();
    let linked: Vec<u64> = out.iter().map(|(_, n)| *n).collect();
    for c in bare.captures_iter(line) {
        let n: u64 = c[2].parse().unwrap_or(0);
        if linked.contains(&n) {
            continue;
        }
        let repo = c
            .get(1)
            .map(|m| m.as_str().to_string())
            .unwrap_or_else(|| default_repo(framework).to_string());
        out.push((repo, n));
    }
    out
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
pub(super) fn extract(text: &str, framework: &str) -> Extracted {
    let [_, _, _, file, sym] = regexes();
    let mut prs: BTreeMap<(String, u64), PrItem> = BTreeMap::new();
    let mut files: BTreeMap<String, u32> = BTreeMap::new();
    let mut symbols: BTreeMap<String, u32> = BTreeMap::new();
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
    let mut cards = CardTracker::new(framework);
    for line in text.lines() {
        if let Some((key, title)) = cards.step(line) {
            add(&mut prs, key.0.clone(), key.1, Some(title));
            continue;
        }
        let current_card = &cards.current;
        for (repo, n) in referenced_prs(line, framework) {
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
