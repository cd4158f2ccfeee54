//! `start_rlcr`: check the preconditions, render the refined plan into the vLLM
//! checkout, locate the Humanize runtime and run its `setup-rlcr-loop.sh`, then verify
//! the loop really started. The contract followed is documented in
//! `references/humanize-contract.md` (PolyArch/humanize 1.16.5, commit 5f35814).

use anyhow::{Context, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;
use vllm_sota_core::fsx;
use vllm_sota_core::layout::{CampaignPaths, now_rfc3339};
use vllm_sota_core::redact::redact;
use vllm_sota_core::{Tool, ToolContext, refs};

use crate::{git, records, summary};
use vllm_sota_core::proc;

/// Where the plan goes, relative to the vLLM checkout (the setup script wants a relative path).
pub const PLAN_REL: &str = ".humanize/vllm-sota-agent/refined-plan.md";
/// The setup script, relative to a runtime root.
pub const SETUP_SCRIPT: &str = "scripts/setup-rlcr-loop.sh";
/// State files that mark a loop as active (upstream `resolve_active_state_file`).
/// Default deadline of the setup script.
pub const DEFAULT_TIMEOUT_S: u64 = 120;
pub const ACTIVE_STATE_FILES: &[&str] = &[
    "state.md",
    "finalize-state.md",
    "methodology-analysis-state.md",
];

/// Request of `start_rlcr`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRlcrRequest {
    /// Campaign run directory (holds campaign.json).
    pub campaign_dir: PathBuf,
    /// The vLLM checkout; default: campaign.json's vllm_checkout.
    #[serde(default)]
    pub vllm_checkout: Option<PathBuf>,
    /// Review base branch; default: campaign.json's vllm_base_branch, else Humanize's auto-detection.
    #[serde(default)]
    pub base_branch: Option<String>,
    /// Humanize runtime root (a directory with scripts/setup-rlcr-loop.sh); default: searched.
    #[serde(default)]
    pub runtime_root: Option<PathBuf>,
    /// When `.humanize*` is not gitignored: append it to .gitignore and commit that file. Default false.
    #[serde(default)]
    pub fix_gitignore: bool,
    /// Check preconditions and render the plan, but do not start the loop.
    #[serde(default)]
    pub dry_run: bool,
    /// Deadline for the setup script in seconds (default 120; the script itself takes seconds).
    #[serde(default)]
    pub timeout_s: Option<u64>,
}

/// One precondition.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Precondition {
    pub name: String,
    pub passed: bool,
    pub detail: String,
    /// How to fix it (when failed).
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StartStatus {
    /// The loop is running: state.md verified, round-0-prompt.md returned.
    Started,
    /// Preconditions passed and the plan was rendered; nothing started (dry_run).
    DryRun,
    /// At least one precondition failed; nothing was run.
    PreconditionsFailed,
    /// setup-rlcr-loop.sh exited non-zero (its stderr is in the report); do not bypass it.
    RuntimeFailed,
    /// The script exited 0 but the state on disk is not a correctly started loop.
    VerificationFailed,
}

/// Report of `start_rlcr`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StartRlcrReport {
    pub status: StartStatus,
    pub started: bool,
    /// Why the start failed (absent when started or dry run).
    pub failure: Option<String>,
    pub preconditions: Vec<Precondition>,
    pub vllm_checkout: Option<String>,
    /// Rendered plan (absolute path).
    pub plan_path: Option<String>,
    pub runtime_root: Option<String>,
    /// Whether the runtime's --help lists --strict-success.
    pub strict_success_supported: Option<bool>,
    /// The exact argv run (relative plan path, as the script requires).
    pub command: Vec<String>,
    pub exit_code: Option<i32>,
    /// Last 4000 characters of the script's stderr (redacted).
    pub stderr_tail: Option<String>,
    /// Logs of the script's stdout and stderr in the campaign's humanize/ directory.
    pub log_paths: Vec<String>,
    /// The active `.humanize/rlcr/<timestamp>/state.md`.
    pub state_path: Option<String>,
    /// `.humanize/rlcr/<timestamp>/round-0-prompt.md`: what the agent reads next.
    pub round0_prompt_path: Option<String>,
}

pub struct StartRlcr;

