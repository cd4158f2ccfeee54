//! Streaming reader: one pass over a (gzipped) Chrome trace into a [`TraceStore`].
//!
//! A helper thread decompresses into 1 MiB chunks; a hand-written resumable scanner
//! parses the JSON (no DOM, no per-event allocation: field values are borrowed slices,
//! names are interned). Only the `traceEvents` array is walked in detail; the few
//! top-level keys we need are parsed, the rest skipped. The whole JSON text is never
//! held: memory is the store plus a bounded number of chunks.
//!
//! With two or more cores ([`default_workers`]) the events are parsed in parallel: each
//! chunk becomes a batch of whole events, worker threads parse batches into partial
//! stores, and the calling thread merges them in file order (see `parallel_events`); the
//! result is identical to the sequential pass, which reruns whenever the parallel pass
//! meets anything unusual (bad JSON, truncation, a cut that was not an event boundary)
//! and so also gives the exact error messages.

use crate::store::*;
use anyhow::{Context, Result, anyhow, bail};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

const CHUNK: usize = 1 << 20;
/// Free room kept in front of each chunk: the parallel pass writes the previous chunk's
/// unfinished event there, so a batch is one buffer without copying the chunk.
const HEAD: usize = 64 << 10;

/// Read one trace file (`.json`, `.json.gz`) into a store. Errors name the file and,
/// for bad JSON, the line and byte offset.
///
/// Parses on [`default_workers`] threads (batches of whole events, merged in file order
/// into exactly the store a sequential pass builds); any anomaly (bad JSON, truncation,
/// a batch cut that was not an event boundary, text pids) reruns the sequential pass,
/// which also produces the precise error message.
pub fn read_trace(path: &Path) -> Result<TraceStore> {
    read_trace_with_workers(path, default_workers())
}

/// Parse workers used by [`read_trace`]: `$VLLM_SOTA_TRACE_WORKERS` when set, else one per
/// core left over by the decompression thread, at most 4; below 2 the reader is sequential
/// (on two cores, decompression plus one parser already fill both, and the parallel pass
/// would only add its merge).
pub fn default_workers() -> usize {
    if let Some(n) = std::env::var("VLLM_SOTA_TRACE_WORKERS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        return n;
    }
    std::thread::available_parallelism()
        .map(|n| (n.get() - 1).min(4))
        .unwrap_or(1)
}

/// The parallel pass alone (no sequential rerun): an error when it had to fall back.
/// For tests that check the parallel and sequential stores are identical.
#[doc(hidden)]
pub fn read_trace_parallel_strict(path: &Path, workers: usize) -> Result<TraceStore> {
    read_path_once(path, workers.max(2)).map_err(|e| {
        if e.is::<NeedSequential>() {
            anyhow!(
                "{}: the parallel pass fell back to the sequential one",
                path.display()
            )
        } else {
            e
        }
    })
}

/// [`read_trace`] with an explicit number of parse workers (0 or 1 = sequential).
pub fn read_trace_with_workers(path: &Path, workers: usize) -> Result<TraceStore> {
    if workers >= 2 {
        match read_path_once(path, workers) {
            Ok(s) => return Ok(s),
            Err(e) if e.is::<NeedSequential>() => {
                tracing::debug!("{}: parallel parse fell back to sequential", path.display())
            }
            Err(e) => return Err(e),
        }
    }
    read_path_once(path, 0)
}

fn open_path(path: &Path) -> Result<Box<dyn Read + Send>> {
    let file = File::open(path).with_context(|| format!("cannot open trace {}", path.display()))?;
    Ok(if is_gzip_path(path) || sniff_gzip(path) {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            256 * 1024,
            file,
        )))
    } else {
        Box::new(file)
    })
}

fn read_path_once(path: &Path, workers: usize) -> Result<TraceStore> {
    let source = open_path(path)?;
    let mut store = TraceStore {
        path: path.to_path_buf(),
        ..Default::default()
    };
    match parse_stream(source, &mut store, workers) {
        Ok(()) => {}
        Err(e) if e.is::<NeedSequential>() => return Err(e),
        Err(e) => {
            let e = with_line_number(e, || open_path(path));
            return Err(e.context(format!("trace {}", path.display())));
        }
    }
    crate::link::finish(&mut store);
    Ok(store)
}

/// Parse trace JSON from any byte source (used by tests and the fuzz target).
pub fn read_trace_bytes(bytes: &[u8], label: &str) -> Result<TraceStore> {
    read_trace_bytes_with_workers(bytes, label, default_workers())
}

/// [`read_trace_bytes`] with an explicit number of parse workers (0 or 1 = sequential).
pub fn read_trace_bytes_with_workers(
    bytes: &[u8],
    label: &str,
    workers: usize,
) -> Result<TraceStore> {
    if workers >= 2 {
        match read_bytes_once(bytes, label, workers) {
            Ok(s) => return Ok(s),
            Err(e) if e.is::<NeedSequential>() => {}
            Err(e) => return Err(e),
        }
    }
    read_bytes_once(bytes, label, 0)
}

fn read_bytes_once(bytes: &[u8], label: &str, workers: usize) -> Result<TraceStore> {
    let mut store = TraceStore {
        path: label.into(),
        ..Default::default()
    };
    let open = || -> Result<Box<dyn Read + Send>> {
        let owned = bytes.to_vec();
        Ok(if owned.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::read::MultiGzDecoder::new(std::io::Cursor::new(
                owned,
            )))
        } else {
            Box::new(std::io::Cursor::new(owned))
        })
    };
    match parse_stream(open()?, &mut store, workers) {
        Ok(()) => {}
        Err(e) if e.is::<NeedSequential>() => return Err(e),
        Err(e) => {
            let e = with_line_number(e, open);
            return Err(e.context(format!("trace {label}")));
        }
    }
    crate::link::finish(&mut store);
    Ok(store)
}

/// Internal signal: the parallel pass met something only the sequential pass handles
/// exactly (an error to report, or a batch cut that was not an event boundary).
#[derive(Debug)]
struct NeedSequential;
impl std::fmt::Display for NeedSequential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("parallel parse needs the sequential pass")
    }
}
impl std::error::Error for NeedSequential {}

/// A JSON error at a byte offset of the decompressed text. Its line number is counted
/// only when the error happens ([`with_line_number`], a second pass over the source):
/// counting newlines as the text streams by would cost every successful read.
#[derive(Debug)]
struct JsonErrorAt {
    offset: u64,
    /// The message is `{before}{line}{after}`.
    before: String,
    after: String,
}
impl std::fmt::Display for JsonErrorAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}?{}", self.before, self.after)
    }
}
impl std::error::Error for JsonErrorAt {}

fn json_error_at(offset: u64, before: String, after: String) -> anyhow::Error {
    anyhow::Error::new(JsonErrorAt {
        offset,
        before,
        after,
    })
}

/// Fill in the line number of a [`JsonErrorAt`] by counting the newlines before its offset
/// in a fresh read of the source; other errors pass through.
fn with_line_number(
    e: anyhow::Error,
    open: impl FnOnce() -> Result<Box<dyn Read + Send>>,
) -> anyhow::Error {
    let Some(at) = e.downcast_ref::<JsonErrorAt>() else {
        return e;
    };
    let mut newlines = 0u64;
    if let Ok(mut src) = open() {
        let mut buf = vec![0u8; CHUNK];
        let mut left = at.offset;
        while left > 0 {
            let n = match src.read(&mut buf[..CHUNK.min(left as usize)]) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            newlines += count_nl(&buf[..n]);
            left -= n as u64;
        }
    }
    anyhow!("{}{}{}", at.before, 1 + newlines, at.after)
}

fn is_gzip_path(path: &Path) -> bool {
    path.extension().map(|e| e == "gz").unwrap_or(false)
}

fn sniff_gzip(path: &Path) -> bool {
    let mut magic = [0u8; 2];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map(|_| magic == [0x1f, 0x8b])
        .unwrap_or(false)
}

enum Msg {
    /// A chunk, with the JSON in `buf[HEAD..]`.
    Data(Vec<u8>),
    Eof,
    Err(std::io::Error),
}

type ReaderParts = (
    Receiver<Msg>,
    SyncSender<Vec<u8>>,
    std::thread::JoinHandle<()>,
);

/// Decompress on a helper thread into chunks of [`CHUNK`] bytes after [`HEAD`] free bytes;
/// spent chunks come back through the recycle channel.
fn spawn_reader(mut src: Box<dyn Read + Send>) -> Result<ReaderParts> {
    let (tx, rx) = sync_channel::<Msg>(3);
    let (recycle_tx, recycle_rx) = sync_channel::<Vec<u8>>(4);
    let handle = std::thread::Builder::new()
        .name("trace-gunzip".into())
        .spawn(move || {
            loop {
                let mut buf = recycle_rx
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(HEAD + CHUNK));
                // Recycled buffers usually have this length already: no memset per chunk.
                buf.resize(HEAD + CHUNK, 0);
                let mut filled = 0;
                let mut err = None;
                while filled < CHUNK {
                    match src.read(&mut buf[HEAD + filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            err = Some(e);
                            break;
                        }
                    }
                }
                buf.truncate(HEAD + filled);
                let eof = filled < CHUNK && err.is_none();
                if filled > 0 && tx.send(Msg::Data(buf)).is_err() {
                    return;
                }
                if let Some(e) = err {
                    let _ = tx.send(Msg::Err(e));
                    return;
                }
                if eof {
                    let _ = tx.send(Msg::Eof);
                    return;
                }
            }
        })
        .context("cannot start the decompression thread")?;
    Ok((rx, recycle_tx, handle))
}

/// Scanner result: `Incomplete` = need more bytes (the caller refills and retries from
/// the last committed position).
#[derive(Debug)]
enum ScanErr {
    Incomplete,
    Syntax(usize, String),
}
type SR<T> = std::result::Result<T, ScanErr>;

#[derive(Clone, Copy, PartialEq, Debug)]
enum State {
    Start,
    TopKey,
    TopAfterValue,
    EventsFirst,
    EventsNext,
    AfterEventsArray,
    Done,
}

struct Parser<'s> {
    store: &'s mut TraceStore,
    state: State,
    top_is_array: bool,
    saw_events: bool,
    event_index: u64,
    thread_map: FxHashMap<(i64, i64), u32>,
    last_thread: ((i64, i64), u32),
    text_ids: FxHashMap<String, i64>,
    scratch: String,
    /// Worker mode (a batch of a parallel parse): top-level values and thread names are
    /// logged for the in-order merge instead of applied.
    log: Option<BatchLog>,
    /// Direct-mapped cache in front of the interner for frame names (a trace repeats a
    /// thousand or so names a million times): a cheap key from three words of the name
    /// picks the slot, and a full comparison confirms the hit.
    name_cache: Vec<(u64, NameId)>,
}

const NAME_CACHE_SLOTS: usize = 1 << 10;

