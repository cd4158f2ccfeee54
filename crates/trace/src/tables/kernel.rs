//! The kernel table: per canonical kernel name, GPU time, calls, share, and the launching
//! CPU op, Python location and annotation weighted by GPU time.

use super::*;

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
    /// Kernel launches on SMs (GPU activities of kind kernel): memcpy and memset are
    /// counted apart, in `memcpy_count` / `memset_count` (their time is in the rows).
    pub kernel_count: u64,
    pub memcpy_count: u64,
    pub memset_count: u64,
    pub rows: Vec<KernelRow>,
    pub families: Vec<FamilyRow>,
    pub share_cutoff_pct: f64,
    pub hidden_rows: usize,
    pub hidden_share_pct: f64,
    /// Kernels replayed from CUDA graphs and how they were attributed.
    pub graph_note: Option<String>,
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

/// One kernel-table row being accumulated: a canonical kernel name's calls and time, its
/// graph replays and their eager-twin match quality, and its launch-site label tallies.
struct RowAcc {
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

impl RowAcc {
    fn new(name: String) -> Self {
        RowAcc {
            name,
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
        }
    }
}

/// The rows of a stage (unsorted) with their labels tallied, and the strings of the labels.
struct Accumulated {
    accs: Vec<RowAcc>,
    strings: Interner,
}

/// One pass over the stage's kernels: each canonical name's calls and time, and the weight
/// of each launch site (its own, or its eager twin's for a graph replay) per row; then each
/// row's CPU-op, location and annotation tallies from those weights.
fn accumulate(sk: &StageKernels<'_>, graph_map: Option<&GraphMap>) -> Accumulated {
    let s = sk.store;
    let mut accs: Vec<RowAcc> = Vec::new();
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
    for &k in &sk.kernels {
        let nid = s.kernels.name[k as usize];
        let mut idx = row_of_name[nid as usize];
        if idx == NONE {
            let c = canonical_name(s.name(nid));
            let n = by_canon.len();
            idx = *by_canon.entry(c).or_insert_with_key(|c| {
                accs.push(RowAcc::new(c.clone()));
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
    tally_labels(&mut accs, &strings, &sites, &site_weight);
    Accumulated { accs, strings }
}

/// Per (row, label) weights from the site weights, then each row's heaviest label.
fn tally_labels(
    accs: &mut [RowAcc],
    strings: &Interner,
    sites: &[SiteIds],
    site_weight: &FxHashMap<(u32, u32), i64>,
) {
    let mut op_weight: FxHashMap<(u32, u32), i64> = FxHashMap::default();
    let mut loc_weight: FxHashMap<(u32, u32), i64> = FxHashMap::default();
    let mut ann_weight: FxHashMap<(u32, u32), i64> = FxHashMap::default();
    for (&(row, site), &w) in site_weight {
        let site = sites[site as usize];
        *op_weight.entry((row, site.op)).or_default() += w;
        *loc_weight.entry((row, site.location)).or_default() += w;
        if site.annotation != NONE {
            *ann_weight.entry((row, site.annotation)).or_default() += w;
        }
    }
    for (&(row, label), &w) in &op_weight {
        accs[row as usize].ops.add(strings, label, w);
    }
    for (&(row, label), &w) in &loc_weight {
        accs[row as usize].locs.add(strings, label, w);
    }
    for (&(row, label), &w) in &ann_weight {
        accs[row as usize].anns.add(strings, label, w);
    }
}

/// The table row of an accumulated kernel name with its family, share and cumulative share.
fn kernel_row(
    a: &RowAcc,
    strings: &Interner,
    family: String,
    share: f64,
    cum: f64,
    mapped: bool,
) -> KernelRow {
    let matched = a.q_exact + a.q_family + a.q_name;
    // A graph row is attributed through its eager twin only when most of its graph
    // calls found one; otherwise its op and location are mostly the graph launch's.
    let attribution = if a.graph_calls > 0 {
        if matched > 0 && 2 * matched >= a.graph_calls {
            "graph_twin"
        } else {
            "graph_unattributed"
        }
    } else if a.unlinked == a.calls {
        "unlinked"
    } else {
        "launch"
    };
    let match_quality = (a.graph_calls > 0 && mapped).then(|| {
        let g = a.graph_calls.max(1) as f64;
        format!(
            "{:.0}% exact, {:.0}% family, {:.0}% name-only, {:.0}% without an eager twin",
            100.0 * a.q_exact as f64 / g,
            100.0 * a.q_family as f64 / g,
            100.0 * a.q_name as f64 / g,
            100.0 * (a.graph_calls - matched) as f64 / g
        )
    });
    let location = match a.locs.get(strings) {
        Some((l, w, n)) if n > 1 => format!("{l} (site share {:.0}%)", 100.0 * w),
        Some((l, _, _)) => l,
        None => "unresolved".into(),
    };
    KernelRow {
        family,
        kernel: short_name(&a.name),
        full_name: a.name.clone(),
        calls: a.calls,
        total_ms: a.total as f64 / 1e6,
        avg_us: a.total as f64 / 1e3 / a.calls.max(1) as f64,
        share_pct: share,
        cumulative_pct: cum,
        cpu_op: a
            .ops
            .get(strings)
            .map(|x| x.0)
            .unwrap_or_else(|| "-".into()),
        location,
        annotation: a.anns.get(strings).map(|(top, _, n)| {
            if n > 1 {
                format!("{top} (+{} more)", n - 1)
            } else {
                top
            }
        }),
        graph_replayed_calls: a.graph_calls,
        attribution: attribution.into(),
        match_quality,
    }
}

/// Family rows (calls, time, share of the stage), heaviest first.
fn family_rows(fam_acc: FxHashMap<String, (u64, i64)>, total: i64) -> Vec<FamilyRow> {
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
    families
}

/// What the table says about CUDA-graph replays, when the stage has any.
fn graph_note(
    graph_calls: u64,
    kernel_calls: usize,
    graph_map: Option<&GraphMap>,
) -> Option<String> {
    (graph_calls > 0).then(|| match graph_map {
        Some(m) => format!(
            "{graph_calls} of {kernel_calls} kernel calls were replayed from CUDA graphs; their CPU op and source come from the eager mapping trace: {}",
            m.summary.note
        ),
        None => format!(
            "{graph_calls} of {kernel_calls} kernel calls were replayed from CUDA graphs (attribution `graph_unattributed`): their CPU side is only `cudaGraphLaunch`, so the CPU op and Python location shown are the graph launch's. Pass a mapping trace of the same workload without CUDA graphs to attribute them."
        ),
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
    let Accumulated { mut accs, strings } = accumulate(sk, graph_map);
    let total = sk.total_ns();
    accs.sort_by(|a, b| b.total.cmp(&a.total).then(a.name.cmp(&b.name)));
    let mut rows = Vec::new();
    let mut cum = 0.0;
    let mut hidden_rows = 0;
    let mut hidden_share = 0.0;
    let mut fam_acc: FxHashMap<String, (u64, i64)> = FxHashMap::default();
    for a in &accs {
        let fam = classifier
            .family_by_index(sk.family_index(classifier, &a.name))
            .name
            .clone();
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
        rows.push(kernel_row(
            a,
            &strings,
            fam,
            share,
            cum,
            graph_map.is_some(),
        ));
    }
    let graph_calls: u64 = accs.iter().map(|a| a.graph_calls).sum();
    let count = |kind: GpuKind| {
        sk.kernels
            .iter()
            .filter(|&&i| s.kernels.kind[i as usize] == kind)
            .count() as u64
    };
    KernelTable {
        total_gpu_ms: total as f64 / 1e6,
        kernel_count: count(GpuKind::Kernel),
        memcpy_count: count(GpuKind::Memcpy),
        memset_count: count(GpuKind::Memset),
        rows,
        families: family_rows(fam_acc, total),
        share_cutoff_pct: cutoff_pct,
        hidden_rows,
        hidden_share_pct: hidden_share,
        graph_note: graph_note(graph_calls, sk.kernels.len(), graph_map),
    }
}
