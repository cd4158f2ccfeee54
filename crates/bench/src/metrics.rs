//! Per-request records and their aggregation into the normalized
//! [`vllm_sota_core::results::MetricsRow`] plus fuller distributions.
//!
//! Definitions (bench-spec §1, written down in every row's provenance):
//! - TTFT: send → first token chunk: a chunk with a non-empty `choices`, even when its
//!   text is empty (a token that decodes to nothing alone), as in `vllm bench serve`;
//!   a role-only announcement does not count. First-byte time is reported separately.
//! - E2E: send → last token chunk (the trailing usage chunk and `[DONE]` excluded, as in
//!   `vllm bench serve`).
//! - TPOT: (E2E − TTFT) / (output tokens − 1), requests with ≥ 2 output tokens only.
//! - ITL: gaps between consecutive token chunks (per chunk); the row says `per_token`
//!   when every chunk of every successful request carried one token.
//! - Output tokens: `usage.completion_tokens`, else the count of token chunks; the
//!   re-tokenized count is a cross-check (a token that decodes to nothing re-tokenizes to
//!   nothing), used only when neither exists.
//! - Duration: first measured request sent → last measured request finished.
//! - Percentiles: linear interpolation (NumPy default); std is the population std.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use vllm_sota_core::results::{MetricsRow, Percentiles, Provenance};

/// Percentile of sorted values by the project's one definition
/// ([`vllm_sota_core::stats`]: linear interpolation, NumPy's default); NaN when empty.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    vllm_sota_core::stats::percentile_sorted(sorted, p).unwrap_or(f64::NAN)
}

pub fn percentile_unsorted(values: &[f64], p: f64) -> f64 {
    vllm_sota_core::stats::percentile(values, p).unwrap_or(f64::NAN)
}

/// Summary of one distribution. Absent when there were no samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DistStats {
    pub count: u64,
    pub mean: f64,
    /// Population standard deviation.
    pub std: f64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl DistStats {
    pub fn of(values: &[f64]) -> Option<DistStats> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        Some(DistStats {
            count: v.len() as u64,
            mean,
            std: var.sqrt(),
            min: v[0],
            p50: percentile_sorted(&v, 50.0),
            p90: percentile_sorted(&v, 90.0),
            p95: percentile_sorted(&v, 95.0),
            p99: percentile_sorted(&v, 99.0),
            max: v[v.len() - 1],
        })
    }

    pub fn percentiles(&self) -> Percentiles {
        Percentiles {
            mean: Some(self.mean),
            p50: Some(self.p50),
            p90: Some(self.p90),
            p95: Some(self.p95),
            p99: Some(self.p99),
        }
    }
}

/// Everything measured about one request. Times in ms from the request's send,
/// except `scheduled_s`/`sent_s` (seconds from the run's start).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RequestRecord {
    pub index: usize,
    /// Warmup requests are excluded from every metric.
    pub warmup: bool,
    pub scheduled_s: f64,
    pub sent_s: f64,
    /// sent − scheduled: semaphore wait plus generator lateness.
    pub client_queue_ms: f64,
    /// Generator lateness alone: released by the arrival schedule − scheduled (before any
    /// concurrency-cap wait).
    #[serde(default)]
    pub schedule_lag_ms: f64,
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// The `id` of the first chunk (matches the server's request id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_byte_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e_ms: Option<f64>,
    /// Time of the end of the stream (`[DONE]` or EOF).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_end_ms: Option<f64>,
    /// Gaps between consecutive token chunks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub itl_ms: Vec<f64>,
    /// Token chunks: chunks with a choice (text possibly empty), role-only ones aside.
    #[serde(alias = "text_chunks")]
    pub token_chunks: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_input_len: Option<u64>,
    pub expected_output_len: u64,
    /// Output tokens counted by re-tokenizing the generated text (cross-check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retokenized_output_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_text: Option<String>,
}

impl RequestRecord {
    /// Output tokens: usage, else token chunks, else re-tokenized; with the source name.
    pub fn output_tokens(&self) -> Option<(u64, &'static str)> {
        if let Some(c) = self.completion_tokens {
            return Some((c, "usage"));
        }
        if self.token_chunks > 0 {
            return Some((self.token_chunks, "chunk_count"));
        }
        self.retokenized_output_tokens.map(|c| (c, "retokenized"))
    }

    pub fn tpot_ms(&self) -> Option<f64> {
        let (out, _) = self.output_tokens()?;
        if out < 2 {
            return None;
        }
        Some((self.e2e_ms? - self.ttft_ms?) / (out - 1) as f64)
    }
}

/// Per-request SLOs for goodput (ms, inclusive); a request is good iff all given hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoodputSla {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpot_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e_ms: Option<f64>,
}

impl GoodputSla {
    pub fn is_empty(&self) -> bool {
        self.ttft_ms.is_none() && self.tpot_ms.is_none() && self.e2e_ms.is_none()
    }

