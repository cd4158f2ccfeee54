//! The MCP face, driven by the rmcp client over a child process's stdio, as Claude
//! Code and Codex do: tools with input and output schemas, structured results, tool
//! errors the model can read, progress notifications.

mod common;
use common::*;
use rmcp::model::{CallToolRequestParams, ProgressNotificationParam};
use rmcp::service::{NotificationContext, RoleClient};
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{ClientHandler, ServiceExt};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

fn server() -> tokio::process::Command {
    tokio::process::Command::new(bin()).configure(|c| {
        c.arg("mcp").env("RUST_LOG", "warn");
    })
}

fn args(v: Value) -> rmcp::model::JsonObject {
    v.as_object().cloned().unwrap()
}

#[derive(Clone, Default)]
struct CountingProgress(Arc<AtomicU32>);
impl ClientHandler for CountingProgress {
    async fn on_progress(
        &self,
        _p: ProgressNotificationParam,
        _c: NotificationContext<RoleClient>,
    ) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn tools_have_schemas_and_the_campaign_tools_work_over_stdio() -> anyhow::Result<()> {
    let progress = CountingProgress::default();
    let client = progress
        .clone()
        .serve(TokioChildProcess::new(server())?)
        .await?;
    let info = client.peer_info().expect("server info");
    assert_eq!(info.server_info.as_ref().unwrap().name, "vllm-sota");
    assert!(
        info.instructions
            .as_deref()
            .unwrap_or("")
            .contains("campaign_status")
    );

    let tools = client.list_all_tools().await?;
    for name in [
        "campaign_init",
        "campaign_status",
        "ledger_append",
        "job_status",
        "job_cancel",
    ] {
        let t = tools
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("{name} missing from tools/list"));
        assert_eq!(
            t.input_schema.get("type").and_then(|v| v.as_str()),
            Some("object"),
            "{name} input schema"
        );
        let out = t
            .output_schema
            .as_ref()
            .unwrap_or_else(|| panic!("{name} has no outputSchema"));
        assert_eq!(
            out.get("type").and_then(|v| v.as_str()),
            Some("object"),
            "{name} output schema"
        );
        assert!(t.description.as_ref().is_some_and(|d| d.len() > 40));
    }
    let init_schema = &tools
        .iter()
        .find(|t| t.name == "campaign_init")
        .unwrap()
        .input_schema;
    let required: Vec<&str> = init_schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, ["model", "artifact_root"]);

    let root = tempfile::tempdir()?;
    let r = client
        .call_tool(CallToolRequestParams::new("campaign_init").with_arguments(args(json!({
            "model": fixtures().join("dummy-llama-3.1-8b"), "artifact_root": root.path(), "gpu_ids": [0]
        }))))
        .await?;
    assert_eq!(r.is_error, Some(false), "{:?}", r.content);
    let report = r.structured_content.expect("structuredContent");
    assert_eq!(report["created"], true);
    let dir = report["campaign_dir"].as_str().unwrap().to_string();
    assert!(
        progress.0.load(Ordering::SeqCst) >= 2,
        "campaign_init reports progress"
    );

    let r = client
        .call_tool(
            CallToolRequestParams::new("campaign_status")
                .with_arguments(args(json!({"campaign_dir": dir}))),
        )
        .await?;
    let status = r.structured_content.expect("structuredContent");
    assert_eq!(status["gates"][0]["gate"], "campaign_initialized");
    assert_eq!(status["gates"][0]["state"], "done");

    // An attempt needs the round's evidence: a gap_decision saying patch, the round's
    // root-cause.md and layer-pipeline.md. Without them the row is refused in band.
    let attempt = json!({
        "campaign_dir": dir,
        "entry": {"ledger": "attempt", "round": 1, "hypothesis": "h", "target": "t", "change": "c", "status": "planned"}
    });
    let r = client
        .call_tool(
            CallToolRequestParams::new("ledger_append").with_arguments(args(attempt.clone())),
        )
        .await?;
    assert_eq!(r.is_error, Some(true), "{:?}", r.content);
    let campaign = std::path::Path::new(&dir);
    std::fs::create_dir_all(campaign.join("analysis/round-1"))?;
    std::fs::write(
        campaign.join("analysis/round-1/root-cause.md"),
        "# Root cause\n\nsampler\n",
    )?;
    std::fs::write(
        campaign.join("analysis/round-1/layer-pipeline.md"),
        "# Layer pipeline\n\nsampler\n",
    )?;
    let decision = json!({"kind": "gap_decision", "round": 1, "decision": "patch", "reason": "r", "scenarios": []});
    let mut lineage = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(campaign.join("humanize/lineage.jsonl"))?;
    std::io::Write::write_all(&mut lineage, format!("{decision}\n").as_bytes())?;
    drop(lineage);
    let r = client
        .call_tool(CallToolRequestParams::new("ledger_append").with_arguments(args(attempt)))
        .await?;
    assert_eq!(r.is_error, Some(false), "{:?}", r.content);
    assert_eq!(r.structured_content.unwrap()["row_id"], "r1-a01");

    // A rejected row is a tool error whose text names the field, readable by the model.
    let r = client
        .call_tool(CallToolRequestParams::new("ledger_append").with_arguments(args(json!({
            "campaign_dir": dir,
            "entry": {"ledger": "optimization", "round": 1, "attempt_id": "r1-a01", "summary": "s", "correctness": {"passed": true, "detail": "d"}}
        }))))
        .await?;
    assert_eq!(r.is_error, Some(true));
    let text: String = r
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect();
    assert!(text.contains("measured_improvement"), "{text}");

    // Bad arguments are an in-band error too, not a crash, naming the field at fault (and,
    // for a framework, the known ones).
    for (tool, arguments, needles) in [
        (
            "campaign_status",
            json!({"campaign_dir": 5}),
            vec!["`campaign_dir`"],
        ),
        (
            "profile_launch",
            json!({"campaign_dir": dir, "framework": "trtllm"}),
            vec!["`framework`", "trtllm", "`tensorrt_llm`", "`tokenspeed`"],
        ),
    ] {
        let r = client
            .call_tool(CallToolRequestParams::new(tool).with_arguments(args(arguments)))
            .await?;
        assert_eq!(r.is_error, Some(true), "{tool}: {:?}", r.content);
        let text: String = r
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect();
        for n in needles {
            assert!(text.contains(n), "{tool}: {n} missing in {text}");
        }
    }
    // The server still answers after errors.
    let r = client
        .call_tool(
            CallToolRequestParams::new("campaign_status")
                .with_arguments(args(json!({"campaign_dir": dir}))),
        )
        .await?;
    assert_eq!(r.is_error, Some(false));
    let log = std::fs::read_to_string(std::path::Path::new(&dir).join("humanize/tool-calls.log"))?;
    assert!(
        log.contains("mcp ledger_append error: ledger_append failed: measured_improvement"),
        "{log}"
    );
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn stdout_carries_only_protocol() -> anyhow::Result<()> {
    // Raw JSON-RPC: every line the server writes to stdout must be a JSON-RPC message.
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut child = tokio::process::Command::new(bin())
        .arg("mcp")
        .env("RUST_LOG", "debug")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let mut stdin = child.stdin.take().unwrap();
    let msgs = [
        json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}),
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}),
        json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"campaign_status","arguments":{"campaign_dir":"/nonexistent"}}}),
    ];
    for m in &msgs {
        stdin.write_all(format!("{m}\n").as_bytes()).await?;
    }
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = 0;
    while seen < 3 {
        let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
            .await??
            .expect("server closed stdout early");
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("non-protocol output on stdout: {line}"));
        assert_eq!(v["jsonrpc"], "2.0");
        if v.get("id").is_some() {
            seen += 1;
            if v["id"] == 3 {
                assert_eq!(v["result"]["isError"], true);
                assert!(
                    v["result"]["content"][0]["text"]
                        .as_str()
                        .unwrap()
                        .contains("run campaign_init first")
                );
            }
        }
    }
    drop(stdin);
    child.wait().await?;
    Ok(())
}
