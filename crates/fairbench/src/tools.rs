//! The two tools: `fair_benchmark` (validate + preflight synchronously, then start or
//! resume the detached search job) and `revalidate` (start or resume a round's
//! revalidation job). Both return at once (or after an optional long-poll ≤ 45 s).

use anyhow::{Context, Result, bail};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vllm_sota_core::jobs::{self, JobState, JobStatus};
use vllm_sota_core::layout::CampaignPaths;
use vllm_sota_core::md::{self, Align};
use vllm_sota_core::results::CandidateRow;
use vllm_sota_core::{Tool, ToolContext, fsx};

use crate::config::{self, BenchmarkConfig};
use crate::preflight::{self, EnvironmentGap, GpuCheck, PreflightOptions, Rejection};
use crate::revalidate::{RevalidateRequest, revalidation_job_path};
use crate::search::plan_path;

pub const FAIR_BENCHMARK_KIND: &str = "fair_benchmark";
pub const REVALIDATE_KIND: &str = "revalidate";
pub(crate) const MAX_WAIT_S: f64 = 45.0;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FairBenchmarkRequest {
    /// Campaign run directory (made by campaign_init).
    pub campaign_dir: String,
    /// Benchmark config file (YAML or JSON, cookbook schema_version 1), absolute or relative to campaign_dir.
    /// Give this or `config`.
    #[serde(default)]
    pub config_path: Option<String>,
    /// The benchmark config inline (same schema as the file).
    #[serde(default)]
    #[schemars(schema_with = "vllm_sota_core::schema::json_object_or_null")]
    pub config: Option<Value>,
    /// Validate and preflight only: write help/ and benchmark/plan.json, start nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Long-poll: wait up to this many seconds (≤ 45) for the job before returning.
    #[serde(default)]
    pub wait_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FrameworkSummary {
    pub framework: vllm_sota_core::Framework,
    /// `ready`, `rejected`, `environment_gap`.
    pub status: String,
    pub candidates: usize,
    pub reason: Option<String>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FairBenchmarkReport {
    /// Empty on dry runs.
    pub job_id: String,
    /// `benchmark/job.json`: poll with job_status, stop with job_cancel.
    pub state_path: String,
    /// Job status (`running`, `succeeded`, ...) or `dry_run`.
    pub status: String,
    /// True when this call resumed an earlier, interrupted or finished job.
    pub resumed: bool,
    pub attempts: u32,
    pub candidates_planned: usize,
    pub rows_planned: usize,
    pub rows_already_done: usize,
    pub frameworks: Vec<FrameworkSummary>,
    pub preflight_rejections: Vec<Rejection>,
    /// Knobs kept out of the default pass (speculative, DBO, partial prefill > 1).
    pub excluded: Vec<Rejection>,
    pub environment_gaps: Vec<EnvironmentGap>,
    pub gpu_check: GpuCheck,
    pub plan_path: String,
    pub progress: Option<jobs::JobProgress>,
    /// The job's result once it has finished (within `wait_s`).
    #[schemars(schema_with = "vllm_sota_core::schema::json_object_or_null")]
    pub result: Option<Value>,
    pub error: Option<String>,
}

/// `fair_benchmark`.
pub struct FairBenchmark;

impl Tool for FairBenchmark {
    const NAME: &'static str = "fair_benchmark";
    const DESCRIPTION: &'static str = "Phase 1 of a campaign: search each framework's best deployment (vLLM, SGLang, TensorRT-LLM, TokenSpeed) under the same workload and SLA, fairly and resumably. Validates the benchmark config (cookbook YAML/JSON, schema_version 1) and runs preflight synchronously: captures every enabled framework's --help into help/, rejects flags the CLI does not accept (naming them; documented aliases are translated), keeps memory-fraction knobs pinned, keeps speculative decoding / DBO / partial prefill > 1 out of the default pass, requires TensorRT-LLM's PyTorch backend, checks max length and that the GPUs are free, records missing frameworks as environment gaps. Then starts (or resumes, skipping finished rows) a detached job at benchmark/job.json that launches each candidate (baseline first, bounded) in its own process group, waits for /v1/models and a 1-token answer, measures every scenario with the shared client (warmup, concurrency sweep and/or QPS binary search), and appends one row per candidate × scenario to benchmark/candidates.jsonl (ok/failed/oom/timeout/skipped/rejected with reasons). On completion writes benchmark/summary.md, winning-commands.md, plots/<scenario>.svg and profiler-handoff.json. Returns at once with the job id and the preflight outcome; poll with job_status (or pass wait_s ≤ 45). Calling it again with the same config resumes.";
    type Request = FairBenchmarkRequest;
    type Report = FairBenchmarkReport;

    fn run(request: Self::Request, ctx: &ToolContext) -> Result<Self::Report> {
        let exe = std::env::current_exe().context("cannot locate the vllm-sota executable")?;
        start_fair_benchmark(request, ctx, &exe, &PreflightOptions::default())
    }

    fn markdown(r: &Self::Report) -> String {
        let mut s = format!(
            "# fair_benchmark\n\n- Job `{}`: **{}**{} (attempt {}), state `{}`\n- Candidates planned: {}; rows {} planned, {} already done\n",
            r.job_id,
            r.status,
            if r.resumed { " (resumed)" } else { "" },
            r.attempts,
            r.state_path,
            r.candidates_planned,
            r.rows_planned,
            r.rows_already_done
        );
        push_progress(&mut s, r.progress.as_ref());
        let mut t = md::Table::new(&[
            ("framework", Align::Left),
            ("status", Align::Left),
            ("candidates", Align::Right),
            ("reason", Align::Left),
        ]);
        for f in &r.frameworks {
            t.row(&[
                f.framework.to_string(),
                f.status.clone(),
                f.candidates.to_string(),
                f.reason.clone().unwrap_or_default(),
            ]);
        }
        s.push('\n');
        s.push_str(&t.render());
        if !r.preflight_rejections.is_empty() {
            s.push_str("\n## Rejected at preflight\n\n");
            for x in &r.preflight_rejections {
                s.push_str(&format!(
                    "- {} {}: {}\n",
                    x.framework,
                    x.flag
                        .clone()
                        .or(x.candidate_id.clone())
                        .unwrap_or_default(),
                    x.reason
                ));
            }
        }
        for g in &r.environment_gaps {
            s.push_str(&format!(
                "- environment gap, {}: {}\n",
                g.framework, g.reason
            ));
        }
        s.push_str(&format!(
            "\nGPU check: {} ({})\n",
            r.gpu_check.status, r.gpu_check.detail
        ));
        push_outcome(&mut s, r.error.as_deref(), r.result.as_ref(), "\nResult:\n");
        s
    }
}

fn load_request_config(
    req: &FairBenchmarkRequest,
    paths: &CampaignPaths,
) -> Result<BenchmarkConfig> {
    match (&req.config_path, &req.config) {
        (Some(_), Some(_)) => bail!("give config_path or config, not both"),
        (None, None) => bail!("config_path or config is required"),
        (Some(p), None) => config::load_config(&preflight::resolve_config_path(&paths.root, p))
            .with_context(|| format!("config_path {p}")),
        (None, Some(v)) => config::config_from_value(v),
    }
}

/// `fair_benchmark` with an explicit job executable (`<exe> job-run --state <path>`) and
/// preflight options: the tool passes the running binary; tests pass their job example.
pub fn start_fair_benchmark(
    req: FairBenchmarkRequest,
    ctx: &ToolContext,
    exe: &Path,
    opts: &PreflightOptions,
) -> Result<FairBenchmarkReport> {
    check_wait(req.wait_s)?;
    let paths = CampaignPaths::open(&req.campaign_dir)?;
    // Phase 0.5 comes first: the history notes, or the blocker history_notes recorded in them.
    if !CampaignPaths::is_written(&paths.history_notes()) {
        bail!(
            "{} is not written: run history_notes first (it writes the model PR history notes, or records the blocker when no history is available)",
            paths.history_notes().display()
        );
    }
    let cfg = load_request_config(&req, &paths)?;
    let state_path = paths.benchmark_job();
    // A running job owns the plan: report it instead of re-planning under its feet.
    if state_path.exists() {
        let st = jobs::status(&state_path)?;
        if st.status == JobStatus::Running {
            let plan: preflight::Plan = fsx::read_json(&plan_path(&paths))?;
            return Ok(report(&paths, &plan, Some(st), true, "running"));
        }
    }
    ctx.progress(
        0.0,
        None,
        "preflight: capturing --help and validating flags",
    );
    let plan = preflight::preflight(&cfg, &paths.root, opts)?;
    // candidates.jsonl is the fixed baseline: never mix two configs in it.
    let existing: Vec<CandidateRow> = fsx::read_jsonl(&paths.candidates())?;
    if let Some(other) = existing.iter().find(|r| {
        r.normalization
            .get("config_hash")
            .and_then(Value::as_str)
            .is_some_and(|h| h != plan.config_hash)
    }) {
        bail!(
            "benchmark/candidates.jsonl already holds rows of a different benchmark config (row {} has config_hash {}, this config is {}); the fixed baseline is append-only: use the same config to resume, or a new campaign directory",
            other.row_id,
            other.normalization["config_hash"],
            plan.config_hash
        );
    }
    fsx::write_json(&plan_path(&paths), &plan)?;
    if req.dry_run {
        return Ok(report(&paths, &plan, None, false, "dry_run"));
    }
    let resumed = state_path.exists();
    let request_json = serde_json::to_value(&req)?;
    let st = jobs::start(&state_path, FAIR_BENCHMARK_KIND, request_json, exe)?;
    let st = long_poll(&state_path, st, req.wait_s, ctx)?;
    Ok(report(&paths, &plan, Some(st), resumed, ""))
}

/// Wait up to `wait_s` for the job to finish, forwarding its progress.
pub(crate) fn long_poll(
    state_path: &Path,
    mut st: JobState,
    wait_s: Option<f64>,
    ctx: &ToolContext,
) -> Result<JobState> {
    let Some(w) = wait_s else { return Ok(st) };
    let end = Instant::now() + Duration::from_secs_f64(w.min(MAX_WAIT_S));
    while Instant::now() < end && !st.status.is_final() {
        if ctx.is_cancelled() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        st = jobs::status(state_path)?;
        ctx.progress(st.progress.done, st.progress.total, &st.progress.message);
    }
    Ok(st)
}

/// A unit enum's serialized name (`running`, `rejected`, ...).
fn enum_text(v: impl Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `wait_s`, when given, is within [0, MAX_WAIT_S].
fn check_wait(wait_s: Option<f64>) -> Result<()> {
    if let Some(w) = wait_s
        && !(0.0..=MAX_WAIT_S).contains(&w)
    {
        bail!("wait_s: {w} must be in [0, {MAX_WAIT_S}]");
    }
    Ok(())
}

/// The job's progress line of a tool report.
fn push_progress(s: &mut String, progress: Option<&jobs::JobProgress>) {
    if let Some(p) = progress {
        s.push_str(&format!(
            "- Progress: {} / {} — {}\n",
            p.done,
            p.total.map(|t| t.to_string()).unwrap_or("?".into()),
            p.message
        ));
    }
}

/// The job's error and result (pretty JSON under `heading`) at the end of a tool report.
fn push_outcome(s: &mut String, error: Option<&str>, result: Option<&Value>, heading: &str) {
    if let Some(e) = error {
        s.push_str(&format!("\nError: {e}\n"));
    }
    if let Some(res) = result {
        s.push_str(&format!(
            "{heading}\n```json\n{}\n```\n",
            serde_json::to_string_pretty(res).unwrap_or_default()
        ));
    }
}

fn report(
    paths: &CampaignPaths,
    plan: &preflight::Plan,
    st: Option<JobState>,
    resumed: bool,
    status: &str,
) -> FairBenchmarkReport {
    let planned = crate::search::planned_row_ids(plan);
    let done: std::collections::HashSet<String> =
        fsx::read_jsonl::<CandidateRow>(&paths.candidates())
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.row_id)
            .collect();
    FairBenchmarkReport {
        job_id: st.as_ref().map(|s| s.job_id.clone()).unwrap_or_default(),
        state_path: preflight::rel(&paths.root, &paths.benchmark_job()),
        status: st
            .as_ref()
            .map(|s| enum_text(s.status))
            .unwrap_or_else(|| status.to_string()),
        resumed,
        attempts: st.as_ref().map(|s| s.attempts).unwrap_or(0),
        candidates_planned: plan.candidates_planned(),
        rows_planned: planned.len(),
        rows_already_done: planned.iter().filter(|id| done.contains(*id)).count(),
        frameworks: plan
            .frameworks
            .iter()
            .map(|f| FrameworkSummary {
                framework: f.framework,
                status: enum_text(f.status),
                candidates: f.candidates.len(),
                reason: f.reason.clone(),
                notes: f.notes.clone(),
            })
            .collect(),
        preflight_rejections: plan.rejections.clone(),
        excluded: plan.excluded.clone(),
        environment_gaps: plan.environment_gaps.clone(),
        gpu_check: plan.gpu_check.clone(),
        plan_path: preflight::rel(&paths.root, &plan_path(paths)),
        progress: st.as_ref().map(|s| s.progress.clone()),
        result: st.as_ref().and_then(|s| s.result.clone()),
        error: st.and_then(|s| s.error),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RevalidateReport {
    pub job_id: String,
    /// `benchmark/revalidation/round-N.job.json`.
    pub state_path: String,
    pub status: String,
    pub resumed: bool,
    pub attempts: u32,
    /// `benchmark/revalidation/round-N.jsonl`.
    pub rows_file: String,
    /// framework/candidate/scenario re-run.
    pub targets: Vec<String>,
    pub progress: Option<jobs::JobProgress>,
    /// Per scenario: baseline, median, change, correctness; `patch_correct`.
    #[schemars(schema_with = "vllm_sota_core::schema::json_object_or_null")]
    pub result: Option<Value>,
    pub error: Option<String>,
}

/// `revalidate`.
pub struct Revalidate;

impl Tool for Revalidate {
    const NAME: &'static str = "revalidate";
    const DESCRIPTION: &'static str = "Every round after a patch: re-run vLLM's winning command from fair_benchmark (and, with include_leader, the leading framework's, to control for drift) `repeats` times on the current vLLM checkout, at the baseline winner's load point with fresh prompts, same workload and SLA. Rows are tagged with the round and the vLLM commit and go to benchmark/revalidation/round-N.jsonl (never into the fixed baseline), with a summary in round-N.md. A greedy correctness probe (fixed prompts, tokens and logprobs compared with the answers recorded from the unpatched build) runs with it; its match rate is in every vLLM row and a mismatch marks the patch incorrect (result.patch_correct = false). Starts or resumes a detached job (state benchmark/revalidation/round-N.job.json) and returns at once; poll with job_status or pass wait_s ≤ 45.";
    type Request = RevalidateRequest;
    type Report = RevalidateReport;

    fn run(request: Self::Request, ctx: &ToolContext) -> Result<Self::Report> {
        let exe = std::env::current_exe().context("cannot locate the vllm-sota executable")?;
        start_revalidate(request, ctx, &exe)
    }

    fn markdown(r: &Self::Report) -> String {
        let mut s = format!(
            "# revalidate\n\n- Job `{}`: **{}**{} (attempt {}), state `{}`\n- Rows: `{}`\n- Targets: {}\n",
            r.job_id,
            r.status,
            if r.resumed { " (resumed)" } else { "" },
            r.attempts,
            r.state_path,
            r.rows_file,
            r.targets.join(", ")
        );
        push_progress(&mut s, r.progress.as_ref());
        push_outcome(&mut s, r.error.as_deref(), r.result.as_ref(), "");
        s
    }
}

pub fn start_revalidate(
    req: RevalidateRequest,
    ctx: &ToolContext,
    exe: &Path,
) -> Result<RevalidateReport> {
    if req.round == 0 {
        bail!("round: must be ≥ 1 (round 0 is the fixed baseline written by fair_benchmark)");
    }
    if req.repeats == 0 {
        bail!("repeats: must be ≥ 1");
    }
    if !(0.0..=1.0).contains(&req.min_match_rate) {
        bail!("min_match_rate: {} must be in [0, 1]", req.min_match_rate);
    }
    check_wait(req.wait_s)?;
    let paths = CampaignPaths::open(&req.campaign_dir)?;
    let plan: preflight::Plan = fsx::read_json(&plan_path(&paths))
        .context("benchmark/plan.json: run fair_benchmark first")?;
    let rows: Vec<CandidateRow> = fsx::read_jsonl(&paths.candidates())?;
    let targets = crate::revalidate::targets(&plan, &rows, &req)?;
    let state_path: PathBuf = revalidation_job_path(&paths, req.round);
    let resumed = state_path.exists();
    let st = match jobs::status(&state_path) {
        Ok(s) if s.status == JobStatus::Running => s,
        _ => jobs::start(
            &state_path,
            REVALIDATE_KIND,
            serde_json::to_value(&req)?,
            exe,
        )?,
    };
    let st = long_poll(&state_path, st, req.wait_s, ctx)?;
    Ok(RevalidateReport {
        job_id: st.job_id.clone(),
        state_path: preflight::rel(&paths.root, &state_path),
        status: enum_text(st.status),
        resumed,
        attempts: st.attempts,
        rows_file: preflight::rel(&paths.root, &paths.revalidation(req.round)),
        targets: targets
            .iter()
            .map(|t| {
                format!(
                    "{}/{}/{}",
                    t.baseline_row.framework, t.baseline_row.candidate_id, t.baseline_row.scenario
                )
            })
            .collect(),
        progress: Some(st.progress.clone()),
        result: st.result.clone(),
        error: st.error.clone(),
    })
}
