//! Running ncu and harness commands as child processes, through `vllm_sota_core::proc`.
//!
//! Children never inherit our stdout (it is the MCP channel): stdout and stderr go
//! to a redacted log file (or stdout to the CSV export), stdin is closed, and
//! `LC_ALL=C` fixes the number format of the CSV exports. Every run has a timeout and
//! honours cancellation; both stop the child's whole process group.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vllm_sota_core::ToolContext;
use vllm_sota_core::proc::{Cmd, Exit};

/// Outcome of one child process.
#[derive(Debug, Clone)]
pub(crate) struct RunOutcome {
    /// Exit code; None when killed (timeout / cancel / signal).
    pub code: Option<i32>,
    pub timed_out: bool,
    pub wall_s: f64,
}

/// Find `ncu`: an explicit path, else `$PATH`, else the usual install folders.
pub(crate) fn find_ncu(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return p.is_file().then(|| p.to_path_buf());
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let c = dir.join("ncu");
            if c.is_file() {
                return Some(c);
            }
        }
    }
    for root in ["/usr/local/cuda/bin", "/opt/nvidia/nsight-compute"] {
        let root = Path::new(root);
        if root.join("ncu").is_file() {
            return Some(root.join("ncu"));
        }
        // /opt/nvidia/nsight-compute/<version>/ncu: the newest version by name.
        if let Ok(rd) = std::fs::read_dir(root) {
            let mut vs: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path().join("ncu"))
                .filter(|p| p.is_file())
                .collect();
            vs.sort();
            if let Some(last) = vs.pop() {
                return Some(last);
            }
        }
    }
    None
}

/// Run `argv` through `core::proc` (its own process group, stopped with SIGTERM then
/// SIGKILL at the timeout or on cancel), with `LC_ALL=C`. Without `stdout_to`, stdout and
/// stderr go to `log`, redacted as written (the log is started afresh). With `stdout_to`
/// (a CSV export: data, not log), stdout is written there and the redacted stderr to `log`.
pub(crate) fn run_logged(
    argv: &[String],
    cwd: Option<&Path>,
    log: &Path,
    stdout_to: Option<&Path>,
    timeout: Duration,
    ctx: &ToolContext,
) -> Result<RunOutcome> {
    let mut cmd = Cmd::from_argv(argv)?.env("LC_ALL", "C").env("LANG", "C");
    if let Some(d) = cwd {
        cmd = cmd.current_dir(d);
    }
    let prog = argv.first().map(String::as_str).unwrap_or("");
    tracing::info!(command = %vllm_sota_core::redact::redact(&cmd.display()), "running");
    let start = Instant::now();
    let cancel = || ctx.is_cancelled();
    let (code, timed_out) = match stdout_to {
        None => {
            if log.exists() {
                std::fs::remove_file(log)
                    .with_context(|| format!("cannot replace log {}", log.display()))?;
            }
            let mut group = cmd.spawn_logged(log)?;
            match group.wait(Some(timeout), &cancel) {
                Exit::Exited(code) => (code, false),
                Exit::TimedOut => (None, true),
                Exit::Cancelled => bail!("cancelled by the client while running '{prog}'"),
            }
        }
        Some(out) => {
            let c = cmd.run_capture_cancellable(timeout, &cancel)?;
            vllm_sota_core::fsx::write_text(out, &c.stdout)?;
            vllm_sota_core::fsx::write_text(log, &vllm_sota_core::redact::redact(&c.stderr))?;
            if c.cancelled {
                bail!("cancelled by the client while running '{prog}'");
            }
            (c.code, c.timed_out)
        }
    };
    Ok(RunOutcome {
        code,
        timed_out,
        wall_s: start.elapsed().as_secs_f64(),
    })
}

