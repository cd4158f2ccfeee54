//! The three tables per stage (kernel, overlap-opportunity, fuse-pattern), the
//! similarity note, and the per-family cross-trace comparison.

use crate::attrib::{Attribution, FrameCache, Via, attribute_launch_cached, launch_site_cached};
use crate::classify::{Classifier, OverlapClass, canonical_name, short_name};
use crate::graph::{GraphMap, MatchQuality};
use crate::store::*;
use anyhow::{Context, Result};
use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

mod compare;
mod fuse;
mod kernel;
mod overlap;

pub(crate) use compare::*;
pub use fuse::*;
pub use kernel::*;
pub use overlap::*;

/// Kernel instances of one stage: indices into the store's kernels (the heaviest device).
pub struct StageKernels<'a> {
    pub store: &'a TraceStore,
    pub kernels: Vec<u32>,
    pub device: i32,
    /// Canonical names whose family is decided by launch context in this stage (see
    /// [`StageKernels::family_index`]), computed once on first use.
    context_families: OnceLock<FxHashMap<String, usize>>,
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
            context_families: OnceLock::new(),
        }
    }

    /// The family of a canonical kernel name in this stage: a context-decided family
    /// (`context` in `references/kernel-families.json`, e.g. `moe_routing`) when at least
    /// half of the name's GPU time was launched in that context, else the name family.
    /// The tables all classify through this, so a kernel has one family in all of them.
    pub fn family_index(&self, classifier: &Classifier, canonical: &str) -> usize {
        let decided = self
            .context_families
            .get_or_init(|| context_families(self, classifier));
        match decided.get(canonical) {
            Some(&f) => f,
            None => classifier.family_index(canonical),
        }
    }
    pub fn total_ns(&self) -> i64 {
        self.kernels
            .iter()
            .map(|&k| self.store.kernels.dur_ns[k as usize])
            .sum()
    }
}

/// Names (canonical) of the stage whose GPU time was mostly launched in the context of a
/// context-decided family: a CPU op of the launch's chain or a Python frame of its stack
/// matches the family's `context`. Kernels without a launch, or replayed from a CUDA graph
/// (their launch is the graph's), have no context of their own and count as outside.
fn context_families(sk: &StageKernels<'_>, classifier: &Classifier) -> FxHashMap<String, usize> {
    let s = sk.store;
    let k = &s.kernels;
    // Per raw name id: its canonical name and context candidates (most names have none).
    let mut cands: FxHashMap<NameId, (String, Vec<usize>)> = FxHashMap::default();
    // (canonical, family) -> (ns in context, ns total of the name)
    let mut time: FxHashMap<(String, usize), i64> = FxHashMap::default();
    let mut name_total: FxHashMap<String, i64> = FxHashMap::default();
    let mut in_context: FxHashMap<(u32, usize), bool> = FxHashMap::default();
    for &i in &sk.kernels {
        let (canonical, fams) = cands.entry(k.name[i as usize]).or_insert_with(|| {
            let c = canonical_name(s.name(k.name[i as usize]));
            let f = classifier.context_candidates(&c);
            (c, f)
        });
        if fams.is_empty() {
            continue;
        }
        let dur = k.dur_ns[i as usize];
        *name_total.entry(canonical.clone()).or_default() += dur;
        let l = k.launch[i as usize];
        if l == NONE || s.kernel_is_graph_replay(i as usize) {
            continue;
        }
        for &f in fams.iter() {
            let hit = *in_context
                .entry((l, f))
                .or_insert_with(|| launch_in_context(s, l as usize, classifier, f));
            if hit {
                *time.entry((canonical.clone(), f)).or_default() += dur;
                break;
            }
        }
    }
    let mut out: FxHashMap<String, usize> = FxHashMap::default();
    let mut best: FxHashMap<String, i64> = FxHashMap::default();
    for ((name, f), t) in time {
        let total = name_total.get(&name).copied().unwrap_or(0);
        let better = best
            .get(&name)
            .is_none_or(|&b| t > b || (t == b && f < out[&name]));
        if 2 * t >= total && better {
            best.insert(name.clone(), t);
            out.insert(name, f);
        }
    }
    out
}

