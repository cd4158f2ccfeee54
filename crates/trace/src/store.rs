//! The compact, columnar trace store that one streaming pass fills (see `reader`).
//!
//! Shared with the layer-pipeline crate: `STORE_API.md` beside this crate describes it.
//! Times are integer nanoseconds on the trace's own clock (Kineto `ts` µs × 1000, exact
//! to the 3 decimals Kineto writes); add [`TraceMeta::base_time_ns`] for wall-clock time.
//! Every table is sorted once after parsing and carries derived links (kernel → launch,
//! launch → enclosing CPU op and Python frame, CPU-op nesting, Python parents).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;
use std::path::PathBuf;

/// Index of an interned string in [`Interner`].
pub(crate) type NameId = u32;
/// "No link" value for every `u32` index column.
pub const NONE: u32 = u32::MAX;
/// Longest Python frame chain walked from a frame to its outermost parent (a guard against
/// parent-id cycles in malformed traces).
pub(crate) const MAX_FRAME_CHAIN: usize = 256;

/// Small fast hasher for interning (FxHash-style); names are not attacker-chosen keys
/// whose collisions matter for security, only for speed.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().unwrap()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;
pub(crate) type FxHashMap<K, V> = HashMap<K, V, FxBuild>;

/// Interned strings: every event name, category-free. `get(id)` is O(1).
#[derive(Default, Debug)]
pub struct Interner {
    map: FxHashMap<Box<[u8]>, NameId>,
    strings: Vec<Box<str>>,
}

impl Interner {
    pub fn intern(&mut self, s: &str) -> NameId {
        if let Some(&id) = self.map.get(s.as_bytes()) {
            return id;
        }
        let id = self.strings.len() as NameId;
        self.strings.push(s.into());
        self.map.insert(s.as_bytes().into(), id);
        id
    }
    /// Intern raw bytes; UTF-8 is validated only when the string is new. None if invalid.
    #[inline]
    pub fn intern_bytes(&mut self, b: &[u8]) -> Option<NameId> {
        if let Some(&id) = self.map.get(b) {
            return Some(id);
        }
        let s = std::str::from_utf8(b).ok()?;
        Some(self.intern(s))
    }
    /// The string for an id; `""` for [`NONE`].
    pub fn get(&self, id: NameId) -> &str {
        if id == NONE {
            ""
        } else {
            &self.strings[id as usize]
        }
    }
    pub fn lookup(&self, s: &str) -> Option<NameId> {
        self.map.get(s.as_bytes()).copied()
    }
    pub fn len(&self) -> usize {
        self.strings.len()
    }
    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }
}

/// Trace-level metadata from the top-level object.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct TraceMeta {
    /// `baseTimeNanoseconds`: add to `ts_ns` values for Unix-epoch nanoseconds.
    pub base_time_ns: Option<i64>,
    /// `displayTimeUnit` (`"ms"` or `"ns"`); display only: `ts`/`dur` are always µs in the JSON.
    pub display_time_unit: Option<String>,
    pub schema_version: Option<i64>,
    pub trace_name: Option<String>,
    /// `distributedInfo.rank` / `world_size` when present.
    pub rank: Option<i64>,
    pub world_size: Option<i64>,
    /// GPU names from `deviceProperties[].name`.
    pub devices: Vec<String>,
    /// Whether `with_stack` / `record_shapes` were on (top-level flags Kineto writes).
    pub with_stack: Option<bool>,
    pub record_shapes: Option<bool>,
}

/// A (pid, tid) pair. Non-numeric pids/tids (e.g. `"Spans"`) get negative numbers and
/// keep their text in `pid_text` / `tid_text`.
#[derive(Debug, Clone, Default)]
pub struct ThreadInfo {
    pub pid: i64,
    pub tid: i64,
    pub pid_text: Option<String>,
    pub tid_text: Option<String>,
    /// From `M` `thread_name` events.
    pub thread_name: Option<String>,
}

/// The span columns every timed table shares (`name`, `ts_ns`, `dur_ns`, `thread`): `len` /
/// `is_empty` (the row count is the length of the `name` column; every column holds one value
/// per row) and `push_span`, which the reader calls before pushing the table's own columns.
macro_rules! span_columns {
    ($t:ty) => {
        impl $t {
            pub fn len(&self) -> usize {
                self.name.len()
            }
            pub fn is_empty(&self) -> bool {
                self.name.is_empty()
            }
            #[inline]
            pub(crate) fn push_span(&mut self, name: NameId, ts_ns: i64, dur_ns: i64, thread: u32) {
                self.name.push(name);
                self.ts_ns.push(ts_ns);
                self.dur_ns.push(dur_ns);
                self.thread.push(thread);
            }
        }
    };
}

