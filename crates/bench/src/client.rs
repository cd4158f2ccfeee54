//! The load client: OpenAI-compatible streaming over one pool of HTTP/1.1 keep-alive
//! connections (the streaming path reads each response in its own task through
//! `vllm_sota_core::http`: no per-frame channel, many SSE events per `read`), precomputed arrival times, a FIFO concurrency cap,
//! warmup, and per-request records aggregated by [`crate::metrics`].
//!
//! Request bodies are built before the run starts and hold only fields every engine
//! accepts (vLLM, SGLang and TensorRT-LLM, whose request models forbid unknown fields):
//! `model`, `prompt`/`messages`, `max_tokens`, `min_tokens`, `ignore_eos`, `temperature`,
//! `stream`, `stream_options.include_usage`, plus a JSONL line's `extra_request_body`.

use crate::arrival::{RequestRate, arrival_offsets};
use crate::metrics::{GoodputSla, LoadSummary, RequestRecord, summarize};
use crate::sse::{SseEvent, SseParser, scan_chunk, unescape_into};
use crate::workload::{LengthStats, Prompt, TokenizerHandle, Workload};
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vllm_sota_core::http::{AsyncConn as Conn, HeadError, read_body, read_head};

/// Which OpenAI route to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `/v1/completions`
    Completions,
    /// `/v1/chat/completions`
    ChatCompletions,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Completions => "/v1/completions",
            Endpoint::ChatCompletions => "/v1/chat/completions",
        }
    }
    pub fn parse(s: &str) -> Result<Endpoint> {
        match s.trim() {
            "completions" | "/v1/completions" => Ok(Endpoint::Completions),
            "chat" | "chat-completions" | "chat_completions" | "/v1/chat/completions" => {
                Ok(Endpoint::ChatCompletions)
            }
            other => bail!("endpoint {other:?}: expected `completions` or `chat`"),
        }
    }
}

/// Everything one load run needs.
#[derive(Clone)]
pub struct LoadConfig {
    /// `http://host:port` (an optional path prefix is kept, e.g. `http://h:8000/proxy`).
    pub base_url: String,
    /// The served model name sent as `model`.
    pub model: String,
    pub endpoint: Endpoint,
    pub workload: Workload,
    pub request_rate: RequestRate,
    /// Gamma shape of inter-arrival gaps (1 = Poisson).
    pub burstiness: f64,
    /// Most requests in flight (None = unbounded).
    pub max_concurrency: Option<usize>,
    /// Requests sent (and awaited) before measuring; excluded from metrics.
    pub warmup_requests: usize,
    pub seed: u64,
    pub temperature: f64,
    /// Send `ignore_eos: true` (forces output length on every engine).
    pub ignore_eos: bool,
    /// Send `min_tokens = max_tokens`.
    pub send_min_tokens: bool,
    pub sla: GoodputSla,
    /// For the re-tokenizing output-count cross-check (done after the run, off the hot path).
    pub tokenizer: Option<TokenizerHandle>,
    /// Keep generated texts in the records.
    pub keep_text: bool,
    /// Per-request wall-clock limit.
    pub request_timeout: Duration,
    /// Bearer token for `Authorization` (never logged).
    pub api_key: Option<String>,
    /// Set to stop the run early (remaining requests are not sent).
    pub cancel: Option<Arc<AtomicBool>>,
    /// Counters a caller watches while the run goes on (e.g. to act once every
    /// sequence is past its prefill).
    pub live: Option<Arc<LiveCounters>>,
}

/// Live progress of a run: requests that received their first token chunk, and
/// requests that ended (succeeded or failed), warmup included.
#[derive(Debug, Default)]
pub struct LiveCounters {
    pub first_token: AtomicU64,
    pub ended: AtomicU64,
    pub failed: AtomicU64,
    /// The error of the first request that failed (what a watcher reports).
    pub first_error: std::sync::OnceLock<String>,
}

