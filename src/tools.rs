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
            ncu_digest: vllm_sota_ncu::NcuDigest,
        }
    };
}
pub(crate) use for_each_tool;
