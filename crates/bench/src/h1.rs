//! A lean HTTP/1.1 client for the load client's streaming path: one keep-alive
//! `TcpStream` per connection, read by the request's own task straight into a reused
//! buffer, with the response body (chunked, `Content-Length` or close-delimited) decoded
//! in place and handed to the caller as borrowed slices. Compared with hyper's client
//! this removes the per-connection task, the per-frame channel hand-off and a wake-up
//! per HTTP chunk; one `read` can deliver many chunks (and many SSE events) at once.

use anyhow::{Context, Result, bail};
use std::io::ErrorKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Read buffer of one connection. Reads restart at offset 0 whenever the buffer was
/// consumed, so only the first pages of it are touched in steady state.
const READ_BUF: usize = 64 << 10;
/// Longest response head (status line + headers) or chunk-size line we accept.
const MAX_HEAD: usize = 1 << 20;

/// One HTTP/1.1 connection with its read buffer.
pub(crate) struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Conn {
    pub(crate) async fn connect(authority: &str) -> Result<Conn> {
        let stream = TcpStream::connect(authority)
            .await
            .with_context(|| format!("connecting to {authority}"))?;
        stream.set_nodelay(true).ok();
        Ok(Conn {
            stream,
            buf: vec![0; READ_BUF],
            start: 0,
            end: 0,
        })
    }

    /// Cheap liveness check of an idle connection: no syscall unless the reactor saw it
    /// become readable (EOF, reset, or stray bytes), each of which makes it unusable.
    pub(crate) fn idle_ok(&mut self) -> bool {
        if self.start != self.end {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == ErrorKind::WouldBlock)
    }

    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Reads more bytes after `end`; 0 = EOF.
    async fn fill(&mut self) -> std::io::Result<usize> {
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
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }
}

/// What an HTTP response head said.
pub(crate) struct Head {
    pub status: u16,
    pub framing: Framing,
    /// The connection may carry another request after this body.
    pub keep_alive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Chunked,
    Length(u64),
    /// Body ends when the server closes the connection.
    Close,
}

/// Why reading a response head failed: `Closed` before any byte (a stale keep-alive
/// connection; safe to retry on a fresh one) or anything else.
pub(crate) enum HeadError {
    Closed(std::io::Error),
    Other(anyhow::Error),
}

