//! After parsing: sort the tables and derive the links (kernel → launch by correlation,
//! launch → enclosing CPU op / Python frame / annotation, CPU-op nesting, Python parents).

use crate::store::*;
use std::cmp::Reverse;
use std::ops::Range;

/// Sort key inside one group: ts ascending, then dur descending (an enclosing interval
/// precedes the ones it contains).
type TimeKey = (i64, Reverse<i64>);
const LOWEST_KEY: TimeKey = (i64::MIN, Reverse(i64::MAX));

/// A table's stable sort order, as runs of consecutive source rows. Trace files hold long
/// already-sorted runs (one per thread switch), so applying it is mostly memcpy instead of
/// a gather per row.
struct SortedOrder {
    /// Source row ranges; concatenated they list the rows in sorted order.
    runs: Vec<Range<u32>>,
    /// Whether the rows are already in sorted order.
    identity: bool,
    /// Per group (thread index): its rows in the sorted table, `0..0` when it has none.
    group_ranges: Vec<Range<u32>>,
}

/// The stable order of rows by (group, ts asc, dur desc), ties in file order: exactly what
/// a stable `sort_by_key` gives. `groups` is the thread column and the number of threads
/// (None: one group); `dur` None sorts by ts alone.
///
/// One pass splits the rows into per-group runs; a group whose rows already come in key
/// order (the usual case: each thread's events are written in time order, threads
/// interleaved) needs no sorting at all, so the whole sort is a stable bucketing.
fn stable_order(groups: Option<(&[u32], usize)>, ts: &[i64], dur: Option<&[i64]>) -> SortedOrder {
    let n = ts.len();
    let n_groups = groups.map_or(1, |(_, n_groups)| n_groups);
    let group_of = |i: usize| groups.map_or(0, |(g, _)| g[i] as usize);
    let key = |i: usize| (ts[i], Reverse(dur.map_or(0, |d| d[i])));

    let mut group_runs: Vec<Vec<Range<u32>>> = vec![Vec::new(); n_groups];
    let mut group_sorted = vec![true; n_groups];
    let mut last_key = vec![LOWEST_KEY; n_groups];
    // Identity needs every group sorted and the groups met in ascending order, each once.
    let mut groups_ascending = true;
    let mut prev_group = 0;
    let mut i = 0;
    while i < n {
        let g = group_of(i);
        groups_ascending &= i == 0 || g > prev_group;
        prev_group = g;
        let start = i;
        let mut prev = last_key[g];
        while i < n && group_of(i) == g {
            let k = key(i);
            group_sorted[g] &= prev <= k;
            prev = k;
            i += 1;
        }
        last_key[g] = prev;
        group_runs[g].push(start as u32..i as u32);
    }
    let all_sorted = group_sorted.iter().all(|&s| s);

    // Groups out of order: sort their (key, row) pairs. The pairs start in row order and the
    // sort is stable, so equal keys keep file order.
    for (runs, _) in group_runs
        .iter_mut()
        .zip(&group_sorted)
        .filter(|(_, s)| !**s)
    {
        let mut keyed: Vec<(TimeKey, u32)> = runs
            .iter()
            .flat_map(|r| r.clone())
            .map(|row| (key(row as usize), row))
            .collect();
        keyed.sort_by_key(|&(k, _)| k);
        runs.clear();
        for (_, row) in keyed {
            match runs.last_mut() {
                Some(last) if last.end == row => last.end += 1,
                _ => runs.push(row..row + 1),
            }
        }
    }

    let mut group_ranges = vec![0..0; n_groups];
    let mut pos = 0u32;
    for (range, runs) in group_ranges.iter_mut().zip(&group_runs) {
        let len: u32 = runs.iter().map(|r| r.end - r.start).sum();
        if len > 0 {
            *range = pos..pos + len;
        }
        pos += len;
    }
    SortedOrder {
        runs: group_runs.concat(),
        identity: all_sorted && groups_ascending,
        group_ranges,
    }
}

