//! `profile_capture`: live capture against a running server that profiles what the
//! benchmark measured.
//!
//! Per stage: a calibration load at the requested concurrency (also the warmup) measures
//! the step time; the stage load is sized from it so it outlasts the window; the load runs
//! concurrently with the shared client (`vllm_sota_bench`): prefill = `input_len` → 1 token,
//! decode = short prompts → `output_len`; the profiler opens only in steady state (decode:
//! every sequence past its prefill); the window is bounded by engine steps (SGLang
//! `num_steps`; vLLM `max_iterations` of `--profiler-config`, read from the launch
//! command); a slow `/stop_profile` is waited for with progress until `timeout_s`; then
//! the trace files move to `<out_dir>/<stage>/` and the window is checked: steps and the
//! batch actually seen (`window_batch`, from the step annotations), and whether it is
//! representative of the requested concurrency (within 20%).
//!
//! Parts: [`load`] (the background load and its sizing), [`window`] (profiler routes,
//! waiting for the trace, window analysis, vLLM profiler config), [`launch`] (the
//! `profile_launch` job: the winning command with the profiler on, plus the eager twin).

pub(crate) mod launch;
pub(crate) mod load;
pub(crate) mod window;

use anyhow::{Context, Result, bail};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use vllm_sota_core::Framework;
use vllm_sota_core::tool::{Tool, ToolContext};

pub(crate) use window::{WindowAnalysis, analyze_window};

pub struct ProfileCapture;

fn d_timeout() -> u64 {
    600
}
fn d_stages() -> Vec<String> {
    vec!["prefill".into(), "decode".into()]
}
fn d_decode_in() -> u64 {
    128
}

