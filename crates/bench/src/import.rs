//! Importers: native benchmark results → the normalized [`MetricsRow`].
//!
//! - `vllm bench serve --save-result` JSON (also TokenSpeed, a vLLM fork).
//! - `sglang.bench_serving --output-file` JSONL: one object per run; Python writes bare
//!   `Infinity`/`NaN`, which are sanitized first (`Infinity` → `"inf"`, `NaN` → `null`).
//! - TensorRT-LLM `benchmark_serving.py --save-result` JSON (its `"request_goodput:"` key
//!   has a trailing colon; no `failed` key: failed = num_prompts − completed).
//! - AIPerf `profile_export_aiperf.json`: metric tags → `{unit, avg, p50, …}`; its
//!   `inter_token_latency` is TPOT and `inter_chunk_latency` is the chunk ITL.
//!
//! - A row of the `llm-serving-auto-benchmark` skill's result schema (what its
//!   `compare_benchmark_results.py` reads, and what `fair_benchmark` exports): flat
//!   `metrics.{request_throughput, output_token_throughput, p50_ttft_ms, mean_tpot_ms, ...}`.
//!
//! Native clients turn an empty list into 0 (`values or 0`): a distribution whose
//! reported statistics are all exactly 0 is imported as absent, with a note.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;
use vllm_sota_core::results::{MetricsRow, Percentiles, Provenance};

/// Which native client wrote the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NativeFormat {
    /// Detect from the keys.
    Auto,
    VllmBenchServe,
    SglangBenchServing,
    TrtllmBenchmarkServing,
    Aiperf,
    /// A result row of the `llm-serving-auto-benchmark` skill.
    LlmServingAutoBenchmark,
}

impl NativeFormat {
    pub fn parse(s: &str) -> Result<NativeFormat> {
        Ok(match s {
            "auto" => NativeFormat::Auto,
            "vllm" | "vllm_bench_serve" => NativeFormat::VllmBenchServe,
            "sglang" | "sglang_bench_serving" => NativeFormat::SglangBenchServing,
            "trtllm" | "tensorrt_llm" | "trtllm_benchmark_serving" => {
                NativeFormat::TrtllmBenchmarkServing
            }
            "aiperf" => NativeFormat::Aiperf,
            "llm_serving_auto_benchmark" | "llm-serving-auto-benchmark" => {
                NativeFormat::LlmServingAutoBenchmark
            }
            _ => bail!(
                "format {s:?}: expected auto, vllm, sglang, trtllm, aiperf or llm-serving-auto-benchmark"
            ),
        })
    }
}

/// One imported run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImportedRun {
    pub format: NativeFormat,
    /// File (and line for JSONL) it came from.
    pub source: String,
    pub row: MetricsRow,
    /// Workload facts the file states (num_prompts, request_rate, max_concurrency, model_id, date...).
    pub workload: BTreeMap<String, Value>,
    /// What the importer had to interpret (zeros treated as missing, unknown failed count...).
    pub notes: Vec<String>,
}

/// Replaces bare `Infinity`, `-Infinity` and `NaN` outside strings (Python's json.dumps).
pub(crate) fn sanitize_python_json(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut in_str = false;
    let mut start = 0;
    while i < b.len() {
        let c = b[i];
        if in_str {
            if c == b'\\' {
                i += 2;
                continue;
            }
            if c == b'"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        if c == b'"' {
            in_str = true;
            i += 1;
            continue;
        }
        let rest = &b[i..];
        let rep: Option<(usize, &str)> = if rest.starts_with(b"-Infinity") {
            Some((9, "\"-inf\""))
        } else if rest.starts_with(b"Infinity") {
            Some((8, "\"inf\""))
        } else if rest.starts_with(b"NaN") {
            Some((3, "null"))
        } else {
            None
        };
        if let Some((len, r)) = rep {
            out.push_str(&text[start..i]);
            out.push_str(r);
            i += len;
            start = i;
            continue;
        }
        i += 1;
    }
    out.push_str(&text[start..]);
    out
}

fn num(o: &Map<String, Value>, k: &str) -> Option<f64> {
    o.get(k).and_then(|v| v.as_f64()).filter(|v| v.is_finite())
}

fn count(o: &Map<String, Value>, k: &str) -> Option<u64> {
    o.get(k).and_then(|v| {
        v.as_u64().or_else(|| {
            v.as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                .map(|f| f as u64)
        })
    })
}

