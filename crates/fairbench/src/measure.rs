//! Measure one candidate × scenario with the shared client (`vllm_sota_bench`): warmup on
//! its own prompts, then a concurrency sweep and/or a QPS binary search (≤ 5 rounds);
//! every run gets fresh prompts (a seed per candidate, scenario, repeat and point), so a
//! prefix cache cannot inflate results.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use vllm_sota_bench::{
    Endpoint, LoadConfig, RandomDatasetConfig, RequestRate, TokenizerHandle, random_workload,
    run_load_blocking,
};
use vllm_sota_core::results::{
    LengthBucket, MetricsRow, PrefixCache, ProfileShapes, RankingMetric, SlaResult,
};

use crate::config::{BenchmarkConfig, Scenario, stable_hash};

/// One measured load point.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub(crate) struct Point {
    /// `concurrency` or `qps`.
    pub kind: String,
    pub max_concurrency: Option<u64>,
    /// None = all at once (`inf`).
    pub request_rate: Option<f64>,
    pub seed: u64,
    pub metrics: MetricsRow,
    pub sla: SlaResult,
    /// Most frequent request error, when some failed.
    #[serde(default)]
    pub top_error: Option<String>,
    /// Length percentiles of the requests sent (tokens).
    #[serde(default)]
    pub lengths: Option<vllm_sota_bench::LengthStats>,
    #[serde(default)]
    pub length_buckets: Vec<LengthBucket>,
    #[serde(default)]
    pub profile_shapes: Option<ProfileShapes>,
    /// Prefix-cache reuse in this point's window (absent when not measurable).
    #[serde(default)]
    pub prefix_cache: Option<PrefixCache>,
}

impl Point {
    pub(crate) fn passed(&self) -> bool {
        self.sla.passed == Some(true)
    }
}

/// Best-first comparison of points (the row ranking rule applied to points).
pub(crate) fn compare_points(a: &Point, b: &Point, metric: RankingMetric) -> std::cmp::Ordering {
    let val = |p: &Point, m: RankingMetric| match m {
        RankingMetric::RequestThroughput => p.metrics.request_throughput,
        RankingMetric::OutputThroughput => p.metrics.output_throughput,
    };
    let other = match metric {
        RankingMetric::RequestThroughput => RankingMetric::OutputThroughput,
        RankingMetric::OutputThroughput => RankingMetric::RequestThroughput,
    };
    let desc = |x: Option<f64>, y: Option<f64>| {
        y.unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&x.unwrap_or(f64::NEG_INFINITY))
    };
    b.passed()
        .cmp(&a.passed())
        .then_with(|| desc(val(a, metric), val(b, metric)))
        .then_with(|| desc(val(a, other), val(b, other)))
        .then_with(|| {
            desc(
                a.metrics.p50_ttft_ms().map(|v| -v),
                b.metrics.p50_ttft_ms().map(|v| -v),
            )
        })
        .then_with(|| {
            desc(
                a.metrics.p50_tpot_ms().map(|v| -v),
                b.metrics.p50_tpot_ms().map(|v| -v),
            )
        })
}

/// What [`measure`] needs besides the config.
pub(crate) struct MeasureTarget<'a> {
    pub base_url: String,
    pub model_id: String,
    pub tokenizer: &'a TokenizerHandle,
    /// Distinguishes candidates/repeats so every run has its own prompts.
    pub seed_key: String,
    pub cancel: Option<Arc<AtomicBool>>,
    /// The production workload (`dataset.kind: jsonl`), loaded once per job.
    pub dataset: Option<&'a vllm_sota_bench::Workload>,
    /// Where this server reports prefix-cache reuse.
    pub cache: Option<CacheProbe>,
}

/// How to read a server's prefix-cache counters (framework-flags.json `prefix_cache`).
#[derive(Debug, Clone)]
pub(crate) struct CacheProbe {
    pub host: String,
    pub port: u16,
    pub source: crate::flags::PrefixCacheSource,
    pub log_path: PathBuf,
}

/// Counter values at one instant: (hit tokens, looked-up tokens), or a log offset.
enum CacheMark {
    Metrics(f64, f64),
    Log(u64),
}

/// Sum of every series of a Prometheus counter in exposition text; None when absent.
pub(crate) fn prometheus_sum(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        let value = rest.rsplit(' ').find(|t| !t.is_empty())?;
        // A trailing timestamp is allowed: the value is then the second-to-last field.
        let fields: Vec<&str> = rest
            .rsplit_once('}')
            .map(|(_, v)| v)
            .unwrap_or(rest)
            .split_whitespace()
            .collect();
        let v: f64 = fields.first().copied().unwrap_or(value).parse().ok()?;
        *found.get_or_insert(0.0) += v;
    }
    found
}

