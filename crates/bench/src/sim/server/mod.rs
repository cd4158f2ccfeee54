//! The HTTP side of `sim-serve`, one responsibility per module:
//! - [`truth`]: per-request ground truth (arrival, first token, every token);
//! - [`state`]: the state one running simulator shares, and the words it streams;
//! - [`routes`]: HTTP routes, JSON errors, the channel-fed streaming body;
//! - [`request`]: validation of generation requests as each engine does it, request-level
//!   faults, the hand-off to the engine;
//! - [`stream`]: SSE chunks in vLLM's shapes (or one JSON body), mid-stream faults, the
//!   zero-delay path;
//! - [`tasks`]: the background tasks (accept loop, engine log line, ground-truth flusher);
//! - this module: starting, serving and stopping a simulator.

mod request;
mod routes;
mod state;
mod stream;
mod tasks;
mod truth;

pub use truth::GroundTruth;

use super::SimConfig;
use super::engine::{self, EngineStats};
use crate::workload::TokenizerHandle;
use anyhow::{Result, bail};
use state::{State, word_table};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, watch};

/// A running simulator.
pub struct SimServer {
    addr: SocketAddr,
    state: Arc<State>,
    accept: tokio::task::JoinHandle<()>,
    flusher: Option<tokio::task::JoinHandle<()>>,
    kv_capacity: u64,
}

impl SimServer {
    /// Starts the simulator in-process (ground truth kept in memory, and appended to
    /// `cfg.ground_truth` when set). `cfg.port = 0` picks a free port. Errors with the
    /// OOM-like line when the configuration cannot fit.
    pub async fn start(cfg: SimConfig) -> Result<SimServer> {
        start_inner(cfg, true, None).await
    }

