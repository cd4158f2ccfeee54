//! The HTTP side of `sim-serve`: routes, request validation, SSE formatting in vLLM's
//! chunk shapes, fault injection and ground-truth recording.

use super::engine::{self, EngineEvent, EngineRequest, EngineStats};
use super::{Framework, SimConfig};
use crate::workload::TokenizerHandle;
use anyhow::{Context, Result, bail};
use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Body, Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::convert::Infallible;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskCx, Poll};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Server-side truth about one request: times in µs since the server started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GroundTruth {
    /// The response `id` (`cmpl-N` / `chatcmpl-N`); N is the 1-based arrival number.
    pub id: String,
    pub endpoint: String,
    pub status: u16,
    /// When the request (headers) arrived.
    pub arrival_us: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_token_us: Option<u64>,
    /// Emission time of every output token (handed to the connection).
    #[serde(default)]
    pub token_us: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_us: Option<u64>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

impl GroundTruth {
    pub fn ttft_ms(&self) -> Option<f64> {
        Some((self.first_token_us? as f64 - self.arrival_us as f64) / 1e3)
    }
    pub fn e2e_ms(&self) -> Option<f64> {
        Some((*self.token_us.last()? as f64 - self.arrival_us as f64) / 1e3)
    }
    pub fn itl_ms(&self) -> Vec<f64> {
        self.token_us
            .windows(2)
            .map(|w| (w[1] as f64 - w[0] as f64) / 1e3)
            .collect()
    }
}

struct State {
    cfg: SimConfig,
    tok: TokenizerHandle,
    /// Output token texts, each re-encoding to exactly one token (JSON-safe letters).
    words: Vec<String>,
    model_json: String,
    started: Instant,
    ready_at: Instant,
    created: u64,
    engine_tx: Option<mpsc::UnboundedSender<EngineRequest>>,
    arrivals: AtomicU64,
    completed: AtomicU64,
    stop_tx: watch::Sender<bool>,
    crashed: AtomicBool,
    /// Set when an injected crash is due: new requests wait for the cut.
    dying: AtomicBool,
    /// Prompt token counts by prompt hash: keeps tokenization (slow in debug builds) out
    /// of repeated prompts' timing; a test tool's shortcut, not engine behaviour.
    count_cache: Mutex<HashMap<u64, u64>>,
    record_gt: bool,
    gt: Mutex<Vec<GroundTruth>>,
    gt_flushed: Mutex<usize>,
    stats: Arc<Mutex<EngineStats>>,
    profiler: Arc<super::profiler::SimProfiler>,
}

impl State {
    fn count_cached(&self, text: &str, add_special: bool) -> Result<usize> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (text, add_special).hash(&mut h);
        let key = h.finish();
        if let Some(n) = self.count_cache.lock().unwrap().get(&key) {
            return Ok(*n as usize);
        }
        let n = self.tok.count(text, add_special)?;
        let mut cache = self.count_cache.lock().unwrap();
        if cache.len() > 100_000 {
            cache.clear();
        }
        cache.insert(key, n as u64);
        Ok(n)
    }
    fn us(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.started).as_micros() as u64
    }
    fn push_gt(&self, g: GroundTruth) {
        if self.record_gt {
            self.gt.lock().unwrap().push(g);
        }
    }
    fn crash(self: &Arc<Self>, why: String) {
        if self.crashed.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::error!("EngineCore encountered a fatal error: {why}");
        eprintln!("ERROR [sim-serve] EngineCore encountered a fatal error: {why}");
        let _ = self.stop_tx.send(true);
    }
}

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
        flush_gt(&self.state).await
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

