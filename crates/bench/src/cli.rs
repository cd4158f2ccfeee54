//! Command-line entry points the root binary exposes: `vllm-sota bench load ...` →
//! [`bench_load_cli`], `vllm-sota sim-serve ...` → [`sim_serve_cli`]. Both take the argv
//! after the subcommand. These are CLI mains: they print the human summary to stdout.

use crate::arrival::RequestRate;
use crate::client::{Endpoint, LoadConfig, LoadReport, fetch_model_id, run_load, wait_ready};
use crate::metrics::GoodputSla;
use crate::sim::SimConfig;
use crate::workload::{RandomDatasetConfig, TokenizerHandle, load_jsonl_workload, random_workload};
use anyhow::{Context, Result, bail};
use clap::Parser;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;
use vllm_sota_core::md::{Align, Table};

/// `vllm-sota bench load`: one load run of the vllm-sota client against an
/// OpenAI-compatible server.
#[derive(Debug, Parser)]
#[command(
    name = "vllm-sota bench load",
    about = "Load an OpenAI-compatible server with the vllm-sota client and report TTFT/TPOT/ITL/E2E/throughput"
)]
pub(crate) struct BenchLoadArgs {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub base_url: String,
    /// Served model name (default: the first id of GET /v1/models).
    #[arg(long)]
    pub model: Option<String>,
    /// `completions` (/v1/completions) or `chat` (/v1/chat/completions).
    #[arg(long, default_value = "completions")]
    pub endpoint: String,
    /// `random` (token-space prompts from --tokenizer) or `jsonl` (--workload FILE).
    #[arg(long, default_value = "random")]
    pub dataset: String,
    /// JSONL workload: {"prompt"|"messages", "output_len", "input_len"?, "extra_request_body"?} per line.
    #[arg(long)]
    pub workload: Option<PathBuf>,
    /// tokenizer.json (or a model directory): builds random prompts, re-tokenizes outputs.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    #[arg(long, default_value_t = 100)]
    pub num_prompts: usize,
    /// Prompt tokens as the server counts them (BOS included for completions).
    #[arg(long, default_value_t = 1024)]
    pub input_len: u64,
    #[arg(long, default_value_t = 128)]
    pub output_len: u64,
    /// 0 = fixed lengths; r = uniform on [L(1-r), L(1+r)].
    #[arg(long, default_value_t = 0.0)]
    pub range_ratio: f64,
    /// Shared random prefix tokens (counted in --input-len).
    #[arg(long, default_value_t = 0)]
    pub prefix_len: u64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// `inf` or requests per second.
    #[arg(long, default_value = "inf")]
    pub request_rate: String,
    /// Gamma shape of inter-arrival gaps (1 = Poisson, `inf` = constant).
    #[arg(long, default_value = "1")]
    pub burstiness: String,
    #[arg(long)]
    pub max_concurrency: Option<usize>,
    /// Requests sent before measuring (excluded from metrics).
    #[arg(long, default_value_t = 0)]
    pub warmup: usize,
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    /// Do not send `ignore_eos: true`.
    #[arg(long)]
    pub no_ignore_eos: bool,
    /// Do not send `min_tokens`.
    #[arg(long)]
    pub no_min_tokens: bool,
    /// Goodput SLOs, e.g. "ttft:500 tpot:50 e2e:20000" (ms).
    #[arg(long)]
    pub goodput: Option<String>,
    /// Per-request timeout, seconds.
    #[arg(long, default_value_t = 600.0)]
    pub timeout_s: f64,
    /// Wait up to this many seconds for GET /v1/models to answer 200 before starting.
    #[arg(long, default_value_t = 0.0)]
    pub wait_ready_s: f64,
    /// Name of an environment variable holding the API key (never pass keys on argv).
    #[arg(long)]
    pub api_key_env: Option<String>,
    /// Write the full report (summary + per-request records) as JSON here.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Keep generated texts in the records.
    #[arg(long)]
    pub keep_text: bool,
    /// Client runtime threads (1 = a current-thread runtime on one core).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Print the report JSON (without records) instead of the markdown summary.
    #[arg(long)]
    pub json: bool,
}