/// Reads `{mean_,median_|p50_,p90_,p95_,p99_}{metric}_ms`; absent if none present or all 0.
fn percentiles(
    o: &Map<String, Value>,
    metric: &str,
    notes: &mut Vec<String>,
) -> Option<Percentiles> {
    let p = Percentiles {
        mean: num(o, &format!("mean_{metric}_ms")),
        p50: num(o, &format!("p50_{metric}_ms")).or_else(|| num(o, &format!("median_{metric}_ms"))),
        p90: num(o, &format!("p90_{metric}_ms")),
        p95: num(o, &format!("p95_{metric}_ms")),
        p99: num(o, &format!("p99_{metric}_ms")),
    };
    measured(
        p,
        || {
            format!(
                "{metric}: every statistic is 0 (the native client's `or 0` for an empty list): treated as not measured"
            )
        },
        notes,
    )
}

/// `p` when it holds a statistic and not only zeros (a client's placeholder for an empty
/// list); otherwise absent, with the note `zero_note` for the all-zero case.
fn measured(
    p: Percentiles,
    zero_note: impl FnOnce() -> String,
    notes: &mut Vec<String>,
) -> Option<Percentiles> {
    let vals: Vec<f64> = [p.mean, p.p50, p.p90, p.p95, p.p99]
        .into_iter()
        .flatten()
        .collect();
    if vals.is_empty() {
        return None;
    }
    if vals.iter().all(|v| *v == 0.0) {
        notes.push(zero_note());
        return None;
    }
    Some(p)
}

fn workload_facts(o: &Map<String, Value>, keys: &[&str]) -> BTreeMap<String, Value> {
    keys.iter()
        .filter_map(|k| o.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect()
}

fn throughput_block(o: &Map<String, Value>, row: &mut MetricsRow, total_key: &str) {
    row.duration_s = num(o, "duration").filter(|d| *d > 0.0);
    row.total_input_tokens = count(o, "total_input_tokens");
    row.total_output_tokens = count(o, "total_output_tokens");
    row.request_throughput = num(o, "request_throughput");
    row.output_throughput = num(o, "output_throughput");
    row.total_token_throughput = num(o, total_key);
}

fn import_vllm_like(o: &Map<String, Value>, trt: bool, notes: &mut Vec<String>) -> MetricsRow {
    let mut row = MetricsRow::default();
    let completed = count(o, "completed").unwrap_or(0);
    let failed = match (count(o, "failed"), count(o, "num_prompts")) {
        (Some(f), _) => Some(f),
        (None, Some(n)) => Some(n.saturating_sub(completed)),
        (None, None) => None,
    };
    row.completed = Some(completed);
    row.failed = failed;
    row.num_requests = completed + failed.unwrap_or(0);
    if failed.is_none() {
        notes.push(
            "no `failed` or `num_prompts` key: failed count unknown, success rate absent".into(),
        );
    }
    row.success_rate = failed
        .filter(|_| row.num_requests > 0)
        .map(|_| completed as f64 / row.num_requests as f64);
    throughput_block(o, &mut row, "total_token_throughput");
    row.request_goodput = if trt {
        num(o, "request_goodput:").or_else(|| num(o, "request_goodput"))
    } else {
        num(o, "request_goodput")
    };
    row.ttft_ms = percentiles(o, "ttft", notes);
    row.tpot_ms = percentiles(o, "tpot", notes);
    row.itl_ms = percentiles(o, "itl", notes);
    row.e2e_ms = percentiles(o, "e2el", notes);
    if row.e2e_ms.is_none() {
        notes.push(
            "e2el not in the file (the client reports it only with --percentile-metrics …,e2el)"
                .into(),
        );
    }
    // With per-request detail, TPOT exists only if some request produced > 1 token.
    if let Some(outs) = o.get("output_lens").and_then(|v| v.as_array())
        && !outs.is_empty()
        && outs.iter().all(|x| x.as_u64().unwrap_or(0) <= 1)
    {
        if row.tpot_ms.take().is_some() {
            notes.push("every request produced <= 1 output token: TPOT not defined".into());
        }
        row.itl_ms = None;
    }
    for (k, name) in [
        ("max_output_tokens_per_s", "max_output_tokens_per_s"),
        ("max_concurrent_requests", "peak_concurrency"),
        ("std_ttft_ms", "std_ttft_ms"),
        ("std_tpot_ms", "std_tpot_ms"),
        ("std_itl_ms", "std_itl_ms"),
        ("std_e2el_ms", "std_e2e_ms"),
        ("user_throughput", "user_throughput"),
        ("burstiness", "burstiness"),
    ] {
        if let Some(v) = num(o, k) {
            row.extra.insert(name.into(), v);
        }
    }
    row.provenance = Provenance {
        client: if trt {
            "trtllm benchmark_serving".into()
        } else {
            "vllm bench serve".into()
        },
        client_version: None,
        token_count_source: "usage".into(),
        itl_granularity: "per_chunk".into(),
        duration_definition: if trt {
            "first request scheduled -> all requests gathered (after /stop_profile when profiling)"
                .into()
        } else {
            "first request scheduled -> all requests gathered (includes the arrival schedule)"
                .into()
        },
    };
    row
}

fn import_sglang(o: &Map<String, Value>, notes: &mut Vec<String>) -> MetricsRow {
    let mut row = MetricsRow::default();
    let completed = count(o, "completed").unwrap_or(0);
    row.completed = Some(completed);
    row.num_requests = completed;
    row.failed = None;
    notes.push("sglang.bench_serving writes no failed count: success rate absent".into());
    throughput_block(o, &mut row, "total_throughput");
    row.ttft_ms = percentiles(o, "ttft", notes);
    row.tpot_ms = percentiles(o, "tpot", notes);
    row.itl_ms = percentiles(o, "itl", notes);
    row.e2e_ms = percentiles(o, "e2e_latency", notes);
    for (k, name) in [
        (
            "total_output_tokens_retokenized",
            "total_output_tokens_retokenized",
        ),
        (
            "output_throughput_retokenized",
            "output_throughput_retokenized",
        ),
        ("input_throughput", "input_throughput"),
        ("max_concurrent_requests", "peak_concurrency"),
        ("concurrency", "mean_concurrency"),
        ("max_output_tokens_per_s", "max_output_tokens_per_s"),
        ("accept_length", "accept_length"),
        ("max_itl_ms", "max_itl_ms"),
    ] {
        if let Some(v) = num(o, k) {
            row.extra.insert(name.into(), v);
        }
    }
    row.provenance = Provenance {
        client: "sglang.bench_serving".into(),
        client_version: None,
        token_count_source: "usage_or_max_tokens (output), client_target (input)".into(),
        itl_granularity: "per_chunk".into(),
        duration_definition: "first request scheduled -> all requests gathered (after /stop_profile and /server_info)".into(),
    };
    row
}

fn aiperf_metric<'a>(o: &'a Map<String, Value>, tag: &str) -> Option<&'a Map<String, Value>> {
    o.get(tag).and_then(|v| v.as_object())
}

