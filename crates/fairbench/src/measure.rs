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
use vllm_sota_core::results::{MetricsRow, RankingMetric, Sla, SlaResult};

use crate::config::{BenchmarkConfig, Scenario, stable_hash};

/// One measured load point.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Point {
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
}

impl Point {
    pub fn passed(&self) -> bool {
        self.sla.passed == Some(true)
    }
}

/// Best-first comparison of points (the row ranking rule applied to points).
pub fn compare_points(a: &Point, b: &Point, metric: RankingMetric) -> std::cmp::Ordering {
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
pub struct MeasureTarget<'a> {
    pub base_url: String,
    pub model_id: String,
    pub tokenizer: &'a TokenizerHandle,
    /// Distinguishes candidates/repeats so every run has its own prompts.
    pub seed_key: String,
    pub cancel: Option<Arc<AtomicBool>>,
}

/// Result of measuring one candidate × scenario.
pub struct Measured {
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
    let ds = RandomDatasetConfig {
        num_prompts: n as usize,
        input_len: sc.input_len,
        output_len: sc.output_len,
        range_ratio: 0.0,
        prefix_len: 0,
        seed,
        chat: ep == Endpoint::ChatCompletions,
    };
    let mut workload = random_workload(&ds, t.tokenizer)
        .with_context(|| format!("building the random workload of scenario {}", sc.name))?;
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

pub fn run_point(
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
    let report = run_load_blocking(lc, 2)?;
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
    })
}

/// Warmup on prompts of its own (never measured, never reused).
pub fn warmup(cfg: &BenchmarkConfig, t: &MeasureTarget, sc: &Scenario) -> Result<()> {
    let b = &cfg.benchmark;
    if b.warmup_prompts > 0 {
        let seed = seed_for(cfg.dataset.seed, &format!("{}/warmup", t.seed_key), 0);
        let mut lc = load_config(cfg, t, sc, b.warmup_prompts, seed)?;
        lc.max_concurrency = b.max_concurrency.iter().copied().max().map(|c| c as usize);
        run_load_blocking(lc, 2).context("warmup run")?;
    }
    Ok(())
}

pub fn point_seed(cfg: &BenchmarkConfig, key: &str, point: usize) -> u64 {
    seed_for(cfg.dataset.seed, key, point)
}

/// Warmup, then the sweep and/or the QPS search. `still_alive` is checked between points.
pub fn measure(
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
pub fn benchmark_command(
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
        "random",
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

/// Re-check a SLA verdict from stored metrics (the row's `passed` is always recomputed).
pub fn recompute_sla(sla: &Sla, metrics: Option<&MetricsRow>) -> SlaResult {
    sla.evaluate(metrics)
}
