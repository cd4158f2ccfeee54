//! Launch one candidate's server (argv from flags, no shell, own process group, own
//! log), wait for readiness (`/v1/models`, then one 1-token request: `/health` alone can
//! lie), classify failures from the exit and the log (`oom`, `failed` with the first error
//! line, `timeout`), and tear the whole group down.

use anyhow::Result;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vllm_sota_core::proc::{self, Cmd, Group};
use vllm_sota_core::results::RunStatus;

use crate::candidates::Candidate;
use crate::config::BenchmarkConfig;
use crate::flags::{HelpFlags, flags_argv};
use crate::preflight::{FrameworkPlan, fill_template, template_vars};
use crate::procs;
use vllm_sota_core::http::{self, Timeouts, request_json, url_of};

/// A running, ready server.
pub struct Server {
    pub group: Group,
    pub host: String,
    pub port: u16,
    /// The model id `/v1/models` reported (what requests must send).
    pub model_id: String,
    pub argv: Vec<String>,
    pub log_path: PathBuf,
    pub ready_after_s: f64,
    pub teardown_command: Option<Vec<String>>,
    pub grace: Duration,
}

/// Why a launch did not give a ready server.
#[derive(Debug, Clone)]
pub struct LaunchFailure {
    pub status: RunStatus,
    pub reason: String,
    pub argv: Vec<String>,
    pub log_path: PathBuf,
}

/// The server argv for a candidate: template + flags + managed host/port.
pub fn server_argv(
    cfg: &BenchmarkConfig,
    fp: &FrameworkPlan,
    cand: &Candidate,
    help: Option<&HelpFlags>,
    port: u16,
) -> Vec<String> {
    let vars = template_vars(cfg, &cfg.launch.host, port);
    let mut argv = fill_template(&fp.command_template, &vars);
    argv.extend(flags_argv(&cand.flags, help));
    if let Some(h) = &fp.facts.host_flag {
        argv.push(h.clone());
        argv.push(cfg.launch.host.clone());
    }
    if let Some(p) = &fp.facts.port_flag {
        argv.push(p.clone());
        argv.push(port.to_string());
    }
    argv
}

/// A free TCP port on the host (bind :0, read, release).
pub fn free_port(host: &str) -> Result<u16> {
    let l = std::net::TcpListener::bind((host, 0))?;
    Ok(l.local_addr()?.port())
}

/// Environment for the server: CUDA_VISIBLE_DEVICES for the configured GPUs, then the
/// framework's `env` (values never written: logs get `describe_env`). No prefix-cache
/// reset route is needed: every run sends prompts no earlier run sent.
pub(crate) fn server_env(cfg: &BenchmarkConfig, fp: &FrameworkPlan) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let ids: Vec<String> = cfg
        .hardware
        .gpu_ids()
        .iter()
        .map(|i| i.to_string())
        .collect();
    env.insert("CUDA_VISIBLE_DEVICES".to_string(), ids.join(","));
    for (k, v) in &fp.env {
        env.insert(k.clone(), v.clone());
    }
    env
}

/// Record of the live server so a resumed job can kill a group a `kill -9` left behind.
pub(crate) fn live_file(benchmark_dir: &Path) -> PathBuf {
    benchmark_dir.join("servers/live.json")
}

/// Kill a server group recorded by a previous (killed) job process, if still alive.
pub fn reap_stale(benchmark_dir: &Path) {
    let path = live_file(benchmark_dir);
    if let Ok(v) = vllm_sota_core::fsx::read_json::<Value>(&path) {
        if let Some(pgid) = v["pgid"].as_i64() {
            let pgid = pgid as i32;
            if pgid > 1 && proc::group_alive(pgid) {
                tracing::warn!(pgid, "killing a server group left by an interrupted job");
                proc::kill_group(pgid, None, Duration::from_secs(5));
            }
        }
        let _ = std::fs::remove_file(&path);
    }
}

