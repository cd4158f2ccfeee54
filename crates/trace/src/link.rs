//! After parsing: sort the tables and derive the links (kernel → launch by correlation,
//! launch → enclosing CPU op / Python frame / annotation, CPU-op nesting, Python parents).

use crate::store::*;

fn permute<T: Copy>(v: &mut Vec<T>, perm: &[u32]) {
    if v.is_empty() {
        return;
    }
    let out: Vec<T> = perm.iter().map(|&i| v[i as usize]).collect();
    *v = out;
}

fn is_identity(perm: &[u32]) -> bool {
    perm.iter().enumerate().all(|(i, &p)| i as u32 == p)
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

/// Python frames: sort by (thread, ts, dur desc); parents by Python parent id.
fn finish_frames(f: &mut Frames, n_threads: usize) {
    let key = |i: usize| (f.thread[i], f.ts_ns[i], std::cmp::Reverse(f.dur_ns[i]));
    let sorted = (1..f.len()).all(|i| key(i - 1) <= key(i));
    let mut perm: Vec<u32> = if sorted {
        Vec::new()
    } else {
        (0..f.len() as u32).collect()
    };
    // Stable: ties keep file order (see the CPU ops above).
    perm.sort_by_key(|&i| {
        (
            f.thread[i as usize],
            f.ts_ns[i as usize],
            std::cmp::Reverse(f.dur_ns[i as usize]),
        )
    });
    if !sorted && !is_identity(&perm) {
        permute(&mut f.name, &perm);
        permute(&mut f.ts_ns, &perm);
        permute(&mut f.dur_ns, &perm);
        permute(&mut f.thread, &perm);
        permute(&mut f.python_id, &perm);
        permute(&mut f.parent_python_id, &perm);
    }
    drop(perm);
    let max_id = f.python_id.iter().copied().max().unwrap_or(-1);
    let mut parent = vec![NONE; f.len()];
    if max_id >= 0 && (max_id as usize) < 4 * f.len() + 1024 {
        let mut by_id = vec![NONE; max_id as usize + 1];
        for (i, &pid) in f.python_id.iter().enumerate() {
            if pid >= 0 {
                by_id[pid as usize] = i as u32;
            }
        }
        for (slot, &pp) in parent.iter_mut().zip(&f.parent_python_id) {
            if pp >= 0 && (pp as usize) < by_id.len() {
                *slot = by_id[pp as usize];
            }
        }
    } else {
        let mut by_id: FxHashMap<i64, u32> = FxHashMap::default();
        for (i, &pid) in f.python_id.iter().enumerate() {
            if pid >= 0 {
                by_id.insert(pid, i as u32);
            }
        }
        for (slot, pp) in parent.iter_mut().zip(&f.parent_python_id) {
            if let Some(&p) = by_id.get(pp) {
                *slot = p;
            }
        }
    }
    // Traces without Python ids: nest by time.
    if f.python_id.iter().all(|&p| p < 0) && !f.is_empty() {
        parent = nest(&f.thread, &f.ts_ns, &f.dur_ns).0;
    }
    f.parent = parent;
    f.thread_ranges = thread_ranges(&f.thread, n_threads);
}

/// Frames at least this many get sorted on a second thread while the other tables are.
const PARALLEL_FRAMES: usize = 100_000;

pub fn finish(s: &mut TraceStore) {
    let n_threads = s.threads.len();
    // The frames (the biggest table of with_stack traces) do not depend on the other
    // tables: they are sorted on a second thread meanwhile.
    let big_frames = s.frames.len() >= PARALLEL_FRAMES;
    let mut frames_done = false;
    std::thread::scope(|scope| {
        let frames = &mut s.frames;
        let job = if big_frames {
            std::thread::Builder::new()
                .name("trace-link-frames".into())
                .spawn_scoped(scope, move || finish_frames(frames, n_threads))
                .ok()
        } else {
            None
        };
        frames_done = job.is_some();

        // Kernels: by start time (stable).
        {
            let k = &mut s.kernels;
            let sorted = k.ts_ns.is_sorted();
            let mut perm: Vec<u32> = if sorted {
                Vec::new()
            } else {
                (0..k.len() as u32).collect()
            };
            perm.sort_by_key(|&i| k.ts_ns[i as usize]);
            if !sorted && !is_identity(&perm) {
                permute(&mut k.name, &perm);
                permute(&mut k.ts_ns, &perm);
                permute(&mut k.dur_ns, &perm);
                permute(&mut k.thread, &perm);
                permute(&mut k.device, &perm);
                permute(&mut k.stream, &perm);
                permute(&mut k.correlation, &perm);
                permute(&mut k.external_id, &perm);
                permute(&mut k.kind, &perm);
                permute(&mut k.grid, &perm);
                permute(&mut k.block, &perm);
            }
            // Device fallback: Kineto's GPU pid is the device index.
            for i in 0..k.len() {
                if k.device[i] < 0 {
                    k.device[i] = s.threads[k.thread[i] as usize].pid as i32;
                }
                if k.stream[i] < 0 {
                    k.stream[i] = s.threads[k.thread[i] as usize].tid;
                }
            }
        }

        // CPU ops: (thread, ts, dur desc).
        {
            let c = &mut s.cpu_ops;
            let mut perm: Vec<u32> = (0..c.len() as u32).collect();
            // Stable sort (ties keep file order): it merges the long sorted runs trace files
            // already have instead of partitioning, several times faster than an unstable sort.
            perm.sort_by_key(|&i| {
                (
                    c.thread[i as usize],
                    c.ts_ns[i as usize],
                    std::cmp::Reverse(c.dur_ns[i as usize]),
                )
            });
            if !is_identity(&perm) {
                permute(&mut c.name, &perm);
                permute(&mut c.ts_ns, &perm);
                permute(&mut c.dur_ns, &perm);
                permute(&mut c.thread, &perm);
                permute(&mut c.external_id, &perm);
                permute(&mut c.input_dims, &perm);
            }
            let (parent, depth) = nest(&c.thread, &c.ts_ns, &c.dur_ns);
            c.parent = parent;
            c.depth = depth;
            c.thread_ranges = thread_ranges(&c.thread, n_threads);
        }

        // Annotations: (ts, dur desc).
        {
            let a = &mut s.annotations;
            let mut perm: Vec<u32> = (0..a.len() as u32).collect();
            perm.sort_by_key(|&i| (a.ts_ns[i as usize], std::cmp::Reverse(a.dur_ns[i as usize])));
            if !is_identity(&perm) {
                permute(&mut a.name, &perm);
                permute(&mut a.ts_ns, &perm);
                permute(&mut a.dur_ns, &perm);
                permute(&mut a.thread, &perm);
                permute(&mut a.external_id, &perm);
                permute(&mut a.on_gpu, &perm);
            }
        }

        // CPU annotation index: (thread, ts, dur desc) order with nesting parents.
        {
            let a = &mut s.annotations;
            let mut order: Vec<u32> = (0..a.len() as u32)
                .filter(|&i| !a.on_gpu[i as usize])
                .collect();
            order.sort_by_key(|&i| {
                (
                    a.thread[i as usize],
                    a.ts_ns[i as usize],
                    std::cmp::Reverse(a.dur_ns[i as usize]),
                )
            });
            let th: Vec<u32> = order.iter().map(|&i| a.thread[i as usize]).collect();
            let ts: Vec<i64> = order.iter().map(|&i| a.ts_ns[i as usize]).collect();
            let du: Vec<i64> = order.iter().map(|&i| a.dur_ns[i as usize]).collect();
            let (parent_pos, _) = nest(&th, &ts, &du);
            let mut cpu_parent = vec![NONE; a.len()];
            for (pos, &i) in order.iter().enumerate() {
                let pp = parent_pos[pos];
                cpu_parent[i as usize] = if pp == NONE { NONE } else { order[pp as usize] };
            }
            a.cpu_thread_ranges = thread_ranges(&th, n_threads);
            a.cpu_order = order;
            a.cpu_parent = cpu_parent;
        }

        // Launches: by ts; then their CPU op, frame and annotation.
        {
            let l = &mut s.launches;
            let mut perm: Vec<u32> = (0..l.len() as u32).collect();
            perm.sort_by_key(|&i| l.ts_ns[i as usize]);
            if !is_identity(&perm) {
                permute(&mut l.name, &perm);
                permute(&mut l.ts_ns, &perm);
                permute(&mut l.dur_ns, &perm);
                permute(&mut l.thread, &perm);
                permute(&mut l.correlation, &perm);
                permute(&mut l.external_id, &perm);
                permute(&mut l.is_driver, &perm);
            }
        }
        if let Some(job) = job
            && let Err(panic) = job.join()
        {
            std::panic::resume_unwind(panic);
        }
    });
    if !frames_done {
        finish_frames(&mut s.frames, n_threads);
    }

    let n_l = s.launches.len();
    let mut cpu_op = vec![NONE; n_l];
    let mut frame = vec![NONE; n_l];
    let mut annotation = vec![NONE; n_l];
    for i in 0..n_l {
        let th = s.launches.thread[i];
        let t = s.launches.ts_ns[i];
        if let Some(op) = s.cpu_op_at(th, t) {
            cpu_op[i] = op as u32;
        }
        if let Some(fr) = s.frame_at(th, t) {
            frame[i] = fr as u32;
        }
        if let Some(a) = s.cpu_annotation_at(th, t) {
            annotation[i] = a as u32;
        }
    }
    s.launches.cpu_op = cpu_op;
    s.launches.frame = frame;
    s.launches.annotation = annotation;

    // Kernel → launch by correlation.
    let mut by_corr: FxHashMap<i64, u32> = FxHashMap::default();
    by_corr.reserve(n_l);
    for i in 0..n_l {
        let c = s.launches.correlation[i];
        if c >= 0 {
            by_corr.insert(c, i as u32);
        }
    }
    s.kernels.launch = s
        .kernels
        .correlation
        .iter()
        .map(|c| by_corr.get(c).copied().unwrap_or(NONE))
        .collect();
}
