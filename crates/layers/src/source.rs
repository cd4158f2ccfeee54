//! Fill a [`TraceView`] from the trace store (`vllm_sota_trace`): one streaming parse
//! per file, then only the columns the layer pipeline reads are copied.
//!
//! What the store does not carry and how it is worked around:
//! - the trace-wide earliest timestamp (Perfetto's timeline origin; instant events such
//!   as Kineto's `Iteration Start` are not stored): the minimum over the stored tables;
//! - the launching op's `Input type` (dtype): the roofline assumes the request's dtype.

use crate::families::Family;
use crate::model::{HostStallAt, Kernel, Launch, OpShapes, Span, SpanKind, TraceView};
use crate::roofline::parse_input_dims;
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use vllm_sota_trace::{
    GpuKind, NONE, Stage, StageKernels, TraceStore, canonical_name, host_stalls,
    is_graph_launch_name, select_traces,
};

/// Read one trace file into a view.
pub fn load(path: &Path) -> Result<TraceView> {
    let store = vllm_sota_trace::read_trace(path)
        .with_context(|| format!("cannot read trace {}", path.display()))?;
    Ok(from_store(&store))
}

/// Pick the trace file to analyze with the trace crate's discovery (API-server
/// `async_llm` traces skipped, stage directories, multi-rank sets): the chosen trace of
/// the requested stage when the path holds several stages, rank 0 (smallest) first.
pub fn pick_trace_file(path: &Path, stage: &str) -> Result<PathBuf> {
    let sel = select_traces(path)?;
    let mut chosen = sel.chosen;
    if chosen.is_empty() {
        let why = sel
            .skipped
            .iter()
            .take(5)
            .map(|s| format!("{} ({})", s.path.display(), s.reason))
            .collect::<Vec<_>>()
            .join("; ");
        anyhow::bail!(
            "no usable trace under {}{}",
            path.display(),
            if why.is_empty() {
                String::new()
            } else {
                format!(": skipped {why}")
            }
        );
    }
    let want = match stage.to_ascii_lowercase().as_str() {
        "prefill" | "extend" => Some(Stage::Prefill),
        "decode" => Some(Stage::Decode),
        _ => None,
    };
    if let Some(w) = want
        && chosen.iter().any(|c| c.stage == w)
    {
        chosen.retain(|c| c.stage == w);
    }
    chosen.sort_by_key(|c| c.rank.unwrap_or(u32::MAX));
    Ok(chosen.swap_remove(0).path)
}

/// Copy the columns the analysis needs out of a store.
pub(crate) fn from_store(s: &TraceStore) -> TraceView {
    let mut v = TraceView {
        path: s.path.display().to_string(),
        base_time_ns: s.meta.base_time_ns,
        display_time_unit: s.meta.display_time_unit.clone(),
        ..Default::default()
    };
    let thread = |t: u32| thread_of(s, t);

    (v.trace_start_ns, v.trace_end_ns) = trace_bounds(s);

    // The GPU process with the most kernel time (Kineto: GPU pid = device).
    let mut per_pid: HashMap<i64, i64> = HashMap::new();
    for k in 0..s.kernels.len() {
        *per_pid.entry(thread(s.kernels.thread[k]).0).or_default() += s.kernels.dur_ns[k];
    }
    let gpu_pid = per_pid
        .iter()
        .max_by_key(|(p, d)| (**d, std::cmp::Reverse(**p)))
        .map(|(p, _)| *p);

    let mut name_ids: HashMap<u32, u32> = HashMap::new();
    let mut shape_ids: HashMap<(u32, u32), u32> = HashMap::new();
    for k in 0..s.kernels.len() {
        let (pid, _) = thread(s.kernels.thread[k]);
        if Some(pid) != gpu_pid {
            continue;
        }
        let store_name = s.kernels.name[k];
        let name = *name_ids.entry(store_name).or_insert_with(|| {
            v.names.push(s.name(store_name).to_string());
            (v.names.len() - 1) as u32
        });
        let launch = s.kernel_launch(k).map(|l| {
            let (lp, lt) = thread(s.launches.thread[l]);
            Launch {
                ts_ns: s.launches.ts_ns[l],
                pid: lp,
                tid: lt,
                is_graph_launch: is_graph_launch_name(s.name(s.launches.name[l])),
            }
        });
        let op = s.kernel_cpu_op(k);
        let shapes = op.and_then(|op| {
            let dims = s.cpu_ops.input_dims[op];
            if dims == NONE {
                return None;
            }
            let key = (s.cpu_ops.name[op], dims);
            if let Some(&i) = shape_ids.get(&key) {
                return Some(i);
            }
            let input_dims = parse_input_dims(s.name(dims))?;
            v.shapes.push(OpShapes {
                op: s.name(key.0).to_string(),
                input_dims,
                input_types: vec![],
            });
            let i = (v.shapes.len() - 1) as u32;
            shape_ids.insert(key, i);
            Some(i)
        });
        v.kernels.push(Kernel {
            name,
            ts_ns: s.kernels.ts_ns[k],
            dur_ns: s.kernels.dur_ns[k],
            pid,
            stream: s.kernels.stream[k],
            launch,
            shapes,
            op_instance: op.map(|o| o as u64),
            is_memory_op: s.kernels.kind[k] != GpuKind::Kernel,
        });
    }
    let stage = StageKernels::heaviest_device(s);
    copy_host_stalls(&stage, &mut v);
    stage_families(&stage, &mut v);
    for a in 0..s.annotations.len() {
        let (pid, tid) = thread(s.annotations.thread[a]);
        v.spans.push(Span {
            name: s.name(s.annotations.name[a]).to_string(),
            kind: if s.annotations.on_gpu[a] {
                SpanKind::GpuAnnotation
            } else {
                SpanKind::CpuAnnotation
            },
            ts_ns: s.annotations.ts_ns[a],
            dur_ns: s.annotations.dur_ns[a],
            pid,
            tid,
        });
    }
    copy_module_scopes(s, &mut v);
    v.normalize();
    v
}