/// Builds a [`LoadConfig`] from parsed arguments (loads the tokenizer, builds the workload).
pub(crate) fn load_config_from_args(a: &BenchLoadArgs, model: String) -> Result<LoadConfig> {
    let endpoint = Endpoint::parse(&a.endpoint)?;
    let tokenizer = a
        .tokenizer
        .as_deref()
        .map(TokenizerHandle::load)
        .transpose()?;
    let workload = match a.dataset.as_str() {
        "random" => {
            let tok = tokenizer.as_ref().ok_or_else(|| {
                anyhow::anyhow!("--dataset random needs --tokenizer <tokenizer.json>")
            })?;
            random_workload(
                &RandomDatasetConfig {
                    num_prompts: a.num_prompts,
                    input_len: a.input_len,
                    output_len: a.output_len,
                    range_ratio: a.range_ratio,
                    prefix_len: a.prefix_len,
                    seed: a.seed,
                    chat: endpoint == Endpoint::ChatCompletions,
                },
                tok,
            )?
        }
        "jsonl" => {
            let p = a
                .workload
                .as_deref()
                .ok_or_else(|| anyhow::anyhow!("--dataset jsonl needs --workload FILE"))?;
            load_jsonl_workload(p, tokenizer.as_ref())?
        }
        other => bail!("--dataset {other:?}: expected random or jsonl"),
    };
    let burstiness = if a.burstiness.trim().eq_ignore_ascii_case("inf") {
        f64::INFINITY
    } else {
        a.burstiness.parse().map_err(|_| {
            anyhow::anyhow!("--burstiness {:?}: expected a number or inf", a.burstiness)
        })?
    };
    let api_key = match &a.api_key_env {
        Some(var) => Some(
            std::env::var(var).with_context(|| format!("--api-key-env {var}: variable not set"))?,
        ),
        None => None,
    };
    if a.timeout_s.is_nan() || a.timeout_s <= 0.0 {
        bail!("--timeout-s must be > 0");
    }
    let mut cfg = LoadConfig::new(a.base_url.clone(), model, workload);
    cfg.endpoint = endpoint;
    cfg.request_rate = RequestRate::parse(&a.request_rate)?;
    cfg.burstiness = burstiness;
    cfg.max_concurrency = a.max_concurrency;
    cfg.warmup_requests = a.warmup;
    cfg.seed = a.seed;
    cfg.temperature = a.temperature;
    cfg.ignore_eos = !a.no_ignore_eos;
    cfg.send_min_tokens = !a.no_min_tokens;
    cfg.sla = a
        .goodput
        .as_deref()
        .map(GoodputSla::parse)
        .transpose()?
        .unwrap_or_default();
    cfg.tokenizer = tokenizer;
    cfg.keep_text = a.keep_text;
    cfg.request_timeout = Duration::from_secs_f64(a.timeout_s);
    cfg.api_key = api_key;
    Ok(cfg)
}

