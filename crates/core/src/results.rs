//! Benchmark result rows shared by the client (`bench`), `fair_benchmark`,
//! revalidation and `gap_decision`: one normalized shape for every framework and
//! every client, so comparisons are like for like.
//!
//! Rule: a metric that was not measured is `None` (absent in JSON), never 0.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;

pub const RESULT_SCHEMA_VERSION: u32 = 1;

/// Outcome of one candidate × scenario run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Ok,
    Failed,
    Oom,
    Timeout,
    Skipped,
    /// Refused at preflight (unknown flag, non-pytorch TensorRT-LLM backend, ...).
    Rejected,
}

/// Latency distribution in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Percentiles {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99: Option<f64>,
}

/// Where the numbers came from and how they were defined.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Provenance {
    /// `vllm-sota`, `vllm bench serve`, `sglang.bench_serving`, `trtllm benchmark_serving`, `aiperf`.
    pub client: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_version: Option<String>,
    /// `usage` (server-reported), `retokenized`, or `client_target`.
    pub token_count_source: String,
    /// `per_chunk` or `per_token`.
    pub itl_granularity: String,
    /// How duration was measured, e.g. `first request sent → last response completed`.
    pub duration_definition: String,
}

/// Normalized aggregate metrics of one benchmark run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MetricsRow {
    /// Requests measured (warmup excluded).
    pub num_requests: u64,
    /// Requests that completed; absent when the source does not say (never a guessed 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<u64>,
    /// Requests that failed; absent when the source does not say (SGLang writes none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<u64>,
    /// completed / num_requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_output_tokens: Option<u64>,
    /// Requests per second over the measured wall time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_throughput: Option<f64>,
    /// Output tokens per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_throughput: Option<f64>,
    /// Input + output tokens per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_token_throughput: Option<f64>,
    /// Requests per second that met the SLA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_goodput: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<Percentiles>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpot_ms: Option<Percentiles>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itl_ms: Option<Percentiles>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e_ms: Option<Percentiles>,
    pub provenance: Provenance,
    /// Extra metrics a client or importer measured (e.g. first-byte time, schedule lag).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, f64>,
}

impl MetricsRow {
    pub fn p50_ttft_ms(&self) -> Option<f64> {
        self.ttft_ms.as_ref().and_then(|p| p.p50)
    }
    pub fn p50_tpot_ms(&self) -> Option<f64> {
        self.tpot_ms.as_ref().and_then(|p| p.p50)
    }
}

/// SLA thresholds; an absent threshold is not checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sla {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_p50_ttft_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_p50_tpot_ms: Option<f64>,
    /// Fraction in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_success_rate: Option<f64>,
}

/// SLA thresholds with the verdict recomputed from the metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SlaResult {
    #[serde(flatten)]
    pub thresholds: Sla,
    /// None when there were no metrics to judge.
    pub passed: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

impl Sla {
    /// Judge metrics against the thresholds. A threshold whose metric is missing fails,
    /// with the reason saying so: an unmeasured metric never passes silently.
    pub fn evaluate(&self, metrics: Option<&MetricsRow>) -> SlaResult {
        let Some(m) = metrics else {
            return SlaResult {
                thresholds: self.clone(),
                passed: None,
                reasons: vec!["no metrics".into()],
            };
        };
        let mut reasons = Vec::new();
        let mut check = |name: &str, value: Option<f64>, limit: Option<f64>, upper: bool| {
            if let Some(limit) = limit {
                match value {
                    None => reasons.push(format!("{name} not measured")),
                    Some(v) if upper && v > limit => {
                        reasons.push(format!("{name} {v:.2} > {limit}"))
                    }
                    Some(v) if !upper && v < limit => {
                        reasons.push(format!("{name} {v:.4} < {limit}"))
                    }
                    _ => {}
                }
            }
        };
        check("p50 TTFT ms", m.p50_ttft_ms(), self.max_p50_ttft_ms, true);
        check("p50 TPOT ms", m.p50_tpot_ms(), self.max_p50_tpot_ms, true);
        check("success rate", m.success_rate, self.min_success_rate, false);
        SlaResult {
            thresholds: self.clone(),
            passed: Some(reasons.is_empty()),
            reasons,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Hardware {
    pub gpu_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_model: Option<String>,
    #[serde(default)]
    pub gpu_ids: Vec<u32>,
    #[serde(default)]
    pub multi_node: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Workload {
    /// `random` or `jsonl:<path>`.
    pub dataset: String,
    pub scenario: String,
    pub input_len: u64,
    pub output_len: u64,
    pub num_prompts: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u64>,
    /// Requests per second; None = all at once (`inf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_rate: Option<f64>,
    /// `/v1/completions` or `/v1/chat/completions`.
    pub endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Set when this is a reduced flow-check workload, not the campaign's real one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The JSONL file of a production workload (`dataset.kind: jsonl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_path: Option<String>,
    /// Length percentiles of the requests sent (tokens); for a random workload all equal
    /// the fixed lengths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_len_p50: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_len_p95: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_len_p50: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_len_p95: Option<f64>,
    /// Per length bucket (`p50`: requests up to the median lengths, `p95`: the longer
    /// ones up to p95), measured latency; the slowest bucket gives the profiling shapes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub length_buckets: Vec<LengthBucket>,
    /// Shapes to profile, taken from the slowest measured bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_shapes: Option<ProfileShapes>,
}

/// One length bucket of a measured run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LengthBucket {
    /// `p50` or `p95`.
    pub bucket: String,
    /// Representative lengths of the bucket (its upper percentile), tokens.
    pub input_len: u64,
    pub output_len: u64,
    /// Successful requests that fell in the bucket.
    pub requests: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_ttft_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_tpot_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_e2e_ms: Option<f64>,
}

/// The prefill and decode shapes to profile (the slowest bucket's lengths): prefill =
/// `input_len` → 1 output token; decode = 1 input token → `output_len`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProfileShapes {
    /// The bucket with the highest p50 TTFT (prefill shape) and p50 TPOT (decode shape).
    pub prefill_bucket: String,
    pub decode_bucket: String,
    /// The measured latencies that decided.
    pub reason: String,
    pub prefill_input_len: u64,
    pub decode_output_len: u64,
}

/// How the server was warmed up before the measured requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Warmup {
    /// Warmup requests sent before each measured run (0 = none).
    pub requests: u64,
    /// What they were: shape, prompts, concurrency, whether they are counted.
    pub protocol: String,
}

/// Prefix-cache reuse during the measured requests, from the server's own counters or log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PrefixCache {
    /// Cached prompt tokens / prompt tokens looked up, over the measured window.
    pub hit_rate: f64,
    pub hit_tokens: u64,
    pub query_tokens: u64,
    /// Where the counts came from (`metrics:<names>` or `log:<pattern>`).
    pub source: String,
}

