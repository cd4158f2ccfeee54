//! The shared state of one running simulator, and the table of words it streams.

use super::truth::GroundTruth;
use crate::sim::SimConfig;
use crate::sim::engine::EngineRequest;
use crate::sim::engine::EngineStats;
use crate::workload::TokenizerHandle;
use anyhow::{Result, bail};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, watch};

pub(super) struct State {
    pub(super) cfg: SimConfig,
    pub(super) tok: TokenizerHandle,
    /// Output token texts, each re-encoding to exactly one token (JSON-safe letters).
    pub(super) words: Vec<String>,
    pub(super) model_json: String,
    pub(super) started: Instant,
    pub(super) ready_at: Instant,
    pub(super) created: u64,
    pub(super) engine_tx: Option<mpsc::UnboundedSender<EngineRequest>>,
    pub(super) arrivals: AtomicU64,
    pub(super) completed: AtomicU64,
    pub(super) stop_tx: watch::Sender<bool>,
    pub(super) crashed: AtomicBool,
    /// Set when an injected crash is due: new requests wait for the cut.
    pub(super) dying: AtomicBool,
    /// Prompt token counts by prompt hash: keeps tokenization (slow in debug builds) out
    /// of repeated prompts' timing; a test tool's shortcut, not engine behaviour.
    pub(super) count_cache: Mutex<HashMap<u64, u64>>,
    pub(super) record_gt: bool,
    pub(super) gt: Mutex<Vec<GroundTruth>>,
    pub(super) gt_flushed: Mutex<usize>,
    pub(super) stats: Arc<Mutex<EngineStats>>,
    pub(super) profiler: Arc<crate::sim::profiler::SimProfiler>,
}

impl State {
    pub(super) fn count_cached(&self, text: &str, add_special: bool) -> Result<usize> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (text, add_special).hash(&mut h);
        let key = h.finish();
        if let Some(n) = self.count_cache.lock().unwrap().get(&key) {
            return Ok(*n as usize);
        }
        let n = self.tok.count(text, add_special)?;
        let mut cache = self.count_cache.lock().unwrap();
        if cache.len() > 100_000 {
            cache.clear();
        }
        cache.insert(key, n as u64);
        Ok(n)
    }
    pub(super) fn us(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.started).as_micros() as u64
    }
    pub(super) fn push_gt(&self, g: GroundTruth) {
        if self.record_gt {
            self.gt.lock().unwrap().push(g);
        }
    }
    pub(super) fn crash(self: &Arc<Self>, why: String) {
        if self.crashed.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::error!("EngineCore encountered a fatal error: {why}");
        eprintln!("ERROR [sim-serve] EngineCore encountered a fatal error: {why}");
        let _ = self.stop_tx.send(true);
    }
}

pub(super) fn word_table(tok: &TokenizerHandle) -> Result<Vec<String>> {
    let mut words = Vec::new();
    for &id in tok.allowed_ids() {
        let Some(piece) = tok.id_to_token(id) else {
            continue;
        };
        // Byte-level BPE marks a leading space as 'Ġ'.
        let Some(rest) = piece.strip_prefix('Ġ') else {
            continue;
        };
        if rest.len() < 2 || !rest.bytes().all(|b| b.is_ascii_lowercase()) {
            continue;
        }
        let text = tok.decode(&[id])?;
        if tok.encode(&text, false)? == [id] {
            words.push(text);
            if words.len() >= 512 {
                break;
            }
        }
    }
    if words.is_empty() {
        bail!(
            "tokenizer {}: found no single-token words to stream",
            tok.path().display()
        );
    }
    Ok(words)
}
