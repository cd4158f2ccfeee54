//! The overlap-opportunity table: a sweep line over the stage's kernels on all streams.

use super::*;

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
    /// Canonical full name (the kernel table's `full_name`).
    pub full_name: String,
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
    let pos = Positions::new(sk, classifier);
    let sw = sweep(sk, &pos);
    let idle = IdleSummary::new(sk, &sw.gaps);
    let (streams, per_stream) = stream_busy(sk, &pos);
    let aggs = aggregate(sk, &pos, &sw);
    let rows = overlap_rows(
        sk,
        classifier,
        graph_map,
        cutoff_pct,
        &aggs,
        &pos,
        &per_stream,
    );
    let nstreams = pos.stream_ids.len();
    let mode_note = match (nstreams, graph_map.is_some()) {
        (1, false) => "single trace, one stream: all GPU work is serial, so every non-compute kernel's time is exposed; the rows are kernels that could be hidden by fusion or a side stream. Locations for graph-replayed kernels need a mapping trace.".to_string(),
        (1, true) => "one stream: all GPU work is serial; locations come from the eager mapping trace.".to_string(),
        (n, _) => format!("{n} streams: overlap measured with a sweep line over all kernels of the device"),
    };
    let ms = |ns: i64| ns as f64 / 1e6;
    OverlapTable {
        wall_ms: ms(idle.wall),
        gpu_busy_ms: ms(sw.busy),
        busy_pct_of_wall: if idle.wall > 0 {
            100.0 * sw.busy as f64 / idle.wall as f64
        } else {
            0.0
        },
        idle_gaps: sw.gaps.len() as u64,
        idle_total_ms: ms(idle.idle),
        largest_gap_us: idle.largest as f64 / 1e3,
        median_gap_us: idle.median as f64 / 1e3,
        launch_bound: idle.launch_bound,
        streams,
        max_concurrent_streams: sw.max_conc,
        multi_stream_overlap_ms: ms(sw.multi),
        compute_ms: ms(sw.comp),
        communication_ms: ms(sw.comm),
        memory_ms: ms(sw.mem),
        compute_comm_overlap_ms: ms(sw.comp_comm),
        compute_memory_overlap_ms: ms(sw.comp_mem),
        exposed_communication_ms: ms(sw.exp_comm),
        exposed_memory_ms: ms(sw.exp_mem),
        rows,
        mode_note,
    }
}

/// A distinct kernel name of the stage, canonicalized and classified once.
struct NameClass {
    canonical: String,
    family: usize,
    class: OverlapClass,
}

/// Per kernel position (index into `sk.kernels`): its dense name and its stream slot, both
/// numbered in first appearance.
struct Positions {
    names: Vec<NameClass>,
    name_of_pos: Vec<u32>,
    streams_of: Vec<usize>,
    classes: Vec<OverlapClass>,
    stream_ids: Vec<i64>,
    stream_slot: FxHashMap<i64, usize>,
}

impl Positions {
    fn new(sk: &StageKernels<'_>, classifier: &Classifier) -> Self {
        let (s, k) = (sk.store, &sk.store.kernels);
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
                let family = sk.family_index(classifier, &canonical);
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
        let classes = name_of_pos
            .iter()
            .map(|&d| names[d as usize].class)
            .collect();
        Positions {
            names,
            name_of_pos,
            streams_of,
            classes,
            stream_ids,
            stream_slot,
        }
    }
}

/// Start and end events in (time, ends before starts, position) order: starts and ends are
/// each sorted (the store keeps kernels in start order, so that sort is a linear check) and
/// merged. Each is `(time, is_start, position)`.
fn sweep_events(sk: &StageKernels<'_>) -> Vec<(i64, bool, u32)> {
    let k = &sk.store.kernels;
    let mut starts: Vec<(i64, u32)> = Vec::with_capacity(sk.kernels.len());
    let mut ends: Vec<(i64, u32)> = Vec::with_capacity(sk.kernels.len());
    for (pos, &i) in sk.kernels.iter().enumerate() {
        starts.push((k.ts_ns[i as usize], pos as u32));
        ends.push((k.end_ns(i as usize), pos as u32));
    }
    starts.sort_unstable();
    ends.sort_unstable();
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
    ev
}

/// What the sweep line measures (nanoseconds): busy time (any stream), time with two or
/// more streams busy, time per overlap class and their overlaps, the idle gaps between busy
/// periods, and per kernel position the time it ran alone (exclusive) or beside another
/// stream's work (hidden).
#[derive(Default)]
struct Sweep {
    busy: i64,
    multi: i64,
    comp: i64,
    comm: i64,
    mem: i64,
    comp_comm: i64,
    comp_mem: i64,
    exp_comm: i64,
    exp_mem: i64,
    max_conc: u32,
    gaps: Vec<i64>,
    exclusive: Vec<i64>,
    hidden: Vec<i64>,
}

