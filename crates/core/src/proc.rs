//! Every child process of vllm-sota starts here (a tidy test enforces it).
//!
//! Rules, one place:
//! - a child never inherits our stdout (in MCP mode it is the protocol channel): stdin is
//!   null, stdout and stderr are captured or go to a log file;
//! - a child leads its own process group, so a deadline, a cancel or a teardown reaches
//!   its grandchildren too: SIGTERM to the whole group, then SIGKILL after a grace period;
//! - a log file is redacted as it is written: the child writes into a pipe, a pump thread
//!   appends each line through [`crate::redact`] (plus the secret values of the child's own
//!   environment, which this process may not carry);
//! - short commands (`git`, `nvidia-smi`, `--help` probes) run with [`Cmd::run_capture`]
//!   under a timeout and a cancel check; the output stays in memory.

use anyhow::{Context, Result};
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a group gets between SIGTERM and SIGKILL unless the caller says otherwise.
pub(crate) const DEFAULT_GRACE: Duration = Duration::from_secs(2);
/// A log line longer than this is written in pieces (each piece redacted on its own).
const MAX_LOG_LINE: usize = 64 << 10;
const POLL: Duration = Duration::from_millis(20);

/// A command to run: program, arguments, environment additions, working directory.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    env_remove: Vec<OsString>,
    cwd: Option<PathBuf>,
    merge_stderr: bool,
    die_with_parent: bool,
    grace: Duration,
}

/// What a finished (or stopped) short command left behind.
#[derive(Debug, Clone)]
pub struct Captured {
    /// Exit code; `None` when stopped at the deadline, cancelled, or killed by a signal.
    pub code: Option<i32>,
    /// Standard output (with standard error interleaved under [`Cmd::merge_stderr`]).
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    pub cancelled: bool,
}