/// Sums of the `new` and `cached` groups of every log line matching `re`.
pub(crate) fn log_cache_counts(text: &str, re: &regex::Regex) -> Option<(u64, u64)> {
    let mut seen = false;
    let (mut new, mut cached) = (0u64, 0u64);
    for c in re.captures_iter(text) {
        let n = c.name("new").and_then(|m| m.as_str().parse::<u64>().ok());
        let k = c
            .name("cached")
            .and_then(|m| m.as_str().parse::<u64>().ok());
        if let (Some(n), Some(k)) = (n, k) {
            seen = true;
            new += n;
            cached += k;
        }
    }
    seen.then_some((new, cached))
}

impl CacheProbe {
    fn mark(&self) -> Option<CacheMark> {
        let s = &self.source;
        if let (Some(route), Some(h), Some(q)) =
            (&s.metrics_route, &s.hits_metric, &s.queries_metric)
        {
            let url = vllm_sota_core::http::url_of(&self.host, self.port, route);
            let t = vllm_sota_core::http::Timeouts::new(Duration::from_secs(10));
            let r = vllm_sota_core::http::request("GET", &url, None, t)
                .ok()
                .filter(|r| r.status == 200)?;
            let body = r.text();
            return Some(CacheMark::Metrics(
                prometheus_sum(&body, h)?,
                prometheus_sum(&body, q)?,
            ));
        }
        if s.log_regex.is_some() {
            return Some(CacheMark::Log(
                std::fs::metadata(&self.log_path)
                    .map(|m| m.len())
                    .unwrap_or(0),
            ));
        }
        None
    }

    /// Reuse between two marks; None when nothing was looked up or nothing is readable.
    fn between(&self, start: Option<CacheMark>) -> Option<PrefixCache> {
        let s = &self.source;
        let (hits, queries, source) = match (start?, self.mark()?) {
            (CacheMark::Metrics(h0, q0), CacheMark::Metrics(h1, q1)) => (
                (h1 - h0).max(0.0) as u64,
                (q1 - q0).max(0.0) as u64,
                format!(
                    "metrics:{} / {}",
                    s.hits_metric.as_deref().unwrap_or(""),
                    s.queries_metric.as_deref().unwrap_or("")
                ),
            ),
            (CacheMark::Log(a), CacheMark::Log(_)) => {
                let re = regex::Regex::new(s.log_regex.as_deref()?).ok()?;
                let bytes = std::fs::read(&self.log_path).ok()?;
                let tail = String::from_utf8_lossy(bytes.get(a as usize..)?);
                let (new, cached) = log_cache_counts(&tail, &re)?;
                (cached, new + cached, format!("log:{}", re.as_str()))
            }
            _ => return None,
        };
        (queries > 0).then(|| PrefixCache {
            hit_rate: hits as f64 / queries as f64,
            hit_tokens: hits,
            query_tokens: queries,
            source,
        })
    }
}

/// Result of measuring one candidate × scenario.
pub(crate) struct Measured {
    pub points: Vec<Point>,
    /// Index of the best point in `points`.
    pub best: Option<usize>,
    pub benchmark_command: Vec<String>,
}

fn seed_for(base: u64, key: &str, point: usize) -> u64 {
    let h = stable_hash(format!("{base}/{key}/{point}").as_bytes());
    u64::from_str_radix(&h, 16).unwrap_or(base) & 0x7fff_ffff_ffff
}

fn endpoint(cfg: &BenchmarkConfig) -> Result<Endpoint> {
    Endpoint::parse(&cfg.benchmark.endpoint)
}

fn load_config(
    cfg: &BenchmarkConfig,
    t: &MeasureTarget,
    sc: &Scenario,
    n: u64,
    seed: u64,
) -> Result<LoadConfig> {
    let ep = endpoint(cfg)?;
    let mut workload = match t.dataset {
        Some(file) => jsonl_window(file, n, seed, ep)?,
        None => {
            let ds = RandomDatasetConfig {
                num_prompts: n as usize,
                input_len: sc.input_len,
                output_len: sc.output_len,
                range_ratio: 0.0,
                prefix_len: 0,
                seed,
                chat: ep == Endpoint::ChatCompletions,
            };
            random_workload(&ds, t.tokenizer)
                .with_context(|| format!("building the random workload of scenario {}", sc.name))?
        }
    };
    if !cfg.benchmark.extra_request_body.is_empty() {
        for r in &mut workload.requests {
            let mut m = r.extra_body.take().unwrap_or_default();
            for (k, v) in &cfg.benchmark.extra_request_body {
                m.insert(k.clone(), v.clone());
            }
            r.extra_body = Some(m);
        }
    }
    let mut lc = LoadConfig::new(t.base_url.clone(), t.model_id.clone(), workload);
    lc.endpoint = ep;
    lc.seed = seed;
    lc.tokenizer = Some(t.tokenizer.clone());
    lc.request_timeout = Duration::from_secs_f64(cfg.benchmark.request_timeout_s);
    lc.cancel = t.cancel.clone();
    Ok(lc)
}

