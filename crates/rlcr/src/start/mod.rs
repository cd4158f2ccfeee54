//! `start_rlcr`: check the preconditions, render the refined plan into the vLLM
//! checkout, locate the Humanize runtime and run its `setup-rlcr-loop.sh`, then verify
//! the loop really started. The contract followed is documented in
//! `references/humanize-contract.md` (humania-org/humanize 1.16.0, commit 0ec921a).

use anyhow::{Context, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;
use vllm_sota_core::fsx;
use vllm_sota_core::humanize;
use vllm_sota_core::layout::{CampaignPaths, now_rfc3339};
use vllm_sota_core::md::{self, Align};
use vllm_sota_core::redact::redact;
use vllm_sota_core::{Tool, ToolContext, refs};

mod preconditions;

use preconditions::Checked;

use crate::{records, summary};
use vllm_sota_core::proc;

/// Where the plan goes, relative to the vLLM checkout (the setup script wants a relative path).
pub const PLAN_REL: &str = ".humanize/vllm-sota-agent/refined-plan.md";
/// The setup script, relative to a runtime root.
pub(crate) const SETUP_SCRIPT: &str = "scripts/setup-rlcr-loop.sh";
/// The runtime's cancel script, relative to a runtime root.
pub(crate) const CANCEL_SCRIPT: &str = "scripts/cancel-rlcr-loop.sh";
/// Default deadline of the setup script.
pub(crate) const DEFAULT_TIMEOUT_S: u64 = 120;
/// Programs the runtime needs on PATH (its setup script refuses to start without them),
/// with how to install each.
pub(crate) const RUNTIME_PROGRAMS: &[(&str, &str)] = &[
    (
        "codex",
        "install the Codex CLI (`npm install -g @openai/codex`, see https://github.com/openai/codex) and log in: every Humanize round runs `codex exec` and `codex review`",
    ),
    (
        "jq",
        "install jq (`apt-get install jq`, `brew install jq`, or https://jqlang.github.io/jq/download/): Humanize's hooks parse JSON with it",
    ),
    (
        "git",
        "install git (`apt-get install git`, `brew install git`, or https://git-scm.com/downloads)",
    ),
];
/// Characters the runtime refuses in branch names (they would break state.md's YAML).
pub(crate) const YAML_UNSAFE_BRANCH_CHARS: &[char] = &[':', '#', '"', '\'', '`', '\n'];

/// Request of `start_rlcr`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRlcrRequest {
    /// Campaign run directory (holds campaign.json).
    pub campaign_dir: PathBuf,
    /// The vLLM checkout; default: campaign.json's vllm_checkout.
    #[serde(default)]
    pub vllm_checkout: Option<PathBuf>,
    /// Review base branch; default: campaign.json's vllm_base_branch, else what Humanize would
    /// auto-detect from the local refs. It is always passed as --base-branch.
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
    /// The review base branch given to the runtime (and checked in state.md).
    pub base_branch: Option<String>,
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
    /// `.humanize/rlcr/<timestamp>/goal-tracker.md` (its acceptance criteria were checked).
    pub goal_tracker_path: Option<String>,
}

impl StartRlcrReport {
    /// True when the loop was not started although it was asked to be.
    pub fn is_failure(&self) -> bool {
        !matches!(self.status, StartStatus::Started | StartStatus::DryRun)
    }
}

pub struct StartRlcr;

