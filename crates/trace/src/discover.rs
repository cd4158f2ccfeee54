//! Which trace files to read: a file, a directory of traces, a multi-rank set, or a
//! stage directory (`prefill/` + `decode/`, SGLang/TokenSpeed `-EXTEND`/`-DECODE`
//! suffixes). Every skipped file gets a reason, so the report can say why.

use anyhow::{Result, bail};
use serde::Serialize;
use std::path::{Path, PathBuf};
use vllm_sota_core::Framework;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Prefill,
    Decode,
    All,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Prefill => "prefill",
            Stage::Decode => "decode",
            Stage::All => "all",
        }
    }
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ChosenTrace {
    pub path: PathBuf,
    pub stage: Stage,
    pub rank: Option<u32>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SkippedTrace {
    pub path: PathBuf,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Selection {
    pub chosen: Vec<ChosenTrace>,
    pub skipped: Vec<SkippedTrace>,
}

/// Name-based trace test: `*.trace.json(.gz)`, `*.pt.trace.json(.gz)`, or any `.json(.gz)`
/// other than well-known config files.
pub(crate) fn looks_like_trace(p: &Path) -> bool {
    let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if matches!(
        n,
        "server_args.json" | "metadata.json" | "config.json" | "campaign.json"
    ) {
        return false;
    }
    n.ends_with(".json") || n.ends_with(".json.gz")
}

/// A vLLM API-server (`AsyncLLM`) trace: Python only, no GPU kernels.
pub(crate) fn is_api_server_trace(p: &Path) -> bool {
    let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    n.contains(".async_llm.") || n.contains("async_llm")
}

/// Stage from the path: file-name suffix markers first (`-EXTEND`, `-prefill`, `_decode`),
/// then the nearest directory named `prefill`/`extend`/`decode` (nearest wins, unlike the
/// Python tool which let any ancestor `*_prefill*` win).
pub(crate) fn stage_of_path(p: &Path) -> Stage {
    let name = p
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_lowercase();
    for (m, st) in [
        ("-extend", Stage::Prefill),
        ("_extend", Stage::Prefill),
        ("-prefill", Stage::Prefill),
        ("_prefill", Stage::Prefill),
        (".prefill", Stage::Prefill),
        ("-decode", Stage::Decode),
        ("_decode", Stage::Decode),
        (".decode", Stage::Decode),
    ] {
        if name.contains(m) {
            return st;
        }
    }
    for comp in p
        .parent()
        .into_iter()
        .flat_map(|d| d.components().rev())
        .take(4)
    {
        let c = comp.as_os_str().to_string_lossy().to_lowercase();
        match c.as_str() {
            "prefill" | "extend" => return Stage::Prefill,
            "decode" => return Stage::Decode,
            _ => {
                if c.starts_with("prefill") || c.ends_with("-prefill") || c.ends_with("_prefill") {
                    return Stage::Prefill;
                }
                if c.starts_with("decode") || c.ends_with("-decode") || c.ends_with("_decode") {
                    return Stage::Decode;
                }
            }
        }
    }
    Stage::All
}

/// Rank from a file name: `rank<N>`, `tp<N>`, `TP-<N>`, `worker<N>` delimited by `_ - .` or ends.
pub(crate) fn rank_of_path(p: &Path) -> Option<u32> {
    let n = p.file_name()?.to_str()?.to_lowercase();
    let b = n.as_bytes();
    for key in ["rank", "tp-", "tp", "worker"] {
        let mut search = 0;
        while let Some(off) = n[search..].find(key) {
            let pos = search + off;
            let before_ok = pos == 0 || matches!(b[pos - 1], b'_' | b'-' | b'.');
            let mut j = pos + key.len();
            let ds = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let after_ok = j == b.len() || matches!(b[j], b'_' | b'-' | b'.');
            if before_ok && j > ds && after_ok {
                return n[ds..j].parse().ok();
            }
            search = pos + 1;
        }
    }
    None
}

fn list_traces(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot list {}: {e}", dir.display()))?;
    for e in rd.flatten() {
        let p = e.path();
        if p.is_file() && looks_like_trace(&p) {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// A `<stage>-eager` directory: the CUDA-graphs-off capture of `<stage>/` (profile_launch).
pub(crate) fn is_eager_twin_dir(d: &Path) -> bool {
    d.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.to_ascii_lowercase().ends_with("-eager") && n.len() > 6)
}

/// The eager twin beside a trace: for `<root>/<stage>/x.json.gz` (or
/// `<root>/<stage>/<time>/x.json.gz`), the directory `<root>/<stage>-eager/` when it holds
/// a trace. profile_tables and layer_pipeline use it as the mapping trace automatically.
pub fn eager_twin(trace: &Path) -> Option<PathBuf> {
    let mut dir = if trace.is_dir() {
        trace.to_path_buf()
    } else {
        trace.parent()?.to_path_buf()
    };
    for _ in 0..2 {
        let name = dir.file_name()?.to_str()?.to_string();
        if !name.ends_with("-eager") {
            let twin = dir.parent()?.join(format!("{name}-eager"));
            if twin.is_dir() && select_traces(&twin).is_ok_and(|s| !s.chosen.is_empty()) {
                return Some(twin);
            }
        }
        dir = dir.parent()?.to_path_buf();
    }
    None
}

/// Choose the trace files under `path`.
pub fn select_traces(path: &Path) -> Result<Selection> {
    if !path.exists() {
        bail!("trace path {} does not exist", path.display());
    }
    let mut skipped = Vec::new();
    let candidates = candidate_traces(path, &mut skipped)?;
    let workers = worker_traces(candidates, &mut skipped);
    if workers.is_empty() {
        return Err(no_worker_traces(path, &skipped));
    }
    let chosen = lowest_rank(workers, &mut skipped);
    let chosen = newest_per_stage(chosen, &mut skipped);
    Ok(Selection { chosen, skipped })
}

/// Every trace file `path` names: the file itself, the traces directly in the directory,
/// or else those of its stage subdirectories.
fn candidate_traces(path: &Path, skipped: &mut Vec<SkippedTrace>) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        if is_api_server_trace(path) {
            bail!(
                "{} is a vLLM API-server (AsyncLLM) trace: it holds only Python events, no GPU kernels; \
                 use the GPU worker's trace (rank*.pt.trace.json.gz) from the same directory",
                path.display()
            );
        }
        return Ok(vec![path.to_path_buf()]);
    }
    let direct = list_traces(path)?;
    if direct.is_empty() {
        stage_layout_traces(path, skipped)
    } else {
        Ok(direct)
    }
}

/// Subdirectories of `dir`, sorted.
fn sorted_subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut subs: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    subs.sort();
    Ok(subs)
}

/// Stage layout: prefill/ decode/ (or any subdirectories holding traces), each possibly one
/// level deeper (e.g. `<stage>/<unix-time>/`). Eager mapping twins are skipped.
fn stage_layout_traces(path: &Path, skipped: &mut Vec<SkippedTrace>) -> Result<Vec<PathBuf>> {
    let mut all = Vec::new();
    for d in sorted_subdirs(path)? {
        // `<stage>-eager/` is the CUDA-graphs-off mapping twin of `<stage>/`: used as
        // the mapping trace, never as the trace analyzed.
        if is_eager_twin_dir(&d) {
            for t in list_traces(&d)? {
                skipped.push(SkippedTrace {
                    path: t,
                    reason: "eager mapping twin (CUDA graphs off): used as the mapping trace of its stage".into(),
                });
            }
            continue;
        }
        // one more level (e.g. <stage>/<unix-time>/)
        let mut here = list_traces(&d)?;
        if here.is_empty() {
            for i in sorted_subdirs(&d)? {
                here.extend(list_traces(&i)?);
            }
        }
        all.extend(here);
    }
    Ok(all)
}

/// The GPU worker traces among the candidates; API-server and merged traces are skipped.
fn worker_traces(candidates: Vec<PathBuf>, skipped: &mut Vec<SkippedTrace>) -> Vec<PathBuf> {
    let mut workers = Vec::new();
    for p in candidates {
        let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if is_api_server_trace(&p) {
            skipped.push(SkippedTrace {
                path: p.clone(),
                reason: "vLLM API-server (AsyncLLM) trace: Python only, no GPU kernels".into(),
            });
        } else if n.starts_with("merged-") {
            skipped.push(SkippedTrace {
                path: p.clone(),
                reason: "merged trace (per-rank traces are preferred)".into(),
            });
        } else {
            workers.push(p);
        }
    }
    workers
}

/// The error when no worker trace is left: names the API-server traces found, if any.
fn no_worker_traces(path: &Path, skipped: &[SkippedTrace]) -> anyhow::Error {
    if skipped
        .iter()
        .any(|s| s.reason.starts_with("vLLM API-server"))
    {
        return anyhow::anyhow!(
            "{} holds only vLLM API-server traces ({}), which have no GPU kernels; the GPU worker writes \
             rank<N>.*.pt.trace.json.gz — check the server's torch_profiler_dir",
            path.display(),
            skipped
                .iter()
                .map(|s| s
                    .path
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    anyhow::anyhow!(
        "no trace files (*.json, *.json.gz) under {}",
        path.display()
    )
}

/// Rank filter: keep rank 0 (or the smallest) when ranks are present.
fn lowest_rank(workers: Vec<PathBuf>, skipped: &mut Vec<SkippedTrace>) -> Vec<ChosenTrace> {
    let ranks: Vec<Option<u32>> = workers.iter().map(|p| rank_of_path(p)).collect();
    let min_rank = ranks.iter().flatten().min().copied();
    let mut chosen = Vec::new();
    for (p, r) in workers.into_iter().zip(ranks) {
        match (min_rank, r) {
            (Some(m), Some(r)) if r != m => skipped.push(SkippedTrace {
                path: p,
                reason: format!("rank {r}: rank {m} is analyzed"),
            }),
            (Some(m), None) => skipped.push(SkippedTrace {
                path: p,
                reason: format!("no rank in the file name while rank {m} exists"),
            }),
            _ => chosen.push(ChosenTrace {
                stage: stage_of_path(&p),
                rank: r,
                path: p,
            }),
        }
    }
    chosen
}

/// One trace per stage: the newest (mtime), others skipped with a reason.
fn newest_per_stage(
    mut chosen: Vec<ChosenTrace>,
    skipped: &mut Vec<SkippedTrace>,
) -> Vec<ChosenTrace> {
    chosen.sort_by(|a, b| {
        a.stage
            .cmp(&b.stage)
            .then(mtime(&b.path).cmp(&mtime(&a.path)))
            .then(a.path.cmp(&b.path))
    });
    let mut out: Vec<ChosenTrace> = Vec::new();
    for c in chosen {
        if out.iter().any(|o| o.stage == c.stage) {
            skipped.push(SkippedTrace {
                reason: format!(
                    "older {} trace: the newest one per stage is analyzed",
                    c.stage.as_str()
                ),
                path: c.path,
            });
        } else {
            out.push(c);
        }
    }
    out
}

fn mtime(p: &Path) -> std::time::SystemTime {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .unwrap_or(std::time::UNIX_EPOCH)
}

/// The label of a trace's framework in tables and reports: its id, or `pytorch` for a plain
/// PyTorch trace.
pub fn framework_label(f: Option<Framework>) -> &'static str {
    f.map_or("pytorch", Framework::id)
}

/// Framework detection from a store: kernel names, annotations, Python frame paths, the file
/// name. `None` is a plain PyTorch trace (no serving-framework marker); the second item says why.
pub fn detect_framework(s: &crate::store::TraceStore) -> (Option<Framework>, String) {
    let path = s.path.to_string_lossy().to_lowercase();
    for i in 0..s.annotations.len().min(2000) {
        let n = s.name(s.annotations.name[i]);
        if n.starts_with("execute_context_") {
            return (Some(Framework::Vllm), format!("vLLM step annotation `{n}`"));
        }
    }
    let mut counts = [0usize; 4]; // in the order of Framework::ALL
    let mut seen = vec![false; s.names.len()];
    for i in 0..s.frames.len() {
        let id = s.frames.name[i] as usize;
        if std::mem::replace(&mut seen[id], true) {
            continue;
        }
        let n = s.name(id as u32);
        if let Some(i) = Framework::ALL
            .iter()
            .position(|f| n.contains(&format!("/{}/", f.id())))
        {
            counts[i] += 1;
        }
    }
    if let Some((i, &c)) = counts.iter().enumerate().max_by_key(|x| x.1)
        && c > 0
    {
        let f = Framework::ALL[i];
        return (
            Some(f),
            format!("{c} distinct Python frame names under {f}/"),
        );
    }
    for (m, f) in [
        ("tokenspeed", Framework::Tokenspeed),
        ("trtllm", Framework::TensorrtLlm),
        ("tensorrt", Framework::TensorrtLlm),
        ("sglang", Framework::Sglang),
        ("vllm", Framework::Vllm),
    ] {
        if path.contains(m) {
            return (Some(f), format!("file path contains `{m}`"));
        }
    }
    for i in 0..s.kernels.len().min(100_000) {
        let n = s.name(s.kernels.name[i]);
        if n.starts_with("void vllm::") {
            return (
                Some(Framework::Vllm),
                format!(
                    "kernel `{}`",
                    crate::classify::short_name(&crate::classify::canonical_name(n))
                ),
            );
        }
        if n.contains("sgl_kernel") || n.contains("sglang") {
            return (Some(Framework::Sglang), "sgl_kernel kernels".into());
        }
        if n.contains("tensorrt_llm") {
            return (Some(Framework::TensorrtLlm), "tensorrt_llm kernels".into());
        }
    }
    (
        None,
        "no serving-framework markers (plain PyTorch trace)".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_from_paths() {
        assert_eq!(
            stage_of_path(Path::new("/tmp/live_profile/prefill/rank0.trace.json")),
            Stage::Prefill
        );
        assert_eq!(
            stage_of_path(Path::new("/tmp/live_profile/decode/rank0.trace.json")),
            Stage::Decode
        );
        assert_eq!(
            stage_of_path(Path::new("/tmp/qwen_prefill_runs/decode/x.json")),
            Stage::Decode
        );
        assert_eq!(
            stage_of_path(Path::new("/t/1700000-TP-0-EXTEND.trace.json.gz")),
            Stage::Prefill
        );
        assert_eq!(
            stage_of_path(Path::new("/t/1700000-TP-0-DECODE.trace.json.gz")),
            Stage::Decode
        );
        assert_eq!(
            stage_of_path(Path::new("/t/rank0.decode.pt.trace.json.gz")),
            Stage::Decode
        );
        assert_eq!(stage_of_path(Path::new("/t/trace.json")), Stage::All);
    }

    #[test]
    fn ranks_from_names() {
        assert_eq!(
            rank_of_path(Path::new("rank0.123.pt.trace.json.gz")),
            Some(0)
        );
        assert_eq!(
            rank_of_path(Path::new("x-TP-3-DECODE.trace.json.gz")),
            Some(3)
        );
        assert_eq!(
            rank_of_path(Path::new("vm_1590.async_llm.17.pt.trace.json.gz")),
            None
        );
    }
}