impl Sweep {
    /// Account one segment of `seg` ns during which `active_streams` streams (and the
    /// classes counted in `class_active`) were busy.
    fn segment(
        &mut self,
        seg: i64,
        active_streams: u32,
        class_active: &[u32; 5],
        active_by_stream: &[Vec<u32>],
    ) {
        self.busy += seg;
        if active_streams >= 2 {
            self.multi += seg;
        }
        let c = class_active[OverlapClass::Compute as usize] > 0;
        let m = class_active[OverlapClass::Communication as usize] > 0;
        let me = class_active[OverlapClass::Memory as usize] > 0;
        let add = |on: bool, acc: &mut i64| {
            if on {
                *acc += seg
            }
        };
        add(c, &mut self.comp);
        add(m, &mut self.comm);
        add(me, &mut self.mem);
        add(c && m, &mut self.comp_comm);
        add(c && me, &mut self.comp_mem);
        add(m && !c, &mut self.exp_comm);
        add(me && !c, &mut self.exp_mem);
        // Per segment, the kernels on a stream are exclusive iff only one stream is busy.
        for active in active_by_stream {
            for &q in active {
                if active_streams >= 2 {
                    self.hidden[q as usize] += seg;
                } else {
                    self.exclusive[q as usize] += seg;
                }
            }
        }
    }
}

/// Sweep a line over all kernels of the stage (all streams of the device).
fn sweep(sk: &StageKernels<'_>, pos: &Positions) -> Sweep {
    let nstreams = pos.stream_ids.len();
    let mut sw = Sweep {
        exclusive: vec![0; sk.kernels.len()],
        hidden: vec![0; sk.kernels.len()],
        ..Default::default()
    };
    let mut per_stream_active = vec![0u32; nstreams];
    let mut active_streams = 0u32;
    let mut class_active = [0u32; 5];
    // The positions active on each stream.
    let mut active_by_stream: Vec<Vec<u32>> = vec![Vec::new(); nstreams];
    let mut prev_t: Option<i64> = None;
    let mut last_busy_end: Option<i64> = None;
    for (t, is_start, p) in sweep_events(sk) {
        if let Some(prev) = prev_t {
            let seg = t - prev;
            if seg > 0 && active_streams > 0 {
                sw.segment(seg, active_streams, &class_active, &active_by_stream);
            }
        }
        if is_start
            && active_streams == 0
            && let Some(e) = last_busy_end
            && t > e
        {
            sw.gaps.push(t - e);
        }
        let st = pos.streams_of[p as usize];
        let cls = pos.classes[p as usize] as usize;
        if is_start {
            if per_stream_active[st] == 0 {
                active_streams += 1;
            }
            per_stream_active[st] += 1;
            class_active[cls] += 1;
            active_by_stream[st].push(p);
        } else {
            per_stream_active[st] -= 1;
            if per_stream_active[st] == 0 {
                active_streams -= 1;
            }
            class_active[cls] -= 1;
            if let Some(ix) = active_by_stream[st].iter().position(|&q| q == p) {
                active_by_stream[st].swap_remove(ix);
            }
            if active_streams == 0 {
                last_busy_end = Some(t);
            }
        }
        sw.max_conc = sw.max_conc.max(active_streams);
        prev_t = Some(t);
    }
    sw
}

/// The stage's kernel wall time and its idle gaps, summarized, with the launch-bound
/// signal in words.
struct IdleSummary {
    wall: i64,
    idle: i64,
    median: i64,
    largest: i64,
    launch_bound: String,
}

impl IdleSummary {
    fn new(sk: &StageKernels<'_>, gaps: &[i64]) -> Self {
        let k = &sk.store.kernels;
        let wall_start = sk.kernels.iter().map(|&i| k.ts_ns[i as usize]).min();
        let wall_end = sk.kernels.iter().map(|&i| k.end_ns(i as usize)).max();
        let wall = match (wall_start, wall_end) {
            (Some(st), Some(en)) => en - st,
            _ => 0,
        };
        let mut gaps = gaps.to_vec();
        gaps.sort_unstable();
        let idle: i64 = gaps.iter().sum();
        let median = if gaps.is_empty() {
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
                median as f64 / 1e3
            )
        } else if idle_pct >= 20.0 {
            format!(
                "GPU idle {idle_pct:.1}% of the kernel wall time, dominated by long gaps (largest {:.1} ms): the GPU waits on the host (see the host-stall table for what holds it inside steps)",
                largest as f64 / 1e6
            )
        } else {
            format!(
                "not launch bound: GPU idle only {idle_pct:.1}% of the kernel wall time ({} gaps)",
                gaps.len()
            )
        };
        IdleSummary {
            wall,
            idle,
            median,
            largest,
            launch_bound,
        }
    }
}

