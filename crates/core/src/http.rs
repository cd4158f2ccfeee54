//! The one HTTP/1.1 client of vllm-sota (a tidy test keeps raw `TcpStream` use here).
//!
//! Bytes first: a response head is parsed with `httparse`, a body is decoded by one
//! sans-IO state machine ([`BodyDecoder`]: `Content-Length`, chunked with extensions and
//! trailers, close-delimited) that hands out byte slices; text is decoded from UTF-8 only
//! once the whole body (or a whole SSE event, see [`crate::sse`]) is there, so a
//! multi-byte character split across reads or chunks is never cut.
//!
//! Two engines share the decoder:
//! - [`AsyncConn`] + [`read_head`] + [`read_body`]: the load client's keep-alive hot path
//!   (tokio, one reused read buffer, many chunks per read);
//! - [`request`] / [`stream`]: a blocking client for control requests (readiness probes,
//!   `/start_profile`, cache resets), with errors that tell a connect failure, a slow
//!   server (alive, but no byte within the read timeout) and a dead one (connection
//!   closed or reset before the response ended) apart, each naming the URL.

use anyhow::{Context, Result, bail};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Longest response head (status line + headers) or chunk-size line we accept.
const MAX_HEAD: usize = 1 << 20;
/// Read buffer of one connection. Reads restart at offset 0 whenever the buffer was
/// consumed, so only the first pages of it are touched in steady state.
const READ_BUF: usize = 64 << 10;

/// What an HTTP response head said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub framing: Framing,
    /// The connection may carry another request after this body.
    pub keep_alive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Chunked,
    Length(u64),
    /// Body ends when the server closes the connection.
    Close,
}

/// Result of parsing the start of a buffer as a response head.
enum Parsed {
    Partial,
    /// An interim 1xx response of this many bytes: the real one follows.
    Interim(usize),
    Done(Head, usize),
}

fn parse_head(buf: &[u8]) -> Result<Parsed> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            if buf.len() > MAX_HEAD {
                bail!("response head longer than {MAX_HEAD} bytes");
            }
            return Ok(Parsed::Partial);
        }
        Err(e) => bail!("malformed HTTP response head: {e}"),
    };
    let status = resp.code.unwrap_or(0);
    let version = resp.version.unwrap_or(1);
    let mut chunked = false;
    let mut length: Option<u64> = None;
    let mut close = version == 0;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h
                .value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok());
            match v {
                Some(v) => length = Some(v),
                None => bail!(
                    "bad content-length header {:?}",
                    String::from_utf8_lossy(h.value)
                ),
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let t = token.trim_ascii();
                if t.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if t.eq_ignore_ascii_case(b"keep-alive") && version == 0 {
                    close = false;
                }
            }
        }
    }
    if (100..200).contains(&status) && status != 101 {
        return Ok(Parsed::Interim(len));
    }
    let no_body = status == 204 || status == 304 || (100..200).contains(&status);
    let framing = if no_body {
        Framing::Length(0)
    } else if chunked {
        Framing::Chunked
    } else if let Some(l) = length {
        Framing::Length(l)
    } else {
        Framing::Close
    };
    let keep_alive = !close && framing != Framing::Close;
    Ok(Parsed::Done(
        Head {
            status,
            framing,
            keep_alive,
        },
        len,
    ))
}

/// Incremental body decoder state.
#[derive(Debug, Clone, Copy)]
enum State {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk: bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until a blank one.
    Trailers,
    /// Content-Length body: bytes left.
    Length(u64),
    /// Close-delimited body.
    UntilClose,
    Done,
}

/// Sans-IO response body decoder: feed it what was read, get body data slices back.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyDecoder {
    state: State,
}

