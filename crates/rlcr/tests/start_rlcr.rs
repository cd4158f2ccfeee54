//! start_rlcr in temporary git repositories (created with git2) against the real
//! Humanize runtime (the vendored snapshot, unpacked per test, with a stub `codex`).

mod common;

use common::*;
use serde_json::json;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use vllm_sota_core::ToolContext;
use vllm_sota_rlcr::{self as start, PLAN_REL, StartRlcrReport, StartRlcrRequest, StartStatus};

fn request(s: &Setup, runtime: &Path, extra: serde_json::Value) -> StartRlcrRequest {
    let mut req = json!({"campaign_dir": s.paths.root, "runtime_root": runtime});
    for (k, v) in extra.as_object().unwrap() {
        req[k] = v.clone();
    }
    serde_json::from_value(req).unwrap()
}

fn start_with(s: &Setup, path: OsString, extra: serde_json::Value) -> StartRlcrReport {
    start::run_start_rlcr_with_path(
        request(s, &s.rt.root, extra),
        &ToolContext::new(),
        Some(path),
    )
    .unwrap()
}

/// start_rlcr on the real runtime with the stub codex on PATH.
fn start(s: &Setup, extra: serde_json::Value) -> StartRlcrReport {
    start_with(s, s.rt.path_with_codex(), extra)
}

fn failed(r: &StartRlcrReport) -> Vec<&str> {
    r.preconditions
        .iter()
        .filter(|p| !p.passed)
        .map(|p| p.name.as_str())
        .collect()
}

fn precondition<'a>(r: &'a StartRlcrReport, name: &str) -> &'a start::Precondition {
    r.preconditions
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no precondition {name}"))
}

fn git_status(checkout: &Path) -> Vec<String> {
    let repo = git2::Repository::open(checkout).unwrap();
    let mut o = git2::StatusOptions::new();
    o.include_untracked(true).recurse_untracked_dirs(true);
    repo.statuses(Some(&mut o))
        .unwrap()
        .iter()
        .map(|e| format!("{} {:?}", e.path().unwrap_or(""), e.status()))
        .collect()
}

#[test]
fn starts_on_the_real_runtime_with_the_plans_base_branch_and_every_criterion() {
    let Some(s) = setup() else { return };
    let r = start(&s, json!({}));
    assert_eq!(
        r.status,
        StartStatus::Started,
        "{:?} {:?} {:?}",
        r.failure,
        r.stderr_tail,
        r.preconditions
    );
    assert!(r.started && !r.is_failure());
    assert!(failed(&r).is_empty());
    assert_eq!(
        r.command[1..],
        [PLAN_REL, "--yolo", "--base-branch", "main"].map(String::from),
        "the base branch is always passed"
    );
    let state = PathBuf::from(r.state_path.as_ref().unwrap());
    assert!(state.starts_with(s.checkout.join(".humanize/rlcr")));
    let text = std::fs::read_to_string(&state).unwrap();
    for line in [
        "current_round: 0",
        "ask_codex_question: false",
        "base_branch: main",
        "plan_file: .humanize/vllm-sota-agent/refined-plan.md",
        "start_branch: main",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "state.md lacks {line:?}:\n{text}"
        );
    }
    let prompt = PathBuf::from(r.round0_prompt_path.unwrap());
    assert_eq!(prompt, state.with_file_name("round-0-prompt.md"));
    // The rendered plan: filled placeholders, winners with exact commands, one-line criteria.
    let plan = std::fs::read_to_string(s.checkout.join(PLAN_REL)).unwrap();
    assert!(!plan.contains("{{"), "unfilled placeholder");
    for needle in [
        "# vLLM SOTA Humanize Plan: meta-llama/Llama-3.1-8B-Instruct",
        "1 × NVIDIA H200",
        "sglang-serve --model /models/llama --tag=sglang-best",
        "p50 TPOT ≤ 50 ms",
        "kernel/ncu-digests/<version>/",
        "--base-branch main",
    ] {
        assert!(plan.contains(needle), "plan lacks {needle:?}");
    }
    assert!(plan.contains(&s.paths.history_notes().display().to_string()));
    let section = start::acceptance_section(&plan);
    assert!(
        section.lines().count() <= 24,
        "the acceptance criteria take {} lines; the runtime copies 25 including the closing heading",
        section.lines().count()
    );
    let ids = start::acceptance_ids(&section);
    assert_eq!(ids.len(), 9, "{ids:?}");
    for id in &ids {
        assert_eq!(
            section
                .lines()
                .filter(|l| l.contains(&format!("{id}:")))
                .count(),
            1,
            "one line per criterion: {id}"
        );
    }
    // Every criterion reached the tracker the real script wrote.
    let tracker = std::fs::read_to_string(r.goal_tracker_path.unwrap()).unwrap();
    let immutable = &tracker[..tracker.find("## MUTABLE SECTION").unwrap()];
    for id in &ids {
        assert!(
            immutable.contains(&format!("{id}:")),
            "{id} not in goal-tracker.md"
        );
    }
    // The loop's prompt carries the plan; logs are in the campaign, not on our stdout.
    assert!(
        std::fs::read_to_string(&prompt)
            .unwrap()
            .contains("vLLM SOTA Humanize Plan")
    );
    assert!(
        std::fs::read_to_string(s.paths.root.join("humanize/rlcr-setup.stdout.log"))
            .unwrap()
            .contains("start-rlcr-loop activated")
    );
    // The lineage row campaign_status reads; no stale session signal; the tree is clean.
    let lineage = std::fs::read_to_string(s.paths.lineage()).unwrap();
    let row: serde_json::Value = serde_json::from_str(lineage.lines().last().unwrap()).unwrap();
    assert_eq!(row["kind"], "start_rlcr");
    assert_eq!(row["base_branch"], "main");
    assert_eq!(row["state_path"], state.display().to_string());
    assert_eq!(row["vllm_checkout"], s.checkout.display().to_string());
    assert!(!s.checkout.join(".humanize/.pending-session-id").exists());
    assert!(s.checkout.join(".humanize/bitlesson.md").is_file());
    assert!(
        git_status(&s.checkout).is_empty(),
        "{:?}",
        git_status(&s.checkout)
    );
    // A second start is refused: a loop is active.
    let again = start(&s, json!({}));
    assert_eq!(again.status, StartStatus::PreconditionsFailed);
    assert!(again.is_failure());
    assert_eq!(failed(&again), vec!["no_active_loop"]);
}