    /// Parses `ttft:500 tpot:50 e2e:10000` (vLLM's `--goodput` syntax; `e2el` accepted).
    pub fn parse(s: &str) -> anyhow::Result<GoodputSla> {
        let mut g = GoodputSla::default();
        for part in s.split([' ', ',']).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("goodput {part:?}: expected KEY:MS"))?;
            let v: f64 = v
                .parse()
                .map_err(|_| anyhow::anyhow!("goodput {part:?}: {v:?} is not a number"))?;
            if v.is_nan() || v < 0.0 {
                anyhow::bail!("goodput {part:?}: must be >= 0");
            }
            match k {
                "ttft" => g.ttft_ms = Some(v),
                "tpot" => g.tpot_ms = Some(v),
                "e2e" | "e2el" => g.e2e_ms = Some(v),
                _ => anyhow::bail!("goodput key {k:?}: expected ttft, tpot or e2e"),
            }
        }
        Ok(g)
    }

    fn good(&self, r: &RequestRecord) -> bool {
        let ok =
            |limit: Option<f64>, v: Option<f64>| limit.is_none_or(|l| v.is_some_and(|v| v <= l));
        // Like vLLM, a 1-token request's TPOT counts as 0 for goodput.
        let tpot = r.tpot_ms().or(if r.success { Some(0.0) } else { None });
        r.success
            && ok(self.ttft_ms, r.ttft_ms)
            && ok(self.tpot_ms, tpot)
            && ok(self.e2e_ms, r.e2e_ms)
    }
}

/// Aggregated metrics of one load run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoadSummary {
    /// The normalized row (shared with importers and fair_benchmark).
    pub row: MetricsRow,
    /// Full distributions: ttft, tpot, itl, e2e, first_byte, client_queue, schedule_lag (ms).
    pub distributions: BTreeMap<String, DistStats>,
    /// Target request rate (None = inf).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_rate: Option<f64>,
    /// Measured sends / (last send − first send), when ≥ 2 requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub achieved_send_rate: Option<f64>,
    /// Most requests in flight at once (exact sweep line).
    pub peak_concurrency: u64,
    /// Successful requests whose usage and re-tokenized output counts differ by > 1%.
    pub token_count_mismatches: u64,
    /// Successful requests whose usage.prompt_tokens differs from the workload's expected length.
    pub input_len_mismatches: u64,
    /// Errors by message (first 200 characters), with counts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<String, u64>,
}

/// Aggregates measured (non-warmup) records. `wall_s` is the measured duration.
pub(crate) fn summarize(
    records: &[RequestRecord],
    wall_s: f64,
    target_rate: Option<f64>,
    sla: &GoodputSla,
) -> LoadSummary {
    let measured: Vec<&RequestRecord> = records.iter().filter(|r| !r.warmup).collect();
    let ok: Vec<&RequestRecord> = measured.iter().copied().filter(|r| r.success).collect();
    let num = measured.len() as u64;
    let completed = ok.len() as u64;

    let distributions = distributions(&measured, &ok);
    let duration = (wall_s > 0.0).then_some(wall_s);
    let tokens = TokenTotals::of(&ok);
    let token_count_mismatches = token_count_mismatches(&ok);
    let input_len_mismatches = input_len_mismatches(&ok);
    let good = if sla.is_empty() {
        None
    } else {
        Some(measured.iter().filter(|r| sla.good(r)).count() as f64)
    };
    let peak = peak_concurrency(&measured);
    let achieved_send_rate = achieved_send_rate(&measured);
    let errors = error_counts(&measured);
    let extra = row_extra(&distributions, achieved_send_rate, target_rate, peak);

    let (total_input, total_output) = (tokens.input, tokens.output);
    let row = MetricsRow {
        num_requests: num,
        completed: Some(completed),
        failed: Some(num - completed),
        success_rate: (num > 0).then(|| completed as f64 / num as f64),
        duration_s: duration,
        total_input_tokens: total_input,
        total_output_tokens: total_output,
        request_throughput: duration.map(|d| completed as f64 / d),
        output_throughput: duration.and_then(|d| total_output.map(|o| o as f64 / d)),
        total_token_throughput: duration
            .and_then(|d| Some((total_output? + total_input?) as f64 / d)),
        request_goodput: duration.and_then(|d| good.map(|g| g / d)),
        ttft_ms: distributions.get("ttft").map(DistStats::percentiles),
        tpot_ms: distributions.get("tpot").map(DistStats::percentiles),
        itl_ms: distributions.get("itl").map(DistStats::percentiles),
        e2e_ms: distributions.get("e2e").map(DistStats::percentiles),
        provenance: provenance(tokens.source, tokens.per_token),
        extra,
    };
    LoadSummary {
        row,
        distributions,
        target_rate,
        achieved_send_rate,
        peak_concurrency: peak as u64,
        token_count_mismatches,
        input_len_mismatches,
        errors,
    }
}