impl BodyDecoder {
    pub(crate) fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::Chunked => State::Size,
            Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Close => State::UntilClose,
        };
        BodyDecoder { state }
    }

    pub(crate) fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The connection closed: `Ok` when that ends a close-delimited body.
    pub(crate) fn at_eof(&self) -> Result<()> {
        match self.state {
            State::UntilClose | State::Done => Ok(()),
            _ => bail!("connection closed before the end of the response body"),
        }
    }

    /// Decodes as much of `avail` as possible, calling `on_data` for every piece of body
    /// data; returns the number of bytes consumed (the rest is an incomplete line).
    #[inline]
    pub(crate) fn decode<F>(&mut self, avail: &[u8], on_data: &mut F) -> Result<usize>
    where
        F: FnMut(&[u8]) -> Result<()> + ?Sized,
    {
        let mut used = 0;
        loop {
            let avail = &avail[used..];
            match self.state {
                State::Done => return Ok(used),
                State::Length(left) | State::Data(left) => {
                    if avail.is_empty() {
                        return Ok(used);
                    }
                    let take = (avail.len() as u64).min(left) as usize;
                    on_data(&avail[..take])?;
                    used += take;
                    let left = left - take as u64;
                    self.state = match (self.state, left) {
                        (State::Length(_), 0) => State::Done,
                        (State::Length(_), l) => State::Length(l),
                        (_, 0) => State::DataEnd,
                        (_, l) => State::Data(l),
                    };
                }
                State::UntilClose => {
                    if !avail.is_empty() {
                        on_data(avail)?;
                    }
                    return Ok(used + avail.len());
                }
                State::Size | State::Trailers | State::DataEnd => {
                    let Some(nl) = memchr::memchr(b'\n', avail) else {
                        if avail.len() > MAX_HEAD {
                            bail!("chunked body: line longer than {MAX_HEAD} bytes");
                        }
                        return Ok(used);
                    };
                    let line = avail[..nl].strip_suffix(b"\r").unwrap_or(&avail[..nl]);
                    self.state = self.after_line(line)?;
                    used += nl + 1;
                }
            }
        }
    }

    fn after_line(&self, line: &[u8]) -> Result<State> {
        Ok(match self.state {
            State::Size => {
                let hex = line
                    .split(|&b| b == b';')
                    .next()
                    .unwrap_or(b"")
                    .trim_ascii();
                let size = std::str::from_utf8(hex)
                    .ok()
                    .filter(|s| !s.is_empty())
                    .and_then(|s| u64::from_str_radix(s, 16).ok())
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "chunked body: bad chunk size line {:?}",
                            String::from_utf8_lossy(line)
                        )
                    })?;
                if size == 0 {
                    State::Trailers
                } else {
                    State::Data(size)
                }
            }
            State::DataEnd => {
                if !line.is_empty() {
                    bail!("chunked body: chunk data not followed by CRLF");
                }
                State::Size
            }
            _ if line.is_empty() => State::Done,
            _ => State::Trailers,
        })
    }
}

/// One keep-alive HTTP/1.1 connection of the async load client, with its read buffer.
pub struct AsyncConn {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl AsyncConn {
    pub async fn connect(authority: &str) -> Result<AsyncConn> {
        let stream = tokio::net::TcpStream::connect(authority)
            .await
            .with_context(|| format!("connecting to {authority}"))?;
        stream.set_nodelay(true).ok();
        Ok(AsyncConn {
            stream,
            buf: vec![0; READ_BUF],
            start: 0,
            end: 0,
        })
    }

    /// Cheap liveness check of an idle connection: no syscall unless the reactor saw it
    /// become readable (EOF, reset, or stray bytes), each of which makes it unusable.
    pub fn idle_ok(&mut self) -> bool {
        if self.start != self.end {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == ErrorKind::WouldBlock)
    }

    pub async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.stream.write_all(bytes).await
    }

    /// Reads more bytes after `end`; 0 = EOF.
    async fn fill(&mut self) -> std::io::Result<usize> {
        use tokio::io::AsyncReadExt;
        self.make_room();
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    fn make_room(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let grown = self.buf.len() * 2;
                self.buf.resize(grown, 0);
            }
        }
    }
}

/// Why reading a response head failed: `Closed` before any byte (a stale keep-alive
/// connection; safe to retry on a fresh one) or anything else.
pub enum HeadError {
    Closed(std::io::Error),
    Other(anyhow::Error),
}

