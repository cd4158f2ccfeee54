//! The slice of a trace the layer pipeline needs, independent of how it was parsed.
//!
//! [`TraceView`] is filled from the trace store (`vllm_sota_trace`, see
//! [`crate::source`]) or built by hand in tests; every algorithm in this crate reads
//! only this type, so the segmentation logic is testable on small synthetic inputs.

use std::collections::HashMap;

/// One GPU kernel (or memcpy/memset) execution.
#[derive(Debug, Clone, PartialEq)]
pub struct Kernel {
    /// Index into [`TraceView::names`].
    pub name: u32,
    /// Start, nanoseconds on the trace clock (Kineto `ts` × 1000).
    pub ts_ns: i64,
    pub dur_ns: i64,
    pub pid: i64,
    pub stream: i64,
    /// The CUDA runtime call that launched it, when known.
    pub launch: Option<Launch>,
    /// Shapes of the launching CPU op ([`TraceView::shapes`] index), when recorded (`record_shapes=True`).
    pub shapes: Option<u32>,
    /// Identity of the launching CPU op instance (kernels of one op share it).
    pub op_instance: Option<u64>,
    /// True for `gpu_memcpy` / `gpu_memset` rows (not counted as compute kernels in hot lists).
    pub is_memory_op: bool,
}

impl Kernel {
    pub fn end_ns(&self) -> i64 {
        self.ts_ns + self.dur_ns
    }
}

/// Where a named span came from: decides how kernels are attributed to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// `gpu_user_annotation`: a window on the GPU timeline (kernels inside by time).
    GpuAnnotation,
    /// `user_annotation` (`record_function`) on a CPU thread: kernels by launch time.
    CpuAnnotation,
    /// `python_function` named `nn.Module: <Class>_<k>` (with_stack / with_modules).
    PythonModule,
}

/// A named interval (annotation or module scope).
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub name: String,
    pub kind: SpanKind,
    pub ts_ns: i64,
    pub dur_ns: i64,
    /// CPU thread (pid, tid) for CPU spans; (device, stream) for GPU annotations.
    pub pid: i64,
    pub tid: i64,
}

impl Span {
    pub fn end_ns(&self) -> i64 {
        self.ts_ns + self.dur_ns
    }
}

/// A CUDA runtime/driver launch call (`cudaLaunchKernel`, `cudaGraphLaunch`, ...).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Launch {
    pub ts_ns: i64,
    pub pid: i64,
    pub tid: i64,
    pub is_graph_launch: bool,
}

/// A GPU-idle interval inside an engine step during which the host held the next
/// launch back, with what held it: the trace crate's attribution
/// (`vllm_sota_trace::hoststall`), copied so the analysis can place it in a layer.
#[derive(Debug, Clone, PartialEq)]
pub struct HostStallAt {
    pub start_ns: i64,
    pub dur_ns: i64,
    /// A CPU op name, `python: <frame>`, a blocking CUDA call, or `unknown`.
    pub held_by: String,
    /// `cpu_op`, `synchronization`, `python` or `unknown`.
    pub kind: String,
}

/// Shapes of the CPU op that launched a kernel (`record_shapes=True`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OpShapes {
    /// e.g. `aten::mm`
    pub op: String,
    /// `args["Input Dims"]`: one list per input, empty for scalars/None.
    pub input_dims: Vec<Vec<i64>>,
    /// `args["Input type"]`: e.g. `c10::BFloat16` (empty when the source does not carry it).
    pub input_types: Vec<String>,
}

/// Everything the layer pipeline reads from one trace file.
#[derive(Debug, Clone, Default)]
pub struct TraceView {
    /// Path of the trace (for messages).
    pub path: String,
    /// `baseTimeNanoseconds` (Kineto): unix time of `ts == 0`, when present.
    pub base_time_ns: Option<i64>,
    /// `displayTimeUnit` of the file, when present (`ms` or `ns`).
    pub display_time_unit: Option<String>,
    /// Smallest `ts` over timed events (where Perfetto's timeline starts), ns.
    pub trace_start_ns: i64,
    /// Largest `ts + dur` over timed events, ns.
    pub trace_end_ns: i64,
    /// Interned kernel names.
    pub names: Vec<String>,
    /// GPU work on the chosen GPU pid, sorted by `ts_us`.
    pub kernels: Vec<Kernel>,
    /// Annotations and module scopes.
    pub spans: Vec<Span>,
    /// Distinct launching-op shapes ([`Kernel::shapes`] indexes this).
    pub shapes: Vec<OpShapes>,
    /// Host stalls found by the trace crate, sorted by start (empty without step annotations).
    pub host_stalls: Vec<HostStallAt>,
    /// Family of each name, computed once on first use (the classifier runs regexes).
    pub name_families: std::sync::OnceLock<Vec<crate::families::Family>>,
}