/// Reorders `col` by `order`. `spare` is a buffer of the same type that receives the old
/// column, ready for the next one: fresh memory is the dearest part here (page faults
/// cost more than the copying), so a table's columns of one type share one spare buffer.
fn permute_with<T: Copy>(col: &mut Vec<T>, order: &SortedOrder, spare: &mut Vec<T>) {
    if order.identity || col.is_empty() {
        return;
    }
    spare.clear();
    spare.reserve(col.len());
    for r in &order.runs {
        spare.extend_from_slice(&col[r.start as usize..r.end as usize]);
    }
    std::mem::swap(col, spare);
}

/// Reorders a thread column in place: sorted, it is each thread's index over its range.
fn fill_sorted_threads(thread: &mut [u32], order: &SortedOrder) {
    if order.identity {
        return;
    }
    for (t, range) in order.group_ranges.iter().enumerate() {
        thread[range.start as usize..range.end as usize].fill(t as u32);
    }
}

fn thread_ranges(thread: &[u32], n_threads: usize) -> Vec<std::ops::Range<u32>> {
    let mut ranges = vec![0..0; n_threads];
    let mut i = 0;
    while i < thread.len() {
        let t = thread[i];
        let start = i;
        while i < thread.len() && thread[i] == t {
            i += 1;
        }
        ranges[t as usize] = start as u32..i as u32;
    }
    ranges
}

/// Nesting parents for intervals sorted by (thread, ts asc, dur desc).
fn nest(thread: &[u32], ts: &[i64], dur: &[i64]) -> (Vec<u32>, Vec<u16>) {
    let n = ts.len();
    let mut parent = vec![NONE; n];
    let mut depth = vec![0u16; n];
    let mut stack: Vec<u32> = Vec::new();
    let mut cur_thread = u32::MAX;
    for i in 0..n {
        if thread[i] != cur_thread {
            stack.clear();
            cur_thread = thread[i];
        }
        let end = ts[i] + dur[i];
        while let Some(&top) = stack.last() {
            let t = top as usize;
            if ts[t] + dur[t] >= end && ts[t] <= ts[i] {
                break;
            }
            stack.pop();
        }
        if let Some(&top) = stack.last() {
            parent[i] = top;
            depth[i] = depth[top as usize].saturating_add(1);
        }
        stack.push(i as u32);
    }
    (parent, depth)
}

/// Python frames: sort by (thread, ts, dur desc) (stable); parents by Python parent id.
fn finish_frames(f: &mut Frames, n_threads: usize) {
    let order = stable_order(Some((&f.thread, n_threads)), &f.ts_ns, Some(&f.dur_ns));
    let max_id = f.python_id.iter().copied().max().unwrap_or(-1);
    let dense_ids = max_id >= 0 && (max_id as usize) < 4 * f.len() + 1024;
    // The i64 spare buffer ends up as the id → row table of dense Python ids: sized for both.
    let by_id_len = if dense_ids { max_id as usize + 1 } else { 0 };
    let mut spare_i64: Vec<i64> = Vec::with_capacity(f.len().max(by_id_len));
    permute_with(&mut f.ts_ns, &order, &mut spare_i64);
    permute_with(&mut f.dur_ns, &order, &mut spare_i64);
    permute_with(&mut f.python_id, &order, &mut spare_i64);
    permute_with(&mut f.parent_python_id, &order, &mut spare_i64);
    let mut spare_u32: Vec<u32> = Vec::new();
    permute_with(&mut f.name, &order, &mut spare_u32);
    fill_sorted_threads(&mut f.thread, &order);
    f.thread_ranges = order.group_ranges;

    if max_id < 0 {
        // Traces without Python ids: nest by time.
        f.parent = nest(&f.thread, &f.ts_ns, &f.dur_ns).0;
        return;
    }
    let mut parent = spare_u32;
    parent.clear();
    if dense_ids {
        // Row indices kept as i64 to reuse the spare buffer; NONE survives the round trip.
        let mut by_id = spare_i64;
        by_id.clear();
        by_id.resize(by_id_len, NONE as i64);
        for (i, &pid) in f.python_id.iter().enumerate() {
            if pid >= 0 {
                by_id[pid as usize] = i as i64;
            }
        }
        parent.extend(f.parent_python_id.iter().map(|&pp| {
            if pp >= 0 && (pp as usize) < by_id.len() {
                by_id[pp as usize] as u32
            } else {
                NONE
            }
        }));
    } else {
        let mut by_id: FxHashMap<i64, u32> = FxHashMap::default();
        for (i, &pid) in f.python_id.iter().enumerate() {
            if pid >= 0 {
                by_id.insert(pid, i as u32);
            }
        }
        parent.extend(
            f.parent_python_id
                .iter()
                .map(|pp| by_id.get(pp).copied().unwrap_or(NONE)),
        );
    }
    f.parent = parent;
}