/// Reads one response head (skipping interim 1xx responses).
pub(crate) async fn read_head(conn: &mut Conn) -> std::result::Result<Head, HeadError> {
    let mut got_any = false;
    loop {
        if conn.start < conn.end {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(conn.pending()) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = resp.code.unwrap_or(0);
                    let version = resp.version.unwrap_or(1);
                    let mut chunked = false;
                    let mut length: Option<u64> = None;
                    let mut close = version == 0;
                    for h in resp.headers.iter() {
                        if h.name.eq_ignore_ascii_case("transfer-encoding") {
                            chunked =
                                h.value.rsplit(|&b| b == b',').next().is_some_and(|v| {
                                    v.trim_ascii().eq_ignore_ascii_case(b"chunked")
                                });
                        } else if h.name.eq_ignore_ascii_case("content-length") {
                            let v = std::str::from_utf8(h.value)
                                .ok()
                                .and_then(|s| s.trim().parse::<u64>().ok());
                            match v {
                                Some(v) => length = Some(v),
                                None => {
                                    return Err(HeadError::Other(anyhow::anyhow!(
                                        "bad content-length header {:?}",
                                        String::from_utf8_lossy(h.value)
                                    )));
                                }
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
                    conn.start += len;
                    if (100..200).contains(&status) && status != 101 {
                        continue; // interim response: the real one follows
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
                    return Ok(Head {
                        status,
                        framing,
                        keep_alive,
                    });
                }
                Ok(httparse::Status::Partial) => {
                    if conn.end - conn.start > MAX_HEAD {
                        return Err(HeadError::Other(anyhow::anyhow!(
                            "response head longer than {MAX_HEAD} bytes"
                        )));
                    }
                }
                Err(e) => {
                    return Err(HeadError::Other(anyhow::anyhow!(
                        "malformed HTTP response head: {e}"
                    )));
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

/// Reads a response body to its end, calling `on_data(bytes, read_time)` for every
/// piece of body data as it is decoded. `read_time` is the `Instant` taken right after
/// the read that delivered the bytes. Returns whether the connection is reusable.
pub(crate) async fn read_body<F>(
    conn: &mut Conn,
    head: &Head,
    first_read_at: std::time::Instant,
    mut on_data: F,
) -> Result<bool>
where
    F: FnMut(&[u8], std::time::Instant) -> Result<()>,
{
    let mut state = match head.framing {
        Framing::Chunked => State::Size,
        Framing::Length(0) => State::Done,
        Framing::Length(n) => State::Length(n),
        Framing::Close => State::UntilClose,
    };
    let mut now = first_read_at;
    loop {
        // Decode everything buffered.
        loop {
            let avail = &conn.buf[conn.start..conn.end];
            match state {
                State::Done => break,
                State::Length(left) | State::Data(left) => {
                    if avail.is_empty() {
                        break;
                    }
                    let take = (avail.len() as u64).min(left) as usize;
                    on_data(&avail[..take], now)?;
                    conn.start += take;
                    let left = left - take as u64;
                    state = match (state, left) {
                        (State::Length(_), 0) => State::Done,
                        (State::Length(_), l) => State::Length(l),
                        (_, 0) => State::DataEnd,
                        (_, l) => State::Data(l),
                    };
                }
                State::UntilClose => {
                    if avail.is_empty() {
                        break;
                    }
                    let n = avail.len();
                    on_data(avail, now)?;
                    conn.start += n;
                }
                State::Size | State::Trailers | State::DataEnd => {
                    let Some(nl) = memchr::memchr(b'\n', avail) else {
                        if avail.len() > MAX_HEAD {
                            bail!("chunked body: line longer than {MAX_HEAD} bytes");
                        }
                        break;
                    };
                    let line = avail[..nl].strip_suffix(b"\r").unwrap_or(&avail[..nl]);
                    state = match state {
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
                        _ => {
                            if line.is_empty() {
                                State::Done
                            } else {
                                State::Trailers
                            }
                        }
                    };
                    conn.start += nl + 1;
                }
            }
        }
        if let State::Done = state {
            // Stray bytes after the body: do not trust the connection with another request.
            return Ok(head.keep_alive && conn.start == conn.end);
        }
        let n = conn.fill().await.context("stream broken")?;
        now = std::time::Instant::now();
        if n == 0 {
            if let State::UntilClose = state {
                return Ok(false);
            }
            bail!("stream broken: connection closed before the end of the response body");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair(server_bytes: Vec<Vec<u8>>) -> (Conn, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            for piece in server_bytes {
                s.write_all(&piece).await.unwrap();
                s.flush().await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        });
        (Conn::connect(&addr.to_string()).await.unwrap(), server)
    }

    async fn body_of(pieces: &[&[u8]]) -> Result<(u16, Vec<u8>, bool)> {
        let (mut conn, server) = pair(pieces.iter().map(|p| p.to_vec()).collect()).await;
        let head = match read_head(&mut conn).await {
            Ok(h) => h,
            Err(HeadError::Closed(e)) => return Err(e.into()),
            Err(HeadError::Other(e)) => return Err(e),
        };
        let mut out = Vec::new();
        let reusable = read_body(&mut conn, &head, std::time::Instant::now(), |d, _| {
            out.extend_from_slice(d);
            Ok(())
        })
        .await?;
        server.abort();
        Ok((head.status, out, reusable))
    }

    #[test]
    fn decodes_chunked_split_anywhere_with_extensions_and_trailers() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (s, b, reuse) = body_of(&[
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r",
                b"\nhel",
                b"lo\r\n6\r\n worl",
                b"d\r\n0\r\nx-trailer: 1\r\n\r\n",
            ])
            .await
            .unwrap();
            assert_eq!((s, b.as_slice(), reuse), (200, &b"hello world"[..], true));
            let (s, b, reuse) = body_of(&[b"HTTP/1.1 429 Too Many\r\ncontent-length: 4\r\nconnection: close\r\n\r\nab", b"cd"]).await.unwrap();
            assert_eq!((s, b.as_slice(), reuse), (429, &b"abcd"[..], false));
            let (s, b, reuse) = body_of(&[b"HTTP/1.0 200 OK\r\n\r\nuntil close"]).await.unwrap();
            assert_eq!((s, b.as_slice(), reuse), (200, &b"until close"[..], false));
        });
    }

    #[test]
    fn truncated_or_malformed_bodies_are_errors() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let e = body_of(&[b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10\r\nabc"])
                .await
                .unwrap_err();
            assert!(format!("{e:#}").contains("stream broken"), "{e:#}");
            let e = body_of(&[b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"])
                .await
                .unwrap_err();
            assert!(
                format!("{e:#}").contains("bad chunk size line \"zz\""),
                "{e:#}"
            );
            let e = body_of(&[b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nabc"])
                .await
                .unwrap_err();
            assert!(format!("{e:#}").contains("before the end"), "{e:#}");
            let e = body_of(&[b"garbage\r\n\r\n"]).await.unwrap_err();
            assert!(
                format!("{e:#}").contains("malformed HTTP response head"),
                "{e:#}"
            );
        });
    }
}