fn word_table(tok: &TokenizerHandle) -> Result<Vec<String>> {
    let mut words = Vec::new();
    for &id in tok.allowed_ids() {
        let Some(piece) = tok.id_to_token(id) else {
            continue;
        };
        // Byte-level BPE marks a leading space as 'Ġ'.
        let Some(rest) = piece.strip_prefix('Ġ') else {
            continue;
        };
        if rest.len() < 2 || !rest.bytes().all(|b| b.is_ascii_lowercase()) {
            continue;
        }
        let text = tok.decode(&[id])?;
        if tok.encode(&text, false)? == [id] {
            words.push(text);
            if words.len() >= 512 {
                break;
            }
        }
    }
    if words.is_empty() {
        bail!(
            "tokenizer {}: found no single-token words to stream",
            tok.path().display()
        );
    }
    Ok(words)
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
    let kv_capacity = if cfg.zero_delay() {
        u64::MAX
    } else {
        match engine::kv_capacity_tokens(&cfg) {
            Ok(t) => t,
            Err(line) => {
                tracing::error!("{line}");
                eprintln!("ERROR [sim-serve] {line}");
                bail!("{line}");
            }
        }
    };
    if !cfg.zero_delay() {
        let msg = format!(
            "GPU KV cache size: {kv_capacity} tokens; maximum concurrency for {} tokens per request: {:.2}x",
            cfg.max_model_len,
            kv_capacity as f64 / cfg.max_model_len as f64
        );
        tracing::info!("{msg}");
        eprintln!("INFO [sim-serve] {msg}");
    }
    let words = word_table(&tok)?;
    let listener = tokio::net::TcpListener::bind((cfg.host.as_str(), cfg.port))
        .await
        .with_context(|| format!("binding {}:{}", cfg.host, cfg.port))?;
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
    {
        let st = state.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(st.ready_at.into()).await;
            tracing::info!("Application startup complete.");
            eprintln!(
                "INFO [sim-serve] Application startup complete. ({} on {})",
                st.cfg.framework.name(),
                addr
            );
        });
    }
    if !state.cfg.zero_delay() {
        // Periodic engine line, like vLLM's "Running: N reqs, Waiting: M reqs, GPU KV cache usage".
        let st = state.clone();
        tokio::spawn(async move {
            let mut stop = st.stop_tx.subscribe();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(10)) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                let s = *st.stats.lock().unwrap();
                tracing::info!(
                    "Engine 000: Running: {} reqs, Waiting: {} reqs, GPU KV cache usage: {:.1}%, steps {}",
                    s.running,
                    s.waiting,
                    100.0 * s.kv_used as f64 / kv_capacity.max(1) as f64,
                    s.steps
                );
            }
        });
    }
    let flusher = state.cfg.ground_truth.as_ref().map(|_| {
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if let Err(e) = flush_gt(&st).await {
                    tracing::warn!("ground truth: {e:#}");
                }
            }
        })
    });
    let accept_state = state.clone();
    let accept = tokio::spawn(async move {
        let mut stop = accept_state.stop_tx.subscribe();
        let mut conns = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                r = listener.accept() => {
                    let Ok((stream, _)) = r else { continue };
                    stream.set_nodelay(true).ok();
                    let st = accept_state.clone();
                    conns.spawn(async move {
                        let svc = hyper::service::service_fn(move |req| handle(st.clone(), req));
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
                _ = stop.wait_for(|s| *s) => break,
            }
            while conns.try_join_next().is_some() {}
        }
        // Dropping the listener refuses new connections; aborting cuts open streams.
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    });
    Ok(SimServer {
        addr,
        state,
        accept,
        flusher,
        kv_capacity,
    })
}

async fn flush_gt(st: &Arc<State>) -> Result<()> {
    let Some(path) = st.cfg.ground_truth.clone() else {
        return Ok(());
    };
    let batch: Vec<GroundTruth> = {
        let gt = st.gt.lock().unwrap();
        let mut done = st.gt_flushed.lock().unwrap();
        let b = gt[*done..].to_vec();
        *done = gt.len();
        b
    };
    if batch.is_empty() {
        return Ok(());
    }
    tokio::task::spawn_blocking(move || -> Result<()> {
        for g in &batch {
            vllm_sota_core::fsx::append_jsonl(&path, g)?;
        }
        Ok(())
    })
    .await?
}

type RespBody = BoxBody<Bytes, Infallible>;

fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<RespBody> {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(Full::new(body.into()).boxed())
        .expect("static response parts")
}

fn json_error(status: StatusCode, message: &str, kind: &str) -> Response<RespBody> {
    let body = serde_json::json!({"object": "error", "message": message, "type": kind, "param": null, "code": status.as_u16()});
    full(status, "application/json", body.to_string())
}

async fn handle(st: Arc<State>, req: Request<Incoming>) -> Result<Response<RespBody>, Infallible> {
    let arrival = Instant::now();
    let ready = arrival >= st.ready_at;
    let path = req.uri().path().to_string();
    let resp = match (req.method(), path.as_str()) {
        (&Method::GET, "/health") => {
            if ready {
                full(StatusCode::OK, "text/plain", "")
            } else {
                full(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "application/json",
                    r#"{"detail":"engine is starting"}"#,
                )
            }
        }
        _ if !ready => full(
            StatusCode::SERVICE_UNAVAILABLE,
            "application/json",
            r#"{"detail":"engine is starting"}"#,
        ),
        (&Method::GET, "/v1/models") => {
            let body = format!(
                r#"{{"object":"list","data":[{{"id":{m},"object":"model","created":{c},"owned_by":"{o}","root":{m},"parent":null,"max_model_len":{l}}}]}}"#,
                m = st.model_json,
                c = st.created,
                o = st.cfg.framework.name(),
                l = st.cfg.max_model_len
            );
            full(StatusCode::OK, "application/json", body)
        }
        (&Method::POST, "/v1/completions") => generate(st, req, arrival, false).await,
        (&Method::POST, "/v1/chat/completions") => generate(st, req, arrival, true).await,
        (&Method::POST, "/start_profile" | "/stop_profile") if st.profiler.routes_enabled() => {
            let start = path == "/start_profile";
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let a = if start {
                st.profiler.start(&body).await
            } else {
                st.profiler.stop().await
            };
            full(
                StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "application/json",
                a.body,
            )
        }
        _ => full(
            StatusCode::NOT_FOUND,
            "application/json",
            r#"{"detail":"Not Found"}"#,
        ),
    };
    Ok(resp)
}

/// TensorRT-LLM request fields (its pydantic models use `extra="forbid"`).
const TRTLLM_COMPLETION_FIELDS: &[&str] = &[
    "model",
    "prompt",
    "best_of",
    "echo",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "max_tokens",
    "n",
    "presence_penalty",
    "seed",
    "stop",
    "stream",
    "stream_options",
    "suffix",
    "temperature",
    "top_p",
    "user",
    "lora_request",
    "use_beam_search",
    "top_k",
    "top_p_min",
    "min_p",
    "repetition_penalty",
    "length_penalty",
    "early_stopping",
    "stop_token_ids",
    "include_stop_str_in_output",
    "ignore_eos",
    "min_tokens",
    "skip_special_tokens",
    "spaces_between_special_tokens",
    "truncate_prompt_tokens",
    "return_context_logits",
    "detokenize",
    "response_format",
    "disaggregated_params",
];
const TRTLLM_CHAT_FIELDS: &[&str] = &[
    "messages",
    "model",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "max_completion_tokens",
    "max_tokens",
    "n",
    "presence_penalty",
    "response_format",
    "seed",
    "stop",
    "stream",
    "stream_options",
    "temperature",
    "top_p",
    "tools",
    "tool_choice",
    "user",
    "best_of",
    "use_beam_search",
    "top_k",
    "min_p",
    "repetition_penalty",
    "length_penalty",
    "early_stopping",
    "stop_token_ids",
    "include_stop_str_in_output",
    "ignore_eos",
    "min_tokens",
    "skip_special_tokens",
    "spaces_between_special_tokens",
    "echo",
    "add_generation_prompt",
    "add_special_tokens",
    "documents",
    "chat_template",
    "chat_template_kwargs",
    "lora_request",
    "disaggregated_params",
    "reasoning_effort",
];