impl Captured {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// How a waited-for group ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The leader exited by itself (code `None` = killed by a signal).
    Exited(Option<i32>),
    /// The deadline passed; the group was stopped.
    TimedOut,
    /// The cancel check said stop; the group was stopped.
    Cancelled,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Cmd {
            program: program.as_ref().to_os_string(),
            args: Vec::new(),
            env: Vec::new(),
            env_remove: Vec::new(),
            cwd: None,
            merge_stderr: false,
            die_with_parent: false,
            grace: DEFAULT_GRACE,
        }
    }

    /// `argv[0]` is the program; errors on an empty argv.
    pub fn from_argv<S: AsRef<OsStr>>(argv: &[S]) -> Result<Self> {
        let (first, rest) = argv.split_first().context("empty command")?;
        Ok(Cmd::new(first).args(rest))
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_os_string());
        self
    }

    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.env
            .push((k.as_ref().to_os_string(), v.as_ref().to_os_string()));
        self
    }

    pub fn envs<K: AsRef<OsStr>, V: AsRef<OsStr>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        for (k, v) in vars {
            self = self.env(k, v);
        }
        self
    }

    pub fn env_remove(mut self, k: impl AsRef<OsStr>) -> Self {
        self.env_remove.push(k.as_ref().to_os_string());
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Standard error goes into the same stream as standard output.
    pub fn merge_stderr(mut self) -> Self {
        self.merge_stderr = true;
        self
    }

    /// The child gets SIGKILL when the thread that spawned it dies (Linux
    /// `PR_SET_PDEATHSIG`), so a `kill -9`ed job leaves no server holding a port. Spawn
    /// from a thread that lives as long as the child should.
    pub fn die_with_parent(mut self) -> Self {
        self.die_with_parent = true;
        self
    }

    /// Time between SIGTERM and SIGKILL when the group is stopped.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The program as given.
    pub fn program(&self) -> &OsStr {
        &self.program
    }

    /// Program and arguments, shell-quoted for display.
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| shell_quote(&a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn secret_values(&self) -> Vec<String> {
        let pairs: Vec<(String, String)> = self
            .env
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect();
        crate::redact::secret_values(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// The std command, in its own process group (or session), stdin null.
    fn command(&self, new_session: bool) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args).stdin(Stdio::null());
        for k in &self.env_remove {
            cmd.env_remove(k);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(d) = &self.cwd {
            cmd.current_dir(d);
        }
        let die = self.die_with_parent;
        // SAFETY: only async-signal-safe libc calls run between fork and exec.
        let parent = unsafe { libc::getpid() };
        unsafe {
            cmd.pre_exec(move || {
                let rc = if new_session {
                    libc::setsid()
                } else {
                    libc::setpgid(0, 0)
                };
                if rc == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                if die {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    // The parent may have died between fork and prctl.
                    if libc::getppid() != parent {
                        libc::_exit(1);
                    }
                }
                Ok(())
            });
        }
        cmd
    }

    fn spawn_err(&self) -> String {
        format!("cannot start `{}`", self.program.to_string_lossy())
    }

    /// Run to completion with output captured in memory, stopping the whole group at
    /// `timeout`.
    pub fn run_capture(&self, timeout: Duration) -> Result<Captured> {
        self.run_capture_cancellable(timeout, &|| false)
    }

    /// [`Cmd::run_capture`], also stopping the group as soon as `cancel()` is true.
    pub fn run_capture_cancellable(
        &self,
        timeout: Duration,
        cancel: &dyn Fn() -> bool,
    ) -> Result<Captured> {
        let mut cmd = self.command(false);
        let (out_r, out_w) = std::io::pipe()?;
        let err = if self.merge_stderr {
            cmd.stderr(out_w.try_clone()?);
            None
        } else {
            let (r, w) = std::io::pipe()?;
            cmd.stderr(w);
            Some(r)
        };
        cmd.stdout(out_w);
        let child = cmd.spawn().with_context(|| self.spawn_err())?;
        // Drop our copies of the write ends, or the readers never see EOF.
        drop(cmd);
        let (tx, rx) = mpsc::channel::<(bool, Vec<u8>)>();
        let reader = |mut r: std::io::PipeReader, is_err: bool, tx: mpsc::Sender<_>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = r.read_to_end(&mut buf);
                let _ = tx.send((is_err, buf));
            })
        };
        let mut pending = 1;
        reader(out_r, false, tx.clone());
        if let Some(r) = err {
            pending += 1;
            reader(r, true, tx.clone());
        }
        drop(tx);
        let mut group = Group {
            child,
            pgid: 0,
            grace: self.grace,
            pump: None,
        };
        group.pgid = group.child.id() as i32;
        let exit = group.wait(Some(timeout), cancel);
        // A grandchild may still hold the pipes after the leader exited: give it a moment,
        // then stop the group so the readers see EOF.
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let mut deadline = Instant::now() + Duration::from_millis(500);
        let mut killed = false;
        while pending > 0 {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok((is_err, bytes)) => {
                    pending -= 1;
                    if is_err {
                        stderr = bytes;
                    } else {
                        stdout = bytes;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) if !killed => {
                    kill_group(group.pgid, None, Duration::ZERO);
                    killed = true;
                    deadline = Instant::now() + Duration::from_secs(2);
                }
                Err(_) => break,
            }
        }
        Ok(Captured {
            code: match exit {
                Exit::Exited(c) => c,
                _ => None,
            },
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            timed_out: exit == Exit::TimedOut,
            cancelled: exit == Exit::Cancelled,
        })
    }

    /// Start in a new process group with stdout and stderr appended to `log`, redacted
    /// line by line as they are written.
    pub fn spawn_logged(&self, log: &Path) -> Result<Group> {
        crate::fsx::ensure_parent(log)?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot open log {}", log.display()))?;
        let mut cmd = self.command(false);
        let (r, w) = std::io::pipe()?;
        cmd.stderr(w.try_clone()?).stdout(w);
        let child = cmd.spawn().with_context(|| self.spawn_err())?;
        drop(cmd);
        let extra = self.secret_values();
        let pump = std::thread::spawn(move || pump_redacted(r, &mut file, &extra));
        let pgid = child.id() as i32;
        Ok(Group {
            child,
            pgid,
            grace: self.grace,
            pump: Some(pump),
        })
    }

    /// Start in a new session (it survives the end of this process and of its process
    /// group) with stdout and stderr appended to `log` as they are: the caller redacts
    /// the log when the child finishes. Returns the child's pid; the child is reaped in
    /// the background.
    pub(crate) fn spawn_detached(&self, log: &Path) -> Result<u32> {
        crate::fsx::ensure_parent(log)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot open log {}", log.display()))?;
        let mut cmd = self.command(true);
        cmd.stdout(file.try_clone()?).stderr(file);
        let mut child = cmd.spawn().with_context(|| self.spawn_err())?;
        let pid = child.id();
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        Ok(pid)
    }
}