/// Key of a name for [`Parser::name_cache`]: length, first, middle and last eight bytes.
#[inline(always)]
fn name_cache_key(name: &[u8]) -> u64 {
    let word = |at: usize| u64::from_le_bytes(name[at..at + 8].try_into().unwrap());
    let (first, middle, last) = if name.len() >= 8 {
        (word(0), word((name.len() - 8) / 2), word(name.len() - 8))
    } else {
        let mut w = [0u8; 8];
        w[..name.len()].copy_from_slice(name);
        (u64::from_le_bytes(w), 0, 0)
    };
    let mixed = (first ^ middle.rotate_left(21) ^ last.rotate_left(43) ^ name.len() as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    mixed | 1 // never 0, the empty-slot key
}

#[derive(Default)]
struct BatchLog {
    top_values: Vec<(Vec<u8>, Vec<u8>)>,
    thread_names: Vec<(u32, Option<String>)>,
}

impl<'s> Parser<'s> {
    fn new(store: &'s mut TraceStore, state: State, top_is_array: bool) -> Self {
        Parser {
            store,
            state,
            top_is_array,
            saw_events: false,
            event_index: 0,
            thread_map: FxHashMap::default(),
            last_thread: ((i64::MIN, i64::MIN), NONE),
            text_ids: FxHashMap::default(),
            scratch: String::new(),
            log: None,
            name_cache: vec![(0, NONE); NAME_CACHE_SLOTS],
        }
    }
}

/// Drive the scanner over the decompressed stream, in place: the text is parsed where the
/// decompression thread wrote it, and an event cut by a chunk's end is copied into the
/// next chunk's head room (a plain growing buffer only for events longer than that).
fn parse_stream(src: Box<dyn Read + Send>, store: &mut TraceStore, workers: usize) -> Result<()> {
    let (rx, recycle, handle) = spawn_reader(src)?;
    let mut p = Parser::new(store, State::Start, false);
    // The unparsed text is `work[pos..]`; `work[start..]` begins at stream offset `base`.
    let mut work: Vec<u8> = Vec::new();
    let mut start = 0usize;
    let mut pos = 0usize;
    let mut base = 0u64;
    let mut eof = false;
    let result = (|| -> Result<()> {
        loop {
            let offset = |i: usize| base + (i - start) as u64;
            if p.state == State::Done {
                // Only whitespace may follow.
                if let Some(off) = work[pos..].iter().position(|b| !b" \t\r\n".contains(b)) {
                    let at = offset(pos + off);
                    return Err(json_error_at(
                        at,
                        "unexpected data after the end of the JSON document at line ".into(),
                        format!(", byte {at}"),
                    ));
                }
                pos = work.len();
            } else {
                match p.step(&work, pos) {
                    Ok(next) => {
                        pos = next;
                        if workers >= 2 && p.state == State::EventsFirst {
                            // Inside `traceEvents`: the rest goes to the parallel pass.
                            let carry = work[pos..].to_vec();
                            return parallel_events(&mut p, carry, &rx, &recycle, workers);
                        }
                        continue;
                    }
                    Err(ScanErr::Syntax(at, msg)) => {
                        let at = offset(at.min(work.len()));
                        return Err(json_error_at(
                            at,
                            "invalid JSON at line ".into(),
                            format!(", byte offset {at}: {msg}"),
                        ));
                    }
                    Err(ScanErr::Incomplete) => {}
                }
            }
            if eof {
                if p.state == State::Done {
                    return Ok(());
                }
                if work[pos..].iter().all(|b| b" \t\r\n".contains(b)) && p.state == State::Start {
                    bail!("the file is empty (no JSON document)");
                }
                let at = offset(work.len());
                return Err(json_error_at(
                    at,
                    "unexpected end of JSON at line ".into(),
                    format!(
                        ", byte offset {at} (truncated file?) while reading {}",
                        p.describe_state()
                    ),
                ));
            }
            // Refill: the unparsed tail goes in front of the next chunk.
            match rx.recv() {
                Ok(Msg::Data(mut chunk)) => {
                    p.store.counts.json_bytes += (chunk.len() - HEAD) as u64;
                    let carry = work.len() - pos;
                    let carry_at = offset(pos);
                    if carry <= HEAD {
                        let s = HEAD - carry;
                        chunk[s..HEAD].copy_from_slice(&work[pos..]);
                        let spent = std::mem::replace(&mut work, chunk);
                        if spent.capacity() >= HEAD + CHUNK {
                            let _ = recycle.try_send(spent);
                        }
                        start = s;
                    } else {
                        // An unfinished value longer than the head room: grow a buffer.
                        work.drain(..pos);
                        work.extend_from_slice(&chunk[HEAD..]);
                        let _ = recycle.try_send(chunk);
                        start = 0;
                    }
                    pos = start;
                    base = carry_at;
                }
                Ok(Msg::Eof) => eof = true,
                Ok(Msg::Err(e)) => {
                    return Err(anyhow!(
                        "decompression failed after {} bytes of JSON: {e} (truncated or corrupt gzip?)",
                        offset(work.len())
                    ));
                }
                Err(_) => eof = true,
            }
        }
    })();
    drop(rx);
    drop(recycle);
    let _ = handle.join();
    result?;
    if !p.top_is_array && !p.saw_events {
        bail!("the JSON document has no \"traceEvents\" array: not a Chrome/Kineto trace");
    }
    Ok(())
}

fn count_nl(b: &[u8]) -> u64 {
    // SWAR: 8 bytes per step, per-byte-lane counters summed every 255 words.
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = b.chunks_exact(8);
    let mut total = 0u64;
    let mut acc = 0u64;
    let mut n = 0;
    for w in &mut words {
        let x = u64::from_le_bytes(w.try_into().unwrap()) ^ (ONES * b'\n' as u64);
        // High bit of each lane set iff the lane is zero (exact, no carries between lanes).
        let zero = !(((x & LOW7) + LOW7) | x) & HIGH;
        acc += zero >> 7;
        n += 1;
        if n == 255 {
            total += lane_sum(acc);
            acc = 0;
            n = 0;
        }
    }
    total += lane_sum(acc);
    total + words.remainder().iter().filter(|&&c| c == b'\n').count() as u64
}

#[inline]
fn lane_sum(acc: u64) -> u64 {
    const PAIRS: u64 = 0x00ff_00ff_00ff_00ff;
    let x = (acc & PAIRS) + ((acc >> 8) & PAIRS);
    x.wrapping_mul(0x0001_0001_0001_0001) >> 48
}

#[inline]
fn skip_ws(b: &[u8], mut i: usize) -> SR<usize> {
    while i < b.len() {
        match b[i] {
            b' ' | b'\n' | b'\r' | b'\t' => i += 1,
            _ => return Ok(i),
        }
    }
    Err(ScanErr::Incomplete)
}

#[inline]
fn expect(b: &[u8], i: usize, c: u8) -> SR<usize> {
    let i = skip_ws(b, i)?;
    if b[i] == c {
        Ok(i + 1)
    } else {
        Err(ScanErr::Syntax(
            i,
            format!("expected '{}', found {}", c as char, show(b[i])),
        ))
    }
}

fn show(c: u8) -> String {
    if c.is_ascii_graphic() {
        format!("'{}'", c as char)
    } else {
        format!("byte 0x{c:02x}")
    }
}

/// A string starting at `b[i] == '"'`: returns (content start, content end, has escapes, next index).
#[inline]
fn scan_string(b: &[u8], i: usize) -> SR<(usize, usize, bool, usize)> {
    debug_assert!(b[i] == b'"');
    let start = i + 1;
    let mut j = start;
    let mut esc = false;
    // Most strings (keys, categories, names) are short: test 8 bytes at a time for '"' or
    // '\\' (SWAR, exact per byte) before paying memchr's setup.
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let fast_end = (start + 64).min(b.len());
    while j + 8 <= fast_end {
        let w = u64::from_le_bytes(b[j..j + 8].try_into().unwrap());
        let q = w ^ (ONES * b'"' as u64);
        let s = w ^ (ONES * b'\\' as u64);
        let hits = (!(((q & LOW7) + LOW7) | q) | !(((s & LOW7) + LOW7) | s)) & HIGH;
        if hits != 0 {
            let k = j + (hits.trailing_zeros() / 8) as usize;
            if b[k] == b'"' {
                return Ok((start, k, false, k + 1));
            }
            // A backslash first: the loop below handles escapes from here.
            break;
        }
        j += 8;
    }
    loop {
        match memchr::memchr2(b'"', b'\\', &b[j..]) {
            None => return Err(ScanErr::Incomplete),
            Some(off) => {
                let k = j + off;
                if b[k] == b'"' {
                    return Ok((start, k, esc, k + 1));
                }
                esc = true;
                if k + 1 >= b.len() {
                    return Err(ScanErr::Incomplete);
                }
                j = k + 2;
            }
        }
    }
}

/// Skip any JSON value starting at the first non-space byte from `i`.
fn skip_value(b: &[u8], i: usize) -> SR<usize> {
    let i = skip_ws(b, i)?;
    match b[i] {
        b'"' => Ok(scan_string(b, i)?.3),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                if j >= b.len() {
                    return Err(ScanErr::Incomplete);
                }
                match b[j] {
                    b'"' => {
                        j = scan_string(b, j)?.3;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
            let mut j = i;
            while j < b.len()
                && matches!(b[j], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E' | b'a'..=b'z')
            {
                j += 1;
            }
            if j >= b.len() {
                return Err(ScanErr::Incomplete);
            }
            let tok = &b[i..j];
            if tok[0].is_ascii_alphabetic() && !matches!(tok, b"true" | b"false" | b"null") {
                return Err(ScanErr::Syntax(
                    i,
                    format!("invalid literal '{}'", String::from_utf8_lossy(tok)),
                ));
            }
            Ok(j)
        }
        c => Err(ScanErr::Syntax(
            i,
            format!("expected a value, found {}", show(c)),
        )),
    }
}

/// The bytes a number's run is made of, as the scanner takes it (the fast paths take the
/// same run, so both read a number the same way).
#[inline(always)]
fn is_number_byte(c: u8) -> bool {
    matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
}

/// A borrowed scalar value.
#[derive(Clone, Copy, Debug)]
enum Val<'a> {
    Str(&'a [u8], bool),
    Num(&'a [u8]),
    Null,
    Other,
}

#[inline]
fn scan_scalar(b: &[u8], i: usize) -> SR<(Val<'_>, usize)> {
    let i = skip_ws(b, i)?;
    match b[i] {
        b'"' => {
            let (s, e, esc, n) = scan_string(b, i)?;
            Ok((Val::Str(&b[s..e], esc), n))
        }
        b'-' | b'0'..=b'9' => {
            let mut j = i;
            while j < b.len() && is_number_byte(b[j]) {
                j += 1;
            }
            if j >= b.len() {
                return Err(ScanErr::Incomplete);
            }
            Ok((Val::Num(&b[i..j]), j))
        }
        b'n' => {
            let j = skip_value(b, i)?;
            Ok((Val::Null, j))
        }
        _ => {
            let j = skip_value(b, i)?;
            Ok((Val::Other, j))
        }
    }
}

/// Largest time or duration the store takes (just under 2^62 ns, about 146 years): the sum
/// or difference of any two (an event's end, a gap) then cannot overflow. Larger values
/// are not timestamps.
const MAX_ABS_NS: i64 = (1 << 62) - 1;

#[inline(always)]
fn within_time_range(ns: i64) -> Option<i64> {
    (-MAX_ABS_NS..=MAX_ABS_NS).contains(&ns).then_some(ns)
}

/// Parse a JSON number of microseconds into integer nanoseconds (exact for up to 3
/// decimals; rounds beyond). Falls back to f64 for exponents. `None` beyond
/// [`MAX_ABS_NS`].
fn us_to_ns(s: &[u8]) -> Option<i64> {
    let (decimal, end) = DecimalMicros::scan(s, 0)?;
    if end == s.len() {
        return decimal.to_ns();
    }
    // exponent or junk: slow path
    let text = std::str::from_utf8(s).ok()?;
    let v = text.parse::<f64>().ok()? * 1000.0;
    if !v.is_finite() || v.abs() > MAX_ABS_NS as f64 {
        return None;
    }
    within_time_range(v.round() as i64)
}

/// `-?[0-9]+(\.[0-9]+)?` microseconds as scanned; the text that follows is the caller's.
struct DecimalMicros {
    neg: bool,
    int: i64,
    /// The first 3 decimals as an integer (padded), and whether the 4th rounds up.
    frac: i64,
    round_up: bool,
}

impl DecimalMicros {
    /// The number at `b[j..]` and the index past it; `None` when there is none or its
    /// integer part overflows.
    #[inline(always)]
    fn scan(b: &[u8], j: usize) -> Option<(Self, usize)> {
        let neg = b.get(j) == Some(&b'-');
        let start = j + neg as usize;
        let (int, n) = digits_at(b, start)?;
        if n == 0 {
            return None;
        }
        let mut k = start + n;
        let mut frac: i64 = 0;
        let mut digits = 0;
        let mut round_up = false;
        if b.get(k) == Some(&b'.') {
            k += 1;
            let frac_start = k;
            while let Some(&c) = b.get(k) {
                if !c.is_ascii_digit() {
                    break;
                }
                if digits < 3 {
                    frac = frac * 10 + (c - b'0') as i64;
                    digits += 1;
                } else if digits == 3 {
                    round_up = c >= b'5';
                    digits += 1;
                }
                k += 1;
            }
            if k == frac_start {
                return None;
            }
        }
        while digits < 3 {
            frac *= 10;
            digits += 1;
        }
        let decimal = DecimalMicros {
            neg,
            int,
            frac,
            round_up,
        };
        Some((decimal, k))
    }

    /// Nanoseconds; `None` on overflow or beyond [`MAX_ABS_NS`].
    #[inline(always)]
    fn to_ns(&self) -> Option<i64> {
        let mut ns = self.int.checked_mul(1000)?.checked_add(self.frac)?;
        if self.round_up {
            ns = ns.checked_add(1)?;
        }
        within_time_range(if self.neg { -ns } else { ns })
    }
}

fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, d) = if s.first() == Some(&b'-') {
        (true, &s[1..])
    } else {
        (false, s)
    };
    if d.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &c in d {
        if !c.is_ascii_digit() {
            // floats such as 7.0: take the integer part
            let f: f64 = std::str::from_utf8(s).ok()?.parse().ok()?;
            return Some(f as i64);
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as i64)?;
    }
    Some(if neg { -v } else { v })
}

/// Decode a JSON string body (between the quotes) into `out`.
fn unescape(raw: &[u8], out: &mut String) -> std::result::Result<(), String> {
    out.clear();
    let mut bytes: Vec<u8> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c != b'\\' {
            bytes.push(c);
            i += 1;
            continue;
        }
        let e = *raw.get(i + 1).ok_or("dangling backslash in string")?;
        i += 2;
        match e {
            b'"' => bytes.push(b'"'),
            b'\\' => bytes.push(b'\\'),
            b'/' => bytes.push(b'/'),
            b'b' => bytes.push(8),
            b'f' => bytes.push(12),
            b'n' => bytes.push(b'\n'),
            b'r' => bytes.push(b'\r'),
            b't' => bytes.push(b'\t'),
            b'u' => {
                let hex = |at: usize| -> std::result::Result<u32, String> {
                    let h = raw.get(at..at + 4).ok_or("short \\u escape")?;
                    u32::from_str_radix(std::str::from_utf8(h).map_err(|_| "bad \\u escape")?, 16)
                        .map_err(|_| "bad \\u escape".to_string())
                };
                let mut cp = hex(i)?;
                i += 4;
                if (0xD800..0xDC00).contains(&cp)
                    && raw.get(i) == Some(&b'\\')
                    && raw.get(i + 1) == Some(&b'u')
                {
                    let lo = hex(i + 2)?;
                    if (0xDC00..0xE000).contains(&lo) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        i += 6;
                    }
                }
                let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                let mut tmp = [0u8; 4];
                bytes.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
            }
            other => return Err(format!("invalid escape '\\{}'", other as char)),
        }
    }
    let s = String::from_utf8(bytes).map_err(|_| "string is not valid UTF-8".to_string())?;
    out.push_str(&s);
    Ok(())
}