/// Markdown summary of a load report.
pub(crate) fn report_markdown(r: &LoadReport) -> String {
    let s = &r.summary;
    let row = &s.row;
    let f = |v: Option<f64>| v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "—".into());
    let mut out = String::new();
    out.push_str(&format!(
        "## bench load: {} ({}, {})\n\n",
        r.model,
        r.endpoint.path(),
        r.workload_source
    ));
    out.push_str(&format!(
        "requests {} · completed {} · failed {} · success {} · duration {} s · connections {}\n\n",
        row.num_requests,
        row.completed.map_or("—".into(), |v| v.to_string()),
        row.failed.map_or("—".into(), |v| v.to_string()),
        row.success_rate
            .map(|v| format!("{:.1}%", v * 100.0))
            .unwrap_or_else(|| "—".into()),
        f(row.duration_s),
        r.connections_opened
    ));
    out.push_str(&format!(
        "throughput: {} req/s · {} output tok/s · {} total tok/s · goodput {} req/s\n\n",
        f(row.request_throughput),
        f(row.output_throughput),
        f(row.total_token_throughput),
        f(row.request_goodput)
    ));
    let mut t = Table::new(&[
        ("metric (ms)", Align::Left),
        ("mean", Align::Left),
        ("p50", Align::Left),
        ("p90", Align::Left),
        ("p95", Align::Left),
        ("p99", Align::Left),
        ("n", Align::Left),
    ]);
    for name in [
        "ttft",
        "tpot",
        "itl",
        "e2e",
        "first_byte",
        "client_queue",
        "schedule_lag",
    ] {
        match s.distributions.get(name) {
            Some(d) => t.row(&[
                name.to_string(),
                format!("{:.2}", d.mean),
                format!("{:.2}", d.p50),
                format!("{:.2}", d.p90),
                format!("{:.2}", d.p95),
                format!("{:.2}", d.p99),
                d.count.to_string(),
            ]),
            None => t.row(&[name, "—", "—", "—", "—", "—", "0"]),
        };
    }
    out.push_str(&t.render());
    let ws = &r.workload_stats;
    out.push_str(&format!(
        "\nworkload: input p50/p95 {}/{} · output p50/p95 {:.0}/{:.0} tokens\n",
        f(ws.input_p50),
        f(ws.input_p95),
        ws.output_p50,
        ws.output_p95
    ));
    out.push_str(&format!(
        "rate: target {} · achieved send rate {} req/s · peak concurrency {}\n",
        s.target_rate
            .map(|r| format!("{r:.2} req/s"))
            .unwrap_or_else(|| "inf".into()),
        f(s.achieved_send_rate),
        s.peak_concurrency
    ));
    out.push_str(&format!(
        "provenance: tokens from {} · ITL {} · input-length mismatches {} · usage/re-tokenized mismatches {}\n",
        row.provenance.token_count_source, row.provenance.itl_granularity, s.input_len_mismatches, s.token_count_mismatches
    ));
    if !s.errors.is_empty() {
        out.push_str("\nerrors:\n");
        for (e, n) in &s.errors {
            out.push_str(&format!("- {n} × {e}\n"));
        }
    }
    out
}

/// `vllm-sota bench load ARGS...`.
pub fn bench_load_cli(args: Vec<String>) -> Result<()> {
    let a = match BenchLoadArgs::try_parse_from(
        std::iter::once("vllm-sota bench load".to_string()).chain(args),
    ) {
        Ok(a) => a,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            print!("{e}");
            return Ok(());
        }
        Err(e) => bail!("{e}"),
    };
    let rt = if a.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(a.threads)
            .enable_all()
            .build()?
    };
    let report = rt.block_on(async {
        if a.wait_ready_s > 0.0 {
            wait_ready(&a.base_url, Duration::from_secs_f64(a.wait_ready_s)).await?;
        }
        let model = match &a.model {
            Some(m) => m.clone(),
            None => fetch_model_id(&a.base_url).await?,
        };
        let cfg = load_config_from_args(&a, model)?;
        run_load(cfg).await
    })?;
    if let Some(p) = &a.output {
        vllm_sota_core::fsx::write_json(p, &report)?;
    }
    let mut stdout = std::io::stdout().lock();
    if a.json {
        let mut slim = report.clone();
        slim.records.clear();
        writeln!(stdout, "{}", serde_json::to_string_pretty(&slim)?)?;
    } else {
        write!(stdout, "{}", report_markdown(&report))?;
        if let Some(p) = &a.output {
            writeln!(stdout, "\nfull report: {}", p.display())?;
        }
    }
    Ok(())
}

pub(crate) const SIM_SERVE_HELP: &str = "\
vllm-sota sim-serve: a serving-engine simulator for tests (OpenAI-compatible, streaming).

usage: vllm-sota sim-serve [--framework vllm|sglang|trtllm] [MODEL] [FLAGS...]

