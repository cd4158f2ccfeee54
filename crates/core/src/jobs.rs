//! Detached jobs with their state on disk.
//!
//! A job is a separate process (`<exe> job-run --state <path>`) in its own session,
//! so it outlives the MCP server that started it (clients SIGTERM stdio servers when
//! a session ends). The state file is rewritten atomically by the worker; the agent
//! polls [`status`]. A job whose process died without writing a final state is
//! reported [`JobStatus::Interrupted`], and starting it again with the same state path
//! resumes it: job functions skip work already recorded on disk.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::fsx;
use crate::layout::now_rfc3339;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// The process is gone without a final state (killed, crashed, machine rebooted): resumable.
    Interrupted,
}

impl JobStatus {
    pub fn is_final(self) -> bool {
        !matches!(self, JobStatus::Running)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobProgress {
    pub done: f64,
    pub total: Option<f64>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobState {
    pub job_id: String,
    pub kind: String,
    pub status: JobStatus,
    pub pid: Option<u32>,
    pub started_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
    pub progress: JobProgress,
    #[schemars(schema_with = "crate::schema::json_object")]
    pub request: serde_json::Value,
    #[schemars(schema_with = "crate::schema::json_object_or_null")]
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    pub log_path: PathBuf,
    pub state_path: PathBuf,
    /// How many times the job was started (1 + resumes).
    pub attempts: u32,
}

fn cancel_file(state_path: &Path) -> PathBuf {
    state_path.with_extension("cancel")
}

fn log_file(state_path: &Path) -> PathBuf {
    state_path.with_extension("log")
}

use crate::proc::pid_alive;

fn read_state(state_path: &Path) -> Result<JobState> {
    fsx::read_json(state_path)
        .with_context(|| format!("no readable job state at {}", state_path.display()))
}

/// Read a job's state; a Running job whose process is gone is reported Interrupted.
pub fn status(state_path: &Path) -> Result<JobState> {
    let mut state = read_state(state_path)?;
    if state.status == JobStatus::Running && !state.pid.is_some_and(pid_alive) {
        state.status = JobStatus::Interrupted;
        state.error.get_or_insert_with(|| {
            "the job process exited without a final state; start it again to resume".into()
        });
    }
    Ok(state)
}

fn new_job_id(kind: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{kind}-{:x}-{}", nanos, std::process::id())
}

fn initial_state(state_path: &Path, kind: &str, request: serde_json::Value) -> Result<JobState> {
    let previous = if state_path.exists() {
        Some(status(state_path)?)
    } else {
        None
    };
    if let Some(prev) = &previous {
        if prev.status == JobStatus::Running {
            anyhow::bail!(
                "job {} ({}) is still running as pid {:?}; poll it or cancel it first",
                prev.job_id,
                prev.kind,
                prev.pid
            );
        }
        if prev.kind != kind {
            anyhow::bail!(
                "{} belongs to a '{}' job, not '{kind}'",
                state_path.display(),
                prev.kind
            );
        }
    }
    let _ = std::fs::remove_file(cancel_file(state_path));
    let now = now_rfc3339();
    Ok(JobState {
        job_id: previous
            .as_ref()
            .map(|p| p.job_id.clone())
            .unwrap_or_else(|| new_job_id(kind)),
        kind: kind.to_string(),
        status: JobStatus::Running,
        pid: None,
        started_at: now.clone(),
        updated_at: now,
        finished_at: None,
        progress: JobProgress {
            done: 0.0,
            total: None,
            message: "starting".into(),
        },
        request,
        result: None,
        error: None,
        log_path: log_file(state_path),
        state_path: state_path.to_path_buf(),
        attempts: previous.map(|p| p.attempts).unwrap_or(0) + 1,
    })
}

/// Start `<exe> job-run --state <state_path>` detached. Refuses while a live job owns the state.
pub fn start(
    state_path: &Path,
    kind: &str,
    request: serde_json::Value,
    exe: &Path,
) -> Result<JobState> {
    let mut state = initial_state(state_path, kind, request)?;
    fsx::write_json(state_path, &state)?;
    // Own session: not killed with the MCP server's process group, and cancellable as a
    // group. The job's own output goes to its log as is; `JobRunner::finish` redacts it.
    let pid = crate::proc::Cmd::new(exe)
        .arg("job-run")
        .arg("--state")
        .arg(state_path)
        .spawn_detached(&state.log_path)
        .with_context(|| format!("cannot start job process {}", exe.display()))?;
    state.pid = Some(pid);
    fsx::write_json(state_path, &state)?;
    Ok(state)
}

/// Ask a job to stop: a cancel file beside its state (checked by the worker) and SIGTERM to its group.
pub fn cancel(state_path: &Path) -> Result<JobState> {
    let state = status(state_path)?;
    if state.status != JobStatus::Running {
        return Ok(state);
    }
    fsx::write_text(&cancel_file(state_path), &now_rfc3339())?;
    if let Some(pid) = state.pid {
        crate::proc::signal_group(pid as i32);
    }
    // Give the worker a moment to record its final state.
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let s = status(state_path)?;
        if s.status.is_final() {
            return Ok(s);
        }
    }
    let mut s = status(state_path)?;
    if s.status == JobStatus::Running || s.status == JobStatus::Interrupted {
        s.status = JobStatus::Cancelled;
        s.finished_at = Some(now_rfc3339());
        s.error = Some("cancelled".into());
        fsx::write_json(state_path, &s)?;
    }
    Ok(s)
}

/// The worker side of a job.
pub struct JobRunner {
    state: Mutex<JobState>,
    state_path: PathBuf,
}

impl JobRunner {
    /// Open the state written by [`start`] and mark it Running with this process's pid.
    pub fn open(state_path: &Path) -> Result<Self> {
        let mut state = read_state(state_path)?;
        state.status = JobStatus::Running;
        state.pid = Some(std::process::id());
        state.updated_at = now_rfc3339();
        fsx::write_json(state_path, &state)?;
        Ok(Self {
            state: Mutex::new(state),
            state_path: state_path.to_path_buf(),
        })
    }

    pub fn state_path(&self) -> &Path {
        &self.state_path
    }

    pub fn request(&self) -> serde_json::Value {
        self.state.lock().unwrap().request.clone()
    }

    pub fn kind(&self) -> String {
        self.state.lock().unwrap().kind.clone()
    }

    pub fn attempts(&self) -> u32 {
        self.state.lock().unwrap().attempts
    }

    /// Record progress on disk (the agent reads it with `job_status`).
    pub fn progress(&self, done: f64, total: Option<f64>, message: &str) {
        let mut state = self.state.lock().unwrap();
        state.progress = JobProgress {
            done,
            total,
            message: message.to_string(),
        };
        state.updated_at = now_rfc3339();
        if let Err(e) = fsx::write_json(&self.state_path, &*state) {
            tracing::warn!("cannot record job progress: {e:#}");
        }
    }

    pub fn cancelled(&self) -> bool {
        cancel_file(&self.state_path).exists()
    }

    /// Write the final state.
    pub fn finish(self, outcome: Result<serde_json::Value>) -> Result<JobState> {
        let cancelled = self.cancelled();
        let mut state = self.state.into_inner().unwrap();
        let now = now_rfc3339();
        state.updated_at = now.clone();
        state.finished_at = Some(now);
        match outcome {
            Ok(result) => {
                state.status = JobStatus::Succeeded;
                state.result = Some(result);
                state.error = None;
            }
            Err(e) => {
                state.status = if cancelled {
                    JobStatus::Cancelled
                } else {
                    JobStatus::Failed
                };
                state.error = Some(format!("{e:#}"));
            }
        }
        fsx::write_json(&self.state_path, &state)?;
        // Redact-on-close: the log is rewritten in place (same file, so a writer that is
        // still appending keeps appending to it).
        if let Err(e) = fsx::redact_in_place(&state.log_path) {
            tracing::warn!("cannot redact job log {}: {e:#}", state.log_path.display());
        }
        Ok(state)
    }
}

/// Run a job on this thread, without detaching (tests, or `--wait` style CLI use).
pub fn run_inline(
    state_path: &Path,
    kind: &str,
    request: serde_json::Value,
    f: impl FnOnce(&JobRunner) -> Result<serde_json::Value>,
) -> Result<JobState> {
    let state = initial_state(state_path, kind, request)?;
    fsx::write_json(state_path, &state)?;
    let runner = JobRunner::open(state_path)?;
    let outcome = f(&runner);
    runner.finish(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_job_records_result_and_attempts() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("job.json");
        let s = run_inline(&p, "demo", serde_json::json!({"n": 2}), |r| {
            r.progress(1.0, Some(2.0), "half");
            // What a job process prints lands in its log unredacted; finish redacts it.
            std::fs::write(
                log_file(r.state_path()),
                "loading with --hf-token hf_abcdefghijklmnopqrstuvwxyz0123\n",
            )?;
            Ok(serde_json::json!({"n": r.request()["n"]}))
        })
        .unwrap();
        assert_eq!(s.status, JobStatus::Succeeded);
        assert_eq!(s.result.unwrap()["n"], 2);
        let log = std::fs::read_to_string(&s.log_path).unwrap();
        assert_eq!(log, "loading with --hf-token <redacted>\n");
        let s2 = run_inline(&p, "demo", serde_json::json!({}), |_| anyhow::bail!("boom")).unwrap();
        assert_eq!((s2.status, s2.attempts), (JobStatus::Failed, 2));
        assert_eq!(status(&p).unwrap().error.as_deref(), Some("boom"));
        assert!(
            run_inline(&p, "other", serde_json::json!({}), |_| Ok(
                serde_json::Value::Null
            ))
            .is_err()
        );
    }

    #[test]
    fn running_state_with_dead_pid_reads_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("job.json");
        let mut s = initial_state(&p, "demo", serde_json::json!({})).unwrap();
        // A pid that cannot exist (beyond pid_max).
        s.pid = Some(4_194_399);
        fsx::write_json(&p, &s).unwrap();
        assert_eq!(status(&p).unwrap().status, JobStatus::Interrupted);
    }
}
