//! The list of tools, as the CLI sees them. Each entry is built generically from a
//! [`Tool`] type, so the CLI adds no logic of its own. The MCP server lists the same
//! tools (see `mcp.rs`); a test checks both lists agree.

use anyhow::{Context, Result};
use serde_json::Value;
use vllm_sota_core::{Tool, ToolContext};

/// What a tool call returns to an adapter: (JSON report, markdown, whether the report
/// is a failure: [`Tool::is_failure`]).
pub type Called = (Value, String, bool);

pub struct ToolEntry {
    pub name: &'static str,
    pub description: &'static str,
    pub input_schema: fn() -> Value,
    pub output_schema: fn() -> Value,
    /// Deserialize the request, run the tool, return its [`Called`].
    pub call: fn(Value, &ToolContext) -> Result<Called>,
}

fn call<T: Tool>(request: Value, ctx: &ToolContext) -> Result<Called> {
    let request = vllm_sota_core::tool::parse_request::<T>(request)?;
    let report = T::run(request, ctx)?;
    let markdown = T::markdown(&report);
    Ok((
        serde_json::to_value(&report).context("cannot serialize the report")?,
        markdown,
        T::is_failure(&report),
    ))
}

fn entry<T: Tool>() -> ToolEntry {
    ToolEntry {
        name: T::NAME,
        description: T::DESCRIPTION,
        input_schema: || Value::Object(crate::mcp::input_schema::<T>()),
        output_schema: || Value::Object(crate::mcp::output_schema::<T>()),
        call: call::<T>,
    }
}

macro_rules! registry_list {
    ($($name:ident: $ty:ty,)*) => {
        /// Every tool, in the order the skill uses them.
        pub fn tools() -> Vec<ToolEntry> {
            vec![$(entry::<$ty>(),)*]
        }
    };
}
crate::tools::for_each_tool!(registry_list);

pub fn find(name: &str) -> Option<ToolEntry> {
    let wanted = name.replace('-', "_");
    tools().into_iter().find(|t| t.name == wanted)
}