/// Fields of one event, borrowed from the buffer.
#[derive(Default)]
struct Ev<'a> {
    ph: u8,
    cat: &'a [u8],
    name: Option<Val<'a>>,
    pid: Option<Val<'a>>,
    tid: Option<Val<'a>>,
    ts: Option<Val<'a>>,
    dur: Option<Val<'a>>,
    id: Option<Val<'a>>,
    bp: &'a [u8],
    // args
    external_id: Option<&'a [u8]>,
    correlation: Option<&'a [u8]>,
    stream: Option<&'a [u8]>,
    device: Option<&'a [u8]>,
    python_id: Option<&'a [u8]>,
    python_parent: Option<&'a [u8]>,
    grid: Option<&'a [u8]>,
    block: Option<&'a [u8]>,
    input_dims: Option<&'a [u8]>,
    arg_name: Option<Val<'a>>,
    arg_labels: Option<Val<'a>>,
}

fn num_of(v: Option<Val<'_>>) -> Option<&[u8]> {
    match v {
        Some(Val::Num(n)) => Some(n),
        _ => None,
    }
}

impl<'s> Parser<'s> {
    fn describe_state(&self) -> String {
        match self.state {
            State::EventsFirst | State::EventsNext => {
                format!("traceEvents (after {} events)", self.event_index)
            }
            State::Start => "the start of the document".into(),
            _ => "the top-level object".into(),
        }
    }

    /// Advance one unit from `pos`; returns the new committed position.
    fn step(&mut self, b: &[u8], pos: usize) -> SR<usize> {
        match self.state {
            State::Start => {
                let mut i = skip_ws(b, pos)?;
                if b[i..].starts_with(&[0xEF, 0xBB, 0xBF]) {
                    i = skip_ws(b, i + 3)?;
                }
                match b[i] {
                    b'{' => {
                        self.state = State::TopKey;
                        Ok(i + 1)
                    }
                    b'[' => {
                        self.top_is_array = true;
                        self.state = State::EventsFirst;
                        Ok(i + 1)
                    }
                    c => Err(ScanErr::Syntax(
                        i,
                        format!("a trace must start with '{{' or '[', found {}", show(c)),
                    )),
                }
            }
            State::TopKey => {
                let i = skip_ws(b, pos)?;
                if b[i] == b'}' {
                    self.state = State::Done;
                    return Ok(i + 1);
                }
                if b[i] != b'"' {
                    return Err(ScanErr::Syntax(
                        i,
                        format!("expected a key string, found {}", show(b[i])),
                    ));
                }
                let (ks, ke, _, n) = scan_string(b, i)?;
                let key = &b[ks..ke];
                let n = expect(b, n, b':')?;
                if key == b"traceEvents" {
                    let j = skip_ws(b, n)?;
                    if b[j] != b'[' {
                        return Err(ScanErr::Syntax(
                            j,
                            "\"traceEvents\" must be an array".into(),
                        ));
                    }
                    self.saw_events = true;
                    self.state = State::EventsFirst;
                    return Ok(j + 1);
                }
                let end = skip_value(b, n)?;
                let raw = &b[skip_ws(b, n)?..end];
                match &mut self.log {
                    Some(log) => log.top_values.push((key.to_vec(), raw.to_vec())),
                    None => apply_top_value(&mut self.store.meta, key, raw),
                }
                self.state = State::TopAfterValue;
                Ok(end)
            }
            State::TopAfterValue | State::AfterEventsArray => {
                let i = skip_ws(b, pos)?;
                match b[i] {
                    b',' => {
                        self.state = State::TopKey;
                        Ok(i + 1)
                    }
                    b'}' => {
                        self.state = State::Done;
                        Ok(i + 1)
                    }
                    c => Err(ScanErr::Syntax(
                        i,
                        format!(
                            "expected ',' or '}}' in the top-level object, found {}",
                            show(c)
                        ),
                    )),
                }
            }
            State::EventsFirst | State::EventsNext => {
                let mut i = skip_ws(b, pos)?;
                if b[i] == b']' {
                    self.state = if self.top_is_array {
                        State::Done
                    } else {
                        State::AfterEventsArray
                    };
                    return Ok(i + 1);
                }
                if self.state == State::EventsNext {
                    if b[i] != b',' {
                        return Err(ScanErr::Syntax(
                            i,
                            format!(
                                "expected ',' or ']' after traceEvents[{}], found {}",
                                self.event_index - 1,
                                show(b[i])
                            ),
                        ));
                    }
                    i = skip_ws(b, i + 1)?;
                }
                if b[i] != b'{' {
                    return Err(ScanErr::Syntax(
                        i,
                        format!(
                            "traceEvents[{}] is not an object (found {})",
                            self.event_index,
                            show(b[i])
                        ),
                    ));
                }
                let fast = KINETO_FAST_PATH.load(std::sync::atomic::Ordering::Relaxed);
                if fast && let Some(end) = self.python_frame_kineto(b, i) {
                    self.store.counts.total += 1;
                    self.event_index += 1;
                    self.state = State::EventsNext;
                    return Ok(end);
                }
                let kineto = if fast {
                    scan_event_kineto(b, i).or_else(|| scan_flow_kineto(b, i))
                } else {
                    None
                };
                let (ev, end) = match kineto {
                    Some(hit) => hit,
                    None => self.scan_event(b, i)?,
                };
                self.store.counts.total += 1;
                let idx = self.event_index;
                self.event_index += 1;
                self.state = State::EventsNext;
                self.ingest(ev)
                    .map_err(|m| ScanErr::Syntax(i, format!("traceEvents[{idx}]: {m}")))?;
                Ok(end)
            }
            State::Done => Ok(b.len()),
        }
    }
}

fn apply_top_value(m: &mut TraceMeta, key: &[u8], raw: &[u8]) {
    {
        let text = || {
            std::str::from_utf8(raw)
                .ok()
                .map(|s| s.trim_matches('"').to_string())
        };
        match key {
            b"baseTimeNanoseconds" => m.base_time_ns = parse_i64(raw),
            b"displayTimeUnit" => m.display_time_unit = text(),
            b"schemaVersion" => m.schema_version = parse_i64(raw),
            b"traceName" => m.trace_name = text(),
            b"with_stack" => m.with_stack = parse_i64(raw).map(|v| v != 0),
            b"record_shapes" => m.record_shapes = parse_i64(raw).map(|v| v != 0),
            b"deviceProperties" | b"distributedInfo" => {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(raw) {
                    if key == b"deviceProperties" {
                        if let Some(a) = v.as_array() {
                            m.devices = a
                                .iter()
                                .filter_map(|d| d.get("name")?.as_str().map(String::from))
                                .collect();
                        }
                    } else {
                        m.rank = v.get("rank").and_then(|x| x.as_i64());
                        m.world_size = v.get("world_size").and_then(|x| x.as_i64());
                    }
                }
            }
            _ => {}
        }
    }
}

/// Whether events in Kineto's exact layout take the fast paths ([`scan_event_kineto`],
/// `Parser::python_frame_kineto`). Always on, except in the test that proves both ways
/// build the same store.
static KINETO_FAST_PATH: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