/// Whether the launch `l`'s CPU-op chain or Python stack matches family `f`'s context.
fn launch_in_context(s: &TraceStore, l: usize, classifier: &Classifier, f: usize) -> bool {
    let op = s.launches.cpu_op[l];
    if op != NONE
        && s.cpu_op_chain(op as usize)
            .into_iter()
            .any(|o| classifier.context_matches(f, s.name(s.cpu_ops.name[o])))
    {
        return true;
    }
    let fr = s.launches.frame[l];
    fr != NONE
        && s.frame_chain(fr as usize)
            .into_iter()
            .any(|x| classifier.context_matches(f, s.name(s.frames.name[x])))
}

/// Per-kernel-instance attribution, cached per launch.
pub(crate) struct Attributor<'a> {
    store: &'a TraceStore,
    graph_map: Option<&'a GraphMap>,
    cache: FxHashMap<u32, Arc<Attribution>>,
    frames: FrameCache,
}

impl<'a> Attributor<'a> {
    pub(crate) fn new(store: &'a TraceStore, graph_map: Option<&'a GraphMap>) -> Self {
        Self {
            store,
            graph_map,
            cache: FxHashMap::default(),
            frames: FrameCache::default(),
        }
    }
    /// (attribution, graph quality if from a twin)
    pub(crate) fn of(&mut self, k: u32) -> (Option<Arc<Attribution>>, Option<MatchQuality>, bool) {
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

/// One attribution for both tables: each overlap row takes the location of the kernel
/// table's row of the same kernel (weighted over all its calls; the overlap sweep alone
/// only knows its longest instance), marked when it is a CUDA-graph launch site.
pub(crate) fn align_locations(ot: &mut OverlapTable, kt: &KernelTable) {
    for r in &mut ot.rows {
        if let Some(k) = kt.rows.iter().find(|k| k.full_name == r.full_name) {
            r.location = if k.attribution == "graph_unattributed" {
                format!("{} (graph launch site)", k.location)
            } else {
                k.location.clone()
            };
        }
    }
}

/// How to capture the mapping trace for `framework`: its no-CUDA-graph flag from
/// `references/framework-flags.json` (`no_cuda_graph_flag`), never another framework's.
pub fn mapping_hint(framework: &str) -> String {
    let flag = vllm_sota_core::refs::load(
        "framework-flags.json",
        Some(include_str!("../../../../references/framework-flags.json")),
    )
    .ok()
    .and_then(|(text, _)| serde_json::from_str::<serde_json::Value>(&text).ok())
    .and_then(|v| {
        let f = v.get("frameworks")?.get(framework)?;
        let flag = f.get("no_cuda_graph_flag")?.as_str()?.to_string();
        let name = f
            .get("display_name")
            .and_then(|d| d.as_str())
            .unwrap_or(framework)
            .to_string();
        Some((name, flag))
    });
    match flag {
        Some((name, flag)) => format!("For {name}, capture it with `{flag}`."),
        None => "Capture it with CUDA graphs off (the framework's eager mode).".into(),
    }
}

/// The kernel, overlap-opportunity and fuse-pattern tables of one stage. They read the
/// store independently, so the kernel table is built on a second thread meanwhile.
pub(crate) fn stage_tables(
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
        let mut kt = match kernels {
            Ok(handle) => match handle.join() {
                Ok(kt) => kt,
                Err(panic) => std::panic::resume_unwind(panic),
            },
            // No thread to be had: build it here.
            Err(_) => kernel_table(sk, classifier, graph_map, cutoff_pct),
        };
        let mut ot = ot;
        align_locations(&mut ot, &kt);
        if graph_map.is_none()
            && let Some(note) = &mut kt.graph_note
        {
            note.push_str(&format!(" {}", mapping_hint(framework)));
        }
        (kt, ot, ft)
    })
}
