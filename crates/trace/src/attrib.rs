//! Kernel → correlation → runtime launch → enclosing CPU op → Python frame chain
//! (via Python parent ids), and the choice of the most informative source location.

use crate::store::*;
use serde::Serialize;
use std::sync::Arc;

/// How a kernel was attributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// Its own launch call, with an enclosing CPU op.
    Launch,
    /// Replayed from a CUDA graph: the CPU side is only `cudaGraphLaunch`.
    GraphLaunch,
    /// No launch event with its correlation.
    Unlinked,
}

#[derive(Debug, Clone, Serialize)]
pub struct Attribution {
    /// Innermost CPU op enclosing the launch (name), if any.
    pub cpu_op: Option<String>,
    /// Outermost-to-innermost CPU op names (up to 4, the innermost last).
    pub cpu_op_chain: Vec<String>,
    /// Best Python source location, `repo/path.py:LINE func`.
    pub location: Option<String>,
    /// Last 4 informative frames, outermost first, joined by ` -> `.
    pub stack: Option<String>,
    /// Innermost enclosing CPU user annotation (e.g. `layers.3`, `execute_model_step_2`).
    pub annotation: Option<String>,
    /// The launch call name (`cudaLaunchKernel`, `cudaGraphLaunch`, ...).
    pub launch: Option<String>,
    pub via: Via,
}

impl Attribution {
    /// A kernel without a launch event.
    pub fn unlinked() -> Self {
        Attribution {
            cpu_op: None,
            cpu_op_chain: vec![],
            location: None,
            stack: None,
            annotation: None,
            launch: None,
            via: Via::Unlinked,
        }
    }
}

/// Attribute one kernel of `s` (index out of range → unlinked).
pub fn attribute_kernel(s: &TraceStore, k: usize) -> Attribution {
    match s.kernels.launch.get(k) {
        Some(&l) if l != NONE => attribute_launch(s, l as usize),
        _ => Attribution::unlinked(),
    }
}

/// Per-store cache of frame priorities and normalized names (by frame-name id).
#[derive(Default)]
pub(crate) struct FrameCache {
    info: FxHashMap<NameId, (i32, Arc<str>)>,
}

impl FrameCache {
    fn entry(&mut self, s: &TraceStore, name: NameId) -> &(i32, Arc<str>) {
        self.info.entry(name).or_insert_with(|| {
            let raw = s.name(name);
            (frame_priority(raw), Arc::from(normalize_frame(raw)))
        })
    }
    fn get(&mut self, s: &TraceStore, name: NameId) -> (i32, Arc<str>) {
        self.entry(s, name).clone()
    }
}

/// Attribute a launch call (shared by all kernels of one graph replay).
pub(crate) fn attribute_launch(s: &TraceStore, l: usize) -> Attribution {
    attribute_launch_cached(s, l, &mut FrameCache::default())
}

/// [`attribute_launch`] with a frame cache shared across calls on the same store.
pub(crate) fn attribute_launch_cached(
    s: &TraceStore,
    l: usize,
    cache: &mut FrameCache,
) -> Attribution {
    let launch_name = s.name(s.launches.name[l]).to_string();
    let via = if is_graph_launch_name(&launch_name) {
        Via::GraphLaunch
    } else {
        Via::Launch
    };
    let op = s.launches.cpu_op[l];
    let (cpu_op, cpu_op_chain) = if op != NONE {
        let chain = s.cpu_op_chain(op as usize);
        let names: Vec<String> = chain
            .iter()
            .take(4)
            .rev()
            .map(|&i| s.name(s.cpu_ops.name[i]).to_string())
            .collect();
        (Some(s.name(s.cpu_ops.name[op as usize]).to_string()), names)
    } else {
        (None, vec![])
    };
    let fr = s.launches.frame[l];
    let (location, stack) = if fr != NONE {
        best_location_cached(s, fr as usize, cache)
    } else {
        (None, None)
    };
    let ann = s.launches.annotation[l];
    let annotation = (ann != NONE).then(|| s.name(s.annotations.name[ann as usize]).to_string());
    Attribution {
        cpu_op,
        cpu_op_chain,
        location,
        stack,
        annotation,
        launch: Some(launch_name),
        via,
    }
}

/// The parts of a launch's attribution that per-kernel tallies use, borrowed from the store:
/// no CPU-op chain and no stack text, so it costs a fraction of [`attribute_launch_cached`]
/// on traces where every kernel has its own launch. Fields agree with that function's.
pub(crate) struct LaunchSite<'s> {
    pub via: Via,
    /// The launch call name.
    pub launch: &'s str,
    /// Innermost CPU op enclosing the launch.
    pub cpu_op: Option<&'s str>,
    /// [`Attribution::location`].
    pub location: Option<Arc<str>>,
    /// Innermost enclosing CPU user annotation.
    pub annotation: Option<&'s str>,
}

