//! The capstone: a scripted MCP client plays the agent through a whole campaign, over the
//! real binary's stdio, with sim-serve standing in for vLLM, SGLang and TensorRT-LLM:
//! campaign_init → history_notes → fair_benchmark (vLLM starts behind) → start_rlcr →
//! round 1 (gap_decision: patch; profile_tables and layer_pipeline on the H200 vLLM
//! fixtures; a "patch" committed to the vLLM checkout that makes the simulated vLLM faster;
//! revalidate; ledger_append; checkpoint) → round 2 (gap_decision: stop) → final_report.
//! Midway the server is killed, and a fresh server's campaign_status resumes from disk.
//! The simulated engines run the cost-model profiles calibrated on real H200 runs
//! (`references/sim-cost-profiles.json`; TensorRT-LLM, never measured, the defaults).

mod common;
use common::*;
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

type Client = RunningService<RoleClient, ()>;

/// Start `vllm-sota mcp` with `path` as its PATH and connect; also returns the server's pid.
async fn connect(path: &std::ffi::OsStr) -> (Client, u32) {
    let cmd = tokio::process::Command::new(bin()).configure(|c| {
        c.arg("mcp").env("RUST_LOG", "warn").env("PATH", path);
    });
    let transport = TokioChildProcess::new(cmd).unwrap();
    let pid = transport.id().expect("server pid");
    (().serve(transport).await.unwrap(), pid)
}

/// Call a tool; the call must succeed. Returns the structured report.
async fn call(client: &Client, tool: &str, args: Value) -> Value {
    let r = client
        .call_tool(
            CallToolRequestParams::new(tool.to_string())
                .with_arguments(args.as_object().cloned().unwrap()),
        )
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    let text: String = r
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect();
    assert_eq!(r.is_error, Some(false), "{tool} failed: {text}");
    r.structured_content
        .unwrap_or_else(|| panic!("{tool}: no structuredContent"))
}

/// Poll job_status (long-poll 45 s) until the job leaves `running`.
async fn wait_job(client: &Client, campaign: &Path, job: &str, round: Option<u32>) -> Value {
    for _ in 0..40 {
        let mut args = json!({"campaign_dir": campaign, "job": job, "wait_s": 45});
        if let Some(r) = round {
            args["round"] = json!(r);
        }
        let s = call(client, "job_status", args).await;
        if s["job"]["status"] != "running" {
            return s;
        }
    }
    panic!("{job} did not finish");
}

/// A vLLM "checkout": its `sim-patch.args` holds extra sim-serve flags, read by vLLM's
/// server command, so committing a change there is the stand-in for a code patch.
fn make_checkout(dir: &Path) -> (git2::Repository, PathBuf) {
    let checkout = dir.join("vllm");
    std::fs::create_dir_all(checkout.join("vllm/model_executor/models")).unwrap();
    let repo = common::git::init_main(&checkout);
    std::fs::write(checkout.join(".gitignore"), ".humanize*\n").unwrap();
    std::fs::write(
        checkout.join("vllm/model_executor/models/llama.py"),
        "def forward(x):\n    return x\n",
    )
    .unwrap();
    // Unpatched: the calibrated vLLM profile (`references/sim-cost-profiles.json`), which
    // sim-serve also picks by itself for --framework vllm; SGLang gets its own.
    std::fs::write(
        checkout.join("sim-patch.args"),
        "--sim-cost-profile h200-vllm-0.26\n",
    )
    .unwrap();
    // The package revalidate imports through python_command to prove the checkout is served.
    std::fs::write(
        checkout.join("vllm/__init__.py"),
        "__version__ = \"0.0.0+capstone\"\n",
    )
    .unwrap();
    common::git::commit_all(&repo, "base");
    (repo, checkout)
}

fn trt_help(dir: &Path) -> PathBuf {
    // No TensorRT-LLM help fixture exists: a click-style `trtllm-serve serve --help` with the options used.
    let p = dir.join("trtllm_serve_help.txt");
    std::fs::write(&p, "Usage: trtllm-serve serve [OPTIONS] MODEL\n\nOptions:\n  --tokenizer TEXT  Tokenizer.\n  --host TEXT  Host.\n  --port INTEGER  Port.\n  --backend [pytorch|tensorrt|_autodeploy]  Backend.\n  --max_batch_size INTEGER  Max requests.\n  --max_num_tokens INTEGER  Max batched tokens.\n  --max_seq_len INTEGER  Max length.\n  --tp_size INTEGER  TP.\n  --kv_cache_free_gpu_memory_fraction FLOAT  KV fraction.\n  --help  Show this message and exit.\n").unwrap();
    p
}