/// Result of the greedy-decoding correctness probe run with a revalidation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Correctness {
    pub probes: u32,
    pub matched: u32,
    pub match_rate: f64,
    pub passed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Reference to one row of a JSONL results file: what ledgers point at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RowRef {
    /// Path relative to the campaign directory, e.g. `benchmark/revalidation/round-1.jsonl`.
    pub file: String,
    pub row_id: String,
}

/// One row of `benchmark/candidates.jsonl` (and of revalidation files): the seed's result schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CandidateRow {
    pub schema_version: u32,
    /// Unique within its file.
    pub row_id: String,
    /// `vllm`, `sglang`, `tensorrt_llm`, `tokenspeed`.
    pub framework: String,
    pub candidate_id: String,
    /// The framework's baseline command (always searched first).
    #[serde(default)]
    pub is_baseline: bool,
    pub scenario: String,
    /// 0 = the fixed baseline; N = revalidation in round N.
    #[serde(default)]
    pub round: u32,
    #[serde(default)]
    pub repeat: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vllm_commit: Option<String>,
    pub status: RunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    pub hardware: Hardware,
    pub workload: Workload,
    pub sla: SlaResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsRow>,
    /// What was done to make rows comparable (same tokenizer, usage token counts, warmup excluded, unique prompts...).
    #[serde(default)]
    pub normalization: BTreeMap<String, serde_json::Value>,
    /// argv of the server launch (secrets redacted).
    #[serde(default)]
    pub server_command: Vec<String>,
    /// argv (or description) of the benchmark client run.
    #[serde(default)]
    pub benchmark_command: Vec<String>,
    /// Flags checked against the framework's `--help` at preflight.
    #[serde(default)]
    pub validated_cli_flags: Vec<String>,
    /// name → path relative to the campaign directory (server log, raw results...).
    #[serde(default)]
    pub artifacts: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correctness: Option<Correctness>,
    /// The warm-up protocol that preceded the measured requests (every measured row).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<Warmup>,
    /// Prefix-cache hit rate of the measured window; absent when the server exposes no
    /// counter or log line to measure it (never 0 for "unknown").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_cache: Option<PrefixCache>,
    #[serde(default)]
    pub started_at: String,
    #[serde(default)]
    pub finished_at: String,
}

impl CandidateRow {
    /// Whether this row measured `f` (the row keeps the framework's id as written).
    pub fn is_framework(&self, f: crate::Framework) -> bool {
        self.framework == f.id()
    }
    /// A completed run's row (status `ok`, round 0, repeat 0, one GPU) with `metrics` and
    /// the verdict of `sla` on them; the workload names only the scenario and everything
    /// else is empty. Importers and tests start here and set what they know (struct
    /// update syntax: `CandidateRow { workload, ..CandidateRow::measured(..) }`).
    pub fn measured(
        row_id: &str,
        framework: &str,
        scenario: &str,
        metrics: MetricsRow,
        sla: &Sla,
    ) -> CandidateRow {
        CandidateRow {
            schema_version: RESULT_SCHEMA_VERSION,
            row_id: row_id.into(),
            framework: framework.into(),
            candidate_id: String::new(),
            is_baseline: false,
            scenario: scenario.into(),
            round: 0,
            repeat: 0,
            vllm_commit: None,
            status: RunStatus::Ok,
            failure_reason: None,
            hardware: Hardware {
                gpu_count: 1,
                ..Default::default()
            },
            workload: Workload {
                scenario: scenario.into(),
                ..Default::default()
            },
            sla: sla.evaluate(Some(&metrics)),
            metrics: Some(metrics),
            normalization: Default::default(),
            server_command: vec![],
            benchmark_command: vec![],
            validated_cli_flags: vec![],
            artifacts: Default::default(),
            correctness: None,
            warmup: None,
            prefix_cache: None,
            started_at: String::new(),
            finished_at: String::new(),
        }
    }

