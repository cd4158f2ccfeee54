//! The parser state machine over the top-level document and the sequential stream driver.

use super::*;

#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum State {
    Start,
    TopKey,
    TopAfterValue,
    EventsFirst,
    EventsNext,
    AfterEventsArray,
    Done,
}

pub(super) struct Parser<'s> {
    pub(super) store: &'s mut TraceStore,
    pub(super) state: State,
    pub(super) top_is_array: bool,
    pub(super) saw_events: bool,
    pub(super) event_index: u64,
    pub(super) thread_map: FxHashMap<(i64, i64), u32>,
    pub(super) last_thread: ((i64, i64), u32),
    pub(super) text_ids: FxHashMap<String, i64>,
    pub(super) scratch: String,
    /// Worker mode (a batch of a parallel parse): top-level values and thread names are
    /// logged for the in-order merge instead of applied.
    pub(super) log: Option<BatchLog>,
    /// Direct-mapped cache in front of the interner for frame names (a trace repeats a
    /// thousand or so names a million times): a cheap key from three words of the name
    /// picks the slot, and a full comparison confirms the hit.
    pub(super) name_cache: Vec<(u64, NameId)>,
    /// Take the Kineto exact-layout fast paths ([`ReadOptions::kineto_fast_paths`]).
    pub(super) fast: bool,
}

pub(super) const NAME_CACHE_SLOTS: usize = 1 << 10;

/// Key of a name for [`Parser::name_cache`]: length, first, middle and last eight bytes.
#[inline(always)]
pub(super) fn name_cache_key(name: &[u8]) -> u64 {
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
pub(super) struct BatchLog {
    pub(super) top_values: Vec<(Vec<u8>, Vec<u8>)>,
    pub(super) thread_names: Vec<(u32, Option<String>)>,
}

impl<'s> Parser<'s> {
    pub(super) fn new(
        store: &'s mut TraceStore,
        state: State,
        top_is_array: bool,
        fast: bool,
    ) -> Self {
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
            fast,
        }
    }
}

/// Drive the scanner over the decompressed stream, in place: the text is parsed where the
/// decompression thread wrote it, and an event cut by a chunk's end is copied into the
/// next chunk's head room (a plain growing buffer only for events longer than that).
pub(super) fn parse_stream(
    src: Box<dyn Read + Send>,
    store: &mut TraceStore,
    workers: usize,
    fast: bool,
) -> Result<(), ReadError> {
    let (rx, recycle, handle) = spawn_reader(src)?;
    let mut p = Parser::new(store, State::Start, false, fast);
    // The unparsed text is `work[pos..]`; `work[start..]` begins at stream offset `base`.
    let mut work: Vec<u8> = Vec::new();
    let mut start = 0usize;
    let mut pos = 0usize;
    let mut base = 0u64;
    let mut eof = false;
    let result = (|| -> Result<(), ReadError> {
        loop {
            let offset = |i: usize| base + (i - start) as u64;
            if p.state == State::Done {
                // Only whitespace may follow.
                if let Some(off) = work[pos..].iter().position(|b| !b" \t\r\n".contains(b)) {
                    let at = offset(pos + off);
                    return Err(ReadError::json_at(
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
                        return Err(ReadError::json_at(
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
                    return Err(ReadError::other("the file is empty (no JSON document)"));
                }
                let at = offset(work.len());
                return Err(ReadError::json_at(
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
                    return Err(ReadError::other(format!(
                        "decompression failed after {} bytes of JSON: {e} (truncated or corrupt gzip?)",
                        offset(work.len())
                    )));
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
        return Err(ReadError::other(
            "the JSON document has no \"traceEvents\" array: not a Chrome/Kineto trace",
        ));
    }
    Ok(())
}

/// Fields of one event, borrowed from the buffer.
#[derive(Default)]
pub(super) struct Ev<'a> {
    pub(super) ph: u8,
    pub(super) cat: &'a [u8],
    pub(super) name: Option<Val<'a>>,
    pub(super) pid: Option<Val<'a>>,
    pub(super) tid: Option<Val<'a>>,
    pub(super) ts: Option<Val<'a>>,
    pub(super) dur: Option<Val<'a>>,
    pub(super) id: Option<Val<'a>>,
    pub(super) bp: &'a [u8],
    // args
    pub(super) external_id: Option<&'a [u8]>,
    pub(super) correlation: Option<&'a [u8]>,
    pub(super) stream: Option<&'a [u8]>,
    pub(super) device: Option<&'a [u8]>,
    pub(super) python_id: Option<&'a [u8]>,
    pub(super) python_parent: Option<&'a [u8]>,
    pub(super) grid: Option<&'a [u8]>,
    pub(super) block: Option<&'a [u8]>,
    pub(super) input_dims: Option<&'a [u8]>,
    pub(super) arg_name: Option<Val<'a>>,
    pub(super) arg_labels: Option<Val<'a>>,
}

pub(super) fn num_of(v: Option<Val<'_>>) -> Option<&[u8]> {
    match v {
        Some(Val::Num(n)) => Some(n),
        _ => None,
    }
}

impl<'s> Parser<'s> {
    pub(super) fn describe_state(&self) -> String {
        match self.state {
            State::EventsFirst | State::EventsNext => {
                format!("traceEvents (after {} events)", self.event_index)
            }
            State::Start => "the start of the document".into(),
            _ => "the top-level object".into(),
        }
    }

    /// Advance one unit from `pos`; returns the new committed position. One arm per state;
    /// the per-event arm is [`Parser::step_event`], inlined here.
    pub(super) fn step(&mut self, b: &[u8], pos: usize) -> SR<usize> {
        match self.state {
            State::Start => self.step_start(b, pos),
            State::TopKey => self.step_top_key(b, pos),
            State::TopAfterValue | State::AfterEventsArray => self.step_top_after_value(b, pos),
            State::EventsFirst | State::EventsNext => self.step_event(b, pos),
            State::Done => Ok(b.len()),
        }
    }

    /// The document's first byte (after a UTF-8 byte-order mark): `{` for an object with
    /// `traceEvents`, `[` for a bare array of events.
    fn step_start(&mut self, b: &[u8], pos: usize) -> SR<usize> {
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

    /// A top-level key and its value: `traceEvents` enters the events array; any other
    /// value is applied to the trace metadata (or logged, in worker mode).
    fn step_top_key(&mut self, b: &[u8], pos: usize) -> SR<usize> {
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

    /// After a top-level value (or the events array): `,` for the next key, `}` for the end.
    fn step_top_after_value(&mut self, b: &[u8], pos: usize) -> SR<usize> {
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

    /// One element of `traceEvents` (or its closing `]`): scanned by the Kineto fast paths
    /// when they apply, else by the general scanner, then ingested. The reader's hot path
    /// (once per event): always inlined into [`Parser::step`], so the split costs no call.
    #[inline(always)]
    fn step_event(&mut self, b: &[u8], pos: usize) -> SR<usize> {
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
        let fast = self.fast;
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
}

pub(super) fn apply_top_value(m: &mut TraceMeta, key: &[u8], raw: &[u8]) {
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