/// The dummy model's chat template (fixtures/dummy-llama-3.1-8b/tokenizer_config.json):
/// bos + per message `<|reserved_special_token_0|>role<|reserved_special_token_1|>\n\n`
/// + trimmed content + `<|reserved_special_token_2|>`, then the assistant header.
fn render_chat(messages: &[serde_json::Value]) -> Result<String, String> {
    let mut s = String::from("<|begin_of_text|>");
    for (i, m) in messages.iter().enumerate() {
        let role = m
            .get("role")
            .and_then(|r| r.as_str())
            .ok_or_else(|| format!("messages[{i}].role: expected a string"))?;
        let content = match m.get("content") {
            Some(serde_json::Value::String(c)) => c.clone(),
            Some(serde_json::Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(|t| t.as_str()))
                .collect::<Vec<_>>()
                .join(""),
            _ => return Err(format!("messages[{i}].content: expected a string")),
        };
        s.push_str("<|reserved_special_token_0|>");
        s.push_str(role);
        s.push_str("<|reserved_special_token_1|>\n\n");
        s.push_str(content.trim());
        s.push_str("<|reserved_special_token_2|>");
    }
    s.push_str("<|reserved_special_token_0|>assistant<|reserved_special_token_1|>\n\n");
    Ok(s)
}

fn bad_request(msg: &str) -> Response<RespBody> {
    json_error(StatusCode::BAD_REQUEST, msg, "BadRequestError")
}

