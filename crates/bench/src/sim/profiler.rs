//! The simulator's torch profiler: `/start_profile` and `/stop_profile` with the real
//! engines' semantics, strict enough that a capture client passing here works on them.
//!
//! - vLLM (0.26 `--profiler-config`): the routes exist only when the config names
//!   `"profiler": "torch"` and a `torch_profiler_dir`. `/start_profile` takes no body
//!   and answers at once; recording starts after `delay_iterations` engine steps and
//!   stops by itself after `max_iterations` recorded steps (0 = only `/stop_profile`
//!   stops it; `active_iterations` bounds the window only with a schedule, i.e. when
//!   `warmup_iterations` or `wait_iterations` is set). `/stop_profile` answers after the
//!   trace is written. Two files per window, like vLLM: the worker's
//!   `rank0.<ns>.pt.trace.json.gz` (kernels, step annotations
//!   `execute_context_X(T)_generation_Y(Y)`) and the API server's
//!   `vm_<pid>.async_llm.<ns>.pt.trace.json.gz` (no kernels).
//! - SGLang (0.5.x): `/start_profile` takes `{output_dir, num_steps, activities,
//!   with_stack, record_shapes, profile_id, ...}` (unknown fields refused). With
//!   `num_steps` the window closes by itself after that many engine steps and writes
//!   `<output_dir>/<profile_id>-TP-0.trace.json.gz` (step annotations
//!   `step[DECODE bs=N]`, `step[EXTEND bs=N toks=T]`); a window that sees no step never
//!   closes, and a second `/start_profile` blocks until the open window closes.
//!   `/stop_profile` with no window open answers 500.
//! - Writing a trace takes `profile_write_base_ms + profile_write_ms_per_step · steps`
//!   and stalls the engine meanwhile (both engines export on the scheduler/worker
//!   thread); the file grows in two parts, so a reader that trusts a size that stopped
//!   changing reads a truncated gzip stream.

use super::SimConfig;
use anyhow::{Result, bail};
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use vllm_sota_core::Framework;

/// One engine step as the profiler records it.
#[derive(Debug, Clone, Copy)]
pub struct StepInfo {
    pub start: Instant,
    pub end: Instant,
    /// Sequences with prefill tokens in this step.
    pub prefill_seqs: u64,
    pub prefill_tokens: u64,
    /// Sequences decoding one token in this step.
    pub decode_seqs: u64,
}

/// vLLM's `--profiler-config` keys that shape the window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VllmProfilerConfig {
    pub dir: PathBuf,
    pub delay_iterations: u64,
    pub max_iterations: u64,
    pub active_iterations: u64,
    pub warmup_iterations: u64,
    pub wait_iterations: u64,
}

impl VllmProfilerConfig {
    /// Parses the `--profiler-config` JSON; `None` when the torch profiler is off.
    pub fn parse(text: &str) -> Result<Option<VllmProfilerConfig>> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("--profiler-config: not JSON ({e})"))?;
        let Some(o) = v.as_object() else {
            bail!("--profiler-config: expected a JSON object");
        };
        let n = |k: &str, d: u64| -> Result<u64> {
            match o.get(k) {
                None | Some(Value::Null) => Ok(d),
                Some(x) => x.as_u64().ok_or_else(|| {
                    anyhow::anyhow!("--profiler-config: {k} must be a non-negative integer")
                }),
            }
        };
        let cfg = VllmProfilerConfig {
            dir: PathBuf::from(
                o.get("torch_profiler_dir")
                    .and_then(|d| d.as_str())
                    .unwrap_or(""),
            ),
            delay_iterations: n("delay_iterations", 0)?,
            max_iterations: n("max_iterations", 0)?,
            active_iterations: n("active_iterations", 5)?,
            warmup_iterations: n("warmup_iterations", 0)?,
            wait_iterations: n("wait_iterations", 0)?,
        };
        let torch = o.get("profiler").and_then(|p| p.as_str()) == Some("torch");
        if !torch || cfg.dir.as_os_str().is_empty() {
            return Ok(None);
        }
        Ok(Some(cfg))
    }

    /// Recorded steps after which the window closes by itself (None = only a stop closes it).
    pub fn window_steps(&self) -> Option<u64> {
        let scheduled = self.warmup_iterations > 0 || self.wait_iterations > 0;
        match (scheduled, self.max_iterations) {
            (true, 0) => Some(self.active_iterations),
            (true, m) => Some(m.min(self.active_iterations)),
            (false, 0) => None,
            (false, m) => Some(m),
        }
    }
}

