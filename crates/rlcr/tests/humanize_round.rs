//! A Humanize round driven by our tools passes the real runtime's own checks: start_rlcr
//! on the vendored runtime, the agent's round-0 goal-tracker work, `checkpoint`'s
//! round scaffold, then the runtime's stop hook (with a stub codex) reaches the Codex
//! review and moves the loop to round 1; the next checkpoint scaffolds round 1.

mod common;

use common::*;
use serde_json::json;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use vllm_sota_core::humanize::newest_loop;
use vllm_sota_core::{Tool, ToolContext};
use vllm_sota_rlcr::{self as start, Checkpoint, SCAFFOLD_MARKER, StartStatus};

/// A started loop: [`Setup`] after a successful `start_rlcr`.
type Loop = Setup;

fn started() -> Option<Loop> {
    let s = setup()?;
    let (paths, rt) = (&s.paths, &s.rt);
    let r = start::run_start_rlcr_with_path(
        serde_json::from_value(json!({"campaign_dir": paths.root, "runtime_root": rt.root}))
            .unwrap(),
        &ToolContext::new(),
        Some(rt.path_with_codex()),
    )
    .unwrap();
    assert_eq!(
        r.status,
        StartStatus::Started,
        "{:?} {:?}",
        r.failure,
        r.stderr_tail
    );
    Some(s)
}

