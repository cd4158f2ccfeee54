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
    let outcome = dispatch(&kind, &runner);
    let state = runner.finish(outcome)?;
    tracing::info!(status = ?state.status, "job finished");
    if let Some(e) = state.error {
        bail!(e);
    }
    Ok(())
}

macro_rules! job_dispatch {
    ($($kind:path => $run:path),* $(,)?) => {
        /// Run the job body registered for `kind` in `for_each_job!`.
        fn dispatch(kind: &str, runner: &JobRunner) -> Result<serde_json::Value> {
            $(
                if kind == $kind {
                    return $run(runner);
                }
            )*
            let known: &[&str] = &[$($kind),*];
            Err(anyhow::anyhow!(
                "unknown job kind '{kind}' (known: {})",
                known.join(", ")
            ))
        }
    };
}
crate::tools::for_each_job!(job_dispatch);