/// [`LaunchSite`] of launch `l`, with a frame cache shared across calls on the same store.
pub(crate) fn launch_site_cached<'s>(
    s: &'s TraceStore,
    l: usize,
    cache: &mut FrameCache,
) -> LaunchSite<'s> {
    let launch = s.name(s.launches.name[l]);
    let via = if is_graph_launch_name(launch) {
        Via::GraphLaunch
    } else {
        Via::Launch
    };
    let op = s.launches.cpu_op[l];
    let fr = s.launches.frame[l];
    let ann = s.launches.annotation[l];
    LaunchSite {
        via,
        launch,
        cpu_op: (op != NONE).then(|| s.name(s.cpu_ops.name[op as usize])),
        location: (fr != NONE).then(|| best_location_only(s, fr as usize, cache)),
        annotation: (ann != NONE).then(|| s.name(s.annotations.name[ann as usize])),
    }
}

/// Whether a frame of priority `p`, met walking outward, becomes the chain's location:
/// informative frames only (`p > 0`), a strictly higher priority (ties go to the innermost).
fn outranks(p: i32, best: Option<i32>) -> bool {
    p > 0 && best.is_none_or(|bp| p > bp)
}

/// The location half of [`best_location_cached`] without building the stack: the
/// highest-priority frame of the chain (ties to the innermost), else the innermost frame.
fn best_location_only(s: &TraceStore, innermost: usize, cache: &mut FrameCache) -> Arc<str> {
    // Same walk and length cap as `TraceStore::frame_chain`, without collecting it.
    let mut best: Option<(i32, NameId)> = None;
    let mut cur = innermost as u32;
    let mut walked = 0;
    while cur != NONE && walked < MAX_FRAME_CHAIN {
        let name = s.frames.name[cur as usize];
        let p = cache.entry(s, name).0;
        if outranks(p, best.map(|(bp, _)| bp)) {
            best = Some((p, name));
        }
        walked += 1;
        cur = s.frames.parent[cur as usize];
    }
    let name = best.map_or(s.frames.name[innermost], |(_, n)| n);
    cache.entry(s, name).1.clone()
}

const MARKERS: &[(&str, &str)] = &[
    ("python/sglang/", "python/sglang/"),
    ("sgl_kernel/", "sgl_kernel/"),
    ("vllm/", "vllm/"),
    ("python/tokenspeed/", "python/tokenspeed/"),
    ("tokenspeed/", "tokenspeed/"),
    ("tensorrt_llm/", "tensorrt_llm/"),
    ("tensorrt-llm/", "tensorrt_llm/"),
    ("sglang/", "python/sglang/"),
    ("transformers/", "transformers/"),
    ("torch/", "torch/"),
    ("triton/", "triton/"),
];

/// `PATH(LINE): FUNC` → `repo/relative/path.py:LINE FUNC`. The path is cut at the LAST
/// occurrence of a known package marker (so `/workspace/vllm/vllm/x.py` → `vllm/x.py`).
pub(crate) fn normalize_frame(raw: &str) -> String {
    let (path, rest) = match raw.find("): ") {
        Some(i) => match raw[..i].rfind('(') {
            Some(p) => (&raw[..p], Some((&raw[p + 1..i], &raw[i + 3..]))),
            None => (raw, None),
        },
        None => (raw, None),
    };
    let path = path.replace('\\', "/");
    // Framework markers win over library markers; within a group the last occurrence wins.
    let groups: [&[(&str, &str)]; 2] = [&MARKERS[..8], &MARKERS[8..]];
    let mut rel: Option<String> = None;
    for group in groups {
        let mut best: Option<(usize, &str, usize)> = None;
        for (m, repl) in group {
            if let Some(pos) = last_segment_match(&path, m)
                && best.map(|(bp, _, _)| pos > bp).unwrap_or(true)
            {
                best = Some((pos, repl, m.len()));
            }
        }
        if let Some((pos, repl, len)) = best {
            rel = Some(format!("{repl}{}", &path[pos + len..]));
            break;
        }
    }
    let rel = rel.unwrap_or_else(|| path.trim_start_matches('/').to_string());
    match rest {
        Some((line, func)) => format!("{rel}:{line} {func}"),
        None => rel,
    }
}

