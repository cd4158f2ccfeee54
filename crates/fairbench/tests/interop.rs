//! The `llm-serving-auto-benchmark` export: every key it writes is a field of that
//! skill's result schema (the list is parsed from
//! `../shared/research/result-schema-fields.md` at test time), the fields we measure are
//! filled, a metric we did not measure is absent (never 0), and `bench import` reads an
//! exported row back to the same throughput and latencies.

mod common;

use regex::Regex;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use vllm_sota_bench::{NativeFormat, import_native};
use vllm_sota_core::results::*;
use vllm_sota_fairbench::{export_jsonl, export_row};

/// Field paths (`model`, `metrics.p50_ttft_ms`, `validated_cli_flags.server`...) of the
/// "Top-level keys" list in result-schema-fields.md.
fn schema_fields() -> BTreeSet<String> {
    let path = common::fixtures()
        .parent()
        .unwrap()
        .join("research/result-schema-fields.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let tick = Regex::new(r"`(\w+)`").unwrap();
    let parens = Regex::new(r"\(([^)]*)\)").unwrap();
    let named_parens = Regex::new(r"`(\w+)` \(([^)]*)\)").unwrap();
    let block = Regex::new(r"^`(\w+)`(?: \([^)]*\))?: (.*)$").unwrap();
    let ticks =
        |s: &str| -> Vec<String> { tick.captures_iter(s).map(|c| c[1].to_string()).collect() };
    let mut out = BTreeSet::new();
    let section = text
        .split("Top-level keys:")
        .nth(1)
        .expect("no `Top-level keys:` list");
    for line in section.lines().skip(1) {
        let Some(body) = line.strip_prefix("- ") else {
            break;
        };
        if let Some(rest) = body.strip_prefix("optional blocks:") {
            for c in named_parens.captures_iter(rest) {
                out.insert(c[1].to_string());
                for f in ticks(&c[2]) {
                    out.insert(format!("{}.{f}", &c[1]));
                }
            }
        } else if let Some(c) = block.captures(body) {
            out.insert(c[1].to_string());
            for f in ticks(&parens.replace_all(&c[2], "")) {
                out.insert(format!("{}.{f}", &c[1]));
            }
        } else {
            // Plain keys; a parenthesis naming `key`: entries makes a nested block.
            for c in named_parens.captures_iter(body) {
                if c[2].contains("`:") {
                    for f in ticks(&c[2]) {
                        out.insert(format!("{}.{f}", &c[1]));
                    }
                }
            }
            out.extend(ticks(&parens.replace_all(body, "")));
        }
    }
    assert!(out.len() > 50, "parsed only {} fields: {out:?}", out.len());
    out
}

fn pct(mean: f64, p50: f64, p99: f64) -> Option<Percentiles> {
    Some(Percentiles {
        mean: Some(mean),
        p50: Some(p50),
        p90: None,
        p95: None,
        p99: Some(p99),
    })
}

fn row() -> CandidateRow {
    let metrics = MetricsRow {
        num_requests: 200,
        completed: Some(198),
        failed: Some(2),
        success_rate: Some(0.99),
        duration_s: Some(61.3),
        total_input_tokens: Some(204_800),
        total_output_tokens: Some(50_688),
        request_throughput: Some(3.23),
        output_throughput: Some(826.9),
        total_token_throughput: Some(4167.7),
        ttft_ms: pct(181.4, 150.2, 912.0),
        tpot_ms: pct(28.7, 27.9, 41.3),
        e2e_ms: pct(7512.0, 7390.5, 10544.1),
        ..Default::default()
    };
    CandidateRow {
        schema_version: RESULT_SCHEMA_VERSION,
        row_id: "vllm/c3/chat/r0".into(),
        framework: "vllm".into(),
        candidate_id: "c3".into(),
        is_baseline: false,
        scenario: "chat".into(),
        round: 0,
        repeat: 0,
        vllm_commit: Some("0123abcd".into()),
        status: RunStatus::Ok,
        failure_reason: None,
        hardware: Hardware {
            gpu_count: 2,
            gpu_model: Some("NVIDIA H200".into()),
            gpu_ids: vec![0, 1],
            multi_node: false,
        },
        workload: Workload {
            dataset: "random".into(),
            scenario: "chat".into(),
            input_len: 1024,
            output_len: 256,
            num_prompts: 200,
            max_concurrency: Some(16),
            request_rate: None,
            endpoint: "/v1/completions".into(),
            input_len_p50: Some(1024.0),
            input_len_p95: Some(1024.0),
            output_len_p50: Some(256.0),
            output_len_p95: Some(256.0),
            ..Default::default()
        },
        sla: Sla {
            max_p50_ttft_ms: Some(2000.0),
            max_p50_tpot_ms: Some(50.0),
            min_success_rate: Some(0.95),
        }
        .evaluate(Some(&metrics)),
        metrics: Some(metrics),
        normalization: BTreeMap::from([("same_tokenizer".into(), json!(true))]),
        server_command: vec![
            "vllm".into(),
            "serve".into(),
            "Qwen/Qwen3-8B".into(),
            "--max-num-seqs".into(),
            "64".into(),
        ],
        benchmark_command: vec!["vllm-sota".into(), "bench".into(), "load".into()],
        validated_cli_flags: vec!["--max-num-seqs".into()],
        artifacts: BTreeMap::from([
            ("server_log".into(), "benchmark/logs/vllm-c3.log".into()),
            ("sweep".into(), "benchmark/raw/vllm/c3/chat-r0.json".into()),
        ]),
        correctness: None,
        warmup: None,
        prefix_cache: Some(PrefixCache {
            hit_rate: 0.25,
            hit_tokens: 25,
            query_tokens: 100,
            source: "metrics:prefix_cache".into(),
        }),
        started_at: String::new(),
        finished_at: String::new(),
    }
}

/// `block.key` paths of an exported row, two levels deep.
fn paths(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in v.as_object().unwrap() {
        out.push(k.clone());
        if let Some(o) = v.as_object() {
            out.extend(o.keys().map(|s| format!("{k}.{s}")));
        }
    }
    out
}

#[test]
fn exported_row_uses_only_schema_fields_and_fills_what_we_measure() {
    let fields = schema_fields();
    let v = export_row(&row(), "Qwen/Qwen3-8B");
    let got = paths(&v);
    for p in &got {
        assert!(
            fields.contains(p),
            "exported key {p} is not in the schema's field list"
        );
    }
    for want in [
        "framework",
        "framework_commit",
        "candidate_id",
        "model",
        "status",
        "hardware.gpu_model",
        "hardware.gpu_count",
        "hardware.visible_devices",
        "workload.kind",
        "workload.scenario",
        "workload.input_len",
        "workload.output_len",
        "workload.input_len_p50",
        "workload.input_len_p95",
        "workload.output_len_p50",
        "workload.output_len_p95",
        "workload.num_prompts",
        "workload.request_rate",
        "workload.max_concurrency",
        "workload.endpoint",
        "sla.max_p50_ttft_ms",
        "sla.max_p50_tpot_ms",
        "sla.min_success_rate",
        "sla.passed",
        "metrics.request_throughput",
        "metrics.output_token_throughput",
        "metrics.total_token_throughput",
        "metrics.p50_ttft_ms",
        "metrics.mean_ttft_ms",
        "metrics.p99_ttft_ms",
        "metrics.p50_tpot_ms",
        "metrics.mean_tpot_ms",
        "metrics.p99_tpot_ms",
        "metrics.p50_e2e_ms",
        "metrics.mean_e2e_ms",
        "metrics.p99_e2e_ms",
        "metrics.success_rate",
        "cache.prefix_cache_hit_rate",
        "normalization.notes",
        "server_command",
        "benchmark_command",
        "validated_cli_flags.server",
        "artifacts.server_log",
        "artifacts.raw_result",
    ] {
        assert!(got.iter().any(|p| p == want), "{want} not exported: {v}");
    }
    assert_eq!(v["metrics"]["output_token_throughput"], json!(826.9));
    assert_eq!(v["metrics"]["p50_ttft_ms"], json!(150.2));
    assert_eq!(v["metrics"]["p99_tpot_ms"], json!(41.3));
    assert_eq!(
        v["server_command"],
        json!("vllm serve Qwen/Qwen3-8B --max-num-seqs 64")
    );
    assert_eq!(v["hardware"]["visible_devices"], json!("0,1"));
    assert_eq!(v["workload"]["request_rate"], json!("inf"));
    assert_eq!(v["sla"]["passed"], json!(true));
    assert_eq!(
        v["artifacts"]["raw_result"],
        json!("benchmark/raw/vllm/c3/chat-r0.json")
    );
}

#[test]
fn unmeasured_metrics_are_absent_not_zero() {
    let mut r = row();
    let m = r.metrics.as_mut().unwrap();
    m.e2e_ms = None;
    m.total_token_throughput = None;
    r.prefix_cache = None;
    let v = export_row(&r, "m");
    let metrics = v["metrics"].as_object().unwrap();
    for k in [
        "p50_e2e_ms",
        "mean_e2e_ms",
        "p99_e2e_ms",
        "total_token_throughput",
    ] {
        assert!(
            !metrics.contains_key(k),
            "{k} written though not measured: {v}"
        );
    }
    assert!(v.get("cache").is_none());

    let mut failed = row();
    failed.status = RunStatus::Oom;
    failed.failure_reason = Some("CUDA out of memory".into());
    failed.metrics = None;
    failed.sla = Sla::default().evaluate(None);
    let v = export_row(&failed, "m");
    assert_eq!(v["status"], json!("oom"));
    assert_eq!(v["failure_reason"], json!("CUDA out of memory"));
    assert_eq!(
        v["metrics"],
        json!({}),
        "a failed row has no metric values, not zeros"
    );
    assert!(v["sla"].get("passed").is_none());
}

#[test]
fn bench_import_reads_an_exported_row_back() {
    let r = row();
    let text = export_jsonl(std::slice::from_ref(&r), "Qwen/Qwen3-8B");
    for format in [NativeFormat::Auto, NativeFormat::LlmServingAutoBenchmark] {
        let runs = import_native(&text, format, "results.jsonl").unwrap();
        assert_eq!(runs.len(), 1);
        let got = &runs[0];
        assert_eq!(got.format, NativeFormat::LlmServingAutoBenchmark);
        let want = r.metrics.as_ref().unwrap();
        assert_eq!(got.row.request_throughput, want.request_throughput);
        assert_eq!(got.row.output_throughput, want.output_throughput);
        assert_eq!(got.row.total_token_throughput, want.total_token_throughput);
        assert_eq!(got.row.p50_ttft_ms(), want.p50_ttft_ms());
        assert_eq!(got.row.p50_tpot_ms(), want.p50_tpot_ms());
        assert_eq!(got.row.e2e_ms.as_ref().and_then(|p| p.p99), Some(10544.1));
        assert_eq!(got.row.success_rate, Some(0.99));
        assert_eq!(got.row.num_requests, 200);
        assert_eq!(got.row.completed, Some(198));
        assert_eq!(got.workload["model_id"], json!("Qwen/Qwen3-8B"));
        assert_eq!(got.workload["max_concurrency"], json!(16));
    }
    assert_eq!(
        NativeFormat::parse("llm-serving-auto-benchmark").unwrap(),
        NativeFormat::LlmServingAutoBenchmark
    );
}
