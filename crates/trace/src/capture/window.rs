//! The profiler window: the engines' `/start_profile` and `/stop_profile`, waiting for
//! the trace they write (a slow stop is waited for with progress, never a raw socket
//! error), vLLM's `--profiler-config` (which steps a window records), and the analysis
//! of the steps inside the window (how many, at which batch).

use anyhow::{Context, Result, bail};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use vllm_sota_bench::sim::profiler::VllmProfilerConfig;
use vllm_sota_core::Framework;
use vllm_sota_core::http::{self, HttpError, Response as HttpResponse, Timeouts};
use vllm_sota_core::tool::ToolContext;

use super::BATCH_TOLERANCE;
use super::load::Running;
use crate::store::TraceStore;

/// The server under capture.
pub struct Server {
    pub base_url: String,
}

impl Server {
    pub fn parse(base_url: &str) -> Result<Server> {
        http::Url::parse(base_url).with_context(|| format!("field `base_url` ({base_url:?})"))?;
        Ok(Server {
            base_url: base_url.trim_end_matches('/').to_string(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
        timeout: Duration,
    ) -> Result<HttpResponse> {
        http::request_json(method, &self.url(path), body, Timeouts::new(timeout))
    }

    /// The first model id of GET /v1/models.
    pub fn model_id(&self) -> Result<String> {
        let r = self
            .request("GET", "/v1/models", None, Duration::from_secs(30))
            .with_context(|| format!("GET {}/v1/models", self.base_url))?;
        if r.status != 200 {
            bail!("GET /v1/models returned HTTP {}; pass `model`", r.status);
        }
        r.json()?["data"][0]["id"]
            .as_str()
            .map(String::from)
            .context("GET /v1/models: no data[0].id; pass `model`")
    }
}

impl Server {
    /// The longest sequence (prompt + output tokens) the server accepts: `max_model_len` of
    /// GET /v1/models (vLLM and SGLang report it); `None` when the server does not say.
    pub fn max_model_len(&self) -> Option<u64> {
        let r = self
            .request("GET", "/v1/models", None, Duration::from_secs(30))
            .ok()?;
        (r.status == 200).then_some(())?;
        r.json().ok()?["data"][0]["max_model_len"].as_u64()
    }
}

/// The value of the framework's max-length flag (framework-flags.json `max_len_flag`:
/// vLLM `--max-model-len`, SGLang `--context-length`) in a launch argv.
pub(crate) fn max_len_from_argv(
    framework: vllm_sota_core::Framework,
    argv: &[String],
) -> Option<u64> {
    let flags = vllm_sota_fairbench::load_framework_flags().ok()?;
    let flag = flags.facts(framework).ok()?.max_len_flag.clone()?;
    let eq = format!("{flag}=");
    argv.iter().enumerate().find_map(|(i, a)| {
        if *a == flag {
            argv.get(i + 1)?.parse().ok()
        } else {
            a.strip_prefix(&eq)?.parse().ok()
        }
    })
}

/// What is known of a vLLM server's profiler: `config` is None when the launch command
/// has no torch `--profiler-config` (vLLM then has no profiler routes).
#[derive(Debug, Clone)]
pub struct VllmWindow {
    pub config: Option<VllmProfilerConfig>,
}

/// Reads `--profiler-config` from a launch argv (`--profiler-config JSON` or `=JSON`).
pub(crate) fn vllm_profiler_config(cmd: Option<&[String]>) -> Result<Option<VllmWindow>> {
    let Some(cmd) = cmd else { return Ok(None) };
    let mut text = None;
    for (i, a) in cmd.iter().enumerate() {
        if a == "--profiler-config" {
            text = cmd.get(i + 1).cloned();
        } else if let Some(v) = a.strip_prefix("--profiler-config=") {
            text = Some(v.to_string());
        }
    }
    let config = match text {
        Some(t) => VllmProfilerConfig::parse(&t)
            .with_context(|| "field `server_command`: its --profiler-config")?,
        None => None,
    };
    Ok(Some(VllmWindow { config }))
}

/// The `--profiler-config` that bounds a window to `steps` engine steps.
pub(crate) fn vllm_flag(steps: u64, dir: &Path) -> String {
    format!(
        "--profiler-config '{}'",
        json!({"profiler": "torch", "torch_profiler_dir": dir, "delay_iterations": 0, "max_iterations": steps})
    )
}

/// What the vLLM server's config will do to a window of `steps` steps, when it is not that.
pub(crate) fn vllm_window_note(
    framework: Framework,
    w: Option<&VllmWindow>,
    steps: u64,
    dir: &Path,
) -> Option<String> {
    if framework != Framework::Vllm {
        return None;
    }
    let flag = vllm_flag(steps, dir);
    match w.map(|w| &w.config) {
        None => Some(format!(
            "vLLM's profiler config is unknown (no `server_command`): the window is ended by this client's /stop_profile after about {steps} steps; to bound it in the engine start the server with {flag}"
        )),
        Some(None) => Some(format!(
            "the launch command has no torch --profiler-config: vLLM serves no /start_profile; start the server with {flag}"
        )),
        Some(Some(c)) => match c.window_steps() {
            None => Some(format!(
                "the server's --profiler-config has max_iterations 0 (active_iterations counts only with a warmup/wait schedule): a window records every step until /stop_profile; this client stops it after about {steps} steps; to bound it in the engine use {flag}"
            )),
            Some(m) if m != steps => Some(format!(
                "the server's --profiler-config records {m} steps per window, not {steps}: use {flag}"
            )),
            _ => None,
        },
    }
}

/// A window that recorded many more steps than asked.
pub(crate) fn vllm_unbounded_note(steps: u64, dir: &Path, seen: u64) -> Option<String> {
    Some(format!(
        "the window recorded {seen} steps for {steps} asked: vLLM's window was not bounded by steps; start the server with {}",
        vllm_flag(steps, dir)
    ))
}

/// The trace files a window delivered, and how long they took after the window.
pub struct WindowResult {
    pub files: Vec<PathBuf>,
    pub trace_wait_s: f64,
}

/// Opens the window in steady state, waits for it to close, returns the trace files.
#[allow(clippy::too_many_arguments)]
pub fn run_window(
    server: &Server,
    framework: Framework,
    trace_dir: &Path,
    stage: &str,
    steps: u64,
    est_step: Duration,
    vllm: Option<&VllmWindow>,
    load: &Running,
    timeout: Duration,
    since: SystemTime,
    ctx: &ToolContext,
) -> Result<WindowResult> {
    if framework == Framework::Vllm {
        vllm_window(
            server, trace_dir, steps, est_step, vllm, load, timeout, since, ctx,
        )
    } else {
        sglang_window(
            server, trace_dir, stage, steps, est_step, load, timeout, ctx,
        )
    }
}

fn start_error(r: &HttpResponse, hint: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "POST /start_profile returned HTTP {}: {}{hint}",
        r.status,
        http::snippet(&r.text())
    )
}

#[allow(clippy::too_many_arguments)]
fn sglang_window(
    server: &Server,
    trace_dir: &Path,
    stage: &str,
    steps: u64,
    est_step: Duration,
    load: &Running,
    timeout: Duration,
    ctx: &ToolContext,
) -> Result<WindowResult> {
    let nonce = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let profile_id = format!("capture-{stage}-{nonce}");
    let body = json!({"output_dir": trace_dir, "num_steps": steps, "activities": ["CPU", "GPU"], "with_stack": true, "record_shapes": true, "profile_id": profile_id});
    let r = server
        .request("POST", "/start_profile", Some(&body), Duration::from_secs(60))
        .map_err(|e| {
            anyhow::anyhow!(
                "POST /start_profile did not answer within 60 s ({}): SGLang blocks it while an earlier window is still open (a window that saw no engine step never closes); restart the server",
                short_io(&e)
            )
        })?;
    if r.status != 200 {
        return Err(start_error(&r, ""));
    }
    let opened = Instant::now();
    let mut ended_at: Option<Instant> = None;
    // After the load ends, a window that closed at its last step may still be written.
    let grace = Duration::from_secs(5) + est_step * (steps as u32).saturating_mul(4);
    let mut last_sizes: Vec<u64> = Vec::new();
    loop {
        ctx.check_cancelled()?;
        let files: Vec<PathBuf> = new_traces(trace_dir, None)
            .into_iter()
            .filter(|p| p.to_string_lossy().contains(&profile_id))
            .collect();
        let sizes = sizes(&files);
        if !files.is_empty() && sizes == last_sizes && files.iter().all(|f| complete(f)) {
            return Ok(WindowResult {
                files,
                trace_wait_s: opened.elapsed().as_secs_f64(),
            });
        }
        last_sizes = sizes;
        if files.is_empty() && !load.alive() {
            let at = *ended_at.get_or_insert_with(Instant::now);
            if at.elapsed() > grace {
                bail!(
                    "the profiler window (num_steps {steps}) saw fewer than {steps} engine steps before the load ended, so it never closed and wrote no trace into {}: SGLang keeps such a window open and blocks the next /start_profile until it closes; restart the server, then capture with a longer load (output_len) or fewer `steps`",
                    trace_dir.display()
                );
            }
        }
        if opened.elapsed() > timeout {
            bail!(
                "the profiler window did not deliver a complete trace into {} within {} s (timeout_s): {}",
                trace_dir.display(),
                timeout.as_secs(),
                if files.is_empty() {
                    "no trace file appeared; is `trace_dir` the server's profiler directory as seen from here?"
                } else {
                    "the trace file is still being written; raise timeout_s"
                }
            );
        }
        ctx.progress(
            opened.elapsed().as_secs_f64(),
            Some(timeout.as_secs_f64()),
            &format!(
                "waiting for the {steps}-step window to close and its trace in {}",
                trace_dir.display()
            ),
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[allow(clippy::too_many_arguments)]
fn vllm_window(
    server: &Server,
    trace_dir: &Path,
    steps: u64,
    est_step: Duration,
    vllm: Option<&VllmWindow>,
    load: &Running,
    timeout: Duration,
    since: SystemTime,
    ctx: &ToolContext,
) -> Result<WindowResult> {
    let flag = vllm_flag(steps, trace_dir);
    if let Some(VllmWindow { config: None }) = vllm {
        bail!(
            "the launch command has no torch --profiler-config, so vLLM serves no /start_profile: start the server with {flag}"
        );
    }
    let r = server
        .request("POST", "/start_profile", None, Duration::from_secs(60))
        .map_err(|e| anyhow::anyhow!("POST /start_profile: {}", short_io(&e)))?;
    if r.status == 404 {
        return Err(start_error(
            &r,
            &format!(
                " (vLLM serves /start_profile only with a torch profiler config: start it with {flag})"
            ),
        ));
    }
    if r.status != 200 {
        return Err(start_error(&r, ""));
    }
    let cfg = vllm.and_then(|w| w.config.as_ref());
    let delay = cfg.map(|c| c.delay_iterations).unwrap_or(0);
    let recorded = cfg
        .and_then(|c| c.window_steps())
        .unwrap_or(steps)
        .min(steps.max(1) * 4);
    // Hold the window open for its steps (50% margin), keeping the load alive.
    let hold = est_step.mul_f64((delay + recorded) as f64 * 1.5) + Duration::from_millis(20);
    let t0 = Instant::now();
    while t0.elapsed() < hold {
        ctx.check_cancelled()?;
        if !load.alive() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let stop_t0 = Instant::now();
    stop_and_wait(server, trace_dir, timeout, ctx)?;
    // The worker's trace may be written by the engine after the API answered.
    let mut last_sizes = Vec::new();
    loop {
        ctx.check_cancelled()?;
        let files = new_traces(trace_dir, Some(since));
        let sizes = sizes(&files);
        let worker = files
            .iter()
            .any(|f| !crate::discover::is_api_server_trace(f));
        if worker && sizes == last_sizes && files.iter().all(|f| complete(f)) {
            return Ok(WindowResult {
                files,
                trace_wait_s: stop_t0.elapsed().as_secs_f64(),
            });
        }
        last_sizes = sizes;
        if stop_t0.elapsed() > timeout {
            bail!(
                "/stop_profile answered but no complete worker trace appeared in {} within {} s (timeout_s): is `trace_dir` vLLM's torch_profiler_dir as seen from here?",
                trace_dir.display(),
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `POST /stop_profile`, waited for with progress: the server answers once the trace is
/// written, which takes long for a big window. After `timeout` a clear error names the
/// server's profiler directory.
pub(crate) fn stop_and_wait(
    server: &Server,
    trace_dir: &Path,
    timeout: Duration,
    ctx: &ToolContext,
) -> Result<HttpResponse> {
    let (tx, rx) = std::sync::mpsc::channel();
    let url = server.url("/stop_profile");
    // The socket waits longer than we do: our own clock decides, with progress.
    let sock_timeout = Timeouts::new(timeout + Duration::from_secs(60));
    std::thread::spawn(move || {
        let _ = tx.send(http::request_json("POST", &url, None, sock_timeout));
    });
    let t0 = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_secs(2)) {
            Ok(Ok(r)) if r.status == 200 => return Ok(r),
            Ok(Ok(r)) => bail!(
                "POST /stop_profile returned HTTP {}: {}",
                r.status,
                http::snippet(&r.text())
            ),
            Ok(Err(e)) => bail!(
                "POST /stop_profile failed after {:.0} s ({}); the server may still be writing the trace into {}",
                t0.elapsed().as_secs_f64(),
                short_io(&e),
                trace_dir.display()
            ),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                bail!("POST /stop_profile: the request thread ended without an answer")
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        ctx.check_cancelled()?;
        let waited = t0.elapsed();
        if waited > timeout {
            bail!(
                "POST /stop_profile had not answered after {} s (timeout_s): the server is still writing the trace into its profiler directory {}; raise timeout_s, or shorten the window (`steps`)",
                timeout.as_secs(),
                trace_dir.display()
            );
        }
        ctx.progress(
            waited.as_secs_f64(),
            Some(timeout.as_secs_f64()),
            &format!(
                "waiting for /stop_profile: the server is writing the trace into {} ({:.0} s)",
                trace_dir.display(),
                waited.as_secs_f64()
            ),
        );
    }
}

/// An I/O error in words (a read timeout is EAGAIN, "os error 11", on Linux).
fn short_io(e: &anyhow::Error) -> String {
    for c in e.chain() {
        if let Some(h) = c.downcast_ref::<HttpError>() {
            return match h {
                HttpError::Slow { silent_s, .. } => {
                    format!("no answer for {silent_s:.0} s")
                }
                HttpError::Connect { reason, .. } => format!("cannot connect: {reason}"),
                HttpError::Dead { reason, .. } => format!("connection lost: {reason}"),
                HttpError::Protocol { reason, .. } => format!("bad HTTP answer: {reason}"),
            };
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                    "no answer before the socket timeout".into()
                }
                std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
                std::io::ErrorKind::ConnectionReset => "connection reset by the server".into(),
                _ => io.to_string(),
            };
        }
    }
    format!("{e:#}")
}

/// Trace files in `dir` (newer than `since` when given).
fn new_traces(dir: &Path, since: Option<SystemTime>) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| {
        p.is_file()
            && crate::discover::looks_like_trace(p)
            && since.is_none_or(|s| {
                std::fs::metadata(p)
                    .and_then(|m| m.modified())
                    .map(|m| m >= s)
                    .unwrap_or(false)
            })
    });
    v.sort();
    v
}

fn sizes(files: &[PathBuf]) -> Vec<u64> {
    files
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .collect()
}

/// A trace file written to its end: a gzip stream that decodes to its trailer, or JSON
/// that ends with its closing bracket.
pub(crate) fn complete(p: &Path) -> bool {
    let Ok(f) = std::fs::File::open(p) else {
        return false;
    };
    if p.to_string_lossy().ends_with(".gz") {
        let mut d = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(f));
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match d.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    }
    let Ok(text) = std::fs::read(p) else {
        return false;
    };
    matches!(
        text.iter().rev().find(|b| !b.is_ascii_whitespace()),
        Some(b'}' | b']')
    )
}

/// One engine step from its annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StepSample {
    pub prefill_seqs: u64,
    pub prefill_tokens: u64,
    pub decode_seqs: u64,
}

fn num(s: &str) -> Option<u64> {
    s.trim().parse().ok()
}

/// Parses a step annotation: vLLM `execute_context_X(T)_generation_Y(Y)` or SGLang
/// `step[DECODE bs=N]` / `step[EXTEND bs=N toks=T]` (other modes count as prefill work
/// when they carry tokens).
pub fn parse_step(name: &str) -> Option<StepSample> {
    if let Some(rest) = name.strip_prefix("execute_context_") {
        let (ctx, rest) = rest.split_once('(')?;
        let (ctx_tok, rest) = rest.split_once(')')?;
        let rest = rest.strip_prefix("_generation_")?;
        let (gen_n, _) = rest.split_once('(')?;
        return Some(StepSample {
            prefill_seqs: num(ctx)?,
            prefill_tokens: num(ctx_tok)?,
            decode_seqs: num(gen_n)?,
        });
    }
    let inner = name.strip_prefix("step[")?.strip_suffix(']')?;
    let mut parts = inner.split_whitespace();
    let mode = parts.next()?;
    let mut bs = None;
    let mut toks = None;
    for p in parts {
        if let Some(v) = p.strip_prefix("bs=") {
            bs = num(v);
        } else if let Some(v) = p.strip_prefix("toks=") {
            toks = num(v);
        }
    }
    let bs = bs?;
    Some(if mode == "DECODE" || mode == "IDLE" {
        StepSample {
            prefill_seqs: 0,
            prefill_tokens: 0,
            decode_seqs: bs,
        }
    } else {
        StepSample {
            prefill_seqs: bs,
            prefill_tokens: toks.unwrap_or(0),
            decode_seqs: 0,
        }
    })
}

/// The steps of a trace, from the CPU-side step annotations, in time order.
pub fn step_samples(store: &TraceStore) -> Vec<StepSample> {
    let a = &store.annotations;
    let mut v: Vec<(i64, StepSample)> = (0..a.len())
        .filter(|&i| !a.on_gpu[i])
        .filter_map(|i| parse_step(store.name(a.name[i])).map(|s| (a.ts_ns[i], s)))
        .collect();
    v.sort_by_key(|x| x.0);
    v.into_iter().map(|x| x.1).collect()
}

/// What the window holds and whether it represents the requested batch.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WindowAnalysis {
    /// Step annotations were found.
    pub annotated: bool,
    pub steps: u64,
    pub prefill_steps: u64,
    pub decode_steps: u64,
    /// Batch inside the window: decode, the median of sequences per pure decode step;
    /// prefill, sequences per prefill step weighted by the step's prefill tokens (the
    /// batch the average prompt token saw). Absent when the trace has no step annotations.
    pub window_batch: Option<f64>,
    /// The batch a representative window has: decode, the concurrency; prefill, the
    /// concurrency capped by the most prompts one step's token budget holds.
    pub expected_batch: u64,
    pub representative: bool,
    pub verdict: String,
    pub notes: Vec<String>,
}

fn median_u(v: &mut [u64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2] as f64
    } else {
        (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0
    })
}

/// Window analysis of a captured stage.
pub(crate) fn analyze_window(
    store: &TraceStore,
    decode: bool,
    concurrency: u64,
    expected: u64,
    steps_requested: u64,
) -> WindowAnalysis {
    analyze_samples(
        &step_samples(store),
        decode,
        concurrency,
        expected,
        steps_requested,
    )
}

pub fn analyze_samples(
    samples: &[StepSample],
    decode: bool,
    concurrency: u64,
    expected: u64,
    steps_requested: u64,
) -> WindowAnalysis {
    let steps = samples.len() as u64;
    let prefill: Vec<&StepSample> = samples.iter().filter(|s| s.prefill_seqs > 0).collect();
    let pure_decode: Vec<&StepSample> = samples.iter().filter(|s| s.prefill_seqs == 0).collect();
    let mut notes = Vec::new();
    let expected = expected.max(1);
    let (batch, verdict_bad) = if decode {
        let mut b: Vec<u64> = pure_decode.iter().map(|s| s.decode_seqs).collect();
        let batch = median_u(&mut b);
        let mixed = steps - pure_decode.len() as u64;
        let bad = if steps == 0 {
            Some("no step annotation in the window".to_string())
        } else if (pure_decode.len() as f64) < 0.8 * steps as f64 {
            Some(format!("{mixed} of {steps} steps carried prefill work"))
        } else {
            None
        };
        if mixed > 0 {
            notes.push(format!(
                "{mixed} of {steps} window steps carried prefill work"
            ));
        }
        (batch, bad)
    } else {
        // Prefill: the batch the average prompt token was computed in (steps weighted by
        // their prefill tokens). A wave of prompts reaches the engine over a few ms, so a
        // step of one early arrival and one of a straggler sit beside the full step; by
        // count they would be the median, by work they are a sliver.
        let tokens: u64 = prefill.iter().map(|s| s.prefill_tokens).sum();
        let batch = if tokens > 0 {
            Some(
                prefill
                    .iter()
                    .map(|s| s.prefill_seqs as f64 * s.prefill_tokens as f64)
                    .sum::<f64>()
                    / tokens as f64,
            )
        } else {
            let mut b: Vec<u64> = prefill.iter().map(|s| s.prefill_seqs).collect();
            median_u(&mut b)
        };
        let bad = if prefill.is_empty() {
            Some("no prefill step in the window".to_string())
        } else {
            None
        };
        (batch, bad)
    };
    if steps > 0 && steps < steps_requested {
        notes.push(format!(
            "the window recorded {steps} steps, fewer than the {steps_requested} asked"
        ));
    }
    let off = batch.map(|b| (b - expected as f64).abs() / expected as f64);
    let (representative, verdict) = match (verdict_bad, batch, off) {
        (Some(why), _, _) => (false, why),
        (None, Some(b), Some(o)) if o <= BATCH_TOLERANCE => (
            true,
            format!("batch {b:.0} within 20% of {expected} (concurrency {concurrency})"),
        ),
        (None, Some(b), _) => (
            false,
            format!(
                "batch {b:.0} differs from {expected} (concurrency {concurrency}) by more than 20%"
            ),
        ),
        (None, None, _) => (false, "no step annotation gives the batch".to_string()),
    };
    WindowAnalysis {
        annotated: steps > 0,
        steps,
        prefill_steps: prefill.len() as u64,
        decode_steps: pure_decode.len() as u64,
        window_batch: batch,
        expected_batch: expected,
        representative,
        verdict,
        notes,
    }
}
