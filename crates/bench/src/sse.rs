//! Server-sent-events parsing for OpenAI-compatible streams, built for one client core
//! consuming hundreds of thousands of events per second:
//!
//! - [`SseParser`] (from `vllm_sota_core::sse`) splits a byte stream into events.
//! - [`scan_chunk`] reads the fields a benchmark needs from one chunk's JSON (`id`,
//!   `choices[0].text`, `choices[0].delta.{content,reasoning_content,reasoning,role}`,
//!   `finish_reason`, `usage.{prompt,completion}_tokens`, `error`) with an exact,
//!   allocation-free JSON walker: a key name inside a string value cannot fool it,
//!   and malformed JSON is an error, never a guess.

use memchr::memchr;

pub(crate) use vllm_sota_core::sse::{SseEvent, SseParser};

/// The benchmark-relevant fields of one streamed chunk. Strings are raw (still
/// JSON-escaped) slices of the chunk; an escaped string is empty iff its value is.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkInfo<'a> {
    pub id: Option<&'a [u8]>,
    pub object: Option<&'a [u8]>,
    /// Number of elements of `choices`, when the key is present.
    pub choices_len: Option<usize>,
    /// `choices[0].text` (completions) or `choices[0].delta.content` (chat).
    pub text: Option<&'a [u8]>,
    /// `choices[0].delta.reasoning_content` or `.reasoning`.
    pub reasoning: Option<&'a [u8]>,
    /// `choices[0].delta.role` was present (role-only first chunks).
    pub role: bool,
    pub finish_reason: Option<&'a [u8]>,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    /// Raw JSON of an `error` value, or a top-level `message` of an `"object":"error"` body.
    pub error: Option<&'a [u8]>,
    /// Top-level `message` (used with `object == "error"`).
    pub message: Option<&'a [u8]>,
}

impl ChunkInfo<'_> {
    /// Whether this chunk carries generated text or reasoning.
    pub(crate) fn has_generated_text(&self) -> bool {
        self.text.is_some_and(|t| !t.is_empty()) || self.reasoning.is_some_and(|t| !t.is_empty())
    }

    /// Whether this chunk stands for generated tokens (the TTFT trigger, and one count of
    /// the chunk-count fallback): it carries a choice, even one whose text is empty (a
    /// token that decodes to nothing alone: a partial UTF-8 sequence, a special token),
    /// as `vllm bench serve` counts them. A role-only announcement (`delta.role` with no
    /// text, no reasoning and no finish reason) is not a token: real servers send it with
    /// the first token, but a server may send it on admission, before any prefill.
    pub(crate) fn is_token_chunk(&self) -> bool {
        if self.choices_len.unwrap_or(0) == 0 {
            return false;
        }
        !(self.role && !self.has_generated_text() && self.finish_reason.is_none())
    }

    /// Error description if this chunk is an error event.
    pub(crate) fn error_text(&self) -> Option<String> {
        if let Some(e) = self.error {
            return Some(String::from_utf8_lossy(e).into_owned());
        }
        if self.object == Some(b"error") {
            let m = self
                .message
                .map(|m| String::from_utf8_lossy(m).into_owned())
                .unwrap_or_default();
            return Some(m);
        }
        None
    }
}

/// A JSON syntax problem, with the byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanError {
    pub offset: usize,
    pub what: &'static str,
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.what, self.offset)
    }
}

const QUOTES: u64 = 0x2222_2222_2222_2222;
const BACKSLASHES: u64 = 0x5c5c_5c5c_5c5c_5c5c;

/// 0x80 in every byte of `v` that is zero, 0 elsewhere (exact: no false positives).
#[inline]
fn zero_bytes(v: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((v & LOW7).wrapping_add(LOW7)) | v | LOW7)
}

struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

type R<T> = Result<T, ScanError>;

