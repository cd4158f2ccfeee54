//! `sim-serve`: an OpenAI-compatible streaming server that behaves like a serving
//! engine on a virtual GPU, for testing everything above the client without a GPU.
//! **A test tool, not a performance model of any real engine.**
//!
//! - [`SimConfig`]: parsed from the real frameworks' flag spellings (vLLM, SGLang,
//!   TensorRT-LLM `trtllm-serve`) for the knobs that matter, plus `--sim-*` cost-model
//!   knobs and `--fault-*` fault injection. Per framework, a flag of another framework is
//!   an error, as it would be on the real engine.
//! - [`engine`]: continuous batching with a step loop: prefill cost grows with prompt
//!   tokens (chunked by the max-batched-tokens budget), decode cost with batch size and
//!   context; KV-cache capacity from the memory fraction; admission queueing when full;
//!   refusal to start, with an OOM-like log line, when a configuration cannot fit.
//! - [`server`]: hyper HTTP/1.1: `/health`, `/v1/models`, `/v1/completions`,
//!   `/v1/chat/completions` (streaming SSE in vLLM's chunk shapes, or one JSON body),
//!   per-request ground truth (arrival, first token, every token) kept in memory and
//!   appended to a JSONL file.

pub mod calibration;
pub mod engine;
pub mod profiler;
pub mod server;

pub use server::{GroundTruth, SimServer, serve};

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;
use vllm_sota_core::Framework;

/// The framework `--framework` names: any case, `-` and `_` ignored, so `vllm`, `sglang`,
/// `trtllm`, `tensorrt_llm`, `tensorrt-llm` and `tensorrtllm` all work. TokenSpeed is
/// refused: the simulator has no TokenSpeed behaviour. (A [`SimConfig`] built in code may
/// still name it; each match on the framework then gives it the closest case, said there.)
pub fn parse_framework(s: &str) -> Result<Framework> {
    let norm = |x: &str| x.to_ascii_lowercase().replace(['-', '_'], "");
    let key = norm(s);
    let found = if key == "trtllm" {
        Some(Framework::TensorrtLlm)
    } else {
        Framework::ALL.into_iter().find(|f| norm(f.id()) == key)
    };
    match found {
        Some(Framework::Tokenspeed) => bail!(
            "--framework {s:?}: sim-serve has no TokenSpeed behaviour; it mimics vllm, sglang or trtllm (tensorrt_llm)"
        ),
        Some(f) => Ok(f),
        None => bail!("--framework {s:?}: expected vllm, sglang or trtllm"),
    }
}

/// Injected faults (all off by default).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    /// Answer 503 on every route for this long after binding (engine loading).
    pub slow_start: Duration,
    /// Die (abort every stream, stop listening) once this many requests completed.
    pub crash_after: Option<u64>,
    /// Requests with a 1-based arrival number above this are accepted and never answered.
    pub hang_after: Option<u64>,
    /// Every Nth request streams a truncated JSON chunk mid-stream.
    pub malformed_every: Option<u64>,
    /// Every Nth request is answered HTTP 500.
    pub error_5xx_every: Option<u64>,
    /// Every Nth request sends an SSE error chunk mid-stream, then `[DONE]`.
    pub error_event_every: Option<u64>,
}