#[derive(Debug)]
enum Window {
    Idle,
    /// vLLM: start received, `delay` steps to go before recording.
    Delayed {
        delay: u64,
    },
    Recording {
        /// Steps after which the window closes by itself.
        limit: Option<u64>,
        steps: Vec<StepInfo>,
    },
    /// vLLM after an automatic stop: stays active until /stop_profile.
    Stopped,
}

struct Inner {
    window: Window,
    profile_id: String,
    out_dir: PathBuf,
    writing: bool,
    windows_written: u64,
}

/// The profiler state shared by the HTTP routes and the engine loop.
pub struct SimProfiler {
    framework: Framework,
    vllm: Option<VllmProfilerConfig>,
    default_dir: Option<PathBuf>,
    write_base: Duration,
    write_per_step: Duration,
    started: Instant,
    inner: Mutex<Inner>,
    /// Signalled when a window closes or a write ends.
    changed: Notify,
}

/// A trace to write: the engine (or the stop route) awaits [`PendingWrite::run`].
pub struct PendingWrite {
    files: Vec<(PathBuf, Vec<u8>)>,
    took: Duration,
}

/// What a route answers.
pub struct RouteAnswer {
    pub status: u16,
    pub body: String,
}

fn answer(status: u16, body: Value) -> RouteAnswer {
    RouteAnswer {
        status,
        body: body.to_string(),
    }
}

impl SimProfiler {
    pub fn new(cfg: &SimConfig) -> Result<SimProfiler> {
        let vllm = match (&cfg.profiler_config, cfg.framework) {
            (Some(t), Framework::Vllm) => VllmProfilerConfig::parse(t)?,
            _ => None,
        };
        Ok(SimProfiler {
            framework: cfg.framework,
            vllm,
            default_dir: cfg.profiler_dir.clone(),
            write_base: Duration::from_secs_f64(cfg.profile_write_base_ms.max(0.0) / 1e3),
            write_per_step: Duration::from_secs_f64(cfg.profile_write_ms_per_step.max(0.0) / 1e3),
            started: Instant::now(),
            inner: Mutex::new(Inner {
                window: Window::Idle,
                profile_id: String::new(),
                out_dir: PathBuf::new(),
                writing: false,
                windows_written: 0,
            }),
            changed: Notify::new(),
        })
    }

    /// Whether `/start_profile` and `/stop_profile` exist (vLLM: only with a torch profiler config).
    pub fn routes_enabled(&self) -> bool {
        match self.framework {
            Framework::Vllm => self.vllm.is_some(),
            // TokenSpeed (a config built in code) has SGLang's profiler routes, as below.
            Framework::Sglang | Framework::Tokenspeed => true,
            Framework::TensorrtLlm => false,
        }
    }

    /// `POST /start_profile`.
    pub async fn start(&self, body: &[u8]) -> RouteAnswer {
        match self.framework {
            Framework::Vllm => self.start_vllm(),
            _ => self.start_sglang(body).await,
        }
    }

    fn start_vllm(&self) -> RouteAnswer {
        let cfg = self.vllm.as_ref().expect("routes enabled");
        let mut g = self.inner.lock().unwrap();
        if matches!(g.window, Window::Idle) {
            g.out_dir = cfg.dir.clone();
            g.profile_id = format!("{}", now_ns());
            g.window = if cfg.delay_iterations > 0 {
                Window::Delayed {
                    delay: cfg.delay_iterations,
                }
            } else {
                Window::Recording {
                    limit: cfg.window_steps(),
                    steps: Vec::new(),
                }
            };
        }
        // Already active: ignored, as vLLM does.
        answer(200, json!({}))
    }