/// Copy `r` into `out` line by line (`\n` or `\r` ends a line), each line redacted.
fn pump_redacted(mut r: impl Read, out: &mut impl Write, extra: &[String]) {
    let mut buf = vec![0u8; 16 << 10];
    let mut line: Vec<u8> = Vec::new();
    let emit = |line: &mut Vec<u8>, out: &mut dyn Write| {
        if line.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(line);
        let _ = out.write_all(crate::redact::redact_also(&text, extra).as_bytes());
        let _ = out.flush();
        line.clear();
    };
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        for &b in &buf[..n] {
            line.push(b);
            if b == b'\n' || b == b'\r' || line.len() >= MAX_LOG_LINE {
                emit(&mut line, out);
            }
        }
    }
    emit(&mut line, out);
}

/// A running child that leads its own process group.
pub struct Group {
    child: Child,
    pgid: i32,
    grace: Duration,
    pump: Option<JoinHandle<()>>,
}

impl Group {
    /// The group id (the leader's pid), for a record that lets a later process reap it.
    pub fn pgid(&self) -> i32 {
        self.pgid
    }

    /// `Some(code)` once the leader has exited (the log is then complete).
    pub fn try_wait(&mut self) -> Option<Option<i32>> {
        let status = self.child.try_wait().ok().flatten()?;
        self.join_pump(Duration::from_secs(2));
        Some(status.code())
    }