/// Kernels: by start time (stable); device/stream fallbacks from the Kineto GPU thread.
fn finish_kernels(k: &mut Kernels, threads: &[ThreadInfo]) {
    let order = stable_order(None, &k.ts_ns, None);
    let mut spare_i64 = Vec::new();
    permute_with(&mut k.ts_ns, &order, &mut spare_i64);
    permute_with(&mut k.dur_ns, &order, &mut spare_i64);
    permute_with(&mut k.stream, &order, &mut spare_i64);
    permute_with(&mut k.correlation, &order, &mut spare_i64);
    permute_with(&mut k.external_id, &order, &mut spare_i64);
    let mut spare_u32 = Vec::new();
    permute_with(&mut k.name, &order, &mut spare_u32);
    permute_with(&mut k.thread, &order, &mut spare_u32);
    let mut spare_dim3 = Vec::new();
    permute_with(&mut k.grid, &order, &mut spare_dim3);
    permute_with(&mut k.block, &order, &mut spare_dim3);
    permute_with(&mut k.device, &order, &mut Vec::new());
    permute_with(&mut k.kind, &order, &mut Vec::new());
    // Device fallback: Kineto's GPU pid is the device index.
    for i in 0..k.len() {
        if k.device[i] < 0 {
            k.device[i] = threads[k.thread[i] as usize].pid as i32;
        }
        if k.stream[i] < 0 {
            k.stream[i] = threads[k.thread[i] as usize].tid;
        }
    }
}

/// CPU ops: (thread, ts, dur desc) (stable), then nesting parents and depths.
fn finish_cpu_ops(c: &mut CpuOps, n_threads: usize) {
    let order = stable_order(Some((&c.thread, n_threads)), &c.ts_ns, Some(&c.dur_ns));
    let mut spare_i64 = Vec::new();
    permute_with(&mut c.ts_ns, &order, &mut spare_i64);
    permute_with(&mut c.dur_ns, &order, &mut spare_i64);
    permute_with(&mut c.external_id, &order, &mut spare_i64);
    let mut spare_u32 = Vec::new();
    permute_with(&mut c.name, &order, &mut spare_u32);
    permute_with(&mut c.input_dims, &order, &mut spare_u32);
    fill_sorted_threads(&mut c.thread, &order);
    let (parent, depth) = nest(&c.thread, &c.ts_ns, &c.dur_ns);
    c.parent = parent;
    c.depth = depth;
    c.thread_ranges = order.group_ranges;
}

/// Annotations: (ts, dur desc) (stable); then the CPU annotation index: (thread, ts, dur
/// desc) order with nesting parents.
fn finish_annotations(a: &mut Annotations, n_threads: usize) {
    let order = stable_order(None, &a.ts_ns, Some(&a.dur_ns));
    let mut spare_i64 = Vec::new();
    permute_with(&mut a.ts_ns, &order, &mut spare_i64);
    permute_with(&mut a.dur_ns, &order, &mut spare_i64);
    permute_with(&mut a.external_id, &order, &mut spare_i64);
    let mut spare_u32 = Vec::new();
    permute_with(&mut a.name, &order, &mut spare_u32);
    permute_with(&mut a.thread, &order, &mut spare_u32);
    permute_with(&mut a.on_gpu, &order, &mut Vec::new());

    // A few hundred rows: a plain sort is fine.
    let mut cpu_order: Vec<u32> = (0..a.len() as u32)
        .filter(|&i| !a.on_gpu[i as usize])
        .collect();
    cpu_order.sort_by_key(|&i| {
        (
            a.thread[i as usize],
            a.ts_ns[i as usize],
            Reverse(a.dur_ns[i as usize]),
        )
    });
    let th: Vec<u32> = cpu_order.iter().map(|&i| a.thread[i as usize]).collect();
    let ts: Vec<i64> = cpu_order.iter().map(|&i| a.ts_ns[i as usize]).collect();
    let du: Vec<i64> = cpu_order.iter().map(|&i| a.dur_ns[i as usize]).collect();
    let (parent_pos, _) = nest(&th, &ts, &du);
    let mut cpu_parent = vec![NONE; a.len()];
    for (pos, &i) in cpu_order.iter().enumerate() {
        let pp = parent_pos[pos];
        cpu_parent[i as usize] = if pp == NONE {
            NONE
        } else {
            cpu_order[pp as usize]
        };
    }
    a.cpu_thread_ranges = thread_ranges(&th, n_threads);
    a.cpu_order = cpu_order;
    a.cpu_parent = cpu_parent;
}

