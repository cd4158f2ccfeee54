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
//!
//! Modules: [`source`] (bytes in, decompression thread), [`lex`] (the resumable JSON
//! scanner), [`num`] (numbers), [`parser`] (document state machine, sequential driver),
//! [`event`] (general event scanner), [`kineto`] (exact-layout fast paths), [`ingest`]
//! (event into the store), [`parallel`] (batches and in-order merge), [`error`].

mod error;
mod event;
mod ingest;
mod kineto;
mod lex;
mod num;
mod parallel;
mod parser;
mod source;
#[cfg(test)]
mod tests;

use error::*;
use event::*;
use kineto::*;
use lex::*;
use num::*;
use parallel::*;
use parser::*;
use source::*;

use crate::store::*;
use anyhow::{Context, Result, anyhow};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// How to read a trace. [`ReadOptions::default`] is what [`read_trace`] uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadOptions {
    /// Parse workers (0 or 1 = sequential); default [`default_workers`].
    pub workers: usize,
    /// Take the fast paths for events in Kineto's exact layout. The general scanner builds
    /// the same store; off only to prove that.
    pub kineto_fast_paths: bool,
    /// When the parallel pass meets something only the sequential pass handles, fail
    /// instead of rerunning sequentially (for tests that check both passes agree).
    pub sequential_fallback: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            workers: default_workers(),
            kineto_fast_paths: true,
            sequential_fallback: true,
        }
    }
}

impl ReadOptions {
    /// The default options with `workers` parse workers.
    pub fn with_workers(workers: usize) -> Self {
        ReadOptions {
            workers,
            ..Default::default()
        }
    }
}

/// Read one trace file (`.json`, `.json.gz`) into a store. Errors name the file and,
/// for bad JSON, the line and byte offset.
///
/// Parses on [`default_workers`] threads (batches of whole events, merged in file order
/// into exactly the store a sequential pass builds); any anomaly (bad JSON, truncation,
/// a batch cut that was not an event boundary, text pids) reruns the sequential pass,
/// which also produces the precise error message.
pub fn read_trace(path: &Path) -> Result<TraceStore> {
    read_trace_with(path, &ReadOptions::default())
}

/// Parse workers used by [`read_trace`]: `$VLLM_SOTA_TRACE_WORKERS` when set, else one per
/// core left over by the decompression thread, at most 4; below 2 the reader is sequential
/// (on two cores, decompression plus one parser already fill both, and the parallel pass
/// would only add its merge).
pub(crate) fn default_workers() -> usize {
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
    let opts = ReadOptions {
        workers: workers.max(2),
        sequential_fallback: false,
        ..Default::default()
    };
    read_trace_with(path, &opts)
}

/// [`read_trace`] with an explicit number of parse workers (0 or 1 = sequential).
pub fn read_trace_with_workers(path: &Path, workers: usize) -> Result<TraceStore> {
    read_trace_with(path, &ReadOptions::with_workers(workers))
}

/// [`read_trace`] with explicit [`ReadOptions`].
pub fn read_trace_with(path: &Path, opts: &ReadOptions) -> Result<TraceStore> {
    read_source(&Source::Path(path), opts)
}

/// Parse trace JSON from any byte source (used by tests and the fuzz target).
pub fn read_trace_bytes(bytes: &[u8], label: &str) -> Result<TraceStore> {
    read_trace_bytes_with(bytes, label, &ReadOptions::default())
}

/// [`read_trace_bytes`] with an explicit number of parse workers (0 or 1 = sequential).
pub fn read_trace_bytes_with_workers(
    bytes: &[u8],
    label: &str,
    workers: usize,
) -> Result<TraceStore> {
    read_trace_bytes_with(bytes, label, &ReadOptions::with_workers(workers))
}

/// [`read_trace_bytes`] with explicit [`ReadOptions`].
pub fn read_trace_bytes_with(bytes: &[u8], label: &str, opts: &ReadOptions) -> Result<TraceStore> {
    read_source(&Source::Bytes { bytes, label }, opts)
}

/// The parallel pass when asked for, then (on its fallback signal) the sequential pass.
fn read_source(src: &Source<'_>, opts: &ReadOptions) -> Result<TraceStore> {
    if opts.workers >= 2 {
        match read_once(src, opts.workers, opts.kineto_fast_paths) {
            Ok(s) => return Ok(s),
            Err(ReadError::NeedSequential) if opts.sequential_fallback => {
                tracing::debug!("{}: parallel parse fell back to sequential", src.label())
            }
            Err(ReadError::NeedSequential) => {
                return Err(anyhow!(
                    "{}: the parallel pass fell back to the sequential one",
                    src.label()
                ));
            }
            Err(e) => return Err(src.report(e)),
        }
    }
    read_once(src, 0, opts.kineto_fast_paths).map_err(|e| src.report(e))
}

/// One pass (parallel when `workers >= 2`) into a linked store.
fn read_once(src: &Source<'_>, workers: usize, fast: bool) -> Result<TraceStore, ReadError> {
    let input = src.open()?;
    let mut store = TraceStore {
        path: src.store_path(),
        ..Default::default()
    };
    parse_stream(input, &mut store, workers, fast)?;
    crate::link::finish(&mut store);
    Ok(store)
}