fn benchmark_config(dir: &Path, checkout: &Path) -> Value {
    let b = bin().display().to_string();
    // vLLM's server command reads the checkout's sim-patch.args: the code under test.
    let vllm_cmd = json!([
        "bash",
        "-c",
        "exec \"$0\" sim-serve --framework vllm $(cat \"$1\") \"${@:2}\"",
        b,
        checkout.join("sim-patch.args"),
        "{model}"
    ]);
    sim_fair_config(
        json!({"num_prompts": 12, "scenario_names": ["chat", "summarization"], "input_len": [64, 256], "output_len": [32, 32]}),
        json!({"max_concurrency": [12], "sla": {"max_p50_tpot_ms": 5000, "min_success_rate": 0.99}, "warmup_prompts": 2, "request_timeout_s": 60}),
        2,
        json!({
            "vllm": {"server_command": vllm_cmd, "help_command": recorded_help("vllm"),
                     "base_server_flags": {"--max-num-seqs": 3, "--gpu-memory-utilization": 0.9},
                     "search_space": {"--max-num-seqs": [4]},
                     "python_command": ["env", format!("PYTHONPATH={}", checkout.display()), "python3"]},
            "sglang": {"server_command": [b, "sim-serve", "--framework", "sglang", "--model-path", "{model}"],
                       "help_command": recorded_help("sglang"),
                       "base_server_flags": {"--max-running-requests": 8, "--mem-fraction-static": 0.88},
                       "search_skipped_reason": "capstone: competitor pinned at its base flags so vLLM's RLCR gap is fixed and reproducible"},
            "tensorrt_llm": {"server_command": [b, "sim-serve", "--framework", "trtllm", "{model}"],
                             "help_command": ["cat", trt_help(dir)],
                             "base_server_flags": {"--max_batch_size": 2, "--backend": "pytorch"},
                             "search_skipped_reason": "capstone: competitor pinned at its base flags so vLLM's RLCR gap is fixed and reproducible"}
        }),
    )
}