#[doc(hidden)]
pub fn set_kineto_fast_path(on: bool) {
    KINETO_FAST_PATH.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Literal runs of Kineto's `ChromeTraceLogger` layout (see [`scan_event_kineto`]).
mod kineto {
    pub const HEAD_X: &[u8] = b"{\n    \"ph\": \"X\", \"cat\": \"";
    pub const HEAD_PYTHON: &[u8] =
        b"{\n    \"ph\": \"X\", \"cat\": \"python_function\", \"name\": \"";
    pub const NAME: &[u8] = b"\", \"name\": \"";
    pub const PID: &[u8] = b"\", \"pid\": ";
    pub const TID: &[u8] = b", \"tid\": ";
    pub const TS: &[u8] = b",\n    \"ts\": ";
    pub const DUR: &[u8] = b", \"dur\": ";
    pub const ARGS: &[u8] = b",\n    \"args\": ";
    pub const PY_PARENT: &[u8] = b"{\n      \"Python parent id\": ";
    pub const PY_ID: &[u8] = b", \"Python id\": ";
    pub const EV_IDX: &[u8] = b", \"Ev Idx\": ";
    /// Closes the args object and the event.
    pub const ARGS_TAIL: &[u8] = b"\n    }\n  }";
    // Kernel args (the other bulky event: long names, a dozen args).
    pub const K_EXTERNAL: &[u8] = b"{\n      \"External id\": ";
    pub const K_QUEUED: &[u8] = b",      \"queued\": ";
    pub const K_DEVICE: &[u8] = b", \"device\": ";
    pub const K_CONTEXT: &[u8] = b", \"context\": ";
    pub const K_STREAM: &[u8] = b",      \"stream\": ";
    pub const K_CORRELATION: &[u8] = b", \"correlation\": ";
    pub const K_REGISTERS: &[u8] = b",      \"registers per thread\": ";
    pub const K_SHARED: &[u8] = b",      \"shared memory\": ";
    pub const K_BLOCKS_SM: &[u8] = b",      \"blocks per SM\": ";
    pub const K_WARPS_SM: &[u8] = b",      \"warps per SM\": ";
    pub const K_GRID: &[u8] = b",      \"grid\": ";
    pub const K_BLOCK: &[u8] = b",      \"block\": ";
    pub const K_OCCUPANCY: &[u8] = b",      \"est. achieved occupancy %\": ";
    // Flow events (`s`/`f`, cat `ac2g`).
    pub const FLOW_ID: &[u8] = b"\", \"id\": ";
    pub const FLOW_PID: &[u8] = b", \"pid\": ";
    pub const FLOW_TS: &[u8] = b", \"ts\": ";
    pub const FLOW_CAT: &[u8] = b",\n    \"cat\": \"";
    pub const FLOW_BP: &[u8] = b"\", \"bp\": \"";
    pub const EVENT_TAIL: &[u8] = b"\n  }";
}

/// `b[j..]` starts with `l`: the index after it. Compared eight bytes at a time (the
/// literals are constants, so this unrolls into a few loads and compares instead of a
/// `bcmp` call per literal, about ten per event).
#[inline(always)]
fn lit(b: &[u8], j: usize, l: &[u8]) -> Option<usize> {
    let s = b.get(j..j + l.len())?;
    let word = |x: &[u8], at: usize| u64::from_le_bytes(x[at..at + 8].try_into().unwrap());
    if l.len() < 8 {
        return (s == l).then_some(j + l.len());
    }
    let mut at = 0;
    while at + 8 <= l.len() {
        if word(s, at) != word(l, at) {
            return None;
        }
        at += 8;
    }
    // The last (overlapping) word covers the tail.
    let last = l.len() - 8;
    (word(s, last) == word(l, last)).then_some(j + l.len())
}

/// A number as the general scanner takes it (a `-` or a digit, then the run of number
/// bytes); it must be followed by a byte (so a number cut by the buffer end goes to the
/// general path).
#[inline(always)]
fn num_at(b: &[u8], j: usize) -> Option<(&[u8], usize)> {
    if !matches!(b.get(j)?, b'0'..=b'9' | b'-') {
        return None;
    }
    let mut k = j;
    while k < b.len() && is_number_byte(b[k]) {
        k += 1;
    }
    (k > j && k < b.len()).then(|| (&b[j..k], k))
}

/// The byte after a number: it must end the number the general scanner would take
/// (which also accepts `-+.eE` anywhere in the run).
#[inline(always)]
fn ends_number(b: &[u8], k: usize) -> Option<()> {
    (!is_number_byte(*b.get(k)?)).then_some(())
}

/// The run of ASCII digits at `b[k..]`: (its value, its length); `None` on `i64`
/// overflow. Eight digits per step (SWAR), the way a 13-digit timestamp is mostly read.
#[inline(always)]
fn digits_at(b: &[u8], k: usize) -> Option<(i64, usize)> {
    const POW10: [i64; 9] = [
        1,
        10,
        100,
        1_000,
        10_000,
        100_000,
        1_000_000,
        10_000_000,
        100_000_000,
    ];
    let mut k = k;
    let start = k;
    let mut v: i64 = 0;
    while let Some(word) = b.get(k..k + 8) {
        // Lane values 0..=9 exactly for '0'..='9'; the first lane >= 10 ends the run
        // (carries only move toward later lanes, so the lowest flagged lane is exact).
        let t = u64::from_le_bytes(word.try_into().unwrap()) ^ 0x3030_3030_3030_3030;
        let not_digit = (t.wrapping_add(0x7676_7676_7676_7676) | t) & 0x8080_8080_8080_8080;
        let n = if not_digit == 0 {
            8
        } else {
            (not_digit.trailing_zeros() / 8) as usize
        };
        if n > 0 {
            // Keep the n digits as the top lanes (zeros below act as leading zeros),
            // then combine pairs, quads and octets.
            let mut d = t << (8 * (8 - n));
            d = d.wrapping_mul(10 * 256 + 1) >> 8;
            d = (d & 0x00FF_00FF_00FF_00FF).wrapping_mul(100 * 65_536 + 1) >> 16;
            d = (d & 0x0000_FFFF_0000_FFFF).wrapping_mul(10_000 * (1 << 32) + 1) >> 32;
            v = v
                .checked_mul(POW10[n])?
                .checked_add((d & 0xFFFF_FFFF) as i64)?;
            k += n;
        }
        if n < 8 {
            return Some((v, k - start));
        }
    }
    while let Some(&c) = b.get(k) {
        if !c.is_ascii_digit() {
            break;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as i64)?;
        k += 1;
    }
    Some((v, k - start))
}

/// `-?[0-9]+` at `j`, scanned and converted in one pass: the value [`parse_i64`] gives
/// for the same text. `None` for anything else (the general path then decides).
#[inline(always)]
fn int_at(b: &[u8], j: usize) -> Option<(i64, usize)> {
    let neg = b.get(j) == Some(&b'-');
    let start = j + neg as usize;
    let (v, n) = digits_at(b, start)?;
    if n == 0 {
        return None;
    }
    let k = start + n;
    ends_number(b, k)?;
    Some((if neg { -v } else { v }, k))
}

/// Microseconds at `j` as nanoseconds, in one pass: the value [`us_to_ns`] gives for the
/// same text when it ends the number. `None` for anything else (exponents...).
#[inline(always)]
fn micros_at(b: &[u8], j: usize) -> Option<(i64, usize)> {
    let (decimal, k) = DecimalMicros::scan(b, j)?;
    ends_number(b, k)?;
    Some((decimal.to_ns()?, k))
}

/// The closing quote of a string without escapes, from just past its opening quote;
/// `None` at a backslash (escaped strings go to the general path) or at the buffer end.
#[inline(always)]
fn plain_string_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of the x86_64 baseline; every load reads b[i..i + 16],
        // inside the slice by the loop condition.
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let backslash = _mm_set1_epi8(b'\\' as i8);
            while i + 16 <= b.len() {
                let v = _mm_loadu_si128(b.as_ptr().add(i) as *const __m128i);
                let hits = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash));
                let mask = _mm_movemask_epi8(hits) as u32;
                if mask != 0 {
                    let k = i + mask.trailing_zeros() as usize;
                    return (b[k] == b'"').then_some(k);
                }
                i += 16;
            }
        }
    }
    let k = i + memchr::memchr2(b'"', b'\\', &b[i..])?;
    (b[k] == b'"').then_some(k)
}

/// Fast path for a complete event in exactly the layout torch's Kineto writer emits
/// (`ChromeTraceLogger`: fixed key order and whitespace, see the fixtures):
///
/// ```text
/// {
///     "ph": "X", "cat": "…", "name": "…", "pid": N, "tid": N,
///     "ts": T, "dur": D,
///     "args": {
///       …
///     }
///   }
/// ```
///
/// Literal runs are compared instead of scanned key by key, and kernel args are matched as
/// one template (`python_function` frames have their own path, `Parser::python_frame_kineto`;
/// one it declines comes here and gets the general args scanner). Any deviation (other
/// whitespace or key order, text pids, a missing field, the buffer ending mid-event)
/// returns `None` and the general scanner reads the same event from the same byte, so
/// the fields found, and hence the store, are the same either way.
#[inline]
fn scan_event_kineto(b: &[u8], i: usize) -> Option<(Ev<'_>, usize)> {
    use kineto::*;
    let mut j = lit(b, i, HEAD_X)?;
    let e = plain_string_end(b, j)?;
    let cat = &b[j..e];
    j = lit(b, e, NAME)?;
    let e = plain_string_end(b, j)?;
    let name = &b[j..e];
    j = lit(b, e, PID)?;
    let (pid, e) = num_at(b, j)?;
    j = lit(b, e, TID)?;
    let (tid, e) = num_at(b, j)?;
    j = lit(b, e, TS)?;
    let (ts, e) = num_at(b, j)?;
    j = lit(b, e, DUR)?;
    let (dur, e) = num_at(b, j)?;
    j = lit(b, e, ARGS)?;
    let mut ev = Ev {
        ph: b'X',
        cat,
        name: Some(Val::Str(name, false)),
        pid: Some(Val::Num(pid)),
        tid: Some(Val::Num(tid)),
        ts: Some(Val::Num(ts)),
        dur: Some(Val::Num(dur)),
        ..Default::default()
    };
    if cat == b"kernel"
        && let Some((args, k)) = kernel_args_kineto(b, j)
    {
        ev.external_id = Some(args.external_id);
        ev.device = Some(args.device);
        ev.stream = Some(args.stream);
        ev.correlation = Some(args.correlation);
        ev.grid = Some(args.grid);
        ev.block = Some(args.block);
        return Some((ev, k));
    }
    // Other args: the general args scanner, then the event's closing brace.
    let k = scan_args_of(b, j, &mut ev, 0).ok()?;
    let k = skip_ws(b, k).ok()?;
    (b[k] == b'}').then_some((ev, k + 1))
}

/// The args of a kernel event that the store keeps.
struct KernelArgs<'a> {
    external_id: &'a [u8],
    device: &'a [u8],
    stream: &'a [u8],
    correlation: &'a [u8],
    grid: &'a [u8],
    block: &'a [u8],
}

/// A kernel's args object and the event's end in Kineto's layout (from the `{` of args to
/// past the event's `}`); `None` on any deviation.
#[inline]
fn kernel_args_kineto(b: &[u8], j: usize) -> Option<(KernelArgs<'_>, usize)> {
    use kineto::*;
    // `[1, 1, 1]`: digits, commas and spaces only (anything else: general path).
    let dims = |j: usize| -> Option<(&[u8], usize)> {
        if b.get(j) != Some(&b'[') {
            return None;
        }
        let close = j + memchr::memchr(b']', b.get(j..(j + 64).min(b.len()))?)?;
        b[j + 1..close]
            .iter()
            .all(|c| c.is_ascii_digit() || *c == b',' || *c == b' ')
            .then(|| (&b[j..close + 1], close + 1))
    };
    let j = lit(b, j, K_EXTERNAL)?;
    let (external_id, j) = num_at(b, j)?;
    let j = lit(b, j, K_QUEUED)?;
    let (_, j) = num_at(b, j)?;
    let j = lit(b, j, K_DEVICE)?;
    let (device, j) = num_at(b, j)?;
    let j = lit(b, j, K_CONTEXT)?;
    let (_, j) = num_at(b, j)?;
    let j = lit(b, j, K_STREAM)?;
    let (stream, j) = num_at(b, j)?;
    let j = lit(b, j, K_CORRELATION)?;
    let (correlation, j) = num_at(b, j)?;
    let j = lit(b, j, K_REGISTERS)?;
    let (_, j) = num_at(b, j)?;
    let j = lit(b, j, K_SHARED)?;
    let (_, j) = num_at(b, j)?;
    let j = lit(b, j, K_BLOCKS_SM)?;
    let (_, j) = num_at(b, j)?;
    let j = lit(b, j, K_WARPS_SM)?;
    let (_, j) = num_at(b, j)?;
    let j = lit(b, j, K_GRID)?;
    let (grid, j) = dims(j)?;
    let j = lit(b, j, K_BLOCK)?;
    let (block, j) = dims(j)?;
    let j = lit(b, j, K_OCCUPANCY)?;
    let (_, j) = num_at(b, j)?;
    let end = lit(b, j, ARGS_TAIL)?;
    Some((
        KernelArgs {
            external_id,
            device,
            stream,
            correlation,
            grid,
            block,
        },
        end,
    ))
}