fn unit_to_ms(unit: Option<&str>) -> f64 {
    match unit.unwrap_or("ms") {
        "ns" => 1e-6,
        "us" => 1e-3,
        "s" | "sec" | "seconds" => 1e3,
        _ => 1.0,
    }
}

fn aiperf_percentiles(
    o: &Map<String, Value>,
    tag: &str,
    notes: &mut Vec<String>,
) -> Option<Percentiles> {
    let m = aiperf_metric(o, tag)?;
    let f = unit_to_ms(m.get("unit").and_then(|u| u.as_str()));
    let g = |k: &str| num(m, k).map(|v| v * f);
    let p = Percentiles {
        mean: g("avg"),
        p50: g("p50"),
        p90: g("p90"),
        p95: g("p95"),
        p99: g("p99"),
    };
    measured(
        p,
        || format!("{tag}: all statistics 0: treated as not measured"),
        notes,
    )
}

fn import_aiperf(root: &Map<String, Value>, notes: &mut Vec<String>) -> MetricsRow {
    // Metric tags sit at the top level (schema 1.x) or under `records`.
    let o = root
        .get("records")
        .and_then(|r| r.as_object())
        .unwrap_or(root);
    let avg = |tag: &str| aiperf_metric(o, tag).and_then(|m| num(m, "avg"));
    let mut row = MetricsRow::default();
    let completed = avg("request_count").map(|v| v as u64).unwrap_or(0);
    let failed = avg("error_request_count").map(|v| v as u64);
    row.completed = Some(completed);
    row.failed = failed;
    row.num_requests = completed + failed.unwrap_or(0);
    row.success_rate = (row.num_requests > 0).then(|| completed as f64 / row.num_requests as f64);
    if failed.is_none() {
        notes.push(
            "no error_request_count: assumed 0 errors (AIPerf omits it when there were none)"
                .into(),
        );
    }
    row.duration_s = aiperf_metric(o, "benchmark_duration").and_then(|m| {
        num(m, "avg").map(|v| v * unit_to_ms(m.get("unit").and_then(|u| u.as_str())) / 1e3)
    });
    let sum = |tag: &str| {
        aiperf_metric(o, tag)
            .and_then(|m| num(m, "sum").or_else(|| Some(num(m, "avg")? * num(m, "count")?)))
            .map(|v| v.round() as u64)
    };
    row.total_input_tokens = sum("input_sequence_length");
    row.total_output_tokens = sum("output_sequence_length");
    row.request_throughput = avg("request_throughput");
    row.output_throughput = avg("output_token_throughput");
    row.total_token_throughput = avg("total_token_throughput");
    row.request_goodput = avg("goodput");
    row.ttft_ms = aiperf_percentiles(o, "time_to_first_token", notes);
    row.tpot_ms = aiperf_percentiles(o, "inter_token_latency", notes);
    row.itl_ms = aiperf_percentiles(o, "inter_chunk_latency", notes);
    row.e2e_ms = aiperf_percentiles(o, "request_latency", notes);
    row.provenance = Provenance {
        client: "aiperf".into(),
        client_version: root
            .get("aiperf_version")
            .and_then(|v| v.as_str())
            .map(String::from),
        token_count_source: "local_tokenizer".into(),
        itl_granularity: "per_chunk".into(),
        duration_definition: "first request sent -> last response received".into(),
    };
    row
}

