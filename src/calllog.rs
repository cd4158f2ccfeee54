//! The campaign's tool-call log (`humanize/tool-calls.log`): one redacted line per call
//! that names a campaign_dir, from MCP or the CLI, so a person can replay what the agent did.

use serde_json::Value;
use std::path::Path;
use vllm_sota_core::fsx;
use vllm_sota_core::layout::{CampaignPaths, now_rfc3339};

pub fn record(
    tool: &str,
    campaign_dir: Option<&str>,
    via: &str,
    outcome: &anyhow::Result<(Value, String, bool)>,
) {
    let result = match outcome {
        Ok((_, _, true)) => "failure report".to_string(),
        Ok(_) => "ok".to_string(),
        Err(e) => format!("error: {}", format!("{e:#}").replace('\n', " ")),
    };
    tracing::info!(tool, via, %result, "tool call");
    let Some(dir) = campaign_dir else { return };
    let paths = CampaignPaths::new(dir);
    if !Path::new(&paths.campaign_json()).is_file() {
        return;
    }
    let line = format!("{} {via} {tool} {result}", now_rfc3339());
    if let Err(e) = fsx::append_line(&paths.log_file(), &line) {
        tracing::warn!("cannot write the campaign log: {e:#}");
    }
}
