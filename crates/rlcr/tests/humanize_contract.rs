//! `references/humanize-contract.md`, claim by claim, against the real runtime (the
//! vendored snapshot, run directly): what setup-rlcr-loop.sh accepts and refuses, what
//! it writes, and what cancel-rlcr-loop.sh does.

mod common;

use common::humanize::{RealRuntime, real_runtime};
use common::*;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use vllm_sota_core::humanize::{LoopPhase, newest_loop};

const PLAN: &str = ".humanize/plan/plan.md";

struct Scratch {
    _dir: tempfile::TempDir,
    repo_dir: PathBuf,
    rt: RealRuntime,
}

/// A clean repository on `main` with `.humanize*` ignored and a valid plan at [`PLAN`].
fn scratch() -> Option<Scratch> {
    let dir = tempfile::tempdir().unwrap();
    let rt = real_runtime(dir.path())?;
    let repo_dir = dir.path().join("repo");
    std::fs::create_dir_all(&repo_dir).unwrap();
    make_repo(&repo_dir, true);
    write_plan(&repo_dir, &plan_with_criteria(3));
    Some(Scratch {
        _dir: dir,
        repo_dir,
        rt,
    })
}

fn plan_with_criteria(n: usize) -> String {
    let acs: String = (1..=n)
        .map(|i| format!("- AC-{i}: criterion {i}\n"))
        .collect();
    format!(
        "# Plan\n\n## Goal\n\nMake it fast.\n\n## Acceptance Criteria\n\n{acs}\n## Notes\n\nDetails.\n"
    )
}

fn write_plan(repo: &Path, text: &str) {
    write_written(&repo.join(PLAN), text);
}

