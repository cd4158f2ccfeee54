//! Running helper programs (Humanize's setup script, the knowledge root's query
//! script) with captured output and a deadline. Children never inherit our stdout:
//! in MCP mode that is the protocol channel.

use anyhow::{Context, Result};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a finished (or killed) child left behind.
#[derive(Debug, Clone)]
pub struct Captured {
    /// None when killed at the deadline or by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Captured {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Run `cmd` with stdin null and stdout/stderr captured, killing it after `timeout`.
/// The child leads its own process group, and the whole group is killed at the deadline,
/// so grandchildren (a script's `sleep`, `git`) cannot hold the output pipes open.
pub fn run_captured(mut cmd: Command, timeout: Duration) -> Result<Captured> {
    use std::os::unix::process::CommandExt;
    let desc = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {desc}"))?;
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .with_context(|| format!("waiting for {desc}"))?
        {
            break Some(status);
        }
        if start.elapsed() > timeout {
            timed_out = true;
            // SAFETY: killpg only sends a signal; the group id is our own child's pid.
            unsafe {
                libc::killpg(child.id() as libc::pid_t, libc::SIGKILL);
            }
            let _ = child.kill();
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
    Ok(Captured {
        code: if timed_out {
            None
        } else {
            status.and_then(|s| s.code())
        },
        stdout,
        stderr,
        timed_out,
    })
}

/// The last `max` characters of `text` (on a char boundary).
pub fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

/// True when `program` is an executable on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_kills_the_whole_process_group() {
        let mut cmd = Command::new("bash");
        cmd.args(["-c", "echo started; sleep 30; echo never"]);
        let t = Instant::now();
        let out = run_captured(cmd, Duration::from_millis(300)).unwrap();
        assert!(out.timed_out && out.code.is_none());
        assert_eq!(out.stdout, "started\n");
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the grandchild sleep held the pipes: {:?}",
            t.elapsed()
        );
    }

    #[test]
    fn captures_exit_code_and_both_streams() {
        let mut cmd = Command::new("bash");
        cmd.args(["-c", "echo out; echo err >&2; exit 7"]);
        let out = run_captured(cmd, Duration::from_secs(10)).unwrap();
        assert_eq!(
            (
                out.code,
                out.stdout.as_str(),
                out.stderr.as_str(),
                out.timed_out
            ),
            (Some(7), "out\n", "err\n", false)
        );
        assert_eq!(tail("abcdef", 3), "…def");
    }
}