async fn generate(
    st: Arc<State>,
    req: Request<Incoming>,
    arrival: Instant,
    chat: bool,
) -> Response<RespBody> {
    let n = st.arrivals.fetch_add(1, Ordering::SeqCst) + 1;
    let id = format!("{}-{n}", if chat { "chatcmpl" } else { "cmpl" });
    let endpoint = if chat {
        "/v1/chat/completions"
    } else {
        "/v1/completions"
    };
    let arrival_us = st.us(arrival);
    let refuse = |status: u16, fault: &str| GroundTruth {
        id: id.clone(),
        endpoint: endpoint.into(),
        status,
        arrival_us,
        scheduled_us: None,
        first_token_us: None,
        token_us: Vec::new(),
        finished_us: None,
        prompt_tokens: 0,
        completion_tokens: 0,
        fault: Some(fault.to_string()),
    };
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return bad_request(&format!("reading request body: {e}")),
    };
    let v: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(&format!("JSON decode error: {e}")),
    };
    let Some(obj) = v.as_object() else {
        return bad_request("request body must be a JSON object");
    };
    if st.cfg.framework == Framework::Trtllm {
        let allowed = if chat {
            TRTLLM_CHAT_FIELDS
        } else {
            TRTLLM_COMPLETION_FIELDS
        };
        if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
            st.push_gt(refuse(400, "extra_forbidden"));
            return bad_request(&format!(
                "1 validation error: [{{'type': 'extra_forbidden', 'loc': ('body', '{k}'), 'msg': 'Extra inputs are not permitted'}}]"
            ));
        }
    }
    if let Some(m) = obj.get("model").and_then(|m| m.as_str())
        && m != st.cfg.model
    {
        st.push_gt(refuse(404, "unknown_model"));
        return json_error(
            StatusCode::NOT_FOUND,
            &format!("The model `{m}` does not exist."),
            "NotFoundError",
        );
    }
    // Greedy answers depend on the prompt only: the same prompt gives the same tokens.
    let key_of = |s: &str| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        s.hash(&mut h);
        h.finish()
    };
    let (prompt_tokens, prompt_key) = if chat {
        let Some(msgs) = obj.get("messages").and_then(|m| m.as_array()) else {
            return bad_request("`messages` is required (a list)");
        };
        match render_chat(msgs) {
            Ok(text) => (st.count_cached(&text, false), key_of(&text)),
            Err(e) => return bad_request(&e),
        }
    } else {
        match obj.get("prompt") {
            Some(serde_json::Value::String(p)) => (st.count_cached(p, true), key_of(p)),
            Some(serde_json::Value::Array(a)) if a.iter().all(|x| x.is_u64()) => (
                Ok(a.len()),
                key_of(&serde_json::Value::Array(a.clone()).to_string()),
            ),
            Some(serde_json::Value::Array(a)) if a.len() == 1 && a[0].is_string() => {
                let p = a[0].as_str().unwrap_or("");
                (st.count_cached(p, true), key_of(p))
            }
            _ => return bad_request("`prompt` is required (a string or a list of token ids)"),
        }
    };
    let prompt_tokens = match prompt_tokens {
        Ok(p) => p as u64,
        Err(e) => return bad_request(&format!("tokenizing the prompt: {e:#}")),
    };
    let max_len = st.cfg.max_model_len as u64;
    let requested = obj
        .get(if chat {
            "max_completion_tokens"
        } else {
            "max_tokens"
        })
        .and_then(|x| x.as_u64())
        .or_else(|| obj.get("max_tokens").and_then(|x| x.as_u64()));
    let max_tokens = match requested {
        Some(m) => m,
        None if chat => max_len.saturating_sub(prompt_tokens),
        None => 16,
    };
    if max_tokens == 0 {
        return bad_request("max_tokens must be at least 1");
    }
    if prompt_tokens + max_tokens > max_len {
        st.push_gt(refuse(400, "context_length"));
        return bad_request(&format!(
            "This model's maximum context length is {max_len} tokens. However, you requested {} tokens ({prompt_tokens} in the messages, {max_tokens} in the completion). Please reduce the length of the messages or completion.",
            prompt_tokens + max_tokens
        ));
    }
    let stream = obj.get("stream").and_then(|s| s.as_bool()).unwrap_or(false);
    let include_usage = obj
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(|b| b.as_bool())
        .unwrap_or(false);
    if st
        .cfg
        .faults
        .error_5xx_every
        .is_some_and(|k| n.is_multiple_of(k))
    {
        st.push_gt(refuse(500, "http_500"));
        return json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal server error (injected fault)",
            "InternalServerError",
        );
    }
    if st.cfg.faults.hang_after.is_some_and(|h| n > h) || st.dying.load(Ordering::SeqCst) {
        // Accepted, never answered: the engine is wedged (or about to die). Stopping the
        // server cuts the connection under this future.
        std::future::pending::<()>().await;
    }
    // Completions: `logprobs: <int>`; chat: `logprobs: true` (OpenAI API shapes).
    let logprobs = match obj.get("logprobs") {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::Number(_)) => true,
        _ => false,
    };
    let fmt = Formatter::new(&st, &id, chat, n, prompt_key);
    let gt = GroundTruth {
        id: id.clone(),
        endpoint: endpoint.into(),
        status: 200,
        arrival_us,
        scheduled_us: None,
        first_token_us: None,
        token_us: Vec::with_capacity(max_tokens as usize),
        finished_us: None,
        prompt_tokens,
        completion_tokens: 0,
        fault: None,
    };
    let job = Job {
        st: st.clone(),
        fmt,
        gt,
        stream,
        include_usage,
        max_tokens,
        text: String::new(),
        logprobs,
        tokens: Vec::new(),
    };
    if st.cfg.zero_delay() {
        let (tx, rx) = mpsc::channel::<Bytes>(4);
        tokio::spawn(zero_delay_stream(job, tx));
        return stream_response(stream, ChannelBody::Bounded(rx));
    }
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    let mut job = job;
    let sink: engine::Sink = Box::new(move |ev, at| job.on_event(ev, at, &tx));
    let Some(engine) = &st.engine_tx else {
        return json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no engine",
            "InternalServerError",
        );
    };
    if engine
        .send(EngineRequest {
            prompt_tokens,
            max_tokens,
            sink,
        })
        .is_err()
    {
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "engine is dead",
            "EngineDeadError",
        );
    }
    stream_response(stream, ChannelBody::Unbounded(rx))
}