fn gate_state(status: &Value, round: u32, gate: &str) -> String {
    let r = status["rounds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["round"] == round)
        .unwrap_or_else(|| panic!("no round {round}: {status}"));
    r["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gate"] == gate)
        .unwrap()["state"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_campaign_through_mcp() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, checkout) = make_checkout(tmp.path());
    // The real Humanize runtime (vendored snapshot) with a stub codex on the server's PATH.
    let Some(rt) = humanize_runtime::real_runtime(tmp.path()) else {
        return;
    };
    let runtime = rt.root.clone();
    let rlcr_fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/rlcr/tests/fixtures");

    let (client, server_pid) = connect(&rt.path_with_codex()).await;

    // Phase 0.
    let init = call(&client, "campaign_init", json!({
        "model": fixtures().join("dummy-llama-3.1-8b"), "artifact_root": tmp.path().join("artifacts"),
        "gpu_ids": [0], "vllm_checkout": checkout, "frameworks": ["vllm", "sglang", "tensorrt_llm"]
    })).await;
    let campaign = PathBuf::from(init["campaign_dir"].as_str().unwrap());

    // Phase 0.5.
    let notes = call(&client, "history_notes", json!({
        "campaign_dir": campaign, "knowledge_root": rlcr_fixtures.join("knowledge-root"), "family": "llama31", "use_query_script": false
    })).await;
    assert!(notes.to_string().contains("llama31"), "{notes}");

    // Phase 1: the fixed fair baseline, a detached job.
    let started = call(&client, "fair_benchmark", json!({"campaign_dir": campaign, "config": benchmark_config(tmp.path(), &checkout), "wait_s": 5})).await;
    assert_eq!(started["candidates_planned"], 4, "{started}");
    let done = wait_job(&client, &campaign, "fair_benchmark", None).await;
    assert_eq!(done["job"]["status"], "succeeded", "{done}");
    let winners = &done["job"]["result"]["winners"];
    assert!(
        winners["chat"].as_str().unwrap().starts_with("sglang/"),
        "SGLang (8 seqs) leads vLLM (≤ 4 seqs) before the patch: {winners}"
    );
    for f in [
        "summary.md",
        "winning-commands.md",
        "candidates.jsonl",
        "profiler-handoff.json",
    ] {
        assert!(
            campaign.join("benchmark").join(f).is_file(),
            "benchmark/{f}"
        );
    }

    // Phase 2-3: start the loop.
    let rlcr = call(
        &client,
        "start_rlcr",
        json!({"campaign_dir": campaign, "runtime_root": runtime}),
    )
    .await;
    assert_eq!(rlcr["started"], true, "{rlcr}");
    assert!(Path::new(rlcr["round0_prompt_path"].as_str().unwrap()).is_file());

    // Round 1: behind, so patch.
    let gap = call(
        &client,
        "gap_decision",
        json!({"campaign_dir": campaign, "round": 1}),
    )
    .await;
    assert_eq!(gap["decision"], "patch", "{gap}");
    assert_eq!(gap["frameworks_to_profile"][0], "vllm", "{gap}");

    let vllm_fx = fixtures().join("h200-vllm-0.26");
    let tables = call(&client, "profile_tables", json!({
        "campaign_dir": campaign, "round": 1, "framework": "vllm", "trace": vllm_fx.join("prefill"),
        "competitor_trace": fixtures().join("h200-torch-traces/llama8b_prefill.trace.json.gz"), "competitor_framework": "sglang"
    })).await;
    assert!(tables.to_string().contains("tables.md"), "{tables}");
    assert!(campaign.join("analysis/round-1/root-cause.md").is_file());

    // The server is killed mid-round (SIGKILL: no chance to clean up); a new one resumes from disk.
    assert_eq!(unsafe { libc::kill(server_pid as i32, libc::SIGKILL) }, 0);
    drop(client);
    let (client, _) = connect(&rt.path_with_codex()).await;
    let status = call(
        &client,
        "campaign_status",
        json!({"campaign_dir": campaign}),
    )
    .await;
    assert_eq!(gate_state(&status, 1, "gap_decided"), "done");
    assert_eq!(gate_state(&status, 1, "root_cause_written"), "done");
    assert_eq!(gate_state(&status, 1, "layer_pipeline_written"), "pending");
    assert!(
        status["next_step"]
            .as_str()
            .unwrap()
            .contains("layer_pipeline"),
        "{}",
        status["next_step"]
    );

    let layers = call(&client, "layer_pipeline", json!({
        "campaign_dir": campaign, "round": 1, "framework": "vllm", "trace": vllm_fx.join("prefill"), "stage": "prefill",
        "config": fixtures().join("dummy-llama-3.1-8b/config.json")
    })).await;
    assert!(layers.to_string().contains("layer-pipeline"), "{layers}");

    // The "patch": a commit in the vLLM checkout that makes the simulated engine's steps
    // faster than the calibrated profile's.
    std::fs::write(
        checkout.join("sim-patch.args"),
        "--sim-cost-profile h200-vllm-0.26 --sim-step-base-us 500\n",
    )
    .unwrap();
    common::git::commit_all(&repo, "faster decode step (stand-in for a kernel patch)");

    let reval = call(&client, "revalidate", json!({"campaign_dir": campaign, "round": 1, "repeats": 3, "include_leader": true, "wait_s": 5})).await;
    drop(reval);
    let done = wait_job(&client, &campaign, "revalidate", Some(1)).await;
    assert_eq!(done["job"]["status"], "succeeded", "{done}");
    assert_eq!(done["job"]["result"]["patch_correct"], true, "{done}");

    let attempt = call(&client, "ledger_append", json!({"campaign_dir": campaign, "entry": {
        "ledger": "attempt", "round": 1, "hypothesis": "decode steps dominate the gap", "target": "vllm/model_executor/models/llama.py",
        "change": "faster step", "status": "kept", "attach_patch": true, "correctness": {"passed": true, "detail": "greedy probe"}}})).await;
    assert_eq!(attempt["patch_path"], "patches/r1-a01.diff");
    let rows: Vec<Value> =
        std::fs::read_to_string(campaign.join("benchmark/revalidation/round-1.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let best = rows
        .iter()
        .filter(|r| r["framework"] == "vllm" && r["scenario"] == "chat" && r["status"] == "ok")
        .max_by(|a, b| {
            a["metrics"]["request_throughput"]
                .as_f64()
                .partial_cmp(&b["metrics"]["request_throughput"].as_f64())
                .unwrap()
        })
        .expect("a vLLM chat revalidation row");
    let opt = call(&client, "ledger_append", json!({"campaign_dir": campaign, "entry": {
        "ledger": "optimization", "round": 1, "attempt_id": "r1-a01", "summary": "faster decode step",
        "correctness": {"passed": true, "detail": "revalidation probe matched"},
        "measured_improvement": {"row_ref": {"file": "benchmark/revalidation/round-1.jsonl", "row_id": best["row_id"]}}}})).await;
    assert!(opt["improvement_pct"].as_f64().unwrap() > 1.0, "{opt}");
    // The optimization ledger row carries the noise rule's evidence: three probed repeats.
    let opt_rows: Vec<Value> =
        std::fs::read_to_string(campaign.join("humanize/optimization-ledger.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    assert_eq!(opt_rows.len(), 1);
    assert_eq!(opt_rows[0]["runs"], 3, "{}", opt_rows[0]);
    assert!(
        opt_rows[0]["improvement_ci_pct"][0].as_f64().unwrap() > 1.0,
        "{}",
        opt_rows[0]
    );
    call(&client, "checkpoint", json!({"campaign_dir": campaign})).await;
    let status = call(
        &client,
        "campaign_status",
        json!({"campaign_dir": campaign}),
    )
    .await;
    for g in [
        "gap_decided",
        "root_cause_written",
        "layer_pipeline_written",
        "patch_committed",
        "revalidated",
    ] {
        assert_eq!(gate_state(&status, 1, g), "done", "round 1 {g}: {status}");
    }

    // Round 2: the patched vLLM leads; the loop stops.
    let gap2 = call(&client, "gap_decision", json!({"campaign_dir": campaign, "round": 2, "current_files": ["benchmark/revalidation/round-1.jsonl"]})).await;
    assert_eq!(gap2["decision"], "stop_beats", "{gap2}");
    // The win rests on measured competitors, on the full workload, with the patched code probed.
    for sc in gap2["scenarios"].as_array().unwrap() {
        assert_eq!(sc["decision"], "stop_beats", "{sc}");
        let leader = sc["leader"]["framework"].as_str().unwrap();
        assert!(leader == "sglang" || leader == "tensorrt_llm", "{sc}");
        assert!(sc["leader"]["n"].as_u64().unwrap() >= 1, "{sc}");
        assert_eq!(sc["reduced_workload"], Value::Null, "{sc}");
        assert_eq!(sc["competitor_notes"], json!([]), "{sc}");
        assert_eq!(sc["vllm"]["n"], 3, "{sc}");
    }

    let report = call(
        &client,
        "final_report",
        json!({"campaign_dir": campaign, "tests_run": ["tests/capstone.rs"]}),
    )
    .await;
    assert_eq!(report["final_report_path"], "final_report.md", "{report}");
    assert_eq!(report["reached_sota"], true, "{report}");
    assert!(
        report["verdict"]
            .as_str()
            .unwrap()
            .starts_with("vLLM beats the best measured competitor"),
        "{report}"
    );
    let text = std::fs::read_to_string(campaign.join("final_report.md")).unwrap();
    assert!(
        text.contains("**vLLM reached SOTA in the target environment**"),
        "{text}"
    );
    assert!(
        text.contains("sim-patch.args"),
        "changed files of the vLLM checkout are listed"
    );
    // What it cost, from the rows' launch times: every server launch of the fixed
    // benchmark and the revalidation, its start-up apart from its benchmark runs.
    assert!(
        text.contains("## GPU time per phase")
            && text.contains("| server start-ups |")
            && text.contains("| benchmark runs |"),
        "{text}"
    );
    assert!(
        report["gpu_minutes"].as_f64().is_some_and(|m| m > 0.0),
        "{report}"
    );
    let status = call(
        &client,
        "campaign_status",
        json!({"campaign_dir": campaign}),
    )
    .await;
    assert!(
        status["next_step"].as_str().unwrap().contains("finished"),
        "{}",
        status["next_step"]
    );
    client.cancel().await.unwrap();
}