    /// Like [`SimServer::start`] with an already loaded tokenizer (tests share one).
    pub async fn start_with_tokenizer(cfg: SimConfig, tok: TokenizerHandle) -> Result<SimServer> {
        start_inner(cfg, true, Some(tok)).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Tokenizes these completions prompts now, so serving them later takes no
    /// tokenization time: the simulator tokenizes with the real tokenizer, which in a
    /// debug build takes far longer than an engine's front end does, and a timed test
    /// should not measure that. Chat messages are rendered with the template first.
    pub fn precount_prompts(&self, prompts: &[crate::workload::Prompt]) -> Result<()> {
        for p in prompts {
            match p {
                crate::workload::Prompt::Text(t) => {
                    self.state.count_cached(t, true)?;
                }
                crate::workload::Prompt::Chat(msgs) => {
                    let v = serde_json::to_value(msgs)?;
                    let text =
                        request::render_chat(v.as_array().map(|a| a.as_slice()).unwrap_or(&[]))
                            .map_err(|e| anyhow::anyhow!(e))?;
                    self.state.count_cached(&text, false)?;
                }
            }
        }
        Ok(())
    }

    pub fn kv_capacity_tokens(&self) -> u64 {
        self.kv_capacity
    }

    /// Ground truth of every request answered so far (finished or refused).
    pub fn ground_truth(&self) -> Vec<GroundTruth> {
        self.state.gt.lock().unwrap().clone()
    }

    pub fn crashed(&self) -> bool {
        self.state.crashed.load(Ordering::SeqCst)
    }

    /// Waits until the server stops (a crash fault or [`SimServer::shutdown`]).
    pub async fn stopped(&self) {
        let mut rx = self.state.stop_tx.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Stops listening, drops open connections, flushes ground truth.
    pub async fn shutdown(mut self) -> Result<()> {
        let _ = self.state.stop_tx.send(true);
        let _ = (&mut self.accept).await;
        if let Some(f) = self.flusher.take() {
            f.abort();
        }
        tasks::flush_gt(&self.state).await
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        let _ = self.state.stop_tx.send(true);
        self.accept.abort();
        if let Some(f) = self.flusher.take() {
            f.abort();
        }
    }
}

/// CLI entry: starts, logs like an engine, serves until Ctrl-C or a crash fault (then Err).
pub async fn serve(cfg: SimConfig) -> Result<()> {
    let record = cfg.ground_truth.is_some();
    let server = start_inner(cfg, record, None).await?;
    eprintln!("INFO [sim-serve] listening on {}", server.base_url());
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {
            eprintln!("INFO [sim-serve] shutting down");
            server.shutdown().await
        }
        _ = server.stopped() => {
            let crashed = server.crashed();
            let done = server.state.completed.load(Ordering::SeqCst);
            server.shutdown().await?;
            if crashed {
                bail!("EngineDeadError: engine crashed (injected fault) after {done} completed requests");
            }
            Ok(())
        }
    }
}

/// The KV capacity the configuration gives, or the engine's start-up failure line
/// (logged, then returned as the error).
fn kv_capacity_or_refuse(cfg: &SimConfig) -> Result<u64> {
    if cfg.zero_delay() {
        return Ok(u64::MAX);
    }
    let kv_capacity = match engine::kv_capacity_tokens(cfg) {
        Ok(t) => t,
        Err(line) => {
            tracing::error!("{line}");
            eprintln!("ERROR [sim-serve] {line}");
            bail!("{line}");
        }
    };
    let msg = format!(
        "GPU KV cache size: {kv_capacity} tokens; maximum concurrency for {} tokens per request: {:.2}x",
        cfg.max_model_len,
        kv_capacity as f64 / cfg.max_model_len as f64
    );
    tracing::info!("{msg}");
    eprintln!("INFO [sim-serve] {msg}");
    Ok(kv_capacity)
}

async fn start_inner(
    cfg: SimConfig,
    record_gt: bool,
    tok: Option<TokenizerHandle>,
) -> Result<SimServer> {
    cfg.validate()?;
    let tok = match tok {
        Some(t) => t,
        None => {
            let tok_path = cfg.tokenizer.clone().ok_or_else(|| {
                anyhow::anyhow!("sim-serve needs a tokenizer: pass --tokenizer <tokenizer.json> (or a model directory holding one)")
            })?;
            TokenizerHandle::load(&tok_path)?
        }
    };
    let kv_capacity = kv_capacity_or_refuse(&cfg)?;
    let words = word_table(&tok)?;
    let listener = tokio::net::TcpListener::bind((cfg.host.as_str(), cfg.port))
        .await
        .map_err(|e| anyhow::anyhow!("binding {}:{}: {e}", cfg.host, cfg.port))?;
    let addr = listener.local_addr()?;
    let (stop_tx, _) = watch::channel(false);
    let stats = Arc::new(Mutex::new(EngineStats::default()));
    let profiler = Arc::new(super::profiler::SimProfiler::new(&cfg)?);
    let engine_tx = if cfg.zero_delay() {
        None
    } else {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(engine::run_engine(
            cfg.clone(),
            kv_capacity,
            rx,
            stop_tx.subscribe(),
            stats.clone(),
            profiler.clone(),
        ));
        Some(tx)
    };
    let started = Instant::now();
    let state = Arc::new(State {
        model_json: serde_json::to_string(&cfg.model)?,
        ready_at: started + cfg.faults.slow_start,
        cfg,
        tok,
        words,
        started,
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        engine_tx,
        arrivals: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        stop_tx,
        crashed: AtomicBool::new(false),
        dying: AtomicBool::new(false),
        count_cache: Mutex::new(HashMap::new()),
        record_gt,
        gt: Mutex::new(Vec::new()),
        gt_flushed: Mutex::new(0),
        stats,
        profiler,
    });
    tasks::spawn_log_lines(&state, addr, kv_capacity);
    let flusher = tasks::spawn_flusher(&state);
    let accept = tasks::spawn_accept(listener, state.clone());
    Ok(SimServer {
        addr,
        state,
        accept,
        flusher,
        kv_capacity,
    })
}
