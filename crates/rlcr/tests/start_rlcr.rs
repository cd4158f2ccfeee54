//! start_rlcr in temporary git repositories (created with git2) against the
//! contract-following Humanize test runtime.

mod common;

use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use vllm_sota_core::layout::CampaignPaths;
use vllm_sota_core::{Tool, ToolContext};
use vllm_sota_rlcr::start::{self, StartRlcr, StartRlcrReport, StartRlcrRequest, StartStatus};

struct Setup {
    _dir: tempfile::TempDir,
    paths: CampaignPaths,
    checkout: PathBuf,
    runtime: PathBuf,
}

/// A ready campaign: clean repo with `.humanize*` ignored, fixed benchmark, history notes.
fn setup(knobs: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let checkout = dir.path().join("vllm");
    std::fs::create_dir_all(&checkout).unwrap();
    let (_repo, head) = make_repo(&checkout, true);
    let paths = make_campaign(
        &dir.path().join("run"),
        &campaign_record(Some(&checkout), Some(head), &["vllm", "sglang"]),
    );
    let mut rows = repeats("sg", "sglang", "sglang-best", "chat", &[10.0, 10.02, 9.98]);
    rows.extend(repeats(
        "vl",
        "vllm",
        "vllm-best",
        "chat",
        &[9.0, 9.01, 8.99],
    ));
    write_rows(&paths.candidates(), &rows);
    write_written(
        &paths.history_notes(),
        "# Model PR history notes\n\n- vllm/llama31/README.en.md\n",
    );
    let runtime = runtime_copy(dir.path(), knobs);
    Setup {
        _dir: dir,
        paths,
        checkout,
        runtime,
    }
}

fn request(s: &Setup, extra: serde_json::Value) -> StartRlcrRequest {
    let mut req = json!({"campaign_dir": s.paths.root, "runtime_root": s.runtime});
    for (k, v) in extra.as_object().unwrap() {
        req[k] = v.clone();
    }
    serde_json::from_value(req).unwrap()
}

fn start(s: &Setup, extra: serde_json::Value) -> StartRlcrReport {
    StartRlcr::run(request(s, extra), &ToolContext::new()).unwrap()
}

fn failed(r: &StartRlcrReport) -> Vec<&str> {
    r.preconditions
        .iter()
        .filter(|p| !p.passed)
        .map(|p| p.name.as_str())
        .collect()
}