impl<'a> Cur<'a> {
    fn err<T>(&self, what: &'static str) -> R<T> {
        Err(ScanError {
            offset: self.i,
            what,
        })
    }
    #[inline]
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }
    #[inline]
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }
    fn expect(&mut self, c: u8, what: &'static str) -> R<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            self.err(what)
        }
    }
    /// A string's raw contents (between the quotes, escapes untouched).
    #[inline]
    fn string(&mut self) -> R<&'a [u8]> {
        self.expect(b'"', "expected a string")?;
        let start = self.i;
        let b = self.b;
        loop {
            // Eight bytes at a time (SWAR): find the first '"' or '\\'.
            while self.i + 8 <= b.len() {
                let word = u64::from_le_bytes(b[self.i..self.i + 8].try_into().expect("8 bytes"));
                let hits = zero_bytes(word ^ QUOTES) | zero_bytes(word ^ BACKSLASHES);
                if hits == 0 {
                    self.i += 8;
                } else {
                    self.i += (hits.trailing_zeros() / 8) as usize;
                    break;
                }
            }
            // The tail (or the byte the word scan stopped at).
            while self.i < b.len() && b[self.i] != b'"' && b[self.i] != b'\\' {
                self.i += 1;
            }
            match b.get(self.i) {
                None => return self.err("unterminated string"),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(&b[start..self.i - 1]);
                }
                Some(_) => {
                    if self.i + 1 >= b.len() {
                        return self.err("unterminated escape");
                    }
                    self.i += 2;
                }
            }
        }
    }
    fn literal(&mut self, word: &'static [u8]) -> R<()> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            self.err("invalid literal")
        }
    }
    fn number_raw(&mut self) -> R<&'a [u8]> {
        self.ws();
        let start = self.i;
        while self.i < self.b.len()
            && matches!(
                self.b[self.i],
                b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'
            )
        {
            self.i += 1;
        }
        if self.i == start {
            return self.err("expected a value");
        }
        Ok(&self.b[start..self.i])
    }
    /// Skips any value; returns its raw span.
    fn value(&mut self) -> R<&'a [u8]> {
        let start = {
            self.ws();
            self.i
        };
        match self.peek() {
            Some(b'"') => {
                self.string()?;
            }
            Some(b'{') => {
                self.i += 1;
                if self.peek() == Some(b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.string()?;
                        self.expect(b':', "expected ':'")?;
                        self.value()?;
                        match self.peek() {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return self.err("expected ',' or '}'"),
                        }
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                if self.peek() == Some(b']') {
                    self.i += 1;
                } else {
                    loop {
                        self.value()?;
                        match self.peek() {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return self.err("expected ',' or ']'"),
                        }
                    }
                }
            }
            Some(b't') => self.literal(b"true")?,
            Some(b'f') => self.literal(b"false")?,
            Some(b'n') => self.literal(b"null")?,
            Some(_) => {
                self.number_raw()?;
            }
            None => return self.err("unexpected end of JSON"),
        }
        Ok(&self.b[start..self.i])
    }
    fn null_or_string(&mut self) -> R<Option<&'a [u8]>> {
        match self.peek() {
            Some(b'n') => {
                self.literal(b"null")?;
                Ok(None)
            }
            Some(b'"') => Ok(Some(self.string()?)),
            _ => {
                self.value()?;
                Ok(None)
            }
        }
    }
    fn null_or_u64(&mut self) -> R<Option<u64>> {
        match self.peek() {
            Some(b'n') => {
                self.literal(b"null")?;
                Ok(None)
            }
            Some(b'0'..=b'9') => {
                let raw = self.number_raw()?;
                Ok(std::str::from_utf8(raw)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok()))
            }
            _ => {
                self.value()?;
                Ok(None)
            }
        }
    }
    /// Iterates an object's members, handing each key to `f` positioned at its value;
    /// `f` must consume the value.
    fn object(&mut self, mut f: impl FnMut(&mut Self, &'a [u8]) -> R<()>) -> R<()> {
        self.expect(b'{', "expected an object")?;
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            let key = self.string()?;
            self.expect(b':', "expected ':'")?;
            f(self, key)?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return self.err("expected ',' or '}'"),
            }
        }
    }
}

