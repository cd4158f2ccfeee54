//! Reading the campaign's records: benchmark rows, lineage and the ledgers'
//! JSONL machine copies. Ledger and lineage rows are read as plain JSON objects
//! (fields picked by name) so that rows written by other tools with extra or
//! missing fields never break a reader here.

use anyhow::{Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use vllm_sota_core::fsx;
use vllm_sota_core::layout::CampaignPaths;
use vllm_sota_core::results::{CandidateRow, RowRef};

/// A path given relative to the campaign directory (or absolute).
pub(crate) fn resolve(paths: &CampaignPaths, rel: &str) -> PathBuf {
    let p = Path::new(rel);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        paths.root.join(p)
    }
}

/// `path` relative to the campaign directory when it is inside it.
pub(crate) fn relative(paths: &CampaignPaths, path: &Path) -> String {
    paths.rel(path)
}

/// Candidate rows of a results file, with the file named in any error.
pub(crate) fn read_rows(path: &Path) -> Result<Vec<CandidateRow>> {
    fsx::read_jsonl(path)
        .with_context(|| format!("cannot read benchmark rows from {}", path.display()))
}

/// Resolve explicit row references to rows (each file read once).
pub(crate) fn rows_by_ref(
    paths: &CampaignPaths,
    refs: &[RowRef],
) -> Result<Vec<(RowRef, CandidateRow)>> {
    let mut cache: std::collections::BTreeMap<String, Vec<CandidateRow>> = Default::default();
    let mut out = Vec::with_capacity(refs.len());
    for r in refs {
        if !cache.contains_key(&r.file) {
            let path = resolve(paths, &r.file);
            if !path.is_file() {
                anyhow::bail!("current_rows: file {} does not exist", path.display());
            }
            cache.insert(r.file.clone(), read_rows(&path)?);
        }
        let row = cache[&r.file]
            .iter()
            .find(|row| row.row_id == r.row_id)
            .with_context(|| {
                format!(
                    "current_rows: no row with row_id {:?} in {}",
                    r.row_id, r.file
                )
            })?;
        out.push((r.clone(), row.clone()));
    }
    Ok(out)
}

/// JSON objects of a JSONL file (missing file = empty). Non-object lines are an error naming the line.
pub(crate) fn read_objects(path: &Path) -> Result<Vec<Value>> {
    let rows: Vec<Value> = fsx::read_jsonl(path)?;
    for (i, row) in rows.iter().enumerate() {
        if !row.is_object() {
            anyhow::bail!("{}: row {} is not a JSON object", path.display(), i + 1);
        }
    }
    Ok(rows)
}

/// The machine copy beside a ledger markdown file (`attempt-ledger.md` → `attempt-ledger.jsonl`).
pub(crate) fn jsonl_beside(md: &Path) -> PathBuf {
    md.with_extension("jsonl")
}

/// First string field present among `names`.
pub(crate) fn str_field<'a>(v: &'a Value, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|n| v.get(*n).and_then(Value::as_str))
}

/// A field rendered as short text (string as is, numbers/bools/arrays as JSON).
pub(crate) fn text_field(v: &Value, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| match v.get(*n) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| i.to_string())
                })
                .collect::<Vec<_>>()
                .join(", "),
        ),
        Some(other) => Some(other.to_string()),
    })
}

pub(crate) fn num_field(v: &Value, names: &[&str]) -> Option<f64> {
    names.iter().find_map(|n| v.get(*n).and_then(Value::as_f64))
}

pub(crate) fn round_of(v: &Value) -> Option<u32> {
    v.get("round").and_then(Value::as_u64).map(|r| r as u32)
}

/// Rounds that have a `profiles/round-N/` directory, ascending.
pub(crate) fn profile_rounds(paths: &CampaignPaths) -> Vec<u32> {
    let mut rounds: Vec<u32> = std::fs::read_dir(paths.profiles_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("round-"))
                .and_then(|n| n.parse().ok())
        })
        .collect();
    rounds.sort_unstable();
    rounds
}

/// `profiles/round-N/<framework>/<stage>/tables.md` files of one round, sorted.
pub(crate) fn profile_tables(paths: &CampaignPaths, round: u32) -> Vec<PathBuf> {
    let dir = paths
        .profiles_dir()
        .join(vllm_sota_core::layout::round_label(round));
    let mut out = Vec::new();
    for fw in sorted_dirs(&dir) {
        for stage in sorted_dirs(&fw) {
            let t = stage.join("tables.md");
            if t.is_file() {
                out.push(t);
            }
        }
    }
    out
}

/// Every NCU digest (`kernel/ncu-digests/<version>/digest.md`), sorted.
pub(crate) fn ncu_digests(paths: &CampaignPaths) -> Vec<PathBuf> {
    sorted_dirs(&paths.ncu_digests_dir())
        .into_iter()
        .map(|d| d.join("digest.md"))
        .filter(|p| p.is_file())
        .collect()
}

/// Files in `patches/`, sorted.
pub(crate) fn patch_files(paths: &CampaignPaths) -> Vec<PathBuf> {
    fsx::sorted_entries(&paths.patches_dir(), |p| p.is_file())
}

/// Revalidation rounds that have a `benchmark/revalidation/round-N.jsonl`, ascending.
pub(crate) fn revalidation_rounds(paths: &CampaignPaths) -> Vec<u32> {
    let mut rounds: Vec<u32> = std::fs::read_dir(paths.benchmark_dir().join("revalidation"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            name.strip_prefix("round-")?
                .strip_suffix(".jsonl")?
                .parse()
                .ok()
        })
        .collect();
    rounds.sort_unstable();
    rounds
}

fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    fsx::sorted_entries(dir, |p| p.is_dir())
}

/// The latest `gap_decision` lineage row (highest round; the last written wins within a round).
pub(crate) fn latest_gap_decision(lineage: &[Value]) -> Option<&Value> {
    lineage
        .iter()
        .enumerate()
        .filter(|(_, v)| str_field(v, &["kind"]) == Some("gap_decision"))
        .max_by_key(|(i, v)| (round_of(v).unwrap_or(0), *i))
        .map(|(_, v)| v)
}

/// First `n` lines of a markdown table (header, separator and data rows) in `text`.
pub(crate) fn first_table_rows(text: &str, n: usize) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.trim_start().starts_with('|'))
        .take_while(|l| l.trim_start().starts_with('|'))
        .take(n)
        .map(str::to_string)
        .collect()
}

/// Shell-quoted argv for display (the one quoting rule of `core::proc`).
pub(crate) use vllm_sota_core::proc::shell_join;