/// The arguments of the last call (the first call is the `--help` probe).
fn argv_log(s: &Setup) -> String {
    let text = std::fs::read_to_string(s.runtime.join("argv.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("--help"),
        "the runtime's --help is probed first: {text}"
    );
    lines.last().unwrap_or(&"").to_string()
}

fn knobs_with_log(dir_hint: &str) -> String {
    format!("HUMANIZE_TEST_ARGV_LOG=\"$SCRIPT_DIR/../argv.log\"\n{dir_hint}")
}

#[test]
fn happy_path_with_strict_success() {
    let s = setup(&knobs_with_log(""));
    let r = start(&s, json!({}));
    assert_eq!(
        r.status,
        StartStatus::Started,
        "{:?} {:?}",
        r.failure,
        r.stderr_tail
    );
    assert!(r.started);
    assert_eq!(r.strict_success_supported, Some(true));
    assert!(failed(&r).is_empty());
    // The script got the relative plan path, --yolo and --strict-success (main is auto-detected: no --base-branch).
    assert_eq!(
        argv_log(&s).trim(),
        ".humanize/vllm-sota-agent/refined-plan.md --yolo --strict-success"
    );
    let state = PathBuf::from(r.state_path.as_ref().unwrap());
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(
        text.contains("strict_success: true")
            && text.contains("current_round: 0")
            && text.contains("ask_codex_question: false"),
        "{text}"
    );
    assert!(state.starts_with(s.checkout.join(".humanize/rlcr")));
    let prompt = PathBuf::from(r.round0_prompt_path.unwrap());
    assert_eq!(prompt, state.with_file_name("round-0-prompt.md"));
    // The rendered plan: filled placeholders, model, winners with exact commands, per-round obligations.
    let plan =
        std::fs::read_to_string(s.checkout.join(".humanize/vllm-sota-agent/refined-plan.md"))
            .unwrap();
    assert!(!plan.contains("{{"), "unfilled placeholder");
    for needle in [
        "# vLLM SOTA Humanize Plan: meta-llama/Llama-3.1-8B-Instruct",
        "1 × NVIDIA H200",
        "sglang-serve --model /models/llama --tag=sglang-best",
        "p50 TPOT ≤ 50 ms",
        "current_round: 0",
        "ask_codex_question: false",
        "round-0-prompt.md",
        "kernel/ncu-digests/<version>/",
        "AC-9",
    ] {
        assert!(plan.contains(needle), "plan lacks {needle:?}");
    }
    assert!(plan.contains(&s.paths.history_notes().display().to_string()));
    // The loop's prompt carries the plan (the script appends it).
    assert!(
        std::fs::read_to_string(&prompt)
            .unwrap()
            .contains("vLLM SOTA Humanize Plan")
    );
    // Logs captured in the campaign, not on our stdout.
    assert!(
        std::fs::read_to_string(s.paths.root.join("humanize/rlcr-setup.stdout.log"))
            .unwrap()
            .contains("start-rlcr-loop activated")
    );
    assert!(s.paths.root.join("humanize/rlcr-start.json").is_file());
    // A second start is refused: a loop is active.
    let again = start(&s, json!({}));
    assert_eq!(again.status, StartStatus::PreconditionsFailed);
    assert_eq!(failed(&again), vec!["no_active_loop"]);
}

#[test]
fn runtime_without_strict_success_is_started_without_the_flag() {
    let s = setup(&knobs_with_log("HUMANIZE_TEST_NO_STRICT=1\n"));
    let r = start(&s, json!({}));
    assert_eq!(
        r.status,
        StartStatus::Started,
        "{:?} {:?}",
        r.failure,
        r.stderr_tail
    );
    assert_eq!(r.strict_success_supported, Some(false));
    assert_eq!(
        argv_log(&s).trim(),
        ".humanize/vllm-sota-agent/refined-plan.md --yolo"
    );
    let text = std::fs::read_to_string(r.state_path.unwrap()).unwrap();
    assert!(!text.contains("strict_success"), "{text}");
}

#[test]
fn strict_flag_passed_but_not_recorded_is_a_failed_start() {
    let s = setup("HUMANIZE_TEST_DROP_STRICT=1\n");
    let r = start(&s, json!({}));
    assert_eq!(r.status, StartStatus::VerificationFailed);
    assert!(!r.started);
    let why = r.failure.unwrap();
    assert!(why.contains("strict_success: true"), "{why}");
    assert!(r.round0_prompt_path.is_none());
}

#[test]
fn non_zero_exit_reports_stderr_and_stops() {
    let s = setup("HUMANIZE_TEST_EXIT_CODE=3\n");
    let r = start(&s, json!({}));
    assert_eq!(r.status, StartStatus::RuntimeFailed);
    assert_eq!(r.exit_code, Some(3));
    assert!(
        r.stderr_tail
            .as_deref()
            .unwrap()
            .contains("simulated setup failure")
    );
    assert!(r.failure.unwrap().contains("exited with Some(3)"));
    assert!(
        start::active_states(&s.checkout).is_empty(),
        "no loop state may exist after a failed setup"
    );
}

#[test]
fn dry_run_renders_the_plan_and_starts_nothing() {
    let s = setup("");
    let r = start(&s, json!({"dry_run": true}));
    assert_eq!(r.status, StartStatus::DryRun);
    assert!(Path::new(r.plan_path.as_ref().unwrap()).is_file());
    assert!(r.command.is_empty());
    assert!(start::active_states(&s.checkout).is_empty());
}

// ---- each failing precondition gives its own message

#[test]
fn not_a_git_repository() {
    let s = setup("");
    std::fs::remove_dir_all(s.checkout.join(".git")).unwrap();
    let r = start(&s, json!({}));
    assert_eq!(failed(&r), vec!["git_repository"]);
    let p = &r.preconditions[0];
    assert!(p.detail.contains("not a git repository"), "{}", p.detail);
    assert!(p.fix.as_deref().unwrap().contains("clone vLLM"));
}

#[test]
fn repository_without_commits() {
    let s = setup("");
    std::fs::remove_dir_all(s.checkout.join(".git")).unwrap();
    git2::Repository::init(&s.checkout).unwrap();
    let r = start(&s, json!({}));
    assert_eq!(failed(&r), vec!["git_repository"]);
    assert!(r.preconditions[0].detail.contains("has no commit"));
}

#[test]
fn dirty_working_tree() {
    let s = setup("");
    std::fs::write(
        s.checkout.join("vllm/model_executor/models/llama.py"),
        "def forward(x):\n    return x * 2\n",
    )
    .unwrap();
    std::fs::write(s.checkout.join("scratch.txt"), "x").unwrap();
    // Humanize state does not count.
    std::fs::create_dir_all(s.checkout.join(".humanize/notes")).unwrap();
    std::fs::write(s.checkout.join(".humanize/notes/a.md"), "x").unwrap();
    let r = start(&s, json!({}));
    assert_eq!(failed(&r), vec!["clean_working_tree"]);
    let p = r
        .preconditions
        .iter()
        .find(|p| p.name == "clean_working_tree")
        .unwrap();
    assert!(
        p.detail.contains("llama.py")
            && p.detail.contains("scratch.txt")
            && !p.detail.contains(".humanize"),
        "{}",
        p.detail
    );
    assert!(p.fix.as_deref().unwrap().contains("commit or stash"));
}

#[test]
fn humanize_not_ignored_fails_and_fix_gitignore_commits_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup("");
    // Replace the checkout by one whose .gitignore lacks `.humanize*`.
    let checkout = dir.path().join("vllm2");
    std::fs::create_dir_all(&checkout).unwrap();
    let (repo, head) = make_repo(&checkout, false);
    let mut c = campaign_record(Some(&checkout), Some(head.clone()), &["vllm", "sglang"]);
    c.vllm_base_branch = Some("main".into());
    vllm_sota_core::fsx::write_json(&s.paths.campaign_json(), &c).unwrap();
    let r = start(&s, json!({}));
    assert_eq!(failed(&r), vec!["humanize_gitignored"]);
    assert!(
        r.preconditions
            .iter()
            .find(|p| p.name == "humanize_gitignored")
            .unwrap()
            .fix
            .as_deref()
            .unwrap()
            .contains("fix_gitignore: true")
    );
    // With the fix: `.humanize*` appended and committed; the tree stays clean; the loop starts.
    let r = start(&s, json!({"fix_gitignore": true}));
    assert_eq!(r.status, StartStatus::Started, "{:?}", r.preconditions);
    assert!(
        std::fs::read_to_string(checkout.join(".gitignore"))
            .unwrap()
            .contains(".humanize*")
    );
    let head_now = repo.head().unwrap().peel_to_commit().unwrap();
    assert_eq!(
        head_now.message().unwrap(),
        "Ignore Humanize RLCR runtime state (.humanize*)"
    );
    assert_eq!(head_now.parent_id(0).unwrap().to_string(), head);
}

