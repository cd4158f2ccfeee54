//! The vLLM checkout, through libgit2 (no `git` binary needed).

use anyhow::{Context, Result};
use git2::{DiffFormat, DiffOptions, Repository, StatusOptions};
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub(crate) struct CheckoutInfo {
    pub path: String,
    pub branch: Option<String>,
    pub commit: Option<String>,
    /// Paths with uncommitted changes (ignored files excluded).
    pub dirty_paths: Vec<String>,
}

pub(crate) fn open(path: &Path) -> Result<Repository> {
    Repository::discover(path)
        .with_context(|| format!("vllm_checkout {}: not a git repository", path.display()))
}

pub(crate) fn checkout_info(path: &Path) -> Result<CheckoutInfo> {
    let repo = open(path)?;
    let head = repo.head().ok();
    let branch = head
        .as_ref()
        .filter(|h| h.is_branch())
        .and_then(|h| h.shorthand().map(str::to_string));
    let commit = head
        .as_ref()
        .and_then(|h| h.target())
        .map(|oid| oid.to_string());
    let mut opts = StatusOptions::new();
    opts.include_untracked(true)
        .include_ignored(false)
        .recurse_untracked_dirs(false);
    let dirty_paths = repo
        .statuses(Some(&mut opts))?
        .iter()
        .filter_map(|s| s.path().map(str::to_string))
        .collect();
    Ok(CheckoutInfo {
        path: path.display().to_string(),
        branch,
        commit,
        dirty_paths,
    })
}

/// Unified diff of the working tree (index and untracked files included) against `base`.
pub(crate) fn diff_against(path: &Path, base: &str) -> Result<String> {
    let repo = open(path)?;
    let base_commit = repo
        .revparse_single(base)
        .and_then(|o| o.peel_to_commit())
        .with_context(|| format!("base commit {base} not found in {}", path.display()))?;
    let base_tree = base_commit.tree()?;
    let mut opts = DiffOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .show_untracked_content(true);
    let diff = repo.diff_tree_to_workdir_with_index(Some(&base_tree), Some(&mut opts))?;
    let mut out = String::new();
    diff.print(DiffFormat::Patch, |_, _, line| {
        if matches!(line.origin(), '+' | '-' | ' ') {
            out.push(line.origin());
        }
        out.push_str(&String::from_utf8_lossy(line.content()));
        true
    })?;
    Ok(out)
}