fn run(s: &Scratch, script: &str, args: &[&str], path: OsString) -> (i32, String, String) {
    let out = Command::new("bash")
        .arg(s.rt.root.join(script))
        .args(args)
        .current_dir(&s.repo_dir)
        .env("PATH", path)
        .env("CLAUDE_PROJECT_DIR", &s.repo_dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn setup(s: &Scratch, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![PLAN, "--yolo", "--base-branch", "main"];
    args.extend_from_slice(extra);
    run(
        s,
        "scripts/setup-rlcr-loop.sh",
        &args,
        s.rt.path_with_codex(),
    )
}

fn refused(s: &Scratch, extra: &[&str], needle: &str) {
    let (code, _, err) = setup(s, extra);
    assert_eq!(code, 1, "expected a refusal naming {needle:?}: {err}");
    assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    assert!(
        newest_loop(&s.repo_dir).is_none(),
        "no loop after a refusal"
    );
}

#[test]
fn setup_writes_state_tracker_prompt_and_the_session_signal() {
    let Some(s) = scratch() else { return };
    let (code, out, err) = setup(&s, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("=== start-rlcr-loop activated ==="));
    let l = newest_loop(&s.repo_dir).unwrap();
    assert_eq!(
        (l.phase.clone(), l.current_round),
        (LoopPhase::Active, Some(0))
    );
    let state = std::fs::read_to_string(&l.state_file).unwrap();
    let keys: Vec<&str> = state
        .lines()
        .filter(|x| *x != "---")
        .map(|x| x.split(':').next().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "current_round",
            "max_iterations",
            "codex_model",
            "codex_effort",
            "codex_timeout",
            "push_every_round",
            "full_review_round",
            "plan_file",
            "plan_tracked",
            "start_branch",
            "base_branch",
            "base_commit",
            "review_started",
            "ask_codex_question",
            "session_id",
            "agent_teams",
            "privacy_mode",
            "bitlesson_required",
            "bitlesson_file",
            "bitlesson_allow_empty_none",
            "mainline_stall_count",
            "last_mainline_verdict",
            "drift_status",
            "started_at"
        ]
    );
    for line in [
        "ask_codex_question: false",
        "base_branch: main",
        "plan_file: .humanize/plan/plan.md",
        "session_id:",
        "drift_status: normal",
    ] {
        assert!(state.lines().any(|x| x == line), "{line}: {state}");
    }
    for f in [
        "plan.md",
        "goal-tracker.md",
        "round-0-prompt.md",
        "round-0-summary.md",
    ] {
        assert!(l.dir.join(f).is_file(), "{f}");
    }
    let summary = std::fs::read_to_string(l.dir.join("round-0-summary.md")).unwrap();
    assert!(summary.contains("## BitLesson Delta") && summary.contains("[Describe what was done]"));
    assert!(s.repo_dir.join(".humanize/bitlesson.md").is_file());
    let signal = std::fs::read_to_string(s.repo_dir.join(".humanize/.pending-session-id")).unwrap();
    assert_eq!(
        signal.lines().next().unwrap(),
        l.state_file.display().to_string()
    );
    assert!(
        s.rt.codex_calls().is_empty(),
        "setup only checks `command -v codex`"
    );
    // A second setup is refused while the loop is active.
    let (code, _, err) = setup(&s, &[]);
    assert_eq!(code, 1);
    assert!(err.contains("An RLCR loop is already active"), "{err}");
}

#[test]
fn only_25_lines_of_acceptance_criteria_reach_the_goal_tracker() {
    let Some(s) = scratch() else { return };
    write_plan(&s.repo_dir, &plan_with_criteria(30));
    assert_eq!(setup(&s, &[]).0, 0);
    let l = newest_loop(&s.repo_dir).unwrap();
    let tracker = std::fs::read_to_string(l.dir.join("goal-tracker.md")).unwrap();
    assert!(tracker.contains("- AC-24: criterion 24\n"));
    assert!(
        !tracker.contains("AC-25:"),
        "the 25th copied line is AC-24 (a blank line comes first)"
    );
}

#[test]
fn setup_refuses_what_the_contract_says() {
    let Some(s) = scratch() else { return };
    refused(
        &s,
        &["--strict-success"],
        "Unknown option: --strict-success",
    );
    let (code, help, _) = run(
        &s,
        "scripts/setup-rlcr-loop.sh",
        &["--help"],
        s.rt.path_with_codex(),
    );
    assert_eq!(code, 0);
    assert!(help.contains("--base-branch") && !help.contains("--strict-success"));

    write_plan(&s.repo_dir, "# Plan\n\nshort\n");
    refused(&s, &[], "Plan is too simple");
    write_plan(
        &s.repo_dir,
        "# Plan\n\n## Goal\n\n## Acceptance Criteria\n\n## Notes\n\n# more\n",
    );
    refused(&s, &[], "insufficient content");
    write_plan(&s.repo_dir, &plan_with_criteria(3));

    // Missing programs.
    let (code, _, err) = run(
        &s,
        "scripts/setup-rlcr-loop.sh",
        &[PLAN, "--yolo"],
        s.rt.path_without_codex(),
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("Missing required dependencies for RLCR loop") && err.contains("- codex"),
        "{err}"
    );
    let no_jq = s.rt.path_without("jq", &s._dir.path().join("no-jq"));
    let (code, _, err) = run(&s, "scripts/setup-rlcr-loop.sh", &[PLAN, "--yolo"], no_jq);
    assert_eq!(code, 1);
    assert!(err.contains("- jq"), "{err}");

    // A dirty tree (untracked .humanize paths do not count).
    std::fs::write(s.repo_dir.join("scratch.txt"), "x").unwrap();
    refused(&s, &[], "Git working tree is not clean");
    std::fs::remove_file(s.repo_dir.join("scratch.txt")).unwrap();

    // A YAML-unsafe branch.
    let repo = git2::Repository::open(&s.repo_dir).unwrap();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    repo.branch("fix#1", &head, false).unwrap();
    repo.set_head("refs/heads/fix#1").unwrap();
    refused(&s, &[], "Branch name contains YAML-unsafe characters");
    repo.set_head("refs/heads/main").unwrap();

    // A base branch that does not exist locally.
    let (code, _, err) = run(
        &s,
        "scripts/setup-rlcr-loop.sh",
        &[PLAN, "--yolo", "--base-branch", "nope"],
        s.rt.path_with_codex(),
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("Specified base branch does not exist: nope"),
        "{err}"
    );

    // A tracked plan (force-added although ignored).
    let mut index = repo.index().unwrap();
    index.add_path(Path::new(PLAN)).unwrap();
    index.write().unwrap();
    commit_all(&repo, "track the plan");
    refused(&s, &[], "Plan file must be gitignored");
}

#[test]
fn setup_refuses_a_symlinked_plan_directory_and_accepts_an_unignored_humanize() {
    let Some(s) = scratch() else { return };
    let real = s._dir.path().join("real-plan-dir");
    std::fs::create_dir_all(&real).unwrap();
    std::fs::rename(s.repo_dir.join(".humanize/plan"), real.join("plan")).unwrap();
    std::os::unix::fs::symlink(real.join("plan"), s.repo_dir.join(".humanize/plan")).unwrap();
    refused(&s, &[], "symbolic link in parent directory");
    std::fs::remove_file(s.repo_dir.join(".humanize/plan")).unwrap();
    std::fs::rename(real.join("plan"), s.repo_dir.join(".humanize/plan")).unwrap();

    // The runtime itself does not require `.humanize*` to be ignored (its clean-tree
    // check skips untracked .humanize paths): start_rlcr's precondition is stricter.
    std::fs::write(s.repo_dir.join(".gitignore"), "__pycache__/\n").unwrap();
    let repo = git2::Repository::open(&s.repo_dir).unwrap();
    let mut index = repo.index().unwrap();
    index.add_path(Path::new(".gitignore")).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let parent = repo.head().unwrap().peel_to_commit().unwrap();
    let sig = git2::Signature::now("t", "t@e").unwrap();
    repo.commit(Some("HEAD"), &sig, &sig, "unignore", &tree, &[&parent])
        .unwrap();
    let (code, _, err) = setup(&s, &[]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn auto_detection_prefers_main_over_master_without_a_remote() {
    let Some(s) = scratch() else { return };
    let repo = git2::Repository::open(&s.repo_dir).unwrap();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    repo.branch("master", &head, false).unwrap();
    let (code, _, err) = run(
        &s,
        "scripts/setup-rlcr-loop.sh",
        &[PLAN, "--yolo"],
        s.rt.path_with_codex(),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        newest_loop(&s.repo_dir).unwrap().base_branch.as_deref(),
        Some("main")
    );
}

#[test]
fn cancel_renames_the_state_file_and_removes_the_session_signal() {
    let Some(s) = scratch() else { return };
    let cancel = |args: &[&str]| {
        run(
            &s,
            "scripts/cancel-rlcr-loop.sh",
            args,
            s.rt.path_with_codex(),
        )
    };
    let (code, out, _) = cancel(&[]);
    assert_eq!((code, out.lines().next()), (1, Some("NO_LOOP")));
    assert_eq!(setup(&s, &[]).0, 0);
    let l = newest_loop(&s.repo_dir).unwrap();
    let (code, out, err) = cancel(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().next(), Some("CANCELLED"));
    let after = newest_loop(&s.repo_dir).unwrap();
    assert_eq!(after.phase, LoopPhase::Cancelled);
    assert_eq!(after.state_file, l.dir.join("cancel-state.md"));
    assert!(l.dir.join(".cancel-requested").is_file());
    assert!(!s.repo_dir.join(".humanize/.pending-session-id").exists());

    // In the finalize phase cancel asks for --force (exit 2).
    std::fs::rename(
        l.dir.join("cancel-state.md"),
        l.dir.join("finalize-state.md"),
    )
    .unwrap();
    let (code, out, _) = cancel(&[]);
    assert_eq!(
        (code, out.lines().next()),
        (2, Some("FINALIZE_NEEDS_CONFIRM"))
    );
    let (code, out, _) = cancel(&["--force"]);
    assert_eq!((code, out.lines().next()), (0, Some("CANCELLED_FINALIZE")));
    // Only the newest directory counts: an older active state is ignored by the runtime.
    let older = s.repo_dir.join(".humanize/rlcr/2000-01-01_00-00-00");
    write_written(&older.join("state.md"), "---\ncurrent_round: 1\n---\n");
    assert_eq!(cancel(&[]).0, 1);
}