/// The ncu collection command for one side.
#[allow(clippy::too_many_arguments)]
pub(crate) fn ncu_collect_argv(
    ncu: &Path,
    kernel_regex: &str,
    count: u32,
    launch_skip: u32,
    kernel_name_base: Option<&str>,
    extra: &[String],
    report_stem: &Path,
    harness: &[String],
) -> Vec<String> {
    let mut v: Vec<String> = vec![
        ncu.display().to_string(),
        "--set".into(),
        "full".into(),
        "--clock-control".into(),
        "none".into(),
        "--target-processes".into(),
        "all".into(),
    ];
    if let Some(b) = kernel_name_base {
        v.extend(["--kernel-name-base".into(), b.to_string()]);
    }
    v.extend([
        "-k".into(),
        format!("regex:{kernel_regex}"),
        "-c".into(),
        count.to_string(),
    ]);
    if launch_skip > 0 {
        v.extend(["--launch-skip".into(), launch_skip.to_string()]);
    }
    v.extend(extra.iter().cloned());
    v.extend(["-f".into(), "-o".into(), report_stem.display().to_string()]);
    v.extend(harness.iter().cloned());
    v
}

/// The export command for one page of a saved report.
pub(crate) fn ncu_export_argv(ncu: &Path, report: &Path, page: &str) -> Vec<String> {
    vec![
        ncu.display().to_string(),
        "--import".into(),
        report.display().to_string(),
        "--csv".into(),
        "--page".into(),
        page.into(),
        "--print-units".into(),
        "base".into(),
    ]
}

/// The report file ncu wrote for `-o <stem>` (`.ncu-rep`, or `.ncu-repz` from 2026.3).
pub(crate) fn report_for_stem(stem: &Path) -> Option<PathBuf> {
    ["ncu-rep", "ncu-repz"]
        .iter()
        .map(|ext| stem.with_extension(ext))
        .find(|p| p.is_file())
}

/// Last match of `regex` (group 1) as a number in `text`.
pub(crate) fn last_number(text: &str, regex: &regex::Regex) -> Option<f64> {
    regex
        .captures_iter(text)
        .filter_map(|c| c.get(1).and_then(|m| m.as_str().trim().parse::<f64>().ok()))
        .last()
}

/// Read at most the last `max` bytes of a log (for messages).
pub(crate) fn log_tail(path: &Path, max: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let start = text.len().saturating_sub(max);
    String::from_utf8_lossy(&text[start..]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `argv` run through [`run_logged`] into `log`, with `timeout` and no cancel.
    fn run(argv: &[&str], log: &Path, timeout: Duration) -> RunOutcome {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        run_logged(&argv, None, log, None, timeout, &ToolContext::new()).unwrap()
    }

    #[test]
    fn children_run_with_c_locale_and_a_timeout_and_never_use_our_stdout() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        let r = run(
            &["sh", "-c", "echo out $LC_ALL; echo err >&2; exit 3"],
            &log,
            Duration::from_secs(20),
        );
        assert_eq!(r.code, Some(3));
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("out C") && text.contains("err"), "{text}");
        run(
            &[
                "sh",
                "-c",
                "echo HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyz0123",
            ],
            &log,
            Duration::from_secs(20),
        );
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            !text.contains("hf_abcdefghijklmnopqrstuvwxyz0123") && text.contains("HF_TOKEN="),
            "{text}"
        );
        let r = run(&["sleep", "5"], &log, Duration::from_millis(300));
        assert!(r.timed_out && r.code.is_none());
    }

    #[test]
    fn collect_command_pins_clock_control_none_and_the_kernel_filter() {
        let argv = ncu_collect_argv(
            Path::new("/x/ncu"),
            "rms_",
            2,
            3,
            None,
            &[],
            Path::new("/o/base"),
            &["python3".into(), "k.py".into()],
        );
        let s = argv.join(" ");
        assert_eq!(
            s,
            "/x/ncu --set full --clock-control none --target-processes all -k regex:rms_ -c 2 --launch-skip 3 -f -o /o/base python3 k.py"
        );
        let re = regex::Regex::new(r"base ms ([0-9.eE+-]+)").unwrap();
        assert_eq!(
            last_number("base ms 0.1\nbase ms 0.0543\n", &re),
            Some(0.0543)
        );
    }
}