/// Launches: by ts (stable).
fn finish_launches(l: &mut Launches) {
    let order = stable_order(None, &l.ts_ns, None);
    let mut spare_i64 = Vec::new();
    permute_with(&mut l.ts_ns, &order, &mut spare_i64);
    permute_with(&mut l.dur_ns, &order, &mut spare_i64);
    permute_with(&mut l.correlation, &order, &mut spare_i64);
    permute_with(&mut l.external_id, &order, &mut spare_i64);
    let mut spare_u32 = Vec::new();
    permute_with(&mut l.name, &order, &mut spare_u32);
    permute_with(&mut l.thread, &order, &mut spare_u32);
    permute_with(&mut l.is_driver, &order, &mut Vec::new());
}

/// Kernel → launch by correlation (the last launch of a correlation wins).
fn link_kernels(k: &mut Kernels, l: &Launches) {
    let mut by_corr: FxHashMap<i64, u32> = FxHashMap::default();
    by_corr.reserve(l.len());
    for (i, &c) in l.correlation.iter().enumerate() {
        if c >= 0 {
            by_corr.insert(c, i as u32);
        }
    }
    k.launch = k
        .correlation
        .iter()
        .map(|c| by_corr.get(c).copied().unwrap_or(NONE))
        .collect();
}

/// Launch → innermost enclosing CPU op and CPU annotation (same thread).
fn link_launches_to_cpu(s: &mut TraceStore) {
    let store = &*s;
    let (cpu_op, annotation) = (0..store.launches.len())
        .map(|i| {
            let (th, t) = (store.launches.thread[i], store.launches.ts_ns[i]);
            let op = store.cpu_op_at(th, t).map_or(NONE, |op| op as u32);
            let a = store.cpu_annotation_at(th, t).map_or(NONE, |a| a as u32);
            (op, a)
        })
        .unzip();
    s.launches.cpu_op = cpu_op;
    s.launches.annotation = annotation;
}

/// Launch → innermost enclosing Python frame (same thread). The lookups are independent:
/// the two halves of a long launch table go to two threads.
fn link_launches_to_frames(s: &mut TraceStore) {
    let n = s.launches.len();
    let mut frame = vec![NONE; n];
    let store = &*s;
    let link = |first: usize, frame: &mut [u32]| {
        for (slot, i) in frame.iter_mut().zip(first..) {
            let (th, t) = (store.launches.thread[i], store.launches.ts_ns[i]);
            if let Some(fr) = store.frame_at(th, t) {
                *slot = fr as u32;
            }
        }
    };
    let mid = n / 2;
    let (frame_a, frame_b) = frame.split_at_mut(mid);
    run_pair(
        "trace-link-launches",
        n >= PARALLEL_LAUNCHES,
        || link(0, frame_a),
        || link(mid, frame_b),
    );
    s.launches.frame = frame;
}

