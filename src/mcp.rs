//! The MCP face: `vllm-sota mcp` serves every tool over stdio with rmcp.
//!
//! Each tool method is generated from the tool list (`tools.rs`): the arguments object in,
//! read into the typed request by `vllm_sota_core::tool::parse_request` (the request's JSON
//! Schema is the input schema), `Json<Report>` out (outputSchema +
//! structuredContent), failures as tool errors (`isError: true`) whose text the model
//! reads. The tool core runs on a blocking thread; its progress becomes MCP progress
//! notifications when the client sent a progress token, and a client cancellation sets
//! the tool's cancel flag. No logic lives here.

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::JsonObject;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult,
    PaginatedRequestParams, ProgressNotificationParam, ServerCapabilities, ServerConfig,
    Tool as McpTool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, ServiceExt, tool, tool_router};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use vllm_sota_core::{Tool, ToolContext};

const INSTRUCTIONS: &str = "vllm-sota runs a vLLM performance campaign against SGLang and TensorRT-LLM. \
Start with campaign_init (or campaign_status after a restart: it names the next step). Phase 0.5: history_notes. \
Phase 1: fair_benchmark (a detached job: poll job_status). Then start_rlcr, and in each round: gap_decision first; \
when behind, profile_tables (prefill and decode) and layer_pipeline before choosing a target; patch vLLM; ncu_digest for kernel edits; \
revalidate; ledger_append for every attempt; checkpoint. Stop only when gap_decision says stop; then final_report.";

#[derive(Clone)]
pub struct VllmSota {
    tool_router: ToolRouter<Self>,
}

/// A tool's input schema as MCP lists it (and the CLI's `--schema` prints it): rmcp's
/// generation (JSON Schema 2020-12, root `type: object`) made portable for strict
/// clients by the one rule set in `vllm_sota_core::schema`.
pub fn input_schema<T: Tool>() -> JsonObject {
    let raw = rmcp::handler::server::common::schema_for_input::<T::Request>()
        .unwrap_or_else(|e| panic!("{}: {e}", T::NAME));
    vllm_sota_core::schema::portable(raw.as_ref().clone())
}

/// A tool's output schema (what its report serializes to), made portable likewise.
pub fn output_schema<T: Tool>() -> JsonObject {
    let raw = rmcp::handler::server::common::schema_for_output::<T::Report>();
    vllm_sota_core::schema::portable(raw.as_ref().clone())
}

/// Run a tool's blocking core with progress and cancellation wired to the MCP request.
/// The arguments are read by `parse_request` (the CLI's reader), so a bad field is a tool
/// error that names it.
async fn invoke<T: Tool>(
    arguments: JsonObject,
    rctx: RequestContext<RoleServer>,
) -> Result<Json<T::Report>, String> {
    let request = vllm_sota_core::tool::parse_request::<T>(serde_json::Value::Object(arguments))
        .map_err(|e| format!("{e:#}"))?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(f64, Option<f64>, String)>();
    let ctx = ToolContext::new().with_progress(move |done, total, msg| {
        let _ = tx.send((done, total, msg.to_string()));
    });
    let token = rctx.meta.get_progress_token();
    let peer = rctx.peer.clone();
    let forward = tokio::spawn(async move {
        while let Some((done, total, msg)) = rx.recv().await {
            if let Some(token) = token.clone() {
                let mut p = ProgressNotificationParam::new(token, done).with_message(msg);
                if let Some(t) = total {
                    p = p.with_total(t);
                }
                let _ = peer.notify_progress(p).await;
            }
        }
    });
    let cancel = ctx.cancel_flag();
    let ct = rctx.ct.clone();
    let watcher = tokio::spawn(async move {
        ct.cancelled().await;
        cancel.store(true, Ordering::Relaxed);
    });
    let result = tokio::task::spawn_blocking(move || T::run(request, &ctx)).await;
    watcher.abort();
    let _ = forward.await;
    match result {
        Ok(Ok(report)) => Ok(Json(report)),
        Ok(Err(e)) => Err(format!("{} failed: {e:#}", T::NAME)),
        Err(join) => Err(format!("{} crashed: {join}", T::NAME)),
    }
}

macro_rules! mcp_router {
    ($($name:ident: $ty:ty,)*) => {
        #[tool_router]
        impl VllmSota {
            pub fn new() -> Self {
                let mut tool_router = Self::tool_router();
                $(
                    if let Some(route) = tool_router.map.get_mut(stringify!($name)) {
                        route.attr.input_schema = Arc::new(input_schema::<$ty>());
                        route.attr.output_schema = Some(Arc::new(output_schema::<$ty>()));
                    }
                )*
                Self { tool_router }
            }
            $(
                #[tool(description = <$ty as Tool>::DESCRIPTION)]
                async fn $name(
                    &self,
                    Parameters(arguments): Parameters<JsonObject>,
                    rctx: RequestContext<RoleServer>,
                ) -> Result<Json<<$ty as Tool>::Report>, String> {
                    invoke::<$ty>(arguments, rctx).await
                }
            )*
        }
    };
}
crate::tools::for_each_tool!(mcp_router);

