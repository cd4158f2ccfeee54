//! The load behind a capture window: concurrent requests with the shared client
//! (`vllm_sota_bench`), sized from a calibration run so it outlasts the window, running
//! in the background while the profiler is driven, and stopped when the window is done.

use anyhow::{Context, Result, bail};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use vllm_sota_bench::Prompt;
use vllm_sota_bench::{
    LiveCounters, LoadConfig, LoadReport, RandomDatasetConfig, TokenizerHandle, Workload,
    WorkloadRequest, random_workload, run_load_blocking,
};
use vllm_sota_core::tool::ToolContext;

/// What the calibration load measured at the capture's concurrency.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Calibration {
    /// Engine step time (decode: median inter-token gap; prefill: fastest TTFT).
    pub step_ms: f64,
    /// Slowest time to first token: how long until every sequence is past prefill.
    pub ttft_max_ms: f64,
    /// Wall time of the whole calibration wave.
    pub wall_ms: f64,
}

/// The stage load.
#[derive(Debug, Clone, Copy)]
pub struct StagePlan {
    pub concurrency: u64,
    pub input_len: u64,
    pub output_len: u64,
    /// Requests in the workload (decode: exactly `concurrency`, all at once).
    pub requests: u64,
    pub decode: bool,
}

static NONCE: AtomicU64 = AtomicU64::new(0);

/// A seed no earlier run of this process used (prompts must be new to the prefix cache).
fn fresh_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ NONCE.fetch_add(0x9E37_79B9, Ordering::Relaxed)
}

/// `n` unique prompts of `input` tokens (exact with a tokenizer; about right without).
pub(crate) fn workload(
    tok: Option<&TokenizerHandle>,
    n: u64,
    input: u64,
    output: u64,
) -> Result<Workload> {
    let seed = fresh_seed();
    if let Some(t) = tok {
        return random_workload(
            &RandomDatasetConfig {
                num_prompts: n as usize,
                input_len: input,
                output_len: output,
                range_ratio: 0.0,
                prefix_len: 0,
                seed,
                chat: false,
            },
            t,
        );
    }
    let requests = (0..n)
        .map(|i| {
            // A unique first word per request and run: a prefix cache cannot serve it.
            let mut p = format!("capture_{seed:x}_{i}");
            for _ in 1..input.max(1) {
                p.push_str(" profile");
            }
            WorkloadRequest {
                prompt: Prompt::Text(p),
                input_len: None,
                output_len: output,
                extra_body: None,
            }
        })
        .collect();
    Ok(Workload {
        source: "capture (unique word prompts)".into(),
        requests,
    })
}

fn config(base_url: &str, model: &str, w: Workload, c: u64, timeout: Duration) -> LoadConfig {
    let mut cfg = LoadConfig::new(base_url, model, w);
    cfg.max_concurrency = Some(c as usize);
    cfg.request_timeout = timeout;
    cfg
}

fn failures(r: &LoadReport) -> Option<String> {
    let bad: Vec<&str> = r
        .records
        .iter()
        .filter(|x| !x.success)
        .filter_map(|x| x.error.as_deref())
        .collect();
    if bad.is_empty() {
        return None;
    }
    Some(format!(
        "{} of {} requests failed (first: {})",
        bad.len(),
        r.records.len(),
        bad[0]
    ))
}

/// One wave of `c` concurrent requests (decode: 16 tokens; prefill: 1 token): warms the
/// server up and measures the step time at this concurrency.
pub(crate) fn calibrate(
    base_url: &str,
    model: &str,
    tok: Option<&TokenizerHandle>,
    c: u64,
    input: u64,
    decode: bool,
    timeout: Duration,
) -> Result<Calibration> {
    let out = if decode { 16 } else { 1 };
    let w = workload(tok, c, input, out)?;
    let t0 = Instant::now();
    let r =
        run_load_blocking(config(base_url, model, w, c, timeout), 2).context("calibration load")?;
    let wall_ms = t0.elapsed().as_secs_f64() * 1e3;
    if let Some(f) = failures(&r) {
        bail!("calibration load at concurrency {c}: {f}");
    }
    let ttft: Vec<f64> = r.records.iter().filter_map(|x| x.ttft_ms).collect();
    let ttft_max_ms = ttft.iter().cloned().fold(0.0, f64::max);
    let step_ms = if decode {
        let mut gaps: Vec<f64> = r.records.iter().flat_map(|x| x.itl_ms.clone()).collect();
        gaps.retain(|g| g.is_finite() && *g > 0.0);
        if gaps.is_empty() {
            bail!("calibration load: no inter-token gaps measured (did the server stream tokens?)");
        }
        vllm_sota_bench::percentile_unsorted(&gaps, 50.0)
    } else {
        ttft.iter().cloned().fold(f64::INFINITY, f64::min).max(0.1)
    };
    Ok(Calibration {
        step_ms,
        ttft_max_ms,
        wall_ms,
    })
}