/// Full distributions of the successful requests' ttft, tpot, itl, e2e and first_byte and
/// of every measured request's client_queue and schedule_lag; empty ones are left out.
fn distributions(
    measured: &[&RequestRecord],
    ok: &[&RequestRecord],
) -> BTreeMap<String, DistStats> {
    let col = |f: &dyn Fn(&RequestRecord) -> Option<f64>| -> Vec<f64> {
        ok.iter().filter_map(|r| f(r)).collect()
    };
    let ttft = col(&|r| r.ttft_ms);
    let tpot = col(&|r| r.tpot_ms());
    let e2e = col(&|r| r.e2e_ms);
    let first_byte = col(&|r| r.first_byte_ms);
    let itl: Vec<f64> = ok.iter().flat_map(|r| r.itl_ms.iter().copied()).collect();
    let queue: Vec<f64> = measured.iter().map(|r| r.client_queue_ms).collect();
    let lag: Vec<f64> = measured.iter().map(|r| r.schedule_lag_ms).collect();

    let mut distributions = BTreeMap::new();
    for (name, v) in [
        ("ttft", &ttft),
        ("tpot", &tpot),
        ("itl", &itl),
        ("e2e", &e2e),
        ("first_byte", &first_byte),
        ("client_queue", &queue),
        ("schedule_lag", &lag),
    ] {
        if let Some(d) = DistStats::of(v) {
            distributions.insert(name.to_string(), d);
        }
    }
    distributions
}

/// Token totals of the successful requests and how they were counted.
struct TokenTotals {
    /// Prompt tokens (usage, else the workload's length); None when one is unknown.
    input: Option<u64>,
    /// Output tokens; None when one request has no count.
    output: Option<u64>,
    /// The output-count sources used (`usage`, `chunk_count`, `retokenized`), `+`-joined.
    source: String,
    /// Every chunk carried exactly one token (usage equals the chunk count).
    per_token: bool,
}

impl TokenTotals {
    fn of(ok: &[&RequestRecord]) -> TokenTotals {
        let outs: Vec<(u64, &str)> = ok.iter().filter_map(|r| r.output_tokens()).collect();
        let all_have_out = outs.len() == ok.len() && !ok.is_empty();
        let output: Option<u64> = all_have_out.then(|| outs.iter().map(|(n, _)| n).sum());
        let mut sources: Vec<&str> = outs.iter().map(|(_, s)| *s).collect();
        sources.sort();
        sources.dedup();
        let source = match sources.as_slice() {
            [one] => one.to_string(),
            [] => "none".to_string(),
            many => many.join("+"),
        };
        let ins: Option<Vec<u64>> = ok
            .iter()
            .map(|r| r.prompt_tokens.or(r.expected_input_len))
            .collect();
        let input: Option<u64> = ins.filter(|_| !ok.is_empty()).map(|v| v.iter().sum());
        let per_token = !ok.is_empty()
            && ok
                .iter()
                .all(|r| r.completion_tokens.is_some_and(|c| c == r.token_chunks));
        TokenTotals {
            input,
            output,
            source,
            per_token,
        }
    }
}

/// Successful requests whose usage and re-tokenized output counts differ by > 1%.
fn token_count_mismatches(ok: &[&RequestRecord]) -> u64 {
    ok.iter()
        .filter(
            |r| match (r.completion_tokens, r.retokenized_output_tokens) {
                (Some(u), Some(t)) => (u as f64 - t as f64).abs() > 0.01 * u.max(1) as f64,
                _ => false,
            },
        )
        .count() as u64
}

/// Successful requests whose usage.prompt_tokens differs from the workload's expected length.
fn input_len_mismatches(ok: &[&RequestRecord]) -> u64 {
    ok.iter()
        .filter(|r| matches!((r.prompt_tokens, r.expected_input_len), (Some(p), Some(e)) if p != e))
        .count() as u64
}

/// Peak concurrency: sweep over [sent, sent + end] intervals of measured requests.
fn peak_concurrency(measured: &[&RequestRecord]) -> i64 {
    let mut edges: Vec<(f64, i64)> = Vec::with_capacity(measured.len() * 2);
    for r in measured {
        let end = r.stream_end_ms.or(r.e2e_ms).unwrap_or(0.0);
        edges.push((r.sent_s, 1));
        edges.push((r.sent_s + end / 1e3, -1));
    }
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut cur, mut peak) = (0i64, 0i64);
    for (_, d) in edges {
        cur += d;
        peak = peak.max(cur);
    }
    peak
}