    async fn start_sglang(&self, body: &[u8]) -> RouteAnswer {
        let v: Value = if body.iter().all(|b| b.is_ascii_whitespace()) {
            json!({})
        } else {
            match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(e) => return answer(400, json!({"detail": format!("JSON decode error: {e}")})),
            }
        };
        let Some(o) = v.as_object() else {
            return answer(422, json!({"detail": "body must be a JSON object"}));
        };
        const KNOWN: &[&str] = &[
            "output_dir",
            "start_step",
            "num_steps",
            "activities",
            "with_stack",
            "record_shapes",
            "profile_by_stage",
            "profile_id",
            "merge_profiles",
            "profile_prefix",
            "profile_stages",
        ];
        if let Some(k) = o.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return answer(422, json!({"detail": format!("unknown field `{k}`")}));
        }
        let num_steps = match o.get("num_steps") {
            None | Some(Value::Null) => None,
            Some(x) => match x.as_u64() {
                Some(n) => Some(n),
                None => return answer(422, json!({"detail": "num_steps must be an integer"})),
            },
        };
        // A window already configured: this request waits until it closes (SGLang 0.5.17
        // blocks the second /start_profile; a window that sees no step never closes).
        loop {
            let notified = self.changed.notified();
            {
                let mut g = self.inner.lock().unwrap();
                if matches!(g.window, Window::Idle) && !g.writing {
                    g.out_dir = o
                        .get("output_dir")
                        .and_then(|d| d.as_str())
                        .map(PathBuf::from)
                        .or_else(|| self.default_dir.clone())
                        .unwrap_or_else(|| PathBuf::from("/tmp"));
                    g.profile_id = o
                        .get("profile_id")
                        .and_then(|d| d.as_str())
                        .map(String::from)
                        .unwrap_or_else(|| format!("{:.6}", now_ns() as f64 / 1e9));
                    // `if num_steps:` in SGLang: 0 means no bound.
                    g.window = Window::Recording {
                        limit: num_steps.filter(|n| *n > 0),
                        steps: Vec::new(),
                    };
                    return answer(200, json!({"success": true, "message": "Succeeded"}));
                }
            }
            notified.await;
        }
    }

    /// `POST /stop_profile`: answers once the trace is written.
    pub async fn stop(&self) -> RouteAnswer {
        // Wait for a write in progress (an automatic stop) to finish first.
        loop {
            let notified = self.changed.notified();
            if !self.inner.lock().unwrap().writing {
                break;
            }
            notified.await;
        }
        let pending = {
            let mut g = self.inner.lock().unwrap();
            let w = std::mem::replace(&mut g.window, Window::Idle);
            match (w, self.framework) {
                (Window::Recording { steps, .. }, _) => {
                    g.writing = true;
                    Some(self.render(&g, &steps, true, true))
                }
                // vLLM after an automatic stop: the API server's trace is still due.
                (Window::Stopped, Framework::Vllm) => {
                    g.writing = true;
                    Some(self.render(&g, &[], false, true))
                }
                (Window::Idle, Framework::Sglang) => {
                    return answer(
                        500,
                        json!({"detail": "Profiling is not in progress. Call /start_profile first."}),
                    );
                }
                // vLLM: a stop with nothing recording is ignored.
                _ => None,
            }
        };
        if let Some(p) = pending {
            let r = p.run().await;
            self.finish_write();
            if let Err(e) = r {
                return answer(500, json!({"detail": format!("writing the trace: {e:#}")}));
            }
        }
        match self.framework {
            Framework::Vllm => answer(200, json!({})),
            _ => answer(200, json!({"success": true, "message": "Succeeded."})),
        }
    }

    fn finish_write(&self) {
        let mut g = self.inner.lock().unwrap();
        g.writing = false;
        g.windows_written += 1;
        drop(g);
        self.changed.notify_waiters();
    }

    /// The engine waits here before a step while a trace is being written.
    pub async fn wait_not_writing(&self) {
        loop {
            let notified = self.changed.notified();
            if !self.inner.lock().unwrap().writing {
                return;
            }
            notified.await;
        }
    }

    /// Called by the engine after every step; a returned write stalls the engine.
    pub fn on_step(&self, step: StepInfo) -> Option<PendingWrite> {
        let mut g = self.inner.lock().unwrap();
        match &mut g.window {
            Window::Idle | Window::Stopped => None,
            Window::Delayed { delay } => {
                *delay -= 1;
                if *delay == 0 {
                    let limit = self.vllm.as_ref().and_then(|c| c.window_steps());
                    g.window = Window::Recording {
                        limit,
                        steps: Vec::new(),
                    };
                }
                None
            }
            Window::Recording { limit, steps } => {
                steps.push(step);
                if limit.is_some_and(|l| steps.len() as u64 >= l) {
                    let steps = std::mem::take(steps);
                    g.window = match self.framework {
                        Framework::Vllm => Window::Stopped,
                        _ => Window::Idle,
                    };
                    g.writing = true;
                    // The API server's trace is written by /stop_profile only.
                    Some(self.render(&g, &steps, true, false))
                } else {
                    None
                }
            }
        }
    }

    /// Called after the engine awaited an automatic write.
    pub fn write_done(&self) {
        self.finish_write();
    }

    fn render(&self, g: &Inner, steps: &[StepInfo], worker: bool, frontend: bool) -> PendingWrite {
        let took = if worker {
            self.write_base + self.write_per_step * steps.len() as u32
        } else {
            Duration::from_millis(5)
        };
        let mut files = Vec::new();
        let trace = kineto_trace(self.framework, steps, self.started);
        match self.framework {
            Framework::Vllm => {
                if worker {
                    files.push((
                        g.out_dir
                            .join(format!("rank0.{}.pt.trace.json.gz", g.profile_id)),
                        gzip(&trace),
                    ));
                }
                if frontend {
                    files.push((
                        g.out_dir.join(format!(
                            "vm_{}.async_llm.{}.pt.trace.json.gz",
                            std::process::id(),
                            g.profile_id
                        )),
                        gzip(&frontend_trace()),
                    ));
                }
            }
            _ => files.push((
                g.out_dir
                    .join(format!("{}-TP-0.trace.json.gz", g.profile_id)),
                gzip(&trace),
            )),
        }
        PendingWrite { files, took }
    }
}