#[test]
fn no_codex_on_path_is_a_failed_precondition_naming_codex() {
    let Some(s) = setup() else { return };
    let r = start_with(&s, s.rt.path_without_codex(), json!({}));
    assert_eq!(r.status, StartStatus::PreconditionsFailed);
    assert_eq!(failed(&r), vec!["codex"]);
    let p = precondition(&r, "codex");
    assert!(p.detail.contains("`codex` is not on PATH"), "{}", p.detail);
    assert!(p.fix.as_deref().unwrap().contains("@openai/codex"));
    assert!(r.failure.unwrap().contains("codex"));
    assert!(r.command.is_empty() && start::active_states(&s.checkout).is_empty());
}

#[test]
fn no_jq_on_path_is_a_failed_precondition_naming_jq() {
    let Some(s) = setup() else { return };
    let path = s.rt.path_without("jq", &s.dir.path().join("no-jq-bin"));
    let r = start_with(&s, path, json!({}));
    assert_eq!(failed(&r), vec!["jq"]);
    assert!(
        precondition(&r, "jq")
            .fix
            .as_deref()
            .unwrap()
            .contains("apt-get install jq")
    );
}

#[test]
fn non_zero_exit_reports_stderr_and_stops() {
    let Some(s) = setup() else { return };
    // A broken runtime: its setup script fails after our checks passed.
    let broken = s.dir.path().join("broken-runtime");
    write_written(
        &broken.join("scripts/setup-rlcr-loop.sh"),
        "echo 'Error: simulated setup failure' >&2\nexit 3\n",
    );
    let r = start::run_start_rlcr_with_path(
        request(&s, &broken, json!({})),
        &ToolContext::new(),
        Some(s.rt.path_with_codex()),
    )
    .unwrap();
    assert_eq!(r.status, StartStatus::RuntimeFailed);
    assert!(r.is_failure());
    assert_eq!(r.exit_code, Some(3));
    assert!(
        r.stderr_tail
            .as_deref()
            .unwrap()
            .contains("simulated setup failure")
    );
    assert!(r.failure.unwrap().contains("exited with Some(3)"));
    assert!(start::active_states(&s.checkout).is_empty());
    assert!(
        std::fs::read_to_string(s.paths.lineage())
            .unwrap_or_default()
            .is_empty()
    );
}