/// A row of the `llm-serving-auto-benchmark` result schema: a `metrics` object of flat
/// `{p50,mean,p99}_{ttft,tpot,e2e}_ms` keys; `workload.num_prompts` is the request count.
fn import_auto_benchmark(
    o: &Map<String, Value>,
    source: &str,
    notes: &mut Vec<String>,
) -> Result<MetricsRow> {
    let m = o
        .get("metrics")
        .and_then(|v| v.as_object())
        .with_context(|| format!("{source}: missing the `metrics` object"))?;
    let w = o.get("workload").and_then(|v| v.as_object());
    let mut row = MetricsRow {
        request_throughput: num(m, "request_throughput"),
        output_throughput: num(m, "output_token_throughput"),
        total_token_throughput: num(m, "total_token_throughput"),
        success_rate: num(m, "success_rate"),
        ttft_ms: percentiles(m, "ttft", notes),
        tpot_ms: percentiles(m, "tpot", notes),
        e2e_ms: percentiles(m, "e2e", notes),
        ..Default::default()
    };
    match w.and_then(|w| count(w, "num_prompts")) {
        Some(n) => row.num_requests = n,
        None => notes.push("no workload.num_prompts: request count unknown (0)".into()),
    }
    if let Some(rate) = row.success_rate.filter(|_| row.num_requests > 0) {
        let done = (rate * row.num_requests as f64).round() as u64;
        row.completed = Some(done);
        row.failed = Some(row.num_requests.saturating_sub(done));
    }
    if o.get("status")
        .and_then(|v| v.as_str())
        .is_some_and(|s| s != "ok")
    {
        notes.push(format!(
            "status {}: {}",
            o["status"],
            o.get("failure_reason")
                .and_then(|v| v.as_str())
                .unwrap_or("no reason given")
        ));
    }
    row.provenance = Provenance {
        client: "llm-serving-auto-benchmark".into(),
        client_version: None,
        token_count_source: "unknown".into(),
        itl_granularity: "unknown".into(),
        duration_definition: "not stated by the row".into(),
    };
    Ok(row)
}

fn detect(o: &Map<String, Value>) -> Result<NativeFormat> {
    if o.get("metrics").is_some_and(|v| v.is_object())
        && (o.contains_key("candidate_id") || o.contains_key("framework"))
    {
        return Ok(NativeFormat::LlmServingAutoBenchmark);
    }
    if o.contains_key("time_to_first_token")
        || o.contains_key("aiperf_version")
        || o.contains_key("records") && o.contains_key("schema_version")
    {
        return Ok(NativeFormat::Aiperf);
    }
    if o.contains_key("request_goodput:")
        || o.contains_key("user_throughput")
        || o.contains_key("avg_decoded_tokens_per_iter")
    {
        return Ok(NativeFormat::TrtllmBenchmarkServing);
    }
    if o.contains_key("total_throughput")
        || o.contains_key("mean_e2e_latency_ms")
        || o.contains_key("total_output_tokens_retokenized")
    {
        return Ok(NativeFormat::SglangBenchServing);
    }
    if o.contains_key("median_ttft_ms") || o.contains_key("endpoint_type") {
        return Ok(NativeFormat::VllmBenchServe);
    }
    bail!(
        "cannot tell which client wrote this result (no vLLM, SGLang, TensorRT-LLM or AIPerf keys); pass the format explicitly"
    )
}

