//! `profile_capture`: live capture against a running server, prefill and decode separately.
//!
//! Per stage: warmup requests, `POST /start_profile`, capture requests (unique prompts so a
//! prefix cache cannot shortcut prefill), `POST /stop_profile`, wait for the trace files
//! the server writes into its profiler directory, move them to `<out_dir>/<stage>/`, and
//! verify the window holds GPU kernels. Small blocking HTTP/1.1 client over `TcpStream`.

use anyhow::{Context, Result, bail};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use vllm_sota_core::tool::{Tool, ToolContext};

pub struct ProfileCapture;

fn d_warm() -> usize {
    2
}
fn d_cap() -> usize {
    4
}
fn d_in() -> usize {
    4000
}
fn d_out() -> usize {
    256
}
fn d_timeout() -> u64 {
    180
}
fn d_stages() -> Vec<String> {
    vec!["prefill".into(), "decode".into()]
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileCaptureRequest {
    /// Server base URL, e.g. `http://127.0.0.1:8000`.
    pub base_url: String,
    /// `vllm`, `sglang` or `tokenspeed` (same /start_profile and /stop_profile routes).
    pub framework: String,
    /// Served model name; read from GET /v1/models when omitted.
    #[serde(default)]
    pub model: Option<String>,
    /// The server's profiler output directory as seen from here (vLLM `torch_profiler_dir`;
    /// for SGLang/TokenSpeed it is sent as `output_dir`).
    pub trace_dir: PathBuf,
    /// Where captured traces go: `<out_dir>/<stage>/`.
    pub out_dir: PathBuf,
    /// Stages to capture, in order (default prefill then decode).
    #[serde(default = "d_stages")]
    pub stages: Vec<String>,
    /// Prefill prompt length in words (≈ tokens) with 1 output token (default 4000).
    #[serde(default = "d_in")]
    pub prefill_input_words: usize,
    /// Decode output tokens with a 1-word prompt (default 256).
    #[serde(default = "d_out")]
    pub decode_output_tokens: usize,
    /// Requests before the profiler starts (default 2).
    #[serde(default = "d_warm")]
    pub warmup_requests: usize,
    /// Requests inside the profiler window (default 4).
    #[serde(default = "d_cap")]
    pub capture_requests: usize,
    /// Seconds to wait for trace files after /stop_profile (default 180).
    #[serde(default = "d_timeout")]
    pub timeout_s: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CapturedStage {
    pub stage: String,
    pub traces: Vec<PathBuf>,
    pub worker_trace: PathBuf,
    pub kernels: u64,
    pub requests_ok: usize,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ProfileCaptureReport {
    pub framework: String,
    pub model: String,
    pub stages: Vec<CapturedStage>,
    /// Pass this to profile_tables as `trace`.
    pub out_dir: PathBuf,
}

struct Url {
    host: String,
    port: u16,
    base_path: String,
}

fn parse_url(u: &str) -> Result<Url> {
    let rest = u
        .strip_prefix("http://")
        .with_context(|| format!("base_url {u:?}: only http:// URLs are supported"))?;
    let (hostport, path) = rest
        .split_once('/')
        .map(|(a, b)| (a, format!("/{b}")))
        .unwrap_or((rest, String::new()));
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (
            h.to_string(),
            p.parse()
                .with_context(|| format!("base_url {u:?}: bad port"))?,
        ),
        None => (hostport.to_string(), 80),
    };
    Ok(Url {
        host,
        port,
        base_path: path.trim_end_matches('/').to_string(),
    })
}

/// One blocking HTTP/1.1 request; returns (status, body).
pub fn http(
    base: &str,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
    timeout: Duration,
) -> Result<(u16, String)> {
    let u = parse_url(base)?;
    let mut s = TcpStream::connect((u.host.as_str(), u.port))
        .with_context(|| format!("cannot connect to {base}"))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let req = format!(
        "{method} {}{path} HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
        u.base_path,
        u.host,
        u.port,
        payload.len()
    );
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .with_context(|| format!("{method} {path}: reading the response"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("{method} {path}: malformed HTTP response"))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("{method} {path}: no status code"))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn dechunk(b: &str) -> String {
    let mut out = String::new();
    let mut rest = b;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

fn prompt(i: usize, words: usize) -> String {
    // Unique first word (and seed) per request: a prefix cache cannot serve it.
    let mut p = format!("profile_probe_{i}");
    for _ in 1..words.max(1) {
        p.push_str(" profile");
    }
    p
}

fn send(
    req: &ProfileCaptureRequest,
    model: &str,
    i: usize,
    words: usize,
    max_tokens: usize,
) -> Result<()> {
    let t = Duration::from_secs(req.timeout_s.max(30));
    let (path, body) = if req.framework == "sglang" {
        (
            "/generate",
            serde_json::json!({"text": prompt(i, words), "sampling_params": {"max_new_tokens": max_tokens, "temperature": 0, "ignore_eos": true}}),
        )
    } else {
        (
            "/v1/completions",
            serde_json::json!({"model": model, "prompt": prompt(i, words), "max_tokens": max_tokens, "temperature": 0, "ignore_eos": true, "seed": i}),
        )
    };
    let (code, text) = http(&req.base_url, "POST", path, Some(&body), t)?;
    if code != 200 {
        bail!(
            "POST {path} returned HTTP {code}: {}",
            text.chars().take(300).collect::<String>()
        );
    }
    Ok(())
}

fn new_files(dir: &Path, since: SystemTime) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| {
        p.is_file()
            && crate::discover::looks_like_trace(p)
            && std::fs::metadata(p)
                .and_then(|m| m.modified())
                .map(|m| m >= since)
                .unwrap_or(false)
    });
    v.sort();
    v
}

pub fn run_capture(req: &ProfileCaptureRequest, ctx: &ToolContext) -> Result<ProfileCaptureReport> {
    if !matches!(req.framework.as_str(), "vllm" | "sglang" | "tokenspeed") {
        bail!(
            "framework {:?}: live capture supports vllm, sglang and tokenspeed; for TensorRT-LLM set TLLM_PROFILE_START_STOP and TLLM_TORCH_PROFILE_TRACE and analyze the written traces with profile_tables",
            req.framework
        );
    }
    std::fs::create_dir_all(&req.trace_dir)
        .with_context(|| format!("field `trace_dir` ({})", req.trace_dir.display()))?;
    let short = Duration::from_secs(30);
    let model = match &req.model {
        Some(m) => m.clone(),
        None if req.framework == "sglang" => "default".into(),
        None => {
            let (code, body) = http(&req.base_url, "GET", "/v1/models", None, short)?;
            if code != 200 {
                bail!("GET /v1/models returned HTTP {code}; pass `model`");
            }
            let v: serde_json::Value =
                serde_json::from_str(&body).context("GET /v1/models: not JSON")?;
            v["data"][0]["id"]
                .as_str()
                .context("GET /v1/models: no data[0].id; pass `model`")?
                .to_string()
        }
    };
    let mut stages = Vec::new();
    let mut seq = 0usize;
    for (si, stage) in req.stages.iter().enumerate() {
        ctx.check_cancelled()?;
        let (words, max_tokens) = match stage.as_str() {
            "prefill" => (req.prefill_input_words, 1),
            "decode" => (1, req.decode_output_tokens),
            other => bail!("stages: unknown stage {other:?} (prefill, decode)"),
        };
        ctx.progress(
            si as f64,
            Some(req.stages.len() as f64),
            &format!("{stage}: warmup"),
        );
        for _ in 0..req.warmup_requests {
            send(req, &model, seq, words, max_tokens)?;
            seq += 1;
        }
        let started = SystemTime::now() - Duration::from_secs(1);
        let start_body = if req.framework == "vllm" {
            None
        } else {
            Some(
                serde_json::json!({"output_dir": req.trace_dir, "activities": ["CPU", "GPU"], "with_stack": true, "record_shapes": true, "profile_id": format!("capture-{stage}")}),
            )
        };
        let (code, text) = http(
            &req.base_url,
            "POST",
            "/start_profile",
            start_body.as_ref(),
            short,
        )?;
        if code != 200 {
            bail!(
                "POST /start_profile returned HTTP {code}: {} (vLLM needs --profiler-config with a torch_profiler_dir)",
                text.chars().take(300).collect::<String>()
            );
        }
        let mut ok = 0;
        for _ in 0..req.capture_requests {
            send(req, &model, seq, words, max_tokens)?;
            seq += 1;
            ok += 1;
        }
        let (code, text) = http(
            &req.base_url,
            "POST",
            "/stop_profile",
            None,
            Duration::from_secs(req.timeout_s.max(30)),
        )?;
        if code != 200 {
            bail!(
                "POST /stop_profile returned HTTP {code}: {}",
                text.chars().take(300).collect::<String>()
            );
        }
        // Wait for files to appear and stop growing.
        let deadline = Instant::now() + Duration::from_secs(req.timeout_s);
        let mut files;
        let mut last_sizes: Vec<u64> = Vec::new();
        loop {
            files = new_files(&req.trace_dir, started);
            let sizes: Vec<u64> = files
                .iter()
                .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
                .collect();
            if !files.is_empty() && sizes == last_sizes {
                break;
            }
            last_sizes = sizes;
            if Instant::now() > deadline {
                if files.is_empty() {
                    bail!(
                        "no trace file appeared in {} within {} s after /stop_profile: is `trace_dir` the server's profiler directory (vLLM torch_profiler_dir)?",
                        req.trace_dir.display(),
                        req.timeout_s
                    );
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        let stage_dir = req.out_dir.join(stage);
        std::fs::create_dir_all(&stage_dir)?;
        let mut moved = Vec::new();
        for f in files {
            let dest = stage_dir.join(f.file_name().unwrap());
            if std::fs::rename(&f, &dest).is_err() {
                std::fs::copy(&f, &dest).with_context(|| {
                    format!("cannot copy {} to {}", f.display(), dest.display())
                })?;
                let _ = std::fs::remove_file(&f);
            }
            moved.push(dest);
        }
        let sel = crate::discover::select_traces(&stage_dir)
            .with_context(|| format!("captured {stage} traces"))?;
        let worker = sel
            .chosen
            .first()
            .context("no worker trace captured")?
            .path
            .clone();
        let store = crate::reader::read_trace(&worker)?;
        if store.kernels.is_empty() {
            bail!(
                "the {stage} profiler window in {} holds no GPU kernels: the requests did not run while the profiler was active. vLLM 0.26 records only `active_iterations` engine steps (5 by default) after `delay_iterations`; start the server with --profiler-config '{{\"profiler\":\"torch\",\"torch_profiler_dir\":\"{}\",\"delay_iterations\":0,\"active_iterations\":50}}' or send more capture requests",
                worker.display(),
                req.trace_dir.display()
            );
        }
        stages.push(CapturedStage {
            stage: stage.clone(),
            traces: moved,
            worker_trace: worker,
            kernels: store.kernels.len() as u64,
            requests_ok: ok,
        });
    }
    Ok(ProfileCaptureReport {
        framework: req.framework.clone(),
        model,
        stages,
        out_dir: req.out_dir.clone(),
    })
}

impl Tool for ProfileCapture {
    const NAME: &'static str = "profile_capture";
    const DESCRIPTION: &'static str = "Capture torch-profiler traces from a running vLLM, SGLang or TokenSpeed server, prefill (long unique prompts, 1 output token) and decode (1-word prompt, many output tokens) separately: warmup requests, POST /start_profile, capture requests, POST /stop_profile, then move the new trace files from the server's profiler directory to <out_dir>/<stage>/ and verify the window holds GPU kernels (vLLM 0.26 records only active_iterations steps). Long-running (minutes). Then call profile_tables with trace=<out_dir>.";
    type Request = ProfileCaptureRequest;
    type Report = ProfileCaptureReport;

    fn run(request: Self::Request, ctx: &ToolContext) -> Result<Self::Report> {
        run_capture(&request, ctx)
    }

    fn markdown(r: &Self::Report) -> String {
        let mut o = format!("# Profile capture — {} ({})\n\n", r.framework, r.model);
        for s in &r.stages {
            o.push_str(&format!(
                "- {}: {} kernels in {} ({} requests)\n",
                s.stage,
                s.kernels,
                s.worker_trace.display(),
                s.requests_ok
            ));
        }
        o.push_str(&format!(
            "\nNext: profile_tables with trace = {}\n",
            r.out_dir.display()
        ));
        o
    }
}