/// Reads one chunk's JSON. Exact for the fields in [`ChunkInfo`]; errors on malformed JSON.
pub(crate) fn scan_chunk(json: &[u8]) -> Result<ChunkInfo<'_>, ScanError> {
    let mut c = Cur { b: json, i: 0 };
    let mut info = ChunkInfo::default();
    c.object(|c, key| {
        match key {
            b"id" => info.id = c.null_or_string()?,
            b"object" => info.object = c.null_or_string()?,
            b"message" => info.message = c.null_or_string()?,
            b"error" => {
                let v = c.value()?;
                if v != b"null" {
                    info.error = Some(v);
                }
            }
            b"usage" if c.peek() == Some(b'{') => {
                c.object(|c, k| {
                    match k {
                        b"prompt_tokens" => info.prompt_tokens = c.null_or_u64()?,
                        b"completion_tokens" => info.completion_tokens = c.null_or_u64()?,
                        _ => {
                            c.value()?;
                        }
                    }
                    Ok(())
                })?;
            }
            b"choices" => {
                if c.peek() != Some(b'[') {
                    c.value()?;
                    return Ok(());
                }
                c.i += 1;
                let mut n = 0usize;
                if c.peek() == Some(b']') {
                    c.i += 1;
                } else {
                    loop {
                        if n == 0 && c.peek() == Some(b'{') {
                            scan_choice(c, &mut info)?;
                        } else {
                            c.value()?;
                        }
                        n += 1;
                        match c.peek() {
                            Some(b',') => c.i += 1,
                            Some(b']') => {
                                c.i += 1;
                                break;
                            }
                            _ => return c.err("expected ',' or ']'"),
                        }
                    }
                }
                info.choices_len = Some(n);
            }
            _ => {
                c.value()?;
            }
        }
        Ok(())
    })?;
    if c.peek().is_some() {
        return c.err("trailing bytes after JSON object");
    }
    Ok(info)
}

fn scan_choice<'a>(c: &mut Cur<'a>, info: &mut ChunkInfo<'a>) -> R<()> {
    c.object(|c, key| {
        match key {
            b"text" => info.text = c.null_or_string()?,
            b"finish_reason" => info.finish_reason = c.null_or_string()?,
            b"delta" if c.peek() == Some(b'{') => c.object(|c, k| {
                match k {
                    b"content" => info.text = c.null_or_string()?,
                    b"reasoning_content" | b"reasoning" => {
                        if let Some(r) = c.null_or_string()? {
                            info.reasoning = Some(r);
                        }
                    }
                    b"role" => {
                        c.value()?;
                        info.role = true;
                    }
                    _ => {
                        c.value()?;
                    }
                }
                Ok(())
            })?,
            _ => {
                c.value()?;
            }
        }
        Ok(())
    })
}