/// Runs `on_helper` on a second thread while `on_this` runs here; both here, one after
/// the other, when `parallel` is false or no thread can be started.
fn run_pair(
    helper_name: &str,
    parallel: bool,
    mut on_helper: impl FnMut() + Send,
    on_this: impl FnOnce(),
) {
    let mut helper_ran = false;
    std::thread::scope(|scope| {
        let task = &mut on_helper;
        let job = if parallel {
            std::thread::Builder::new()
                .name(helper_name.into())
                .spawn_scoped(scope, task)
                .ok()
        } else {
            None
        };
        helper_ran = job.is_some();
        on_this();
        if let Some(job) = job
            && let Err(panic) = job.join()
        {
            std::panic::resume_unwind(panic);
        }
    });
    if !helper_ran {
        on_helper();
    }
}

/// Frames at least this many get sorted on a second thread while the other tables are.
const PARALLEL_FRAMES: usize = 100_000;
/// Launches at least this many get linked to frames by two threads (below, starting a
/// thread on a busy machine can cost more than it saves).
const PARALLEL_LAUNCHES: usize = 16_384;

/// Sorts every table and derives the links; called once after parsing.
pub(crate) fn finish(s: &mut TraceStore) {
    let n_threads = s.threads.len();
    // The frames (the biggest table of with_stack traces) do not depend on the other
    // tables: they are finished on a second thread meanwhile, taken out of the store so
    // that this thread can use the store's lookups on the other tables.
    let mut frames = std::mem::take(&mut s.frames);
    run_pair(
        "trace-link-frames",
        frames.len() >= PARALLEL_FRAMES,
        || finish_frames(&mut frames, n_threads),
        || {
            finish_kernels(&mut s.kernels, &s.threads);
            finish_cpu_ops(&mut s.cpu_ops, n_threads);
            finish_annotations(&mut s.annotations, n_threads);
            finish_launches(&mut s.launches);
            link_kernels(&mut s.kernels, &s.launches);
            link_launches_to_cpu(s);
        },
    );
    s.frames = frames;
    link_launches_to_frames(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small deterministic pseudo-random numbers (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
        }
    }

    /// `stable_order` must give exactly the order of a stable sort of the row indices, for
    /// tables in time order per thread (the fast path), out of order, with many equal keys.
    #[test]
    fn stable_order_matches_a_stable_sort() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for case in 0..300u64 {
            let n = rng.below(200) as usize;
            let n_threads = 1 + rng.below(4) as usize;
            let sorted_per_thread = case % 3 != 0;
            let thread: Vec<u32> = (0..n).map(|_| rng.below(n_threads as u64) as u32).collect();
            let mut ts: Vec<i64> = (0..n).map(|_| rng.below(20) as i64).collect();
            let dur: Vec<i64> = (0..n).map(|_| rng.below(4) as i64).collect();
            if sorted_per_thread {
                ts.sort();
            }
            for (groups, with_dur) in [(true, true), (false, true), (false, false)] {
                let key = |i: usize| {
                    let t = if groups { thread[i] } else { 0 };
                    let d = if with_dur { dur[i] } else { 0 };
                    (t, ts[i], Reverse(d))
                };
                let mut expected: Vec<u32> = (0..n as u32).collect();
                expected.sort_by_key(|&i| key(i as usize));
                let order = stable_order(
                    groups.then_some((&thread[..], n_threads)),
                    &ts,
                    with_dur.then_some(&dur[..]),
                );
                let rows: Vec<u32> = order.runs.iter().flat_map(|r| r.clone()).collect();
                assert_eq!(rows, expected, "case {case} groups {groups} dur {with_dur}");
                let identity = expected.iter().enumerate().all(|(i, &r)| i as u32 == r);
                assert_eq!(order.identity, identity);
                if groups {
                    let sorted_threads: Vec<u32> =
                        expected.iter().map(|&i| thread[i as usize]).collect();
                    assert_eq!(
                        order.group_ranges,
                        thread_ranges(&sorted_threads, n_threads)
                    );
                    let mut filled = thread.clone();
                    permute_with(&mut filled, &order, &mut Vec::new());
                    assert_eq!(filled, sorted_threads);
                    let mut in_place = thread.clone();
                    fill_sorted_threads(&mut in_place, &order);
                    assert_eq!(in_place, sorted_threads);
                }
            }
        }
    }
}
