//! The command-line face: every tool is a subcommand taking the same request as over
//! MCP, from `--request <file|->` and/or `--set key=value` flags, printing markdown
//! for people or `--json` for machines.

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};
use std::io::Read;

use crate::registry::{self, ToolEntry};
use vllm_sota_core::ToolContext;

/// Parse a `--set` value: JSON when it parses (numbers, booleans, arrays, objects, quoted strings), else a plain string.
fn parse_value(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}

/// Apply `a.b.c=value` to a JSON object, creating nested objects.
pub fn apply_set(target: &mut Map<String, Value>, assignment: &str) -> Result<()> {
    let (key, raw) = assignment
        .split_once('=')
        .with_context(|| format!("--set {assignment}: expected key=value"))?;
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        bail!("--set {assignment}: empty key segment");
    }
    let mut node = target;
    for part in &parts[..parts.len() - 1] {
        let next = node
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        node = next
            .as_object_mut()
            .with_context(|| format!("--set {assignment}: '{part}' is not an object"))?;
    }
    node.insert(parts[parts.len() - 1].to_string(), parse_value(raw));
    Ok(())
}

fn read_request(source: &str) -> Result<Value> {
    let text = if source == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the request from stdin")?;
        s
    } else {
        std::fs::read_to_string(source)
            .with_context(|| format!("--request {source}: cannot read"))?
    };
    serde_json::from_str(&text).with_context(|| format!("--request {source}: invalid JSON"))
}

fn usage(tool: &ToolEntry) -> String {
    format!(
        "vllm-sota {} [--request FILE|-] [--set key=value ...] [--json] [--schema]\n\n{}\n\nThe request is the tool's MCP input (see --schema). --set merges into it (dotted keys nest; values are JSON when they parse, else strings).",
        tool.name.replace('_', "-"),
        tool.description
    )
}

/// The JSON document `--json` prints on stdout when a tool fails (redacted like every
/// error): `{"error": {"tool": …, "message": …}}`.
pub fn error_json(tool: &str, e: &anyhow::Error) -> Value {
    serde_json::json!({"error": {
        "tool": tool.replace('-', "_"),
        "message": vllm_sota_core::redact::redact(&format!("{e:#}")),
    }})
}

/// Run a tool subcommand. Returns the process exit code. With `--json` anywhere in the
/// arguments, stdout is always one JSON document: the report, or on failure the
/// [`error_json`] object (the exit code is then 1 and stderr still carries the message).
pub fn run_tool(name: &str, args: &[String]) -> Result<i32> {
    let json = args.iter().any(|a| a == "--json");
    match run_tool_inner(name, args) {
        Err(e) if json => {
            println!("{}", error_json(name, &e));
            eprintln!(
                "error: {}",
                vllm_sota_core::redact::redact(&format!("{e:#}"))
            );
            Ok(1)
        }
        other => other,
    }
}

fn run_tool_inner(name: &str, args: &[String]) -> Result<i32> {
    let Some(tool) = registry::find(name) else {
        let names: Vec<String> = registry::tools()
            .iter()
            .map(|t| t.name.replace('_', "-"))
            .collect();
        bail!(
            "unknown command '{name}'. Tools: {}. Also: mcp, tools, sim-serve, bench load, selfbench.",
            names.join(", ")
        );
    };
    let mut request = Map::new();
    let mut json = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--json" => json = true,
            "-h" | "--help" => {
                println!("{}", usage(&tool));
                return Ok(0);
            }
            "--schema" => {
                let schemas = serde_json::json!({"input": (tool.input_schema)(), "output": (tool.output_schema)()});
                println!("{}", serde_json::to_string_pretty(&schemas)?);
                return Ok(0);
            }
            "--request" => {
                let src = it.next().context("--request needs a file path or -")?;
                match read_request(src)? {
                    Value::Object(o) => request.extend(o),
                    _ => bail!("--request {src}: the request must be a JSON object"),
                }
            }
            "--set" => apply_set(&mut request, it.next().context("--set needs key=value")?)?,
            other if other.starts_with("--set=") => apply_set(&mut request, &other[6..])?,
            other if other.starts_with("--request=") => match read_request(&other[10..])? {
                Value::Object(o) => request.extend(o),
                _ => bail!("{other}: the request must be a JSON object"),
            },
            other => bail!("unexpected argument '{other}'\n\n{}", usage(&tool)),
        }
    }
    let ctx = ToolContext::new().with_progress(|done, total, msg| {
        let total = total.map(|t| format!("/{t}")).unwrap_or_default();
        eprintln!("[progress {done}{total}] {msg}");
    });
    let campaign_dir = request
        .get("campaign_dir")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let outcome = (tool.call)(Value::Object(request), &ctx);
    crate::calllog::record(tool.name, campaign_dir.as_deref(), "cli", &outcome);
    let (report, markdown, failed) = outcome?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{markdown}");
    }
    // A report that says the tool failed (e.g. preconditions_failed) exits 2; errors exit 1.
    Ok(if failed { 2 } else { 0 })
}

/// `vllm-sota tools [--json]`: the tool list with schemas.
pub fn list_tools(json: bool) -> Result<()> {
    let tools = registry::tools();
    if json {
        let v: Vec<Value> = tools
            .iter()
            .map(|t| serde_json::json!({"name": t.name, "description": t.description, "inputSchema": (t.input_schema)(), "outputSchema": (t.output_schema)()}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for t in &tools {
            let first = t
                .description
                .split(". ")
                .next()
                .unwrap_or(t.description)
                .trim_end_matches('.');
            println!("{:<18} {first}.", t.name.replace('_', "-"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_nests_and_types_values() {
        let mut m = Map::new();
        apply_set(&mut m, "entry.ledger=attempt").unwrap();
        apply_set(&mut m, "entry.round=2").unwrap();
        apply_set(&mut m, "gpu_ids=[0,1]").unwrap();
        apply_set(&mut m, "model=meta-llama/Llama-3.1-8B").unwrap();
        let v = Value::Object(m);
        assert_eq!(v["entry"]["ledger"], "attempt");
        assert_eq!(v["entry"]["round"], 2);
        assert_eq!(v["gpu_ids"], serde_json::json!([0, 1]));
        assert_eq!(v["model"], "meta-llama/Llama-3.1-8B");
        assert!(apply_set(&mut Map::new(), "novalue").is_err());
    }
}