/// What a GPU activity row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[repr(u8)]
pub enum GpuKind {
    Kernel = 0,
    Memcpy = 1,
    Memset = 2,
}

/// GPU activities (cat `kernel`, `gpu_memcpy`, `gpu_memset`), sorted by `ts_ns` (stable).
#[derive(Debug, Default)]
pub struct Kernels {
    pub name: Vec<NameId>,
    pub ts_ns: Vec<i64>,
    pub dur_ns: Vec<i64>,
    /// Kineto GPU pid (the device index for CUDA) and tid (the stream for CUDA).
    pub thread: Vec<u32>,
    /// `args.device`, -1 when absent.
    pub device: Vec<i32>,
    /// `args.stream`, -1 when absent.
    pub stream: Vec<i64>,
    /// `args.correlation`, -1 when absent: links to [`Launches`].
    pub correlation: Vec<i64>,
    /// `args["External id"]`, -1 when absent.
    pub external_id: Vec<i64>,
    pub kind: Vec<GpuKind>,
    /// `args.grid` / `args.block` ([0,0,0] when absent, e.g. memcpy).
    pub grid: Vec<[u32; 3]>,
    pub block: Vec<[u32; 3]>,
    /// Derived: index into [`Launches`] with the same correlation, or [`NONE`].
    pub launch: Vec<u32>,
}

span_columns!(Kernels);

impl Kernels {
    pub fn end_ns(&self, i: usize) -> i64 {
        self.ts_ns[i] + self.dur_ns[i]
    }
}

/// CPU operators (cat `cpu_op`), sorted by (thread, ts asc, dur desc) so an enclosing
/// op precedes the ops it contains. `thread_ranges[t]` is thread t's slice.
#[derive(Debug, Default)]
pub struct CpuOps {
    pub name: Vec<NameId>,
    pub ts_ns: Vec<i64>,
    pub dur_ns: Vec<i64>,
    pub thread: Vec<u32>,
    pub external_id: Vec<i64>,
    /// Interned raw JSON of `args["Input Dims"]` (needs `record_shapes`), or [`NONE`].
    pub input_dims: Vec<NameId>,
    /// Derived: index of the innermost enclosing CPU op on the same thread, or [`NONE`].
    pub parent: Vec<u32>,
    /// Derived: nesting depth (0 = outermost).
    pub depth: Vec<u16>,
    /// Derived: per-thread index ranges (indexed by thread index).
    pub thread_ranges: Vec<Range<u32>>,
}

span_columns!(CpuOps);

/// User annotations: CPU `user_annotation` (record_function scopes: vLLM
/// `execute_context_0(0)_generation_64(64)`, `execute_model_step_N`, `layers.N`) and
/// GPU `gpu_user_annotation` (the same scopes projected on a stream). Sorted by (ts, dur desc).
#[derive(Debug, Default)]
pub struct Annotations {
    pub name: Vec<NameId>,
    pub ts_ns: Vec<i64>,
    pub dur_ns: Vec<i64>,
    pub thread: Vec<u32>,
    pub external_id: Vec<i64>,
    /// true for `gpu_user_annotation` (thread = (device pid, stream tid)).
    pub on_gpu: Vec<bool>,
    /// Derived: CPU annotations ordered by (thread, ts, dur desc) (indices into the columns),
    /// their enclosing CPU annotation (column index or [`NONE`]) and per-thread ranges of
    /// `cpu_order`; used for O(log n) "innermost annotation at t" lookups.
    pub cpu_order: Vec<u32>,
    pub cpu_parent: Vec<u32>,
    pub cpu_thread_ranges: Vec<Range<u32>>,
}

span_columns!(Annotations);

