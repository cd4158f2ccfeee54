//! Crash-safe file writes. Every artifact goes through here, and everything
//! written is passed through [`crate::redact::redact`] first.
//!
//! - [`write_text`] / [`write_json`]: temp file in the same directory, fsync, rename:
//!   a reader sees the old file or the new one, never half of one.
//! - [`append_line`]: exclusive `flock` on the file, repair of a torn tail left by a
//!   crashed writer, one `write_all` of the whole line, fsync. Concurrent appenders
//!   from any number of processes lose nothing and interleave whole lines only.

use anyhow::{Context, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::redact::{redact, redact_json};

/// Create the parent directory of `path` if needed.
pub fn ensure_parent(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create directory {}", parent.display()))?;
    }
    Ok(())
}

/// Atomically replace `path` with `bytes` (no redaction: for binary data and already-clean text).
pub(crate) fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    ensure_parent(path)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // tempfile creates 0600; artifacts are meant to be read by people and other tools.
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))
            .ok();
    }
    tmp.as_file().sync_all().ok();
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

/// Atomically replace `path` with redacted `text`.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    write_bytes_atomic(path, redact(text).as_bytes())
}

/// Atomically replace `path` with pretty JSON of `value`, secrets redacted.
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let mut json = serde_json::to_value(value).context("cannot serialize to JSON")?;
    redact_json(&mut json);
    let mut text = serde_json::to_string_pretty(&json)?;
    text.push('\n');
    write_bytes_atomic(path, text.as_bytes())
}

/// Write `text` only when `path` does not exist yet. Returns true when it wrote.
pub fn write_text_if_absent(path: &Path, text: &str) -> Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    write_text(path, text)?;
    Ok(true)
}

/// Read a UTF-8 file, naming it in the error.
/// Entries of `dir` that `keep` accepts, in name order; an unreadable or missing
/// directory has none.
pub fn sorted_entries(dir: &Path, keep: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| keep(p))
        .collect();
    out.sort();
    out
}

pub fn read_text(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Read and parse a JSON file, naming the file (and serde's line/column) in the error.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = read_text(path)?;
    serde_json::from_str(&text).with_context(|| format!("invalid JSON in {}", path.display()))
}

/// Append one line (a newline is added) under an exclusive file lock.
///
/// If a previous writer crashed mid-line, the file does not end in `\n`; that torn
/// tail was never acknowledged to anyone, so it is cut off before appending.
pub fn append_line(path: &Path, line: &str) -> Result<()> {
    let clean = redact(line);
    assert!(!clean.contains('\n'), "append_line takes a single line");
    ensure_parent(path)?;
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {} for appending", path.display()))?;
    file.lock()
        .with_context(|| format!("cannot lock {}", path.display()))?;
    let result = (|| -> Result<()> {
        repair_torn_tail(&mut file)?;
        let mut buf = String::with_capacity(clean.len() + 1);
        buf.push_str(&clean);
        buf.push('\n');
        file.write_all(buf.as_bytes())?;
        file.sync_data()?;
        Ok(())
    })()
    .with_context(|| format!("cannot append to {}", path.display()));
    file.unlock().ok();
    result
}

/// Rewrite a text file through [`redact`] in place (same inode: a process still appending
/// to it keeps appending to the redacted file). Missing file: nothing to do.
pub(crate) fn redact_in_place(path: &Path) -> Result<()> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let text = String::from_utf8_lossy(&bytes);
    let std::borrow::Cow::Owned(clean) = redact(&text) else {
        return Ok(());
    };
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {} for redaction", path.display()))?;
    file.set_len(0)?;
    file.write_all(clean.as_bytes())?;
    file.sync_data()?;
    Ok(())
}

/// Append one JSON value as a JSONL line, secrets redacted.
pub fn append_jsonl<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let mut json = serde_json::to_value(value).context("cannot serialize to JSON")?;
    redact_json(&mut json);
    append_line(path, &serde_json::to_string(&json)?)
}

fn repair_torn_tail(file: &mut File) -> Result<()> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut last)?;
    if last[0] == b'\n' {
        return Ok(());
    }
    // Find the last newline and truncate after it.
    let window = len.min(1 << 20);
    let mut buf = vec![0u8; window as usize];
    file.seek(SeekFrom::Start(len - window))?;
    file.read_exact(&mut buf)?;
    let keep = match buf.iter().rposition(|&b| b == b'\n') {
        Some(pos) => len - window + pos as u64 + 1,
        None if window == len => 0,
        None => anyhow::bail!("last line is longer than 1 MiB and unterminated"),
    };
    tracing::warn!(
        cut = len - keep,
        "cutting a torn line left by an interrupted writer"
    );
    file.set_len(keep)?;
    Ok(())
}

/// Read a JSONL file into typed rows. Blank lines are skipped; a torn final line
/// (no newline, invalid JSON) is ignored; any other bad line is an error naming file and line.
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let torn_tail = !text.is_empty() && !text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut rows = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(row) => rows.push(row),
            Err(_) if torn_tail && i + 1 == lines.len() => break,
            Err(e) => anyhow::bail!("{}:{}: invalid row: {e}", path.display(), i + 1),
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_tail_is_cut_before_append() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.jsonl");
        fs::write(&p, "{\"a\":1}\n{\"a\":").unwrap();
        append_line(&p, "{\"a\":2}").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "{\"a\":1}\n{\"a\":2}\n");
    }

    #[test]
    fn atomic_write_redacts() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x/y.md");
        write_text(&p, "cmd --hf-token hf_AAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        let s = fs::read_to_string(&p).unwrap();
        assert!(!s.contains("hf_AAAA"), "{s}");
    }

    #[test]
    fn jsonl_bad_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.jsonl");
        fs::write(&p, "{\"a\":1}\nnot json\n{\"a\":3}\n").unwrap();
        let err = read_jsonl::<serde_json::Value>(&p).unwrap_err().to_string();
        assert!(err.contains("r.jsonl:2"), "{err}");
    }
}