fn bash(
    script: &Path,
    args: &[&str],
    cwd: &Path,
    path: OsString,
    stdin: &str,
) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new("bash")
        .arg(script)
        .args(args)
        .current_dir(cwd)
        .env("PATH", path)
        .env("CLAUDE_PROJECT_DIR", cwd)
        .env("XDG_CACHE_HOME", cwd.parent().unwrap().join("xdg-cache"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The runtime's own BitLesson check on a summary (empty stdout and exit 0 = accepted).
fn bitlesson_check(l: &Loop, summary: &Path, round: u32) -> (i32, String) {
    let (code, out, err) = bash(
        &l.rt.root.join("scripts/bitlesson-validate-delta.sh"),
        &[
            "--summary-file",
            summary.to_str().unwrap(),
            "--bitlesson-file",
            l.checkout.join(".humanize/bitlesson.md").to_str().unwrap(),
            "--bitlesson-relpath",
            ".humanize/bitlesson.md",
            "--allow-empty-none",
            "true",
            "--template-dir",
            l.rt.root.join("prompt-template").to_str().unwrap(),
            "--current-round",
            &round.to_string(),
        ],
        &l.checkout,
        l.rt.path_with_codex(),
        "",
    );
    (code, format!("{out}{err}"))
}

fn checkpoint(l: &Loop) -> vllm_sota_rlcr::CheckpointReport {
    Checkpoint::run(
        serde_json::from_value(json!({
            "campaign_dir": l.paths.root,
            "tests_run": ["pytest tests/models/test_llama.py"],
            "next_planned_patch": "fuse the decode RMSNorm into the residual add",
        }))
        .unwrap(),
        &ToolContext::new(),
    )
    .unwrap()
}

#[test]
fn a_round_scaffolded_by_checkpoint_passes_the_runtimes_stop_hook() {
    let Some(l) = started() else { return };
    let lp = newest_loop(&l.checkout).unwrap();
    // Round 0: checkpoint replaces the runtime's template and writes the contract.
    let cp = checkpoint(&l);
    let files = cp.round_files.expect("an active loop gets round files");
    assert_eq!(files.humanize_round, 0);
    assert!(files.summary_written && files.contract_written, "{files:?}");
    let summary = PathBuf::from(&files.summary_path);
    assert_eq!(summary, lp.dir.join("round-0-summary.md"));
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(text.starts_with(SCAFFOLD_MARKER), "{text}");
    for needle in [
        "# Round 0 Summary",
        "## Files Changed",
        "`pytest tests/models/test_llama.py`",
        "fuse the decode RMSNorm",
        "## BitLesson Delta",
        "Action: none",
    ] {
        assert!(text.contains(needle), "summary lacks {needle:?}:\n{text}");
    }
    assert_eq!(bitlesson_check(&l, &summary, 0), (0, String::new()));
    let contract = std::fs::read_to_string(&files.contract_path).unwrap();
    assert!(
        contract.contains("- Mainline Objective: the next planned vLLM patch"),
        "{contract}"
    );
    assert!(contract.contains("- Target ACs: AC-3"), "{contract}");

    // The agent's round-0 duty: initialize the goal tracker (the hook checks it in round 0).
    let tracker = lp.dir.join("goal-tracker.md");
    let t = std::fs::read_to_string(&tracker).unwrap().replace(
        "| [To be populated by Claude based on plan] | - | pending |",
        "| [mainline] profile and patch decode | AC-3 | in_progress |",
    );
    std::fs::write(&tracker, t).unwrap();

    // The runtime's stop hook: every offline check passes and Codex is asked to review.
    let (code, out, err) = bash(
        &l.rt.root.join("hooks/loop-codex-stop-hook.sh"),
        &[],
        &l.checkout,
        l.rt.path_with_codex(),
        r#"{"session_id":"test-session","hook_event_name":"Stop","stop_hook_active":false}"#,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        l.rt.codex_calls().iter().any(|c| c.starts_with("exec ")),
        "the hook stopped before the Codex review: {out}\n{err}"
    );
    let next = newest_loop(&l.checkout).unwrap();
    assert_eq!(next.current_round, Some(1), "{out}");
    assert!(lp.dir.join("round-0-review-result.md").is_file());

    // Round 1: the runtime left its template (which its own check rejects); checkpoint replaces it.
    let template = lp.dir.join("round-1-summary.md");
    assert_ne!(
        bitlesson_check(&l, &template, 1).1,
        "",
        "the runtime's round-1 template"
    );
    let cp = checkpoint(&l);
    let files = cp.round_files.unwrap();
    assert_eq!(files.humanize_round, 1);
    assert!(files.summary_written && files.contract_written);
    assert_eq!(bitlesson_check(&l, &template, 1), (0, String::new()));

    // An agent's own summary is kept (our own contract scaffold is refreshed).
    std::fs::write(&template, "# Round 1 Summary\n\nMy own words.\n").unwrap();
    let files = checkpoint(&l).round_files.unwrap();
    assert!(
        !files.summary_written && files.contract_written,
        "{files:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&template).unwrap(),
        "# Round 1 Summary\n\nMy own words.\n"
    );
    let _ = &l.dir;
}

#[test]
fn round_blockers_name_long_files_and_tracked_humanize_state() {
    let Some(l) = started() else { return };
    let repo = git2::Repository::open(&l.checkout).unwrap();
    let long: String = (0..2001).map(|i| format!("x{i} = {i}\n")).collect();
    std::fs::write(l.checkout.join("vllm/model_executor/models/llama.py"), long).unwrap();
    commit_all(&repo, "a long file");
    let mut index = repo.index().unwrap();
    index.add_path(Path::new(".humanize/bitlesson.md")).unwrap();
    index.write().unwrap();
    let files = checkpoint(&l).round_files.unwrap();
    let all = files.blockers.join("\n");
    assert!(
        all.contains("`vllm/model_executor/models/llama.py` has 2001 lines"),
        "{all}"
    );
    assert!(all.contains(".humanize/bitlesson.md"), "{all}");
    let summary = std::fs::read_to_string(&files.summary_path).unwrap();
    assert!(
        summary.contains("BLOCKING: `vllm/model_executor/models/llama.py`"),
        "{summary}"
    );
}

#[test]
fn no_round_files_without_an_active_loop() {
    let Some(l) = started() else { return };
    let lp = newest_loop(&l.checkout).unwrap();
    std::fs::rename(&lp.state_file, lp.dir.join("finalize-state.md")).unwrap();
    assert!(checkpoint(&l).round_files.is_none());
}
