//! Shared pieces every vllm-sota tool uses: the tool contract ([`tool::Tool`]),
//! the campaign directory layout ([`layout`]), detached jobs ([`jobs`]),
//! crash-safe writes ([`fsx`]), secret redaction ([`redact`]), the
//! reference-data loader ([`refs`]), the shared benchmark result types
//! ([`results`]), the schema rules strict MCP clients need ([`schema`]), and the
//! plumbing every crate goes through: child processes ([`proc`]), HTTP ([`http`],
//! [`sse`]), framework names ([`Framework`]), markdown ([`md`]), the percentile
//! definition ([`stats`]) and the kernel-name shortener ([`kname`]).
//!
//! Nothing here knows about MCP or the command line: adapters live in the root crate.

#![warn(unreachable_pub)]

mod framework;
pub mod fsx;
pub mod gpu;
pub mod http;
pub mod humanize;
pub mod jobs;
pub mod kname;
pub mod layout;
pub mod md;
pub mod proc;
pub mod redact;
pub mod refs;
pub mod results;
pub mod schema;
pub mod sse;
pub mod stats;
pub mod tool;

pub use framework::Framework;
pub use tool::{Tool, ToolContext};