#[allow(clippy::too_many_arguments)]
/// Spawn and wait for readiness. `cancelled` is polled; on cancel the group is killed.
pub fn launch(
    cfg: &BenchmarkConfig,
    fp: &FrameworkPlan,
    argv: Vec<String>,
    port: u16,
    log_path: &Path,
    benchmark_dir: &Path,
    cancelled: &dyn Fn() -> bool,
) -> std::result::Result<Server, LaunchFailure> {
    let env = server_env(cfg, fp);
    let full = procs::wrap_with_launcher(&argv, fp.launcher.as_deref());
    let header = format!(
        "# fair_benchmark launch {}\n# argv: {}\n# env: {}\n",
        vllm_sota_core::layout::now_rfc3339(),
        proc::shell_join(&full),
        vllm_sota_core::redact::describe_env(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .join(" ")
    );
    for line in header.lines() {
        let _ = vllm_sota_core::fsx::append_line(log_path, line);
    }
    let fail = |status, reason: String| LaunchFailure {
        status,
        reason,
        argv: argv.clone(),
        log_path: log_path.to_path_buf(),
    };
    let grace = Duration::from_secs_f64(cfg.launch.shutdown_grace_s);
    // Dies with this job process (a `kill -9`ed job leaves no server holding the port).
    let spawned = Cmd::from_argv(&full).and_then(|c| {
        c.envs(&env)
            .die_with_parent()
            .grace(grace)
            .spawn_logged(log_path)
    });
    let mut group = match spawned {
        Ok(g) => g,
        Err(e) => return Err(fail(RunStatus::Failed, format!("{e:#}"))),
    };
    let pgid = group.pgid();
    let _ = vllm_sota_core::fsx::write_json(
        &live_file(benchmark_dir),
        &json!({"pgid": pgid, "argv": full, "port": port}),
    );
    let host = cfg.launch.host.clone();
    let start = Instant::now();
    let timeout = Duration::from_secs_f64(fp.startup_timeout_s);
    let poll = Duration::from_secs_f64(cfg.launch.readiness_poll_s.max(0.01));
    let mut last = String::from("no answer yet");
    let kill = |group: &mut Group| {
        group.stop();
        let _ = std::fs::remove_file(live_file(benchmark_dir));
    };
    loop {
        if let Some(code) = group.try_wait() {
            kill(&mut group);
            let log = std::fs::read_to_string(log_path).unwrap_or_default();
            let (st, reason) = classify_exit(code, &log);
            return Err(fail(st, reason));
        }
        if cancelled() {
            kill(&mut group);
            return Err(fail(RunStatus::Skipped, "cancelled".into()));
        }
        if start.elapsed() >= timeout {
            kill(&mut group);
            return Err(fail(
                RunStatus::Timeout,
                format!(
                    "not ready within {:.0} s (last readiness answer: {last})",
                    timeout.as_secs_f64()
                ),
            ));
        }
        match probe_ready(
            &host,
            port,
            &fp.facts.readiness.models_route,
            &cfg.benchmark.endpoint,
        ) {
            Ok(model_id) => {
                return Ok(Server {
                    group,
                    host,
                    port,
                    model_id,
                    argv,
                    log_path: log_path.to_path_buf(),
                    ready_after_s: start.elapsed().as_secs_f64(),
                    teardown_command: fp.teardown_command.clone(),
                    grace,
                });
            }
            Err(e) => last = format!("{e:#}"),
        }
        std::thread::sleep(poll);
    }
}

/// `/v1/models` answers 200 with a model, then a 1-token request succeeds.
pub(crate) fn probe_ready(
    host: &str,
    port: u16,
    models_route: &str,
    endpoint: &str,
) -> Result<String> {
    let t = Timeouts::new(Duration::from_secs(30));
    let r = request_json("GET", &url_of(host, port, models_route), None, t)?;
    anyhow::ensure!(r.status == 200, "{models_route} answered {}", r.status);
    let v = r.json()?;
    let model = v["data"][0]["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("{models_route} lists no model"))?;
    let body = one_token_body(endpoint, &model);
    let r = request_json(
        "POST",
        &url_of(host, port, endpoint),
        Some(&body),
        Timeouts::new(Duration::from_secs(120)),
    )?;
    anyhow::ensure!(
        r.status == 200,
        "1-token request answered {}: {}",
        r.status,
        http::snippet(&r.text())
    );
    let v = r.json()?;
    anyhow::ensure!(
        v["choices"].as_array().is_some_and(|c| !c.is_empty()),
        "1-token request returned no choices"
    );
    Ok(model)
}

fn one_token_body(endpoint: &str, model: &str) -> Value {
    if endpoint.contains("chat") {
        json!({"model": model, "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 1, "temperature": 0, "stream": false})
    } else {
        json!({"model": model, "prompt": "Hello", "max_tokens": 1, "temperature": 0, "stream": false})
    }
}

impl Server {
    pub fn base_url(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    /// Has the server process exited (crashed)?
    pub fn exited(&mut self) -> Option<Option<i32>> {
        self.group.try_wait()
    }

    /// Kill the group, run the teardown command, wait for GPU memory (GPU hosts).
    pub fn teardown(mut self, benchmark_dir: &Path, gpu_ids: &[u32], gpu_wait: Option<Duration>) {
        self.group.stop();
        if let Some(cmd) = &self.teardown_command {
            let _ = Cmd::from_argv(cmd).and_then(|c| c.run_capture(Duration::from_secs(60)));
        }
        let _ = std::fs::remove_file(live_file(benchmark_dir));
        if let Some(wait) = gpu_wait {
            wait_gpu_released(gpu_ids, wait);
        }
    }
}

/// Poll nvidia-smi until no compute process holds the GPUs (or the wait ends). No-op without nvidia-smi.
pub(crate) fn wait_gpu_released(ids: &[u32], wait: Duration) -> bool {
    if !proc::on_path("nvidia-smi") {
        return true;
    }
    let end = Instant::now() + wait;
    loop {
        match crate::preflight::gpu_processes(ids) {
            Ok(busy) if busy.is_empty() => return true,
            Err(_) => return true,
            Ok(busy) => {
                if Instant::now() >= end {
                    tracing::warn!("GPU memory still held after teardown: {}", busy.join("; "));
                    return false;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

const OOM_PATTERNS: &[&str] = &[
    "cuda out of memory",
    "outofmemoryerror",
    "out of memory",
    "no available memory for the cache blocks",
    "not enough memory",
    "insufficient memory",
    "cudaerrormemoryallocation",
    "cublas_status_alloc_failed",
    "oom",
    "larger than the available kv cache memory",
];

/// Classify a server that exited before it was ready.
pub(crate) fn classify_exit(code: Option<i32>, log: &str) -> (RunStatus, String) {
    if let Some(line) = oom_line(log) {
        return (RunStatus::Oom, line);
    }
    let first = first_error_line(log);
    let reason = match (first, code) {
        (Some(l), Some(c)) => format!("exited with code {c}: {l}"),
        (Some(l), None) => format!("killed by a signal: {l}"),
        (None, Some(c)) => {
            format!("exited with code {c} before it was ready (no error line in the log)")
        }
        (None, None) => "killed by a signal before it was ready".to_string(),
    };
    (RunStatus::Failed, reason)
}

fn oom_line(log: &str) -> Option<String> {
    for line in log.lines() {
        if line.starts_with("# fair_benchmark")
            || line.starts_with("# argv")
            || line.starts_with("# env")
        {
            continue;
        }
        let body = strip_log_prefix(line);
        let lower = body.to_ascii_lowercase();
        let hit = OOM_PATTERNS.iter().any(|p| {
            if *p == "oom" {
                lower
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .any(|w| w == "oom")
            } else {
                lower.contains(p)
            }
        });
        if hit && !is_low_level(line) {
            return Some(body.trim().to_string());
        }
    }
    None
}

fn is_low_level(line: &str) -> bool {
    [
        " WARNING ",
        " INFO ",
        " DEBUG ",
        "[W ",
        "WARNING:",
        "UserWarning",
        "SyntaxWarning",
    ]
    .iter()
    .any(|p| line.contains(p))
}

/// Strip `(EngineCore pid=996) ERROR 11-29 12:55:18 [core.py:1330] `-style prefixes.
pub(crate) fn strip_log_prefix(line: &str) -> &str {
    let mut s = line.trim_start();
    if s.starts_with('(')
        && let Some(end) = s.find(") ")
    {
        s = &s[end + 2..];
    }
    for level in ["ERROR ", "CRITICAL ", "WARNING ", "INFO ", "DEBUG "] {
        if let Some(rest) = s.strip_prefix(level) {
            s = rest;
            // date, time, [file:line]
            if let Some(idx) = s.find("] ")
                && s[..idx].contains('[')
            {
                s = &s[idx + 2..];
            }
            break;
        }
    }
    s
}

/// The first line that names an error: a Python exception line (`XError: msg`), else a
/// line with `error:` / `ERROR`, skipping warnings; `None` when there is none.
pub(crate) fn first_error_line(log: &str) -> Option<String> {
    let exc = regex::Regex::new(
        r"^([A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)|panicked at|thread '.*' panicked)\b.*",
    )
    .unwrap();
    for line in log.lines() {
        if line.starts_with("# ") || is_low_level(line) {
            continue;
        }
        let body = strip_log_prefix(line).trim();
        if exc.is_match(body) {
            return Some(body.to_string());
        }
    }
    for line in log.lines() {
        if line.starts_with("# ") || is_low_level(line) {
            continue;
        }
        let lower = line.to_ascii_lowercase();
        if lower.contains("error:")
            || lower.contains("error ")
            || line.contains("ERROR")
            || lower.contains("fatal")
        {
            let body = strip_log_prefix(line).trim();
            if !body.is_empty() {
                return Some(body.to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_vllm_startup_failure_is_failed_with_the_module_error() {
        let path = vllm_sota_core::refs::fixtures_dir()
            .join("h200-vllm-0.26/logs/server_failed_startup_missing_flashinfer.log");
        let log = std::fs::read_to_string(&path).unwrap();
        let (status, reason) = classify_exit(Some(1), &log);
        assert_eq!(status, RunStatus::Failed);
        // Line 55 of the fixture; the WARNING on line 8 mentions `OSError` and must be skipped.
        assert_eq!(
            reason,
            "exited with code 1: ModuleNotFoundError: No module named 'flashinfer'"
        );
    }

    #[test]
    fn oom_and_plain_failures_are_told_apart() {
        let log = "(EngineCore pid=1) INFO 11-29 [x.py:1] loading\n(EngineCore pid=1) ERROR 11-29 12:00:00 [gpu_worker.py:3] torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n";
        let (s, r) = classify_exit(Some(1), log);
        assert_eq!(s, RunStatus::Oom);
        assert!(
            r.starts_with("torch.OutOfMemoryError: CUDA out of memory"),
            "{r}"
        );
        let (s, r) = classify_exit(Some(2), "error: unexpected argument '--bogus' found\n");
        assert_eq!(s, RunStatus::Failed);
        assert_eq!(
            r,
            "exited with code 2: error: unexpected argument '--bogus' found"
        );
        let (s, r) = classify_exit(None, "");
        assert_eq!(
            (s, r.as_str()),
            (RunStatus::Failed, "killed by a signal before it was ready")
        );
    }
}