/// The simulator's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    pub framework: Framework,
    /// Served model name (`/v1/models`, checked against requests' `model`).
    pub model: String,
    /// `tokenizer.json` (or a model directory holding one).
    pub tokenizer: Option<PathBuf>,
    pub host: String,
    /// 0 = an ephemeral port.
    pub port: u16,
    /// vLLM `--max-num-seqs`, SGLang `--max-running-requests`, TRT-LLM `--max_batch_size`.
    pub max_num_seqs: usize,
    /// vLLM `--max-num-batched-tokens`, SGLang `--chunked-prefill-size`, TRT-LLM `--max_num_tokens`.
    pub max_num_batched_tokens: usize,
    /// vLLM `--gpu-memory-utilization` (of total), SGLang `--mem-fraction-static` (weights +
    /// KV), TRT-LLM `--kv_cache_free_gpu_memory_fraction` (of memory free after weights).
    pub mem_fraction: f64,
    /// vLLM `--max-model-len`, SGLang `--context-length`, TRT-LLM `--max_seq_len`.
    pub max_model_len: usize,
    /// vLLM `--tensor-parallel-size`/`-tp`, SGLang `--tp-size`, TRT-LLM `--tp_size`.
    pub tensor_parallel: usize,
    /// Virtual GPU memory per GPU, GiB (H200: 139.8 usable).
    pub gpu_mem_gib: f64,
    /// Model weights, GiB, split over TP.
    pub weights_gib: f64,
    /// KV bytes per token for the whole model (Llama-3.1-8B bf16: 131072), split over TP.
    pub kv_bytes_per_token: f64,
    /// Peak activation bytes per batched token, per GPU.
    pub activation_bytes_per_token: f64,
    /// Step cost model (µs at TP 1).
    pub step_base_us: f64,
    pub prefill_us_per_token: f64,
    pub decode_us_per_seq: f64,
    pub attn_us_per_ctx_token: f64,
    /// Output processing per sequence per step (µs): a step's tokens leave this far apart.
    pub output_us_per_seq: f64,
    /// Cost (µs) per sequence admitted into a step (scheduling, block allocation, input
    /// preparation of a new request), at TP 1.
    #[serde(default)]
    pub admit_us_per_seq: f64,
    /// The cost-model profile applied (`references/sim-cost-profiles.json`), if any.
    #[serde(default)]
    pub cost_profile: Option<String>,
    /// `--sim-virtual-clock`: a step starts when the previous one ended on the engine's own
    /// clock, so the host's work between steps (slow in debug builds, on loaded machines)
    /// does not stretch the timeline; off, the host's time counts as engine time.
    #[serde(default)]
    pub virtual_clock: bool,
    /// Fraction (0..=1) of output tokens whose text decodes to nothing on its own (a
    /// partial UTF-8 sequence or a special token, common with dummy weights): their
    /// completions chunks carry `"text":""`, and in chat they send no chunk at all unless
    /// they are the last (then an empty `delta` with the finish reason), as vLLM does.
    /// Which tokens: a hash of the prompt and the token index, so runs repeat.
    #[serde(default)]
    pub empty_token_fraction: f64,
    /// Multiplies every step time. 0 = zero-delay mode (tokens as fast as the server can
    /// write them, `zero_delay_batch` events per write; the engine model is bypassed).
    pub time_scale: f64,
    pub zero_delay_batch: usize,
    /// The first N output tokens of chat responses stream as `reasoning_content`.
    pub reasoning_tokens: u64,
    /// Emit a `: keep-alive` comment every N tokens (0 = never).
    pub comment_every: u64,
    /// Where to append one ground-truth JSON line per finished request.
    pub ground_truth: Option<PathBuf>,
    pub faults: Faults,
    /// `--sim-broken-patch`: a patch that changes outputs (from the third output token on,
    /// tokens and logprobs differ from the unpatched answers), for correctness-probe tests.
    #[serde(default)]
    pub broken_patch: bool,
    /// vLLM `--profiler-config` JSON (the profiler routes exist only with a torch config).
    #[serde(default)]
    pub profiler_config: Option<String>,
    /// SGLang's default profiler directory (`SGLANG_TORCH_PROFILER_DIR`, else `/tmp`).
    #[serde(default)]
    pub profiler_dir: Option<PathBuf>,
    /// Writing a profiler trace takes this long plus `profile_write_ms_per_step` per
    /// recorded step, and stalls the engine meanwhile.
    #[serde(default)]
    pub profile_write_base_ms: f64,
    #[serde(default)]
    pub profile_write_ms_per_step: f64,
}

