//! Export of candidate rows in the result schema of the `llm-serving-auto-benchmark`
//! skill (its `compare_benchmark_results.py` reads JSONL rows of that shape).
//!
//! Rules: one exported row per candidate row, failed ones included; a metric we did not
//! measure is absent, never 0 (that tool ranks a missing value as worst, a 0 as a value);
//! latencies are flat milliseconds (`p50_ttft_ms`, `mean_tpot_ms`, ...); commands are one
//! shell-quoted string.

use serde_json::{Map, Value, json};
use vllm_sota_core::proc::shell_join;
use vllm_sota_core::results::{CandidateRow, Percentiles, RunStatus};

/// File name of the export, beside `candidates.jsonl` in `benchmark/`.
pub(crate) const EXPORT_FILE: &str = "results.llm-serving-auto-benchmark.jsonl";

fn put(o: &mut Map<String, Value>, k: &str, v: Option<Value>) {
    if let Some(v) = v {
        o.insert(k.to_string(), v);
    }
}

fn status(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Ok => "ok",
        RunStatus::Failed => "failed",
        RunStatus::Oom => "oom",
        RunStatus::Timeout => "timeout",
        // Refused at preflight: never launched, which that schema calls skipped.
        RunStatus::Skipped | RunStatus::Rejected => "skipped",
    }
}

fn latency(o: &mut Map<String, Value>, name: &str, p: Option<&Percentiles>) {
    let Some(p) = p else { return };
    put(o, &format!("p50_{name}_ms"), p.p50.map(Value::from));
    put(o, &format!("mean_{name}_ms"), p.mean.map(Value::from));
    put(o, &format!("p99_{name}_ms"), p.p99.map(Value::from));
}

fn metrics(row: &CandidateRow) -> Map<String, Value> {
    let mut o = Map::new();
    let Some(m) = &row.metrics else { return o };
    put(
        &mut o,
        "request_throughput",
        m.request_throughput.map(Value::from),
    );
    put(
        &mut o,
        "output_token_throughput",
        m.output_throughput.map(Value::from),
    );
    put(
        &mut o,
        "total_token_throughput",
        m.total_token_throughput.map(Value::from),
    );
    latency(&mut o, "ttft", m.ttft_ms.as_ref());
    latency(&mut o, "tpot", m.tpot_ms.as_ref());
    latency(&mut o, "e2e", m.e2e_ms.as_ref());
    put(&mut o, "success_rate", m.success_rate.map(Value::from));
    o
}

fn workload(row: &CandidateRow) -> Map<String, Value> {
    let w = &row.workload;
    let mut o = Map::new();
    let kind = w.dataset.split(':').next().unwrap_or_default();
    if !kind.is_empty() {
        o.insert("kind".into(), json!(kind));
    }
    o.insert("scenario".into(), json!(row.scenario));
    let path = w
        .dataset_path
        .clone()
        .or_else(|| w.dataset.strip_prefix("jsonl:").map(str::to_string));
    put(&mut o, "dataset_path", path.map(Value::from));
    o.insert("input_len".into(), json!(w.input_len));
    o.insert("output_len".into(), json!(w.output_len));
    put(&mut o, "input_len_p50", w.input_len_p50.map(Value::from));
    put(&mut o, "input_len_p95", w.input_len_p95.map(Value::from));
    put(&mut o, "output_len_p50", w.output_len_p50.map(Value::from));
    put(&mut o, "output_len_p95", w.output_len_p95.map(Value::from));
    o.insert("num_prompts".into(), json!(w.num_prompts));
    // That schema spells "all at once" as inf; ours leaves the rate absent.
    o.insert(
        "request_rate".into(),
        w.request_rate
            .map(Value::from)
            .unwrap_or_else(|| json!("inf")),
    );
    put(
        &mut o,
        "max_concurrency",
        w.max_concurrency.map(Value::from),
    );
    if !w.endpoint.is_empty() {
        o.insert("endpoint".into(), json!(w.endpoint));
    }
    o
}

fn sla(row: &CandidateRow) -> Map<String, Value> {
    let s = &row.sla;
    let mut o = Map::new();
    put(
        &mut o,
        "max_p50_ttft_ms",
        s.thresholds.max_p50_ttft_ms.map(Value::from),
    );
    put(
        &mut o,
        "max_p50_tpot_ms",
        s.thresholds.max_p50_tpot_ms.map(Value::from),
    );
    put(
        &mut o,
        "min_success_rate",
        s.thresholds.min_success_rate.map(Value::from),
    );
    put(&mut o, "passed", s.passed.map(Value::from));
    o
}

/// One candidate row in that schema. `model` is the campaign's model id.
pub fn export_row(row: &CandidateRow, model: &str) -> Value {
    let mut o = Map::new();
    o.insert("framework".into(), json!(row.framework));
    put(
        &mut o,
        "framework_commit",
        row.vllm_commit.clone().map(Value::from),
    );
    o.insert("candidate_id".into(), json!(row.candidate_id));
    o.insert("model".into(), json!(model));
    o.insert("status".into(), json!(status(row.status)));
    put(
        &mut o,
        "failure_reason",
        row.failure_reason.clone().map(Value::from),
    );
    let h = &row.hardware;
    let mut hw = Map::new();
    put(&mut hw, "gpu_model", h.gpu_model.clone().map(Value::from));
    hw.insert("gpu_count".into(), json!(h.gpu_count));
    if !h.gpu_ids.is_empty() {
        let ids: Vec<String> = h.gpu_ids.iter().map(u32::to_string).collect();
        hw.insert("visible_devices".into(), json!(ids.join(",")));
    }
    o.insert("hardware".into(), Value::Object(hw));
    o.insert("workload".into(), Value::Object(workload(row)));
    o.insert("sla".into(), Value::Object(sla(row)));
    o.insert("metrics".into(), Value::Object(metrics(row)));
    if let Some(pc) = &row.prefix_cache {
        o.insert(
            "cache".into(),
            json!({"prefix_cache_hit_rate": pc.hit_rate}),
        );
    }
    if !row.normalization.is_empty() {
        // That schema's `notes` is text: our normalization facts as `key=value; ...`.
        let notes: Vec<String> = row
            .normalization
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        o.insert("normalization".into(), json!({"notes": notes.join("; ")}));
    }
    if !row.server_command.is_empty() {
        o.insert(
            "server_command".into(),
            json!(shell_join(&row.server_command)),
        );
    }
    if !row.benchmark_command.is_empty() {
        o.insert(
            "benchmark_command".into(),
            json!(shell_join(&row.benchmark_command)),
        );
    }
    if !row.validated_cli_flags.is_empty() {
        o.insert(
            "validated_cli_flags".into(),
            json!({"server": row.validated_cli_flags}),
        );
    }
    let mut art = Map::new();
    put(
        &mut art,
        "server_log",
        row.artifacts.get("server_log").map(|s| json!(s)),
    );
    put(
        &mut art,
        "raw_result",
        row.artifacts.get("sweep").map(|s| json!(s)),
    );
    o.insert("artifacts".into(), Value::Object(art));
    Value::Object(o)
}

/// The whole export: one JSON line per candidate row, in row order.
pub fn export_jsonl(rows: &[CandidateRow], model: &str) -> String {
    let mut s = String::new();
    for r in rows {
        s.push_str(&export_row(r, model).to_string());
        s.push('\n');
    }
    s
}