/// Reads one response head (skipping interim 1xx responses).
pub async fn read_head(conn: &mut AsyncConn) -> std::result::Result<Head, HeadError> {
    let mut got_any = false;
    loop {
        while conn.start < conn.end {
            match parse_head(&conn.buf[conn.start..conn.end]).map_err(HeadError::Other)? {
                Parsed::Partial => break,
                Parsed::Interim(len) => conn.start += len,
                Parsed::Done(head, len) => {
                    conn.start += len;
                    return Ok(head);
                }
            }
        }
        match conn.fill().await {
            Ok(0) if !got_any => {
                return Err(HeadError::Closed(std::io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "connection closed before a response",
                )));
            }
            Ok(0) => {
                return Err(HeadError::Other(anyhow::anyhow!(
                    "connection closed inside the response head"
                )));
            }
            Ok(_) => got_any = true,
            Err(e)
                if !got_any
                    && matches!(
                        e.kind(),
                        ErrorKind::ConnectionReset
                            | ErrorKind::BrokenPipe
                            | ErrorKind::ConnectionAborted
                    ) =>
            {
                return Err(HeadError::Closed(e));
            }
            Err(e) => {
                return Err(HeadError::Other(
                    anyhow::Error::new(e).context("reading the response head"),
                ));
            }
        }
    }
}

/// Reads a response body to its end, calling `on_data(bytes, read_time)` for every
/// piece of body data as it is decoded. `read_time` is the `Instant` taken right after
/// the read that delivered the bytes. Returns whether the connection is reusable.
pub async fn read_body<F>(
    conn: &mut AsyncConn,
    head: &Head,
    first_read_at: Instant,
    mut on_data: F,
) -> Result<bool>
where
    F: FnMut(&[u8], Instant) -> Result<()>,
{
    let mut dec = BodyDecoder::new(head.framing);
    let mut now = first_read_at;
    loop {
        let used = dec.decode(&conn.buf[conn.start..conn.end], &mut |d| on_data(d, now))?;
        conn.start += used;
        if dec.is_done() {
            // Stray bytes after the body: do not trust the connection with another request.
            return Ok(head.keep_alive && conn.start == conn.end);
        }
        let n = conn.fill().await.context("stream broken")?;
        now = Instant::now();
        if n == 0 {
            dec.at_eof().context("stream broken")?;
            return Ok(false);
        }
    }
}

/// `http://host[:port][/prefix]`, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    /// Path prefix without a trailing `/` (empty for none).
    pub prefix: String,
}

impl Url {
    pub fn parse(u: &str) -> Result<Url> {
        let rest = u
            .strip_prefix("http://")
            .with_context(|| format!("URL {u:?}: only http:// URLs are supported"))?;
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (
                h,
                p.parse()
                    .with_context(|| format!("URL {u:?}: bad port {p:?}"))?,
            ),
            _ => (hostport, 80),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || hostport.bytes().any(|b| b <= b' ' || b == 0x7f) {
            bail!("URL {u:?}: no host, or spaces or control characters in it");
        }
        Ok(Url {
            host: host.to_string(),
            port,
            prefix: path.trim_end_matches('/').to_string(),
        })
    }

    /// `host:port` (IPv6 hosts in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// `http://host:port/path` (IPv6 hosts in brackets).
pub fn url_of(host: &str, port: u16, path: &str) -> String {
    let sep = if path.starts_with('/') { "" } else { "/" };
    if host.contains(':') && !host.starts_with('[') {
        format!("http://[{host}]:{port}{sep}{path}")
    } else {
        format!("http://{host}:{port}{sep}{path}")
    }
}

/// Deadlines of one blocking request.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// To establish the TCP connection.
    pub connect: Duration,
    /// Longest silence (no byte) while waiting for or reading the response.
    pub read: Duration,
}

impl Timeouts {
    /// Connect within 10 s (or `read`, when shorter); silence allowed for `read`.
    pub fn new(read: Duration) -> Self {
        Timeouts {
            connect: read.min(Duration::from_secs(10)),
            read,
        }
    }
}

/// Why a blocking request failed. Each message names the URL.
#[derive(Debug)]
pub enum HttpError {
    /// No connection: refused, unresolvable, unreachable or not accepted in time.
    Connect { url: String, reason: String },
    /// The server holds the connection but sent no byte for `silent_s` seconds.
    Slow { url: String, silent_s: f64 },
    /// The connection was closed or reset before the response ended.
    Dead { url: String, reason: String },
    /// The server answered something that is not HTTP/1.x as we accept it.
    Protocol { url: String, reason: String },
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Connect { url, reason } => write!(f, "cannot connect to {url}: {reason}"),
            HttpError::Slow { url, silent_s } => write!(
                f,
                "{url}: server is slow: connection open but no byte for {silent_s:.1} s"
            ),
            HttpError::Dead { url, reason } => {
                write!(
                    f,
                    "{url}: connection lost before the response ended: {reason}"
                )
            }
            HttpError::Protocol { url, reason } => write!(f, "{url}: bad HTTP response: {reason}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// A whole response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (invalid UTF-8 replaced by U+FFFD).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("response is not JSON: {}", snippet(&self.text())))
    }
}

