//! CUDA-graph attribution: kernels replayed from a graph have only `cudaGraphLaunch` as
//! their CPU side. Given a mapping trace of the same workload without graphs (vLLM
//! `--enforce-eager`), align each replay's kernel sequence with an eager step's sequence
//! (weighted LCS: same canonical name scores 2, same family 1) and give each graph kernel
//! the CPU op, Python location and annotation of its eager twin.

use crate::attrib::{Attribution, FrameCache, attribute_launch_cached};
use crate::classify::{Classifier, canonical_name};
use crate::store::*;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MatchQuality {
    /// Aligned to an eager kernel with the same canonical name.
    Exact,
    /// Aligned to an eager kernel of the same family (e.g. an Inductor norm vs a CUDA norm).
    Family,
    /// Not aligned; took the most common attribution of the same kernel name in the eager trace.
    NameOnly,
}

#[derive(Debug, Clone)]
pub struct TwinAttribution {
    pub eager_kernel: u32,
    pub attribution: Arc<Attribution>,
    pub quality: MatchQuality,
    /// Share of the replay sequence that aligned (0..1).
    pub sequence_match: f32,
}

#[derive(Debug, Default, Clone, Serialize, schemars::JsonSchema)]
pub struct GraphMapSummary {
    pub graph_launches: usize,
    pub graph_kernels: usize,
    pub unique_graphs: usize,
    pub aligned_exact: usize,
    pub aligned_family: usize,
    pub name_only: usize,
    pub unattributed: usize,
    /// (exact + family) / graph kernels.
    pub match_rate: f64,
    pub eager_steps: usize,
    pub note: String,
}

#[derive(Debug, Default)]
pub struct GraphMap {
    /// Indexed like the graph store's kernels; `None` for kernels not replayed from a graph
    /// or without a twin.
    pub per_kernel: Vec<Option<TwinAttribution>>,
    pub summary: GraphMapSummary,
}

struct Vocab {
    ids: HashMap<String, u32>,
    family: Vec<u16>,
}

impl Vocab {
    fn map_store(&mut self, s: &TraceStore, c: &Classifier) -> Vec<u32> {
        let mut per_name = vec![u32::MAX; s.names.len()];
        for &n in &s.kernels.name {
            if per_name[n as usize] != u32::MAX {
                continue;
            }
            let canon = canonical_name(s.name(n));
            let next = self.ids.len() as u32;
            let id = *self.ids.entry(canon.clone()).or_insert(next);
            if id == next {
                self.family.push(c.family_index(&canon) as u16);
            }
            per_name[n as usize] = id;
        }
        per_name
    }
}

/// Step windows in the eager trace: CPU annotations that mark engine steps (a step pattern
/// of `references/trace-step-names.json`); empty if none.
fn step_windows(s: &TraceStore) -> Vec<(i64, i64, u32)> {
    let a = &s.annotations;
    let mut v: Vec<(i64, i64, u32)> = (0..a.len())
        .filter(|&i| !a.on_gpu[i] && crate::names::step_label(s.name(a.name[i])).is_some())
        .map(|i| (a.ts_ns[i], a.ts_ns[i] + a.dur_ns[i], a.thread[i]))
        .collect();
    v.sort();
    // Drop windows nested in the previous one (keep outermost).
    let mut out: Vec<(i64, i64, u32)> = Vec::new();
    for w in v {
        if let Some(last) = out.last()
            && w.0 >= last.0
            && w.1 <= last.1
        {
            continue;
        }
        out.push(w);
    }
    out
}

