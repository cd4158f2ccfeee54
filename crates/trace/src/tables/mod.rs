//! The three tables per stage (kernel, overlap-opportunity, fuse-pattern), the
//! similarity note, and the per-family cross-trace comparison.

use crate::attrib::{Attribution, FrameCache, Via, attribute_launch_cached, launch_site_cached};
use crate::classify::{Classifier, OverlapClass, canonical_name, short_name};
use crate::graph::{GraphMap, GraphMapSummary, MatchQuality};
use crate::store::*;
use anyhow::{Context, Result};
use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

mod compare;
mod fuse;
mod kernel;
mod overlap;

pub use compare::*;
pub use fuse::*;
pub use kernel::*;
pub use overlap::*;

/// Kernel instances of one stage: indices into the store's kernels (the heaviest device).
pub struct StageKernels<'a> {
    pub store: &'a TraceStore,
    pub kernels: Vec<u32>,
    pub device: i32,
}

impl<'a> StageKernels<'a> {
    /// All GPU activities on the device with the most kernel time.
    pub fn heaviest_device(store: &'a TraceStore) -> Self {
        let mut by_dev: HashMap<i32, i64> = HashMap::new();
        for i in 0..store.kernels.len() {
            *by_dev.entry(store.kernels.device[i]).or_default() += store.kernels.dur_ns[i];
        }
        let device = by_dev
            .into_iter()
            .max_by_key(|x| (x.1, -x.0))
            .map(|x| x.0)
            .unwrap_or(0);
        let kernels = (0..store.kernels.len() as u32)
            .filter(|&i| store.kernels.device[i as usize] == device)
            .collect();
        Self {
            store,
            kernels,
            device,
        }
    }
    pub fn total_ns(&self) -> i64 {
        self.kernels
            .iter()
            .map(|&k| self.store.kernels.dur_ns[k as usize])
            .sum()
    }
}

/// Per-kernel-instance attribution, cached per launch.
pub struct Attributor<'a> {
    store: &'a TraceStore,
    graph_map: Option<&'a GraphMap>,
    cache: FxHashMap<u32, Arc<Attribution>>,
    frames: FrameCache,
}

impl<'a> Attributor<'a> {
    pub fn new(store: &'a TraceStore, graph_map: Option<&'a GraphMap>) -> Self {
        Self {
            store,
            graph_map,
            cache: FxHashMap::default(),
            frames: FrameCache::default(),
        }
    }
    /// (attribution, graph quality if from a twin)
    pub fn of(&mut self, k: u32) -> (Option<Arc<Attribution>>, Option<MatchQuality>, bool) {
        let l = self.store.kernels.launch[k as usize];
        if l == NONE {
            return (None, None, false);
        }
        let (store, frames) = (self.store, &mut self.frames);
        let a = self
            .cache
            .entry(l)
            .or_insert_with(|| Arc::new(attribute_launch_cached(store, l as usize, frames)))
            .clone();
        let graph = a.via == Via::GraphLaunch;
        if graph
            && let Some(twin) = self
                .graph_map
                .and_then(|m| m.per_kernel.get(k as usize))
                .and_then(|t| t.as_ref())
        {
            return (Some(twin.attribution.clone()), Some(twin.quality), true);
        }
        (Some(a), None, graph)
    }
}

/// One attribution as the kernel table tallies it: CPU-op label, location and annotation
/// (ids in a table-local [`Interner`], so per-kernel tallies compare and hash `u32`s and

/// The kernel, overlap-opportunity and fuse-pattern tables of one stage. They read the
/// store independently, so the kernel table is built on a second thread meanwhile.
pub fn stage_tables(
    sk: &StageKernels<'_>,
    classifier: &Classifier,
    graph_map: Option<&GraphMap>,
    cutoff_pct: f64,
    catalog: &FuseCatalog,
    framework: &str,
) -> (KernelTable, OverlapTable, FuseTable) {
    std::thread::scope(|scope| {
        let kernels = std::thread::Builder::new()
            .name("trace-kernel-table".into())
            .spawn_scoped(scope, || {
                kernel_table(sk, classifier, graph_map, cutoff_pct)
            });
        let ot = overlap_table(sk, classifier, graph_map, cutoff_pct);
        let ft = fuse_table(sk, classifier, catalog, framework);
        let kt = match kernels {
            Ok(handle) => match handle.join() {
                Ok(kt) => kt,
                Err(panic) => std::panic::resume_unwind(panic),
            },
            // No thread to be had: build it here.
            Err(_) => kernel_table(sk, classifier, graph_map, cutoff_pct),
        };
        (kt, ot, ft)
    })
}