/// The first 200 bytes of `s`, trimmed, cut on a char boundary.
pub fn snippet(s: &str) -> String {
    let s = s.trim();
    if s.len() <= 200 {
        return s.to_string();
    }
    let mut end = 200;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A request body and its content type.
pub struct Body<'a> {
    pub content_type: &'a str,
    pub bytes: &'a [u8],
}

/// One blocking request on a fresh connection (`Connection: close`); the whole body.
pub fn request(method: &str, url: &str, body: Option<Body<'_>>, t: Timeouts) -> Result<Response> {
    let mut out = Vec::new();
    let status = stream(method, url, body, t, &mut |d| {
        out.extend_from_slice(d);
        Ok(())
    })?;
    Ok(Response { status, body: out })
}

/// `request` with a JSON body (or none).
pub fn request_json(
    method: &str,
    url: &str,
    body: Option<&serde_json::Value>,
    t: Timeouts,
) -> Result<Response> {
    let payload = body.map(|b| b.to_string());
    request(
        method,
        url,
        payload.as_deref().map(|p| Body {
            content_type: "application/json",
            bytes: p.as_bytes(),
        }),
        t,
    )
}

/// One blocking request; `on_data` gets the body bytes as they arrive (feed them to a
/// [`crate::sse::SseParser`] for a stream of events). Returns the status.
pub fn stream(
    method: &str,
    url: &str,
    body: Option<Body<'_>>,
    t: Timeouts,
    on_data: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<u16> {
    let u = Url::parse(url)?;
    let err = |e: HttpError| anyhow::Error::new(e);
    let mut s = connect(&u, url, t.connect).map_err(err)?;
    let _ = s.set_nodelay(true);
    s.set_read_timeout(Some(t.read))?;
    s.set_write_timeout(Some(t.read))?;
    let after = &url["http://".len()..];
    let path = after.find('/').map_or("/", |i| &after[i..]);
    if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        bail!("URL {url:?}: spaces or control characters in the path");
    }
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json, text/event-stream\r\n",
        u.authority()
    );
    if let Some(b) = &body {
        head.push_str(&format!(
            "Content-Type: {}\r\nContent-Length: {}\r\n",
            b.content_type,
            b.bytes.len()
        ));
    } else if method != "GET" && method != "HEAD" {
        head.push_str("Content-Length: 0\r\n");
    }
    head.push_str("\r\n");
    let sent = s
        .write_all(head.as_bytes())
        .and_then(|_| s.write_all(body.as_ref().map_or(&[][..], |b| b.bytes)));
    if let Err(e) = sent {
        return Err(err(io_error(url, e, t.read)));
    }
    let mut buf = vec![0u8; READ_BUF];
    let (mut start, mut end) = (0usize, 0usize);
    let mut read = |buf: &mut Vec<u8>, start: &mut usize, end: &mut usize| -> Result<usize> {
        if *start == *end {
            (*start, *end) = (0, 0);
        } else if *end == buf.len() {
            buf.copy_within(*start..*end, 0);
            *end -= *start;
            *start = 0;
            if *end == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
        }
        loop {
            match s.read(&mut buf[*end..]) {
                Ok(n) => {
                    *end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(err(io_error(url, e, t.read))),
            }
        }
    };
    let protocol = |e: anyhow::Error| {
        err(HttpError::Protocol {
            url: url.to_string(),
            reason: format!("{e:#}"),
        })
    };
    let head = loop {
        match parse_head(&buf[start..end]).map_err(protocol)? {
            Parsed::Interim(len) => {
                start += len;
                continue;
            }
            Parsed::Done(h, len) => {
                start += len;
                break h;
            }
            Parsed::Partial => {}
        }
        if read(&mut buf, &mut start, &mut end)? == 0 {
            return Err(err(HttpError::Dead {
                url: url.to_string(),
                reason: if end == 0 {
                    "closed without a response".into()
                } else {
                    "closed inside the response head".into()
                },
            }));
        }
    };
    let mut dec = BodyDecoder::new(head.framing);
    loop {
        start += dec.decode(&buf[start..end], on_data).map_err(|e| {
            if e.downcast_ref::<HttpError>().is_some() {
                e
            } else {
                protocol(e)
            }
        })?;
        if dec.is_done() {
            return Ok(head.status);
        }
        if read(&mut buf, &mut start, &mut end)? == 0 {
            dec.at_eof().map_err(|e| {
                err(HttpError::Dead {
                    url: url.to_string(),
                    reason: format!("{e:#}"),
                })
            })?;
            return Ok(head.status);
        }
    }
}

