//! Typed reader errors: the parallel pass's fallback signal is a variant, not an error
//! found by downcasting.

use super::*;

/// Why one pass over the source stopped.
#[derive(Debug)]
pub(super) enum ReadError {
    /// The parallel pass met something only the sequential pass handles exactly (an error
    /// to report, text pids, or a batch cut that was not an event boundary).
    NeedSequential,
    /// A JSON error at a byte offset of the decompressed text. Its line number is counted
    /// only when the error is reported ([`ReadError::into_anyhow`], a second pass over the
    /// source): counting newlines as the text streams by would cost every successful read.
    /// The message is `{before}{line}{after}`.
    JsonAt {
        offset: u64,
        before: String,
        after: String,
    },
    /// The source could not be opened (reported without the `trace <label>` context: the
    /// message already names the file).
    Open(anyhow::Error),
    /// Anything else (I/O, decompression, not a trace), with its message.
    Other(anyhow::Error),
}

impl ReadError {
    pub(super) fn other(msg: impl std::fmt::Display) -> Self {
        ReadError::Other(anyhow!("{msg}"))
    }

    pub(super) fn json_at(offset: u64, before: String, after: String) -> Self {
        ReadError::JsonAt {
            offset,
            before,
            after,
        }
    }

    /// The user-facing error; a [`ReadError::JsonAt`] gets its line number by counting the
    /// newlines before its offset in a fresh read of the source.
    pub(super) fn into_anyhow(
        self,
        open: impl FnOnce() -> Result<Box<dyn Read + Send>>,
    ) -> anyhow::Error {
        match self {
            ReadError::NeedSequential => anyhow!("parallel parse needs the sequential pass"),
            ReadError::Other(e) | ReadError::Open(e) => e,
            ReadError::JsonAt {
                offset,
                before,
                after,
            } => {
                let mut newlines = 0u64;
                if let Ok(mut src) = open() {
                    let mut buf = vec![0u8; CHUNK];
                    let mut left = offset;
                    while left > 0 {
                        let n = match src.read(&mut buf[..CHUNK.min(left as usize)]) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        newlines += count_nl(&buf[..n]);
                        left -= n as u64;
                    }
                }
                anyhow!("{before}{}{after}", 1 + newlines)
            }
        }
    }
}

impl From<anyhow::Error> for ReadError {
    fn from(e: anyhow::Error) -> Self {
        ReadError::Other(e)
    }
}