impl Tool for StartRlcr {
    const NAME: &'static str = "start_rlcr";
    const DESCRIPTION: &'static str = "Start the single Humanize RLCR loop in the vLLM checkout. Checks each precondition and reports pass/fail with the fix (git repo with a commit; clean tree except gitignored Humanize state; `.humanize*` gitignored, optionally added and committed with fix_gitignore; review base branch present locally; no active .humanize/rlcr/*/state.md; fixed benchmark and history notes written; Humanize runtime found), renders .humanize/vllm-sota-agent/refined-plan.md from the campaign (model, workload, SLA, winners with exact commands, artifact root, history notes, per-round obligations), runs the runtime's scripts/setup-rlcr-loop.sh with --yolo (plus --strict-success when its --help lists it, --base-branch when auto-detection would differ or be ambiguous), and verifies exactly one active state.md (with strict_success: true when that flag was passed) and returns round-0-prompt.md. A non-zero exit is reported with its stderr: never bypass it.";
    type Request = StartRlcrRequest;
    type Report = StartRlcrReport;

    fn run(request: Self::Request, ctx: &ToolContext) -> Result<Self::Report> {
        run_start_rlcr(request, ctx)
    }

    fn markdown(r: &Self::Report) -> String {
        let mut s = format!("# start_rlcr: {:?}\n\n", r.status);
        if let Some(f) = &r.failure {
            let _ = writeln!(s, "**Failure:** {f}\n");
        }
        let _ = writeln!(
            s,
            "| Precondition | Result | Detail | Fix |\n|---|---|---|---|"
        );
        for p in &r.preconditions {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                p.name,
                if p.passed { "pass" } else { "FAIL" },
                vllm_sota_core::md::cell(&p.detail),
                vllm_sota_core::md::cell(p.fix.as_deref().unwrap_or(""))
            );
        }
        if !r.command.is_empty() {
            let _ = writeln!(
                s,
                "\nCommand: `{}` (exit {:?})",
                records::shell_join(&r.command),
                r.exit_code
            );
        }
        if let Some(e) = &r.stderr_tail {
            let _ = writeln!(s, "\nstderr:\n```\n{e}\n```");
        }
        if let Some(p) = &r.state_path {
            let _ = writeln!(s, "\nState: `{p}`");
        }
        if let Some(p) = &r.round0_prompt_path {
            let _ = writeln!(s, "Next: read `{p}` and execute round 0.");
        }
        s
    }
}

/// Candidate runtime roots in search order: explicit, `$HUMANIZE_RUNTIME_ROOT`,
/// `~/.claude/skills/humanize`, `$CODEX_HOME/skills/humanize` (default `~/.codex`),
/// `~/.agents/skills/humanize`, then Claude plugin directories under `~/.claude/plugins`.
pub fn runtime_candidates(
    explicit: Option<&Path>,
    env_root: Option<&Path>,
    home: Option<&Path>,
    codex_home: Option<&Path>,
) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    out.extend(explicit.map(Path::to_path_buf));
    out.extend(env_root.map(Path::to_path_buf));
    if let Some(home) = home {
        out.push(home.join(".claude/skills/humanize"));
        out.push(
            codex_home
                .map(Path::to_path_buf)
                .unwrap_or_else(|| home.join(".codex"))
                .join("skills/humanize"),
        );
        out.push(home.join(".agents/skills/humanize"));
        // Plugin installs: ~/.claude/plugins/{cache,marketplaces}/<marketplace>/<plugin>[/<version>]
        let plugins = home.join(".claude/plugins");
        let mut found = Vec::new();
        walk_for_runtime(&plugins, 4, &mut found);
        found.sort();
        out.extend(found);
    }
    out
}

fn walk_for_runtime(dir: &Path, depth: u32, found: &mut Vec<PathBuf>) {
    if dir.join(SETUP_SCRIPT).is_file() && dir.to_string_lossy().to_lowercase().contains("humanize")
    {
        found.push(dir.to_path_buf());
        return;
    }
    if depth == 0 {
        return;
    }
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            walk_for_runtime(&e.path(), depth - 1, found);
        }
    }
}

/// The first candidate with `scripts/setup-rlcr-loop.sh`.
pub fn locate_runtime(candidates: &[PathBuf]) -> Option<PathBuf> {
    candidates
        .iter()
        .find(|c| c.join(SETUP_SCRIPT).is_file())
        .cloned()
}