/// A flow event (`s`/`f`) in Kineto's layout:
/// `{"ph": "f", "id": N, "pid": N, "tid": N, "ts": T, "cat": "…", "name": "…"[, "bp": "…"]}`
/// with its line breaks; `None` on any deviation.
#[inline]
fn scan_flow_kineto(b: &[u8], i: usize) -> Option<(Ev<'_>, usize)> {
    use kineto::*;
    let j = lit(b, i, b"{\n    \"ph\": \"")?;
    let ph = *b.get(j)?;
    if ph != b's' && ph != b'f' {
        return None;
    }
    let j = lit(b, j + 1, FLOW_ID)?;
    let (id, j) = num_at(b, j)?;
    let j = lit(b, j, FLOW_PID)?;
    let (pid, j) = num_at(b, j)?;
    let j = lit(b, j, TID)?;
    let (tid, j) = num_at(b, j)?;
    let j = lit(b, j, FLOW_TS)?;
    let (ts, j) = num_at(b, j)?;
    let j = lit(b, j, FLOW_CAT)?;
    let e = plain_string_end(b, j)?;
    let cat = &b[j..e];
    let j = lit(b, e, NAME)?;
    let e = plain_string_end(b, j)?;
    let name = &b[j..e];
    let mut ev = Ev {
        ph,
        cat,
        name: Some(Val::Str(name, false)),
        pid: Some(Val::Num(pid)),
        tid: Some(Val::Num(tid)),
        ts: Some(Val::Num(ts)),
        id: Some(Val::Num(id)),
        ..Default::default()
    };
    let j = match lit(b, e, FLOW_BP) {
        Some(j) => {
            let e = plain_string_end(b, j)?;
            ev.bp = &b[j..e];
            e
        }
        None => e,
    };
    let end = lit(b, j, b"\"")?;
    let end = lit(b, end, EVENT_TAIL)?;
    Some((ev, end))
}

impl<'s> Parser<'s> {
    /// A `python_function` event in Kineto's layout, parsed and stored in one go (they are
    /// nine in ten events of a `with_stack` trace). `None` (nothing stored) on any
    /// deviation, including values the general path would read differently or reject
    /// (escaped names, non-integer ids): the general path then reads the event.
    #[inline]
    fn python_frame_kineto(&mut self, b: &[u8], i: usize) -> Option<usize> {
        use kineto::*;
        let j = lit(b, i, HEAD_PYTHON)?;
        let e = plain_string_end(b, j)?;
        let name = &b[j..e];
        let j = lit(b, e, PID)?;
        let (pid, j) = int_at(b, j)?;
        let j = lit(b, j, TID)?;
        let (tid, j) = int_at(b, j)?;
        let j = lit(b, j, TS)?;
        let (ts, j) = micros_at(b, j)?;
        let j = lit(b, j, DUR)?;
        let (dur, j) = micros_at(b, j)?;
        let j = lit(b, j, ARGS)?;
        let j = lit(b, j, PY_PARENT)?;
        let (parent, j) = match lit(b, j, b"null") {
            Some(j) => (-1, j),
            None => int_at(b, j)?,
        };
        let j = lit(b, j, PY_ID)?;
        let (python_id, j) = int_at(b, j)?;
        let j = lit(b, j, EV_IDX)?;
        let (_, j) = int_at(b, j)?;
        let end = lit(b, j, ARGS_TAIL)?;
        // Past this point nothing can fail except invalid UTF-8, checked before storing.
        let name = self.intern_cached(name)?;
        let thread = self.numeric_thread(pid, tid);
        let f = &mut self.store.frames;
        f.name.push(name);
        f.ts_ns.push(ts);
        f.dur_ns.push(dur);
        f.thread.push(thread);
        f.python_id.push(python_id);
        f.parent_python_id.push(parent);
        self.store.counts.python_functions += 1;
        Some(end)
    }
}

impl<'s> Parser<'s> {
    /// Scan one event object starting at `b[i] == '{'`.
    fn scan_event<'a>(&self, b: &'a [u8], i: usize) -> SR<(Ev<'a>, usize)> {
        let mut ev = Ev::default();
        let mut j = skip_ws(b, i + 1)?;
        if b[j] == b'}' {
            return Ok((ev, j + 1));
        }
        loop {
            j = skip_ws(b, j)?;
            if b[j] != b'"' {
                return Err(ScanErr::Syntax(
                    j,
                    format!(
                        "expected a key in traceEvents[{}], found {}",
                        self.event_index,
                        show(b[j])
                    ),
                ));
            }
            let (ks, ke, _, n) = scan_string(b, j)?;
            let n = expect(b, n, b':')?;
            let key = &b[ks..ke];
            j = match key {
                b"ph" => {
                    let (v, n) = scan_scalar(b, n)?;
                    if let Val::Str(s, _) = v {
                        ev.ph = s.first().copied().unwrap_or(0);
                    }
                    n
                }
                b"cat" => {
                    let (v, n) = scan_scalar(b, n)?;
                    if let Val::Str(s, _) = v {
                        ev.cat = s;
                    }
                    n
                }
                b"name" => {
                    let (v, n) = scan_scalar(b, n)?;
                    ev.name = Some(v);
                    n
                }
                b"pid" => {
                    let (v, n) = scan_scalar(b, n)?;
                    ev.pid = Some(v);
                    n
                }
                b"tid" => {
                    let (v, n) = scan_scalar(b, n)?;
                    ev.tid = Some(v);
                    n
                }
                b"ts" => {
                    let (v, n) = scan_scalar(b, n)?;
                    ev.ts = Some(v);
                    n
                }
                b"dur" => {
                    let (v, n) = scan_scalar(b, n)?;
                    ev.dur = Some(v);
                    n
                }
                b"id" => {
                    let (v, n) = scan_scalar(b, n)?;
                    ev.id = Some(v);
                    n
                }
                b"bp" => {
                    let (v, n) = scan_scalar(b, n)?;
                    if let Val::Str(s, _) = v {
                        ev.bp = s;
                    }
                    n
                }
                b"args" => self.scan_args(b, n, &mut ev)?,
                _ => skip_value(b, n)?,
            };
            j = skip_ws(b, j)?;
            match b[j] {
                b',' => j += 1,
                b'}' => return Ok((ev, j + 1)),
                c => {
                    return Err(ScanErr::Syntax(
                        j,
                        format!(
                            "expected ',' or '}}' in traceEvents[{}], found {}",
                            self.event_index,
                            show(c)
                        ),
                    ));
                }
            }
        }
    }

    fn scan_args<'a>(&self, b: &'a [u8], i: usize, ev: &mut Ev<'a>) -> SR<usize> {
        scan_args_of(b, i, ev, self.event_index)
    }
}

/// The `args` object of an event (`event_index` only names the event in errors).
fn scan_args_of<'a>(b: &'a [u8], i: usize, ev: &mut Ev<'a>, event_index: u64) -> SR<usize> {
    let mut j = skip_ws(b, i)?;
    if b[j] != b'{' {
        return skip_value(b, j);
    }
    j = skip_ws(b, j + 1)?;
    if b[j] == b'}' {
        return Ok(j + 1);
    }
    loop {
        j = skip_ws(b, j)?;
        if b[j] != b'"' {
            return Err(ScanErr::Syntax(
                j,
                format!(
                    "expected a key in args of traceEvents[{}], found {}",
                    event_index,
                    show(b[j])
                ),
            ));
        }
        let (ks, ke, _, n) = scan_string(b, j)?;
        let n = expect(b, n, b':')?;
        let key = &b[ks..ke];
        macro_rules! num {
            ($field:ident) => {{
                let (v, n) = scan_scalar(b, n)?;
                ev.$field = num_of(Some(v));
                n
            }};
        }
        j = match key {
            b"External id" => num!(external_id),
            b"correlation" => num!(correlation),
            b"stream" | b"cuda_stream" => num!(stream),
            b"device" => num!(device),
            b"Python id" => num!(python_id),
            b"Python parent id" => num!(python_parent),
            b"grid" | b"block" | b"Input Dims" => {
                let s = skip_ws(b, n)?;
                let e = skip_value(b, s)?;
                match key {
                    b"grid" => ev.grid = Some(&b[s..e]),
                    b"block" => ev.block = Some(&b[s..e]),
                    _ => ev.input_dims = Some(&b[s..e]),
                }
                e
            }
            b"name" => {
                let (v, n) = scan_scalar(b, n)?;
                ev.arg_name = Some(v);
                n
            }
            b"labels" => {
                let (v, n) = scan_scalar(b, n)?;
                ev.arg_labels = Some(v);
                n
            }
            _ => skip_value(b, n)?,
        };
        j = skip_ws(b, j)?;
        match b[j] {
            b',' => j += 1,
            b'}' => return Ok(j + 1),
            c => {
                return Err(ScanErr::Syntax(
                    j,
                    format!(
                        "expected ',' or '}}' in args of traceEvents[{}], found {}",
                        event_index,
                        show(c)
                    ),
                ));
            }
        }
    }
}

impl<'s> Parser<'s> {
    fn text_of(&mut self, v: Option<Val<'_>>) -> std::result::Result<Option<String>, String> {
        match v {
            Some(Val::Str(s, esc)) => {
                if esc {
                    let mut out = String::new();
                    unescape(s, &mut out)?;
                    Ok(Some(out))
                } else {
                    Ok(Some(
                        std::str::from_utf8(s)
                            .map_err(|_| "string is not valid UTF-8")?
                            .to_string(),
                    ))
                }
            }
            Some(Val::Num(n)) => Ok(Some(String::from_utf8_lossy(n).into_owned())),
            _ => Ok(None),
        }
    }

    fn intern_val(&mut self, v: Option<Val<'_>>) -> std::result::Result<NameId, String> {
        match v {
            Some(Val::Str(s, false)) => self
                .store
                .names
                .intern_bytes(s)
                .ok_or_else(|| "name is not valid UTF-8".to_string()),
            Some(Val::Str(s, true)) => {
                let mut tmp = std::mem::take(&mut self.scratch);
                unescape(s, &mut tmp)?;
                let id = self.store.names.intern(&tmp);
                self.scratch = tmp;
                Ok(id)
            }
            Some(Val::Num(n)) => Ok(self.store.names.intern(&String::from_utf8_lossy(n))),
            _ => Ok(self.store.names.intern("")),
        }
    }