impl TraceView {
    pub fn name(&self, k: &Kernel) -> &str {
        &self.names[k.name as usize]
    }

    /// Sort kernels by start time (stable on ties) and spans by start.
    pub fn normalize(&mut self) {
        self.kernels.sort_by_key(|k| k.ts_ns);
        self.spans.sort_by_key(|s| s.ts_ns);
        self.host_stalls.sort_by_key(|h| h.start_ns);
    }

    /// Intern a name (test and adapter helper).
    pub fn intern(&mut self, name: &str, index: &mut HashMap<String, u32>) -> u32 {
        if let Some(&i) = index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_string());
        index.insert(name.to_string(), i);
        i
    }

    /// Family of a kernel (classified once per distinct name).
    pub fn family(&self, k: &Kernel) -> crate::families::Family {
        self.name_family(k.name)
    }

    /// Family of a kernel name (index into [`TraceView::names`]): the one the source set
    /// (the trace crate's per-stage family, launch context included), else by name.
    pub fn name_family(&self, name: u32) -> crate::families::Family {
        self.name_families.get_or_init(|| {
            self.names
                .iter()
                .map(|n| crate::families::classify(n))
                .collect()
        })[name as usize]
    }

    /// Shapes of the op that launched `k`, when known.
    pub fn shapes_of(&self, k: &Kernel) -> Option<&OpShapes> {
        k.shapes.and_then(|i| self.shapes.get(i as usize))
    }
}

/// A small builder used by tests and synthetic benches (times in µs for readability).
#[derive(Default)]
pub struct ViewBuilder {
    pub view: TraceView,
    index: HashMap<String, u32>,
}

pub(crate) fn us(x: f64) -> i64 {
    (x * 1000.0).round() as i64
}

impl ViewBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a kernel on stream 7 (pid 0) launched from CPU thread (1, 1) at `ts − 5 µs`.
    pub fn kernel(&mut self, name: &str, ts_us: f64, dur_us: f64) -> usize {
        let id = self.view.intern(name, &mut self.index);
        self.view.kernels.push(Kernel {
            name: id,
            ts_ns: us(ts_us),
            dur_ns: us(dur_us),
            pid: 0,
            stream: 7,
            launch: Some(Launch {
                ts_ns: us(ts_us - 5.0),
                pid: 1,
                tid: 1,
                is_graph_launch: false,
            }),
            shapes: None,
            op_instance: None,
            is_memory_op: false,
        });
        self.view.kernels.len() - 1
    }

    /// Add a host stall: the GPU idles from `start_us` for `dur_us` while `held_by` holds the host.
    pub fn host_stall(&mut self, held_by: &str, start_us: f64, dur_us: f64) {
        self.view.host_stalls.push(HostStallAt {
            start_ns: us(start_us),
            dur_ns: us(dur_us),
            held_by: held_by.to_string(),
            kind: "cpu_op".into(),
        });
    }

    pub fn span(&mut self, name: &str, kind: SpanKind, ts_us: f64, dur_us: f64) {
        let (pid, tid) = if kind == SpanKind::GpuAnnotation {
            (0, 7)
        } else {
            (1, 1)
        };
        self.view.spans.push(Span {
            name: name.to_string(),
            kind,
            ts_ns: us(ts_us),
            dur_ns: us(dur_us),
            pid,
            tid,
        });
    }

    pub fn finish(mut self) -> TraceView {
        self.view.normalize();
        let start = self
            .view
            .kernels
            .iter()
            .map(|k| k.ts_ns)
            .chain(self.view.spans.iter().map(|s| s.ts_ns))
            .min();
        let end = self
            .view
            .kernels
            .iter()
            .map(|k| k.end_ns())
            .chain(self.view.spans.iter().map(|s| s.end_ns()))
            .max();
        self.view.trace_start_ns = start.unwrap_or(0);
        self.view.trace_end_ns = end.unwrap_or(0);
        self.view
    }
}
