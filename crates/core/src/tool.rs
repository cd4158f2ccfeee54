//! The contract every tool follows: a typed request in, a typed report out.
//!
//! Domain crates implement [`Tool`]; the root crate's MCP and CLI adapters call
//! [`Tool::run`] and nothing else, so a tool behaves the same from an agent or a shell.

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A tool: MCP tool name == CLI subcommand name (with `_` → `-` accepted on the CLI).
pub trait Tool {
    /// The MCP tool name, e.g. `campaign_init`.
    const NAME: &'static str;
    /// One paragraph for the model: what it does, what it writes, when to call it.
    const DESCRIPTION: &'static str;
    /// Typed request; its JSON Schema is the MCP input schema. Must be a JSON object.
    type Request: DeserializeOwned + JsonSchema + Send + 'static;
    /// Typed report; its JSON Schema is the MCP output schema. Must be a JSON object,
    /// and size-bounded (top rows plus paths to full artifacts on disk).
    type Report: Serialize + JsonSchema + Send + 'static;

    /// The pure core. Blocking: adapters run it on a blocking thread.
    /// Errors should name the bad field or file: they are shown to the model verbatim.
    fn run(request: Self::Request, ctx: &ToolContext) -> anyhow::Result<Self::Report>;

    /// Human-readable rendering for the CLI (markdown).
    fn markdown(report: &Self::Report) -> String;

    /// True when the report says the tool did not do what it was asked (e.g. a
    /// `preconditions_failed` status): the CLI then exits non-zero. Default: never.
    fn is_failure(_report: &Self::Report) -> bool {
        false
    }
}

/// A tool's request from its JSON, the one way both faces (MCP and CLI) read it. An error
/// names the tool and the field at fault, e.g. ``invalid request for profile_launch: field
/// `framework`: unknown variant `trtllm`, expected one of `vllm`, `sglang`, ...``.
pub fn parse_request<T: Tool>(value: serde_json::Value) -> anyhow::Result<T::Request> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path.is_empty() || path == "." {
            anyhow::anyhow!("invalid request for {}: {}", T::NAME, e.inner())
        } else {
            anyhow::anyhow!(
                "invalid request for {}: field `{path}`: {}",
                T::NAME,
                e.inner()
            )
        }
    })
}

type ProgressFn = dyn Fn(f64, Option<f64>, &str) + Send + Sync;

/// What an adapter gives a running tool: a progress sink and a cancellation flag.
#[derive(Clone, Default)]
pub struct ToolContext {
    progress: Option<Arc<ProgressFn>>,
    cancelled: Arc<AtomicBool>,
}

impl ToolContext {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_progress(
        mut self,
        f: impl Fn(f64, Option<f64>, &str) + Send + Sync + 'static,
    ) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    /// Report progress (`done` of `total`, with a short message). Also logged at debug level.
    pub fn progress(&self, done: f64, total: Option<f64>, message: &str) {
        tracing::debug!(done, ?total, message, "progress");
        if let Some(f) = &self.progress {
            f(done, total, message);
        }
    }

    /// A handle the adapter sets when the client cancels.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancelled.clone()
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Return an error when the client cancelled; call between units of work.
    pub fn check_cancelled(&self) -> anyhow::Result<()> {
        if self.is_cancelled() {
            anyhow::bail!("cancelled by the client");
        }
        Ok(())
    }
}