/// `n` requests of a JSONL workload, starting at a seed-chosen line and wrapping around,
/// so points and repeats do not all send the file's first lines. Chat lines need the chat
/// endpoint and text lines the completions endpoint.
fn jsonl_window(
    file: &vllm_sota_bench::Workload,
    n: u64,
    seed: u64,
    ep: Endpoint,
) -> Result<vllm_sota_bench::Workload> {
    let len = file.requests.len();
    if len == 0 {
        bail!("dataset.path: the workload file has no requests");
    }
    let start = (seed % len as u64) as usize;
    let mut requests = Vec::with_capacity(n as usize);
    for k in 0..n as usize {
        let r = &file.requests[(start + k) % len];
        let chat = matches!(r.prompt, vllm_sota_bench::Prompt::Chat(_));
        if chat != (ep == Endpoint::ChatCompletions) {
            bail!(
                "dataset.path: line {} is a {} request but benchmark.endpoint is {}",
                (start + k) % len + 1,
                if chat {
                    "chat (`messages`)"
                } else {
                    "text (`prompt`)"
                },
                if ep == Endpoint::ChatCompletions {
                    "/v1/chat/completions"
                } else {
                    "/v1/completions"
                }
            );
        }
        requests.push(r.clone());
    }
    Ok(vllm_sota_bench::Workload {
        source: file.source.clone(),
        requests,
    })
}

/// Split successful measured requests into the `p50` bucket (both lengths at most the
/// median) and the `p95` bucket (longer, up to p95); the slowest bucket by p50 TTFT
/// gives the prefill shape and by p50 TPOT the decode shape.
pub fn length_buckets(
    records: &[vllm_sota_bench::RequestRecord],
    stats: &vllm_sota_bench::LengthStats,
) -> (Vec<LengthBucket>, Option<ProfileShapes>) {
    let (Some(i50), Some(i95)) = (stats.input_p50, stats.input_p95) else {
        return (vec![], None);
    };
    let (o50, o95) = (stats.output_p50, stats.output_p95);
    let median = |mut v: Vec<f64>| -> Option<f64> {
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(vllm_sota_bench::percentile_sorted(&v, 50.0))
    };
    let mut out = Vec::new();
    for (name, ilen, olen) in [("p50", i50, o50), ("p95", i95, o95)] {
        let inside: Vec<&vllm_sota_bench::RequestRecord> = records
            .iter()
            .filter(|r| !r.warmup && r.success)
            .filter(|r| {
                let i = r.expected_input_len.unwrap_or(0) as f64;
                let o = r.expected_output_len as f64;
                let short = i <= i50 && o <= o50;
                if name == "p50" {
                    short
                } else {
                    !short && i <= i95 && o <= o95
                }
            })
            .collect();
        if inside.is_empty() {
            continue;
        }
        out.push(LengthBucket {
            bucket: name.into(),
            input_len: ilen.round() as u64,
            output_len: olen.round() as u64,
            requests: inside.len() as u64,
            p50_ttft_ms: median(inside.iter().filter_map(|r| r.ttft_ms).collect()),
            p50_tpot_ms: median(inside.iter().filter_map(|r| r.tpot_ms()).collect()),
            p50_e2e_ms: median(inside.iter().filter_map(|r| r.e2e_ms).collect()),
        });
    }
    let slowest = |f: &dyn Fn(&LengthBucket) -> Option<f64>| {
        out.iter()
            .filter(|b| f(b).is_some())
            .max_by(|a, b| f(a).unwrap_or(0.0).total_cmp(&f(b).unwrap_or(0.0)))
            .cloned()
    };
    let pre = slowest(&|b| b.p50_ttft_ms);
    let dec = slowest(&|b| b.p50_tpot_ms).or_else(|| pre.clone());
    let shapes = match (pre, dec) {
        (Some(p), Some(d)) => {
            let show = |b: &LengthBucket| {
                format!(
                    "{} ({} requests, p50 TTFT {}, p50 TPOT {})",
                    b.bucket,
                    b.requests,
                    b.p50_ttft_ms
                        .map(|v| format!("{v:.2} ms"))
                        .unwrap_or("—".into()),
                    b.p50_tpot_ms
                        .map(|v| format!("{v:.2} ms"))
                        .unwrap_or("—".into())
                )
            };
            Some(ProfileShapes {
                prefill_bucket: p.bucket.clone(),
                decode_bucket: d.bucket.clone(),
                reason: format!(
                    "buckets: {}; prefill from the highest p50 TTFT, decode from the highest p50 TPOT",
                    out.iter().map(show).collect::<Vec<_>>().join("; ")
                ),
                prefill_input_len: p.input_len,
                decode_output_len: d.output_len,
            })
        }
        _ => None,
    };
    (out, shapes)
}