/// Active loop state files under `<checkout>/.humanize/rlcr/*/`.
pub fn active_states(checkout: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(checkout.join(".humanize/rlcr"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for name in ACTIVE_STATE_FILES {
            let p = e.path().join(name);
            if p.is_file() {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Fill `{{name}}` placeholders; any placeholder left unfilled is an error naming it.
pub fn render_template(template: &str, values: &[(&str, String)]) -> Result<String> {
    let mut out = template.to_string();
    for (k, v) in values {
        out = out.replace(&format!("{{{{{k}}}}}"), v);
    }
    let re = regex::Regex::new(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}").expect("valid regex");
    let left: Vec<String> = re.captures_iter(&out).map(|c| c[1].to_string()).collect();
    if !left.is_empty() {
        anyhow::bail!(
            "refined-plan template has placeholders with no value: {}",
            left.join(", ")
        );
    }
    Ok(out)
}

/// Render the refined plan for this campaign.
pub fn render_plan(
    paths: &CampaignPaths,
    checkout: &Path,
    base_branch: &str,
    base_commit: &str,
) -> Result<String> {
    let campaign = paths.campaign()?;
    let rows = records::read_rows(&paths.candidates())?;
    let policy = crate::gap::GapPolicy::load()?;
    let (template, origin) = refs::load(
        "refined-plan-template.md",
        Some(include_str!("../../../references/refined-plan-template.md")),
    )?;
    let values = [
        ("model", campaign.model.clone()),
        ("hardware", summary::hardware(&rows, &campaign)),
        ("precision", campaign.precision.clone()),
        (
            "quantization",
            campaign
                .quantization
                .clone()
                .unwrap_or_else(|| "none".into()),
        ),
        ("tokenizer", campaign.tokenizer.clone()),
        ("artifact_root", paths.root.display().to_string()),
        ("history_notes", paths.history_notes().display().to_string()),
        ("target_checkout", checkout.display().to_string()),
        ("base_branch", base_branch.to_string()),
        ("base_commit", base_commit.to_string()),
        ("workload_table", summary::workload_table(&rows)),
        ("sla", summary::sla_text(&rows)),
        (
            "winners",
            summary::winners_markdown(&rows, policy.ranking_metric),
        ),
        (
            "noise_threshold_pct",
            policy.noise_threshold_pct.to_string(),
        ),
        ("min_repeats", policy.min_repeats.to_string()),
        ("rendered_at", now_rfc3339()),
    ];
    render_template(&template, &values).with_context(|| format!("rendering {origin}"))
}

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

pub fn run_start_rlcr(req: StartRlcrRequest, ctx: &ToolContext) -> Result<StartRlcrReport> {
    let paths = CampaignPaths::open(&req.campaign_dir)?;
    let campaign = paths.campaign()?;
    let mut pre: Vec<Precondition> = Vec::new();
    let mut report = StartRlcrReport {
        status: StartStatus::PreconditionsFailed,
        started: false,
        failure: None,
        preconditions: vec![],
        vllm_checkout: None,
        plan_path: None,
        runtime_root: None,
        strict_success_supported: None,
        command: vec![],
        exit_code: None,
        stderr_tail: None,
        log_paths: vec![],
        state_path: None,
        round0_prompt_path: None,
    };

    let checkout = req
        .vllm_checkout
        .clone()
        .or_else(|| campaign.vllm_checkout.clone());
    let mut base_branch: Option<String> = None;
    let mut pass_base_flag = false;
    let mut base_commit = String::new();
    match &checkout {
        None => pre.push(fail(
            "vllm_checkout",
            "no vLLM checkout given and campaign.json has none",
            "pass vllm_checkout (the vLLM git checkout to patch)",
        )),
        Some(dir) => {
            report.vllm_checkout = Some(dir.display().to_string());
            match git::open(dir) {
                Err(e) => pre.push(fail(
                    "git_repository",
                    format!("{e:#}"),
                    format!(
                        "clone vLLM into {} or pass vllm_checkout pointing at a git checkout",
                        dir.display()
                    ),
                )),
                Ok(repo) => match git::head_commit(&repo) {
                    None => pre.push(fail(
                        "git_repository",
                        format!("{} has no commit", dir.display()),
                        "commit the checkout's current state (git commit) before starting the loop",
                    )),
                    Some(head) => {
                        pre.push(pass(
                            "git_repository",
                            format!("{} at {}", dir.display(), &head[..head.len().min(12)]),
                        ));
                        base_commit = campaign.vllm_base_commit.clone().unwrap_or(head);
                        // .humanize* ignored (optionally fixed first, so the commit keeps the tree clean).
                        if git::humanize_ignored(&repo) {
                            pre.push(pass(
                                "humanize_gitignored",
                                "`.humanize/` and `.humanize-*` are gitignored",
                            ));
                        } else if req.fix_gitignore {
                            match git::ignore_humanize_and_commit(&repo) {
                                Ok(oid) if git::humanize_ignored(&repo) => pre.push(pass("humanize_gitignored", format!("added `.humanize*` to .gitignore and committed it ({})", &oid[..12]))),
                                Ok(_) => pre.push(fail("humanize_gitignored", "added `.humanize*` to .gitignore but the paths are still not ignored (a negation rule?)", "fix the ignore rules by hand so `.humanize/` and `.humanize-*` are ignored")),
                                Err(e) => pre.push(fail("humanize_gitignored", format!("could not add and commit .gitignore: {e:#}"), "add the line `.humanize*` to .gitignore and commit it")),
                            }
                        } else {
                            pre.push(fail(
                                "humanize_gitignored",
                                "`.humanize*` is not gitignored: RLCR state and the plan could be staged",
                                "add the line `.humanize*` to the checkout's .gitignore and commit it, or call start_rlcr again with fix_gitignore: true to have it added and committed",
                            ));
                        }
                        match git::dirty_paths(&repo) {
                            Ok(d) if d.is_empty() => pre.push(pass("clean_working_tree", "no changes outside gitignored Humanize state")),
                            Ok(d) => pre.push(fail(
                                "clean_working_tree",
                                format!("{} uncommitted path(s): {}", d.len(), d.iter().take(10).cloned().collect::<Vec<_>>().join(", ")),
                                "commit or stash these changes in the vLLM checkout (the loop starts from a clean tree)",
                            )),
                            Err(e) => pre.push(fail("clean_working_tree", format!("{e:#}"), "repair the repository (git status must work)")),
                        }
                        let expected = req
                            .base_branch
                            .clone()
                            .or_else(|| campaign.vllm_base_branch.clone());
                        let (auto, ambiguous) = git::autodetect_base(&repo);
                        match expected {
                            Some(b) if git::local_branch_exists(&repo, &b) => {
                                pass_base_flag = ambiguous || auto.as_deref() != Some(b.as_str());
                                pre.push(pass(
                                    "base_branch",
                                    format!(
                                        "`{b}` exists locally{}",
                                        if pass_base_flag { format!(" (auto-detection would pick {auto:?}{}: passing --base-branch)", if ambiguous { ", ambiguous" } else { "" }) } else { String::new() }
                                    ),
                                ));
                                base_branch = Some(b);
                            }
                            Some(b) => pre.push(fail(
                                "base_branch",
                                format!("review base branch `{b}` does not exist locally"),
                                format!("create it locally (e.g. `git branch {b} {}` or `git fetch origin {b}:{b}`), or pass base_branch with a local branch", &base_commit[..base_commit.len().min(12)]),
                            )),
                            None => match (auto, ambiguous) {
                                (Some(b), false) => {
                                    pre.push(pass("base_branch", format!("auto-detected `{b}`")));
                                    base_branch = Some(b);
                                }
                                (Some(_), true) => pre.push(fail("base_branch", "both `main` and `master` exist and origin has no default branch: auto-detection is ambiguous", "pass base_branch (it is then given to Humanize as --base-branch)")),
                                (None, _) => pre.push(fail("base_branch", "no local main/master branch and no origin default branch", "pass base_branch naming a local branch to review against")),
                            },
                        }
                    }
                },
            }
            let active = active_states(dir);
            if active.is_empty() {
                pre.push(pass(
                    "no_active_loop",
                    "no active .humanize/rlcr/*/state.md",
                ));
            } else {
                pre.push(fail(
                    "no_active_loop",
                    format!("active RLCR state: {}", active.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")),
                    "resume or finish that loop, or cancel it with the runtime's scripts/cancel-rlcr-loop.sh; never run two loops",
                ));
            }
        }
    }
    match records::read_rows(&paths.candidates()) {
        Ok(rows) if !rows.is_empty() => pre.push(pass(
            "fixed_benchmark",
            format!("{} row(s) in benchmark/candidates.jsonl", rows.len()),
        )),
        Ok(_) => pre.push(fail(
            "fixed_benchmark",
            "benchmark/candidates.jsonl has no rows",
            "run the fixed fair benchmark first",
        )),
        Err(e) => pre.push(fail(
            "fixed_benchmark",
            format!("{e:#}"),
            "repair or re-run the fixed benchmark",
        )),
    }
    if CampaignPaths::is_written(&paths.history_notes()) {
        pre.push(pass(
            "history_notes",
            "history/model-pr-history-notes.md is written",
        ));
    } else {
        pre.push(fail(
            "history_notes",
            "history/model-pr-history-notes.md is missing or still the placeholder",
            "run history_notes (Phase 0.5) first",
        ));
    }
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
        // An explicit root must itself be valid: no silent fallback to another runtime.
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
            "install Humanize (PolyArch/humanize) as a skill or Claude plugin, or set HUMANIZE_RUNTIME_ROOT / runtime_root to its directory",
        )),
    }
    report.runtime_root = runtime.as_ref().map(|r| r.display().to_string());
    let all_pass = pre.iter().all(|p| p.passed);
    report.preconditions = pre;
    ctx.progress(1.0, Some(4.0), "preconditions checked");
    if !all_pass {
        let failed: Vec<&str> = report
            .preconditions
            .iter()
            .filter(|p| !p.passed)
            .map(|p| p.name.as_str())
            .collect();
        report.failure = Some(format!("precondition(s) failed: {}", failed.join(", ")));
        return Ok(report);
    }
    let (checkout, runtime, base_branch) = (
        checkout.expect("checked"),
        runtime.expect("checked"),
        base_branch.expect("checked"),
    );

    let plan = render_plan(&paths, &checkout, &base_branch, &base_commit)?;
    let plan_path = checkout.join(PLAN_REL);
    fsx::write_text(&plan_path, &plan)?;
    report.plan_path = Some(plan_path.display().to_string());
    ctx.progress(2.0, Some(4.0), "plan rendered");
    if req.dry_run {
        report.status = StartStatus::DryRun;
        return Ok(report);
    }

    let script = runtime.join(SETUP_SCRIPT);
    let help_out = proc::Cmd::new("bash")
        .arg(&script)
        .arg("--help")
        .current_dir(&checkout)
        .env("CLAUDE_PROJECT_DIR", &checkout)
        .run_capture(Duration::from_secs(60))
        .context("running setup-rlcr-loop.sh --help")?;
    let strict = format!("{}\n{}", help_out.stdout, help_out.stderr).contains("--strict-success");
    report.strict_success_supported = Some(strict);

    let mut args: Vec<String> = vec![PLAN_REL.into(), "--yolo".into()];
    if strict {
        args.push("--strict-success".into());
    }
    if pass_base_flag {
        args.push("--base-branch".into());
        args.push(base_branch.clone());
    }
    report.command = std::iter::once(script.display().to_string())
        .chain(args.iter().cloned())
        .collect();
    let out = proc::Cmd::new("bash")
        .arg(&script)
        .args(&args)
        .current_dir(&checkout)
        .env("CLAUDE_PROJECT_DIR", &checkout)
        .run_capture(Duration::from_secs(
            req.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S),
        ))?;
    ctx.progress(3.0, Some(4.0), "setup script finished");
    let out_log = paths.root.join("humanize/rlcr-setup.stdout.log");
    let err_log = paths.root.join("humanize/rlcr-setup.stderr.log");
    fsx::write_text(&out_log, &out.stdout)?;
    fsx::write_text(&err_log, &out.stderr)?;
    report.log_paths = vec![
        records::relative(&paths, &out_log),
        records::relative(&paths, &err_log),
    ];
    report.exit_code = out.code;
    report.stderr_tail = Some(redact(&proc::tail(&out.stderr, 4000)).into_owned());
    if !out.success() {
        report.status = StartStatus::RuntimeFailed;
        report.failure = Some(if out.timed_out {
            format!(
                "setup-rlcr-loop.sh did not finish within {} s and was killed",
                req.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S)
            )
        } else {
            format!(
                "setup-rlcr-loop.sh exited with {:?}; see stderr_tail. Fix the cause and call start_rlcr again; do not start the loop another way",
                out.code
            )
        });
        return Ok(report);
    }

    // Verify the state on disk.
    let states = active_states(&checkout);
    let verdict: Result<(PathBuf, PathBuf), String> = (|| {
        let [state] = states.as_slice() else {
            return Err(format!(
                "expected exactly one active .humanize/rlcr/<timestamp>/state.md, found {}: {:?}",
                states.len(),
                states
            ));
        };
        if state.file_name().and_then(|n| n.to_str()) != Some("state.md") {
            return Err(format!(
                "the active state file is {} instead of a fresh state.md",
                state.display()
            ));
        }
        let text = std::fs::read_to_string(state)
            .map_err(|e| format!("cannot read {}: {e}", state.display()))?;
        let has = |line: &str| text.lines().any(|l| l.trim() == line);
        if strict && !has("strict_success: true") {
            return Err(format!(
                "--strict-success was passed but {} does not contain `strict_success: true`",
                state.display()
            ));
        }
        if !has("current_round: 0") {
            return Err(format!(
                "{} does not contain `current_round: 0`",
                state.display()
            ));
        }
        if !has("ask_codex_question: false") {
            return Err(format!(
                "--yolo was passed but {} does not contain `ask_codex_question: false`",
                state.display()
            ));
        }
        let prompt = state.with_file_name("round-0-prompt.md");
        if !prompt.is_file() {
            return Err(format!("{} is missing", prompt.display()));
        }
        Ok((state.clone(), prompt))
    })();
    match verdict {
        Ok((state, prompt)) => {
            report.status = StartStatus::Started;
            report.started = true;
            report.state_path = Some(state.display().to_string());
            report.round0_prompt_path = Some(prompt.display().to_string());
        }
        Err(why) => {
            report.status = StartStatus::VerificationFailed;
            report.failure = Some(format!(
                "RLCR did not start correctly: {why}. Do not patch vLLM outside the loop."
            ));
        }
    }
    fsx::write_json(
        &paths.root.join("humanize/rlcr-start.json"),
        &serde_json::json!({
            "at": now_rfc3339(),
            "status": report.status,
            "command": report.command,
            "exit_code": report.exit_code,
            "state_path": report.state_path,
            "round0_prompt_path": report.round0_prompt_path,
            "failure": report.failure,
        }),
    )?;
    ctx.progress(4.0, Some(4.0), "verified");
    Ok(report)
}

/// Job kind for running `start_rlcr` as a detached job (`vllm_sota_core::jobs`).
pub const JOB_KIND: &str = "start_rlcr";

/// Job entry point: runs `start_rlcr` with the job's request, forwarding progress to the
/// job state. The result is the [`StartRlcrReport`] as JSON (a failed start is a report
/// with `started: false`, not a job error; invalid requests and I/O failures are errors).
pub fn run_job(runner: &vllm_sota_core::jobs::JobRunner) -> Result<serde_json::Value> {
    let req: StartRlcrRequest = serde_json::from_value(runner.request())
        .context("start_rlcr job: the request is not a valid start_rlcr request")?;
    let (tx, rx) = std::sync::mpsc::channel::<(f64, Option<f64>, String)>();
    let tx = std::sync::Mutex::new(tx);
    let ctx = ToolContext::new().with_progress(move |done, total, msg| {
        let _ = tx.lock().map(|t| t.send((done, total, msg.to_string())));
    });
    std::thread::scope(|scope| {
        let worker = scope.spawn(move || run_start_rlcr(req, &ctx));
        // Ends when the worker drops the context (and with it the sender).
        for (done, total, msg) in rx {
            runner.progress(done, total, &msg);
        }
        let report = worker
            .join()
            .map_err(|_| anyhow::anyhow!("start_rlcr job panicked"))??;
        Ok(serde_json::to_value(report)?)
    })
}
