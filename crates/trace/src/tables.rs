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

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct KernelRow {
    pub family: String,
    /// Shortened kernel name.
    pub kernel: String,
    /// Canonical full name (parameter list of `void f<...>(...)` stripped).
    pub full_name: String,
    pub calls: u64,
    pub total_ms: f64,
    pub avg_us: f64,
    /// Share of the stage's summed GPU kernel time.
    pub share_pct: f64,
    pub cumulative_pct: f64,
    /// Launching CPU op (most GPU time among this kernel's instances), or `-`.
    pub cpu_op: String,
    /// Python source location (`path:line func`), with `(site share N%)` when several sites.
    pub location: String,
    /// Innermost enclosing user annotation (e.g. `layers.3`) when known.
    pub annotation: Option<String>,
    /// How many of the calls were CUDA-graph replays.
    pub graph_replayed_calls: u64,
    /// `launch` (own launch), `graph_twin` (from the eager mapping trace), `graph_unattributed`, `unlinked`.
    pub attribution: String,
    /// For graph kernels with a twin: share of instances aligned by exact name / family / name only.
    pub match_quality: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FamilyRow {
    pub family: String,
    pub calls: u64,
    pub total_ms: f64,
    pub share_pct: f64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct KernelTable {
    pub total_gpu_ms: f64,
    pub kernel_count: u64,
    pub rows: Vec<KernelRow>,
    pub families: Vec<FamilyRow>,
    pub share_cutoff_pct: f64,
    pub hidden_rows: usize,
    pub hidden_share_pct: f64,
    /// Kernels replayed from CUDA graphs and how they were attributed.
    pub graph_note: Option<String>,
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
/// text is looked at once per distinct value; annotation `NONE` when there is none).
#[derive(Clone, Copy)]
struct SiteIds {
    op: u32,
    location: u32,
    annotation: u32,
}

impl SiteIds {
    fn new(
        strings: &mut Interner,
        op: &str,
        location: Option<&str>,
        annotation: Option<&str>,
    ) -> Self {
        SiteIds {
            op: strings.intern(op),
            location: strings.intern(location.unwrap_or("unresolved")),
            annotation: annotation.map_or(NONE, |a| strings.intern(a)),
        }
    }
}

/// Weighted label counts of one row, reduced to what the table shows: the heaviest label
/// (ties to the smaller text), its share of the weight, and how many distinct labels.
#[derive(Default, Clone, Copy)]
struct TopLabel {
    total: i64,
    distinct: usize,
    best: Option<(i64, u32)>,
}

impl TopLabel {
    fn add(&mut self, strings: &Interner, label: u32, weight: i64) {
        self.total += weight;
        self.distinct += 1;
        let better = match self.best {
            None => true,
            Some((bw, bl)) => weight > bw || (weight == bw && strings.get(label) < strings.get(bl)),
        };
        if better {
            self.best = Some((weight, label));
        }
    }
    /// (label, share of the weight, distinct labels)
    fn get(&self, strings: &Interner) -> Option<(String, f64, usize)> {
        self.best.map(|(w, label)| {
            let share = if self.total > 0 {
                w as f64 / self.total as f64
            } else {
                1.0
            };
            (strings.get(label).to_string(), share, self.distinct)
        })
    }
}

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

/// Build the kernel table.
pub fn kernel_table(
    sk: &StageKernels<'_>,
    classifier: &Classifier,
    graph_map: Option<&GraphMap>,
    cutoff_pct: f64,
) -> KernelTable {
    let s = sk.store;
    struct Acc {
        name: String,
        total: i64,
        calls: u64,
        graph_calls: u64,
        ops: TopLabel,
        locs: TopLabel,
        anns: TopLabel,
        q_exact: u64,
        q_family: u64,
        q_name: u64,
        unlinked: u64,
    }
    let mut accs: Vec<Acc> = Vec::new();
    let mut by_canon: FxHashMap<String, usize> = FxHashMap::default();
    // Row of each kernel name id (dense: name ids are small integers), canonicalized once.
    let mut row_of_name: Vec<u32> = vec![NONE; s.names.len()];
    let mut strings = Interner::default();
    let mut sites: Vec<SiteIds> = Vec::new();
    // Launch → (its own site, replayed from a CUDA graph). Eager twins' sites are keyed by
    // attribution address: the graph map shares one `Arc` among the kernels of a launch.
    let mut launch_sites: FxHashMap<u32, (u32, bool)> = FxHashMap::default();
    let mut twin_sites: FxHashMap<*const Attribution, u32> = FxHashMap::default();
    let mut frames = FrameCache::default();
    // Σ max(dur, 1) per (row, site): the per-row label tallies are built from these at the end.
    let mut site_weight: FxHashMap<(u32, u32), i64> = FxHashMap::default();
    let total = sk.total_ns();
    for &k in &sk.kernels {
        let nid = s.kernels.name[k as usize];
        let mut idx = row_of_name[nid as usize];
        if idx == NONE {
            let c = canonical_name(s.name(nid));
            let n = by_canon.len();
            idx = *by_canon.entry(c).or_insert_with_key(|c| {
                accs.push(Acc {
                    name: c.clone(),
                    total: 0,
                    calls: 0,
                    graph_calls: 0,
                    ops: TopLabel::default(),
                    locs: TopLabel::default(),
                    anns: TopLabel::default(),
                    q_exact: 0,
                    q_family: 0,
                    q_name: 0,
                    unlinked: 0,
                });
                n
            }) as u32;
            row_of_name[nid as usize] = idx;
        }
        let dur = s.kernels.dur_ns[k as usize];
        let a = &mut accs[idx as usize];
        a.total += dur;
        a.calls += 1;
        let l = s.kernels.launch[k as usize];
        if l == NONE {
            a.unlinked += 1;
            continue;
        }
        let (own_site, graph) = *launch_sites.entry(l).or_insert_with(|| {
            let ls = launch_site_cached(s, l as usize, &mut frames);
            let graph = ls.via == Via::GraphLaunch;
            // A graph replay without an eager twin shows the graph launch itself as its op.
            let op = if graph {
                ls.launch
            } else {
                ls.cpu_op.unwrap_or(ls.launch)
            };
            sites.push(SiteIds::new(
                &mut strings,
                op,
                ls.location.as_deref(),
                ls.annotation,
            ));
            (sites.len() as u32 - 1, graph)
        });
        let twin = if graph {
            a.graph_calls += 1;
            graph_map
                .and_then(|m| m.per_kernel.get(k as usize))
                .and_then(|t| t.as_ref())
        } else {
            None
        };
        let site = match twin {
            Some(t) => {
                match t.quality {
                    MatchQuality::Exact => a.q_exact += 1,
                    MatchQuality::Family => a.q_family += 1,
                    MatchQuality::NameOnly => a.q_name += 1,
                }
                *twin_sites
                    .entry(Arc::as_ptr(&t.attribution))
                    .or_insert_with(|| {
                        let at = &t.attribution;
                        let op = at.cpu_op.as_deref().or(at.launch.as_deref()).unwrap_or("-");
                        sites.push(SiteIds::new(
                            &mut strings,
                            op,
                            at.location.as_deref(),
                            at.annotation.as_deref(),
                        ));
                        sites.len() as u32 - 1
                    })
            }
            None => own_site,
        };
        *site_weight.entry((idx, site)).or_default() += dur.max(1);
    }
    // Per (row, label) weights, then each row's heaviest label.
    let mut op_weight: FxHashMap<(u32, u32), i64> = FxHashMap::default();
    let mut loc_weight: FxHashMap<(u32, u32), i64> = FxHashMap::default();
    let mut ann_weight: FxHashMap<(u32, u32), i64> = FxHashMap::default();
    for (&(row, site), &w) in &site_weight {
        let site = sites[site as usize];
        *op_weight.entry((row, site.op)).or_default() += w;
        *loc_weight.entry((row, site.location)).or_default() += w;
        if site.annotation != NONE {
            *ann_weight.entry((row, site.annotation)).or_default() += w;
        }
    }
    for (&(row, label), &w) in &op_weight {
        accs[row as usize].ops.add(&strings, label, w);
    }
    for (&(row, label), &w) in &loc_weight {
        accs[row as usize].locs.add(&strings, label, w);
    }
    for (&(row, label), &w) in &ann_weight {
        accs[row as usize].anns.add(&strings, label, w);
    }
    accs.sort_by(|a, b| b.total.cmp(&a.total).then(a.name.cmp(&b.name)));
    let mut rows = Vec::new();
    let mut cum = 0.0;
    let mut hidden_rows = 0;
    let mut hidden_share = 0.0;
    let mut fam_acc: FxHashMap<String, (u64, i64)> = FxHashMap::default();
    for a in &accs {
        let fam = classifier.classify(&a.name).name.clone();
        let e = fam_acc.entry(fam.clone()).or_default();
        e.0 += a.calls;
        e.1 += a.total;
        let share = if total > 0 {
            100.0 * a.total as f64 / total as f64
        } else {
            0.0
        };
        cum += share;
        if share < cutoff_pct {
            hidden_rows += 1;
            hidden_share += share;
            continue;
        }
        let attribution = if a.graph_calls > 0 {
            if a.q_exact + a.q_family + a.q_name > 0 {
                "graph_twin"
            } else {
                "graph_unattributed"
            }
        } else if a.unlinked == a.calls {
            "unlinked"
        } else {
            "launch"
        };
        let match_quality = (a.graph_calls > 0 && graph_map.is_some()).then(|| {
            let g = a.graph_calls.max(1) as f64;
            format!(
                "{:.0}% exact, {:.0}% family, {:.0}% name-only",
                100.0 * a.q_exact as f64 / g,
                100.0 * a.q_family as f64 / g,
                100.0 * a.q_name as f64 / g
            )
        });
        let location = match a.locs.get(&strings) {
            Some((l, w, n)) if n > 1 => format!("{l} (site share {:.0}%)", 100.0 * w),
            Some((l, _, _)) => l,
            None => "unresolved".into(),
        };
        rows.push(KernelRow {
            family: fam,
            kernel: short_name(&a.name),
            full_name: a.name.clone(),
            calls: a.calls,
            total_ms: a.total as f64 / 1e6,
            avg_us: a.total as f64 / 1e3 / a.calls.max(1) as f64,
            share_pct: share,
            cumulative_pct: cum,
            cpu_op: a
                .ops
                .get(&strings)
                .map(|x| x.0)
                .unwrap_or_else(|| "-".into()),
            location,
            annotation: a.anns.get(&strings).map(|(top, _, n)| {
                if n > 1 {
                    format!("{top} (+{} more)", n - 1)
                } else {
                    top
                }
            }),
            graph_replayed_calls: a.graph_calls,
            attribution: attribution.into(),
            match_quality,
        });
    }
    let mut families: Vec<FamilyRow> = fam_acc
        .into_iter()
        .map(|(family, (calls, t))| FamilyRow {
            family,
            calls,
            total_ms: t as f64 / 1e6,
            share_pct: if total > 0 {
                100.0 * t as f64 / total as f64
            } else {
                0.0
            },
        })
        .collect();
    families.sort_by(|a, b| {
        b.total_ms
            .total_cmp(&a.total_ms)
            .then(a.family.cmp(&b.family))
    });
    let graph_calls: u64 = accs.iter().map(|a| a.graph_calls).sum();
    let graph_note = (graph_calls > 0).then(|| match graph_map {
        Some(m) => format!(
            "{graph_calls} of {} kernel calls were replayed from CUDA graphs; their CPU op and source come from the eager mapping trace: {}",
            sk.kernels.len(),
            m.summary.note
        ),
        None => format!(
            "{graph_calls} of {} kernel calls were replayed from CUDA graphs (attribution `graph_unattributed`): their CPU side is only `cudaGraphLaunch`, so the CPU op and Python location shown are the graph launch's. Pass a mapping trace of the same workload without graphs (vLLM --enforce-eager) to attribute them.",
            sk.kernels.len()
        ),
    });
    KernelTable {
        total_gpu_ms: total as f64 / 1e6,
        kernel_count: sk.kernels.len() as u64,
        rows,
        families,
        share_cutoff_pct: cutoff_pct,
        hidden_rows,
        hidden_share_pct: hidden_share,
        graph_note,
    }
}

// ---------------------------------------------------------------- overlap

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StreamBusy {
    pub device: i32,
    pub stream: i64,
    pub busy_ms: f64,
    pub kernels: u64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OverlapRow {
    pub kernel: String,
    pub family: String,
    pub overlap_class: String,
    pub calls: u64,
    pub total_ms: f64,
    pub share_pct: f64,
    /// Time with no other stream busy (exposed).
    pub exclusive_ms: f64,
    /// Time overlapped by work on another stream.
    pub hidden_ms: f64,
    /// `low` / `medium` / `high`: how tightly the kernel is wedged between same-stream neighbours.
    pub dependency_risk: String,
    pub location: String,
    pub recommendation: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OverlapTable {
    pub wall_ms: f64,
    pub gpu_busy_ms: f64,
    pub busy_pct_of_wall: f64,
    pub idle_gaps: u64,
    pub idle_total_ms: f64,
    pub largest_gap_us: f64,
    pub median_gap_us: f64,
    /// Launch-bound signal in words (idle share and gap shape).
    pub launch_bound: String,
    pub streams: Vec<StreamBusy>,
    pub max_concurrent_streams: u32,
    pub multi_stream_overlap_ms: f64,
    pub compute_ms: f64,
    pub communication_ms: f64,
    pub memory_ms: f64,
    pub compute_comm_overlap_ms: f64,
    pub compute_memory_overlap_ms: f64,
    pub exposed_communication_ms: f64,
    pub exposed_memory_ms: f64,
    pub rows: Vec<OverlapRow>,
    pub mode_note: String,
}

/// Overlap-opportunity table by a sweep line over the stage's kernels.
pub fn overlap_table(
    sk: &StageKernels<'_>,
    classifier: &Classifier,
    graph_map: Option<&GraphMap>,
    cutoff_pct: f64,
) -> OverlapTable {
    let s = sk.store;
    let k = &s.kernels;
    // Distinct kernel names of the stage, dense-numbered in first appearance and classified
    // once; per kernel position its dense name and its stream slot (also first appearance).
    struct NameClass {
        canonical: String,
        family: usize,
        class: OverlapClass,
    }
    let mut dense_of_name = vec![NONE; s.names.len()];
    let mut names: Vec<NameClass> = Vec::new();
    let mut stream_slot: FxHashMap<i64, usize> = FxHashMap::default();
    let mut stream_ids: Vec<i64> = Vec::new();
    let mut name_of_pos: Vec<u32> = Vec::with_capacity(sk.kernels.len());
    let mut streams_of: Vec<usize> = Vec::with_capacity(sk.kernels.len());
    for &i in &sk.kernels {
        let n = k.name[i as usize] as usize;
        if dense_of_name[n] == NONE {
            dense_of_name[n] = names.len() as u32;
            let canonical = canonical_name(s.name(n as NameId));
            let family = classifier.family_index(&canonical);
            names.push(NameClass {
                canonical,
                family,
                class: classifier.family_by_index(family).overlap,
            });
        }
        name_of_pos.push(dense_of_name[n]);
        let stream = k.stream[i as usize];
        streams_of.push(*stream_slot.entry(stream).or_insert_with(|| {
            stream_ids.push(stream);
            stream_ids.len() - 1
        }));
    }
    let classes: Vec<OverlapClass> = name_of_pos
        .iter()
        .map(|&d| names[d as usize].class)
        .collect();
    let nstreams = stream_ids.len();
    // Events in (time, ends before starts, position) order: starts and ends are each sorted
    // (the store keeps kernels in start order, so that sort is a linear check) and merged.
    let mut starts: Vec<(i64, u32)> = Vec::with_capacity(sk.kernels.len());
    let mut ends: Vec<(i64, u32)> = Vec::with_capacity(sk.kernels.len());
    for (pos, &i) in sk.kernels.iter().enumerate() {
        starts.push((k.ts_ns[i as usize], pos as u32));
        ends.push((k.end_ns(i as usize), pos as u32));
    }
    starts.sort_unstable();
    ends.sort_unstable();
    // (time, is_start, pos)
    let mut ev: Vec<(i64, bool, u32)> = Vec::with_capacity(sk.kernels.len() * 2);
    let (mut si, mut ei) = (0, 0);
    while si < starts.len() || ei < ends.len() {
        let take_end = si == starts.len() || (ei < ends.len() && ends[ei].0 <= starts[si].0);
        if take_end {
            ev.push((ends[ei].0, false, ends[ei].1));
            ei += 1;
        } else {
            ev.push((starts[si].0, true, starts[si].1));
            si += 1;
        }
    }
    let mut per_stream_active = vec![0u32; nstreams];
    let mut active_streams = 0u32;
    let mut class_active = [0u32; 5];
    let ci = |c: OverlapClass| c as usize;
    let mut busy = 0i64;
    let mut multi = 0i64;
    let mut comp = 0i64;
    let mut comm = 0i64;
    let mut mem = 0i64;
    let mut comp_comm = 0i64;
    let mut comp_mem = 0i64;
    let mut exp_comm = 0i64;
    let mut exp_mem = 0i64;
    let mut max_conc = 0u32;
    let mut gaps: Vec<i64> = Vec::new();
    let mut exclusive = vec![0i64; sk.kernels.len()];
    let mut hidden = vec![0i64; sk.kernels.len()];
    // active kernels per stream: we only need, for each stream, the set of active positions;
    // per segment, kernels on a stream are exclusive iff active_streams == 1.
    let mut active_by_stream: Vec<Vec<u32>> = vec![Vec::new(); nstreams];
    let mut prev_t: Option<i64> = None;
    let mut last_busy_end: Option<i64> = None;
    for (t, is_start, pos) in ev {
        if let Some(p) = prev_t {
            let seg = t - p;
            if seg > 0 && active_streams > 0 {
                busy += seg;
                if active_streams >= 2 {
                    multi += seg;
                }
                let c = class_active[ci(OverlapClass::Compute)] > 0;
                let m = class_active[ci(OverlapClass::Communication)] > 0;
                let me = class_active[ci(OverlapClass::Memory)] > 0;
                if c {
                    comp += seg
                }
                if m {
                    comm += seg
                }
                if me {
                    mem += seg
                }
                if c && m {
                    comp_comm += seg
                }
                if c && me {
                    comp_mem += seg
                }
                if m && !c {
                    exp_comm += seg
                }
                if me && !c {
                    exp_mem += seg
                }
                for active in &active_by_stream {
                    for &q in active {
                        if active_streams >= 2 {
                            hidden[q as usize] += seg;
                        } else {
                            exclusive[q as usize] += seg;
                        }
                    }
                }
            }
        }
        if is_start
            && active_streams == 0
            && let Some(e) = last_busy_end
            && t > e
        {
            gaps.push(t - e);
        }
        let st = streams_of[pos as usize];
        let cls = classes[pos as usize];
        if is_start {
            if per_stream_active[st] == 0 {
                active_streams += 1;
            }
            per_stream_active[st] += 1;
            class_active[ci(cls)] += 1;
            active_by_stream[st].push(pos);
        } else {
            per_stream_active[st] -= 1;
            if per_stream_active[st] == 0 {
                active_streams -= 1;
            }
            class_active[ci(cls)] -= 1;
            if let Some(ix) = active_by_stream[st].iter().position(|&q| q == pos) {
                active_by_stream[st].swap_remove(ix);
            }
            if active_streams == 0 {
                last_busy_end = Some(t);
            }
        }
        max_conc = max_conc.max(active_streams);
        prev_t = Some(t);
    }
    let (wall_start, wall_end) = if sk.kernels.is_empty() {
        (0, 0)
    } else {
        let st = sk
            .kernels
            .iter()
            .map(|&i| k.ts_ns[i as usize])
            .min()
            .unwrap();
        let en = sk
            .kernels
            .iter()
            .map(|&i| k.end_ns(i as usize))
            .max()
            .unwrap();
        (st, en)
    };
    let wall = wall_end - wall_start;
    gaps.sort_unstable();
    let idle: i64 = gaps.iter().sum();
    let median_gap = if gaps.is_empty() {
        0
    } else {
        gaps[gaps.len() / 2]
    };
    let largest = gaps.last().copied().unwrap_or(0);
    let idle_pct = if wall > 0 {
        100.0 * idle as f64 / wall as f64
    } else {
        0.0
    };
    let small_gaps = gaps.iter().filter(|&&g| g < 20_000).count();
    let launch_bound = if idle_pct >= 20.0 && small_gaps * 2 >= gaps.len() {
        format!(
            "likely launch/CPU bound: the GPU is idle {idle_pct:.1}% of the kernel wall time in {} gaps, most shorter than 20 µs (median {:.1} µs) — the CPU does not keep the queue full",
            gaps.len(),
            median_gap as f64 / 1e3
        )
    } else if idle_pct >= 20.0 {
        format!(
            "GPU idle {idle_pct:.1}% of the kernel wall time, dominated by long gaps (largest {:.1} ms): host-side work or synchronisation between steps",
            largest as f64 / 1e6
        )
    } else {
        format!(
            "not launch bound: GPU idle only {idle_pct:.1}% of the kernel wall time ({} gaps)",
            gaps.len()
        )
    };
    // per stream busy, and each stream's kernels in time order (for dependency risk)
    let mut stream_busy = vec![(0i64, 0u64); nstreams];
    let mut per_stream: Vec<Vec<u32>> = vec![Vec::new(); nstreams];
    for (pos, &i) in sk.kernels.iter().enumerate() {
        let e = &mut stream_busy[streams_of[pos]];
        e.0 += k.dur_ns[i as usize];
        e.1 += 1;
        per_stream[streams_of[pos]].push(i);
    }
    let mut streams: Vec<StreamBusy> = stream_ids
        .iter()
        .zip(&stream_busy)
        .map(|(&stream, &(b, n))| StreamBusy {
            device: sk.device,
            stream,
            busy_ms: b as f64 / 1e6,
            kernels: n,
        })
        .collect();
    streams.sort_by(|a, b| b.busy_ms.total_cmp(&a.busy_ms));

    // Per-kernel-name rows: non-compute work that is exposed (overlap possible but absent).
    struct Agg {
        name: String,
        family: usize,
        class: OverlapClass,
        calls: u64,
        total: i64,
        excl: i64,
        hid: i64,
        rep: u32,
        rep_dur: i64,
    }
    // One aggregate per canonical name (several raw names can share one), in first appearance.
    let mut agg_of_name: Vec<u32> = vec![NONE; names.len()];
    let mut agg_of_canonical: FxHashMap<&str, u32> = FxHashMap::default();
    let mut aggs: Vec<Agg> = Vec::new();
    for (pos, &i) in sk.kernels.iter().enumerate() {
        let d = name_of_pos[pos] as usize;
        if agg_of_name[d] == NONE {
            let nc = &names[d];
            agg_of_name[d] = *agg_of_canonical
                .entry(nc.canonical.as_str())
                .or_insert_with(|| {
                    aggs.push(Agg {
                        name: nc.canonical.clone(),
                        family: nc.family,
                        class: nc.class,
                        calls: 0,
                        total: 0,
                        excl: 0,
                        hid: 0,
                        rep: i,
                        rep_dur: -1,
                    });
                    aggs.len() as u32 - 1
                });
        }
        let a = &mut aggs[agg_of_name[d] as usize];
        let dur = k.dur_ns[i as usize];
        a.calls += 1;
        a.total += dur;
        a.excl += exclusive[pos];
        a.hid += hidden[pos];
        // The longest instance represents the row; ties keep the earliest.
        if dur > a.rep_dur {
            a.rep_dur = dur;
            a.rep = i;
        }
    }
    let total_kernel: i64 = sk.total_ns();
    let mut cands: Vec<&Agg> = aggs
        .iter()
        .filter(|a| a.class != OverlapClass::Compute)
        .filter(|a| a.total > 0 && a.excl as f64 / a.total as f64 >= 0.45)
        .filter(|a| 100.0 * a.total as f64 / total_kernel.max(1) as f64 >= cutoff_pct)
        .collect();
    let weight = |c: OverlapClass| match c {
        OverlapClass::Communication => 1.3,
        OverlapClass::Memory => 1.15,
        OverlapClass::Elementwise => 1.0,
        _ => 0.8,
    };
    cands.sort_by(|a, b| {
        (b.excl as f64 * weight(b.class)).total_cmp(&(a.excl as f64 * weight(a.class)))
    });
    let mut att = Attributor::new(s, graph_map);
    let mut rows = Vec::new();
    for a in cands.into_iter().take(10) {
        let rep = a.rep as usize;
        let seq = &per_stream[stream_slot[&k.stream[rep]]];
        let p = seq.partition_point(|&x| (x as usize) < rep);
        let d = k.dur_ns[rep];
        let tight = (2_000i64).max((20_000i64).min(d * 15 / 100));
        let prev_gap = (p > 0).then(|| k.ts_ns[rep] - k.end_ns(seq[p - 1] as usize));
        let next_gap = (p + 1 < seq.len()).then(|| k.ts_ns[seq[p + 1] as usize] - k.end_ns(rep));
        let tight_sides = [prev_gap, next_gap]
            .iter()
            .filter(|g| matches!(g, Some(x) if *x <= tight))
            .count();
        let dependency_risk = match tight_sides {
            2 => "high",
            1 => "medium",
            _ => "low",
        };
        let (attr, _, graph) = att.of(a.rep);
        let location = attr
            .as_ref()
            .and_then(|x| x.location.clone())
            .map(|l| {
                if graph && graph_map.is_none() {
                    format!("{l} (graph launch site)")
                } else {
                    l
                }
            })
            .unwrap_or_else(|| "unresolved".into());
        let recommendation = match (a.class, dependency_risk) {
            (OverlapClass::Communication, "low") => "try overlap: run the collective on a side stream alongside independent compute".to_string(),
            (OverlapClass::Communication, _) => "check deps: the collective sits tight between dependent kernels; overlap needs a split (e.g. chunked all-reduce / async TP)".to_string(),
            (OverlapClass::Memory, _) => "try overlap: issue the copy on a side stream earlier (prefetch) or remove it".to_string(),
            (_, "low") => "try fusion or a side stream: exposed SM-light kernel with slack around it".to_string(),
            _ => "try fusion into the neighbouring kernel (tight producer/consumer chain)".to_string(),
        };
        rows.push(OverlapRow {
            kernel: short_name(&a.name),
            family: classifier.family_by_index(a.family).name.clone(),
            overlap_class: a.class.as_str().into(),
            calls: a.calls,
            total_ms: a.total as f64 / 1e6,
            share_pct: 100.0 * a.total as f64 / total_kernel.max(1) as f64,
            exclusive_ms: a.excl as f64 / 1e6,
            hidden_ms: a.hid as f64 / 1e6,
            dependency_risk: dependency_risk.into(),
            location,
            recommendation,
        });
    }
    let mode_note = match (nstreams, graph_map.is_some()) {
        (1, false) => "single trace, one stream: all GPU work is serial, so every non-compute kernel's time is exposed; the rows are kernels that could be hidden by fusion or a side stream. Locations for graph-replayed kernels need a mapping trace.".to_string(),
        (1, true) => "one stream: all GPU work is serial; locations come from the eager mapping trace.".to_string(),
        (n, _) => format!("{n} streams: overlap measured with a sweep line over all kernels of the device"),
    };
    OverlapTable {
        wall_ms: wall as f64 / 1e6,
        gpu_busy_ms: busy as f64 / 1e6,
        busy_pct_of_wall: if wall > 0 {
            100.0 * busy as f64 / wall as f64
        } else {
            0.0
        },
        idle_gaps: gaps.len() as u64,
        idle_total_ms: idle as f64 / 1e6,
        largest_gap_us: largest as f64 / 1e3,
        median_gap_us: median_gap as f64 / 1e3,
        launch_bound,
        streams,
        max_concurrent_streams: max_conc,
        multi_stream_overlap_ms: multi as f64 / 1e6,
        compute_ms: comp as f64 / 1e6,
        communication_ms: comm as f64 / 1e6,
        memory_ms: mem as f64 / 1e6,
        compute_comm_overlap_ms: comp_comm as f64 / 1e6,
        compute_memory_overlap_ms: comp_mem as f64 / 1e6,
        exposed_communication_ms: exp_comm as f64 / 1e6,
        exposed_memory_ms: exp_mem as f64 / 1e6,
        rows,
        mode_note,
    }
}

// ---------------------------------------------------------------- fuse patterns

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitStep {
    #[serde(default)]
    pub family: Option<String>,
    /// Regex (case-insensitive) on the full kernel name.
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FuseSource {
    pub path: String,
    pub origin: String,
    #[serde(default)]
    pub pr: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FuseEntry {
    pub id: String,
    pub name: String,
    pub frameworks: Vec<String>,
    pub split_signature: Vec<SplitStep>,
    pub fused_signature: Vec<String>,
    /// Kernels allowed between consecutive split steps on the stream (default 0 = adjacent).
    #[serde(default)]
    pub max_between: usize,
    pub source: FuseSource,
    #[serde(default)]
    pub notes: String,
}

#[derive(Debug, Deserialize)]
struct CatalogFile {
    entries: Vec<FuseEntry>,
}

struct CompiledStep {
    family: Option<usize>,
    name: Option<Regex>,
}

pub struct FuseCatalog {
    pub entries: Vec<FuseEntry>,
    split: Vec<Vec<CompiledStep>>,
    fused: Vec<Vec<Regex>>,
}

impl FuseCatalog {
    pub fn from_json(text: &str, source: &str, classifier: &Classifier) -> Result<Self> {
        let f: CatalogFile = serde_json::from_str(text)
            .with_context(|| format!("{source}: not a fuse-pattern catalog"))?;
        let mut split = Vec::new();
        let mut fused = Vec::new();
        for e in &f.entries {
            let mut steps = Vec::new();
            for st in &e.split_signature {
                let family = match &st.family {
                    Some(fam) => Some(
                        classifier
                            .families
                            .iter()
                            .position(|x| &x.name == fam)
                            .or((fam == "other").then_some(classifier.families.len()))
                            .with_context(|| {
                                format!("{source}: entry {}: unknown family {fam:?}", e.id)
                            })?,
                    ),
                    None => None,
                };
                let name =
                    match &st.name {
                        Some(r) => Some(Regex::new(&format!("(?i){r}")).with_context(|| {
                            format!("{source}: entry {}: bad regex {r:?}", e.id)
                        })?),
                        None => None,
                    };
                anyhow::ensure!(
                    family.is_some() || name.is_some(),
                    "{source}: entry {}: a split step needs a family or a name",
                    e.id
                );
                steps.push(CompiledStep { family, name });
            }
            anyhow::ensure!(
                !steps.is_empty(),
                "{source}: entry {}: empty split_signature",
                e.id
            );
            let mut fr = Vec::new();
            for r in &e.fused_signature {
                fr.push(
                    Regex::new(&format!("(?i){r}"))
                        .with_context(|| format!("{source}: entry {}: bad regex {r:?}", e.id))?,
                );
            }
            split.push(steps);
            fused.push(fr);
        }
        Ok(Self {
            entries: f.entries,
            split,
            fused,
        })
    }

    pub fn load(classifier: &Classifier) -> Result<Self> {
        let (text, source) = vllm_sota_core::refs::load(
            "fuse-patterns.json",
            Some(include_str!("../../../references/fuse-patterns.json")),
        )?;
        Self::from_json(&text, &source, classifier)
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FuseRow {
    pub id: String,
    pub pattern: String,
    /// `already fused`, `split present`, `both` (fused and split sites), or `not applicable`.
    pub status: String,
    pub evidence_kernels: Vec<String>,
    /// Adjacent split occurrences found (on one stream).
    pub split_occurrences: u64,
    /// GPU time of the split kernels (the time a fusion would act on), share of stage GPU time.
    pub split_share_pct: f64,
    pub fused_share_pct: f64,
    pub source: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SimilarityNote {
    pub level: String,
    pub pattern: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FuseTable {
    pub rows: Vec<FuseRow>,
    pub not_applicable: Vec<String>,
    pub similarity: Vec<SimilarityNote>,
    pub note: String,
}

/// Fuse-pattern table: adjacency on each stream's time-ordered kernel sequence.
pub fn fuse_table(
    sk: &StageKernels<'_>,
    classifier: &Classifier,
    catalog: &FuseCatalog,
    framework: &str,
) -> FuseTable {
    let s = sk.store;
    let k = &s.kernels;
    let total = sk.total_ns().max(1);
    // Everything a pattern step looks at depends only on the kernel name: number the stage's
    // distinct names densely (first appearance) and classify each once.
    struct NameInfo {
        family: usize,
        canonical: String,
        total_ns: i64,
    }
    let mut dense_of_name = vec![NONE; s.names.len()];
    let mut names: Vec<NameInfo> = Vec::new();
    for &i in &sk.kernels {
        let n = k.name[i as usize] as usize;
        if dense_of_name[n] == NONE {
            dense_of_name[n] = names.len() as u32;
            let canonical = canonical_name(s.name(n as NameId));
            names.push(NameInfo {
                family: classifier.family_index(&canonical),
                canonical,
                total_ns: 0,
            });
        }
        names[dense_of_name[n] as usize].total_ns += k.dur_ns[i as usize];
    }
    let mut short_names: Vec<Option<String>> = vec![None; names.len()];
    let mut short_of = |d: usize| -> String {
        short_names[d]
            .get_or_insert_with(|| short_name(&names[d].canonical))
            .clone()
    };
    // Each stream's kernels in time order, as (kernel, dense name) columns.
    struct StreamSeq {
        kernels: Vec<u32>,
        names: Vec<u32>,
    }
    let mut stream_slot: FxHashMap<i64, usize> = FxHashMap::default();
    let mut streams: Vec<StreamSeq> = Vec::new();
    for &i in &sk.kernels {
        // memcpy/memset on copy engines are not part of the SM kernel chain
        if k.kind[i as usize] == GpuKind::Kernel {
            let slot = *stream_slot.entry(k.stream[i as usize]).or_insert_with(|| {
                streams.push(StreamSeq {
                    kernels: Vec::new(),
                    names: Vec::new(),
                });
                streams.len() - 1
            });
            streams[slot].kernels.push(i);
            streams[slot]
                .names
                .push(dense_of_name[k.name[i as usize] as usize]);
        }
    }
    let mut rows = Vec::new();
    let mut not_applicable = Vec::new();
    let mut similarity = Vec::new();
    let mut picked: Vec<usize> = Vec::new();
    for (ei, e) in catalog.entries.iter().enumerate() {
        let applies =
            e.frameworks.iter().any(|f| f == "any" || f == framework) || framework == "pytorch";
        // fused evidence
        let mut fused_t = 0i64;
        let mut fused_names: FxHashMap<String, i64> = FxHashMap::default();
        for (d, info) in names.iter().enumerate() {
            if catalog.fused[ei]
                .iter()
                .any(|r| r.is_match(&info.canonical))
            {
                fused_t += info.total_ns;
                *fused_names.entry(short_of(d)).or_default() += info.total_ns;
            }
        }
        // split evidence: adjacent occurrences
        let steps = &catalog.split[ei];
        // (matches by name, matches by family) per step and dense name: [step * names + name].
        let step_matches: Vec<(bool, bool)> = steps
            .iter()
            .flat_map(|st| {
                names.iter().map(move |info| {
                    let fam_ok = st.family.map(|f| f == info.family).unwrap_or(false);
                    let fam_gate = st.family.map(|f| f == info.family).unwrap_or(true);
                    let name_ok = st
                        .name
                        .as_ref()
                        .map(|r| r.is_match(&info.canonical))
                        .unwrap_or(true);
                    (fam_gate && name_ok, fam_ok)
                })
            })
            .collect();
        let step_match = |j: usize, d: u32| step_matches[j * names.len() + d as usize];
        let mut occ = 0u64;
        let mut split_t = 0i64;
        // GPU time of the split kernels per dense name (None: never part of an occurrence).
        let mut split_by_name: Vec<Option<i64>> = vec![None; names.len()];
        let mut best_partial = 0usize; // longest family-level prefix
        let mut family_only_full = 0u64;
        let gap = e.max_between;
        for seq in &streams {
            let seq_names = &seq.names[..];
            // Positions of the longest chain of pattern steps starting at seq[i] (into
            // `picked`): step j+1 within `gap` kernels after step j, matched by name (exact)
            // or by family only.
            let chain = |i: usize, exact: bool, picked: &mut Vec<usize>| {
                picked.clear();
                let mut pos = i;
                for j in 0..steps.len() {
                    let (from, lim) = if j == 0 {
                        (i, i + 1)
                    } else {
                        (pos + 1, (pos + 2 + gap).min(seq_names.len()))
                    };
                    let hit = |q: usize| {
                        let (by_name, by_family) = step_match(j, seq_names[q]);
                        if exact { by_name } else { by_family }
                    };
                    match (from..lim).find(|&q| hit(q)) {
                        Some(q) => {
                            picked.push(q);
                            pos = q;
                        }
                        None => break,
                    }
                }
                picked.len()
            };
            let mut i = 0;
            while i < seq_names.len() {
                let (first_by_name, first_by_family) = step_match(0, seq_names[i]);
                // Most positions start neither chain: both would be empty.
                if !first_by_name && !first_by_family {
                    i += 1;
                    continue;
                }
                if first_by_name && chain(i, true, &mut picked) == steps.len() {
                    occ += 1;
                    for &q in &picked {
                        let kk = seq.kernels[q] as usize;
                        split_t += k.dur_ns[kk];
                        *split_by_name[seq_names[q] as usize].get_or_insert(0) += k.dur_ns[kk];
                    }
                    i = picked[picked.len() - 1] + 1;
                    continue;
                }
                // Family-level chain (names ignored) for the similarity note.
                let fam_prefix = if first_by_family {
                    chain(i, false, &mut picked)
                } else {
                    0
                };
                if fam_prefix == steps.len() && steps.iter().any(|s| s.name.is_some()) {
                    family_only_full += 1;
                }
                best_partial = best_partial.max(fam_prefix);
                i += 1;
            }
        }
        let mut split_names: FxHashMap<String, i64> = FxHashMap::default();
        for (d, t) in split_by_name.iter().enumerate() {
            if let Some(t) = t {
                *split_names.entry(short_of(d)).or_default() += t;
            }
        }
        let status = match (fused_t > 0, occ > 0) {
            (true, true) => "both",
            (true, false) => "already fused",
            (false, true) => "split present",
            (false, false) => "not applicable",
        };
        if status == "not applicable" {
            not_applicable.push(e.id.clone());
            if applies && steps.len() >= 2 {
                if family_only_full > 0 {
                    similarity.push(SimilarityNote {
                        level: "high".into(),
                        pattern: e.name.clone(),
                        reason: format!(
                            "{family_only_full} adjacent runs match the pattern's kernel families ({}) on one stream, but not its kernel names",
                            e.split_signature.iter().map(|s| s.family.clone().unwrap_or_else(|| s.name.clone().unwrap_or_default())).collect::<Vec<_>>().join(" → ")
                        ),
                    });
                } else if best_partial >= 2 && best_partial < steps.len() {
                    similarity.push(SimilarityNote {
                        level: if best_partial + 1 == steps.len() { "medium".into() } else { "low".into() },
                        pattern: e.name.clone(),
                        reason: format!("{best_partial} of {} steps of the split chain occur adjacently by family", steps.len()),
                    });
                }
            }
            continue;
        }
        // Split names, then fused names, each in name order before the stable sort by time:
        // equal times keep a fixed order (hash-map order made them vary between runs).
        let mut split_names: Vec<(String, i64)> = split_names.into_iter().collect();
        split_names.sort_unstable();
        let mut fused_names: Vec<(String, i64)> = fused_names.into_iter().collect();
        fused_names.sort_unstable();
        let mut ev: Vec<(String, i64)> = split_names.into_iter().chain(fused_names).collect();
        ev.sort_by_key(|x| std::cmp::Reverse(x.1));
        ev.dedup_by(|a, b| a.0 == b.0);
        let src = match &e.source.pr {
            Some(pr) => format!("{} ({}, {pr})", e.source.path, e.source.origin),
            None => format!("{} ({})", e.source.path, e.source.origin),
        };
        rows.push(FuseRow {
            id: e.id.clone(),
            pattern: e.name.clone(),
            status: status.into(),
            evidence_kernels: ev
                .into_iter()
                .take(4)
                .map(|x| format!("{} ({:.1}%)", x.0, 100.0 * x.1 as f64 / total as f64))
                .collect(),
            split_occurrences: occ,
            split_share_pct: 100.0 * split_t as f64 / total as f64,
            fused_share_pct: 100.0 * fused_t as f64 / total as f64,
            source: if applies {
                src
            } else {
                format!("{src} — not a {framework} path")
            },
        });
    }
    rows.sort_by(|a, b| {
        let rank = |r: &FuseRow| {
            if r.status == "split present" || r.status == "both" {
                0
            } else {
                1
            }
        };
        rank(a)
            .cmp(&rank(b))
            .then(b.split_share_pct.total_cmp(&a.split_share_pct))
            .then(b.fused_share_pct.total_cmp(&a.fused_share_pct))
    });
    let order = |l: &str| match l {
        "high" => 0,
        "medium" => 1,
        _ => 2,
    };
    similarity.sort_by_key(|n| order(&n.level));
    similarity.truncate(3);
    FuseTable {
        rows,
        not_applicable,
        similarity,
        note: "split = the pattern's kernels occur back to back on one stream (adjacency, not keyword bags); layer boundaries are not checked".into(),
    }
}

// ---------------------------------------------------------------- cross-trace

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CompareRow {
    pub family: String,
    pub ours_ms_per_step: f64,
    pub theirs_ms_per_step: f64,
    /// ours − theirs (positive: we are slower in this family).
    pub diff_ms_per_step: f64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Comparison {
    pub ours_steps: u64,
    pub theirs_steps: u64,
    pub step_basis: String,
    pub ours_ms_per_step: f64,
    pub theirs_ms_per_step: f64,
    pub rows: Vec<CompareRow>,
}

/// Engine steps in a trace: step annotations (vLLM `execute_context_*`, `execute_model_step*`,
/// `ProfilerStep#*`, SGLang `forward_*`), else 1.
pub fn count_steps(s: &TraceStore) -> (u64, String) {
    let a = &s.annotations;
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for i in 0..a.len() {
        if a.on_gpu[i] {
            continue;
        }
        let n = s.name(a.name[i]);
        let key = if n.starts_with("execute_context_") {
            "execute_context_*"
        } else if n.starts_with("execute_model_step") {
            "execute_model_step_*"
        } else if n.starts_with("ProfilerStep#") {
            "ProfilerStep#*"
        } else {
            continue;
        };
        *counts.entry(key).or_default() += 1;
    }
    match counts.into_iter().max_by_key(|x| x.1) {
        Some((k, n)) => (n, format!("{n} `{k}` annotations")),
        None => (1, "no step annotations: totals per trace".into()),
    }
}

pub fn compare(
    ours: &KernelTable,
    ours_steps: (u64, String),
    theirs: &KernelTable,
    theirs_steps: (u64, String),
) -> Comparison {
    let mut fams: Vec<String> = ours.families.iter().map(|f| f.family.clone()).collect();
    for f in &theirs.families {
        if !fams.contains(&f.family) {
            fams.push(f.family.clone());
        }
    }
    let get = |t: &KernelTable, f: &str| {
        t.families
            .iter()
            .find(|x| x.family == f)
            .map(|x| x.total_ms)
            .unwrap_or(0.0)
    };
    let (os, ts) = (ours_steps.0.max(1) as f64, theirs_steps.0.max(1) as f64);
    let mut rows: Vec<CompareRow> = fams
        .into_iter()
        .map(|f| {
            let o = get(ours, &f) / os;
            let t = get(theirs, &f) / ts;
            CompareRow {
                family: f,
                ours_ms_per_step: o,
                theirs_ms_per_step: t,
                diff_ms_per_step: o - t,
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.diff_ms_per_step
            .abs()
            .total_cmp(&a.diff_ms_per_step.abs())
    });
    let mismatch = ours_steps.1.starts_with("no step") != theirs_steps.1.starts_with("no step");
    Comparison {
        ours_steps: ours_steps.0,
        theirs_steps: theirs_steps.0,
        step_basis: format!(
            "ours: {}; theirs: {}{}",
            ours_steps.1,
            theirs_steps.1,
            if mismatch {
                " — WARNING: only one side has step counts, so ms/step are not comparable; pass steps / competitor_steps"
            } else {
                ""
            }
        ),
        ours_ms_per_step: ours.total_gpu_ms / os,
        theirs_ms_per_step: theirs.total_gpu_ms / ts,
        rows,
    }
}

pub fn graph_summary(m: Option<&GraphMap>) -> Option<GraphMapSummary> {
    m.map(|m| m.summary.clone())
}