pub(crate) fn run_point(
    cfg: &BenchmarkConfig,
    t: &MeasureTarget,
    sc: &Scenario,
    kind: &str,
    conc: Option<u64>,
    rate: Option<f64>,
    seed: u64,
) -> Result<Point> {
    let mut lc = load_config(cfg, t, sc, cfg.dataset.num_prompts, seed)?;
    lc.max_concurrency = conc.map(|c| c as usize);
    lc.request_rate = match rate {
        Some(r) => RequestRate::parse(&format!("{r}"))?,
        None => RequestRate::Infinite,
    };
    let mark = t.cache.as_ref().and_then(CacheProbe::mark);
    let report = run_load_blocking(lc, 2)?;
    let prefix_cache = t.cache.as_ref().and_then(|c| c.between(mark));
    let (length_buckets, profile_shapes) = length_buckets(&report.records, &report.workload_stats);
    let metrics = report.summary.row.clone();
    let sla = cfg.benchmark.sla.evaluate(Some(&metrics));
    let top_error = report
        .summary
        .errors
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(e, n)| format!("{e} (×{n})"));
    Ok(Point {
        kind: kind.into(),
        max_concurrency: conc,
        request_rate: rate,
        seed,
        metrics,
        sla,
        top_error,
        lengths: Some(report.workload_stats.clone()),
        length_buckets,
        profile_shapes,
        prefix_cache,
    })
}

/// The warm-up protocol written into every measured row.
pub(crate) fn warmup_record(cfg: &BenchmarkConfig, per: &str) -> vllm_sota_core::results::Warmup {
    let b = &cfg.benchmark;
    let conc = b.max_concurrency.iter().copied().max();
    vllm_sota_core::results::Warmup {
        requests: b.warmup_prompts,
        protocol: if b.warmup_prompts == 0 {
            "none: the measured requests start right after readiness (a 1-token request)".into()
        } else {
            format!(
                "{} requests of the scenario's shape on prompts of their own (never measured, never reused){}, once per {per}, after readiness (a 1-token request)",
                b.warmup_prompts,
                conc.map(|c| format!(", at max concurrency {c}"))
                    .unwrap_or_default()
            )
        },
    }
}

/// Warmup on prompts of its own (never measured, never reused).
pub(crate) fn warmup(cfg: &BenchmarkConfig, t: &MeasureTarget, sc: &Scenario) -> Result<()> {
    let b = &cfg.benchmark;
    if b.warmup_prompts > 0 {
        let seed = seed_for(cfg.dataset.seed, &format!("{}/warmup", t.seed_key), 0);
        let mut lc = load_config(cfg, t, sc, b.warmup_prompts, seed)?;
        lc.max_concurrency = b.max_concurrency.iter().copied().max().map(|c| c as usize);
        run_load_blocking(lc, 2).context("warmup run")?;
    }
    Ok(())
}

pub(crate) fn point_seed(cfg: &BenchmarkConfig, key: &str, point: usize) -> u64 {
    seed_for(cfg.dataset.seed, key, point)
}