/// Sizes the stage load from the calibration so it outlasts the window: decode output
/// covers the time to steady state (twice the slowest TTFT), the start latency and the
/// window (4× its steps) with a margin; prefill keeps `c` requests in flight for at
/// least 3 s plus 4× the window at the measured rate (3 to 20 waves of `c`).
pub(crate) fn size_stage(
    cal: &Calibration,
    decode: bool,
    c: u64,
    input: u64,
    output: u64,
    steps: u64,
) -> StagePlan {
    let step = cal.step_ms.max(0.05);
    if decode {
        let ms = cal.ttft_max_ms * 2.0 + 3000.0 + steps as f64 * step * 4.0;
        let needed = (ms / step).ceil() as u64 + steps * 2;
        StagePlan {
            concurrency: c,
            input_len: input,
            output_len: output.max(needed),
            requests: c,
            decode,
        }
    } else {
        let ms = 3_000.0 + steps as f64 * step * 4.0;
        let waves = (ms / cal.wall_ms.max(1.0)).ceil() as u64;
        StagePlan {
            concurrency: c,
            input_len: input,
            output_len: 1,
            requests: c * waves.clamp(3, 20),
            decode,
        }
    }
}

/// The load running in the background.
pub struct Running {
    pub live: Arc<LiveCounters>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<(u64, u64)>>>,
    plan: StagePlan,
}

pub fn start(
    base_url: &str,
    model: &str,
    tok: Option<&TokenizerHandle>,
    plan: &StagePlan,
    tool_cancel: Arc<AtomicBool>,
) -> Result<Running> {
    let live = Arc::new(LiveCounters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    // The tool's cancel also stops the load.
    std::thread::spawn(move || {
        while !stop2.load(Ordering::Relaxed) {
            if tool_cancel.load(Ordering::Relaxed) {
                stop2.store(true, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    // Decode: `concurrency` long requests at once. Prefill: waves of `concurrency`
    // one-token requests (fresh prompts), each sent at once after the last one ended, so
    // each prefill step is as full as the server's token budget allows at that
    // concurrency. (A closed loop of one-token requests does not do that: the requests
    // split into groups that arrive during each other's steps and stay split, so a
    // concurrency of 16 fills steps of 10 and 6 however large the budget.)
    let (base_url, model, tok, plan_c) =
        (base_url.to_string(), model.to_string(), tok.cloned(), *plan);
    let (live2, stop3) = (live.clone(), stop.clone());
    let handle = std::thread::spawn(move || -> Result<(u64, u64)> {
        let waves = if plan_c.decode {
            1
        } else {
            plan_c.requests.div_ceil(plan_c.concurrency.max(1))
        };
        let per_wave = if plan_c.decode {
            plan_c.requests
        } else {
            plan_c.concurrency
        };
        let (mut sent, mut ok) = (0, 0);
        for _ in 0..waves {
            if stop3.load(Ordering::Relaxed) {
                break;
            }
            let w = workload(tok.as_ref(), per_wave, plan_c.input_len, plan_c.output_len)?;
            let mut cfg = config(
                &base_url,
                &model,
                w,
                plan_c.concurrency,
                Duration::from_secs(3600),
            );
            cfg.live = Some(live2.clone());
            cfg.cancel = Some(stop3.clone());
            let r = run_load_blocking(cfg, 2)?;
            sent += r.records.iter().filter(|x| !x.warmup).count() as u64;
            ok += r.records.iter().filter(|x| !x.warmup && x.success).count() as u64;
        }
        Ok((sent, ok))
    });
    Ok(Running {
        live,
        stop,
        handle: Some(handle),
        plan: *plan,
    })
}

impl Running {
    /// Requests that ended so far.
    pub fn ended(&self) -> u64 {
        self.live.ended.load(Ordering::Relaxed)
    }

    /// Whether the load still keeps the batch full.
    pub fn alive(&self) -> bool {
        let ended = self.ended();
        if self.plan.decode {
            ended == 0
        } else {
            ended < self.plan.requests && !self.handle.as_ref().is_none_or(|h| h.is_finished())
        }
    }

    /// Waits until the batch is in steady state: decode, every sequence past its
    /// prefill (and none finished); prefill, a first wave of `concurrency` requests done.
    pub fn wait_steady(
        &self,
        plan: &StagePlan,
        timeout: Duration,
        ctx: &ToolContext,
    ) -> Result<()> {
        let t0 = Instant::now();
        loop {
            ctx.check_cancelled()?;
            let first = self.live.first_token.load(Ordering::Relaxed);
            let ended = self.ended();
            let failed = self.live.failed.load(Ordering::Relaxed);
            if failed > 0 {
                bail!(
                    "{failed} load request(s) failed before the window opened (first: {})",
                    self.live
                        .first_error
                        .get()
                        .map(String::as_str)
                        .unwrap_or("no error text")
                );
            }
            if plan.decode {
                if ended > 0 {
                    bail!(
                        "a decode request ended before all {} were past prefill ({first} were): the output length {} is too short for this server",
                        plan.concurrency,
                        plan.output_len
                    );
                }
                if first >= plan.concurrency {
                    return Ok(());
                }
            } else if ended >= plan.concurrency {
                return Ok(());
            }
            if t0.elapsed() > timeout {
                bail!(
                    "no steady state within {:.0} s: {first} of {} requests past prefill, {ended} ended",
                    timeout.as_secs_f64(),
                    plan.concurrency
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops sending, waits for requests in flight, returns (sent, succeeded).
    pub fn finish(mut self) -> Result<(u64, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        let h = self.handle.take().expect("joined once");
        h.join()
            .map_err(|_| anyhow::anyhow!("the load thread panicked"))?
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