impl LoadConfig {
    /// Defaults: completions, `inf` rate, Poisson, no cap, no warmup, temperature 0,
    /// ignore_eos + min_tokens on, 10-minute request timeout.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>, workload: Workload) -> Self {
        LoadConfig {
            base_url: base_url.into(),
            model: model.into(),
            endpoint: Endpoint::Completions,
            workload,
            request_rate: RequestRate::Infinite,
            burstiness: 1.0,
            max_concurrency: None,
            warmup_requests: 0,
            seed: 0,
            temperature: 0.0,
            ignore_eos: true,
            send_min_tokens: true,
            sla: GoodputSla::default(),
            tokenizer: None,
            keep_text: false,
            request_timeout: Duration::from_secs(600),
            api_key: None,
            cancel: None,
            live: None,
        }
    }
}

/// Result of a load run.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoadReport {
    pub summary: LoadSummary,
    /// Input/output length percentiles of the workload as built.
    pub workload_stats: LengthStats,
    pub workload_source: String,
    pub endpoint: Endpoint,
    pub model: String,
    /// TCP connections the pool opened (keep-alive reuse: ≈ peak concurrency).
    pub connections_opened: u64,
    /// Every request, warmup included (flagged).
    pub records: Vec<RequestRecord>,
}

/// Builds the JSON body of one request.
pub(crate) fn request_body(
    cfg: &LoadConfig,
    req: &crate::workload::WorkloadRequest,
) -> Result<Bytes> {
    use serde_json::{Map, Value, json};
    let mut m = Map::new();
    m.insert("model".into(), json!(cfg.model));
    match &req.prompt {
        Prompt::Text(t) => {
            if cfg.endpoint != Endpoint::Completions {
                // A text prompt on the chat route becomes one user message.
                m.insert("messages".into(), json!([{"role": "user", "content": t}]));
            } else {
                m.insert("prompt".into(), json!(t));
            }
        }
        Prompt::Chat(msgs) => {
            if cfg.endpoint == Endpoint::Completions {
                bail!("a chat-message workload needs the chat endpoint (--endpoint chat)");
            }
            m.insert("messages".into(), serde_json::to_value(msgs)?);
        }
    }
    m.insert("max_tokens".into(), json!(req.output_len));
    if cfg.send_min_tokens {
        m.insert("min_tokens".into(), json!(req.output_len));
    }
    if cfg.ignore_eos {
        m.insert("ignore_eos".into(), json!(true));
    }
    m.insert("temperature".into(), json!(cfg.temperature));
    m.insert("stream".into(), json!(true));
    m.insert("stream_options".into(), json!({"include_usage": true}));
    if let Some(extra) = &req.extra_body {
        for (k, v) in extra {
            m.insert(k.clone(), v.clone());
        }
    }
    Ok(Bytes::from(serde_json::to_vec(&Value::Object(m))?))
}

/// Parsed `http://host:port/prefix`.
#[derive(Debug, Clone)]
struct Target {
    authority: String,
    prefix: String,
}

