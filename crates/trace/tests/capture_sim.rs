//! Live capture against the engine simulator's profiler (`sim-serve` implements the
//! engines' /start_profile and /stop_profile): concurrent load at the requested batch,
//! windows bounded by steps, slow stops waited for, zero-step windows refused clearly.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vllm_sota_bench::sim::{SimConfig, SimServer};
use vllm_sota_core::Framework;
use vllm_sota_core::tool::ToolContext;
use vllm_sota_trace::{
    CaptureServer, ProfileCaptureRequest, StagePlan, run_capture, run_window, start_stage_load,
};

fn tokenizer_path() -> PathBuf {
    vllm_sota_core::refs::fixtures_dir().join("dummy-llama-3.1-8b/tokenizer.json")
}

struct Sim {
    rt: tokio::runtime::Runtime,
    server: Option<SimServer>,
}

impl Sim {
    fn start(cfg: SimConfig) -> Sim {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = rt.block_on(SimServer::start(cfg)).unwrap();
        Sim {
            rt,
            server: Some(server),
        }
    }
    fn url(&self) -> String {
        self.server.as_ref().unwrap().base_url()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            let _ = self.rt.block_on(s.shutdown());
        }
    }
}

/// A fast virtual engine (about 2.5 ms decode steps at batch 64).
fn cfg(fw: Framework, prof_dir: &std::path::Path) -> SimConfig {
    let mut c = SimConfig::defaults(fw);
    c.port = 0;
    c.model = "sim-llama".into();
    c.tokenizer = Some(tokenizer_path());
    c.step_base_us = 2000.0;
    c.prefill_us_per_token = 1.0;
    c.decode_us_per_seq = 5.0;
    c.max_model_len = 10240;
    c.profile_write_base_ms = 100.0;
    c.profile_write_ms_per_step = 5.0;
    match fw {
        Framework::Vllm => {
            c.profiler_config = Some(
                serde_json::json!({"profiler": "torch", "torch_profiler_dir": prof_dir, "max_iterations": 8})
                    .to_string(),
            )
        }
        _ => c.profiler_dir = Some(prof_dir.to_path_buf()),
    }
    c
}

fn request(
    sim: &Sim,
    fw: &str,
    dir: &std::path::Path,
    stage: &str,
    c: u64,
) -> ProfileCaptureRequest {
    serde_json::from_value(serde_json::json!({
        "base_url": sim.url(),
        "framework": fw,
        "trace_dir": dir.join("server"),
        "out_dir": dir.join("out"),
        "stages": [stage],
        "concurrency": c,
        "input_len": 500,
        "output_len": 64,
        "tokenizer": tokenizer_path(),
        "timeout_s": 120,
    }))
    .unwrap()
}

#[test]
fn sglang_decode_capture_at_concurrency_64_sees_a_batch_of_64_in_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(cfg(Framework::Sglang, &dir.path().join("server")));
    let req = request(&sim, "sglang", dir.path(), "decode", 64);
    let r = run_capture(&req, &ToolContext::new()).unwrap();
    let s = &r.stages[0];
    let b = s.window.window_batch.expect("batch from step annotations");
    assert!(
        (51.2..=76.8).contains(&b),
        "window batch {b}: {:?}",
        s.window
    );
    assert!(s.window.representative, "{:?}", s.window);
    assert_eq!(s.window.steps, 8, "num_steps bounds the window");
    assert!(s.kernels > 0);
    assert!(s.worker_trace.starts_with(dir.path().join("out/decode")));
    assert!(dir.path().join("out/decode/capture.json").is_file());
    // Steady state before the window: every sequence past prefill, so no step mixes prefill in.
    assert_eq!(s.window.prefill_steps, 0, "{:?}", s.window);
}