/// The trace crate's host stalls (one attribution rule for every tool), with their
/// absolute start so the analysis can place them in layers.
fn copy_host_stalls(stage: &StageKernels<'_>, v: &mut TraceView) {
    let stalls = host_stalls(stage);
    v.host_stalls = stalls
        .stalls
        .into_iter()
        .map(|st| HostStallAt {
            start_ns: st.idle_start_ns,
            dur_ns: (st.ms * 1e6).round() as i64,
            held_by: st.held_by,
            kind: st.kind,
        })
        .collect();
}

/// Each kernel name's family as profile_tables gives it: the trace crate's per-stage
/// family (a name family, or one decided by launch context such as `moe_routing`).
fn stage_families(stage: &StageKernels<'_>, v: &mut TraceView) {
    let Some(c) = crate::families::classifier() else {
        return; // the tool refuses to run then (families::ensure_classifier)
    };
    let fams = v
        .names
        .iter()
        .map(|n| {
            let i = stage.family_index(c, &canonical_name(n));
            Family::from_name(&c.family_by_index(i).name)
        })
        .collect();
    let _ = v.name_families.set(fams);
}

/// Trace bounds over every stored table (the store keeps no trace-wide minimum).
fn trace_bounds(s: &TraceStore) -> (i64, i64) {
    let mut lo = i64::MAX;
    let mut hi = i64::MIN;
    let mut see = |ts: &[i64], dur: Option<&[i64]>| {
        for (i, &t) in ts.iter().enumerate() {
            lo = lo.min(t);
            hi = hi.max(t + dur.map(|d| d[i]).unwrap_or(0));
        }
    };
    see(&s.kernels.ts_ns, Some(&s.kernels.dur_ns));
    see(&s.cpu_ops.ts_ns, Some(&s.cpu_ops.dur_ns));
    see(&s.annotations.ts_ns, Some(&s.annotations.dur_ns));
    see(&s.launches.ts_ns, Some(&s.launches.dur_ns));
    see(&s.frames.ts_ns, Some(&s.frames.dur_ns));
    see(&s.flows.ts_ns, None);
    (
        if lo == i64::MAX { 0 } else { lo },
        if hi == i64::MIN { 0 } else { hi },
    )
}

/// Module scopes from the Python frames: `nn.Module: <Class>_<k>`.
fn copy_module_scopes(s: &TraceStore, v: &mut TraceView) {
    let thread = |t: u32| thread_of(s, t);
    let prefix = crate::names::get().map(|n| n.module_scope_prefix.as_str());
    let mut is_module: HashMap<u32, bool> = HashMap::new();
    for f in 0..s.frames.len() {
        let n = s.frames.name[f];
        if !*is_module
            .entry(n)
            .or_insert_with(|| prefix.is_some_and(|p| s.name(n).starts_with(p)))
        {
            continue;
        }
        let (pid, tid) = thread(s.frames.thread[f]);
        v.spans.push(Span {
            name: s.name(n).to_string(),
            kind: SpanKind::PythonModule,
            ts_ns: s.frames.ts_ns[f],
            dur_ns: s.frames.dur_ns[f],
            pid,
            tid,
        });
    }
}

/// (pid, tid) of a stored thread index ((-1, -1) when out of range).
fn thread_of(s: &TraceStore, t: u32) -> (i64, i64) {
    s.threads
        .get(t as usize)
        .map(|th| (th.pid, th.tid))
        .unwrap_or((-1, -1))
}
