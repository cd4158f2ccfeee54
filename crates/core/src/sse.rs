//! Server-sent events split from a byte stream, decoded on bytes: a read may end
//! anywhere (inside `data:`, inside `\r\n`, between the two newlines, inside a multi-byte
//! character); an event's bytes are handed out only once it is complete, so text is
//! decoded per whole event, never per read. Skips `:` comments, joins multi-line `data:`
//! fields, keeps `event:` names, and at end of stream delivers a trailing event that
//! lacked its blank line (as vLLM's client does). Buffers are reused: no allocation per
//! event once warmed up (the load client consumes hundreds of thousands per second).

use memchr::memchr;

/// Longest line we buffer before declaring the stream malformed.
const MAX_PENDING: usize = 64 << 20;

/// One dispatched SSE event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` field, if the event had one (e.g. `error`).
    pub event: Option<&'a [u8]>,
    /// The `data:` field(s), joined by `\n`.
    pub data: &'a [u8],
}

impl SseEvent<'_> {
    /// `data: [DONE]`.
    pub fn is_done(&self) -> bool {
        self.data.trim_ascii() == b"[DONE]"
    }
}

/// Incremental SSE splitter; feed it every body frame as it arrives.
#[derive(Debug, Default)]
pub struct SseParser {
    pending: Vec<u8>,
    data: Vec<u8>,
    data_lines: u32,
    event: Vec<u8>,
    has_event: bool,
    comments: u64,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of `:` comment lines seen (keep-alives).
    pub fn comments(&self) -> u64 {
        self.comments
    }

    /// Feeds one read; calls `on_event` for every event completed by it.
    pub fn feed<F: FnMut(SseEvent<'_>)>(
        &mut self,
        mut bytes: &[u8],
        on_event: &mut F,
    ) -> Result<(), String> {
        if !self.pending.is_empty() {
            match memchr(b'\n', bytes) {
                None => {
                    self.pending.extend_from_slice(bytes);
                    if self.pending.len() > MAX_PENDING {
                        return Err(format!(
                            "SSE line longer than {MAX_PENDING} bytes without a newline"
                        ));
                    }
                    return Ok(());
                }
                Some(nl) => {
                    let mut line = std::mem::take(&mut self.pending);
                    line.extend_from_slice(&bytes[..nl]);
                    self.line(&line, on_event);
                    line.clear();
                    self.pending = line; // keep the capacity
                    bytes = &bytes[nl + 1..];
                }
            }
        }
        while let Some(nl) = memchr(b'\n', bytes) {
            let line = &bytes[..nl];
            let rest = &bytes[nl + 1..];
            // Fast path (the common shape): a lone `data:` line followed by its blank line
            // in the same read is dispatched straight from the input, without copying.
            if self.data_lines == 0 && !self.has_event && line.starts_with(b"data:") {
                let blank = if rest.first() == Some(&b'\n') {
                    1
                } else if rest.starts_with(b"\r\n") {
                    2
                } else {
                    0
                };
                if blank > 0 {
                    let v = &line[5..];
                    let v = v.strip_prefix(b" ").unwrap_or(v);
                    let v = v.strip_suffix(b"\r").unwrap_or(v);
                    on_event(SseEvent {
                        event: None,
                        data: v,
                    });
                    bytes = &rest[blank..];
                    continue;
                }
            }
            self.line(line, on_event);
            bytes = rest;
        }
        if !bytes.is_empty() {
            self.pending.extend_from_slice(bytes);
        }
        Ok(())
    }

    /// End of stream: delivers an unterminated last line/event, if any.
    pub fn finish<F: FnMut(SseEvent<'_>)>(&mut self, on_event: &mut F) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.line(&line, on_event);
        }
        self.dispatch(on_event);
    }

    fn line<F: FnMut(SseEvent<'_>)>(&mut self, line: &[u8], on_event: &mut F) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            self.dispatch(on_event);
            return;
        }
        if line[0] == b':' {
            self.comments += 1;
            return;
        }
        let (field, value) = match memchr(b':', line) {
            Some(c) => {
                let v = &line[c + 1..];
                (&line[..c], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.data_lines > 0 {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.data_lines += 1;
            }
            b"event" => {
                self.event.clear();
                self.event.extend_from_slice(value);
                self.has_event = true;
            }
            _ => {} // id:, retry:, unknown fields: ignored per the SSE spec
        }
    }

    fn dispatch<F: FnMut(SseEvent<'_>)>(&mut self, on_event: &mut F) {
        if self.data_lines > 0 || self.has_event {
            on_event(SseEvent {
                event: self.has_event.then_some(&self.event[..]),
                data: &self.data,
            });
        }
        self.data.clear();
        self.data_lines = 0;
        self.event.clear();
        self.has_event = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (event name, data) of each event.
    type Events = Vec<(Option<Vec<u8>>, Vec<u8>)>;

    fn collect(input: &[&[u8]]) -> (Events, u64) {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        let mut f = |e: SseEvent<'_>| out.push((e.event.map(|x| x.to_vec()), e.data.to_vec()));
        for part in input {
            p.feed(part, &mut f).unwrap();
        }
        p.finish(&mut f);
        let c = p.comments();
        (out, c)
    }

    const STREAM: &[u8] = b": keep-alive\r\n\r\ndata: {\"id\":\"a\",\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\r\n\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"hi \\\"there\\\"\"}}]}\n\n: ping\n\nevent: error\ndata: {\"error\":{\"message\":\"boom\"}}\n\ndata: line1\ndata: line2\n\ndata: [DONE]\n\ndata: {\"tail\":1}";

    #[test]
    fn every_split_point_gives_the_same_events() {
        let (whole, comments) = collect(&[STREAM]);
        assert_eq!(comments, 2);
        assert_eq!(whole.len(), 6, "{whole:?}");
        assert_eq!(whole[2].0.as_deref(), Some(&b"error"[..]));
        assert_eq!(whole[3].1, b"line1\nline2");
        assert_eq!(whole[4].1, b"[DONE]");
        assert_eq!(
            whole[5].1, b"{\"tail\":1}",
            "unterminated trailing event is delivered at finish"
        );
        for i in 0..=STREAM.len() {
            for j in i..=STREAM.len() {
                let (parts, _) = collect(&[&STREAM[..i], &STREAM[i..j], &STREAM[j..]]);
                assert_eq!(parts, whole, "split at {i},{j}");
            }
        }
        // One byte at a time.
        let bytes: Vec<&[u8]> = STREAM.chunks(1).collect();
        assert_eq!(collect(&bytes).0, whole);
    }
}
