//! Shared pieces every vllm-sota tool uses: the tool contract ([`tool::Tool`]),
//! the campaign directory layout ([`layout`]), detached jobs ([`jobs`]),
//! crash-safe writes ([`fsx`]), secret redaction ([`redact`]), the
//! reference-data loader ([`refs`]), the shared benchmark result types
//! ([`results`]) and the schema rules strict MCP clients need ([`schema`]).
//!
//! Nothing here knows about MCP or the command line: adapters live in the root crate.

pub mod fsx;
pub mod gpu;
pub mod humanize;
pub mod jobs;
pub mod layout;
pub mod redact;
pub mod refs;
pub mod results;
pub mod schema;
pub mod tool;

pub use tool::{Tool, ToolContext};