/// Measured sends / (last send − first send), when ≥ 2 requests were sent at different times.
fn achieved_send_rate(measured: &[&RequestRecord]) -> Option<f64> {
    let mut sends: Vec<f64> = measured.iter().map(|r| r.sent_s).collect();
    sends.sort_by(|a, b| a.total_cmp(b));
    if sends.len() >= 2 && sends[sends.len() - 1] > sends[0] {
        Some((sends.len() - 1) as f64 / (sends[sends.len() - 1] - sends[0]))
    } else {
        None
    }
}

/// Failed requests by error message (first 200 characters).
fn error_counts(measured: &[&RequestRecord]) -> BTreeMap<String, u64> {
    let mut errors = BTreeMap::new();
    for r in measured.iter().filter(|r| !r.success) {
        let e: String = r
            .error
            .as_deref()
            .unwrap_or("unknown error")
            .chars()
            .take(200)
            .collect();
        *errors.entry(e).or_insert(0) += 1;
    }
    errors
}

/// The row's `extra` values: client-side percentiles, send rates and peak concurrency.
fn row_extra(
    distributions: &BTreeMap<String, DistStats>,
    achieved_send_rate: Option<f64>,
    target_rate: Option<f64>,
    peak: i64,
) -> BTreeMap<String, f64> {
    let mut extra = BTreeMap::new();
    if let Some(d) = distributions.get("first_byte") {
        extra.insert("first_byte_p50_ms".into(), d.p50);
    }
    if let Some(d) = distributions.get("client_queue") {
        extra.insert("client_queue_p50_ms".into(), d.p50);
        extra.insert("client_queue_p99_ms".into(), d.p99);
    }
    if let Some(d) = distributions.get("schedule_lag") {
        extra.insert("schedule_lag_p50_ms".into(), d.p50);
        extra.insert("schedule_lag_p99_ms".into(), d.p99);
    }
    if let Some(r) = achieved_send_rate {
        extra.insert("achieved_send_rate".into(), r);
    }
    if let Some(r) = target_rate {
        extra.insert("target_rate".into(), r);
    }
    extra.insert("peak_concurrency".into(), peak as f64);
    extra
}

/// How the row was measured (the definitions of the module docs).
fn provenance(token_count_source: String, per_token: bool) -> Provenance {
    Provenance {
        client: "vllm-sota".into(),
        client_version: Some(env!("CARGO_PKG_VERSION").into()),
        token_count_source,
        itl_granularity: if per_token {
            "per_token".into()
        } else {
            "per_chunk".into()
        },
        duration_definition:
            "first measured request sent -> last measured request finished (warmup excluded)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_linear_percentiles() {
        let v = [1.0, 2.0, 3.0, 4.0];
        // numpy.percentile([1,2,3,4], 50) == 2.5, 90 -> 3.7, 99 -> 3.97
        assert_eq!(percentile_sorted(&v, 50.0), 2.5);
        assert!((percentile_sorted(&v, 90.0) - 3.7).abs() < 1e-12);
        assert!((percentile_sorted(&v, 99.0) - 3.97).abs() < 1e-12);
        let d = DistStats::of(&v).unwrap();
        assert!((d.std - 1.118033988749895).abs() < 1e-12);
        assert!(DistStats::of(&[]).is_none());
    }

    #[test]
    fn unmeasured_metrics_are_absent_not_zero() {
        let failed = RequestRecord {
            success: false,
            error: Some("HTTP 500".into()),
            expected_output_len: 4,
            ..Default::default()
        };
        let s = summarize(&[failed], 1.0, None, &GoodputSla::default());
        assert_eq!(s.row.completed, Some(0));
        assert_eq!(s.row.success_rate, Some(0.0));
        assert!(s.row.ttft_ms.is_none() && s.row.tpot_ms.is_none() && s.row.itl_ms.is_none());
        assert!(s.row.output_throughput.is_none() && s.row.total_output_tokens.is_none());
        assert!(s.row.request_goodput.is_none());
        assert_eq!(s.errors.get("HTTP 500"), Some(&1));
    }

    #[test]
    fn tpot_and_goodput() {
        let r = RequestRecord {
            success: true,
            ttft_ms: Some(100.0),
            e2e_ms: Some(1090.0),
            completion_tokens: Some(100),
            token_chunks: 100,
            ..Default::default()
        };
        assert_eq!(r.tpot_ms(), Some(10.0));
        let sla = GoodputSla::parse("ttft:100 tpot:10").unwrap();
        assert!(sla.good(&r));
        let strict = GoodputSla::parse("tpot:9.99").unwrap();
        assert!(!strict.good(&r));
        assert!(GoodputSla::parse("foo:1").is_err());
        let s = summarize(&[r], 2.0, None, &sla);
        assert_eq!(s.row.request_goodput, Some(0.5));
        assert_eq!(s.row.provenance.itl_granularity, "per_token");
        assert_eq!(s.row.provenance.token_count_source, "usage");
    }
}