#[test]
fn vllm_decode_capture_is_bounded_by_max_iterations_and_sees_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let prof = dir.path().join("server");
    let sim = Sim::start(cfg(Framework::Vllm, &prof));
    let mut req = request(&sim, "vllm", dir.path(), "decode", 64);
    req.server_command = Some(vec![
        "vllm".into(),
        "serve".into(),
        "--profiler-config".into(),
        serde_json::json!({"profiler": "torch", "torch_profiler_dir": prof, "max_iterations": 8})
            .to_string(),
    ]);
    let r = run_capture(&req, &ToolContext::new()).unwrap();
    let s = &r.stages[0];
    assert_eq!(s.window.steps, 8, "{:?}", s.window);
    let b = s.window.window_batch.unwrap();
    assert!((51.2..=76.8).contains(&b), "{b}");
    assert!(
        s.notes.iter().all(|n| !n.contains("max_iterations")),
        "{:?}",
        s.notes
    );
    // The API server's trace is kept beside the worker's, and the worker's is analysed.
    assert!(
        s.traces
            .iter()
            .any(|t| t.to_string_lossy().contains("async_llm"))
    );
    assert!(s.worker_trace.to_string_lossy().contains("rank0"));
}

#[test]
fn prefill_capture_is_concurrent_not_one_request_after_another() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(cfg(Framework::Sglang, &dir.path().join("server")));
    let mut req = request(&sim, "sglang", dir.path(), "prefill", 32);
    req.input_len = Some(1000);
    let r = run_capture(&req, &ToolContext::new()).unwrap();
    let s = &r.stages[0];
    // 32 prompts of 1000 tokens in flight keep every 8192-token step full: 8 or 9
    // sequences (8 whole prompts and maybe a chunk), where one request after another gives 1.
    let b = s.window.window_batch.unwrap();
    assert!(
        b >= 7.0,
        "prefill batch {b} at concurrency 32: {:?}",
        s.window
    );
    assert!((8..=9).contains(&s.window.expected_batch), "{:?}", s.window);
    assert!(s.window.representative, "{:?}", s.window);
}

#[test]
fn an_unbounded_vllm_window_is_stopped_by_the_client_and_the_flag_to_add_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let prof = dir.path().join("server");
    let mut c = cfg(Framework::Vllm, &prof);
    c.profiler_config =
        Some(serde_json::json!({"profiler": "torch", "torch_profiler_dir": prof}).to_string());
    let sim = Sim::start(c.clone());
    let mut req = request(&sim, "vllm", dir.path(), "decode", 32);
    req.server_command = Some(vec![
        "vllm".into(),
        "--profiler-config".into(),
        c.profiler_config.clone().unwrap(),
    ]);
    let r = run_capture(&req, &ToolContext::new()).unwrap();
    let s = &r.stages[0];
    assert!(
        s.notes
            .iter()
            .any(|n| n.contains("\"max_iterations\":8") && n.contains("--profiler-config")),
        "{:?}",
        s.notes
    );
    // Bounded by the client's stop: far below the ~1,300 steps the load lasts.
    assert!(
        s.window.steps >= 1 && s.window.steps < 200,
        "{:?}",
        s.window
    );
}

#[test]
fn a_stop_that_takes_20_s_is_waited_for_and_a_shorter_timeout_names_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let prof = dir.path().join("server");
    let mut c = cfg(Framework::Vllm, &prof);
    // No max_iterations: /stop_profile writes the trace, and writing takes 20 s.
    c.profiler_config =
        Some(serde_json::json!({"profiler": "torch", "torch_profiler_dir": prof}).to_string());
    c.profile_write_base_ms = 20_000.0;
    c.profile_write_ms_per_step = 0.0;
    let sim = Sim::start(c);
    let req = request(&sim, "vllm", dir.path(), "decode", 8);
    let t0 = Instant::now();
    let r = run_capture(&req, &ToolContext::new()).unwrap();
    let s = &r.stages[0];
    assert!(s.trace_wait_s >= 20.0, "waited {} s", s.trace_wait_s);
    assert!(t0.elapsed() >= Duration::from_secs(20));
    assert!(s.kernels > 0);
    // The same server with a 3 s budget: a clear error naming the profiler directory.
    let mut short = req.clone();
    short.timeout_s = 3;
    short.out_dir = dir.path().join("out2");
    let e = format!(
        "{:#}",
        run_capture(&short, &ToolContext::new()).unwrap_err()
    );
    assert!(
        e.contains("/stop_profile") && e.contains(&prof.display().to_string()),
        "{e}"
    );
    assert!(!e.contains("os error"), "{e}");
}