fn stream_response(stream: bool, body: ChannelBody) -> Response<RespBody> {
    Response::builder()
        .status(StatusCode::OK)
        .header(
            hyper::header::CONTENT_TYPE,
            if stream {
                "text/event-stream; charset=utf-8"
            } else {
                "application/json"
            },
        )
        .body(body.boxed())
        .expect("static response parts")
}

/// Precomputed pieces of one request's SSE chunks.
struct Formatter {
    head: Vec<u8>,
    chat: bool,
    words_offset: usize,
    prompt_key: u64,
    /// `--sim-broken-patch`: from the third token on, answers differ from the real ones.
    broken_patch: bool,
    malformed_at: Option<u64>,
    error_at: Option<u64>,
    reasoning_tokens: u64,
    comment_every: u64,
}

impl Formatter {
    fn new(st: &State, id: &str, chat: bool, n: u64, prompt_key: u64) -> Formatter {
        let object = if chat {
            "chat.completion.chunk"
        } else {
            "text_completion"
        };
        let head = format!(
            r#"{{"id":"{id}","object":"{object}","created":{},"model":{},"#,
            st.created, st.model_json
        )
        .into_bytes();
        let every = |k: Option<u64>| k.is_some_and(|k| n.is_multiple_of(k));
        Formatter {
            head,
            chat,
            words_offset: (prompt_key % st.words.len() as u64) as usize,
            prompt_key,
            broken_patch: st.cfg.broken_patch,
            malformed_at: every(st.cfg.faults.malformed_every).then_some(0),
            error_at: every(st.cfg.faults.error_event_every).then_some(0),
            reasoning_tokens: if chat { st.cfg.reasoning_tokens } else { 0 },
            comment_every: st.cfg.comment_every,
        }
    }