/// Default window length in engine steps per stage.
pub(crate) const DEFAULT_DECODE_STEPS: u64 = 8;
pub(crate) const DEFAULT_PREFILL_STEPS: u64 = 2;
/// A window whose batch differs from the requested concurrency by more than this is not
/// representative.
pub(crate) const BATCH_TOLERANCE: f64 = 0.20;

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileCaptureRequest {
    /// Server base URL, e.g. `http://127.0.0.1:8000`.
    pub base_url: String,
    /// `vllm`, `sglang` or `tokenspeed` (SGLang's profiler routes).
    pub framework: Framework,
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
    /// Campaign run directory: with `scenario`, the defaults of `concurrency`,
    /// `input_len` and `output_len` come from the framework's winning row there.
    #[serde(default)]
    pub campaign_dir: Option<PathBuf>,
    /// Scenario name of the campaign (default: its first scenario).
    #[serde(default)]
    pub scenario: Option<String>,
    /// Requests in flight during the window (default: the winning row's concurrency).
    #[serde(default)]
    pub concurrency: Option<u64>,
    /// Prefill prompt tokens (default: the scenario's input length).
    #[serde(default)]
    pub input_len: Option<u64>,
    /// Decode output tokens per request (default: the scenario's output length; raised
    /// when the load would not outlast the window).
    #[serde(default)]
    pub output_len: Option<u64>,
    /// Decode prompt tokens (short prompts; default 128).
    #[serde(default = "d_decode_in")]
    pub decode_input_len: u64,
    /// Profiler window in engine steps (default 8 for decode, 2 for prefill).
    #[serde(default)]
    pub steps: Option<u64>,
    /// `tokenizer.json` (or a model directory holding one) for exact prompt lengths;
    /// without it prompts are unique word sequences of about the right length.
    #[serde(default)]
    pub tokenizer: Option<PathBuf>,
    /// The server's launch argv (vLLM: its `--profiler-config` says which steps a window
    /// records; checked before capturing).
    #[serde(default)]
    pub server_command: Option<Vec<String>>,
    /// Seconds to wait for steady state, for the window to close and for
    /// `/stop_profile` (the server writes the trace meanwhile). Default 600.
    #[serde(default = "d_timeout")]
    pub timeout_s: u64,
    /// Appended to each stage directory name (`-eager` for a mapping twin:
    /// `<out_dir>/decode-eager/`).
    #[serde(default)]
    pub stage_dir_suffix: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CapturedStage {
    pub stage: String,
    pub traces: Vec<PathBuf>,
    pub worker_trace: PathBuf,
    pub kernels: u64,
    /// Requests in flight the load kept during the window.
    pub concurrency: u64,
    /// Prompt and output tokens of the stage's requests.
    pub input_len: u64,
    pub output_len: u64,
    /// Engine steps asked for and seen in the window.
    pub steps_requested: u64,
    pub window: WindowAnalysis,
    /// Step time measured by the calibration load at this concurrency (ms).
    pub step_ms: f64,
    /// Seconds `/stop_profile` (or the automatic window close) took to deliver the trace.
    pub trace_wait_s: f64,
    /// Requests sent by the stage load and how many succeeded.
    pub requests_sent: u64,
    pub requests_ok: u64,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ProfileCaptureReport {
    pub framework: Framework,
    pub model: String,
    pub stages: Vec<CapturedStage>,
    /// Pass this to profile_tables as `trace`.
    pub out_dir: PathBuf,
}

/// Resolved shapes of a capture.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shapes {
    pub concurrency: u64,
    pub input_len: u64,
    pub output_len: u64,
}

fn resolve_shapes(req: &ProfileCaptureRequest) -> Result<Shapes> {
    let from_campaign = match &req.campaign_dir {
        Some(dir) => Some(launch::winner_shapes(
            dir,
            req.framework,
            req.scenario.as_deref(),
        )?),
        None => None,
    };
    let pick = |given: Option<u64>, field: &str, f: fn(&Shapes) -> u64| -> Result<u64> {
        match (given, &from_campaign) {
            (Some(v), _) => Ok(v),
            (None, Some(s)) => Ok(f(s)),
            (None, None) => bail!("field `{field}`: required without `campaign_dir`"),
        }
    };
    let s = Shapes {
        concurrency: pick(req.concurrency, "concurrency", |s| s.concurrency)?,
        input_len: pick(req.input_len, "input_len", |s| s.input_len)?,
        output_len: pick(req.output_len, "output_len", |s| s.output_len)?,
    };
    if s.concurrency == 0 {
        bail!("field `concurrency`: must be >= 1");
    }
    if s.input_len == 0 || s.output_len == 0 || req.decode_input_len == 0 {
        bail!("fields `input_len`, `output_len`, `decode_input_len`: must be >= 1");
    }
    Ok(s)
}

pub(crate) fn validate(req: &ProfileCaptureRequest) -> Result<()> {
    if req.framework == Framework::TensorrtLlm {
        bail!(
            "field `framework` ({}): live capture supports vllm, sglang and tokenspeed; for TensorRT-LLM set TLLM_PROFILE_START_STOP and TLLM_TORCH_PROFILE_TRACE and analyze the written traces with profile_tables",
            req.framework
        );
    }
    if req.steps == Some(0) {
        bail!(
            "field `steps`: a window of zero engine steps never closes (SGLang keeps it open and blocks the next /start_profile); give at least 1"
        );
    }
    for s in &req.stages {
        if !matches!(s.as_str(), "prefill" | "decode") {
            bail!("field `stages`: unknown stage {s:?} (prefill, decode)");
        }
    }
    if req.stages.is_empty() {
        bail!("field `stages`: empty");
    }
    Ok(())
}

pub fn run_capture(req: &ProfileCaptureRequest, ctx: &ToolContext) -> Result<ProfileCaptureReport> {
    validate(req)?;
    let shapes = resolve_shapes(req)?;
    std::fs::create_dir_all(&req.trace_dir)
        .with_context(|| format!("field `trace_dir` ({})", req.trace_dir.display()))?;
    let server = window::Server::parse(&req.base_url)?;
    let model = match &req.model {
        Some(m) => m.clone(),
        None => server.model_id()?,
    };
    let tok = match &req.tokenizer {
        Some(p) => Some(
            vllm_sota_bench::TokenizerHandle::load(p)
                .with_context(|| format!("field `tokenizer` ({})", p.display()))?,
        ),
        None => None,
    };
    let vllm_cfg = window::vllm_profiler_config(req.server_command.as_deref())?;
    let mut stages = Vec::new();
    for (si, stage) in req.stages.iter().enumerate() {
        ctx.check_cancelled()?;
        ctx.progress(si as f64, Some(req.stages.len() as f64), stage);
        let st = capture_stage(
            req,
            ctx,
            &server,
            &model,
            tok.as_ref(),
            vllm_cfg.as_ref(),
            stage,
            shapes,
        )
        .with_context(|| format!("{stage} capture"))?;
        stages.push(st);
    }
    Ok(ProfileCaptureReport {
        framework: req.framework,
        model,
        stages,
        out_dir: req.out_dir.clone(),
    })
}

/// One stage: calibrate, load, open the window in steady state, wait for the trace,
/// stop the load, move and check the trace.
#[allow(clippy::too_many_arguments)]
fn capture_stage(
    req: &ProfileCaptureRequest,
    ctx: &ToolContext,
    server: &window::Server,
    model: &str,
    tok: Option<&vllm_sota_bench::TokenizerHandle>,
    vllm_cfg: Option<&window::VllmWindow>,
    stage: &str,
    shapes: Shapes,
) -> Result<CapturedStage> {
    let decode = stage == "decode";
    let steps = req.steps.unwrap_or(if decode {
        DEFAULT_DECODE_STEPS
    } else {
        DEFAULT_PREFILL_STEPS
    });
    let mut notes = Vec::new();
    if let Some(n) = window::vllm_window_note(req.framework, vllm_cfg, steps, &req.trace_dir) {
        notes.push(n);
    }
    let timeout = Duration::from_secs(req.timeout_s.max(1));
    let c = shapes.concurrency;
    let input = if decode {
        req.decode_input_len
    } else {
        shapes.input_len
    };
    ctx.progress(
        0.0,
        None,
        &format!("{stage}: calibrating at concurrency {c}"),
    );
    let cal = load::calibrate(&server.base_url, model, tok, c, input, decode, timeout)?;
    let mut plan = load::size_stage(&cal, decode, c, input, shapes.output_len, steps);
    if plan.output_len > shapes.output_len && decode {
        notes.extend(fit_raised_output(req, server, &cal, &mut plan, shapes));
    }
    let started_wall = SystemTime::now() - Duration::from_secs(1);
    let running = load::start(&server.base_url, model, tok, &plan, ctx.cancel_flag())?;
    let outcome = (|| -> Result<window::WindowResult> {
        ctx.progress(0.0, None, &format!("{stage}: waiting for steady state"));
        running.wait_steady(&plan, timeout, ctx)?;
        let est_step = Duration::from_secs_f64(cal.step_ms.max(0.1) / 1e3);
        window::run_window(
            server,
            req.framework,
            &req.trace_dir,
            stage,
            steps,
            est_step,
            vllm_cfg,
            &running,
            timeout,
            started_wall,
            ctx,
        )
    })();
    let sent_ok = running.finish();
    let win = outcome?;
    let (sent, ok) = sent_ok?;
    let stage_dir = req.out_dir.join(format!("{stage}{}", req.stage_dir_suffix));
    let moved = move_files(&win.files, &stage_dir)?;
    let checked = check_stage_trace(req, &stage_dir, stage, &plan, steps)?;
    notes.extend(checked.notes);
    let report = CapturedStage {
        stage: stage.to_string(),
        traces: moved,
        worker_trace: checked.worker,
        kernels: checked.kernels,
        concurrency: c,
        input_len: input,
        output_len: plan.output_len,
        steps_requested: steps,
        window: checked.analysis,
        step_ms: cal.step_ms,
        trace_wait_s: win.trace_wait_s,
        requests_sent: sent,
        requests_ok: ok,
        notes,
    };
    vllm_sota_core::fsx::write_json(&stage_dir.join("capture.json"), &report)?;
    Ok(report)
}

/// A decode output length raised by [`load::size_stage`] so the load outlasts the window:
/// say so, and cap it at the server's maximum length (prompt + output over it is refused
/// with HTTP 400), never below the scenario's own output length. Returns the notes.
fn fit_raised_output(
    req: &ProfileCaptureRequest,
    server: &window::Server,
    cal: &load::Calibration,
    plan: &mut load::StagePlan,
    shapes: Shapes,
) -> Vec<String> {
    let input = plan.input_len;
    let mut notes = vec![format!(
        "decode output length raised from {} to {} tokens so the load outlasts the window (measured step {:.2} ms, steady state after {:.0} ms)",
        shapes.output_len, plan.output_len, cal.step_ms, cal.ttft_max_ms
    )];
    let max_len = server.max_model_len().or_else(|| {
        req.server_command
            .as_deref()
            .and_then(|a| window::max_len_from_argv(req.framework, a))
    });
    if let Some(m) = max_len
        && input + plan.output_len > m
    {
        let cap = m.saturating_sub(input).max(shapes.output_len);
        notes.push(format!(
            "decode output length capped at {cap} tokens by the server's maximum length {m} (prompt {input}); if the window does not close, start the server with a longer maximum length"
        ));
        plan.output_len = cap;
    }
    notes
}

/// What the captured worker trace of a stage holds.
struct CheckedTrace {
    worker: PathBuf,
    kernels: u64,
    analysis: WindowAnalysis,
    notes: Vec<String>,
}

/// Read the stage's worker trace from `stage_dir` and check its window: kernels present,
/// engine steps seen, the batch against the requested concurrency.
fn check_stage_trace(
    req: &ProfileCaptureRequest,
    stage_dir: &Path,
    stage: &str,
    plan: &load::StagePlan,
    steps: u64,
) -> Result<CheckedTrace> {
    let sel = crate::discover::select_traces(stage_dir)
        .with_context(|| format!("captured {stage} traces in {}", stage_dir.display()))?;
    let worker = sel
        .chosen
        .first()
        .context("no worker trace captured")?
        .path
        .clone();
    let store = crate::reader::read_trace(&worker)?;
    if store.kernels.is_empty() {
        bail!(
            "the {stage} profiler window in {} holds no GPU kernels: no engine step ran while it was open",
            worker.display()
        );
    }
    let (decode, c, input) = (plan.decode, plan.concurrency, plan.input_len);
    let expected = if decode {
        c
    } else {
        c.min(store_max_tokens(&store).div_ceil(input.max(1)))
    };
    let analysis = analyze_window(&store, decode, c, expected, steps);
    if analysis.steps == 0 && analysis.annotated {
        bail!(
            "the {stage} window holds kernels but no engine step annotation: a window of zero steps"
        );
    }
    let mut notes = analysis.notes.clone();
    if req.framework == Framework::Vllm
        && analysis.steps > steps.saturating_mul(2) + 2
        && let Some(n) = window::vllm_unbounded_note(steps, &req.trace_dir, analysis.steps)
    {
        notes.push(n);
    }
    Ok(CheckedTrace {
        worker,
        kernels: store.kernels.len() as u64,
        analysis,
        notes,
    })
}

/// The launch flag that turns CUDA graphs off, per framework (the eager mapping twin);
/// `None` is a trace of no known serving framework.
pub(crate) fn graph_off_flag(framework: Option<Framework>) -> &'static str {
    match framework {
        Some(Framework::Vllm) => "vLLM --enforce-eager",
        Some(Framework::Sglang | Framework::Tokenspeed) => "SGLang --disable-cuda-graph",
        Some(Framework::TensorrtLlm) | None => "the same server with CUDA graphs off",
    }
}

