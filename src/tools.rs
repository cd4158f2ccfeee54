//! THE list of tools. Both faces are generated from it: the MCP router (`mcp.rs`) and
//! the CLI registry (`registry.rs`), so they cannot drift apart. The method name must
//! equal the tool's `Tool::NAME` (a test checks it).

macro_rules! for_each_tool {
    ($callback:ident) => {
        $callback! {
            campaign_init: vllm_sota_campaign::CampaignInit,
            campaign_status: vllm_sota_campaign::CampaignStatus,
            ledger_append: vllm_sota_campaign::LedgerAppend,
            job_status: vllm_sota_campaign::JobStatusTool,
            job_cancel: vllm_sota_campaign::JobCancelTool,
            history_notes: vllm_sota_rlcr::HistoryNotes,
            fair_benchmark: vllm_sota_fairbench::FairBenchmark,
            gap_decision: vllm_sota_rlcr::GapDecision,
            start_rlcr: vllm_sota_rlcr::StartRlcr,
            profile_capture: vllm_sota_trace::ProfileCapture,
            profile_launch: vllm_sota_trace::ProfileLaunch,
            profile_tables: vllm_sota_trace::ProfileTables,
            layer_pipeline: vllm_sota_layers::LayerPipeline,
            ncu_digest: vllm_sota_ncu::NcuDigest,
            revalidate: vllm_sota_fairbench::Revalidate,
            checkpoint: vllm_sota_rlcr::Checkpoint,
            final_report: vllm_sota_rlcr::FinalReport,
        }
    };
}
pub(crate) use for_each_tool;

/// THE list of detached job kinds: `job-run` (`jobrun.rs`) dispatches from it, so a job
/// kind a tool starts cannot be missing there. Each entry: the kind constant the starting
/// tool writes into the job state => the domain crate's job body.
macro_rules! for_each_job {
    ($callback:ident) => {
        $callback! {
            vllm_sota_rlcr::START_RLCR_JOB_KIND => vllm_sota_rlcr::run_start_rlcr_job,
            vllm_sota_fairbench::FAIR_BENCHMARK_KIND => vllm_sota_fairbench::run_fair_benchmark_job,
            vllm_sota_fairbench::REVALIDATE_KIND => vllm_sota_fairbench::run_revalidate_job,
            vllm_sota_trace::PROFILE_LAUNCH_JOB_KIND => vllm_sota_trace::run_profile_launch_job,
        }
    };
}
pub(crate) use for_each_job;