/// Busy time and kernel count per stream (busiest first), and each stream's kernels in
/// time order (for the dependency risk).
fn stream_busy(sk: &StageKernels<'_>, pos: &Positions) -> (Vec<StreamBusy>, Vec<Vec<u32>>) {
    let k = &sk.store.kernels;
    let nstreams = pos.stream_ids.len();
    let mut busy = vec![(0i64, 0u64); nstreams];
    let mut per_stream: Vec<Vec<u32>> = vec![Vec::new(); nstreams];
    for (p, &i) in sk.kernels.iter().enumerate() {
        let e = &mut busy[pos.streams_of[p]];
        e.0 += k.dur_ns[i as usize];
        e.1 += 1;
        per_stream[pos.streams_of[p]].push(i);
    }
    let mut streams: Vec<StreamBusy> = pos
        .stream_ids
        .iter()
        .zip(&busy)
        .map(|(&stream, &(b, n))| StreamBusy {
            device: sk.device,
            stream,
            busy_ms: b as f64 / 1e6,
            kernels: n,
        })
        .collect();
    streams.sort_by(|a, b| b.busy_ms.total_cmp(&a.busy_ms));
    (streams, per_stream)
}

/// One overlap row's totals: all instances of one canonical kernel name.
struct Agg {
    name: String,
    family: usize,
    class: OverlapClass,
    calls: u64,
    total: i64,
    excl: i64,
    hid: i64,
    /// The longest instance (ties keep the earliest) represents the row.
    rep: u32,
    rep_dur: i64,
}

/// One aggregate per canonical name (several raw names can share one), in first appearance.
fn aggregate(sk: &StageKernels<'_>, pos: &Positions, sw: &Sweep) -> Vec<Agg> {
    let k = &sk.store.kernels;
    let mut agg_of_name: Vec<u32> = vec![NONE; pos.names.len()];
    let mut agg_of_canonical: FxHashMap<&str, u32> = FxHashMap::default();
    let mut aggs: Vec<Agg> = Vec::new();
    for (p, &i) in sk.kernels.iter().enumerate() {
        let d = pos.name_of_pos[p] as usize;
        if agg_of_name[d] == NONE {
            let nc = &pos.names[d];
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
        a.excl += sw.exclusive[p];
        a.hid += sw.hidden[p];
        if dur > a.rep_dur {
            a.rep_dur = dur;
            a.rep = i;
        }
    }
    aggs
}

/// How tightly the kernel instance `rep` is wedged between its same-stream neighbours.
fn dependency_risk(sk: &StageKernels<'_>, rep: usize, seq: &[u32]) -> &'static str {
    let k = &sk.store.kernels;
    let p = seq.partition_point(|&x| (x as usize) < rep);
    let d = k.dur_ns[rep];
    let tight = (2_000i64).max((20_000i64).min(d * 15 / 100));
    let prev_gap = (p > 0).then(|| k.ts_ns[rep] - k.end_ns(seq[p - 1] as usize));
    let next_gap = (p + 1 < seq.len()).then(|| k.ts_ns[seq[p + 1] as usize] - k.end_ns(rep));
    let tight_sides = [prev_gap, next_gap]
        .iter()
        .filter(|g| matches!(g, Some(x) if *x <= tight))
        .count();
    match tight_sides {
        2 => "high",
        1 => "medium",
        _ => "low",
    }
}

/// The rows: non-compute work that is mostly exposed (overlap possible but absent), above
/// the cutoff, heaviest weighted exposed time first, at most ten.
fn overlap_rows(
    sk: &StageKernels<'_>,
    classifier: &Classifier,
    graph_map: Option<&GraphMap>,
    cutoff_pct: f64,
    aggs: &[Agg],
    pos: &Positions,
    per_stream: &[Vec<u32>],
) -> Vec<OverlapRow> {
    let k = &sk.store.kernels;
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
    let mut att = Attributor::new(sk.store, graph_map);
    let mut rows = Vec::new();
    for a in cands.into_iter().take(10) {
        let rep = a.rep as usize;
        let seq = &per_stream[pos.stream_slot[&k.stream[rep]]];
        let dependency_risk = dependency_risk(sk, rep, seq);
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
            full_name: a.name.clone(),
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
    rows
}