/// Advice text naming the trace's framework's flag instead of vLLM's, and the job that
/// captures the twin.
pub fn twin_advice(note: &str, framework: Option<Framework>) -> String {
    let flag = graph_off_flag(framework);
    note.replace(
        "(vLLM --enforce-eager)",
        &format!("({flag}; profile_launch captures it as <stage>-eager/ beside the trace, which is then used automatically)"),
    )
}

/// The most prefill tokens one step of the window carried (0 when unknown).
fn store_max_tokens(store: &crate::store::TraceStore) -> u64 {
    window::step_samples(store)
        .iter()
        .map(|s| s.prefill_tokens)
        .max()
        .unwrap_or(0)
}

fn move_files(files: &[PathBuf], dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut moved = Vec::new();
    for f in files {
        let name = f
            .file_name()
            .with_context(|| format!("trace path {} has no file name", f.display()))?;
        let dest = dir.join(name);
        if std::fs::rename(f, &dest).is_err() {
            std::fs::copy(f, &dest)
                .with_context(|| format!("cannot copy {} to {}", f.display(), dest.display()))?;
            let _ = std::fs::remove_file(f);
        }
        moved.push(dest);
    }
    Ok(moved)
}

impl Tool for ProfileCapture {
    const NAME: &'static str = "profile_capture";
    const DESCRIPTION: &'static str = "Capture torch-profiler traces from a running vLLM, SGLang or TokenSpeed server at the benchmark's shapes: per stage, a calibration load at the requested concurrency measures the step time, then the shared client keeps `concurrency` requests in flight (prefill: input_len → 1 token; decode: short prompts → output_len, sized to outlast the window), the profiler opens only in steady state (decode: every sequence past prefill) for `steps` engine steps (SGLang num_steps; vLLM max_iterations of --profiler-config, checked against server_command), a slow /stop_profile is waited for with progress until timeout_s, and the traces move to <out_dir>/<stage>/. The report gives window_batch (the batch seen in the window, from the step annotations) and whether the window is representative (within 20% of the concurrency). With campaign_dir (+ scenario) the shapes default to the framework's winning row. Long-running (minutes). To launch the winning command itself with the profiler and an eager twin, use profile_launch.";
    type Request = ProfileCaptureRequest;
    type Report = ProfileCaptureReport;

    fn run(request: Self::Request, ctx: &ToolContext) -> Result<Self::Report> {
        run_capture(&request, ctx)
    }

    fn markdown(r: &Self::Report) -> String {
        let mut o = format!("# Profile capture — {} ({})\n\n", r.framework, r.model);
        for s in &r.stages {
            o.push_str(&stage_markdown(s));
        }
        o.push_str(&format!(
            "\nNext: profile_tables with trace = {}\n",
            r.out_dir.display()
        ));
        o
    }
}

pub(crate) fn stage_markdown(s: &CapturedStage) -> String {
    let batch = s
        .window
        .window_batch
        .map(|b| format!("{b:.0}"))
        .unwrap_or_else(|| "unknown".into());
    let mut o = format!(
        "- {}: {} kernels in {}; window {} steps (asked {}), batch {} at concurrency {} — {}\n",
        s.stage,
        s.kernels,
        s.worker_trace.display(),
        s.window.steps,
        s.steps_requested,
        batch,
        s.concurrency,
        if s.window.representative {
            "representative".to_string()
        } else {
            format!("NOT representative: {}", s.window.verdict)
        }
    );
    for n in &s.notes {
        o.push_str(&format!("  - {n}\n"));
    }
    o
}