/// CUDA runtime / driver API calls (cat `cuda_runtime`, `cuda_driver`): launches
/// (`cudaLaunchKernel`, `cudaLaunchKernelExC`, `cuLaunchKernel(Ex)`, `cudaGraphLaunch`, ...)
/// and other calls (syncs, memcpy). Sorted by ts.
#[derive(Debug, Default)]
pub struct Launches {
    pub name: Vec<NameId>,
    pub ts_ns: Vec<i64>,
    pub dur_ns: Vec<i64>,
    pub thread: Vec<u32>,
    pub correlation: Vec<i64>,
    pub external_id: Vec<i64>,
    pub is_driver: Vec<bool>,
    /// Derived: innermost CPU op enclosing the call (same thread; External id first), or [`NONE`].
    pub cpu_op: Vec<u32>,
    /// Derived: innermost Python frame enclosing the call (same thread), or [`NONE`].
    pub frame: Vec<u32>,
    /// Derived: innermost CPU user annotation enclosing the call (same thread), or [`NONE`].
    pub annotation: Vec<u32>,
}

span_columns!(Launches);

/// Flow events (`ph` `s`/`t`/`f`, cat `ac2g` = async CPU → GPU): in order of appearance.
#[derive(Debug, Default)]
pub struct Flows {
    pub id: Vec<i64>,
    pub ts_ns: Vec<i64>,
    pub thread: Vec<u32>,
    /// b's', b't' or b'f'.
    pub phase: Vec<u8>,
    pub cat: Vec<NameId>,
}

/// Python frames (cat `python_function`, `with_stack=True`), sorted by (thread, ts, dur desc).
#[derive(Debug, Default)]
pub struct Frames {
    /// `path(line): func` as Kineto writes it.
    pub name: Vec<NameId>,
    pub ts_ns: Vec<i64>,
    pub dur_ns: Vec<i64>,
    pub thread: Vec<u32>,
    /// `args["Python id"]` and `args["Python parent id"]` (-1 when null/absent).
    pub python_id: Vec<i64>,
    pub parent_python_id: Vec<i64>,
    /// Derived: index of the parent frame (via Python parent id), or [`NONE`].
    pub parent: Vec<u32>,
    pub thread_ranges: Vec<Range<u32>>,
}

span_columns!(Frames);

/// Event counts by kind as read (before any filtering).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct EventCounts {
    pub total: u64,
    pub kernels: u64,
    pub memcpy: u64,
    pub memset: u64,
    pub cpu_ops: u64,
    pub user_annotations: u64,
    pub gpu_user_annotations: u64,
    pub runtime: u64,
    pub driver: u64,
    pub python_functions: u64,
    pub flows: u64,
    pub metadata: u64,
    pub other: u64,
    /// Bytes of JSON text read (after decompression).
    pub json_bytes: u64,
}

/// One trace file in memory.
#[derive(Debug, Default)]
pub struct TraceStore {
    pub path: PathBuf,
    pub meta: TraceMeta,
    pub names: Interner,
    pub threads: Vec<ThreadInfo>,
    /// `M` `process_name` / `process_labels` per pid (e.g. `"GPU 0"`, `"CPU"`).
    pub process_names: Vec<(i64, String)>,
    pub process_labels: Vec<(i64, String)>,
    pub kernels: Kernels,
    pub cpu_ops: CpuOps,
    pub annotations: Annotations,
    pub launches: Launches,
    pub flows: Flows,
    pub frames: Frames,
    pub counts: EventCounts,
}

/// Names Kineto uses for graph launches.
pub fn is_graph_launch_name(name: &str) -> bool {
    name.starts_with("cudaGraphLaunch") || name.starts_with("cuGraphLaunch")
}

impl TraceStore {
    pub fn name(&self, id: NameId) -> &str {
        self.names.get(id)
    }