#[test]
fn a_window_that_sees_no_step_never_closes_and_the_capture_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let prof = dir.path().join("server");
    let sim = Sim::start(cfg(Framework::Sglang, &prof));
    let server = CaptureServer::parse(&sim.url()).unwrap();
    // A load that ends at once: 4 one-token prefills.
    let plan = StagePlan {
        concurrency: 4,
        input_len: 50,
        output_len: 1,
        requests: 4,
        decode: false,
    };
    let running = start_stage_load(
        &sim.url(),
        "sim-llama",
        None,
        &plan,
        Arc::new(std::sync::atomic::AtomicBool::new(false)),
    )
    .unwrap();
    let (sent, _) = {
        while running.alive() {
            std::thread::sleep(Duration::from_millis(20));
        }
        (4, 4)
    };
    assert_eq!(sent, 4);
    let since = std::time::SystemTime::now();
    let e = run_window(
        &server,
        Framework::Sglang,
        &prof,
        "decode",
        8,
        Duration::from_millis(3),
        None,
        &running,
        Duration::from_secs(60),
        since,
        &ToolContext::new(),
    )
    .err()
    .expect("a window without steps cannot deliver a trace");
    let e = format!("{e:#}");
    assert!(
        e.contains("never closed") && e.contains("restart the server"),
        "{e}"
    );
    running.finish().unwrap();
    // And the server really keeps it open: the next /start_profile blocks.
    let r = vllm_sota_core::http::request_json(
        "POST",
        &format!("{}/start_profile", sim.url()),
        Some(&serde_json::json!({"num_steps": 2})),
        vllm_sota_core::http::Timeouts::new(Duration::from_secs(2)),
    );
    assert!(
        r.is_err(),
        "a second /start_profile must block while the window is open"
    );
}

#[test]
fn zero_steps_and_wrong_fields_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut req: ProfileCaptureRequest = serde_json::from_value(serde_json::json!({
        "base_url": "http://127.0.0.1:9",
        "framework": "sglang",
        "trace_dir": dir.path(),
        "out_dir": dir.path(),
        "concurrency": 8,
        "input_len": 10,
        "output_len": 10,
        "steps": 0
    }))
    .unwrap();
    let e = run_capture(&req, &ToolContext::new())
        .unwrap_err()
        .to_string();
    assert!(e.contains("`steps`") && e.contains("zero"), "{e}");
    req.steps = Some(4);
    req.framework = Framework::TensorrtLlm;
    let e = run_capture(&req, &ToolContext::new())
        .unwrap_err()
        .to_string();
    assert!(e.contains("`framework`"), "{e}");
    req.framework = Framework::Vllm;
    req.concurrency = None;
    let e = run_capture(&req, &ToolContext::new())
        .unwrap_err()
        .to_string();
    assert!(e.contains("`concurrency`"), "{e}");
}

#[test]
fn a_vllm_server_without_a_profiler_config_is_refused_with_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(Framework::Vllm, dir.path());
    c.profiler_config = None;
    let sim = Sim::start(c);
    let req = request(&sim, "vllm", dir.path(), "decode", 4);
    let e = format!("{:#}", run_capture(&req, &ToolContext::new()).unwrap_err());
    assert!(e.contains("404") && e.contains("--profiler-config"), "{e}");
}