impl ServerHandler for VllmSota {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("vllm-sota", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.tool_router.list_all()))
    }

    fn get_tool(&self, name: &str) -> Option<McpTool> {
        self.tool_router.get(name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let name = request.name.to_string();
        let campaign_dir = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("campaign_dir"))
            .and_then(|v| v.as_str())
            .map(str::to_string);
        let response = self
            .tool_router
            .call(ToolCallContext::new(self, request, context))
            .await;
        let outcome: anyhow::Result<(serde_json::Value, String, bool)> = match &response {
            Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => {
                let text = r
                    .content
                    .iter()
                    .filter_map(|c| c.as_text().map(|t| t.text.clone()))
                    .collect::<Vec<_>>()
                    .join(" ");
                Err(anyhow::anyhow!(text))
            }
            Ok(_) => Ok((serde_json::Value::Null, String::new(), false)),
            Err(e) => Err(anyhow::anyhow!("{e}")),
        };
        crate::calllog::record(&name, campaign_dir.as_deref(), "mcp", &outcome);
        response
    }
}

/// Serve MCP over stdio until the client closes stdin.
pub async fn serve() -> anyhow::Result<()> {
    let service = VllmSota::new().serve(rmcp::transport::stdio()).await?;
    service.waiting().await?;
    Ok(())
}

/// The MCP tool names, for the consistency test against the CLI registry.
#[cfg(test)]
pub fn tool_names() -> Vec<String> {
    VllmSota::new()
        .tool_router
        .list_all()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use vllm_sota_core::schema::STANDARD_FORMATS;

    /// Keywords whose value is one subschema, a list of them, or a map of them.
    const ONE: &[&str] = &[
        "items",
        "not",
        "if",
        "then",
        "else",
        "contains",
        "propertyNames",
        "unevaluatedItems",
    ];
    const LIST: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems"];
    const MAP: &[&str] = &["properties", "patternProperties", "$defs", "definitions"];
    /// Keywords that only annotate: a schema with nothing else accepts any value.
    const ANNOTATION_ONLY: &[&str] = &[
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$comment",
    ];

    /// What a strict client (MCP Inspector `--strict`, Ajv in strict mode) rejects or
    /// warns about in one schema, with JSON paths.
    fn problems(s: &Value, path: &str, out: &mut Vec<String>) {
        let o = match s {
            Value::Object(o) => o,
            Value::Bool(b) => {
                out.push(format!("{path}: bare `{b}` schema"));
                return;
            }
            other => {
                out.push(format!("{path}: not a schema: {other}"));
                return;
            }
        };
        if o.keys().all(|k| ANNOTATION_ONLY.contains(&k.as_str())) {
            out.push(format!("{path}: no validation keyword (accepts any value)"));
        }
        if let Some(f) = o.get("format")
            && !f.as_str().is_some_and(|f| STANDARD_FORMATS.contains(&f))
        {
            out.push(format!("{path}: non-standard format {f}"));
        }
        if let Some(t) = o.get("type")
            && !t.is_string()
        {
            out.push(format!("{path}: `type` is not one string: {t}"));
        }
        for (k, v) in o {
            let here = format!("{path}.{k}");
            if ONE.contains(&k.as_str()) {
                problems(v, &here, out);
            } else if LIST.contains(&k.as_str()) {
                for (i, x) in v.as_array().into_iter().flatten().enumerate() {
                    problems(x, &format!("{here}[{i}]"), out);
                }
            } else if MAP.contains(&k.as_str()) {
                for (name, x) in v.as_object().into_iter().flatten() {
                    problems(x, &format!("{here}.{name}"), out);
                }
            } else if k == "additionalProperties" || k == "unevaluatedProperties" {
                // `true`/`false` are the ordinary spelling here (open or closed objects).
                if v.is_object() {
                    problems(v, &here, out);
                }
            }
        }
    }

    #[test]
    fn every_tool_schema_passes_strict_clients_and_the_cli_prints_the_same_schemas() {
        let server = VllmSota::new();
        let tools = server.tool_router.list_all();
        assert!(tools.len() >= 15);
        let cli = crate::registry::tools();
        let mut all = vec![];
        for t in &tools {
            let input = Value::Object(t.input_schema.as_ref().clone());
            let output = Value::Object(
                t.output_schema
                    .as_ref()
                    .unwrap_or_else(|| panic!("{} has no outputSchema", t.name))
                    .as_ref()
                    .clone(),
            );
            assert_eq!(input["type"], "object", "{}", t.name);
            problems(&input, &format!("{}.inputSchema", t.name), &mut all);
            problems(&output, &format!("{}.outputSchema", t.name), &mut all);
            let c = cli.iter().find(|c| c.name == t.name).unwrap();
            assert_eq!((c.input_schema)(), input, "{}: CLI input schema", t.name);
            assert_eq!((c.output_schema)(), output, "{}: CLI output schema", t.name);
        }
        assert!(
            all.is_empty(),
            "{} problems:\n{}",
            all.len(),
            all.join("\n")
        );
    }

    #[test]
    fn the_walker_finds_what_strict_clients_reject() {
        let bad = serde_json::json!({
            "type": "object",
            "properties": {
                "a": true,
                "b": {"type": "integer", "format": "uint64"},
                "c": {"type": ["string", "null"]},
                "d": {"description": "anything"},
                "e": {"type": "object", "additionalProperties": true}
            },
            "$defs": {"X": {"type": "object", "properties": {"r": true}}}
        });
        let mut out = vec![];
        problems(&bad, "t", &mut out);
        assert_eq!(out.len(), 5, "{out:#?}");
        assert!(out.iter().any(|p| p.starts_with("t.$defs.X.properties.r")));
    }
}