impl SimConfig {
    /// Defaults for a framework: its own default knob values, a Llama-3.1-8B-shaped model
    /// on one H200-like virtual GPU (calibrated on the vLLM fixture log: 15.0 GiB weights,
    /// 128 KiB of KV per token).
    pub fn defaults(framework: Framework) -> SimConfig {
        let (seqs, mem) = match framework {
            // TokenSpeed (a config built in code) starts from vLLM's defaults.
            Framework::Vllm | Framework::Tokenspeed => (1024, 0.92),
            Framework::Sglang => (4096, 0.88),
            Framework::TensorrtLlm => (2048, 0.9),
        };
        SimConfig {
            framework,
            model: "sim-model".into(),
            tokenizer: None,
            host: "127.0.0.1".into(),
            port: 8000,
            max_num_seqs: seqs,
            max_num_batched_tokens: 8192,
            mem_fraction: mem,
            max_model_len: 131072,
            tensor_parallel: 1,
            gpu_mem_gib: 139.8,
            weights_gib: 15.0,
            kv_bytes_per_token: 131072.0,
            activation_bytes_per_token: 144.0 * 1024.0,
            step_base_us: 7000.0,
            prefill_us_per_token: 10.0,
            decode_us_per_seq: 20.0,
            attn_us_per_ctx_token: 0.01,
            output_us_per_seq: 0.0,
            admit_us_per_seq: 0.0,
            cost_profile: None,
            empty_token_fraction: 0.0,
            virtual_clock: false,
            time_scale: 1.0,
            zero_delay_batch: 16,
            reasoning_tokens: 0,
            comment_every: 0,
            ground_truth: None,
            faults: Faults::default(),
            broken_patch: false,
            profiler_config: None,
            profiler_dir: None,
            profile_write_base_ms: 200.0,
            profile_write_ms_per_step: 20.0,
        }
    }

    /// [`SimConfig::defaults`] with the framework's calibrated cost-model profile applied
    /// (`default_by_framework` in `references/sim-cost-profiles.json`), when it has one.
    pub fn calibrated(framework: Framework) -> Result<SimConfig> {
        let mut cfg = SimConfig::defaults(framework);
        if let Some(name) = calibration::default_profile(framework)? {
            cfg.apply_cost_profile(&name)?;
        }
        Ok(cfg)
    }

    /// Sets the cost model from the named profile of `references/sim-cost-profiles.json`.
    pub fn apply_cost_profile(&mut self, name: &str) -> Result<()> {
        let p = calibration::profile(name)?;
        let c = &p.cost;
        self.step_base_us = c.step_base_us;
        self.prefill_us_per_token = c.prefill_us_per_token;
        self.decode_us_per_seq = c.decode_us_per_seq;
        self.attn_us_per_ctx_token = c.attn_us_per_ctx_token;
        self.output_us_per_seq = c.output_us_per_seq;
        self.admit_us_per_seq = c.admit_us_per_seq;
        self.cost_profile = Some(name.to_string());
        Ok(())
    }

    pub fn zero_delay(&self) -> bool {
        self.time_scale == 0.0
    }