/// Last position where `m` starts a path segment.
fn last_segment_match(path: &str, m: &str) -> Option<usize> {
    let mut found = None;
    let mut search = 0;
    while let Some(off) = path[search..].find(m) {
        let pos = search + off;
        if pos == 0 || path.as_bytes()[pos - 1] == b'/' {
            found = Some(pos);
        }
        search = pos + 1;
    }
    found
}

fn is_low_signal(norm: &str, raw: &str) -> bool {
    const LOW: &[&str] = &[
        "__torch_function__",
        "__torch_dispatch__",
        "__call__",
        "_call_impl",
        "_wrapped_call_impl",
        "model_executor/parameter.py:",
        "model_executor/cuda_graph_runner.py:",
        "compilation/cuda_graph.py:",
        "pyexecutor/cuda_graph_runner.py:",
        "pyexecutor/py_executor.py:",
        "_torch/utils.py:",
        "torch/fx/graph_module.py:",
    ];
    LOW.iter().any(|p| norm.contains(p) || raw.contains(p))
}

/// Priority of a frame as a source location (higher is better).
pub(crate) fn frame_priority(raw: &str) -> i32 {
    const NOISE: &[&str] = &[
        "threading.py(",
        "multiprocessing/",
        "contextlib.py(",
        "torch/utils/_contextlib.py(",
        "runpy.py(",
        "asyncio/",
        "selectors.py(",
        "queue.py(",
        "socket.py(",
        "<string>(",
        "<built-in method ",
    ];
    if raw.starts_with("<built-in") || NOISE.iter().any(|n| raw.contains(n)) {
        return -20;
    }
    let norm = normalize_frame(raw);
    let low = if is_low_signal(&norm, raw) { 80 } else { 0 };
    let base = if norm.starts_with("python/sglang/") {
        300
    } else if norm.starts_with("vllm/") {
        285
    } else if norm.starts_with("python/tokenspeed/") || norm.starts_with("tokenspeed/") {
        283
    } else if norm.starts_with("tensorrt_llm/") {
        280
    } else if norm.starts_with("sgl_kernel/") {
        260
    } else if norm.starts_with("triton/runtime/")
        || norm.starts_with("triton/backends/")
        || norm.starts_with("torch/_ops.py")
        || norm.starts_with("torch/nn/modules/module.py")
    {
        0
    } else if norm.starts_with("transformers/") {
        150
    } else if norm.starts_with("torch/") || raw.contains("site-packages") {
        40
    } else if raw.contains(".py(") {
        120
    } else {
        0
    };
    base - low
}

/// Best location and a short stack from a frame chain (innermost frame index).
pub(crate) fn best_location_cached(
    s: &TraceStore,
    innermost: usize,
    cache: &mut FrameCache,
) -> (Option<String>, Option<String>) {
    let chain = s.frame_chain(innermost);
    let infos: Vec<(i32, Arc<str>)> = chain
        .iter()
        .map(|&f| cache.get(s, s.frames.name[f]))
        .collect();
    let mut best: Option<(i32, usize)> = None;
    for (pos, (p, _)) in infos.iter().enumerate() {
        if outranks(*p, best.map(|(bp, _)| bp)) {
            best = Some((*p, pos));
        }
    }
    let first = infos.first().map(|x| x.1.to_string());
    let loc = best.map(|(_, pos)| infos[pos].1.to_string());
    let informative: Vec<&str> = infos
        .iter()
        .filter(|x| x.0 > 0)
        .take(4)
        .map(|x| &*x.1)
        .collect();
    let stack = if informative.is_empty() {
        first.clone()
    } else {
        Some(
            informative
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join(" -> "),
        )
    };
    (loc.or(first), stack)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_normalize_at_the_last_framework_marker() {
        assert_eq!(
            normalize_frame("/workspace/vllm/vllm/model_executor/layers/linear.py(123): forward"),
            "vllm/model_executor/layers/linear.py:123 forward"
        );
        assert_eq!(
            normalize_frame("/usr/lib/python3/site-packages/torch/nn/functional.py(10): linear"),
            "torch/nn/functional.py:10 linear"
        );
        assert_eq!(
            normalize_frame("traces.py(132): <module>"),
            "traces.py:132 <module>"
        );
    }

    #[test]
    fn framework_frames_outrank_torch_and_noise() {
        assert!(
            frame_priority("/x/vllm/model_executor/layers/linear.py(1): forward")
                > frame_priority("/x/site-packages/torch/nn/functional.py(1): linear")
        );
        assert!(frame_priority("threading.py(1): run") < 0);
        assert!(
            frame_priority("/x/vllm/compilation/cuda_graph.py(1): __call__")
                < frame_priority("/x/vllm/v1/worker/gpu_model_runner.py(1): execute_model")
        );
    }
}