#[test]
fn a_state_file_with_another_base_branch_is_a_failed_start() {
    let Some(s) = setup() else { return };
    // A runtime that ignores --base-branch (as an old one auto-detecting origin's live default would).
    let drifting = s.dir.path().join("drifting-runtime");
    write_written(
        &drifting.join("scripts/setup-rlcr-loop.sh"),
        "d=.humanize/rlcr/2026-01-01_00-00-00; mkdir -p $d\nprintf -- '---\\ncurrent_round: 0\\nplan_file: .humanize/vllm-sota-agent/refined-plan.md\\nbase_branch: dev\\nask_codex_question: false\\n---\\n' > $d/state.md\ntouch $d/round-0-prompt.md $d/goal-tracker.md\n",
    );
    let r = start::run_start_rlcr_with_path(
        request(&s, &drifting, json!({})),
        &ToolContext::new(),
        Some(s.rt.path_with_codex()),
    )
    .unwrap();
    assert_eq!(r.status, StartStatus::VerificationFailed);
    let why = r.failure.unwrap();
    assert!(
        why.contains("`base_branch: dev`") && why.contains("`base_branch: main` is required"),
        "{why}"
    );
    assert!(
        why.contains("cancel-rlcr-loop.sh"),
        "the fix is named: {why}"
    );
    assert!(r.round0_prompt_path.is_none());
}

#[test]
fn dry_run_renders_the_plan_and_starts_nothing() {
    let Some(s) = setup() else { return };
    let r = start(&s, json!({"dry_run": true}));
    assert_eq!(r.status, StartStatus::DryRun);
    assert!(!r.is_failure());
    assert!(Path::new(r.plan_path.as_ref().unwrap()).is_file());
    assert!(r.command.is_empty());
    assert!(start::active_states(&s.checkout).is_empty());
}

// ---- each failing precondition gives its own message

#[test]
fn not_a_git_repository() {
    let Some(s) = setup() else { return };
    std::fs::remove_dir_all(s.checkout.join(".git")).unwrap();
    let r = start(&s, json!({}));
    assert_eq!(failed(&r), vec!["git_repository"]);
    let p = precondition(&r, "git_repository");
    assert!(p.detail.contains("not a git repository"), "{}", p.detail);
    assert!(p.fix.as_deref().unwrap().contains("clone vLLM"));
}

#[test]
fn repository_without_commits() {
    let Some(s) = setup() else { return };
    std::fs::remove_dir_all(s.checkout.join(".git")).unwrap();
    git2::Repository::init(&s.checkout).unwrap();
    let r = start(&s, json!({}));
    assert_eq!(failed(&r), vec!["git_repository"]);
    assert!(
        precondition(&r, "git_repository")
            .detail
            .contains("has no commit")
    );
}

#[test]
fn dirty_working_tree() {
    let Some(s) = setup() else { return };
    std::fs::write(
        s.checkout.join("vllm/model_executor/models/llama.py"),
        "def forward(x):\n    return x * 2\n",
    )
    .unwrap();
    std::fs::write(s.checkout.join("scratch.txt"), "x").unwrap();
    // Humanize state does not count.
    write_written(&s.checkout.join(".humanize/notes/a.md"), "x");
    let r = start(&s, json!({}));
    assert_eq!(failed(&r), vec!["clean_working_tree"]);
    let p = precondition(&r, "clean_working_tree");
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
    let Some(s) = setup() else { return };
    // Replace the checkout by one whose .gitignore lacks `.humanize*`.
    let checkout = s.dir.path().join("vllm2");
    std::fs::create_dir_all(&checkout).unwrap();
    let (repo, head) = make_repo(&checkout, false);
    let c = campaign_record(Some(&checkout), Some(head.clone()), &["vllm", "sglang"]);
    vllm_sota_core::fsx::write_json(&s.paths.campaign_json(), &c).unwrap();
    let r = start(&s, json!({}));
    assert_eq!(failed(&r), vec!["humanize_gitignored"]);
    assert!(
        precondition(&r, "humanize_gitignored")
            .fix
            .as_deref()
            .unwrap()
            .contains("fix_gitignore: true")
    );
    // With the fix: `.humanize*` appended and committed; the tree stays clean; the loop starts.
    let r = start(&s, json!({"fix_gitignore": true}));
    assert_eq!(
        r.status,
        StartStatus::Started,
        "{:?} {:?}",
        r.preconditions,
        r.stderr_tail
    );
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
    assert!(
        git_status(&checkout).is_empty(),
        "{:?}",
        git_status(&checkout)
    );
}