    fn id_of(&mut self, v: Option<Val<'_>>) -> std::result::Result<(i64, Option<String>), String> {
        match v {
            Some(Val::Num(n)) => Ok((parse_i64(n).ok_or("pid/tid is not an integer")?, None)),
            Some(Val::Str(..)) => {
                let t = self.text_of(v)?.unwrap_or_default();
                if let Ok(n) = t.parse::<i64>() {
                    return Ok((n, None));
                }
                let next = -(self.text_ids.len() as i64) - 1_000_000;
                let id = *self.text_ids.entry(t.clone()).or_insert(next);
                Ok((id, Some(t)))
            }
            _ => Ok((-1, None)),
        }
    }

    /// [`Interner::intern_bytes`] through the name cache (same ids, fewer hash probes).
    #[inline]
    fn intern_cached(&mut self, name: &[u8]) -> Option<NameId> {
        let key = name_cache_key(name);
        let slot = (key >> (64 - NAME_CACHE_SLOTS.trailing_zeros())) as usize;
        let (k, id) = self.name_cache[slot];
        if k == key && self.store.names.get(id).as_bytes() == name {
            return Some(id);
        }
        let id = self.store.names.intern_bytes(name)?;
        self.name_cache[slot] = (key, id);
        Some(id)
    }

    /// The thread table index of numeric (pid, tid).
    #[inline]
    fn numeric_thread(&mut self, pid: i64, tid: i64) -> u32 {
        if self.last_thread.0 == (pid, tid) {
            return self.last_thread.1;
        }
        self.thread_index(pid, tid, None, None)
    }

    fn thread_of(&mut self, ev: &Ev<'_>) -> std::result::Result<u32, String> {
        let (pid, pid_text) = self.id_of(ev.pid)?;
        let (tid, tid_text) = self.id_of(ev.tid)?;
        Ok(self.thread_index(pid, tid, pid_text, tid_text))
    }

    fn thread_index(
        &mut self,
        pid: i64,
        tid: i64,
        pid_text: Option<String>,
        tid_text: Option<String>,
    ) -> u32 {
        let key = (pid, tid);
        if self.last_thread.0 == key {
            return self.last_thread.1;
        }
        let idx = match self.thread_map.get(&key) {
            Some(&i) => i,
            None => {
                let i = self.store.threads.len() as u32;
                self.store.threads.push(ThreadInfo {
                    pid,
                    tid,
                    pid_text,
                    tid_text,
                    thread_name: None,
                });
                self.thread_map.insert(key, i);
                i
            }
        };
        self.last_thread = (key, idx);
        idx
    }

