//! End-to-end demo of the rlcr tools on a throwaway campaign, printing each tool's
//! markdown and the median wall time of `gap_decision`:
//!
//! `cargo run -p vllm-sota-rlcr --example rlcr_demo [-- <work dir>]`
//!
//! vLLM rows come from the real `vllm bench serve` fixtures; the SGLang rows are
//! constructed (5 % faster in chat, 2 % slower in summ); the knowledge root and the
//! Humanize runtime are the crate's test fixtures.

use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;
use vllm_sota_core::layout::{Campaign, LAYOUT_DIRS, LAYOUT_FILES, PLACEHOLDER_MARKER};
use vllm_sota_core::results::{CandidateRow, Hardware, Sla, Workload};
use vllm_sota_core::{Tool, ToolContext, fsx};
use vllm_sota_rlcr::{Checkpoint, GapDecision, HistoryNotes, StartRlcr};

fn main() -> anyhow::Result<()> {
    let work = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("rlcr-demo-{}", std::process::id())));
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let run = work.join("run");
    let checkout = work.join("vllm");
    std::fs::create_dir_all(&checkout)?;

    // A vLLM checkout with one commit and `.humanize*` ignored.
    let mut init = git2::RepositoryInitOptions::new();
    init.initial_head("main");
    let repo = git2::Repository::init_opts(&checkout, &init)?;
    std::fs::write(checkout.join(".gitignore"), ".humanize*\n")?;
    std::fs::write(checkout.join("README.md"), "vLLM demo checkout\n")?;
    let mut index = repo.index()?;
    index.add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)?;
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let sig = git2::Signature::now("demo", "demo@localhost")?;
    let head = repo
        .commit(Some("HEAD"), &sig, &sig, "initial", &tree, &[])?
        .to_string();

    for d in LAYOUT_DIRS {
        std::fs::create_dir_all(run.join(d))?;
    }
    for f in LAYOUT_FILES {
        std::fs::write(
            run.join(f),
            if f.ends_with(".jsonl") {
                String::new()
            } else {
                format!("{PLACEHOLDER_MARKER}\n")
            },
        )?;
    }
    let campaign = Campaign {
        schema_version: 1,
        model: "dummy-llama-8b".into(),
        model_slug: "llama-3.1-8b".into(),
        model_family: "llama".into(),
        tokenizer: "dummy-llama-3.1-8b".into(),
        precision: "bf16".into(),
        quantization: None,
        trust_remote_code: false,
        max_model_len: Some(10240),
        vllm_checkout: Some(checkout.clone()),
        vllm_base_commit: Some(head),
        vllm_base_branch: Some("main".into()),
        gpu_ids: vec![0],
        frameworks: vec!["vllm".into(), "sglang".into()],
        created_at: vllm_sota_core::layout::now_rfc3339(),
        environment: json!({"gpu": "NVIDIA H200"}),
    };
    fsx::write_json(&run.join("campaign.json"), &campaign)?;

    let bench = vllm_sota_core::refs::fixtures_dir().join("h200-vllm-0.26/bench");
    let sla = Sla {
        max_p50_ttft_ms: Some(5000.0),
        max_p50_tpot_ms: Some(25.0),
        min_success_rate: Some(0.99),
    };
    let import = |file: &str,
                  scenario: &str,
                  id: &str,
                  fw: &str,
                  scale: f64|
     -> anyhow::Result<CandidateRow> {
        // The benchmark crate's importer; the throughput scale makes the constructed competitor.
        let runs = vllm_sota_bench::import_native_file(
            &bench.join(file),
            vllm_sota_bench::NativeFormat::VllmBenchServe,
        )?;
        let mut m = runs[0].row.clone();
        m.request_throughput = m.request_throughput.map(|x| x * scale);
        m.output_throughput = m.output_throughput.map(|x| x * scale);
        let per_req = |t: Option<u64>| t.unwrap_or(0) / m.completed.unwrap_or(0).max(1);
        let workload = Workload {
            dataset: "random".into(),
            scenario: scenario.into(),
            input_len: per_req(m.total_input_tokens),
            output_len: per_req(m.total_output_tokens),
            num_prompts: m.num_requests,
            endpoint: "/v1/completions".into(),
            ..Default::default()
        };
        Ok(CandidateRow {
            candidate_id: format!("{fw}-default"),
            is_baseline: true,
            hardware: Hardware {
                gpu_count: 1,
                gpu_model: Some("NVIDIA H200".into()),
                gpu_ids: vec![0],
                multi_node: false,
            },
            workload,
            server_command: vec![format!("{fw}-serve"), "dummy-llama-8b".into()],
            ..CandidateRow::measured(id, fw, scenario, m, &sla)
        })
    };
    let rows = [
        import("chat_1000_1000.json", "chat", "vllm-chat", "vllm", 1.0)?,
        import("summ_8000_1000.json", "summ", "vllm-summ", "vllm", 1.0)?,
        import("chat_1000_1000.json", "chat", "sglang-chat", "sglang", 1.05)?,
        import("summ_8000_1000.json", "summ", "sglang-summ", "sglang", 0.98)?,
    ];
    let text: String = rows
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    std::fs::write(run.join("benchmark/candidates.jsonl"), text)?;

    let ctx = ToolContext::new();
    let notes = HistoryNotes::run(
        serde_json::from_value(
            json!({"campaign_dir": run, "knowledge_root": fixtures.join("knowledge-root")}),
        )?,
        &ctx,
    )?;
    println!("{}", HistoryNotes::markdown(&notes));

    // gap_decision timing (record: false so the lineage gets one row only).
    let mut times = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        GapDecision::run(
            serde_json::from_value(json!({"campaign_dir": run, "round": 1, "record": false}))?,
            &ctx,
        )?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let gap = GapDecision::run(
        serde_json::from_value(json!({"campaign_dir": run, "round": 1}))?,
        &ctx,
    )?;
    println!("{}", GapDecision::markdown(&gap));
    println!(
        "gap_decision median wall time over 15 runs: {:.2} ms\n",
        times[times.len() / 2]
    );

    // The real runtime: $HUMANIZE_RUNTIME_ROOT or an installed skill/plugin (start_rlcr
    // reports what is missing, codex included, when there is none).
    let started = StartRlcr::run(serde_json::from_value(json!({"campaign_dir": run}))?, &ctx)?;
    println!("{}", StartRlcr::markdown(&started));
    let cp = Checkpoint::run(
        serde_json::from_value(
            json!({"campaign_dir": run, "next_planned_patch": "profile decode first"}),
        )?,
        &ctx,
    )?;
    println!("{}", Checkpoint::markdown(&cp));
    println!("campaign: {}", run.display());
    Ok(())
}
