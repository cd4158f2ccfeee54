//! Benchmark (not a test): streamed tokens per second one client core consumes from
//! `sim-serve` in zero-delay mode, at 100 / 1,000 / 4,000 concurrent streams, and CPU time
//! per request; the same for the single-process Python asyncio client of the same design
//! (`benches/py_asyncio_client.py`), measured in the same run. The server runs as a child
//! process pinned to one core, each client pinned to another.
//!
//! cargo run --release -p vllm-sota-bench --example client_throughput -- \
//!     [--tokenizer PATH] [--output-len 256] [--repeats 3] [--levels 100,1000,4000] \
//!     [--server-core 1] [--client-core 0] [--python python3]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vllm_sota_bench::Prompt;
use vllm_sota_bench::{LoadConfig, Workload, WorkloadRequest};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn pin_to(core: usize) {
    // SAFETY: plain libc call on a zeroed cpu_set_t for the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        (u.ru_utime.tv_sec as f64 + u.ru_utime.tv_usec as f64 / 1e6)
            + (u.ru_stime.tv_sec as f64 + u.ru_stime.tv_usec as f64 / 1e6)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let tokenizer = arg(&args, "--tokenizer").unwrap_or_else(|| {
        vllm_sota_core::refs::fixtures_dir()
            .join("dummy-llama-3.1-8b/tokenizer.json")
            .display()
            .to_string()
    });
    if args.iter().any(|a| a == "--serve") {
        // Child: the zero-delay simulator on a one-worker runtime.
        let port = arg(&args, "--port").unwrap_or_else(|| "0".into());
        let sim_args: Vec<String> = [
            "--tokenizer",
            &tokenizer,
            "--served-model-name",
            "sim-model",
            "--port",
            &port,
            "--sim-zero-delay",
            "--max-model-len",
            "100000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let cfg = vllm_sota_bench::SimConfig::from_args(&sim_args)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        return rt.block_on(vllm_sota_bench::sim::serve(cfg));
    }
    let output_len: u64 = arg(&args, "--output-len")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(256);
    let repeats: usize = arg(&args, "--repeats")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(3);
    let levels: Vec<usize> = arg(&args, "--levels")
        .unwrap_or_else(|| "100,1000,4000".into())
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()?;
    let server_core: usize = arg(&args, "--server-core")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1);
    let client_core: usize = arg(&args, "--client-core")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(0);
    let python = arg(&args, "--python").unwrap_or_else(|| "python3".into());
    let run_python = !args.iter().any(|a| a == "--no-python");
    let port = arg(&args, "--port").unwrap_or_else(|| "18431".into());
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/py_asyncio_client.py");

    let exe = std::env::current_exe()?;
    let mut server = Command::new("taskset")
        .args(["-c", &server_core.to_string()])
        .arg(&exe)
        .args(["--serve", "--port", &port, "--tokenizer", &tokenizer])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let base = format!("http://127.0.0.1:{port}");
    pin_to(client_core);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(vllm_sota_bench::wait_ready(&base, Duration::from_secs(60)))?;

    println!(
        "streamed-token consumption, one client core (core {client_core}), sim-serve zero-delay on core {server_core}, {output_len} tokens/request, median of {repeats}"
    );
    println!(
        "wall tok/s = tokens / wall time (limited by whichever side is slower); tok per CPU-s = tokens / client CPU time (what one fully busy client core consumes)"
    );
    println!(
        "| streams | Rust tok/s | Rust CPU ms/req | Rust tok per CPU-s | Python tok/s | Python CPU ms/req | Python tok per CPU-s | wall ratio | CPU ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &streams in &levels {
        let requests = (streams * 2).max(200);
        let mut rust_tps = Vec::new();
        let mut rust_cpu = Vec::new();
        let mut py_tps = Vec::new();
        let mut py_cpu = Vec::new();
        for _ in 0..repeats {
            let w = Workload {
                source: "bench".into(),
                requests: (0..requests)
                    .map(|i| WorkloadRequest {
                        prompt: Prompt::Text(format!("hello world {i}")),
                        input_len: None,
                        output_len,
                        extra_body: None,
                    })
                    .collect(),
            };
            let mut cfg = LoadConfig::new(base.clone(), "sim-model", w);
            cfg.max_concurrency = Some(streams);
            cfg.warmup_requests = streams; // open the pool first, as the Python client does
            cfg.keep_text = false;
            let t0 = Instant::now();
            let c0 = cpu_seconds();
            let rep = rt.block_on(vllm_sota_bench::run_load(cfg))?;
            let _ = (t0, c0);
            let row = &rep.summary.row;
            let measured_cpu = cpu_seconds() - c0; // includes the warmup round
            let tokens = row.total_output_tokens.unwrap_or(0) as f64;
            rust_tps.push(tokens / row.duration_s.unwrap_or(f64::NAN));
            rust_cpu.push(measured_cpu * 1e3 / (requests + streams) as f64);
            anyhow::ensure!(
                row.completed == Some(requests as u64),
                "rust client: {:?}",
                rep.summary.errors
            );

            if !run_python {
                continue;
            }
            let out = Command::new("taskset")
                .args(["-c", &client_core.to_string(), &python])
                .arg(&script)
                .args([
                    "--port",
                    &port,
                    "--concurrency",
                    &streams.to_string(),
                    "--requests",
                    &requests.to_string(),
                ])
                .args([
                    "--output-len",
                    &output_len.to_string(),
                    "--model",
                    "sim-model",
                ])
                .output()?;
            anyhow::ensure!(
                out.status.success(),
                "python client failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
            py_tps.push(v["tokens_per_s"].as_f64().unwrap_or(f64::NAN));
            py_cpu.push(v["cpu_ms_per_request"].as_f64().unwrap_or(f64::NAN));
        }
        let (rt_, rc) = (median(rust_tps), median(rust_cpu));
        let (pt, pc) = if py_tps.is_empty() {
            (f64::NAN, f64::NAN)
        } else {
            (median(py_tps), median(py_cpu))
        };
        // Tokens per CPU-second of the client: what one fully busy client core can consume.
        let (rust_cap, py_cap) = (
            output_len as f64 / (rc / 1e3),
            output_len as f64 / (pc / 1e3),
        );
        println!(
            "| {streams} | {rt_:.0} | {rc:.3} | {rust_cap:.0} | {pt:.0} | {pc:.3} | {py_cap:.0} | {:.1}x | {:.1}x |",
            rt_ / pt,
            rust_cap / py_cap
        );
    }
    let _ = server.kill();
    let _ = server.wait();
    Ok(())
}