fn import_object(
    o: &Map<String, Value>,
    format: NativeFormat,
    source: String,
) -> Result<ImportedRun> {
    let format = if format == NativeFormat::Auto {
        detect(o).with_context(|| source.clone())?
    } else {
        format
    };
    let own_count = matches!(
        format,
        NativeFormat::Aiperf | NativeFormat::LlmServingAutoBenchmark
    );
    if !own_count && !o.contains_key("completed") {
        bail!("{source}: missing `completed` (not a {format:?} result?)");
    }
    let mut notes = Vec::new();
    let row = match format {
        NativeFormat::VllmBenchServe => import_vllm_like(o, false, &mut notes),
        NativeFormat::TrtllmBenchmarkServing => import_vllm_like(o, true, &mut notes),
        NativeFormat::SglangBenchServing => import_sglang(o, &mut notes),
        NativeFormat::Aiperf => import_aiperf(o, &mut notes),
        NativeFormat::LlmServingAutoBenchmark => import_auto_benchmark(o, &source, &mut notes)?,
        NativeFormat::Auto => unreachable!(),
    };
    let nested = o
        .get("workload")
        .and_then(|v| v.as_object())
        .filter(|_| format == NativeFormat::LlmServingAutoBenchmark);
    let mut workload = workload_facts(
        nested.unwrap_or(o),
        &[
            "num_prompts",
            "request_rate",
            "burstiness",
            "max_concurrency",
            "model_id",
            "tokenizer_id",
            "backend",
            "endpoint_type",
            "date",
            "dataset_name",
            "random_input_len",
            "random_output_len",
            "random_range_ratio",
            "tag",
        ],
    );
    if let Some(w) = nested {
        for k in [
            "scenario",
            "input_len",
            "output_len",
            "endpoint",
            "kind",
            "dataset_path",
        ] {
            if let Some(v) = w.get(k) {
                workload.insert(k.to_string(), v.clone());
            }
        }
        for (from, to) in [
            ("model", "model_id"),
            ("framework", "backend"),
            ("candidate_id", "candidate_id"),
        ] {
            if let Some(v) = o.get(from) {
                workload.insert(to.to_string(), v.clone());
            }
        }
    }
    Ok(ImportedRun {
        format,
        source,
        row,
        workload,
        notes,
    })
}

/// Imports a result text: one JSON object, or JSONL (SGLang appends one object per run).
pub fn import_native(text: &str, format: NativeFormat, source: &str) -> Result<Vec<ImportedRun>> {
    let clean = sanitize_python_json(text);
    if clean.trim().is_empty() {
        bail!("{source}: empty file");
    }
    // A whole-file JSON object first; otherwise one object per non-empty line.
    if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(&clean) {
        return Ok(vec![import_object(&o, format, source.to_string())?]);
    }
    let mut runs = Vec::new();
    for (i, line) in clean.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let where_ = format!("{source}:{}", i + 1);
        let v: Value =
            serde_json::from_str(line).with_context(|| format!("{where_}: not valid JSON"))?;
        let Value::Object(o) = v else {
            bail!("{where_}: expected a JSON object")
        };
        runs.push(import_object(&o, format, where_)?);
    }
    if runs.is_empty() {
        bail!("{source}: no result objects");
    }
    Ok(runs)
}

pub fn import_native_file(path: &Path, format: NativeFormat) -> Result<Vec<ImportedRun>> {
    let text = vllm_sota_core::fsx::read_text(path)?;
    import_native(&text, format, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizer_leaves_strings_alone() {
        let s = sanitize_python_json(
            r#"{"a": Infinity, "b": "Infinity NaN", "c": -Infinity, "d": NaN}"#,
        );
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["a"], "inf");
        assert_eq!(v["b"], "Infinity NaN");
        assert_eq!(v["c"], "-inf");
        assert!(v["d"].is_null());
    }
}