/// Appends the unescaped value of a raw JSON string to `out`.
pub(crate) fn unescape_into(raw: &[u8], out: &mut String) {
    let mut i = 0;
    while i < raw.len() {
        let Some(k) = memchr(b'\\', &raw[i..]) else {
            out.push_str(&String::from_utf8_lossy(&raw[i..]));
            return;
        };
        out.push_str(&String::from_utf8_lossy(&raw[i..i + k]));
        i += k;
        let Some(&e) = raw.get(i + 1) else { return };
        i += 2;
        match e {
            b'n' => out.push('\n'),
            b't' => out.push('\t'),
            b'r' => out.push('\r'),
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'u' => {
                let hex = |s: &[u8]| {
                    std::str::from_utf8(s)
                        .ok()
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                };
                let Some(hi) = raw.get(i..i + 4).and_then(hex) else {
                    return;
                };
                i += 4;
                let cp = if (0xD800..0xDC00).contains(&hi) && raw.get(i..i + 2) == Some(b"\\u") {
                    match raw.get(i + 2..i + 6).and_then(hex) {
                        Some(lo) if (0xDC00..0xE000).contains(&lo) => {
                            i += 6;
                            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                        }
                        _ => hi,
                    }
                } else {
                    hi
                };
                out.push(char::from_u32(cp).unwrap_or('\u{FFFD}'));
            }
            other => out.push(other as char), // \" \\ \/
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_completion_chat_reasoning_usage_and_errors() {
        let c = scan_chunk(br#"{"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":" hello","logprobs":null,"finish_reason":null}],"usage":null}"#).unwrap();
        assert_eq!(c.id, Some(&b"cmpl-1"[..]));
        assert_eq!(c.text, Some(&b" hello"[..]));
        assert_eq!(c.choices_len, Some(1));
        assert!(c.has_generated_text());
        let role = scan_chunk(br#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#).unwrap();
        assert!(role.role && !role.has_generated_text() && !role.is_token_chunk());
        // A token whose text decodes to nothing is still a token.
        let empty = scan_chunk(
            br#"{"choices":[{"index":0,"text":"","logprobs":null,"finish_reason":"length"}]}"#,
        )
        .unwrap();
        assert!(!empty.has_generated_text() && empty.is_token_chunk());
        let last = scan_chunk(br#"{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#)
            .unwrap();
        assert!(last.is_token_chunk());
        let role_and_end = scan_chunk(br#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"length"}]}"#).unwrap();
        assert!(role_and_end.is_token_chunk());
        let r =
            scan_chunk(br#"{"choices":[{"delta":{"reasoning_content":"think","content":null}}]}"#)
                .unwrap();
        assert_eq!(r.reasoning, Some(&b"think"[..]));
        assert!(r.has_generated_text());
        let r2 = scan_chunk(br#"{"choices":[{"delta":{"reasoning":"hmm"}}]}"#).unwrap();
        assert_eq!(r2.reasoning, Some(&b"hmm"[..]));
        let u = scan_chunk(br#"{"id":"x","choices":[],"usage":{"prompt_tokens":1000,"total_tokens":1128,"completion_tokens":128,"prompt_tokens_details":null}}"#).unwrap();
        assert_eq!(
            (u.choices_len, u.prompt_tokens, u.completion_tokens),
            (Some(0), Some(1000), Some(128))
        );
        assert!(!u.has_generated_text() && !u.is_token_chunk());
        // A key name inside a string value must not be picked up.
        let tricky = scan_chunk(
            br#"{"note":"\"usage\":{\"completion_tokens\":5}","choices":[{"text":"a\\\"b"}]}"#,
        )
        .unwrap();
        assert_eq!(tricky.completion_tokens, None);
        let mut s = String::new();
        unescape_into(tricky.text.unwrap(), &mut s);
        assert_eq!(s, "a\\\"b");
        let e = scan_chunk(br#"{"error":{"message":"bad","code":500}}"#).unwrap();
        assert_eq!(e.error_text().unwrap(), r#"{"message":"bad","code":500}"#);
        let e2 = scan_chunk(br#"{"object":"error","message":"oops","code":400}"#).unwrap();
        assert_eq!(e2.error_text().unwrap(), "oops");
    }

    #[test]
    fn malformed_json_is_an_error_with_offset() {
        for bad in [
            &b"{\"choices\":[{\"text\":\"abc"[..],
            b"{\"a\":}",
            b"not json",
            b"{\"a\":1} x",
            b"",
        ] {
            let e = scan_chunk(bad).unwrap_err();
            assert!(e.offset <= bad.len(), "{e}");
        }
    }

    #[test]
    fn unescape_handles_unicode_and_surrogates() {
        let mut s = String::new();
        unescape_into(br#"caf\u00e9 \ud83d\ude00 \n\t\/"#, &mut s);
        assert_eq!(s, "café 😀 \n\t/");
    }
}

#[cfg(test)]
mod string_scan_tests {
    use super::*;

    #[test]
    fn word_scan_finds_quotes_and_escapes_at_every_offset() {
        for len in 0..40 {
            for esc_at in [None, Some(0usize), Some(7), Some(8), Some(15), Some(33)] {
                let mut body: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
                if let Some(e) = esc_at.filter(|e| *e < len) {
                    body.insert(e, b'\\');
                    body.insert(e + 1, b'"');
                }
                let json = [&b"{\"text\":\""[..], &body, b"\",\"x\":1}"].concat();
                let c =
                    scan_chunk(&json).unwrap_or_else(|e| panic!("len {len} esc {esc_at:?}: {e}"));
                assert_eq!(c.text, None); // top-level "text" is not a choice field
                let json2 = [&b"{\"choices\":[{\"text\":\""[..], &body, b"\"}]}"].concat();
                assert_eq!(scan_chunk(&json2).unwrap().text, Some(&body[..]));
            }
        }
        assert!(scan_chunk(b"{\"choices\":[{\"text\":\"abcdefghijklmnop\\").is_err());
    }
}
