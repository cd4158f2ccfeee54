//! `job_status` and `job_cancel`: the agent's view of detached jobs (benchmark searches,
//! revalidations). A job's state lives in a JSON file; these tools read it (long-polling
//! when asked) or ask the job to stop.

use anyhow::{Result, bail};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use vllm_sota_core::jobs::{self, JobState, JobStatus};
use vllm_sota_core::layout::CampaignPaths;
use vllm_sota_core::{Tool, ToolContext};

/// Longest a single poll may block: below the 60 s default tool timeout of MCP clients.
pub(crate) const MAX_WAIT_S: f64 = 45.0;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    /// The campaign run directory.
    pub campaign_dir: PathBuf,
    /// Which job: `fair_benchmark` (benchmark/job.json), `revalidate` (needs `round`) or
    /// `profile_launch:<framework>` (profiles/round-N/<framework>/launch-job.json; round 0 by default).
    pub job: String,
    /// Round of a `revalidate` job.
    #[serde(default)]
    pub round: Option<u32>,
    /// job_status only: block up to this many seconds (≤ 45) until the job finishes, sending progress meanwhile.
    #[serde(default)]
    pub wait_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct JobReport {
    pub state_path: String,
    pub job: JobState,
    /// Last lines of the job's log.
    pub log_tail: Vec<String>,
    /// What to do next.
    pub hint: String,
}

fn state_path(req: &JobRequest) -> Result<PathBuf> {
    let paths = CampaignPaths::open(&req.campaign_dir)?;
    Ok(match req.job.as_str() {
        "fair_benchmark" => paths.benchmark_job(),
        "revalidate" => {
            let Some(round) = req.round else {
                bail!("round: required for a revalidate job")
            };
            paths.revalidation(round).with_extension("job.json")
        }
        // profile_launch:<framework> → profiles/round-N/<framework>/launch-job.json (round 0 by default).
        other if other.starts_with("profile_launch:") => {
            let fw = &other["profile_launch:".len()..];
            if fw.is_empty() || fw.contains(['/', '\\']) || fw.contains("..") {
                bail!("job: '{other}': expected profile_launch:<framework>");
            }
            paths.profile_stage_dir(req.round.unwrap_or(0), fw, "launch-job.json")
        }
        other => bail!(
            "job: unknown job '{other}' (known: fair_benchmark, revalidate, profile_launch:<framework>)"
        ),
    })
}

fn report(state: JobState) -> JobReport {
    let log_tail = std::fs::read_to_string(&state.log_path)
        .map(|t| {
            let lines: Vec<&str> = t.lines().collect();
            lines[lines.len().saturating_sub(12)..]
                .iter()
                .map(|l| vllm_sota_core::redact::redact(l).into_owned())
                .collect()
        })
        .unwrap_or_default();
    let hint = match state.status {
        JobStatus::Running => "still running: poll job_status again (with wait_s up to 45)".into(),
        JobStatus::Succeeded => "done: read the result and the artifacts it names".into(),
        JobStatus::Failed => "failed: read error and log_tail; fix the cause, then start the same tool again to resume".into(),
        JobStatus::Cancelled => "cancelled: start the same tool again to resume; completed work is kept".into(),
        JobStatus::Interrupted => "interrupted (the process died): start the same tool again to resume; completed work is kept".into(),
    };
    JobReport {
        state_path: state.state_path.display().to_string(),
        job: state,
        log_tail,
        hint,
    }
}

pub struct JobStatusTool;

impl Tool for JobStatusTool {
    const NAME: &'static str = "job_status";
    const DESCRIPTION: &'static str = "Status of a detached campaign job (fair_benchmark, or revalidate with its round): running / succeeded / failed / cancelled / interrupted, progress, result, error and the log tail. With wait_s (≤ 45) it blocks until the job ends or the time is up, reporting progress meanwhile. A job survives server restarts: its state is on disk.";
    type Request = JobRequest;
    type Report = JobReport;

    fn run(req: JobRequest, ctx: &ToolContext) -> Result<JobReport> {
        let path = state_path(&req)?;
        let wait = Duration::from_secs_f64(req.wait_s.unwrap_or(0.0).clamp(0.0, MAX_WAIT_S));
        let start = Instant::now();
        loop {
            let state = jobs::status(&path)?;
            ctx.progress(
                state.progress.done,
                state.progress.total,
                &state.progress.message,
            );
            if state.status.is_final() || start.elapsed() >= wait || ctx.is_cancelled() {
                return Ok(report(state));
            }
            std::thread::sleep(
                Duration::from_millis(500).min(wait.saturating_sub(start.elapsed())),
            );
        }
    }

    fn markdown(r: &JobReport) -> String {
        let p = &r.job.progress;
        let mut s = format!(
            "# Job {} ({})\n\nstatus: **{:?}** — progress {}/{} {}\n\n{}\n",
            r.job.job_id,
            r.job.kind,
            r.job.status,
            p.done,
            p.total.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
            p.message,
            r.hint
        );
        if let Some(e) = &r.job.error {
            s += &format!("\nerror: {e}\n");
        }
        if !r.log_tail.is_empty() {
            s += &format!("\n```\n{}\n```\n", r.log_tail.join("\n"));
        }
        s
    }
}

pub struct JobCancelTool;

impl Tool for JobCancelTool {
    const NAME: &'static str = "job_cancel";
    const DESCRIPTION: &'static str = "Stop a running campaign job (fair_benchmark, or revalidate with its round): its servers are torn down, completed rows are kept, and starting the same tool again resumes it.";
    type Request = JobRequest;
    type Report = JobReport;

    fn run(req: JobRequest, _ctx: &ToolContext) -> Result<JobReport> {
        Ok(report(jobs::cancel(&state_path(&req)?)?))
    }

    fn markdown(r: &JobReport) -> String {
        JobStatusTool::markdown(r)
    }
}
