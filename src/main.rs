//! `vllm-sota`: one binary, two faces. `vllm-sota mcp` serves every tool over MCP stdio;
//! `vllm-sota <tool> --request file.json` runs the same tool from a shell.

mod calllog;
mod cli;
mod jobrun;
mod mcp;
mod registry;
mod tools;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "vllm-sota",
    version,
    about = "Make vLLM serve a model as fast as the best of SGLang and TensorRT-LLM: an MCP tool server and CLI for the whole campaign.",
    after_help = "Every MCP tool is also a subcommand: `vllm-sota <tool> --request req.json [--set key=value] [--json]` (see `vllm-sota tools`)."
)]
struct Cli {
    /// Log filter for stderr (also RUST_LOG), e.g. `info`, `vllm_sota=debug`.
    #[arg(long, global = true, default_value = "warn")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve MCP over stdio (what Claude Code and Codex start).
    Mcp,
    /// List the tools (`--json`: with input and output schemas).
    Tools {
        #[arg(long)]
        json: bool,
    },
    /// Test tool: an OpenAI-compatible engine simulator (virtual GPU, continuous batching,
    /// real frameworks' flag spellings, fault injection). `vllm-sota sim-serve --help`.
    #[command(disable_help_flag = true)]
    SimServe {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The benchmark client (`bench load --help`) and importers of native results (`bench import FILE...`).
    #[command(disable_help_flag = true)]
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Speed and memory self-benchmarks (figures, not pass/fail): `selfbench profile <trace>`
    /// runs the three profile tables on a trace and compares with plain gzip decompression.
    Selfbench {
        /// What to measure: `profile`.
        what: String,
        /// The input (a torch-profiler trace for `profile`).
        input: PathBuf,
        #[arg(long)]
        json: bool,
        /// Runs, each in a fresh process; the figures are their medians.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Body of a detached job (started by the tools, not by people).
    #[command(hide = true)]
    JobRun {
        #[arg(long)]
        state: PathBuf,
    },
    /// Any tool: `vllm-sota <tool> [--request FILE|-] [--set key=value] [--json]`.
    #[command(external_subcommand)]
    Tool(Vec<String>),
}

fn init_tracing(filter: &str) {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| filter.to_string());
    // stderr only: in MCP mode stdout is the protocol channel.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn main() {
    let cli = Cli::parse();
    init_tracing(&cli.log);
    let code = match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!(
                "error: {}",
                vllm_sota_core::redact::redact(&format!("{e:#}"))
            );
            1
        }
    };
    std::process::exit(code);
}

fn run(command: Command) -> Result<i32> {
    match command {
        Command::Mcp => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(mcp::serve())?;
            Ok(0)
        }
        Command::Tools { json } => cli::list_tools(json).map(|_| 0),
        Command::JobRun { state } => jobrun::run(&state).map(|_| 0),
        Command::Selfbench {
            what,
            input,
            json,
            runs,
        } => {
            anyhow::ensure!(
                what == "profile",
                "selfbench: unknown target '{what}' (known: profile)"
            );
            anyhow::ensure!(runs >= 1, "selfbench: --runs must be at least 1");
            std::fs::metadata(&input)
                .with_context(|| format!("selfbench: cannot read {}", input.display()))?;
            if runs == 1 {
                let report = vllm_sota_trace::selfbench(&input)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    println!(
                        "{}: {:.0} MB of JSON, {} events, {} kernels\nplain gunzip {:.0} ms | three tables {:.0} ms (read {:.0} ms) | {:.0} MB/s | ratio {:.2}x | peak RSS {:.0} MB (baseline {:.0} MB)\n{}",
                        report.file,
                        report.json_mb,
                        report.events,
                        report.kernels,
                        report.gunzip_ms,
                        report.tables_ms,
                        report.read_ms,
                        report.json_mb_per_s,
                        report.ratio,
                        report.peak_rss_mb,
                        report.baseline_rss_mb,
                        report.note
                    );
                }
                return Ok(0);
            }
            // Each run in a fresh process: what a one-shot profile_tables call pays.
            let exe = std::env::current_exe()?;
            let mut each = Vec::with_capacity(runs);
            for i in 0..runs {
                let out = vllm_sota_core::proc::Cmd::new(&exe)
                    .args(["selfbench", "profile", "--json", "--runs", "1"])
                    .arg(&input)
                    .run_capture(std::time::Duration::from_secs(3600))?;
                anyhow::ensure!(
                    out.success(),
                    "selfbench: run {} of {runs} failed (exit {:?}{}): {}",
                    i + 1,
                    out.code,
                    if out.timed_out { ", timed out" } else { "" },
                    vllm_sota_core::proc::tail(&out.stderr, 2000)
                );
                each.push(serde_json::from_slice(out.stdout.as_bytes())?);
                if !json {
                    eprintln!("run {}/{runs} done", i + 1);
                }
            }
            let s = vllm_sota_trace::SelfbenchSummary::from_runs(each)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!(
                    "{}: {:.0} MB of JSON, medians of {} runs (each in a fresh process)\nplain gunzip {:.0} ms | three tables {:.0} ms (read {:.0} ms) | {:.0} MB/s | ratio {:.2}x (runs: {:.2}-{:.2}) | peak RSS {:.0} MB",
                    s.file,
                    s.json_mb,
                    s.runs,
                    s.median_gunzip_ms,
                    s.median_tables_ms,
                    s.median_read_ms,
                    s.median_json_mb_per_s,
                    s.median_ratio,
                    s.min_ratio,
                    s.max_ratio,
                    s.peak_rss_mb
                );
            }
            Ok(0)
        }
        Command::SimServe { args } => vllm_sota_bench::sim_serve_cli(args).map(|_| 0),
        Command::Bench { args } => match args.split_first() {
            Some((sub, rest)) if sub == "load" => {
                vllm_sota_bench::bench_load_cli(rest.to_vec()).map(|_| 0)
            }
            Some((sub, rest)) if sub == "import" => {
                vllm_sota_bench::bench_import_cli(rest.to_vec()).map(|_| 0)
            }
            _ => anyhow::bail!("usage: vllm-sota bench load|import [--help] ..."),
        },
        Command::Tool(argv) => cli::run_tool(&argv[0], &argv[1..]),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn mcp_and_cli_list_the_same_tools_and_names_match_tool_consts() {
        let cli: Vec<String> = super::registry::tools()
            .iter()
            .map(|t| t.name.to_string())
            .collect();
        let mut mcp = super::mcp::tool_names();
        let mut sorted = cli.clone();
        sorted.sort();
        mcp.sort();
        assert_eq!(mcp, sorted);
        assert!(cli.contains(&"campaign_init".to_string()));
    }
}