/// Weighted LCS alignment; returns pairs (i in a, j in b, exact?).
fn align(a: &[u32], b: &[u32], fam: &[u16]) -> Vec<(usize, usize, bool)> {
    let n = a.len();
    let m = b.len();
    if n == 0 || m == 0 {
        return vec![];
    }
    let w = m + 1;
    let mut dp = vec![0u32; (n + 1) * (m + 1)];
    for i in 1..=n {
        for j in 1..=m {
            let sc = if a[i - 1] == b[j - 1] {
                2
            } else if fam[a[i - 1] as usize] == fam[b[j - 1] as usize] {
                1
            } else {
                0
            };
            let diag = if sc > 0 {
                dp[(i - 1) * w + j - 1] + sc
            } else {
                0
            };
            let best = dp[(i - 1) * w + j].max(dp[i * w + j - 1]).max(diag);
            dp[i * w + j] = best;
        }
    }
    let mut pairs = Vec::new();
    let (mut i, mut j) = (n, m);
    while i > 0 && j > 0 {
        let cur = dp[i * w + j];
        let sc = if a[i - 1] == b[j - 1] {
            2
        } else if fam[a[i - 1] as usize] == fam[b[j - 1] as usize] {
            1
        } else {
            0
        };
        if sc > 0 && cur == dp[(i - 1) * w + j - 1] + sc {
            pairs.push((i - 1, j - 1, sc == 2));
            i -= 1;
            j -= 1;
        } else if cur == dp[(i - 1) * w + j] {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    pairs.reverse();
    pairs
}

const MAX_CELLS: usize = 12_000_000;

/// Replay sequences: graph kernels grouped by the graph launch that replayed them.
fn replays_by_launch(graph: &TraceStore) -> HashMap<u32, Vec<u32>> {
    let mut by_launch: HashMap<u32, Vec<u32>> = HashMap::new();
    for k in 0..graph.kernels.len() {
        let l = graph.kernels.launch[k];
        if l != NONE && is_graph_launch_name(graph.name(graph.launches.name[l as usize])) {
            by_launch.entry(l).or_default().push(k as u32);
        }
    }
    by_launch
}

/// The eager trace's engine steps: kernels by launch time within step windows on the same
/// thread (one step of every kernel without windows), their canonical-name sequences and
/// the multiset of each sequence.
struct EagerSteps {
    /// Eager kernel indices per step, by kernel start time.
    kernels: Vec<Vec<u32>>,
    /// Canonical-name ids per step, parallel to `kernels`.
    seqs: Vec<Vec<u32>>,
    /// Occurrences of each canonical-name id per step.
    counts: Vec<HashMap<u32, u32>>,
}

fn eager_steps(eager: &TraceStore, e_ids: &[u32]) -> EagerSteps {
    let windows = step_windows(eager);
    let mut steps: Vec<Vec<u32>> = vec![Vec::new(); windows.len().max(1)];
    for k in 0..eager.kernels.len() {
        if windows.is_empty() {
            steps[0].push(k as u32);
            continue;
        }
        let l = eager.kernels.launch[k];
        if l == NONE {
            continue;
        }
        let t = eager.launches.ts_ns[l as usize];
        let idx = windows.partition_point(|w| w.0 <= t);
        if idx > 0 && windows[idx - 1].1 >= t {
            steps[idx - 1].push(k as u32);
        }
    }
    for s in &mut steps {
        s.sort_by_key(|&k| eager.kernels.ts_ns[k as usize]);
    }
    steps.retain(|s| !s.is_empty());
    let seqs: Vec<Vec<u32>> = steps
        .iter()
        .map(|s| {
            s.iter()
                .map(|&k| e_ids[eager.kernels.name[k as usize] as usize])
                .collect()
        })
        .collect();
    let counts = seqs.iter().map(|seq| multiset(seq)).collect();
    EagerSteps {
        kernels: steps,
        seqs,
        counts,
    }
}

/// Occurrences of each id in `seq`.
fn multiset(seq: &[u32]) -> HashMap<u32, u32> {
    let mut m = HashMap::new();
    for &x in seq {
        *m.entry(x).or_insert(0) += 1;
    }
    m
}

/// Attributions of eager kernels, cached per launch.
struct EagerAttributions<'a> {
    eager: &'a TraceStore,
    cache: HashMap<u32, Arc<Attribution>>,
    frames: FrameCache,
    unlinked: Arc<Attribution>,
}

impl<'a> EagerAttributions<'a> {
    fn new(eager: &'a TraceStore) -> Self {
        EagerAttributions {
            eager,
            cache: HashMap::new(),
            frames: FrameCache::default(),
            unlinked: Arc::new(Attribution::unlinked()),
        }
    }

    fn of(&mut self, k: u32) -> Arc<Attribution> {
        let l = self.eager.kernels.launch[k as usize];
        if l == NONE {
            return self.unlinked.clone();
        }
        let (eager, frames) = (self.eager, &mut self.frames);
        self.cache
            .entry(l)
            .or_insert_with(|| Arc::new(attribute_launch_cached(eager, l as usize, frames)))
            .clone()
    }
}

/// Distinct replay sequences (canonical-name ids) with the launches that replayed each, and
/// every launch's kernels by start time.
struct Replays {
    unique: HashMap<Vec<u32>, Vec<u32>>,
    launch_kernels: HashMap<u32, Vec<u32>>,
}

fn unique_replays(graph: &TraceStore, g_ids: &[u32], by_launch: HashMap<u32, Vec<u32>>) -> Replays {
    let mut unique: HashMap<Vec<u32>, Vec<u32>> = HashMap::new(); // seq -> launches
    let mut launch_kernels: HashMap<u32, Vec<u32>> = HashMap::new();
    for (l, mut ks) in by_launch {
        ks.sort_by_key(|&k| graph.kernels.ts_ns[k as usize]);
        let seq: Vec<u32> = ks
            .iter()
            .map(|&k| g_ids[graph.kernels.name[k as usize] as usize])
            .collect();
        unique.entry(seq).or_default().push(l);
        launch_kernels.insert(l, ks);
    }
    Replays {
        unique,
        launch_kernels,
    }
}

/// Best eager step for a replay sequence: most shared kernels (multiset), then closest length.
fn best_step(seq: &[u32], steps: &EagerSteps) -> Option<usize> {
    let seq_counts = multiset(seq);
    (0..steps.seqs.len()).max_by_key(|&i| {
        let common: u32 = seq_counts
            .iter()
            .map(|(k, &c)| c.min(*steps.counts[i].get(k).unwrap_or(&0)))
            .sum();
        (
            common,
            std::cmp::Reverse((steps.seqs[i].len() as i64 - seq.len() as i64).unsigned_abs()),
        )
    })
}

/// [`align`], in windows of the eager sequence when one table would exceed [`MAX_CELLS`].
fn align_bounded(seq: &[u32], eseq: &[u32], fam: &[u16]) -> Vec<(usize, usize, bool)> {
    if seq.len() * eseq.len() <= MAX_CELLS {
        return align(seq, eseq, fam);
    }
    let mut out = Vec::new();
    let chunk = (MAX_CELLS / seq.len().max(1)).max(1);
    let mut start_e = 0;
    let mut start_g = 0;
    while start_g < seq.len() && start_e < eseq.len() {
        let g_end = (start_g + chunk / 2).min(seq.len());
        let e_end = (start_e + chunk).min(eseq.len());
        let p = align(&seq[start_g..g_end], &eseq[start_e..e_end], fam);
        let last = p.last().copied();
        out.extend(p.into_iter().map(|(i, j, x)| (i + start_g, j + start_e, x)));
        match last {
            Some((_, j, _)) => start_e += j + 1,
            None => start_e = e_end,
        }
        start_g = g_end;
    }
    out
}

/// Give every replayed kernel the attribution of the eager kernel its sequence aligned to.
fn attribute_aligned(
    replays: &Replays,
    steps: &EagerSteps,
    family: &[u16],
    attrs: &mut EagerAttributions,
    per_kernel: &mut [Option<TwinAttribution>],
) {
    for (seq, launches) in &replays.unique {
        let Some(best) = best_step(seq, steps) else {
            continue;
        };
        let pairs = align_bounded(seq, &steps.seqs[best], family);
        let matched = pairs.len() as f32 / seq.len().max(1) as f32;
        for &l in launches {
            let ks = &replays.launch_kernels[&l];
            for &(i, j, exact) in &pairs {
                let ek = steps.kernels[best][j];
                per_kernel[ks[i] as usize] = Some(TwinAttribution {
                    eager_kernel: ek,
                    attribution: attrs.of(ek),
                    quality: if exact {
                        MatchQuality::Exact
                    } else {
                        MatchQuality::Family
                    },
                    sequence_match: matched,
                });
            }
        }
    }
}

/// Name-only fallback for kernels the alignment missed: the first eager kernel with the
/// same canonical name.
fn attribute_by_name(
    graph: &TraceStore,
    eager: &TraceStore,
    ids: (&[u32], &[u32]),
    replays: &Replays,
    attrs: &mut EagerAttributions,
    per_kernel: &mut [Option<TwinAttribution>],
) {
    let (g_ids, e_ids) = ids;
    let mut by_name: HashMap<u32, u32> = HashMap::new(); // canon id -> first eager kernel with that name
    for k in 0..eager.kernels.len() {
        by_name
            .entry(e_ids[eager.kernels.name[k] as usize])
            .or_insert(k as u32);
    }
    for launches in replays.unique.values() {
        for &l in launches {
            for &k in &replays.launch_kernels[&l] {
                let slot = &mut per_kernel[k as usize];
                if slot.is_some() {
                    continue;
                }
                if let Some(&ek) = by_name.get(&g_ids[graph.kernels.name[k as usize] as usize]) {
                    *slot = Some(TwinAttribution {
                        eager_kernel: ek,
                        attribution: attrs.of(ek),
                        quality: MatchQuality::NameOnly,
                        sequence_match: 0.0,
                    });
                }
            }
        }
    }
}

/// Count the outcome per quality and write the summary's rates and note.
fn finish_summary(summary: &mut GraphMapSummary, per_kernel: &[Option<TwinAttribution>]) {
    for t in per_kernel.iter().flatten() {
        match t.quality {
            MatchQuality::Exact => summary.aligned_exact += 1,
            MatchQuality::Family => summary.aligned_family += 1,
            MatchQuality::NameOnly => summary.name_only += 1,
        }
    }
    summary.unattributed =
        summary.graph_kernels - summary.aligned_exact - summary.aligned_family - summary.name_only;
    summary.match_rate = (summary.aligned_exact + summary.aligned_family) as f64
        / summary.graph_kernels.max(1) as f64;
    summary.note = format!(
        "{} graph launches ({} distinct replay sequences) aligned against {} eager steps: {:.1}% of {} graph kernels aligned ({} same name, {} same family), {} by name only, {} without a twin",
        summary.graph_launches,
        summary.unique_graphs,
        summary.eager_steps,
        100.0 * summary.match_rate,
        summary.graph_kernels,
        summary.aligned_exact,
        summary.aligned_family,
        summary.name_only,
        summary.unattributed
    );
}

/// Map graph-replayed kernels of `graph` to their eager twins in `eager`.
pub fn map_graph_kernels(
    graph: &TraceStore,
    eager: &TraceStore,
    classifier: &Classifier,
) -> GraphMap {
    let mut vocab = Vocab {
        ids: HashMap::new(),
        family: Vec::new(),
    };
    let g_ids = vocab.map_store(graph, classifier);
    let e_ids = vocab.map_store(eager, classifier);
    let mut summary = GraphMapSummary::default();
    let mut per_kernel: Vec<Option<TwinAttribution>> = vec![None; graph.kernels.len()];

    let by_launch = replays_by_launch(graph);
    summary.graph_launches = by_launch.len();
    summary.graph_kernels = by_launch.values().map(|v| v.len()).sum();
    if by_launch.is_empty() {
        summary.note = "no CUDA-graph replays in the trace".into();
        return GraphMap {
            per_kernel,
            summary,
        };
    }

    let steps = eager_steps(eager, &e_ids);
    summary.eager_steps = steps.kernels.len();
    let mut attrs = EagerAttributions::new(eager);
    let replays = unique_replays(graph, &g_ids, by_launch);
    summary.unique_graphs = replays.unique.len();
    attribute_aligned(&replays, &steps, &vocab.family, &mut attrs, &mut per_kernel);
    attribute_by_name(
        graph,
        eager,
        (&g_ids, &e_ids),
        &replays,
        &mut attrs,
        &mut per_kernel,
    );
    finish_summary(&mut summary, &per_kernel);
    GraphMap {
        per_kernel,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_prefers_exact_then_family() {
        // a: [1,2,3], b: [1,9,2,4,3] with 4 same family as 3
        let fam = vec![0u16, 1, 2, 3, 3, 5, 6, 7, 8, 9];
        let p = align(&[1, 2, 3], &[1, 9, 2, 4, 3], &fam);
        assert_eq!(p, vec![(0, 0, true), (1, 2, true), (2, 4, true)]);
        let p = align(&[1, 3], &[1, 4], &fam);
        assert_eq!(p, vec![(0, 0, true), (1, 1, false)]);
    }
}