#[test]
fn missing_base_branch() {
    let s = setup("");
    let r = start(&s, json!({"base_branch": "release-0.26"}));
    assert_eq!(failed(&r), vec!["base_branch"]);
    let p = r
        .preconditions
        .iter()
        .find(|p| p.name == "base_branch")
        .unwrap();
    assert!(
        p.detail.contains("`release-0.26` does not exist locally"),
        "{}",
        p.detail
    );
    assert!(
        p.fix
            .as_deref()
            .unwrap()
            .contains("git branch release-0.26")
    );
}

#[test]
fn base_branch_differing_from_autodetection_is_passed_explicitly() {
    let s = setup(&knobs_with_log(""));
    let repo = git2::Repository::open(&s.checkout).unwrap();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    repo.branch("develop", &head, false).unwrap();
    let r = start(&s, json!({"base_branch": "develop"}));
    assert_eq!(
        r.status,
        StartStatus::Started,
        "{:?} {:?}",
        r.failure,
        r.stderr_tail
    );
    assert_eq!(
        argv_log(&s).trim(),
        ".humanize/vllm-sota-agent/refined-plan.md --yolo --strict-success --base-branch develop"
    );
    assert!(
        std::fs::read_to_string(r.state_path.unwrap())
            .unwrap()
            .contains("base_branch: develop")
    );
}