    /// Parses argv (without the program/subcommand name). `--framework` picks the flag
    /// family; it may appear anywhere.
    pub fn from_args(args: &[String]) -> Result<SimConfig> {
        let (framework, profile) = framework_and_profile(args)?;
        // The impersonated framework's calibrated profile, unless another (or none) is
        // named; `--sim-*` cost flags below override single values.
        let mut cfg = match profile.as_deref() {
            None => SimConfig::calibrated(framework)?,
            Some("none") => SimConfig::defaults(framework),
            Some(name) => {
                let mut c = SimConfig::defaults(framework);
                c.apply_cost_profile(name)?;
                c
            }
        };
        if framework == Framework::Sglang {
            cfg.profiler_dir = std::env::var_os("SGLANG_TORCH_PROFILER_DIR").map(PathBuf::from);
        }
        let names = cfg.apply_flags(framework, args)?;
        // Zero-delay switch (a Switch knob) handled here to keep the match simple.
        if args.iter().any(|a| a == "--sim-zero-delay") {
            cfg.time_scale = 0.0;
        }
        cfg.broken_patch = args.iter().any(|a| a == "--sim-broken-patch");
        cfg.virtual_clock = args.iter().any(|a| a == "--sim-virtual-clock");
        cfg.apply_model_names(framework, names)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Applies every flag of `args` in order (spelled as `framework` spells it; an unknown
    /// one is an error); returns the model names and positional arguments for
    /// [`SimConfig::apply_model_names`].
    fn apply_flags(&mut self, framework: Framework, args: &[String]) -> Result<ModelNames> {
        let mut names = ModelNames::default();
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            i += 1;
            if !arg.starts_with('-') || arg == "-" {
                names.positional.push(arg.clone());
                continue;
            }
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) => (f.to_string(), Some(v.to_string())),
                None => (arg.clone(), None),
            };
            let kind = flag_kind(framework, &flag).ok_or_else(|| {
                anyhow::anyhow!(
                    "unrecognized argument {flag} for --framework {} (sim-serve accepts that framework's real flag spellings; see `vllm-sota sim-serve --help`)",
                    framework.id()
                )
            })?;
            if kind == Knob::Switch {
                continue;
            }
            let value = match inline {
                Some(v) => v,
                None => {
                    let v = args
                        .get(i)
                        .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?
                        .clone();
                    i += 1;
                    v
                }
            };
            match kind {
                Knob::Model => names.model_path = Some(value),
                Knob::ServedName => names.served_name = Some(value),
                _ => self.apply_knob(kind, &flag, value)?,
            }
        }
        Ok(names)
    }

    /// Sets the knob `kind` from `flag`'s value (the model names aside).
    fn apply_knob(&mut self, kind: Knob, flag: &str, value: String) -> Result<()> {
        let num = |v: &str| flag_number(flag, v);
        let count = |v: &str| flag_count(flag, v);
        match kind {
            Knob::FrameworkFlag | Knob::CostProfile | Knob::Switch | Knob::Ignored => {}
            Knob::Model | Knob::ServedName => {}
            Knob::Tokenizer => self.tokenizer = Some(PathBuf::from(value)),
            Knob::Host => self.host = value,
            Knob::Port => {
                self.port = u16::try_from(count(&value)?)
                    .map_err(|_| anyhow::anyhow!("{flag} {value:?}: not a port"))?
            }
            Knob::MaxSeqs => self.max_num_seqs = count(&value)? as usize,
            Knob::BatchedTokens => {
                // SGLang: --chunked-prefill-size -1 disables chunking.
                if value.trim() == "-1" {
                    self.max_num_batched_tokens = usize::MAX / 4;
                } else {
                    self.max_num_batched_tokens = count(&value)? as usize;
                }
            }
            Knob::MemFraction => self.mem_fraction = num(&value)?,
            Knob::MaxModelLen => self.max_model_len = count(&value)? as usize,
            Knob::Tp => self.tensor_parallel = count(&value)? as usize,
            Knob::GpuMem => self.gpu_mem_gib = num(&value)?,
            Knob::Weights => self.weights_gib = num(&value)?,
            Knob::KvBytes => self.kv_bytes_per_token = num(&value)?,
            Knob::ActBytes => self.activation_bytes_per_token = num(&value)?,
            Knob::StepBase => self.step_base_us = num(&value)?,
            Knob::Prefill => self.prefill_us_per_token = num(&value)?,
            Knob::Decode => self.decode_us_per_seq = num(&value)?,
            Knob::Attn => self.attn_us_per_ctx_token = num(&value)?,
            Knob::OutputSpread => self.output_us_per_seq = num(&value)?,
            Knob::AdmitPerSeq => self.admit_us_per_seq = num(&value)?,
            Knob::EmptyTokens => self.empty_token_fraction = num(&value)?,
            Knob::TimeScale => self.time_scale = num(&value)?,
            Knob::ZeroBatch => self.zero_delay_batch = count(&value)?.max(1) as usize,
            Knob::Reasoning => self.reasoning_tokens = count(&value)?,
            Knob::CommentEvery => self.comment_every = count(&value)?,
            Knob::GroundTruth => self.ground_truth = Some(PathBuf::from(value)),
            Knob::ProfilerConfig => {
                profiler::VllmProfilerConfig::parse(&value)?;
                self.profiler_config = Some(value)
            }
            Knob::ProfileWriteBase => self.profile_write_base_ms = num(&value)?,
            Knob::ProfileWritePerStep => self.profile_write_ms_per_step = num(&value)?,
            Knob::SlowStart => self.faults.slow_start = Duration::from_secs_f64(num(&value)?),
            Knob::CrashAfter => self.faults.crash_after = Some(count(&value)?),
            Knob::HangAfter => self.faults.hang_after = Some(count(&value)?),
            Knob::MalformedEvery => self.faults.malformed_every = Some(count(&value)?.max(1)),
            Knob::Http5xxEvery => self.faults.error_5xx_every = Some(count(&value)?.max(1)),
            Knob::ErrorEventEvery => self.faults.error_event_every = Some(count(&value)?.max(1)),
        }
        if matches!(kind, Knob::TimeScale) && self.time_scale < 0.0 {
            bail!("{flag} must be >= 0");
        }
        Ok(())
    }

    /// The served model: `vllm serve <model>` / `trtllm-serve <model>` take one positional
    /// model; a model path also names the tokenizer when it holds one, and
    /// `--served-model-name` overrides the name.
    fn apply_model_names(&mut self, framework: Framework, names: ModelNames) -> Result<()> {
        let ModelNames {
            positional,
            mut model_path,
            served_name,
        } = names;
        match (positional.len(), framework) {
            (0, _) => {}
            // `tokenspeed serve <model>` too.
            (1, Framework::Vllm | Framework::TensorrtLlm | Framework::Tokenspeed) => {
                model_path = model_path.or(Some(positional[0].clone()))
            }
            (1, Framework::Sglang) => {
                bail!(
                    "unexpected positional argument {:?}: SGLang takes the model as --model-path",
                    positional[0]
                )
            }
            _ => bail!("unexpected positional arguments {positional:?}: give one model"),
        }
        if let Some(p) = &model_path {
            let path = PathBuf::from(p);
            if self.tokenizer.is_none() && path.join("tokenizer.json").is_file() {
                self.tokenizer = Some(path.clone());
            }
            // Engines serve a path under its own name unless --served-model-name is given.
            self.model = p.clone();
        }
        if let Some(n) = served_name {
            self.model = n;
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<()> {
        if self.max_num_seqs == 0 {
            bail!("max running sequences must be >= 1");
        }
        if self.max_num_batched_tokens == 0 {
            bail!("max batched tokens must be >= 1");
        }
        if !(self.mem_fraction > 0.0 && self.mem_fraction <= 1.0) {
            bail!(
                "memory fraction must be in (0, 1], got {}",
                self.mem_fraction
            );
        }
        if self.tensor_parallel == 0 {
            bail!("tensor parallel size must be >= 1");
        }
        if self.max_model_len == 0 {
            bail!("max model length must be >= 1");
        }
        if !(0.0..=1.0).contains(&self.empty_token_fraction) {
            bail!(
                "--sim-empty-token-fraction must be in [0, 1], got {}",
                self.empty_token_fraction
            );
        }
        if self.admit_us_per_seq.is_nan() || self.admit_us_per_seq < 0.0 {
            bail!(
                "--sim-admit-us-per-seq must be >= 0, got {}",
                self.admit_us_per_seq
            );
        }
        Ok(())
    }
}

/// The model names and positional arguments of a command line.
#[derive(Default)]
struct ModelNames {
    positional: Vec<String>,
    model_path: Option<String>,
    served_name: Option<String>,
}

/// `--framework` and `--sim-cost-profile` (the last of each), read before the other flags
/// since they decide how those are spelled and what they start from.
fn framework_and_profile(args: &[String]) -> Result<(Framework, Option<String>)> {
    let mut framework = Framework::Vllm;
    let mut profile: Option<String> = None;
    for it in 0..args.len() {
        if let Some(v) = flag_value(args, it, "--framework")? {
            framework = parse_framework(&v)?;
        } else if let Some(v) = flag_value(args, it, "--sim-cost-profile")? {
            profile = Some(v);
        }
    }
    Ok((framework, profile))
}

/// The value of `args[it]` when it is flag `name` (`name=value`, or `name` then a value).
fn flag_value(args: &[String], it: usize, name: &str) -> Result<Option<String>> {
    let a = &args[it];
    if let Some(v) = a.strip_prefix(&format!("{name}=")) {
        return Ok(Some(v.to_string()));
    }
    if a == name {
        let v = args
            .get(it + 1)
            .ok_or_else(|| anyhow::anyhow!("{name} needs a value"))?;
        return Ok(Some(v.clone()));
    }
    Ok(None)
}

/// A flag's number; `k`/`m` suffixes multiply by 10³/10⁶.
fn flag_number(flag: &str, v: &str) -> Result<f64> {
    let t = v.trim();
    let (body, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
        Some('m' | 'M') => (&t[..t.len() - 1], 1e6),
        _ => (t, 1.0),
    };
    body.parse::<f64>()
        .map(|x| x * mult)
        .map_err(|_| anyhow::anyhow!("{flag} {v:?}: expected a number"))
}

/// A flag's non-negative integer (suffixes as in [`flag_number`]).
fn flag_count(flag: &str, v: &str) -> Result<u64> {
    let x = flag_number(flag, v)?;
    if x < 0.0 || x.fract() != 0.0 {
        bail!("{flag} {v:?}: expected a non-negative integer");
    }
    Ok(x as u64)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Knob {
    FrameworkFlag,
    CostProfile,
    AdmitPerSeq,
    EmptyTokens,
    Switch,
    Ignored,
    Model,
    ServedName,
    Tokenizer,
    Host,
    Port,
    MaxSeqs,
    BatchedTokens,
    MemFraction,
    MaxModelLen,
    Tp,
    GpuMem,
    Weights,
    KvBytes,
    ActBytes,
    StepBase,
    Prefill,
    Decode,
    Attn,
    OutputSpread,
    TimeScale,
    ZeroBatch,
    Reasoning,
    CommentEvery,
    GroundTruth,
    ProfilerConfig,
    ProfileWriteBase,
    ProfileWritePerStep,
    SlowStart,
    CrashAfter,
    HangAfter,
    MalformedEvery,
    Http5xxEvery,
    ErrorEventEvery,
}

/// Flags each framework accepts (the knobs that matter, plus common ones accepted and
/// ignored so real launch commands run unchanged), then the shared sim flags.
fn flag_kind(fw: Framework, flag: &str) -> Option<Knob> {
    use Knob::*;
    let specific = match fw {
        // TokenSpeed (a config built in code) takes vLLM's spellings, as the real one does.
        Framework::Vllm | Framework::Tokenspeed => match flag {
            "--model" => Some(Model),
            "--served-model-name" => Some(ServedName),
            "--tokenizer" => Some(Tokenizer),
            "--max-num-seqs" => Some(MaxSeqs),
            "--max-num-batched-tokens" => Some(BatchedTokens),
            "--gpu-memory-utilization" => Some(MemFraction),
            "--max-model-len" => Some(MaxModelLen),
            "--tensor-parallel-size" | "-tp" => Some(Tp),
            "--profiler-config" => Some(ProfilerConfig),
            "--enforce-eager"
            | "--trust-remote-code"
            | "--disable-log-requests"
            | "--enable-prefix-caching"
            | "--no-enable-prefix-caching"
            | "--disable-log-stats"
            | "--enable-chunked-prefill"
            | "--no-enable-chunked-prefill"
            | "--async-scheduling" => Some(Switch),
            "--dtype"
            | "--load-format"
            | "--attention-backend"
            | "--seed"
            | "--kv-cache-dtype"
            | "--block-size"
            | "--compilation-config"
            | "--swap-space"
            | "--api-key"
            | "--uvicorn-log-level"
            | "--generation-config"
            | "--max-num-partial-prefills" => Some(Ignored),
            _ => None,
        },
        Framework::Sglang => match flag {
            "--model-path" | "--model" => Some(Model),
            "--served-model-name" => Some(ServedName),
            "--tokenizer-path" => Some(Tokenizer),
            "--max-running-requests" => Some(MaxSeqs),
            "--chunked-prefill-size" => Some(BatchedTokens),
            "--mem-fraction-static" => Some(MemFraction),
            "--context-length" => Some(MaxModelLen),
            "--tp-size" | "--tp" => Some(Tp),
            "--trust-remote-code"
            | "--disable-radix-cache"
            | "--disable-cuda-graph"
            | "--enable-torch-compile"
            | "--skip-server-warmup"
            | "--enable-metrics" => Some(Switch),
            "--dtype"
            | "--load-format"
            | "--sampling-backend"
            | "--attention-backend"
            | "--random-seed"
            | "--log-level"
            | "--cuda-graph-max-bs"
            | "--max-prefill-tokens"
            | "--schedule-policy"
            | "--kv-cache-dtype"
            | "--api-key"
            | "--max-total-tokens" => Some(Ignored),
            _ => None,
        },
        Framework::TensorrtLlm => match flag {
            "--tokenizer" => Some(Tokenizer),
            "--served_model_name" => Some(ServedName),
            "--max_batch_size" => Some(MaxSeqs),
            "--max_num_tokens" => Some(BatchedTokens),
            "--kv_cache_free_gpu_memory_fraction" => Some(MemFraction),
            "--max_seq_len" => Some(MaxModelLen),
            "--tp_size" => Some(Tp),
            "--trust_remote_code" => Some(Switch),
            "--backend"
            | "--max_beam_width"
            | "--extra_llm_api_options"
            | "--log_level"
            | "--pp_size"
            | "--ep_size"
            | "--gpus_per_node"
            | "--num_postprocess_workers" => Some(Ignored),
            _ => None,
        },
    };
    specific.or(match flag {
        "--framework" => Some(FrameworkFlag),
        "--sim-cost-profile" => Some(CostProfile),
        "--sim-admit-us-per-seq" => Some(AdmitPerSeq),
        "--sim-empty-token-fraction" => Some(EmptyTokens),
        "--host" => Some(Host),
        "--port" => Some(Port),
        "--sim-gpu-mem-gib" => Some(GpuMem),
        "--sim-weights-gib" => Some(Weights),
        "--sim-kv-bytes-per-token" => Some(KvBytes),
        "--sim-activation-bytes-per-token" => Some(ActBytes),
        "--sim-step-base-us" => Some(StepBase),
        "--sim-prefill-us-per-token" => Some(Prefill),
        "--sim-decode-us-per-seq" => Some(Decode),
        "--sim-attn-us-per-ctx-token" => Some(Attn),
        "--sim-output-us-per-seq" => Some(OutputSpread),
        "--sim-time-scale" => Some(TimeScale),
        "--sim-zero-delay" | "--sim-broken-patch" | "--sim-virtual-clock" => Some(Switch),
        "--sim-zero-delay-batch" => Some(ZeroBatch),
        "--sim-reasoning-tokens" => Some(Reasoning),
        "--sim-comment-every" => Some(CommentEvery),
        "--ground-truth" => Some(GroundTruth),
        "--sim-profile-write-base-ms" => Some(ProfileWriteBase),
        "--sim-profile-write-ms-per-step" => Some(ProfileWritePerStep),
        "--fault-slow-start-s" => Some(SlowStart),
        "--fault-crash-after" => Some(CrashAfter),
        "--fault-hang-after" => Some(HangAfter),
        "--fault-malformed-every" => Some(MalformedEvery),
        "--fault-5xx-every" => Some(Http5xxEvery),
        "--fault-error-event-every" => Some(ErrorEventEvery),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn real_flag_spellings_map_to_the_same_knobs() {
        let v = SimConfig::from_args(&args(
            "/m --served-model-name dummy --max-num-seqs 64 --max-num-batched-tokens 2k --gpu-memory-utilization 0.85 --max-model-len 10240 -tp 2 --dtype bfloat16 --enforce-eager",
        ))
        .unwrap();
        assert_eq!((v.framework, v.model.as_str()), (Framework::Vllm, "dummy"));
        assert_eq!(
            (
                v.max_num_seqs,
                v.max_num_batched_tokens,
                v.max_model_len,
                v.tensor_parallel
            ),
            (64, 2000, 10240, 2)
        );
        assert_eq!(v.mem_fraction, 0.85);
        let s = SimConfig::from_args(&args(
            "--framework sglang --model-path /m --max-running-requests 32 --chunked-prefill-size 4096 --mem-fraction-static 0.8 --context-length 4096 --tp-size 4",
        ))
        .unwrap();
        assert_eq!(
            (
                s.max_num_seqs,
                s.max_num_batched_tokens,
                s.mem_fraction,
                s.max_model_len,
                s.tensor_parallel
            ),
            (32, 4096, 0.8, 4096, 4)
        );
        let t = SimConfig::from_args(&args(
            "--framework=trtllm /m --max_batch_size 16 --max_num_tokens 1024 --kv_cache_free_gpu_memory_fraction 0.5 --max_seq_len 2048 --tp_size 8 --backend pytorch",
        ))
        .unwrap();
        assert_eq!(
            (
                t.max_num_seqs,
                t.max_num_batched_tokens,
                t.mem_fraction,
                t.max_model_len,
                t.tensor_parallel
            ),
            (16, 1024, 0.5, 2048, 8)
        );
    }

    #[test]
    fn framework_spellings_parse_and_tokenspeed_is_refused_with_the_flag() {
        for (s, f) in [
            ("vllm", Framework::Vllm),
            ("SGLang", Framework::Sglang),
            ("trtllm", Framework::TensorrtLlm),
            ("TRT-LLM", Framework::TensorrtLlm),
            ("tensorrt-llm", Framework::TensorrtLlm),
            ("tensorrt_llm", Framework::TensorrtLlm),
            ("TensorRTLLM", Framework::TensorrtLlm),
        ] {
            assert_eq!(parse_framework(s).unwrap(), f, "{s}");
        }
        let e = SimConfig::from_args(&args("--framework tokenspeed"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--framework")
                && e.contains("TokenSpeed")
                && e.contains("vllm, sglang or trtllm"),
            "{e}"
        );
        let e = parse_framework("ollama").unwrap_err().to_string();
        assert!(e.contains("--framework \"ollama\""), "{e}");
    }

    #[test]
    fn another_frameworks_spelling_is_rejected_with_the_flag_named() {
        let e = SimConfig::from_args(&args("--framework vllm --mem-fraction-static 0.8"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--mem-fraction-static") && e.contains("vllm"),
            "{e}"
        );
        let e = SimConfig::from_args(&args("--framework trtllm --max-num-seqs 4"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--max-num-seqs"), "{e}");
        assert!(
            SimConfig::from_args(&args("--max-num-seqs"))
                .unwrap_err()
                .to_string()
                .contains("needs a value")
        );
        assert!(
            SimConfig::from_args(&args("--max-num-seqs many"))
                .unwrap_err()
                .to_string()
                .contains("many")
        );
        assert!(SimConfig::from_args(&args("--gpu-memory-utilization 1.5")).is_err());
    }
}