impl PendingWrite {
    /// Writes each file in two parts `took` apart (the first half at once).
    pub async fn run(self) -> Result<()> {
        for (path, bytes) in &self.files {
            if let Some(d) = path.parent() {
                std::fs::create_dir_all(d)?;
            }
            let half = bytes.len() / 2;
            std::fs::File::create(path)?.write_all(&bytes[..half])?;
        }
        tokio::time::sleep(self.took).await;
        for (path, bytes) in &self.files {
            let half = bytes.len() / 2;
            std::fs::OpenOptions::new()
                .append(true)
                .open(path)?
                .write_all(&bytes[half..])?;
        }
        Ok(())
    }
}

fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn gzip(v: &Value) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = e.write_all(v.to_string().as_bytes());
    e.finish().unwrap_or_default()
}

/// The step annotation the framework writes.
pub fn step_name(fw: Framework, s: &StepInfo) -> String {
    match fw {
        Framework::Vllm => format!(
            "execute_context_{}({})_generation_{}({})",
            s.prefill_seqs, s.prefill_tokens, s.decode_seqs, s.decode_seqs
        ),
        _ if s.prefill_tokens > 0 => format!(
            "step[EXTEND bs={} toks={}]",
            s.prefill_seqs + s.decode_seqs,
            s.prefill_tokens + s.decode_seqs
        ),
        _ => format!("step[DECODE bs={}]", s.decode_seqs),
    }
}

/// A Kineto-format trace of the recorded steps: per step a CPU and a GPU step
/// annotation, and GEMM/attention/norm kernels with their `cudaLaunchKernel` calls.
fn kineto_trace(fw: Framework, steps: &[StepInfo], t0: Instant) -> Value {
    let us = |t: Instant| t.saturating_duration_since(t0).as_secs_f64() * 1e6;
    let mut ev: Vec<Value> = vec![
        json!({"ph": "M", "name": "process_name", "pid": 1, "tid": 0, "args": {"name": "python"}}),
        json!({"ph": "M", "name": "process_name", "pid": 0, "tid": 0, "args": {"name": "GPU 0"}}),
        json!({"ph": "M", "name": "thread_name", "pid": 0, "tid": 7, "args": {"name": "stream 7"}}),
    ];
    let mut corr = 1u64;
    for s in steps {
        let (a, b) = (us(s.start), us(s.end));
        let dur = (b - a).max(1.0);
        let name = step_name(fw, s);
        ev.push(json!({"ph": "X", "cat": "user_annotation", "name": name, "pid": 1, "tid": 1, "ts": a, "dur": dur, "args": {"External id": corr}}));
        ev.push(json!({"ph": "X", "cat": "gpu_user_annotation", "name": name, "pid": 0, "tid": 7, "ts": a + 1.0, "dur": dur - 1.0, "args": {"External id": corr}}));
        let kernels = [
            ("nvjet_sim_gemm_qkv", 0.30),
            ("flash::FlashAttnFwdSm90_sim", 0.25),
            ("nvjet_sim_gemm_mlp", 0.35),
            ("rmsnorm_sim_kernel", 0.10),
        ];
        let mut k_ts = a + 2.0;
        for (kname, share) in kernels {
            corr += 1;
            let kd = ((dur - 4.0) * share).max(0.5);
            ev.push(json!({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1, "ts": k_ts - 1.0, "dur": 0.5, "args": {"correlation": corr, "External id": corr}}));
            ev.push(json!({"ph": "X", "cat": "kernel", "name": kname, "pid": 0, "tid": 7, "ts": k_ts, "dur": kd, "args": {"correlation": corr, "External id": corr, "device": 0, "stream": 7, "grid": [s.decode_seqs.max(1) + s.prefill_seqs, 1, 1], "block": [128, 1, 1]}}));
            k_ts += kd;
        }
        corr += 1;
    }
    json!({"schemaVersion": 1, "deviceProperties": [{"id": 0, "name": "Simulated GPU"}], "traceName": "sim-serve", "traceEvents": ev})
}

fn frontend_trace() -> Value {
    json!({"schemaVersion": 1, "traceEvents": [
        {"ph": "X", "cat": "python_function", "name": "vllm/entrypoints/openai/api_server.py(1): create_completion", "pid": 2, "tid": 2, "ts": 1.0, "dur": 10.0}
    ]})
}