fn parse_base_url(url: &str) -> Result<Target> {
    let rest = if let Some(r) = url.strip_prefix("http://") {
        r
    } else if url.starts_with("https://") {
        bail!(
            "base URL {url:?}: https is not supported (serving engines under test listen on plain HTTP)"
        );
    } else {
        bail!("base URL {url:?}: expected http://host:port");
    };
    let (authority, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if authority.is_empty() {
        bail!("base URL {url:?}: missing host");
    }
    let authority = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok(Target {
        authority,
        prefix: prefix.to_string(),
    })
}

/// A pool of HTTP/1.1 keep-alive connections to one server: a connection returns to
/// the pool after its response body was read to the end.
pub(crate) struct ConnectionPool {
    authority: String,
    idle: Mutex<Vec<Conn>>,
    opened: AtomicU64,
}

impl ConnectionPool {
    pub(crate) fn new(authority: impl Into<String>) -> Arc<Self> {
        Arc::new(ConnectionPool {
            authority: authority.into(),
            idle: Mutex::new(Vec::new()),
            opened: AtomicU64::new(0),
        })
    }

    pub(crate) fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// An idle connection (`true`: reused) or a new one.
    async fn get(&self) -> Result<(Conn, bool)> {
        loop {
            let candidate = self.idle.lock().unwrap().pop();
            match candidate {
                Some(mut c) => {
                    if c.idle_ok() {
                        return Ok((c, true));
                    }
                }
                None => break,
            }
        }
        Ok((self.connect().await?, false))
    }

    async fn connect(&self) -> Result<Conn> {
        let c = Conn::connect(&self.authority).await?;
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(c)
    }

    fn put(&self, c: Conn) {
        self.idle.lock().unwrap().push(c);
    }
}

/// Per-stream state updated by every SSE event.
struct StreamState {
    sent: Instant,
    collect_text: bool,
    first_token: Option<Instant>,
    last_token: Option<Instant>,
    itl_ms: Vec<f64>,
    token_chunks: u64,
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    id: Option<String>,
    finish_reason: Option<String>,
    error: Option<String>,
    done: bool,
    text: String,
    live: Option<Arc<LiveCounters>>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl StreamState {
    fn on_event(&mut self, ev: SseEvent<'_>, now: Instant) {
        if self.error.is_some() {
            return;
        }
        if ev.event == Some(b"error") {
            self.error = Some(format!(
                "error event: {}",
                String::from_utf8_lossy(ev.data)
                    .chars()
                    .take(300)
                    .collect::<String>()
            ));
            return;
        }
        if ev.data.is_empty() {
            return;
        }
        if ev.is_done() {
            self.done = true;
            return;
        }
        let info = match scan_chunk(ev.data) {
            Ok(i) => i,
            Err(e) => {
                let head: String =
                    String::from_utf8_lossy(&ev.data[..ev.data.len().min(120)]).into_owned();
                self.error = Some(format!("malformed SSE data ({e}): {head}"));
                return;
            }
        };
        if let Some(e) = info.error_text() {
            self.error = Some(format!(
                "error in stream: {}",
                e.chars().take(300).collect::<String>()
            ));
            return;
        }
        if self.id.is_none()
            && let Some(id) = info.id
        {
            self.id = Some(String::from_utf8_lossy(id).into_owned());
        }
        if info.prompt_tokens.is_some() {
            self.prompt_tokens = info.prompt_tokens;
        }
        if info.completion_tokens.is_some() {
            self.completion_tokens = info.completion_tokens;
        }
        // A chunk with a choice is a token even when its text is empty (see
        // `ChunkInfo::is_token_chunk`): success, TTFT and ITL do not depend on the text.
        if info.is_token_chunk() {
            match self.last_token {
                None => {
                    self.first_token = Some(now);
                    if let Some(l) = &self.live {
                        l.first_token.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Some(prev) => self.itl_ms.push(ms(now - prev)),
            }
            self.last_token = Some(now);
            self.token_chunks += 1;
            if self.collect_text {
                if let Some(r) = info.reasoning {
                    unescape_into(r, &mut self.text);
                }
                if let Some(t) = info.text {
                    unescape_into(t, &mut self.text);
                }
            }
        }
        if let Some(f) = info.finish_reason {
            self.finish_reason = Some(String::from_utf8_lossy(f).into_owned());
        }
    }
}

/// Shared, immutable parts of the run.
struct Shared {
    pool: Arc<ConnectionPool>,
    /// Request line and headers up to (not including) `content-length`.
    head_prefix: Vec<u8>,
    timeout: Duration,
    collect_text: bool,
    live: Option<Arc<LiveCounters>>,
}

async fn one_request(
    shared: &Shared,
    body: Bytes,
    mut rec: RequestRecord,
    run_start: Instant,
) -> RequestRecord {
    let sent = Instant::now();
    rec.sent_s = (sent - run_start).as_secs_f64();
    rec.client_queue_ms = (rec.sent_s - rec.scheduled_s) * 1e3;
    let mut st = StreamState {
        sent,
        collect_text: shared.collect_text,
        first_token: None,
        last_token: None,
        itl_ms: Vec::with_capacity(rec.expected_output_len as usize),
        token_chunks: 0,
        prompt_tokens: None,
        completion_tokens: None,
        id: None,
        finish_reason: None,
        error: None,
        done: false,
        text: String::new(),
        live: shared.live.clone(),
    };
    let outcome = tokio::time::timeout(
        shared.timeout,
        stream_request(shared, body, &mut st, &mut rec),
    )
    .await;
    let end = Instant::now();
    match outcome {
        Err(_) => {
            st.error = st.error.take().or(Some(format!(
                "timed out after {:.1} s",
                shared.timeout.as_secs_f64()
            )))
        }
        Ok(Err(e)) => st.error = st.error.take().or(Some(format!("{e:#}"))),
        Ok(Ok(())) => {}
    }
    rec.stream_end_ms = Some(ms(end - st.sent));
    rec.ttft_ms = st.first_token.map(|t| ms(t - st.sent));
    rec.e2e_ms = st.last_token.map(|t| ms(t - st.sent));
    rec.itl_ms = st.itl_ms;
    rec.token_chunks = st.token_chunks;
    rec.prompt_tokens = st.prompt_tokens;
    rec.completion_tokens = st.completion_tokens;
    rec.response_id = st.id;
    rec.finish_reason = st.finish_reason;
    // Success needs one chunk with a choice (its text may be empty), as in `vllm bench
    // serve`; a stream of only role, usage or `[DONE]` events generated nothing.
    if st.error.is_none() && st.first_token.is_none() {
        st.error = Some("stream ended without any token chunk (no chunk with a choice)".into());
    }
    rec.success = st.error.is_none();
    if let Some(l) = &shared.live {
        if !rec.success {
            l.failed.fetch_add(1, Ordering::Relaxed);
            if let Some(e) = &st.error {
                let _ = l.first_error.set(e.clone());
            }
        }
        l.ended.fetch_add(1, Ordering::Relaxed);
    }
    rec.error = st.error;
    if shared.collect_text {
        rec.generated_text = Some(st.text);
    }
    rec
}

async fn stream_request(
    shared: &Shared,
    body: Bytes,
    st: &mut StreamState,
    rec: &mut RequestRecord,
) -> Result<()> {
    let mut request = Vec::with_capacity(shared.head_prefix.len() + 32 + body.len());
    request.extend_from_slice(&shared.head_prefix);
    request.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    request.extend_from_slice(&body);
    let (mut conn, mut reused) = shared.pool.get().await?;
    let head = loop {
        let attempt = match conn.write_all(&request).await {
            Ok(()) => read_head(&mut conn).await,
            Err(e) if reused => Err(HeadError::Closed(e)),
            Err(e) => Err(HeadError::Other(
                anyhow::Error::new(e).context("sending request"),
            )),
        };
        match attempt {
            Ok(h) => break h,
            // A keep-alive connection the server had closed while idle: the request was
            // never read; send it once more on a fresh connection.
            Err(HeadError::Closed(_)) if reused => {
                conn = shared.pool.connect().await?;
                reused = false;
            }
            Err(HeadError::Closed(e)) => {
                return Err(anyhow::Error::new(e).context("sending request"));
            }
            Err(HeadError::Other(e)) => return Err(e.context("sending request")),
        }
    };
    let status = head.status;
    rec.http_status = Some(status);
    let head_read_at = Instant::now();
    if !(200..300).contains(&status) {
        let mut bytes = Vec::new();
        let reusable = read_body(&mut conn, &head, head_read_at, |d, _| {
            if bytes.len() < 64 << 10 {
                bytes.extend_from_slice(d);
            }
            Ok(())
        })
        .await
        .unwrap_or(false);
        if reusable {
            shared.pool.put(conn);
        }
        let text: String = String::from_utf8_lossy(&bytes).chars().take(300).collect();
        bail!("HTTP {}: {}", status, text.trim());
    }
    let mut parser = SseParser::new();
    let mut first_byte = true;
    let sent = st.sent;
    let reusable = read_body(&mut conn, &head, head_read_at, |data, now| {
        if first_byte && !data.is_empty() {
            rec.first_byte_ms = Some(ms(now - sent));
            first_byte = false;
        }
        parser
            .feed(data, &mut |ev| st.on_event(ev, now))
            .map_err(|e| anyhow::anyhow!(e))
    })
    .await?;
    let now = Instant::now();
    parser.finish(&mut |ev| st.on_event(ev, now));
    // The body was read to its end: the connection is reusable.
    if reusable {
        shared.pool.put(conn);
    }
    Ok(())
}

/// GET `path` on the server; returns (status, body).
pub(crate) async fn http_get(base_url: &str, path: &str) -> Result<(u16, Bytes)> {
    let target = parse_base_url(base_url)?;
    let mut conn = Conn::connect(&target.authority).await?;
    let req = format!(
        "GET {}{} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
        target.prefix, path, target.authority
    );
    conn.write_all(req.as_bytes()).await?;
    let head = match read_head(&mut conn).await {
        Ok(h) => h,
        Err(HeadError::Closed(e)) => {
            return Err(anyhow::Error::new(e).context(format!("GET {base_url}{path}")));
        }
        Err(HeadError::Other(e)) => return Err(e.context(format!("GET {base_url}{path}"))),
    };
    let mut body = Vec::new();
    read_body(&mut conn, &head, Instant::now(), |d, _| {
        body.extend_from_slice(d);
        Ok(())
    })
    .await?;
    Ok((head.status, Bytes::from(body)))
}

/// The first model id of GET /v1/models (what `vllm bench serve` uses by default).
pub async fn fetch_model_id(base_url: &str) -> Result<String> {
    let (status, body) = http_get(base_url, "/v1/models").await?;
    if status != 200 {
        bail!("GET {base_url}/v1/models: HTTP {status}; pass --model");
    }
    let v: serde_json::Value = serde_json::from_slice(&body).context("GET /v1/models: not JSON")?;
    v["data"][0]["id"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| anyhow::anyhow!("GET /v1/models: no data[0].id; pass --model"))
}

/// Polls GET /v1/models until it answers 200 or `limit` passes.
pub async fn wait_ready(base_url: &str, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    while Instant::now() < deadline {
        match http_get(base_url, "/v1/models").await {
            Ok((200, _)) => return Ok(()),
            Ok((s, _)) => last = format!("HTTP {s}"),
            Err(e) => last = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!(
        "server {base_url} not ready after {:.0} s (last: {last})",
        limit.as_secs_f64()
    )
}

/// Runs one load: warmup, then the measured requests on their arrival schedule.
pub async fn run_load(cfg: LoadConfig) -> Result<LoadReport> {
    if cfg.workload.requests.is_empty() {
        bail!("workload {} has no requests", cfg.workload.source);
    }
    if cfg.max_concurrency == Some(0) {
        bail!("max_concurrency must be >= 1");
    }
    let target = parse_base_url(&cfg.base_url)?;
    let head_prefix = request_head_prefix(&cfg, &target)?;
    let bodies: Vec<Bytes> = cfg
        .workload
        .requests
        .iter()
        .map(|r| request_body(&cfg, r))
        .collect::<Result<_>>()?;
    let n = bodies.len();
    let offsets = arrival_offsets(n, cfg.request_rate, cfg.burstiness, cfg.seed)?;
    let shared = Arc::new(Shared {
        pool: ConnectionPool::new(target.authority.clone()),
        head_prefix: head_prefix.into_bytes(),
        timeout: cfg.request_timeout,
        collect_text: cfg.tokenizer.is_some() || cfg.keep_text,
        live: cfg.live.clone(),
    });
    let semaphore = cfg
        .max_concurrency
        .map(|c| Arc::new(tokio::sync::Semaphore::new(c)));

    let mut records: Vec<RequestRecord> = Vec::with_capacity(n + cfg.warmup_requests);
    run_warmup(&cfg, &shared, &bodies, &semaphore, &mut records).await?;
    let wall_s = run_measured(&cfg, &shared, bodies, &offsets, &semaphore, &mut records).await?;
    records.sort_by_key(|r| (!r.warmup, r.index));
    finish_texts(&cfg, &mut records)?;
    let summary = summarize(&records, wall_s, cfg.request_rate.per_second(), &cfg.sla);
    Ok(LoadReport {
        summary,
        workload_stats: cfg.workload.length_stats(),
        workload_source: cfg.workload.source.clone(),
        endpoint: cfg.endpoint,
        model: cfg.model.clone(),
        connections_opened: shared.pool.opened(),
        records,
    })
}

/// The request line and headers every request shares, up to (not including)
/// `content-length`; refuses a URL or API key that would break the head.
fn request_head_prefix(cfg: &LoadConfig, target: &Target) -> Result<String> {
    let path = format!("{}{}", target.prefix, cfg.endpoint.path());
    if path.bytes().any(|b| b <= b' ' || b == 0x7f)
        || target.authority.bytes().any(|b| b <= b' ' || b == 0x7f)
    {
        bail!("base URL {:?}: spaces or control characters", cfg.base_url);
    }
    let mut head_prefix = format!(
        "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\naccept: text/event-stream\r\n",
        target.authority
    );
    if let Some(k) = &cfg.api_key {
        if k.bytes().any(|b| b == b'\r' || b == b'\n') {
            bail!("api key: contains a line break");
        }
        head_prefix.push_str(&format!("authorization: Bearer {k}\r\n"));
    }
    Ok(head_prefix)
}

/// Warmup: the first workload requests (cycled), same cap, awaited before measuring; their
/// records are appended to `records`.
async fn run_warmup(
    cfg: &LoadConfig,
    shared: &Arc<Shared>,
    bodies: &[Bytes],
    semaphore: &Option<Arc<tokio::sync::Semaphore>>,
    records: &mut Vec<RequestRecord>,
) -> Result<()> {
    if cfg.warmup_requests == 0 {
        return Ok(());
    }
    let n = bodies.len();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..cfg.warmup_requests {
        let i = w % n;
        let shared = shared.clone();
        let body = bodies[i].clone();
        let sem = semaphore.clone();
        let rec = RequestRecord {
            index: i,
            warmup: true,
            expected_input_len: cfg.workload.requests[i].input_len,
            expected_output_len: cfg.workload.requests[i].output_len,
            ..Default::default()
        };
        tasks.spawn(async move {
            let _permit = match &sem {
                Some(s) => Some(s.clone().acquire_owned().await.expect("semaphore closed")),
                None => None,
            };
            one_request(&shared, body, rec, start).await
        });
    }
    while let Some(r) = tasks.join_next().await {
        records.push(r.context("warmup task panicked")?);
    }
    Ok(())
}

/// The measured requests, each sent at its arrival offset (and under the concurrency cap)
/// until the run is cancelled; their records are appended to `records`. Returns the
/// measured wall time in seconds: the run's start to the last request's end.
async fn run_measured(
    cfg: &LoadConfig,
    shared: &Arc<Shared>,
    bodies: Vec<Bytes>,
    offsets: &[f64],
    semaphore: &Option<Arc<tokio::sync::Semaphore>>,
    records: &mut Vec<RequestRecord>,
) -> Result<f64> {
    let cancelled = || {
        cfg.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    };
    let run_start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, body) in bodies.into_iter().enumerate() {
        if cancelled() {
            break;
        }
        let due = run_start + Duration::from_secs_f64(offsets[i]);
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
        let schedule_lag_ms = ms(Instant::now().saturating_duration_since(due));
        let permit = match semaphore {
            Some(s) => Some(s.clone().acquire_owned().await.expect("semaphore closed")),
            None => None,
        };
        let shared = shared.clone();
        let rec = RequestRecord {
            index: i,
            warmup: false,
            scheduled_s: offsets[i],
            schedule_lag_ms,
            expected_input_len: cfg.workload.requests[i].input_len,
            expected_output_len: cfg.workload.requests[i].output_len,
            ..Default::default()
        };
        tasks.spawn(async move {
            let r = one_request(&shared, body, rec, run_start).await;
            drop(permit);
            r
        });
    }
    let mut last_end = run_start;
    while let Some(r) = tasks.join_next().await {
        let r = r.context("request task panicked")?;
        let end = run_start
            + Duration::from_secs_f64(r.sent_s)
            + Duration::from_secs_f64(r.stream_end_ms.unwrap_or(0.0) / 1e3);
        last_end = last_end.max(end);
        records.push(r);
    }
    Ok((last_end - run_start).as_secs_f64())
}

/// The re-tokenizing cross-check, after the run so it never competes with the stream; the
/// generated texts are then dropped unless `keep_text`.
fn finish_texts(cfg: &LoadConfig, records: &mut [RequestRecord]) -> Result<()> {
    if let Some(tok) = &cfg.tokenizer {
        for r in records.iter_mut() {
            if let Some(t) = &r.generated_text {
                r.retokenized_output_tokens = Some(tok.count(t, false)? as u64);
            }
        }
    }
    if !cfg.keep_text {
        for r in records.iter_mut() {
            r.generated_text = None;
        }
    }
    Ok(())
}

/// Blocking wrapper: runs [`run_load`] on its own runtime (`worker_threads` = 1 gives a
/// current-thread runtime: one client core).
pub fn run_load_blocking(cfg: LoadConfig, worker_threads: usize) -> Result<LoadReport> {
    let rt = if worker_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads)
            .enable_all()
            .build()?
    };
    rt.block_on(run_load(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_parsing() {
        let t = parse_base_url("http://127.0.0.1:8000").unwrap();
        assert_eq!(
            (t.authority.as_str(), t.prefix.as_str()),
            ("127.0.0.1:8000", "")
        );
        let t = parse_base_url("http://host/proxy/").unwrap();
        assert_eq!(
            (t.authority.as_str(), t.prefix.as_str()),
            ("host:80", "/proxy")
        );
        assert!(
            parse_base_url("https://x")
                .unwrap_err()
                .to_string()
                .contains("https")
        );
        assert!(parse_base_url("x:1").is_err());
    }

    #[test]
    fn body_has_only_portable_fields() {
        let w = Workload {
            source: "t".into(),
            requests: vec![crate::workload::WorkloadRequest {
                prompt: Prompt::Text("hi".into()),
                input_len: Some(2),
                output_len: 7,
                extra_body: None,
            }],
        };
        let cfg = LoadConfig::new("http://h:1", "m", w.clone());
        let b: serde_json::Value =
            serde_json::from_slice(&request_body(&cfg, &w.requests[0]).unwrap()).unwrap();
        let mut keys: Vec<&str> = b.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "ignore_eos",
                "max_tokens",
                "min_tokens",
                "model",
                "prompt",
                "stream",
                "stream_options",
                "temperature"
            ]
        );
        assert_eq!(b["max_tokens"], 7);
        assert_eq!(b["stream_options"]["include_usage"], true);
    }
}