#[test]
fn a_tracked_plan_file_is_refused_and_left_as_committed() {
    let Some(s) = setup() else { return };
    let repo = git2::Repository::open(&s.checkout).unwrap();
    write_written(
        &s.checkout.join(PLAN_REL),
        "# an old plan, committed by mistake\n",
    );
    let mut index = repo.index().unwrap();
    index.add_path(Path::new(PLAN_REL)).unwrap(); // force-add an ignored path
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let parent = repo.head().unwrap().peel_to_commit().unwrap();
    let sig = git2::Signature::now("t", "t@e").unwrap();
    repo.commit(Some("HEAD"), &sig, &sig, "track plan", &tree, &[&parent])
        .unwrap();
    let r = start(&s, json!({}));
    assert_eq!(failed(&r), vec!["plan_path"]);
    let p = precondition(&r, "plan_path");
    assert!(p.detail.contains("tracked by git"), "{}", p.detail);
    assert!(p.fix.as_deref().unwrap().contains("git rm --cached"));
    assert_eq!(
        std::fs::read_to_string(s.checkout.join(PLAN_REL)).unwrap(),
        "# an old plan, committed by mistake\n",
        "the tracked plan is not overwritten"
    );
    assert!(
        git_status(&s.checkout).is_empty(),
        "{:?}",
        git_status(&s.checkout)
    );
}

#[test]
fn a_symlinked_humanize_directory_is_refused() {
    let Some(s) = setup() else { return };
    let elsewhere = s.dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, s.checkout.join(".humanize")).unwrap();
    let r = start(&s, json!({}));
    assert_eq!(failed(&r), vec!["plan_path"]);
    assert!(
        precondition(&r, "plan_path")
            .detail
            .contains("symbolic link")
    );
}

#[test]
fn a_yaml_unsafe_branch_is_refused() {
    let Some(s) = setup() else { return };
    let repo = git2::Repository::open(&s.checkout).unwrap();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    repo.branch("fix#1", &head, false).unwrap();
    repo.set_head("refs/heads/fix#1").unwrap();
    let r = start(&s, json!({}));
    assert_eq!(failed(&r), vec!["branch_name"]);
    assert!(precondition(&r, "branch_name").detail.contains("`fix#1`"));
    // A YAML-unsafe base branch is refused as well.
    repo.set_head("refs/heads/main").unwrap();
    let r = start(&s, json!({"base_branch": "fix#1"}));
    assert_eq!(failed(&r), vec!["base_branch"]);
}

#[test]
fn missing_base_branch() {
    let Some(s) = setup() else { return };
    let r = start(&s, json!({"base_branch": "release-0.26"}));
    assert_eq!(failed(&r), vec!["base_branch"]);
    let p = precondition(&r, "base_branch");
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
fn another_base_branch_is_passed_and_recorded() {
    let Some(s) = setup() else { return };
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
        r.command[3..],
        ["--base-branch", "develop"].map(String::from)
    );
    assert!(
        std::fs::read_to_string(r.state_path.unwrap())
            .unwrap()
            .lines()
            .any(|l| l == "base_branch: develop")
    );
}

#[test]
fn ambiguous_base_without_a_base_branch() {
    let Some(s) = setup() else { return };
    let mut c: vllm_sota_core::layout::Campaign = s.paths.campaign().unwrap();
    c.vllm_base_branch = None;
    vllm_sota_core::fsx::write_json(&s.paths.campaign_json(), &c).unwrap();
    let repo = git2::Repository::open(&s.checkout).unwrap();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    repo.branch("master", &head, false).unwrap();
    let r = start(&s, json!({}));
    assert_eq!(failed(&r), vec!["base_branch"]);
    assert!(precondition(&r, "base_branch").detail.contains("ambiguous"));
}