    fn ingest(&mut self, ev: Ev<'_>) -> std::result::Result<(), String> {
        let opt_i = |s: Option<&[u8]>| s.and_then(parse_i64).unwrap_or(-1);
        match ev.ph {
            b'X' => {
                let ts = match time_of(ev.ts) {
                    Some(t) => t.ok_or("field \"ts\" is not a number of microseconds")?,
                    None => {
                        self.store.counts.other += 1;
                        return Ok(());
                    }
                };
                let dur = match time_of(ev.dur) {
                    Some(d) => d.ok_or("field \"dur\" is not a number of microseconds")?,
                    None => 0,
                };
                let cat = ev.cat;
                let gpu_kind = match cat {
                    b"kernel" => Some(GpuKind::Kernel),
                    b"gpu_memcpy" | b"Memcpy" => Some(GpuKind::Memcpy),
                    b"gpu_memset" | b"Memset" => Some(GpuKind::Memset),
                    b"" if ev.stream.is_some() => Some(GpuKind::Kernel),
                    _ => None,
                };
                if let Some(kind) = gpu_kind {
                    let name = self.intern_val(ev.name)?;
                    let thread = self.thread_of(&ev)?;
                    let k = &mut self.store.kernels;
                    k.name.push(name);
                    k.ts_ns.push(ts);
                    k.dur_ns.push(dur);
                    k.thread.push(thread);
                    k.device.push(opt_i(ev.device) as i32);
                    k.stream.push(opt_i(ev.stream));
                    k.correlation.push(opt_i(ev.correlation));
                    k.external_id.push(opt_i(ev.external_id));
                    k.kind.push(kind);
                    k.grid.push(dim3(ev.grid));
                    k.block.push(dim3(ev.block));
                    let c = &mut self.store.counts;
                    match kind {
                        GpuKind::Kernel => c.kernels += 1,
                        GpuKind::Memcpy => c.memcpy += 1,
                        GpuKind::Memset => c.memset += 1,
                    }
                    return Ok(());
                }
                match cat {
                    b"python_function" => {
                        let name = self.intern_val(ev.name)?;
                        let thread = self.thread_of(&ev)?;
                        let f = &mut self.store.frames;
                        f.name.push(name);
                        f.ts_ns.push(ts);
                        f.dur_ns.push(dur);
                        f.thread.push(thread);
                        f.python_id.push(opt_i(ev.python_id));
                        f.parent_python_id.push(opt_i(ev.python_parent));
                        self.store.counts.python_functions += 1;
                    }
                    b"cpu_op" => {
                        let name = self.intern_val(ev.name)?;
                        let thread = self.thread_of(&ev)?;
                        let dims = match ev.input_dims {
                            Some(raw) => {
                                let s = std::str::from_utf8(raw)
                                    .map_err(|_| "Input Dims is not UTF-8")?;
                                self.store.names.intern(s)
                            }
                            None => NONE,
                        };
                        let c = &mut self.store.cpu_ops;
                        c.name.push(name);
                        c.ts_ns.push(ts);
                        c.dur_ns.push(dur);
                        c.thread.push(thread);
                        c.external_id.push(opt_i(ev.external_id));
                        c.input_dims.push(dims);
                        self.store.counts.cpu_ops += 1;
                    }
                    b"user_annotation" | b"gpu_user_annotation" => {
                        let name = self.intern_val(ev.name)?;
                        let thread = self.thread_of(&ev)?;
                        let on_gpu = cat == b"gpu_user_annotation";
                        let a = &mut self.store.annotations;
                        a.name.push(name);
                        a.ts_ns.push(ts);
                        a.dur_ns.push(dur);
                        a.thread.push(thread);
                        a.external_id.push(opt_i(ev.external_id));
                        a.on_gpu.push(on_gpu);
                        if on_gpu {
                            self.store.counts.gpu_user_annotations += 1
                        } else {
                            self.store.counts.user_annotations += 1
                        }
                    }
                    b"cuda_runtime" | b"cuda_driver" => {
                        let name = self.intern_val(ev.name)?;
                        let thread = self.thread_of(&ev)?;
                        let is_driver = cat == b"cuda_driver";
                        let l = &mut self.store.launches;
                        l.name.push(name);
                        l.ts_ns.push(ts);
                        l.dur_ns.push(dur);
                        l.thread.push(thread);
                        l.correlation.push(opt_i(ev.correlation));
                        l.external_id.push(opt_i(ev.external_id));
                        l.is_driver.push(is_driver);
                        if is_driver {
                            self.store.counts.driver += 1
                        } else {
                            self.store.counts.runtime += 1
                        }
                    }
                    _ => self.store.counts.other += 1,
                }
            }
            b's' | b'f' | b't' => {
                let ts = time_of(ev.ts).flatten().unwrap_or(0);
                let id = match ev.id {
                    Some(Val::Num(n)) => parse_i64(n).unwrap_or(-1),
                    Some(Val::Str(s, _)) => parse_i64(s).unwrap_or(-1),
                    _ => -1,
                };
                let thread = self.thread_of(&ev)?;
                let cat = if ev.cat.is_empty() {
                    NONE
                } else {
                    self.store
                        .names
                        .intern(std::str::from_utf8(ev.cat).unwrap_or("?"))
                };
                let f = &mut self.store.flows;
                f.id.push(id);
                f.ts_ns.push(ts);
                f.thread.push(thread);
                f.phase.push(ev.ph);
                f.cat.push(cat);
                self.store.counts.flows += 1;
            }
            b'M' => {
                self.store.counts.metadata += 1;
                let name = self.text_of(ev.name)?.unwrap_or_default();
                match name.as_str() {
                    "thread_name" => {
                        let t = self.thread_of(&ev)?;
                        let label = self.text_of(ev.arg_name)?;
                        match &mut self.log {
                            Some(log) => log.thread_names.push((t, label)),
                            None => self.store.threads[t as usize].thread_name = label,
                        }
                    }
                    "process_name" => {
                        let (pid, _) = self.id_of(ev.pid)?;
                        if let Some(l) = self.text_of(ev.arg_name)? {
                            self.store.process_names.push((pid, l));
                        }
                    }
                    "process_labels" => {
                        let (pid, _) = self.id_of(ev.pid)?;
                        if let Some(l) = self.text_of(ev.arg_labels)? {
                            self.store.process_labels.push((pid, l));
                        }
                    }
                    _ => {}
                }
            }
            _ => self.store.counts.other += 1,
        }
        let _ = ev.bp;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Parallel pass over `traceEvents`.
//
// The calling thread cuts the decompressed stream into batches (about one chunk each) at
// candidate event boundaries (`}` ws `,` ws `{`, found by a short backwards search from
// the chunk's end; the unfinished event goes into the next chunk's head room) and hands them to
// worker threads; each worker parses its batch into a partial store with its own
// interner and thread table, and the calling thread merges the partial stores in file
// order, remapping name and thread ids. Merging in order with first-appearance local ids
// gives exactly the ids, rows and order a sequential pass gives. A cut is proven to be a
// real boundary when the batch before it parses into whole events ending at it (by
// induction from the array start); otherwise the caller reruns the sequential pass.

struct Batch {
    seq: u64,
    /// The batch is `buf[range]`.
    buf: Vec<u8>,
    range: std::ops::Range<usize>,
    /// First batch starts right after `[`, the others at the `,` before an event.
    first: bool,
    /// The last batch runs to the end of the document.
    last: bool,
}

struct Partial {
    store: TraceStore,
    log: BatchLog,
    saw_events: bool,
}

/// Parse one batch; `None` when it is not a run of whole events (or needs the sequential pass).
fn parse_batch(batch: &Batch, top_is_array: bool) -> Option<Partial> {
    let mut store = TraceStore::default();
    // Room for as many Python frames as the batch could hold (Kineto writes at least
    // ~200 bytes per frame): the columns do not regrow, and memory only gets touched
    // where rows land.
    let frames = batch.range.len() / 200;
    let f = &mut store.frames;
    f.name.reserve(frames);
    f.ts_ns.reserve(frames);
    f.dur_ns.reserve(frames);
    f.thread.reserve(frames);
    f.python_id.reserve(frames);
    f.parent_python_id.reserve(frames);
    let state = if batch.first {
        State::EventsFirst
    } else {
        State::EventsNext
    };
    let mut p = Parser::new(&mut store, state, top_is_array);
    p.log = Some(BatchLog::default());
    let b = &batch.buf[batch.range.clone()];
    let mut pos = 0;
    while p.state != State::Done {
        match p.step(b, pos) {
            Ok(n) => pos = n,
            Err(ScanErr::Incomplete) => break,
            Err(ScanErr::Syntax(..)) => return None,
        }
    }
    if !b[pos..].iter().all(|c| b" \t\r\n".contains(c)) {
        return None;
    }
    let ok_end = if batch.last {
        p.state == State::Done
    } else {
        p.state == State::EventsNext
    };
    // Text pids/tids get numbers in order of appearance across the file: sequential only.
    if !ok_end || !p.text_ids.is_empty() {
        return None;
    }
    let log = p.log.take().unwrap_or_default();
    let saw_events = p.saw_events;
    Some(Partial {
        store,
        log,
        saw_events,
    })
}

/// Last candidate event boundary in `b` at or after `from`: the index of the `,` in
/// `}` ws `,` ws `{`.
fn last_boundary(b: &[u8], from: usize) -> Option<usize> {
    let ws = |c: u8| matches!(c, b' ' | b'\n' | b'\r' | b'\t');
    let mut end = b.len();
    while let Some(open) = memchr::memrchr(b'{', &b[from..end]).map(|i| i + from) {
        end = open;
        let mut i = open;
        while i > from && ws(b[i - 1]) {
            i -= 1;
        }
        if i == from || b[i - 1] != b',' {
            continue;
        }
        let comma = i - 1;
        let mut k = comma;
        while k > from && ws(b[k - 1]) {
            k -= 1;
        }
        if k > from && b[k - 1] == b'}' {
            return Some(comma);
        }
    }
    None
}

fn parallel_events(
    p: &mut Parser<'_>,
    mut carry: Vec<u8>,
    rx: &Receiver<Msg>,
    recycle: &SyncSender<Vec<u8>>,
    workers: usize,
) -> Result<()> {
    use std::sync::{Arc, Mutex, mpsc};
    let top_is_array = p.top_is_array;
    let (job_tx, job_rx) = sync_channel::<Batch>(workers);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (res_tx, res_rx) = mpsc::channel::<(u64, Option<Partial>)>();
    let mut merger = Merger::default();
    for (i, t) in p.store.threads.iter().enumerate() {
        merger.thread_map.insert((t.pid, t.tid), i as u32);
    }
    if !p.text_ids.is_empty() {
        return Err(anyhow::Error::new(NeedSequential));
    }
    std::thread::scope(|scope| -> Result<()> {
        for w in 0..workers {
            let job_rx = Arc::clone(&job_rx);
            let res_tx = res_tx.clone();
            let recycle = recycle.clone();
            std::thread::Builder::new()
                .name(format!("trace-parse-{w}"))
                .spawn_scoped(scope, move || {
                    loop {
                        let job = match job_rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok(batch) = job else { return };
                        let part = parse_batch(&batch, top_is_array);
                        let _ = recycle.try_send(batch.buf);
                        if res_tx.send((batch.seq, part)).is_err() {
                            return;
                        }
                    }
                })
                .context("cannot start a parse thread")?;
        }
        drop(res_tx);
        // Results arrive out of order: merge them in sequence.
        let max_in_flight = 2 * workers as u64 + 1;
        let mut ready: std::collections::BTreeMap<u64, Option<Partial>> = Default::default();
        let mut sent = 0u64;
        let mut merged = 0u64;
        let mut failed = false;
        let mut merge_ready = |ready: &mut std::collections::BTreeMap<u64, Option<Partial>>,
                               merged: &mut u64,
                               p: &mut Parser<'_>|
         -> bool {
            while let Some(part) = ready.remove(merged) {
                match part {
                    Some(part) => {
                        merger.merge(p, part);
                        *merged += 1;
                    }
                    None => return false,
                }
            }
            true
        };
        let mut eof = false;
        while !eof && !failed {
            // `work[start..]` = the unfinished event carried over + the new chunk.
            let (work, start) = match rx.recv() {
                Ok(Msg::Data(mut chunk)) => {
                    p.store.counts.json_bytes += (chunk.len() - HEAD) as u64;
                    if carry.len() <= HEAD {
                        let start = HEAD - carry.len();
                        chunk[start..HEAD].copy_from_slice(&carry);
                        carry.clear();
                        (chunk, start)
                    } else {
                        // An event longer than HEAD: grow the carry instead.
                        carry.extend_from_slice(&chunk[HEAD..]);
                        let _ = recycle.try_send(chunk);
                        (std::mem::take(&mut carry), 0)
                    }
                }
                Ok(Msg::Eof) | Err(_) => {
                    eof = true;
                    (std::mem::take(&mut carry), 0)
                }
                Ok(Msg::Err(_)) => {
                    failed = true;
                    break;
                }
            };
            let cut = if eof {
                Some(work.len())
            } else {
                last_boundary(&work, start)
            };
            let Some(cut) = cut else {
                // No boundary yet (a huge event): keep accumulating.
                carry = if start == 0 {
                    work
                } else {
                    work[start..].to_vec()
                };
                continue;
            };
            carry.extend_from_slice(&work[cut..]);
            let batch = Batch {
                seq: sent,
                buf: work,
                range: start..cut,
                first: sent == 0,
                last: eof,
            };
            sent += 1;
            if job_tx.send(batch).is_err() {
                failed = true;
                break;
            }
            // Bound the batches in flight (memory) and merge what is ready.
            loop {
                while let Ok((seq, part)) = res_rx.try_recv() {
                    ready.insert(seq, part);
                }
                if !merge_ready(&mut ready, &mut merged, p) {
                    failed = true;
                    break;
                }
                if sent - merged < max_in_flight {
                    break;
                }
                match res_rx.recv() {
                    Ok((seq, part)) => {
                        ready.insert(seq, part);
                    }
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
        }
        drop(job_tx);
        while !failed && merged < sent {
            match res_rx.recv() {
                Ok((seq, part)) => {
                    ready.insert(seq, part);
                    if !merge_ready(&mut ready, &mut merged, p) {
                        failed = true;
                    }
                }
                Err(_) => failed = true,
            }
        }
        if failed || !eof {
            return Err(anyhow::Error::new(NeedSequential));
        }
        Ok(())
    })
}

#[derive(Default)]
struct Merger {
    thread_map: FxHashMap<(i64, i64), u32>,
}

impl Merger {
    fn merge(&mut self, p: &mut Parser<'_>, part: Partial) {
        let Partial {
            store: local,
            log,
            saw_events,
        } = part;
        p.saw_events |= saw_events;
        let g = &mut *p.store;
        let names: Vec<NameId> = (0..local.names.len() as NameId)
            .map(|id| g.names.intern(local.names.get(id)))
            .collect();
        let rn = |id: NameId| if id == NONE { NONE } else { names[id as usize] };
        let threads: Vec<u32> = local
            .threads
            .iter()
            .map(|t| {
                *self.thread_map.entry((t.pid, t.tid)).or_insert_with(|| {
                    g.threads.push(ThreadInfo {
                        pid: t.pid,
                        tid: t.tid,
                        ..Default::default()
                    });
                    (g.threads.len() - 1) as u32
                })
            })
            .collect();
        let rt = |t: u32| threads[t as usize];
        for (t, label) in log.thread_names {
            g.threads[rt(t) as usize].thread_name = label;
        }
        for (key, raw) in log.top_values {
            apply_top_value(&mut g.meta, &key, &raw);
        }
        g.process_names.extend(local.process_names);
        g.process_labels.extend(local.process_labels);

        let (k, lk) = (&mut g.kernels, local.kernels);
        k.name.extend(lk.name.iter().map(|&n| rn(n)));
        k.ts_ns.extend(lk.ts_ns);
        k.dur_ns.extend(lk.dur_ns);
        k.thread.extend(lk.thread.iter().map(|&t| rt(t)));
        k.device.extend(lk.device);
        k.stream.extend(lk.stream);
        k.correlation.extend(lk.correlation);
        k.external_id.extend(lk.external_id);
        k.kind.extend(lk.kind);
        k.grid.extend(lk.grid);
        k.block.extend(lk.block);

        let (c, lc) = (&mut g.cpu_ops, local.cpu_ops);
        c.name.extend(lc.name.iter().map(|&n| rn(n)));
        c.ts_ns.extend(lc.ts_ns);
        c.dur_ns.extend(lc.dur_ns);
        c.thread.extend(lc.thread.iter().map(|&t| rt(t)));
        c.external_id.extend(lc.external_id);
        c.input_dims.extend(lc.input_dims.iter().map(|&n| rn(n)));

        let (a, la) = (&mut g.annotations, local.annotations);
        a.name.extend(la.name.iter().map(|&n| rn(n)));
        a.ts_ns.extend(la.ts_ns);
        a.dur_ns.extend(la.dur_ns);
        a.thread.extend(la.thread.iter().map(|&t| rt(t)));
        a.external_id.extend(la.external_id);
        a.on_gpu.extend(la.on_gpu);

        let (l, ll) = (&mut g.launches, local.launches);
        l.name.extend(ll.name.iter().map(|&n| rn(n)));
        l.ts_ns.extend(ll.ts_ns);
        l.dur_ns.extend(ll.dur_ns);
        l.thread.extend(ll.thread.iter().map(|&t| rt(t)));
        l.correlation.extend(ll.correlation);
        l.external_id.extend(ll.external_id);
        l.is_driver.extend(ll.is_driver);

        let (f, lf) = (&mut g.flows, local.flows);
        f.id.extend(lf.id);
        f.ts_ns.extend(lf.ts_ns);
        f.thread.extend(lf.thread.iter().map(|&t| rt(t)));
        f.phase.extend(lf.phase);
        f.cat.extend(lf.cat.iter().map(|&n| rn(n)));

        let (f, lf) = (&mut g.frames, local.frames);
        f.name.extend(lf.name.iter().map(|&n| rn(n)));
        f.ts_ns.extend(lf.ts_ns);
        f.dur_ns.extend(lf.dur_ns);
        f.thread.extend(lf.thread.iter().map(|&t| rt(t)));
        f.python_id.extend(lf.python_id);
        f.parent_python_id.extend(lf.parent_python_id);

        let (c, lc) = (&mut g.counts, local.counts);
        c.total += lc.total;
        c.kernels += lc.kernels;
        c.memcpy += lc.memcpy;
        c.memset += lc.memset;
        c.cpu_ops += lc.cpu_ops;
        c.user_annotations += lc.user_annotations;
        c.gpu_user_annotations += lc.gpu_user_annotations;
        c.runtime += lc.runtime;
        c.driver += lc.driver;
        c.python_functions += lc.python_functions;
        c.flows += lc.flows;
        c.metadata += lc.metadata;
        c.other += lc.other;
        p.event_index += lc.total;
    }
}

/// `ts`/`dur` value: None when absent or null; Some(None) when not a number.
fn time_of(v: Option<Val<'_>>) -> Option<Option<i64>> {
    match v {
        None | Some(Val::Null) => None,
        Some(Val::Num(n)) => Some(us_to_ns(n)),
        // Some writers quote numbers.
        Some(Val::Str(s, _)) => Some(us_to_ns(s)),
        Some(Val::Other) => Some(None),
    }
}

fn dim3(raw: Option<&[u8]>) -> [u32; 3] {
    let mut out = [0u32; 3];
    if let Some(r) = raw {
        let mut k = 0;
        let mut cur: Option<u32> = None;
        for &c in r {
            if c.is_ascii_digit() {
                cur = Some(
                    cur.unwrap_or(0)
                        .saturating_mul(10)
                        .saturating_add((c - b'0') as u32),
                );
            } else if let Some(v) = cur.take() {
                if k < 3 {
                    out[k] = v;
                }
                k += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microseconds_become_exact_nanoseconds() {
        assert_eq!(us_to_ns(b"5100925893139.901"), Some(5_100_925_893_139_901));
        assert_eq!(us_to_ns(b"2.5"), Some(2_500));
        assert_eq!(us_to_ns(b"7"), Some(7_000));
        assert_eq!(us_to_ns(b"0.0015"), Some(2));
        assert_eq!(us_to_ns(b"-1.25"), Some(-1_250));
        assert_eq!(us_to_ns(b"1e3"), Some(1_000_000));
        assert_eq!(us_to_ns(b"abc"), None);
        // From 2^62 ns (146 years) on a value is no time: the sum of two must not overflow.
        assert_eq!(us_to_ns(b"4611686018427387.903"), Some((1 << 62) - 1));
        assert_eq!(us_to_ns(b"-4611686018427387.903"), Some(1 - (1 << 62)));
        assert_eq!(us_to_ns(b"4611686018427387.904"), None);
        assert_eq!(us_to_ns(b"-4611686018427387.905"), None);
        assert_eq!(us_to_ns(b"5100925897550e100"), None);
        assert_eq!(us_to_ns(b"1e400"), None);
        // An exponent decides before the integer part is scaled to nanoseconds.
        assert_eq!(us_to_ns(b"10000000000000000e-10"), Some(1_000_000_000));
        assert_eq!(micros_at(b"4611686018427387.905,", 0), None);
        // Rounding up at the very top of i64 is a miss, not an overflow.
        assert_eq!(us_to_ns(b"9223372036854775.8075"), None);
        assert_eq!(micros_at(b"9223372036854775.8075,", 0), None);
    }

    #[test]
    fn one_pass_numbers_agree_with_the_general_conversions() {
        let texts = [
            "0",
            "7",
            "-7",
            "42.5",
            "5100925893139.901",
            "5100925893139.9015",
            "5100925893139.9014",
            "0.0015",
            "-1.25",
            "1.",
            "1e3",
            "1.5e2",
            "--1",
            "-",
            "+1",
            "12-3",
            "9223372036854775807",
            "9223372036854775808",
            "2934784.435",
            "3.99999",
            ".5",
            "00012",
            "1.2.3",
        ];
        for t in texts {
            for end in [", ", "}", "\n", "e", "-", "."] {
                let text = format!("{t}{end}");
                let b = text.as_bytes();
                // The general path: the scanner's number run, then the conversion.
                let general = num_at(b, 0).filter(|(n, _)| n.len() == t.len());
                let ns = general.and_then(|(n, k)| us_to_ns(n).map(|v| (v, k)));
                let int = general.and_then(|(n, k)| {
                    let digits = n.strip_prefix(b"-").unwrap_or(n);
                    digits.iter().all(u8::is_ascii_digit).then_some(())?;
                    parse_i64(n).map(|v| (v, k))
                });
                // One pass either agrees or declines (never a different value).
                if let Some(got) = micros_at(b, 0) {
                    assert_eq!(Some(got), ns, "micros {text:?}");
                }
                if let Some(got) = int_at(b, 0) {
                    assert_eq!(Some(got), int, "int {text:?}");
                }
                // Plain decimals followed by a delimiter are taken by the one pass.
                let plain = t
                    .trim_start_matches('-')
                    .split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
                    && t.matches('.').count() <= 1
                    && t.matches('-').count() <= 1;
                if plain && matches!(end, ", " | "}" | "\n") && ns.is_some() {
                    assert_eq!(micros_at(b, 0), ns, "plain {text:?}");
                }
            }
        }
    }

    #[test]
    fn digit_runs_read_eight_at_a_time_match_a_digit_by_digit_read() {
        let naive = |b: &[u8]| -> Option<(i64, usize)> {
            let mut v: i64 = 0;
            let mut n = 0;
            while n < b.len() && b[n].is_ascii_digit() {
                v = v.checked_mul(10)?.checked_add((b[n] - b'0') as i64)?;
                n += 1;
            }
            Some((v, n))
        };
        // Every length 0..=20 of digits, each followed by every kind of byte.
        let digits = b"98765432109876543210123";
        for len in 0..=20 {
            for next in [
                b' ',
                b',',
                b'.',
                b'/',
                b':',
                b'e',
                0x00,
                0x8a,
                0xff,
                b'0' - 1,
            ] {
                let mut text = digits[..len].to_vec();
                text.push(next);
                text.extend_from_slice(b"123456789");
                assert_eq!(
                    digits_at(&text, 0),
                    naive(&text),
                    "{len} digits then {next:#x}"
                );
            }
            // Without a terminator, at the end of the buffer.
            assert_eq!(
                digits_at(&digits[..len], 0),
                naive(&digits[..len]),
                "{len} at end"
            );
        }
        // Overflow is reported, not wrapped.
        assert_eq!(digits_at(b"9223372036854775807,", 0), Some((i64::MAX, 19)));
        assert_eq!(digits_at(b"9223372036854775808,", 0), None);
        assert_eq!(digits_at(b"00000000000000000000042,", 0), Some((42, 23)));
    }

    /// Events as Kineto writes them (copied from the H200 fixtures) take the fast paths.
    #[test]
    fn kineto_layout_events_take_the_fast_paths() {
        let python = b"{\n    \"ph\": \"X\", \"cat\": \"python_function\", \"name\": \"threading.py(1073): _bootstrap_inner\", \"pid\": 802, \"tid\": 0,\n    \"ts\": 5100925891744.910, \"dur\": 2934782.151,\n    \"args\": {\n      \"Python parent id\": 1, \"Python id\": 2, \"Ev Idx\": 26577\n    }\n  },";
        let mut store = TraceStore::default();
        let mut p = Parser::new(&mut store, State::EventsFirst, false);
        assert_eq!(p.python_frame_kineto(python, 0), Some(python.len() - 1));
        assert_eq!(store.frames.ts_ns, [5_100_925_891_744_910]);
        assert_eq!(store.frames.dur_ns, [2_934_782_151]);
        assert_eq!(
            (store.frames.python_id[0], store.frames.parent_python_id[0]),
            (2, 1)
        );
        let kernel = b"{\n    \"ph\": \"X\", \"cat\": \"kernel\", \"name\": \"nvjet_tst\", \"pid\": 0, \"tid\": 7,\n    \"ts\": 5100925898037.875, \"dur\": 0.736,\n    \"args\": {\n      \"External id\": 43,      \"queued\": 0, \"device\": 0, \"context\": 1,      \"stream\": 7, \"correlation\": 97,      \"grid\": [1, 1, 1],      \"block\": [64, 1, 1]\n    }\n  }";
        let (ev, end) = scan_event_kineto(kernel, 0).expect("kernel event in Kineto layout");
        assert_eq!(end, kernel.len());
        assert_eq!(
            (ev.cat, ev.correlation, ev.stream),
            (&b"kernel"[..], Some(&b"97"[..]), Some(&b"7"[..]))
        );
        // The full kernel args as Kineto writes them take the kernel template.
        let args = b"{\n      \"External id\": 43,      \"queued\": 0, \"device\": 0, \"context\": 1,      \"stream\": 7, \"correlation\": 97,      \"registers per thread\": 16,      \"shared memory\": 0,      \"blocks per SM\": 0.007576,      \"warps per SM\": 0.015152,      \"grid\": [1, 1, 1],      \"block\": [64, 1, 1],      \"est. achieved occupancy %\": 0\n    }\n  }";
        let (k, end) = kernel_args_kineto(args, 0).expect("kernel args in Kineto layout");
        assert_eq!(end, args.len());
        assert_eq!((k.correlation, k.block), (&b"97"[..], &b"[64, 1, 1]"[..]));
        let flow = b"{\n    \"ph\": \"f\", \"id\": 56, \"pid\": 802, \"tid\": 802, \"ts\": 5100925897555.992,\n    \"cat\": \"ac2g\", \"name\": \"ac2g\", \"bp\": \"e\"\n  }";
        let (ev, end) = scan_flow_kineto(flow, 0).expect("flow event in Kineto layout");
        assert_eq!(
            (ev.ph, ev.cat, ev.bp, end),
            (b'f', &b"ac2g"[..], &b"e"[..], flow.len())
        );
        // One byte of other whitespace and both fast paths step aside.
        let spaced = [&kernel[..1], b" ", &kernel[1..]].concat();
        assert!(scan_event_kineto(&spaced, 0).is_none());
        let mut store = TraceStore::default();
        let mut p = Parser::new(&mut store, State::EventsFirst, false);
        assert_eq!(
            p.python_frame_kineto(&[&python[..1], b" ", &python[1..]].concat(), 0),
            None
        );
        assert!(store.frames.is_empty());
    }

    /// Two names with the same cache key (they differ only in bytes the key skips) keep
    /// their own ids: a hit is only taken after a full comparison.
    #[test]
    fn name_cache_collisions_still_give_each_name_its_own_id() {
        let a = b"vllm/model.py(1234567): forward";
        let mut b = *a;
        b[9] = b'X'; // outside the first, middle and last eight bytes
        assert_eq!(name_cache_key(a), name_cache_key(&b));
        let mut store = TraceStore::default();
        let mut p = Parser::new(&mut store, State::EventsFirst, false);
        let ids: Vec<NameId> = (0..6)
            .map(|i| p.intern_cached(if i % 2 == 0 { a } else { &b }).unwrap())
            .collect();
        assert_eq!(ids, [0, 1, 0, 1, 0, 1]);
        assert_eq!(store.names.get(1).as_bytes(), &b[..]);
        // Short names (under eight bytes) and invalid UTF-8.
        let mut p = Parser::new(&mut store, State::EventsFirst, false);
        assert_eq!(p.intern_cached(b"f"), p.intern_cached(b"f"));
        assert_ne!(p.intern_cached(b"f"), p.intern_cached(b"g"));
        assert_eq!(p.intern_cached(b"\xff\xfe"), None);
    }

    #[test]
    fn grid_triples_parse() {
        assert_eq!(dim3(Some(b"[64, 2, 1]")), [64, 2, 1]);
        assert_eq!(dim3(None), [0, 0, 0]);
    }

    #[test]
    fn newline_counts_match_a_plain_count() {
        let text: Vec<u8> = (0..5000u32)
            .map(|i| {
                if i % 7 == 0 || i % 255 == 3 {
                    b'\n'
                } else {
                    (i % 200) as u8 + 11
                }
            })
            .collect();
        for len in [0, 1, 7, 8, 9, 2040, 2041, 4999, 5000] {
            let plain = text[..len].iter().filter(|&&c| c == b'\n').count() as u64;
            assert_eq!(count_nl(&text[..len]), plain, "first {len} bytes");
        }
        assert_eq!(count_nl(&[b'\n'; 3000]), 3000);
    }

    #[test]
    fn batch_cuts_land_before_the_comma_between_two_events() {
        let b = br#"{"a": {"x": 1}}, {"b": [{"c": 2}, {"d": 3}]},
  {"e": 4}"#;
        let cut = last_boundary(b, 0).unwrap();
        assert_eq!(&b[cut..cut + 2], b",\n");
        assert!(b[..cut].ends_with(b"]}"));
        // Nothing before `from` is looked at.
        assert_eq!(last_boundary(b, cut + 1), None);
        assert_eq!(last_boundary(br#"{"a": 1}"#, 0), None);
    }

    #[test]
    fn strings_end_at_the_first_unescaped_quote_at_any_length() {
        for len in 0..80 {
            let body = "x".repeat(len);
            let text = format!("\"{body}\", \"next\"");
            let (s, e, esc, next) = scan_string(text.as_bytes(), 0).unwrap();
            assert_eq!(
                (s, e, esc, next),
                (1, 1 + len, false, 2 + len),
                "plain, {len} bytes"
            );
            // An escaped quote (and backslash) at every position.
            let text = format!("\"{body}\\\"\\\\y\" tail");
            let (s, e, esc, _) = scan_string(text.as_bytes(), 0).unwrap();
            assert_eq!((s, e, esc), (1, len + 6, true), "escaped at {len}");
            let mut out = String::new();
            unescape(&text.as_bytes()[s..e], &mut out).unwrap();
            assert_eq!(out, format!("{body}\"\\y"));
            // No closing quote yet: more bytes are needed.
            let open = format!("\"{body}");
            assert!(matches!(
                scan_string(open.as_bytes(), 0),
                Err(ScanErr::Incomplete)
            ));
        }
    }

    #[test]
    fn escapes_decode() {
        let mut s = String::new();
        unescape(br#"a\"b\u00e9\n"#, &mut s).unwrap();
        assert_eq!(s, "a\"b\u{e9}\n");
    }
}