/// Warmup, then the sweep and/or the QPS search. `still_alive` is checked between points.
pub(crate) fn measure(
    cfg: &BenchmarkConfig,
    t: &MeasureTarget,
    sc: &Scenario,
    still_alive: &mut dyn FnMut() -> Result<()>,
) -> Result<Measured> {
    let b = &cfg.benchmark;
    let mut idx = 0usize;
    warmup(cfg, t, sc)?;
    still_alive()?;
    let mut points = Vec::new();
    for &c in &b.max_concurrency {
        let seed = seed_for(cfg.dataset.seed, &t.seed_key, idx);
        idx += 1;
        points.push(run_point(cfg, t, sc, "concurrency", Some(c), None, seed)?);
        still_alive()?;
    }
    if let Some(q) = &b.qps {
        let cap = b.max_concurrency.iter().copied().max();
        let run = |rate: f64, idx: &mut usize, points: &mut Vec<Point>| -> Result<bool> {
            let seed = seed_for(cfg.dataset.seed, &t.seed_key, *idx);
            *idx += 1;
            let p = run_point(cfg, t, sc, "qps", cap, Some(rate), seed)?;
            let ok = p.passed();
            points.push(p);
            Ok(ok)
        };
        let mut rounds = 0;
        let (mut lo, mut hi) = (q.lower, q.upper);
        // Upper first: when it passes there is nothing to search.
        rounds += 1;
        let upper_ok = run(hi, &mut idx, &mut points)?;
        still_alive()?;
        if !upper_ok && rounds < q.max_rounds {
            rounds += 1;
            let lower_ok = run(lo, &mut idx, &mut points)?;
            still_alive()?;
            if lower_ok {
                while rounds < q.max_rounds && (hi - lo) > q.tolerance * hi {
                    let mid = (lo + hi) / 2.0;
                    rounds += 1;
                    if run(mid, &mut idx, &mut points)? {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                    still_alive()?;
                }
            }
        }
    }
    let best = (0..points.len())
        .min_by(|&a, &b2| compare_points(&points[a], &points[b2], b.ranking_metric));
    let benchmark_command = match best {
        Some(i) => benchmark_command(
            cfg,
            &t.base_url,
            &t.model_id,
            t.tokenizer.path(),
            sc,
            &points[i],
        ),
        None => vec![],
    };
    Ok(Measured {
        points,
        best,
        benchmark_command,
    })
}

/// The exact `vllm-sota bench load` command that reproduces one measured point.
pub(crate) fn benchmark_command(
    cfg: &BenchmarkConfig,
    base_url: &str,
    model_id: &str,
    tokenizer: &Path,
    sc: &Scenario,
    p: &Point,
) -> Vec<String> {
    let b = &cfg.benchmark;
    let ep = if b.endpoint.contains("chat") {
        "chat"
    } else {
        "completions"
    };
    let mut v: Vec<String> = [
        "vllm-sota",
        "bench",
        "load",
        "--base-url",
        base_url,
        "--model",
        model_id,
        "--endpoint",
        ep,
        "--dataset",
        if cfg.dataset.is_jsonl() {
            "jsonl"
        } else {
            "random"
        },
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut push = |k: &str, val: String| {
        v.push(k.to_string());
        v.push(val);
    };
    push("--tokenizer", tokenizer.display().to_string());
    push("--num-prompts", cfg.dataset.num_prompts.to_string());
    push("--input-len", sc.input_len.to_string());
    push("--output-len", sc.output_len.to_string());
    if let Some(path) = &cfg.dataset.path
        && cfg.dataset.is_jsonl()
    {
        push("--workload", path.clone());
    }
    push("--seed", p.seed.to_string());
    push(
        "--request-rate",
        p.request_rate
            .map(|r| format!("{r}"))
            .unwrap_or_else(|| "inf".into()),
    );
    if let Some(c) = p.max_concurrency {
        push("--max-concurrency", c.to_string());
    }
    push("--timeout-s", format!("{}", b.request_timeout_s));
    v
}

/// Find a local `tokenizer.json` for `name`: a file, a directory holding one, or a
/// Hugging Face cache snapshot (`$HF_HOME/hub/models--org--name/snapshots/*/`).
pub fn resolve_tokenizer(name: &str) -> Result<PathBuf> {
    let p = Path::new(name);
    if p.is_file() {
        return Ok(p.to_path_buf());
    }
    if p.join("tokenizer.json").is_file() {
        return Ok(p.join("tokenizer.json"));
    }
    let hf_home = std::env::var_os("HF_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface")));
    if let Some(home) = hf_home {
        let snaps = home
            .join("hub")
            .join(format!("models--{}", name.replace('/', "--")))
            .join("snapshots");
        if let Ok(rd) = std::fs::read_dir(&snaps) {
            for e in rd.flatten() {
                let t = e.path().join("tokenizer.json");
                if t.is_file() {
                    return Ok(t);
                }
            }
        }
    }
    bail!(
        "model.tokenizer: no tokenizer.json found for `{name}` (give a local file, a model directory, or a Hugging Face id present in the local cache)"
    )
}
