//! Test-only stand-in for the root binary's hidden `job-run` subcommand:
//! `fairbench_job job-run --state <benchmark/job.json>` runs a `fair_benchmark` or
//! `revalidate` job in this process (used by the kill -9 / resume test).
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let state = match (
        args.get(1).map(String::as_str),
        args.get(2).map(String::as_str),
        args.get(3),
    ) {
        (Some("job-run"), Some("--state"), Some(p)) => PathBuf::from(p),
        _ => {
            eprintln!("usage: fairbench_job job-run --state <path>");
            std::process::exit(2);
        }
    };
    let runner = match vllm_sota_core::jobs::JobRunner::open(&state) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::exit(1);
        }
    };
    let kind = runner.kind();
    let outcome = vllm_sota_fairbench::run_job_by_kind(&kind, &runner)
        .unwrap_or_else(|| Err(anyhow::anyhow!("unknown job kind {kind}")));
    if let Err(e) = runner.finish(outcome) {
        eprintln!("Error: {e:#}");
        std::process::exit(1);
    }
}