#[test]
fn active_loop_state_in_any_phase() {
    let Some(s) = setup() else { return };
    let d = s.checkout.join(".humanize/rlcr/2026-11-29_10-00-00");
    write_written(&d.join("state.md"), "---\ncurrent_round: 3\n---\n");
    let r = start(&s, json!({}));
    assert_eq!(failed(&r), vec!["no_active_loop"]);
    assert!(
        precondition(&r, "no_active_loop")
            .fix
            .as_deref()
            .unwrap()
            .contains("cancel-rlcr-loop.sh")
    );
    for (active, name) in [
        (true, "finalize-state.md"),
        (true, "methodology-analysis-state.md"),
        (false, "complete-state.md"),
        (false, "cancel-state.md"),
        (false, "maxiter-state.md"),
    ] {
        let now = std::fs::read_dir(&d)
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().ends_with("state.md"))
            .unwrap()
            .path();
        std::fs::rename(now, d.join(name)).unwrap();
        let r = start(&s, json!({"dry_run": true}));
        assert_eq!(failed(&r).contains(&"no_active_loop"), active, "{name}");
    }
}

#[test]
fn missing_fixed_benchmark() {
    let Some(s) = setup() else { return };
    std::fs::write(s.paths.candidates(), "").unwrap();
    let r = start(&s, json!({}));
    assert_eq!(failed(&r), vec!["fixed_benchmark"]);
    assert!(
        precondition(&r, "fixed_benchmark")
            .fix
            .as_deref()
            .unwrap()
            .contains("fixed fair benchmark")
    );
}

#[test]
fn missing_history_notes() {
    let Some(s) = setup() else { return };
    std::fs::write(
        s.paths.history_notes(),
        format!("{}\n", vllm_sota_core::layout::PLACEHOLDER_MARKER),
    )
    .unwrap();
    let r = start(&s, json!({}));
    assert_eq!(failed(&r), vec!["history_notes"]);
}

#[test]
fn missing_runtime() {
    let Some(s) = setup() else { return };
    let r = start(
        &s,
        json!({"runtime_root": s.paths.root.join("no-humanize")}),
    );
    assert_eq!(failed(&r), vec!["humanize_runtime"]);
    let p = precondition(&r, "humanize_runtime");
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
    let Some(s) = setup() else { return };
    let state = s.paths.root.join("humanize/start-rlcr-job.json");
    // The job runs with this process's PATH: a dry run needs no codex to pass the rest.
    let req = json!({"campaign_dir": s.paths.root, "runtime_root": s.rt.root, "dry_run": true});
    let done = vllm_sota_core::jobs::run_inline(
        &state,
        start::START_RLCR_JOB_KIND,
        req,
        start::run_start_rlcr_job,
    )
    .unwrap();
    assert_eq!(
        done.status,
        vllm_sota_core::jobs::JobStatus::Succeeded,
        "{:?}",
        done.error
    );
    let result = done.result.unwrap();
    let codex = start::find_program("codex", std::env::var_os("PATH").as_deref()).is_some();
    if codex {
        assert_eq!(result["status"], "dry_run", "{result}");
        assert_eq!(done.progress.done, 2.0);
    } else {
        assert_eq!(result["status"], "preconditions_failed", "{result}");
        assert_eq!(result["failure"], "precondition(s) failed: codex");
        assert_eq!(done.progress.done, 1.0);
    }
    // A request with a typo fails the job with the field named.
    let bad = vllm_sota_core::jobs::run_inline(
        &s.paths.root.join("humanize/bad-job.json"),
        start::START_RLCR_JOB_KIND,
        json!({"campaign_dir": s.paths.root, "runtime_rot": "x"}),
        start::run_start_rlcr_job,
    )
    .unwrap();
    assert_eq!(bad.status, vllm_sota_core::jobs::JobStatus::Failed);
    assert!(bad.error.unwrap().contains("runtime_rot"));
}

#[test]
fn a_hung_runtime_is_killed_at_the_deadline() {
    let Some(s) = setup() else { return };
    let hung = s.dir.path().join("hung-runtime");
    write_written(&hung.join("scripts/setup-rlcr-loop.sh"), "sleep 30\n");
    let t = std::time::Instant::now();
    let r = start::run_start_rlcr_with_path(
        request(&s, &hung, json!({"timeout_s": 1})),
        &ToolContext::new(),
        Some(s.rt.path_with_codex()),
    )
    .unwrap();
    assert_eq!(r.status, StartStatus::RuntimeFailed);
    assert!(r.failure.unwrap().contains("did not finish within 1 s"));
    assert!(t.elapsed() < std::time::Duration::from_secs(20));
    assert!(start::active_states(&s.checkout).is_empty());
}