    pub fn passed_sla(&self) -> bool {
        self.status == RunStatus::Ok && self.sla.passed == Some(true)
    }
    /// The run status with its failure reason, e.g. `Failed (server exited)`.
    pub fn status_text(&self) -> String {
        match &self.failure_reason {
            Some(r) => format!("{:?} ({r})", self.status),
            None => format!("{:?}", self.status),
        }
    }
    fn metric(&self, f: impl Fn(&MetricsRow) -> Option<f64>) -> Option<f64> {
        self.metrics.as_ref().and_then(f)
    }
    pub fn request_throughput(&self) -> Option<f64> {
        self.metric(|m| m.request_throughput)
    }
    pub fn output_throughput(&self) -> Option<f64> {
        self.metric(|m| m.output_throughput)
    }
}

/// Which throughput ranks candidates first.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RankingMetric {
    #[default]
    RequestThroughput,
    OutputThroughput,
}

impl RankingMetric {
    pub fn value(self, row: &CandidateRow) -> Option<f64> {
        match self {
            RankingMetric::RequestThroughput => row.request_throughput(),
            RankingMetric::OutputThroughput => row.output_throughput(),
        }
    }
}

/// The ranking rule, best first: SLA passed, then the ranking throughput (desc), then the
/// other throughput (desc), p50 TTFT (asc), p50 TPOT (asc), GPU count (asc). Missing values rank last.
pub fn compare_rank(a: &CandidateRow, b: &CandidateRow, metric: RankingMetric) -> Ordering {
    fn desc(x: Option<f64>, y: Option<f64>) -> Ordering {
        match (x, y) {
            (Some(x), Some(y)) => y.partial_cmp(&x).unwrap_or(Ordering::Equal),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
    }
    fn asc(x: Option<f64>, y: Option<f64>) -> Ordering {
        desc(x.map(|v| -v), y.map(|v| -v))
    }
    let other = match metric {
        RankingMetric::RequestThroughput => RankingMetric::OutputThroughput,
        RankingMetric::OutputThroughput => RankingMetric::RequestThroughput,
    };
    b.passed_sla()
        .cmp(&a.passed_sla())
        .then_with(|| desc(metric.value(a), metric.value(b)))
        .then_with(|| desc(other.value(a), other.value(b)))
        .then_with(|| asc(a.metric(|m| m.p50_ttft_ms()), b.metric(|m| m.p50_ttft_ms())))
        .then_with(|| asc(a.metric(|m| m.p50_tpot_ms()), b.metric(|m| m.p50_tpot_ms())))
        .then_with(|| a.hardware.gpu_count.cmp(&b.hardware.gpu_count))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(tp: Option<f64>, ttft: f64, passed: bool) -> CandidateRow {
        let metrics = MetricsRow {
            request_throughput: tp,
            ttft_ms: Some(Percentiles {
                p50: Some(ttft),
                ..Default::default()
            }),
            ..Default::default()
        };
        CandidateRow {
            candidate_id: "c".into(),
            sla: SlaResult {
                passed: Some(passed),
                ..Default::default()
            },
            ..CandidateRow::measured(
                &format!("{tp:?}-{ttft}"),
                "vllm",
                "chat",
                metrics,
                &Sla::default(),
            )
        }
    }

    #[test]
    fn ranking_prefers_sla_then_throughput_then_ttft() {
        let mut rows = [
            row(Some(9.0), 10.0, false),
            row(Some(5.0), 30.0, true),
            row(Some(5.0), 20.0, true),
            row(None, 1.0, true),
        ];
        rows.sort_by(|a, b| compare_rank(a, b, RankingMetric::RequestThroughput));
        let order: Vec<_> = rows.iter().map(|r| r.row_id.as_str()).collect();
        assert_eq!(
            order,
            ["Some(5.0)-20", "Some(5.0)-30", "None-1", "Some(9.0)-10"]
        );
    }

    #[test]
    fn sla_missing_metric_fails_with_reason() {
        let sla = Sla {
            max_p50_tpot_ms: Some(50.0),
            min_success_rate: Some(0.99),
            ..Default::default()
        };
        let m = MetricsRow {
            success_rate: Some(1.0),
            ..Default::default()
        };
        let r = sla.evaluate(Some(&m));
        assert_eq!(r.passed, Some(false));
        assert_eq!(r.reasons, vec!["p50 TPOT ms not measured".to_string()]);
    }
}
