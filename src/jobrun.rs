//! `vllm-sota job-run --state <file>`: the body of a detached job process. It opens the
//! job's state, dispatches on its kind to the domain crate's job function, and records
//! the outcome. Started by `vllm_sota_core::jobs::start`, never by people.

use anyhow::{Result, bail};
use std::path::Path;
use vllm_sota_core::jobs::JobRunner;

pub fn run(state_path: &Path) -> Result<()> {
    let runner = JobRunner::open(state_path)?;
    let kind = runner.kind();
    tracing::info!(%kind, state = %state_path.display(), "job started");
    let outcome = match kind.as_str() {
        vllm_sota_rlcr::start::JOB_KIND => vllm_sota_rlcr::start::run_job(&runner),
        "fair_benchmark" => vllm_sota_fairbench::run_fair_benchmark_job(&runner),
        "revalidate" => vllm_sota_fairbench::run_revalidate_job(&runner),
        vllm_sota_trace::capture::launch::JOB_KIND => {
            vllm_sota_trace::capture::launch::run_job(&runner)
        }
        other => Err(anyhow::anyhow!("unknown job kind '{other}'")),
    };
    let state = runner.finish(outcome)?;
    tracing::info!(status = ?state.status, "job finished");
    if let Some(e) = state.error {
        bail!(e);
    }
    Ok(())
}