fn connect(u: &Url, url: &str, limit: Duration) -> std::result::Result<TcpStream, HttpError> {
    let fail = |reason: String| HttpError::Connect {
        url: url.to_string(),
        reason,
    };
    let addrs: Vec<_> = (u.host.as_str(), u.port)
        .to_socket_addrs()
        .map_err(|e| fail(format!("cannot resolve {}: {e}", u.host)))?
        .collect();
    let mut last = format!("no address for {}", u.host);
    for a in addrs {
        match TcpStream::connect_timeout(&a, limit) {
            Ok(s) => return Ok(s),
            Err(e) => last = e.to_string(),
        }
    }
    Err(fail(last))
}

fn io_error(url: &str, e: std::io::Error, read: Duration) -> HttpError {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => HttpError::Slow {
            url: url.to_string(),
            silent_s: read.as_secs_f64(),
        },
        _ => HttpError::Dead {
            url: url.to_string(),
            reason: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-connection server that sends `pieces` with a pause between them, then
    /// holds the connection for `hold` before closing it.
    fn serve(pieces: Vec<Vec<u8>>, hold: Duration) -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut req = [0u8; 4096];
            let _ = s.read(&mut req);
            for p in pieces {
                let _ = s.write_all(&p);
                let _ = s.flush();
                std::thread::sleep(Duration::from_millis(10));
            }
            std::thread::sleep(hold);
        });
        format!("http://{addr}/v1/x")
    }

    #[test]
    fn multibyte_characters_split_across_chunks_come_back_whole() {
        let text = "héllo — 世界 🚀 done";
        let b = text.as_bytes();
        // Chunk boundaries inside 'é', '—', '世' and '🚀', and reads split inside chunk lines.
        let cuts = [2, 9, 14, 21, b.len()];
        let mut body = Vec::new();
        let mut prev = 0;
        for c in cuts {
            body.extend_from_slice(format!("{:x};ext=1\r\n", c - prev).as_bytes());
            body.extend_from_slice(&b[prev..c]);
            body.extend_from_slice(b"\r\n");
            prev = c;
        }
        body.extend_from_slice(b"0\r\nx-trailer: 1\r\n\r\n");
        let mut pieces = vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec()];
        pieces.extend(body.chunks(3).map(<[u8]>::to_vec));
        let url = serve(pieces, Duration::ZERO);
        let r = request("GET", &url, None, Timeouts::new(Duration::from_secs(10))).unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, text));
    }

    #[test]
    fn length_and_close_delimited_bodies_and_interim_responses() {
        let url = serve(
            vec![
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nab"
                    .to_vec(),
                b"cdIGNORED".to_vec(),
            ],
            Duration::ZERO,
        );
        let r = request_json(
            "POST",
            &url,
            Some(&serde_json::json!({})),
            Timeouts::new(Duration::from_secs(5)),
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (503, &b"abcd"[..]));
        let url = serve(
            vec![b"HTTP/1.0 200 OK\r\n\r\n{\"a\":".to_vec(), b"1}".to_vec()],
            Duration::ZERO,
        );
        let r = request("GET", &url, None, Timeouts::new(Duration::from_secs(5))).unwrap();
        assert_eq!(r.json().unwrap()["a"], 1);
    }

    #[test]
    fn connect_slow_and_dead_are_told_apart_and_name_the_url() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/models", l.local_addr().unwrap());
        drop(l);
        let e = request("GET", &url, None, Timeouts::new(Duration::from_secs(2))).unwrap_err();
        assert!(
            matches!(e.downcast_ref(), Some(HttpError::Connect { .. })),
            "{e:#}"
        );
        assert!(e.to_string().contains(&url), "{e:#}");

        let url = serve(
            vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab".to_vec()],
            Duration::from_secs(3),
        );
        let t = Timeouts::new(Duration::from_millis(300));
        let e = request("GET", &url, None, t).unwrap_err();
        assert!(
            matches!(e.downcast_ref(), Some(HttpError::Slow { .. })),
            "{e:#}"
        );
        assert!(
            e.to_string().contains("slow") && e.to_string().contains(&url),
            "{e:#}"
        );

        let url = serve(
            vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab".to_vec()],
            Duration::ZERO,
        );
        let e = request("GET", &url, None, Timeouts::new(Duration::from_secs(5))).unwrap_err();
        assert!(
            matches!(e.downcast_ref(), Some(HttpError::Dead { .. })),
            "{e:#}"
        );

        let url = serve(
            vec![b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n".to_vec()],
            Duration::ZERO,
        );
        let e = request("GET", &url, None, Timeouts::new(Duration::from_secs(5))).unwrap_err();
        assert!(
            format!("{e:#}").contains("bad chunk size line \"zz\""),
            "{e:#}"
        );
    }

    #[test]
    fn urls_parse_with_prefix_ipv6_and_errors() {
        let u = Url::parse("http://[::1]:8000/api/").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.prefix.as_str()),
            ("::1", 8000, "/api")
        );
        assert_eq!(u.authority(), "[::1]:8000");
        assert_eq!(Url::parse("http://h").unwrap().port, 80);
        assert!(Url::parse("https://h").is_err());
        assert!(
            Url::parse("http://h:x")
                .unwrap_err()
                .to_string()
                .contains("bad port")
        );
    }

    async fn async_body_of(pieces: &[&[u8]]) -> Result<(u16, Vec<u8>, bool)> {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let pieces: Vec<Vec<u8>> = pieces.iter().map(|p| p.to_vec()).collect();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            for piece in pieces {
                s.write_all(&piece).await.unwrap();
                s.flush().await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let mut conn = AsyncConn::connect(&addr.to_string()).await.unwrap();
        let head = match read_head(&mut conn).await {
            Ok(h) => h,
            Err(HeadError::Closed(e)) => return Err(e.into()),
            Err(HeadError::Other(e)) => return Err(e),
        };
        let mut out = Vec::new();
        let reusable = read_body(&mut conn, &head, Instant::now(), |d, _| {
            out.extend_from_slice(d);
            Ok(())
        })
        .await?;
        server.abort();
        Ok((head.status, out, reusable))
    }

    #[test]
    fn async_engine_decodes_split_bodies_and_reports_reuse() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (s, b, reuse) = async_body_of(&[
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r",
                b"\nhel",
                b"lo\r\n6\r\n worl",
                b"d\r\n0\r\nx-trailer: 1\r\n\r\n",
            ])
            .await
            .unwrap();
            assert_eq!((s, b.as_slice(), reuse), (200, &b"hello world"[..], true));
            let (s, b, reuse) = async_body_of(&[b"HTTP/1.1 429 Too Many\r\ncontent-length: 4\r\nconnection: close\r\n\r\nab", b"cd"]).await.unwrap();
            assert_eq!((s, b.as_slice(), reuse), (429, &b"abcd"[..], false));
            let (s, b, reuse) = async_body_of(&[b"HTTP/1.0 200 OK\r\n\r\nuntil close"]).await.unwrap();
            assert_eq!((s, b.as_slice(), reuse), (200, &b"until close"[..], false));
            let e = async_body_of(&[b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10\r\nabc"])
                .await
                .unwrap_err();
            assert!(format!("{e:#}").contains("stream broken"), "{e:#}");
            let e = async_body_of(&[b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nabc"])
                .await
                .unwrap_err();
            assert!(format!("{e:#}").contains("before the end"), "{e:#}");
            let e = async_body_of(&[b"garbage\r\n\r\n"]).await.unwrap_err();
            assert!(format!("{e:#}").contains("malformed HTTP response head"), "{e:#}");
        });
    }
}