    /// Wait for the leader to exit; on `timeout` or `cancel()` stop the whole group.
    pub fn wait(&mut self, timeout: Option<Duration>, cancel: &dyn Fn() -> bool) -> Exit {
        let start = Instant::now();
        loop {
            if let Some(code) = self.try_wait() {
                return Exit::Exited(code);
            }
            if cancel() {
                self.stop();
                return Exit::Cancelled;
            }
            if timeout.is_some_and(|t| start.elapsed() >= t) {
                self.stop();
                return Exit::TimedOut;
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGTERM to the group, SIGKILL after the grace period, reap the leader, finish the log.
    pub fn stop(&mut self) {
        kill_group(self.pgid, Some(&mut self.child), self.grace);
        self.join_pump(Duration::from_secs(2));
    }

    fn join_pump(&mut self, limit: Duration) {
        let Some(p) = self.pump.take() else { return };
        let end = Instant::now() + limit;
        while !p.is_finished() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        if p.is_finished() {
            let _ = p.join();
        } else {
            // A process outside the group still holds the pipe: keep pumping in the background.
            self.pump = Some(p);
        }
    }
}

/// True when a process group still has members.
pub fn group_alive(pgid: i32) -> bool {
    if pgid <= 1 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence.
    let rc = unsafe { libc::kill(-pgid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// SIGTERM the group, wait up to `grace`, then SIGKILL; reap `child` when given. Returns
/// once the group is gone (or after 5 s more).
pub fn kill_group(pgid: i32, mut child: Option<&mut Child>, grace: Duration) {
    if pgid <= 1 {
        return;
    }
    // SAFETY: sending a signal to a group id we started.
    unsafe {
        libc::kill(-pgid, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    loop {
        if let Some(c) = child.as_deref_mut() {
            let _ = c.try_wait();
        }
        if !group_alive(pgid) || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(POLL);
    }
    if group_alive(pgid) {
        // SAFETY: as above.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    if let Some(c) = child {
        let _ = c.wait();
    }
    let end = Instant::now() + Duration::from_secs(5);
    while group_alive(pgid) && Instant::now() < end {
        std::thread::sleep(POLL);
    }
}

/// SIGTERM to a group (a detached job's session) without waiting.
pub(crate) fn signal_group(pgid: i32) {
    if pgid > 1 {
        // SAFETY: sending a signal only.
        unsafe {
            libc::kill(-pgid, libc::SIGTERM);
        }
    }
}

/// True when a process with this pid is running (a zombie, exited but not yet reaped by
/// its parent, is not).
pub(crate) fn pid_alive(pid: u32) -> bool {
    // SAFETY: kill(pid, 0) only checks for existence; EPERM also means it exists.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    if rc == 0 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().next());
        return state != Some("Z");
    }
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Is `exe` runnable: a path that exists, or a name found on `PATH`.
pub fn on_path(exe: &str) -> bool {
    if exe.contains('/') {
        return Path::new(exe).is_file();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(exe).is_file()))
        .unwrap_or(false)
}

/// POSIX single-quote a word when needed (for display and for `ssh host '<command>'`).
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

/// Shell-quoted argv, for display and for records.
pub fn shell_join<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|a| shell_quote(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The last `max` bytes of `text` (on a char boundary), with `…` when cut.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn bash(script: &str) -> Cmd {
        Cmd::new("bash").args(["-c", script])
    }

    #[test]
    fn deadline_stops_the_whole_group_and_grandchildren_cannot_hold_the_pipes() {
        let t = Instant::now();
        let out = bash("echo started; sleep 30 & sleep 30; echo never")
            .grace(Duration::from_millis(200))
            .run_capture(Duration::from_millis(300))
            .unwrap();
        assert!(out.timed_out && out.code.is_none());
        assert_eq!(out.stdout, "started\n");
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    }

    #[test]
    fn captures_exit_code_and_both_streams_separately_or_merged() {
        let out = bash("echo out; echo err >&2; exit 7")
            .run_capture(Duration::from_secs(10))
            .unwrap();
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr.as_str()),
            (Some(7), "out\n", "err\n")
        );
        let out = bash("echo out; echo err >&2")
            .merge_stderr()
            .run_capture(Duration::from_secs(10))
            .unwrap();
        assert!(out.success() && out.stdout.contains("out") && out.stdout.contains("err"));
        assert!(
            Cmd::new("definitely-not-a-command-xyz")
                .run_capture(Duration::from_secs(5))
                .unwrap_err()
                .to_string()
                .contains("definitely-not-a-command-xyz")
        );
    }

    #[test]
    fn a_background_child_that_outlives_the_leader_does_not_block_capture() {
        let t = Instant::now();
        let out = bash("echo hi; (sleep 30) & exit 0")
            .run_capture(Duration::from_secs(10))
            .unwrap();
        assert_eq!((out.code, out.stdout.as_str()), (Some(0), "hi\n"));
        assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    }

    #[test]
    fn cancel_stops_the_group() {
        let start = Instant::now();
        let cancel = || start.elapsed() > Duration::from_millis(200);
        let out = bash("sleep 30")
            .run_capture_cancellable(Duration::from_secs(60), &cancel)
            .unwrap();
        assert!(out.cancelled && !out.timed_out && out.code.is_none());
    }

    #[test]
    fn a_server_log_on_disk_holds_no_secret_of_the_launch_environment() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");
        std::fs::write(&log, "# header\n").unwrap();
        let secret = "plain-value-without-token-shape-42";
        let mut g = bash(
            "echo \"token is $HF_TOKEN\"; printf 'progress %s\\r' \"$MY_API_KEY\"; \
             echo \"$HF_TOKEN\" >&2; sleep 0.2; printf 'tail-no-newline'",
        )
        .env("HF_TOKEN", secret)
        .env("MY_API_KEY", "another-plain-secret-99")
        .spawn_logged(&log)
        .unwrap();
        assert_eq!(
            g.wait(Some(Duration::from_secs(10)), &|| false),
            Exit::Exited(Some(0))
        );
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(!text.contains(secret), "{text}");
        assert!(!text.contains("another-plain-secret-99"), "{text}");
        assert!(
            text.starts_with("# header\ntoken is <redacted>\n"),
            "{text}"
        );
        assert!(text.ends_with("tail-no-newline"), "{text}");
    }

    #[test]
    fn stop_reaches_a_grandchild_and_the_log_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("s.log");
        let mut g = bash("trap '' TERM; echo up; (sleep 60) & sleep 60")
            .grace(Duration::from_millis(300))
            .spawn_logged(&log)
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let pgid = g.pgid();
        assert!(group_alive(pgid));
        g.stop();
        assert!(!group_alive(pgid));
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "up\n");
    }

    #[test]
    fn quoting_and_tail() {
        assert_eq!(
            shell_join(&["a", "b c", "it's", ""]),
            "a 'b c' 'it'\\''s' ''"
        );
        assert_eq!(tail("abcdef", 3), "…def");
        assert!(on_path("bash") && !on_path("definitely-not-a-command-xyz"));
    }
}