#[test]
fn ambiguous_autodetection_without_a_base_branch() {
    let s = setup("");
    let mut c: vllm_sota_core::layout::Campaign = s.paths.campaign().unwrap();
    c.vllm_base_branch = None;
    vllm_sota_core::fsx::write_json(&s.paths.campaign_json(), &c).unwrap();
    let repo = git2::Repository::open(&s.checkout).unwrap();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    repo.branch("master", &head, false).unwrap();
    let r = start(&s, json!({}));
    assert_eq!(failed(&r), vec!["base_branch"]);
    assert!(
        r.preconditions
            .iter()
            .find(|p| p.name == "base_branch")
            .unwrap()
            .detail
            .contains("ambiguous")
    );
}

#[test]
fn active_loop_state() {
    let s = setup("");
    write_written(
        &s.checkout
            .join(".humanize/rlcr/2026-11-29_10-00-00/state.md"),
        "---\ncurrent_round: 3\n---\n",
    );
    let r = start(&s, json!({}));
    assert_eq!(failed(&r), vec!["no_active_loop"]);
    assert!(
        r.preconditions
            .iter()
            .find(|p| p.name == "no_active_loop")
            .unwrap()
            .fix
            .as_deref()
            .unwrap()
            .contains("cancel-rlcr-loop.sh")
    );
    // A finished loop (terminal state file) is not active.
    std::fs::rename(
        s.checkout
            .join(".humanize/rlcr/2026-11-29_10-00-00/state.md"),
        s.checkout
            .join(".humanize/rlcr/2026-11-29_10-00-00/complete-state.md"),
    )
    .unwrap();
    assert!(failed(&start(&s, json!({"dry_run": true}))).is_empty());
}

#[test]
fn missing_fixed_benchmark() {
    let s = setup("");
    std::fs::write(s.paths.candidates(), "").unwrap();
    let r = start(&s, json!({}));
    assert_eq!(failed(&r), vec!["fixed_benchmark"]);
    assert!(
        r.preconditions
            .iter()
            .find(|p| p.name == "fixed_benchmark")
            .unwrap()
            .fix
            .as_deref()
            .unwrap()
            .contains("fixed fair benchmark")
    );
}

#[test]
fn missing_history_notes() {
    let s = setup("");
    std::fs::write(
        s.paths.history_notes(),
        format!("{}\n", vllm_sota_core::layout::PLACEHOLDER_MARKER),
    )
    .unwrap();
    let r = start(&s, json!({}));
    assert_eq!(failed(&r), vec!["history_notes"]);
    assert!(
        r.preconditions
            .iter()
            .find(|p| p.name == "history_notes")
            .unwrap()
            .fix
            .as_deref()
            .unwrap()
            .contains("history_notes")
    );
}

#[test]
fn missing_runtime() {
    let s = setup("");
    let r = start(
        &s,
        json!({"runtime_root": s.paths.root.join("no-humanize")}),
    );
    assert_eq!(failed(&r), vec!["humanize_runtime"]);
    let p = r
        .preconditions
        .iter()
        .find(|p| p.name == "humanize_runtime")
        .unwrap();
    assert!(p.detail.contains("scripts/setup-rlcr-loop.sh"));
    assert!(p.fix.as_deref().unwrap().contains("HUMANIZE_RUNTIME_ROOT"));
}