impl Tool for StartRlcr {
    const NAME: &'static str = "start_rlcr";
    const DESCRIPTION: &'static str = "Start the single Humanize RLCR loop in the vLLM checkout. Checks each precondition and reports pass/fail with the fix (codex, jq and git on PATH; git repo with a commit; clean tree except untracked Humanize state; `.humanize*` gitignored, optionally added and committed with fix_gitignore; the plan path untracked and free of symlinks; YAML-safe branch names; review base branch present locally; no active loop under .humanize/rlcr/; fixed benchmark and history notes written; Humanize runtime found), renders .humanize/vllm-sota-agent/refined-plan.md from the campaign (model, workload, SLA, winners with exact commands, artifact root, history notes, one-line acceptance criteria), runs the runtime's scripts/setup-rlcr-loop.sh with --yolo --base-branch <base>, verifies the new state.md (round 0, the plan's base branch and plan path, ask_codex_question: false), that every AC-n of the plan reached goal-tracker.md and that round-0-prompt.md exists, records the start in humanize/lineage.jsonl and returns round-0-prompt.md. A non-zero exit is reported with its stderr: never bypass it. Failure statuses exit non-zero on the CLI.";
    type Request = StartRlcrRequest;
    type Report = StartRlcrReport;

    fn run(request: Self::Request, ctx: &ToolContext) -> Result<Self::Report> {
        run_start_rlcr(request, ctx)
    }

    fn is_failure(r: &Self::Report) -> bool {
        r.is_failure()
    }

    fn markdown(r: &Self::Report) -> String {
        let mut s = format!("# start_rlcr: {:?}\n\n", r.status);
        if let Some(f) = &r.failure {
            let _ = writeln!(s, "**Failure:** {f}\n");
        }
        let mut t = md::Table::new(&[
            ("Precondition", Align::Left),
            ("Result", Align::Left),
            ("Detail", Align::Left),
            ("Fix", Align::Left),
        ]);
        for p in &r.preconditions {
            t.row(&[
                p.name.as_str(),
                if p.passed { "pass" } else { "FAIL" },
                &p.detail,
                p.fix.as_deref().unwrap_or(""),
            ]);
        }
        s.push_str(&t.render());
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

/// Active loop state files under `<checkout>/.humanize/rlcr/*/` (any directory, not only
/// the newest one the runtime looks at: stricter than the runtime).
pub fn active_states(checkout: &Path) -> Vec<PathBuf> {
    humanize::active_loops(checkout)
        .into_iter()
        .map(|l| l.state_file)
        .collect()
}

/// `program` as an executable file in the directories of `path` (a PATH value).
pub fn find_program(program: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path?)
        .map(|d| d.join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The `AC-<n>` identifiers in `text`, in order of first appearance.
pub fn acceptance_ids(text: &str) -> Vec<String> {
    let re = regex::Regex::new(r"\bAC-(\d+)\b").expect("valid regex");
    let mut out: Vec<String> = Vec::new();
    for c in re.captures_iter(text) {
        let id = format!("AC-{}", &c[1]);
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// The plan's `## Acceptance Criteria` section body (up to the next `##` line), the
/// part the runtime copies into the goal tracker.
pub fn acceptance_section(plan: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in plan.lines() {
        if inside && line.starts_with("##") {
            break;
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
        if line.starts_with("## Acceptance Criteria") {
            inside = true;
        }
    }
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
pub(crate) fn render_plan(
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
        Some(include_str!(
            "../../../../references/refined-plan-template.md"
        )),
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

/// Check the started loop on disk: exactly one active state file, a fresh `state.md` at
/// round 0 with the plan's base branch and plan path and `--yolo`'s
/// `ask_codex_question: false`, `round-0-prompt.md`, and every `AC-n` of the plan in
/// `goal-tracker.md`. Returns (state.md, round-0-prompt.md, goal-tracker.md).
fn verify_started(
    checkout: &Path,
    base_branch: &str,
    plan: &str,
) -> Result<(PathBuf, PathBuf, PathBuf), String> {
    let loops = humanize::active_loops(checkout);
    let [l] = loops.as_slice() else {
        return Err(format!(
            "expected exactly one active loop under .humanize/rlcr/, found {}: {:?}",
            loops.len(),
            loops.iter().map(|l| &l.state_file).collect::<Vec<_>>()
        ));
    };
    let state = &l.state_file;
    if state.file_name().and_then(|n| n.to_str()) != Some("state.md") {
        return Err(format!(
            "the active state file is {} instead of a fresh state.md",
            state.display()
        ));
    }
    let text = std::fs::read_to_string(state)
        .map_err(|e| format!("cannot read {}: {e}", state.display()))?;
    let field = |k: &str| humanize::front_matter_field(&text, k);
    let expect = [
        (
            "current_round",
            "0",
            "the loop did not start at round 0".to_string(),
        ),
        (
            "ask_codex_question",
            "false",
            "--yolo was passed".to_string(),
        ),
        (
            "base_branch",
            base_branch,
            format!(
                "the plan names `{base_branch}` as the review base: cancel this loop (`bash <runtime>/{CANCEL_SCRIPT}` in the checkout) and call start_rlcr again with base_branch set to the branch you want reviewed against"
            ),
        ),
        (
            "plan_file",
            PLAN_REL,
            format!(
                "start_rlcr rendered the plan at {PLAN_REL}: cancel this loop (`bash <runtime>/{CANCEL_SCRIPT}`) and start again"
            ),
        ),
    ];
    for (key, want, why) in expect {
        let got = field(key);
        if got.as_deref() != Some(want) {
            return Err(format!(
                "{} has `{key}: {}` but `{key}: {want}` is required ({why})",
                state.display(),
                got.unwrap_or_else(|| "(missing)".into())
            ));
        }
    }
    let prompt = l.dir.join("round-0-prompt.md");
    if !prompt.is_file() {
        return Err(format!("{} is missing", prompt.display()));
    }
    let tracker = l.dir.join("goal-tracker.md");
    let tracker_text = std::fs::read_to_string(&tracker)
        .map_err(|e| format!("cannot read {}: {e}", tracker.display()))?;
    let tracked = acceptance_ids(&tracker_text);
    let lost: Vec<String> = acceptance_ids(&acceptance_section(plan))
        .into_iter()
        .filter(|id| !tracked.contains(id))
        .collect();
    if !lost.is_empty() {
        return Err(format!(
            "{} lacks {} of the plan's acceptance criteria (the runtime copies only the first 25 lines after `## Acceptance Criteria`): keep one line per criterion in references/refined-plan-template.md, cancel this loop (`bash <runtime>/{CANCEL_SCRIPT}`) and start again",
            tracker.display(),
            lost.join(", ")
        ));
    }
    Ok((state.clone(), prompt, tracker))
}

/// Remove `.humanize/.pending-session-id` when it points at a loop of this checkout: the
/// runtime leaves it for its PostToolUse hook, which only claims it after a Bash call of
/// the setup script itself, so a start run by this tool would leave it stale.
fn remove_pending_session_signal(checkout: &Path) {
    let signal = checkout.join(".humanize/.pending-session-id");
    let Ok(text) = std::fs::read_to_string(&signal) else {
        return;
    };
    let first = text.lines().next().unwrap_or("");
    if Path::new(first).starts_with(checkout.join(humanize::RLCR_DIR)) {
        let _ = std::fs::remove_file(&signal);
    }
}

pub(crate) fn run_start_rlcr(req: StartRlcrRequest, ctx: &ToolContext) -> Result<StartRlcrReport> {
    run_start_rlcr_with_path(req, ctx, std::env::var_os("PATH"))
}

/// [`run_start_rlcr`] with an explicit PATH for the program checks and the runtime's
/// environment (the tool passes its own PATH).
pub fn run_start_rlcr_with_path(
    req: StartRlcrRequest,
    ctx: &ToolContext,
    path: Option<OsString>,
) -> Result<StartRlcrReport> {
    let paths = CampaignPaths::open(&req.campaign_dir)?;
    let campaign = paths.campaign()?;
    let Checked {
        preconditions,
        checkout,
        runtime,
        git,
    } = preconditions::check_all(&req, &paths, &campaign, path.as_deref());
    let mut report = StartRlcrReport {
        status: StartStatus::PreconditionsFailed,
        started: false,
        failure: None,
        preconditions,
        vllm_checkout: checkout.as_ref().map(|d| d.display().to_string()),
        plan_path: None,
        runtime_root: runtime.as_ref().map(|r| r.display().to_string()),
        base_branch: git.base_branch.clone(),
        command: vec![],
        exit_code: None,
        stderr_tail: None,
        log_paths: vec![],
        state_path: None,
        round0_prompt_path: None,
        goal_tracker_path: None,
    };
    ctx.progress(1.0, Some(4.0), "preconditions checked");
    let failed: Vec<&str> = report
        .preconditions
        .iter()
        .filter(|p| !p.passed)
        .map(|p| p.name.as_str())
        .collect();
    if !failed.is_empty() {
        report.failure = Some(format!("precondition(s) failed: {}", failed.join(", ")));
        return Ok(report);
    }
    let start = Start {
        checkout: checkout.expect("checked"),
        base_branch: git.base_branch.expect("checked"),
        base_commit: git.base_commit,
    };
    let runtime = runtime.expect("checked");

    let plan = render_plan(
        &paths,
        &start.checkout,
        &start.base_branch,
        &start.base_commit,
    )?;
    let plan_path = start.checkout.join(PLAN_REL);
    fsx::write_text(&plan_path, &plan)?;
    report.plan_path = Some(plan_path.display().to_string());
    ctx.progress(2.0, Some(4.0), "plan rendered");
    if req.dry_run {
        report.status = StartStatus::DryRun;
        return Ok(report);
    }
    run_setup(
        &req,
        &paths,
        &start.checkout,
        &runtime,
        &start.base_branch,
        path,
        &mut report,
    )?;
    ctx.progress(3.0, Some(4.0), "setup script finished");
    remove_pending_session_signal(&start.checkout);
    if report.status == StartStatus::RuntimeFailed {
        return Ok(report);
    }
    verify_and_record(&paths, &start, &plan, &mut report)?;
    ctx.progress(4.0, Some(4.0), "verified");
    Ok(report)
}

/// What the loop is started on, once every precondition passed.
struct Start {
    checkout: PathBuf,
    base_branch: String,
    base_commit: String,
}

/// Verify the started loop ([`verify_started`]) and record the outcome: a verified start
/// in humanize/lineage.jsonl, every outcome in humanize/rlcr-start.json.
fn verify_and_record(
    paths: &CampaignPaths,
    start: &Start,
    plan: &str,
    report: &mut StartRlcrReport,
) -> Result<()> {
    match verify_started(&start.checkout, &start.base_branch, plan) {
        Ok((state, prompt, tracker)) => {
            report.status = StartStatus::Started;
            report.started = true;
            report.state_path = Some(state.display().to_string());
            report.round0_prompt_path = Some(prompt.display().to_string());
            report.goal_tracker_path = Some(tracker.display().to_string());
            fsx::append_jsonl(
                &paths.lineage(),
                &serde_json::json!({
                    "kind": "start_rlcr",
                    "at": now_rfc3339(),
                    "vllm_checkout": start.checkout.display().to_string(),
                    "loop_dir": state.parent().map(|d| d.display().to_string()),
                    "state_path": report.state_path,
                    "base_branch": start.base_branch,
                    "base_commit": start.base_commit,
                    "plan_path": report.plan_path,
                    "command": report.command,
                }),
            )?;
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
            "base_branch": start.base_branch,
            "state_path": report.state_path,
            "round0_prompt_path": report.round0_prompt_path,
            "failure": report.failure,
        }),
    )
}

/// Run `setup-rlcr-loop.sh <plan> --yolo --base-branch <base>` in the checkout with
/// captured output (saved in the campaign's humanize/ directory). A non-zero exit or
/// the deadline sets the report's status to `runtime_failed`.
fn run_setup(
    req: &StartRlcrRequest,
    paths: &CampaignPaths,
    checkout: &Path,
    runtime: &Path,
    base_branch: &str,
    path: Option<OsString>,
    report: &mut StartRlcrReport,
) -> Result<()> {
    let script = runtime.join(SETUP_SCRIPT);
    let args: Vec<String> = vec![
        PLAN_REL.into(),
        "--yolo".into(),
        "--base-branch".into(),
        base_branch.into(),
    ];
    report.command = std::iter::once(script.display().to_string())
        .chain(args.iter().cloned())
        .collect();
    let cmd = proc::Cmd::new("bash")
        .arg(&script)
        .args(&args)
        .current_dir(checkout)
        .env("CLAUDE_PROJECT_DIR", checkout);
    let cmd = match path {
        Some(p) => cmd.env("PATH", p),
        None => cmd.env_remove("PATH"),
    };
    let timeout_s = req.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S);
    let out = cmd.run_capture(Duration::from_secs(timeout_s))?;
    let out_log = paths.root.join("humanize/rlcr-setup.stdout.log");
    let err_log = paths.root.join("humanize/rlcr-setup.stderr.log");
    fsx::write_text(&out_log, &redact(&out.stdout))?;
    fsx::write_text(&err_log, &redact(&out.stderr))?;
    report.log_paths = vec![
        records::relative(paths, &out_log),
        records::relative(paths, &err_log),
    ];
    report.exit_code = out.code;
    report.stderr_tail = Some(redact(&proc::tail(&out.stderr, 4000)).into_owned());
    if !out.success() {
        report.status = StartStatus::RuntimeFailed;
        report.failure = Some(if out.timed_out {
            format!("setup-rlcr-loop.sh did not finish within {timeout_s} s and was killed")
        } else {
            format!(
                "setup-rlcr-loop.sh exited with {:?}; see stderr_tail. Fix the cause and call start_rlcr again; do not start the loop another way",
                out.code
            )
        });
    }
    Ok(())
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
