//! The byte source: file or bytes, gzip sniffing, and the decompression thread that
//! fills fixed-size chunks with head room for the unfinished event before them.

use super::*;

pub(super) const CHUNK: usize = 1 << 20;
/// Free room kept in front of each chunk: the parallel pass writes the previous chunk's
/// unfinished event there, so a batch is one buffer without copying the chunk.
pub(super) const HEAD: usize = 64 << 10;

/// Where the trace text comes from.
pub(super) enum Source<'a> {
    Path(&'a Path),
    Bytes { bytes: &'a [u8], label: &'a str },
}

impl Source<'_> {
    /// The name errors use.
    pub(super) fn label(&self) -> String {
        match self {
            Source::Path(p) => p.display().to_string(),
            Source::Bytes { label, .. } => label.to_string(),
        }
    }

    /// The store's `path`.
    pub(super) fn store_path(&self) -> std::path::PathBuf {
        match self {
            Source::Path(p) => p.to_path_buf(),
            Source::Bytes { label, .. } => label.into(),
        }
    }

    /// A fresh reader of the JSON text (decompressed when gzipped).
    pub(super) fn open(&self) -> Result<Box<dyn Read + Send>, ReadError> {
        self.open_text().map_err(ReadError::Open)
    }

    fn open_text(&self) -> Result<Box<dyn Read + Send>> {
        match self {
            Source::Path(p) => open_path(p),
            Source::Bytes { bytes, .. } => {
                let owned = bytes.to_vec();
                Ok(if owned.starts_with(&[0x1f, 0x8b]) {
                    Box::new(flate2::read::MultiGzDecoder::new(std::io::Cursor::new(
                        owned,
                    )))
                } else {
                    Box::new(std::io::Cursor::new(owned))
                })
            }
        }
    }

    /// The user-facing error of a failed pass: opening errors as they are, parse errors
    /// under `trace <label>` (JSON errors with their line number).
    pub(super) fn report(&self, e: ReadError) -> anyhow::Error {
        match e {
            ReadError::Open(e) => e,
            e => e
                .into_anyhow(|| self.open_text())
                .context(format!("trace {}", self.label())),
        }
    }
}

pub(super) fn open_path(path: &Path) -> Result<Box<dyn Read + Send>> {
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

pub(super) fn is_gzip_path(path: &Path) -> bool {
    path.extension().map(|e| e == "gz").unwrap_or(false)
}

pub(super) fn sniff_gzip(path: &Path) -> bool {
    let mut magic = [0u8; 2];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map(|_| magic == [0x1f, 0x8b])
        .unwrap_or(false)
}

pub(super) enum Msg {
    /// A chunk, with the JSON in `buf[HEAD..]`.
    Data(Vec<u8>),
    Eof,
    Err(std::io::Error),
}

pub(super) type ReaderParts = (
    Receiver<Msg>,
    SyncSender<Vec<u8>>,
    std::thread::JoinHandle<()>,
);

/// Decompress on a helper thread into chunks of [`CHUNK`] bytes after [`HEAD`] free bytes;
/// spent chunks come back through the recycle channel.
pub(super) fn spawn_reader(mut src: Box<dyn Read + Send>) -> Result<ReaderParts> {
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
