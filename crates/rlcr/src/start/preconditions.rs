//! `start_rlcr`'s preconditions: each one checked, reported pass or fail with its fix,
//! in the order the runtime checks them.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use vllm_sota_core::layout::{Campaign, CampaignPaths};

use super::{
    PLAN_REL, Precondition, RUNTIME_PROGRAMS, SETUP_SCRIPT, StartRlcrRequest,
    YAML_UNSAFE_BRANCH_CHARS, active_states, find_program, locate_runtime, runtime_candidates,
};
use crate::{git, records};

fn pass(name: &str, detail: impl Into<String>) -> Precondition {
    Precondition {
        name: name.into(),
        passed: true,
        detail: detail.into(),
        fix: None,
    }
}
fn fail(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Precondition {
    Precondition {
        name: name.into(),
        passed: false,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

/// What the preconditions found: the list itself and what the start needs from it.
pub(super) struct Checked {
    pub(super) preconditions: Vec<Precondition>,
    pub(super) checkout: Option<PathBuf>,
    pub(super) runtime: Option<PathBuf>,
    pub(super) git: GitFacts,
}

/// Every precondition, in order: programs on `path`, the checkout's repository and its
/// active loops, the fixed benchmark, the history notes, the Humanize runtime.
pub(super) fn check_all(
    req: &StartRlcrRequest,
    paths: &CampaignPaths,
    campaign: &Campaign,
    path: Option<&OsStr>,
) -> Checked {
    let mut pre: Vec<Precondition> = Vec::new();
    program_preconditions(path, &mut pre);
    let checkout = req
        .vllm_checkout
        .clone()
        .or_else(|| campaign.vllm_checkout.clone());
    let git = match &checkout {
        None => {
            pre.push(fail(
                "vllm_checkout",
                "no vLLM checkout given and campaign.json has none",
                "pass vllm_checkout (the vLLM git checkout to patch)",
            ));
            GitFacts::default()
        }
        Some(dir) => {
            let facts = git_preconditions(
                dir,
                req,
                campaign.vllm_base_branch.as_deref(),
                campaign.vllm_base_commit.as_deref(),
                &mut pre,
            );
            pre.push(no_active_loop_precondition(dir));
            facts
        }
    };
    pre.push(fixed_benchmark_precondition(paths));
    pre.push(history_notes_precondition(paths));
    let runtime = runtime_precondition(req, &mut pre);
    Checked {
        preconditions: pre,
        checkout,
        runtime,
        git,
    }
}

/// One precondition per program the runtime needs (`codex`, `jq`, `git`), looked up in `path`.
fn program_preconditions(path: Option<&OsStr>, pre: &mut Vec<Precondition>) {
    for (program, fix) in RUNTIME_PROGRAMS {
        pre.push(match find_program(program, path) {
            Some(p) => pass(program, format!("{} on PATH", p.display())),
            None => fail(
                program,
                format!("`{program}` is not on PATH: Humanize's setup-rlcr-loop.sh refuses to start without it"),
                *fix,
            ),
        });
    }
}

/// No state file of an active loop under the checkout's `.humanize/rlcr/`.
fn no_active_loop_precondition(dir: &Path) -> Precondition {
    let active = active_states(dir);
    if active.is_empty() {
        pass(
            "no_active_loop",
            "no active state file under .humanize/rlcr/",
        )
    } else {
        fail(
            "no_active_loop",
            format!(
                "active RLCR state: {}",
                active
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "resume or finish that loop (campaign_status says its phase), or cancel it with the runtime's scripts/cancel-rlcr-loop.sh; never run two loops",
        )
    }
}

/// The fixed benchmark has rows.
fn fixed_benchmark_precondition(paths: &CampaignPaths) -> Precondition {
    match records::read_rows(&paths.candidates()) {
        Ok(rows) if !rows.is_empty() => pass(
            "fixed_benchmark",
            format!("{} row(s) in benchmark/candidates.jsonl", rows.len()),
        ),
        Ok(_) => fail(
            "fixed_benchmark",
            "benchmark/candidates.jsonl has no rows",
            "run the fixed fair benchmark first",
        ),
        Err(e) => fail(
            "fixed_benchmark",
            format!("{e:#}"),
            "repair or re-run the fixed benchmark",
        ),
    }
}

/// The history notes are written (not the placeholder).
fn history_notes_precondition(paths: &CampaignPaths) -> Precondition {
    if CampaignPaths::is_written(&paths.history_notes()) {
        pass(
            "history_notes",
            "history/model-pr-history-notes.md is written",
        )
    } else {
        fail(
            "history_notes",
            "history/model-pr-history-notes.md is missing or still the placeholder",
            "run history_notes (Phase 0.5) first",
        )
    }
}

fn yaml_unsafe(name: &str) -> bool {
    name.contains(YAML_UNSAFE_BRANCH_CHARS)
}

/// What the git checks decide.
#[derive(Default)]
pub(super) struct GitFacts {
    pub(super) base_branch: Option<String>,
    pub(super) base_commit: String,
}

/// Checks on the checkout's repository (libgit2), each with its fix, one after the
/// other in the order the runtime checks them.
fn git_preconditions(
    dir: &Path,
    req: &StartRlcrRequest,
    campaign_base_branch: Option<&str>,
    campaign_base_commit: Option<&str>,
    pre: &mut Vec<Precondition>,
) -> GitFacts {
    let mut facts = GitFacts::default();
    let repo = match git::open(dir) {
        Err(e) => {
            pre.push(fail(
                "git_repository",
                format!("{e:#}"),
                format!(
                    "clone vLLM into {} or pass vllm_checkout pointing at a git checkout",
                    dir.display()
                ),
            ));
            return facts;
        }
        Ok(r) => r,
    };
    let Some(head) = git::head_commit(&repo) else {
        pre.push(fail(
            "git_repository",
            format!("{} has no commit", dir.display()),
            "commit the checkout's current state (git commit) before starting the loop",
        ));
        return facts;
    };
    pre.push(pass(
        "git_repository",
        format!("{} at {}", dir.display(), &head[..head.len().min(12)]),
    ));
    facts.base_commit = campaign_base_commit.map(str::to_string).unwrap_or(head);
    pre.push(gitignore_precondition(&repo, req.fix_gitignore));
    pre.push(clean_tree_precondition(&repo));
    pre.push(plan_path_precondition(&repo, dir));
    pre.push(branch_name_precondition(&repo));
    let expected = req
        .base_branch
        .clone()
        .or_else(|| campaign_base_branch.map(str::to_string));
    let (p, base_branch) = base_branch_precondition(&repo, expected, &facts.base_commit);
    pre.push(p);
    facts.base_branch = base_branch;
    facts
}

/// `.humanize*` ignored (optionally fixed first, so the commit keeps the tree clean).
fn gitignore_precondition(repo: &git2::Repository, fix_gitignore: bool) -> Precondition {
    if git::humanize_ignored(repo) {
        pass(
            "humanize_gitignored",
            "`.humanize/` and `.humanize-*` are gitignored",
        )
    } else if fix_gitignore {
        match git::ignore_humanize_and_commit(repo) {
            Ok(oid) if git::humanize_ignored(repo) => pass(
                "humanize_gitignored",
                format!(
                    "added `.humanize*` to .gitignore and committed it ({})",
                    &oid[..12]
                ),
            ),
            Ok(_) => fail(
                "humanize_gitignored",
                "added `.humanize*` to .gitignore but the paths are still not ignored (a negation rule?)",
                "fix the ignore rules by hand so `.humanize/` and `.humanize-*` are ignored",
            ),
            Err(e) => fail(
                "humanize_gitignored",
                format!("could not add and commit .gitignore: {e:#}"),
                "add the line `.humanize*` to .gitignore and commit it",
            ),
        }
    } else {
        fail(
            "humanize_gitignored",
            "`.humanize*` is not gitignored: RLCR state and the plan could be staged",
            "add the line `.humanize*` to the checkout's .gitignore and commit it, or call start_rlcr again with fix_gitignore: true to have it added and committed",
        )
    }
}

/// No changes outside untracked Humanize state.
fn clean_tree_precondition(repo: &git2::Repository) -> Precondition {
    match git::dirty_paths(repo) {
        Ok(d) if d.is_empty() => pass(
            "clean_working_tree",
            "no changes outside untracked Humanize state",
        ),
        Ok(d) => fail(
            "clean_working_tree",
            format!(
                "{} uncommitted path(s): {}",
                d.len(),
                d.iter().take(10).cloned().collect::<Vec<_>>().join(", ")
            ),
            "commit or stash these changes in the vLLM checkout (the loop starts from a clean tree)",
        ),
        Err(e) => fail(
            "clean_working_tree",
            format!("{e:#}"),
            "repair the repository (git status must work)",
        ),
    }
}

/// The plan path: untracked (the runtime wants it gitignored) and free of symlinks.
fn plan_path_precondition(repo: &git2::Repository, dir: &Path) -> Precondition {
    let tracked = repo
        .index()
        .ok()
        .is_some_and(|i| i.get_path(Path::new(PLAN_REL), 0).is_some());
    let mut link = None;
    let mut walk = dir.to_path_buf();
    for part in Path::new(PLAN_REL).components() {
        walk.push(part);
        if walk
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            link = Some(walk.clone());
            break;
        }
    }
    match (tracked, link) {
        (true, _) => fail(
            "plan_path",
            format!(
                "{PLAN_REL} is tracked by git: the runtime requires the plan to be gitignored, and writing it would dirty the checkout"
            ),
            format!(
                "untrack it: `git rm --cached {PLAN_REL} && git commit -m 'Untrack the RLCR plan'`"
            ),
        ),
        (false, Some(l)) => fail(
            "plan_path",
            format!(
                "{} is a symbolic link: the runtime refuses plan paths through symlinks",
                l.display()
            ),
            format!(
                "replace {} by a real directory (move its contents, remove the link)",
                l.display()
            ),
        ),
        (false, None) => pass(
            "plan_path",
            format!("{PLAN_REL} is untracked and has no symlink on its path"),
        ),
    }
}

/// The checked-out branch's name is one the runtime accepts.
fn branch_name_precondition(repo: &git2::Repository) -> Precondition {
    let start_branch = git::current_branch(repo);
    match start_branch.as_deref() {
        Some(b) if yaml_unsafe(b) => fail(
            "branch_name",
            format!(
                "the checked-out branch `{b}` contains a character the runtime refuses (: # \" ' ` newline)"
            ),
            "check out a branch with a simpler name (e.g. `git switch -c vllm-sota-loop`)",
        ),
        Some(b) => pass("branch_name", format!("on branch `{b}`")),
        None => pass("branch_name", "detached HEAD (the runtime records `HEAD`)"),
    }
}

/// The review base branch: the `expected` one when it exists locally, else the one
/// auto-detected from the local refs; returned with the precondition when usable.
fn base_branch_precondition(
    repo: &git2::Repository,
    expected: Option<String>,
    base_commit: &str,
) -> (Precondition, Option<String>) {
    let (auto, ambiguous) = git::autodetect_base(repo);
    match expected {
        Some(b) if yaml_unsafe(&b) => (
            fail(
                "base_branch",
                format!(
                    "review base branch `{b}` contains a character the runtime refuses (: # \" ' ` newline)"
                ),
                "pass base_branch naming a local branch with a simpler name",
            ),
            None,
        ),
        Some(b) if git::local_branch_exists(repo, &b) => (
            pass(
                "base_branch",
                format!("`{b}` exists locally (passed as --base-branch)"),
            ),
            Some(b),
        ),
        Some(b) => (
            fail(
                "base_branch",
                format!("review base branch `{b}` does not exist locally"),
                format!(
                    "create it locally (e.g. `git branch {b} {}` or `git fetch origin {b}:{b}`), or pass base_branch with a local branch",
                    &base_commit[..base_commit.len().min(12)]
                ),
            ),
            None,
        ),
        None => match (auto, ambiguous) {
            (Some(b), false) if !yaml_unsafe(&b) => (
                pass(
                    "base_branch",
                    format!(
                        "`{b}` from the local refs (passed as --base-branch, so origin's live default cannot change it)"
                    ),
                ),
                Some(b),
            ),
            (Some(_), true) => (
                fail(
                    "base_branch",
                    "both `main` and `master` exist and origin has no default branch: the review base is ambiguous",
                    "pass base_branch (it is given to Humanize as --base-branch)",
                ),
                None,
            ),
            _ => (
                fail(
                    "base_branch",
                    "no usable local main/master branch and no origin default branch",
                    "pass base_branch naming a local branch to review against",
                ),
                None,
            ),
        },
    }
}

/// The runtime root to use (an explicit one must itself be valid: no silent fallback).
fn runtime_precondition(req: &StartRlcrRequest, pre: &mut Vec<Precondition>) -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let env_root = std::env::var_os("HUMANIZE_RUNTIME_ROOT").map(PathBuf::from);
    let codex_home = std::env::var_os("CODEX_HOME").map(PathBuf::from);
    let candidates = runtime_candidates(
        req.runtime_root.as_deref(),
        env_root.as_deref(),
        home.as_deref(),
        codex_home.as_deref(),
    );
    let runtime = if req.runtime_root.is_some() {
        req.runtime_root
            .clone()
            .filter(|r| r.join(SETUP_SCRIPT).is_file())
    } else {
        locate_runtime(&candidates)
    };
    match &runtime {
        Some(r) => pre.push(pass("humanize_runtime", format!("{}", r.join(SETUP_SCRIPT).display()))),
        None => pre.push(fail(
            "humanize_runtime",
            format!("no {SETUP_SCRIPT} in: {}", candidates.iter().map(|c| c.display().to_string()).collect::<Vec<_>>().join(", ")),
            "install Humanize (humania-org/humanize) as a skill or Claude plugin, or set HUMANIZE_RUNTIME_ROOT / runtime_root to its directory",
        )),
    }
    runtime
}
