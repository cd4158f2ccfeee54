//! `fair_benchmark` run as the binary runs it, inside the test process: the dry run
//! (preflight against the help fixtures), then the job itself inline. Shared by the
//! fairbench tests and the root tests (`tests/missing_competitor_sim.rs` includes this file).

use std::path::Path;
use vllm_sota_core::ToolContext;
use vllm_sota_core::jobs::{self, JobStatus};
use vllm_sota_fairbench::PreflightOptions;
use vllm_sota_fairbench::{FairBenchmarkRequest, start_fair_benchmark};

/// Dry-run then run `req` (its `dry_run` is ignored) for the campaign at `root`; the job
/// must succeed. Returns the job's result.
pub fn run_fair_benchmark_inline(root: &Path, req: FairBenchmarkRequest) -> serde_json::Value {
    let dry = start_fair_benchmark(
        FairBenchmarkRequest {
            dry_run: true,
            ..req.clone()
        },
        &ToolContext::default(),
        Path::new("/nonexistent"),
        &PreflightOptions::default(),
    )
    .unwrap();
    assert_eq!(dry.status, "dry_run");
    let live = FairBenchmarkRequest {
        dry_run: false,
        ..req
    };
    let st = jobs::run_inline(
        &root.join("benchmark/job.json"),
        "fair_benchmark",
        serde_json::to_value(&live).unwrap(),
        vllm_sota_fairbench::run_fair_benchmark_job,
    )
    .unwrap();
    assert_eq!(st.status, JobStatus::Succeeded, "{:?}", st.error);
    st.result.unwrap()
}