    /// Distinct (device, stream) pairs with GPU work, with their busy-sum ns, heaviest first.
    pub fn streams(&self) -> Vec<((i32, i64), i64)> {
        let mut m: FxHashMap<(i32, i64), i64> = FxHashMap::default();
        for i in 0..self.kernels.len() {
            *m.entry((self.kernels.device[i], self.kernels.stream[i]))
                .or_default() += self.kernels.dur_ns[i];
        }
        let mut v: Vec<_> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    /// The launch (runtime/driver call) of kernel `k`, if linked by correlation.
    pub fn kernel_launch(&self, k: usize) -> Option<usize> {
        let l = self.kernels.launch[k];
        (l != NONE).then_some(l as usize)
    }

    /// Whether kernel `k` was replayed from a CUDA graph (its launch is a graph launch).
    pub fn kernel_is_graph_replay(&self, k: usize) -> bool {
        self.kernel_launch(k)
            .map(|l| is_graph_launch_name(self.name(self.launches.name[l])))
            .unwrap_or(false)
    }

    /// The CPU op that launched kernel `k`: the launch's enclosing op, else a CPU op with
    /// the kernel's External id.
    pub fn kernel_cpu_op(&self, k: usize) -> Option<usize> {
        if let Some(l) = self.kernel_launch(k) {
            let op = self.launches.cpu_op[l];
            if op != NONE {
                return Some(op as usize);
            }
        }
        None
    }

    /// Chain of CPU ops from `op` outwards (innermost first), at most 64 long.
    pub fn cpu_op_chain(&self, op: usize) -> Vec<usize> {
        parent_chain(&self.cpu_ops.parent, op, 64)
    }

    /// Python frame chain from `frame` outwards (innermost first), via Python parent ids.
    pub fn frame_chain(&self, frame: usize) -> Vec<usize> {
        parent_chain(&self.frames.parent, frame, MAX_FRAME_CHAIN)
    }

    /// Innermost Python frame on `thread` whose [ts, ts+dur] contains `t_ns`.
    pub fn frame_at(&self, thread: u32, t_ns: i64) -> Option<usize> {
        let f = &self.frames;
        let r = f.thread_ranges.get(thread as usize)?.clone();
        // The last frame starting at or before t: sorting puts the innermost latest-started
        // frame last.
        let n = f.ts_ns[r.start as usize..r.end as usize].partition_point(|&ts| ts <= t_ns);
        if n == 0 {
            return None;
        }
        let stop = match walk_to_cover(
            r.start as usize + n - 1,
            t_ns,
            &f.ts_ns,
            &f.dur_ns,
            &f.parent,
            513,
        ) {
            Ok(i) => return Some(i),
            Err(stop) => stop,
        };
        // Frames without parent links: fall back to a short backwards scan.
        (r.start as usize..stop)
            .rev()
            .take(4096)
            .find(|&j| f.ts_ns[j] <= t_ns && f.ts_ns[j] + f.dur_ns[j] >= t_ns)
    }

    /// Innermost CPU op on `thread` whose interval contains `t_ns`.
    pub fn cpu_op_at(&self, thread: u32, t_ns: i64) -> Option<usize> {
        let c = &self.cpu_ops;
        let r = c.thread_ranges.get(thread as usize)?.clone();
        let n = c.ts_ns[r.start as usize..r.end as usize].partition_point(|&ts| ts <= t_ns);
        if n == 0 {
            return None;
        }
        walk_to_cover(
            r.start as usize + n - 1,
            t_ns,
            &c.ts_ns,
            &c.dur_ns,
            &c.parent,
            257,
        )
        .ok()
    }

    /// Innermost CPU user annotation on `thread` containing `t_ns`.
    pub fn cpu_annotation_at(&self, thread: u32, t_ns: i64) -> Option<usize> {
        let a = &self.annotations;
        let r = a.cpu_thread_ranges.get(thread as usize)?.clone();
        let order = &a.cpu_order[r.start as usize..r.end as usize];
        let n = order.partition_point(|&i| a.ts_ns[i as usize] <= t_ns);
        if n == 0 {
            return None;
        }
        let last = order[n - 1] as usize;
        walk_to_cover(last, t_ns, &a.ts_ns, &a.dur_ns, &a.cpu_parent, 256).ok()
    }
}

/// `start` and its ancestors through `parent` links (innermost first), at most `cap` long (a
/// guard against cycles in malformed traces).
fn parent_chain(parent: &[u32], start: usize, cap: usize) -> Vec<usize> {
    let mut out = vec![start];
    let mut cur = parent[start];
    while cur != NONE && out.len() < cap {
        out.push(cur as usize);
        cur = parent[cur as usize];
    }
    out
}

/// From `first` (the latest interval starting at or before `t_ns`) up the `parent` links to the
/// first interval whose end reaches `t_ns`, following at most `max_hops` links. `Err` carries
/// the interval where the walk stopped (no parent, or the hop limit): nested intervals start
/// no earlier than their parent, so the first covering ancestor is the innermost cover.
fn walk_to_cover(
    first: usize,
    t_ns: i64,
    ts_ns: &[i64],
    dur_ns: &[i64],
    parent: &[u32],
    max_hops: usize,
) -> Result<usize, usize> {
    let mut i = first;
    for hop in 0..=max_hops {
        if ts_ns[i] + dur_ns[i] >= t_ns {
            return Ok(i);
        }
        let p = parent[i];
        if p == NONE || hop == max_hops {
            return Err(i);
        }
        i = p as usize;
    }
    Err(i)
}
