//! profile_capture against a mock HTTP server that behaves like vLLM's profiling routes:
//! on /stop_profile it "writes" a real fixture trace into the profiler directory.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use vllm_sota_core::tool::ToolContext;
use vllm_sota_trace::capture::{ProfileCaptureRequest, run_capture};

fn fx(rel: &str) -> PathBuf {
    vllm_sota_core::refs::fixtures_dir().join(rel)
}

/// Serves until dropped; returns the base URL and the request log.
fn mock_server(trace_dir: PathBuf, fixture: PathBuf) -> (String, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        let mut n = 0;
        for s in l.incoming() {
            let mut s = s.unwrap();
            let mut buf = vec![0u8; 65536];
            let mut got = Vec::new();
            loop {
                let k = s.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..k]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    if body.len() >= len {
                        break;
                    }
                }
                if k == 0 {
                    break;
                }
            }
            let text = String::from_utf8_lossy(&got).to_string();
            let line = text.lines().next().unwrap_or("").to_string();
            let body = text
                .split_once("\r\n\r\n")
                .map(|x| x.1.to_string())
                .unwrap_or_default();
            log2.lock().unwrap().push(format!("{line} {body}"));
            let reply = if line.starts_with("GET /v1/models") {
                r#"{"data":[{"id":"dummy-llama-8b"}]}"#.to_string()
            } else if line.starts_with("POST /stop_profile") {
                n += 1;
                std::fs::copy(
                    &fixture,
                    trace_dir.join(format!("rank0.{n}.pt.trace.json.gz")),
                )
                .unwrap();
                "{}".into()
            } else {
                r#"{"choices":[{"text":"x"}]}"#.into()
            };
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}",
                reply.len()
            );
            s.write_all(resp.as_bytes()).unwrap();
        }
    });
    (url, log)
}

fn req(url: String, trace_dir: PathBuf, out: PathBuf) -> ProfileCaptureRequest {
    ProfileCaptureRequest {
        base_url: url,
        framework: "vllm".into(),
        model: None,
        trace_dir,
        out_dir: out,
        stages: vec!["prefill".into(), "decode".into()],
        prefill_input_words: 50,
        decode_output_tokens: 8,
        warmup_requests: 1,
        capture_requests: 2,
        timeout_s: 10,
    }
}

#[test]
fn capture_moves_worker_traces_per_stage_with_unique_prompts() {
    let tmp = tempfile::tempdir().unwrap();
    let trace_dir = tmp.path().join("server-profiles");
    std::fs::create_dir_all(&trace_dir).unwrap();
    let (url, log) = mock_server(
        trace_dir.clone(),
        fx("h200-torch-traces/minillama_graph_decode.trace.json.gz"),
    );
    let out = tmp.path().join("capture");
    let r = run_capture(&req(url, trace_dir, out.clone()), &ToolContext::new()).unwrap();
    assert_eq!(r.model, "dummy-llama-8b");
    assert_eq!(r.stages.len(), 2);
    assert_eq!(r.stages[0].stage, "prefill");
    assert_eq!(r.stages[0].kernels, 2260);
    assert!(r.stages[1].worker_trace.starts_with(out.join("decode")));
    let log = log.lock().unwrap();
    let starts = log
        .iter()
        .filter(|l| l.starts_with("POST /start_profile"))
        .count();
    assert_eq!(starts, 2);
    // unique prompts: every completion request starts with a different profile_probe_<i>
    let probes: std::collections::HashSet<String> = log
        .iter()
        .filter(|l| l.starts_with("POST /v1/completions"))
        .filter_map(|l| l.split("profile_probe_").nth(1).map(|x| x[..3].to_string()))
        .collect();
    assert_eq!(probes.len(), 6);
    // prefill asks for 1 token, decode for 8
    assert!(log.iter().any(|l| l.contains("\"max_tokens\":1,")));
    assert!(log.iter().any(|l| l.contains("\"max_tokens\":8,")));
}

#[test]
fn a_window_without_kernels_is_an_error_that_says_how_to_fix_it() {
    let tmp = tempfile::tempdir().unwrap();
    let trace_dir = tmp.path().join("server-profiles");
    std::fs::create_dir_all(&trace_dir).unwrap();
    // A trace with Python events only (the API-server trace's content) stands in for an empty window.
    let api = std::fs::read_dir(fx("h200-vllm-0.26/prefill"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("async_llm"))
        .unwrap();
    let (url, _log) = mock_server(trace_dir.clone(), api);
    let err = format!(
        "{:#}",
        run_capture(
            &req(url, trace_dir, tmp.path().join("c")),
            &ToolContext::new()
        )
        .unwrap_err()
    );
    assert!(
        err.contains("no GPU kernels") && err.contains("active_iterations"),
        "{err}"
    );
}

#[test]
fn trtllm_is_refused_with_the_env_var_route() {
    let tmp = tempfile::tempdir().unwrap();
    let mut r = req(
        "http://127.0.0.1:9".into(),
        tmp.path().into(),
        tmp.path().join("o"),
    );
    r.framework = "tensorrt_llm".into();
    let err = run_capture(&r, &ToolContext::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("TLLM_PROFILE_START_STOP"), "{err}");
}