    fn role_chunk(&self, out: &mut BytesMut) {
        out.put_slice(b"data: ");
        out.put_slice(&self.head);
        out.put_slice(br#""choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#);
        out.put_slice(b"\n\n");
    }

    fn token_chunk(&self, out: &mut BytesMut, word: &str, index: u64, last: bool) {
        if self.comment_every > 0 && index > 0 && index.is_multiple_of(self.comment_every) {
            out.put_slice(b": keep-alive\n\n");
        }
        out.put_slice(b"data: ");
        out.put_slice(&self.head);
        let finish: &[u8] = if last { br#""length""# } else { b"null" };
        if self.chat {
            let field: &[u8] = if index < self.reasoning_tokens {
                b"reasoning_content"
            } else {
                b"content"
            };
            out.put_slice(br#""choices":[{"index":0,"delta":{""#);
            out.put_slice(field);
            out.put_slice(br#"":""#);
            out.put_slice(word.as_bytes());
            out.put_slice(br#""},"logprobs":null,"finish_reason":"#);
            out.put_slice(finish);
            out.put_slice(b"}]}\n\n");
        } else {
            out.put_slice(br#""choices":[{"index":0,"text":""#);
            out.put_slice(word.as_bytes());
            out.put_slice(br#"","logprobs":null,"finish_reason":"#);
            out.put_slice(finish);
            out.put_slice(br#","stop_reason":null}],"usage":null}"#);
            out.put_slice(b"\n\n");
        }
    }

    fn usage_chunk(&self, out: &mut BytesMut, prompt: u64, completion: u64) {
        out.put_slice(b"data: ");
        out.put_slice(&self.head);
        let u = format!(
            r#""choices":[],"usage":{{"prompt_tokens":{prompt},"total_tokens":{},"completion_tokens":{completion}}}}}"#,
            prompt + completion
        );
        out.put_slice(u.as_bytes());
        out.put_slice(b"\n\n");
    }
}

/// One request's generation state.
struct Job {
    st: Arc<State>,
    fmt: Formatter,
    gt: GroundTruth,
    stream: bool,
    include_usage: bool,
    max_tokens: u64,
    /// Non-streaming responses accumulate their text.
    text: String,
    /// Logprobs were asked for (returned in non-streaming answers).
    logprobs: bool,
    /// Non-streaming: (token, logprob) per output token.
    tokens: Vec<(String, f64)>,
}

enum Step {
    Continue,
    Stop,
}

impl Job {
    /// Output token `index`: a function of the prompt (greedy), shifted from the third
    /// token on in broken-patch mode.
    fn word(&self, index: u64) -> &str {
        let w = &self.st.words;
        let shift = if self.fmt.broken_patch && index >= 2 {
            1
        } else {
            0
        };
        &w[(self.fmt.words_offset + index as usize + shift) % w.len()]
    }

    /// Deterministic logprob of output token `index` (in (-1, 0)).
    fn logprob(&self, index: u64) -> f64 {
        let shift = if self.fmt.broken_patch && index >= 2 {
            1
        } else {
            0
        };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.fmt.prompt_key, index + shift).hash(&mut h);
        -((h.finish() % 997) as f64 + 1.0) / 1000.0
    }

    /// Formats token `index` into `out`, applying mid-stream faults.
    fn token(&mut self, index: u64, at: Instant, out: &mut BytesMut) -> Step {
        let t = self.st.us(at);
        if self.gt.first_token_us.is_none() {
            self.gt.first_token_us = Some(t);
        }
        self.gt.token_us.push(t);
        self.gt.completion_tokens = index + 1;
        let mid = self.max_tokens / 2;
        if self.stream && self.fmt.malformed_at.is_some() && index == mid {
            out.put_slice(b"data: {\"choices\":[{\"index\":0,\"text\":\"trunc\n\n");
            self.gt.fault = Some("malformed_sse".into());
        }
        if self.stream && self.fmt.error_at.is_some() && index == mid {
            out.put_slice(b"data: {\"error\":{\"object\":\"error\",\"message\":\"injected engine error\",\"type\":\"InternalServerError\",\"param\":null,\"code\":500}}\n\ndata: [DONE]\n\n");
            self.gt.fault = Some("error_event".into());
            self.gt.status = 500;
            return Step::Stop;
        }
        let last = index + 1 == self.max_tokens;
        if self.stream {
            let word = self.word(index).to_string();
            self.fmt.token_chunk(out, &word, index, last);
        } else {
            let word = self.word(index).to_string();
            self.text.push_str(&word);
            if self.logprobs {
                let lp = self.logprob(index);
                self.tokens.push((word, lp));
            }
        }
        Step::Continue
    }

    /// Final chunks (usage, `[DONE]`) or the whole JSON body; records ground truth.
    fn finish(&mut self, at: Instant, out: &mut BytesMut) {
        self.gt.finished_us = Some(self.st.us(at));
        let (p, c) = (self.gt.prompt_tokens, self.gt.completion_tokens);
        if self.stream {
            if self.include_usage {
                self.fmt.usage_chunk(out, p, c);
            }
            out.put_slice(b"data: [DONE]\n\n");
        } else {
            let (object, mut choice) = if self.fmt.chat {
                (
                    "chat.completion",
                    serde_json::json!({"index": 0, "message": {"role": "assistant", "content": self.text}, "logprobs": null, "finish_reason": "length"}),
                )
            } else {
                (
                    "text_completion",
                    serde_json::json!({"index": 0, "text": self.text, "logprobs": null, "finish_reason": "length"}),
                )
            };
            if self.logprobs {
                choice["logprobs"] = if self.fmt.chat {
                    serde_json::json!({"content": self.tokens.iter().map(|(t, lp)| serde_json::json!({"token": t, "logprob": lp, "bytes": t.as_bytes(), "top_logprobs": []})).collect::<Vec<_>>()})
                } else {
                    let mut offset = 0usize;
                    let offsets: Vec<usize> = self
                        .tokens
                        .iter()
                        .map(|(t, _)| {
                            let o = offset;
                            offset += t.len();
                            o
                        })
                        .collect();
                    serde_json::json!({
                        "text_offset": offsets,
                        "token_logprobs": self.tokens.iter().map(|(_, lp)| *lp).collect::<Vec<_>>(),
                        "tokens": self.tokens.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>(),
                        "top_logprobs": self.tokens.iter().map(|(t, lp)| serde_json::json!({t.clone(): lp})).collect::<Vec<_>>(),
                    })
                };
            }
            let body = serde_json::json!({
                "id": self.gt.id, "object": object, "created": self.st.created, "model": self.st.cfg.model,
                "choices": [choice],
                "usage": {"prompt_tokens": p, "total_tokens": p + c, "completion_tokens": c}
            });
            out.put_slice(body.to_string().as_bytes());
        }
        self.record_and_count();
    }

    fn record_and_count(&mut self) {
        let g = std::mem::replace(
            &mut self.gt,
            GroundTruth {
                id: String::new(),
                endpoint: String::new(),
                status: 0,
                arrival_us: 0,
                scheduled_us: None,
                first_token_us: None,
                token_us: Vec::new(),
                finished_us: None,
                prompt_tokens: 0,
                completion_tokens: 0,
                fault: None,
            },
        );
        let ok = g.fault.is_none();
        self.st.push_gt(g);
        if ok {
            let done = self.st.completed.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some(limit) = self.st.cfg.faults.crash_after
                && done >= limit
            {
                // Let the last stream's final bytes leave before dying; requests that
                // arrive meanwhile wait for the cut.
                self.st.dying.store(true, Ordering::SeqCst);
                let st = self.st.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    st.crash(format!("injected crash after {done} completed requests"));
                });
            }
        }
    }

    fn on_event(
        &mut self,
        ev: EngineEvent,
        at: Instant,
        tx: &mpsc::UnboundedSender<Bytes>,
    ) -> bool {
        let mut out = BytesMut::with_capacity(320);
        match ev {
            EngineEvent::Scheduled => {
                self.gt.scheduled_us = Some(self.st.us(at));
                if self.stream && self.fmt.chat {
                    self.fmt.role_chunk(&mut out);
                }
            }
            EngineEvent::Token { index } => {
                // Ground truth is the hand-off time of this token to its connection, not
                // the step's end: formatting a 1,000-sequence step takes time.
                let at = Instant::now();
                if let Step::Stop = self.token(index, at, &mut out) {
                    self.gt.finished_us = Some(self.st.us(at));
                    let _ = tx.send(out.freeze());
                    self.record_and_count();
                    return false;
                }
            }
            EngineEvent::Finished => self.finish(at, &mut out),
        }
        if out.is_empty() {
            return !tx.is_closed();
        }
        tx.send(out.freeze()).is_ok()
    }
}

/// Zero-delay mode: every token as fast as the connection takes them, `batch` events per write.
async fn zero_delay_stream(mut job: Job, tx: mpsc::Sender<Bytes>) {
    let batch = job.st.cfg.zero_delay_batch.max(1) as u64;
    let mut out = BytesMut::with_capacity(320 * batch as usize);
    let now = Instant::now();
    job.gt.scheduled_us = Some(job.st.us(now));
    if job.stream && job.fmt.chat {
        job.fmt.role_chunk(&mut out);
    }
    let mut t = now;
    for index in 0..job.max_tokens {
        if index % batch == 0 {
            t = Instant::now();
        }
        if let Step::Stop = job.token(index, t, &mut out) {
            job.gt.finished_us = Some(job.st.us(t));
            let _ = tx.send(out.split().freeze()).await;
            job.record_and_count();
            return;
        }
        if (index + 1) % batch == 0 && job.stream && tx.send(out.split().freeze()).await.is_err() {
            return;
        }
    }
    job.finish(Instant::now(), &mut out);
    let _ = tx.send(out.split().freeze()).await;
}

/// A response body fed by a channel of ready-made byte chunks.
enum ChannelBody {
    Unbounded(mpsc::UnboundedReceiver<Bytes>),
    Bounded(mpsc::Receiver<Bytes>),
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskCx<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let polled = match this {
            ChannelBody::Unbounded(rx) => rx.poll_recv(cx),
            ChannelBody::Bounded(rx) => rx.poll_recv(cx),
        };
        polled.map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}
