//! Test-only stand-in for the root binary's hidden `job-run` subcommand, for one kind:
//! `fairbench_job job-run --state <benchmark/job.json>` runs a `fair_benchmark` job in this
//! process (used by the kill -9 / resume and cancel tests). Job kinds are dispatched in one
//! place only, the root crate's `for_each_job!`; this stand-in refuses every other kind.
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
    let outcome = if kind == vllm_sota_fairbench::FAIR_BENCHMARK_KIND {
        vllm_sota_fairbench::run_fair_benchmark_job(&runner)
    } else {
        Err(anyhow::anyhow!(
            "job kind '{kind}': this test stand-in runs only fair_benchmark jobs (`vllm-sota job-run` runs every kind)"
        ))
    };
    if let Err(e) = runner.finish(outcome) {
        eprintln!("Error: {e:#}");
        std::process::exit(1);
    }
}
