//! Child processes: own process group, own log, no shell, group teardown.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Expand a launcher template around `argv`: `{argv}` spreads it, `{command}` becomes one
/// shell-quoted string (for `ssh host '<command>'`).
pub fn wrap_with_launcher(argv: &[String], launcher: Option<&[String]>) -> Vec<String> {
    let Some(template) = launcher else {
        return argv.to_vec();
    };
    let mut out = Vec::new();
    for part in template {
        if part == "{argv}" {
            out.extend(argv.iter().cloned());
        } else if part.contains("{command}") {
            let joined = argv
                .iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" ");
            out.push(part.replace("{command}", &joined));
        } else {
            out.push(part.clone());
        }
    }
    out
}

/// POSIX single-quote a word when needed (for display and for `{command}`).
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

pub fn display_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Is `exe` runnable: a path that exists, or a name found on `PATH`.
pub fn executable_exists(exe: &str) -> bool {
    if exe.contains('/') {
        return Path::new(exe).is_file();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(exe).is_file()))
        .unwrap_or(false)
}

/// Spawn `argv` in a new process group with stdout+stderr appended to `log`, stdin null,
/// the parent's environment plus `env`. The child gets SIGKILL if this thread's process dies
/// (PR_SET_PDEATHSIG), so a `kill -9`ed job does not leave a server holding the port.
pub fn spawn_group(argv: &[String], env: &BTreeMap<String, String>, log: &Path) -> Result<Child> {
    anyhow::ensure!(!argv.is_empty(), "empty command");
    vllm_sota_core::fsx::ensure_parent(log)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open log {}", log.display()))?;
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let parent = unsafe { libc::getpid() };
    unsafe {
        cmd.pre_exec(move || {
            if libc::setpgid(0, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // The parent may have died between fork and prctl.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    cmd.spawn()
        .with_context(|| format!("cannot start `{}`", argv[0]))
}

/// True when a process group still has members.
pub fn group_alive(pgid: i32) -> bool {
    let rc = unsafe { libc::kill(-pgid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// SIGTERM the group, wait up to `grace`, then SIGKILL; reap `child` when given.
pub fn kill_group(pgid: i32, child: Option<&mut Child>, grace: Duration) {
    unsafe {
        libc::kill(-pgid, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    let mut child = child;
    loop {
        if let Some(c) = child.as_deref_mut() {
            let _ = c.try_wait();
        }
        if !group_alive(pgid) || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if group_alive(pgid) {
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    if let Some(c) = child {
        let _ = c.wait();
    }
    let end = Instant::now() + Duration::from_secs(5);
    while group_alive(pgid) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Output of a short command run to completion.
pub struct Captured {
    pub status: Option<i32>,
    pub output: String,
    pub timed_out: bool,
}

/// Run `argv` (own group, stdin null) capturing stdout+stderr, killing the group after `timeout`.
pub fn run_capture(
    argv: &[String],
    env: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<Captured> {
    let tmp = tempfile::NamedTempFile::new()?;
    let mut child = spawn_group(argv, env, tmp.path())?;
    let pgid = child.id() as i32;
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s.code();
        }
        if start.elapsed() >= timeout {
            timed_out = true;
            kill_group(pgid, Some(&mut child), Duration::from_secs(2));
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let bytes = std::fs::read(tmp.path()).unwrap_or_default();
    Ok(Captured {
        status,
        output: String::from_utf8_lossy(&bytes).into_owned(),
        timed_out,
    })
}