Knobs, in each framework's own spelling (another framework's spelling is an error):
  vllm:   MODEL | --model, --served-model-name, --tokenizer, --max-num-seqs, --max-num-batched-tokens,
          --gpu-memory-utilization, --max-model-len, --tensor-parallel-size/-tp
  sglang: --model-path, --served-model-name, --tokenizer-path, --max-running-requests,
          --chunked-prefill-size, --mem-fraction-static, --context-length, --tp-size
  trtllm: MODEL, --tokenizer, --max_batch_size, --max_num_tokens, --kv_cache_free_gpu_memory_fraction,
          --max_seq_len, --tp_size
  common: --host (127.0.0.1), --port (8000; 0 = any free port)
The tokenizer defaults to MODEL/tokenizer.json when MODEL is a directory.

Virtual GPU and cost model (Llama-3.1-8B on an H200):
  --sim-cost-profile NAME|none: the step-cost values of a profile calibrated on real H200 runs
    (references/sim-cost-profiles.json); default: the impersonated framework's (vllm: h200-vllm-0.26,
    sglang: h200-sglang-0.5.17; trtllm has none); `none` keeps the uncalibrated values below.
  --sim-gpu-mem-gib 139.8  --sim-weights-gib 15  --sim-kv-bytes-per-token 131072
  --sim-activation-bytes-per-token 147456  --sim-step-base-us 7000  --sim-prefill-us-per-token 10
  --sim-decode-us-per-seq 20  --sim-attn-us-per-ctx-token 0.01  --sim-output-us-per-seq 0
  --sim-admit-us-per-seq 0 (cost per sequence admitted into a step)
  (each --sim-* cost flag overrides that one value of the profile)
  --sim-time-scale 1 (0 = zero-delay)
  --sim-virtual-clock (steps follow the engine's own clock: host overhead between steps does not count)
  --sim-empty-token-fraction 0 (0..1: tokens whose text alone decodes to nothing, by prompt and index)
  --sim-zero-delay (tokens as fast as possible)  --sim-zero-delay-batch 16
  --sim-broken-patch (a patch that changes outputs: from the 3rd token on, tokens and logprobs differ)
  --sim-reasoning-tokens N (chat: first N tokens as reasoning_content)  --sim-comment-every N

Faults: --fault-slow-start-s S  --fault-crash-after N  --fault-hang-after N
        --fault-malformed-every K  --fault-5xx-every K  --fault-error-event-every K
Ground truth: --ground-truth FILE.jsonl (one line per request: arrival, first token, every token, µs)
";

/// `vllm-sota sim-serve ARGS...`: serves until Ctrl-C; Err after an injected crash or
/// when the configuration cannot fit (the OOM-like line is on stderr).
pub fn sim_serve_cli(args: Vec<String>) -> Result<()> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{SIM_SERVE_HELP}");
        return Ok(());
    }
    let cfg = SimConfig::from_args(&args)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(crate::sim::serve(cfg))
}

/// `vllm-sota bench import FILE... [--format auto|vllm|sglang|trtllm|aiperf|llm-serving-auto-benchmark]`: prints the
/// normalized rows (one JSON object per run, JSONL) of native benchmark result files.
pub fn bench_import_cli(args: Vec<String>) -> Result<()> {
    let mut format = crate::import::NativeFormat::Auto;
    let mut files = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--format" => {
                let v = it
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--format needs a value"))?;
                format = crate::import::NativeFormat::parse(&v)?;
            }
            "--help" | "-h" => {
                println!(
                    "usage: vllm-sota bench import FILE... [--format auto|vllm|sglang|trtllm|aiperf|llm-serving-auto-benchmark]"
                );
                return Ok(());
            }
            f if f.starts_with('-') => bail!("unknown option {f}"),
            f => files.push(PathBuf::from(f)),
        }
    }
    if files.is_empty() {
        bail!("bench import: give at least one result file");
    }
    let mut stdout = std::io::stdout().lock();
    for f in files {
        for run in crate::import::import_native_file(&f, format)? {
            writeln!(stdout, "{}", serde_json::to_string(&run)?)?;
        }
    }
    Ok(())
}