#[test]
fn runtime_search_order_and_plugin_directories() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let plugin = h.join(".claude/plugins/cache/PolyArch/humanize/1.16.5");
    std::fs::create_dir_all(plugin.join("scripts")).unwrap();
    std::fs::write(plugin.join("scripts/setup-rlcr-loop.sh"), "#!/bin/bash\n").unwrap();
    let c = start::runtime_candidates(None, Some(Path::new("/env/humanize")), Some(h), None);
    assert_eq!(c[0], PathBuf::from("/env/humanize"));
    assert_eq!(c[1], h.join(".claude/skills/humanize"));
    assert_eq!(c[2], h.join(".codex/skills/humanize"));
    assert_eq!(c[3], h.join(".agents/skills/humanize"));
    assert_eq!(c[4], plugin);
    assert_eq!(start::locate_runtime(&c), Some(plugin.clone()));
    // A skill install wins over the plugin once it exists.
    let skill = h.join(".codex/skills/humanize");
    std::fs::create_dir_all(skill.join("scripts")).unwrap();
    std::fs::write(skill.join("scripts/setup-rlcr-loop.sh"), "#!/bin/bash\n").unwrap();
    assert_eq!(
        start::locate_runtime(&start::runtime_candidates(None, None, Some(h), None)),
        Some(skill)
    );
    // $CODEX_HOME replaces ~/.codex.
    let c = start::runtime_candidates(None, None, Some(h), Some(Path::new("/opt/codex")));
    assert_eq!(c[1], PathBuf::from("/opt/codex/skills/humanize"));
}

#[test]
fn template_placeholders_must_all_be_filled() {
    let e = start::render_template("a {{model}} b {{unknown_thing}}", &[("model", "m".into())])
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown_thing"), "{e}");
    assert_eq!(
        start::render_template("{{model}}!", &[("model", "x".into())]).unwrap(),
        "x!"
    );
}

#[test]
fn runs_as_an_inline_job_with_progress_and_the_report_as_result() {
    let s = setup("");
    let state = s.paths.root.join("humanize/start-rlcr-job.json");
    let req = json!({"campaign_dir": s.paths.root, "runtime_root": s.runtime});
    let done =
        vllm_sota_core::jobs::run_inline(&state, start::JOB_KIND, req, start::run_job).unwrap();
    assert_eq!(
        done.status,
        vllm_sota_core::jobs::JobStatus::Succeeded,
        "{:?}",
        done.error
    );
    let result = done.result.unwrap();
    assert_eq!(result["status"], "started");
    assert!(
        result["round0_prompt_path"]
            .as_str()
            .unwrap()
            .ends_with("round-0-prompt.md")
    );
    assert_eq!(done.progress.done, 4.0);
    // A request with a typo fails the job with the field named.
    let bad = vllm_sota_core::jobs::run_inline(
        &s.paths.root.join("humanize/bad-job.json"),
        start::JOB_KIND,
        json!({"campaign_dir": s.paths.root, "runtime_rot": "x"}),
        start::run_job,
    )
    .unwrap();
    assert_eq!(bad.status, vllm_sota_core::jobs::JobStatus::Failed);
    assert!(bad.error.unwrap().contains("runtime_rot"));
}

#[test]
fn a_hung_runtime_is_killed_at_the_deadline() {
    let s = setup("HUMANIZE_TEST_SLEEP=30\n");
    let t = std::time::Instant::now();
    let r = start(&s, json!({"timeout_s": 1}));
    assert_eq!(r.status, StartStatus::RuntimeFailed);
    assert!(r.failure.unwrap().contains("did not finish within 1 s"));
    assert!(t.elapsed() < std::time::Duration::from_secs(20));
    assert!(start::active_states(&s.checkout).is_empty());
}
