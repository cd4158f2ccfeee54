//! Git checks on the vLLM checkout, through libgit2 (no `git` binary needed).

use anyhow::{Context, Result};
use git2::{DiffOptions, Repository, Status, StatusOptions};
use std::path::Path;

/// True for Humanize's local runtime paths (`.humanize/...`, `.humanize-*`), which the
/// upstream setup script ignores when it checks for a clean tree.
pub(crate) fn is_humanize_path(path: &str) -> bool {
    path.starts_with(".humanize/") || path.starts_with(".humanize-") || path == ".humanize"
}

pub(crate) fn open(path: &Path) -> Result<Repository> {
    Repository::open(path).with_context(|| format!("{} is not a git repository", path.display()))
}

/// HEAD's commit id, when HEAD points at a commit.
pub(crate) fn head_commit(repo: &Repository) -> Option<String> {
    repo.head()
        .ok()?
        .peel_to_commit()
        .ok()
        .map(|c| c.id().to_string())
}

/// Current branch name (None when detached or unborn).
pub(crate) fn current_branch(repo: &Repository) -> Option<String> {
    let head = repo.head().ok()?;
    if head.is_branch() {
        head.shorthand().map(str::to_string)
    } else {
        None
    }
}

/// Paths that make the tree dirty, excluding untracked Humanize state.
pub(crate) fn dirty_paths(repo: &Repository) -> Result<Vec<String>> {
    let mut opts = StatusOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false);
    let statuses = repo
        .statuses(Some(&mut opts))
        .context("cannot read the working tree status")?;
    let mut out = Vec::new();
    for e in statuses.iter() {
        let path = e.path().unwrap_or("<non-UTF-8 path>").to_string();
        let untracked = e.status() == Status::WT_NEW;
        if untracked && is_humanize_path(&path) {
            continue;
        }
        if e.status().is_ignored() {
            continue;
        }
        out.push(format!("{path} ({:?})", e.status()));
    }
    Ok(out)
}

/// Both `.humanize/…` and `.humanize-…` paths are ignored by the repository's ignore rules.
pub(crate) fn humanize_ignored(repo: &Repository) -> bool {
    let a = repo
        .is_path_ignored(".humanize/rlcr/state.md")
        .unwrap_or(false);
    let b = repo.is_path_ignored(".humanize-local").unwrap_or(false);
    a && b
}

pub(crate) fn local_branch_exists(repo: &Repository, name: &str) -> bool {
    repo.find_branch(name, git2::BranchType::Local).is_ok()
}

/// Target of `refs/remotes/origin/HEAD` (the remote default branch as last fetched).
pub(crate) fn remote_default_branch(repo: &Repository) -> Option<String> {
    let r = repo.find_reference("refs/remotes/origin/HEAD").ok()?;
    let target = r.symbolic_target()?.to_string();
    target
        .strip_prefix("refs/remotes/origin/")
        .map(str::to_string)
}

/// Humanize's auto-detection (remote default if local, then `main`, then `master`), and
/// whether it is ambiguous (no remote default while both `main` and `master` exist).
pub(crate) fn autodetect_base(repo: &Repository) -> (Option<String>, bool) {
    if let Some(d) = remote_default_branch(repo).filter(|d| local_branch_exists(repo, d)) {
        return (Some(d), false);
    }
    let main = local_branch_exists(repo, "main");
    let master = local_branch_exists(repo, "master");
    match (main, master) {
        (true, true) => (Some("main".into()), true),
        (true, false) => (Some("main".into()), false),
        (false, true) => (Some("master".into()), false),
        _ => (None, false),
    }
}

fn signature(repo: &Repository) -> git2::Signature<'static> {
    repo.signature().map(|s| s.to_owned()).unwrap_or_else(|_| {
        git2::Signature::now("vllm-sota", "vllm-sota@localhost").expect("valid signature")
    })
}

/// Append `.humanize*` to `.gitignore` and commit only that file on the current branch.
pub(crate) fn ignore_humanize_and_commit(repo: &Repository) -> Result<String> {
    let workdir = repo.workdir().context("bare repository: no working tree")?;
    let path = workdir.join(".gitignore");
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("# Humanize RLCR runtime state (local only)\n.humanize*\n");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    let mut index = repo.index()?;
    index.add_path(Path::new(".gitignore"))?;
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let sig = signature(repo);
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    let oid = repo.commit(
        Some("HEAD"),
        &sig,
        &sig,
        "Ignore Humanize RLCR runtime state (.humanize*)",
        &tree,
        &parents,
    )?;
    Ok(oid.to_string())
}

/// A file changed between the base commit and HEAD.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct ChangedFile {
    pub path: String,
    /// `added`, `modified`, `deleted`, `renamed`, ...
    pub status: String,
    pub insertions: usize,
    pub deletions: usize,
}

/// Files changed from `base` (a commit-ish) to HEAD, committed changes only, with line counts.
pub(crate) fn changed_files(repo: &Repository, base: &str) -> Result<Vec<ChangedFile>> {
    let base_obj = repo
        .revparse_single(base)
        .with_context(|| format!("base commit {base} is not in the checkout"))?;
    let base_tree = base_obj
        .peel_to_tree()
        .with_context(|| format!("{base} is not a commit"))?;
    let head_tree = repo
        .head()
        .context("the checkout has no HEAD")?
        .peel_to_tree()?;
    let mut opts = DiffOptions::new();
    let mut diff = repo.diff_tree_to_tree(Some(&base_tree), Some(&head_tree), Some(&mut opts))?;
    diff.find_similar(None)?;
    let mut out = Vec::new();
    for (i, delta) in diff.deltas().enumerate() {
        let path = delta
            .new_file()
            .path()
            .or_else(|| delta.old_file().path())
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let (ins, del) = match git2::Patch::from_diff(&diff, i)? {
            Some(p) => {
                let (_, a, d) = p.line_stats()?;
                (a, d)
            }
            None => (0, 0),
        };
        out.push(ChangedFile {
            path,
            status: format!("{:?}", delta.status()).to_lowercase(),
            insertions: ins,
            deletions: del,
        });
    }
    Ok(out)
}
