//! Host stalls: inside an engine step, GPU idle intervals during which the launching
//! thread is busy on the CPU, attributed to the CPU op (or Python frame, or blocking CUDA
//! call) that holds the host. A fact per step (name, ms, share of the step's wall time,
//! where in the step), shared with the layer-pipeline crate through [`host_stalls`].
//!
//! Rules:
//! - Steps are the CPU step annotations ([`crate::tables::step_pattern`]); the kernels of a
//!   step are those launched (CUDA runtime/driver call) inside it, on the stage's device.
//! - Only idle intervals between the step's first kernel start and its last kernel end
//!   count: the time before the first and after the last kernel is the step boundary
//!   (scheduling, sampling, output), never a stall.
//! - The holder is the innermost CPU op on the step's thread that covers at least half of
//!   the idle interval; a blocking CUDA call (`*Synchronize`, a synchronous memcpy) that
//!   covers half of it makes the stall a synchronisation; with no such op, the innermost
//!   Python frame at the interval's middle; else `unknown`.
//! - Without step annotations no stall is reported (the boundary cannot be told apart).
//! - Python frame names lose their object addresses (` at 0x…`), so a function groups
//!   across steps.

use crate::classify::{canonical_name, short_name};
use crate::store::*;
use crate::tables::{StageKernels, step_pattern};
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;

/// An idle interval shorter than this is not a stall (launch latency is a few µs).
pub(crate) const MIN_STALL_NS: i64 = 100_000;
/// ...nor one below this share of its step's wall time.
pub(crate) const MIN_STALL_SHARE_PCT: f64 = 1.0;

/// One stall: one GPU idle interval inside one step.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct HostStall {
    /// Step index (0 = first step annotation in the window) and its annotation name.
    pub step: usize,
    pub step_name: String,
    /// What holds the host: a CPU op name, `python: <frame>`, a blocking CUDA call, or `unknown`.
    pub held_by: String,
    /// `cpu_op`, `synchronization`, `python` or `unknown`.
    pub kind: String,
    /// Length of the GPU idle interval.
    pub ms: f64,
    /// Its share of the step's wall time (the step annotation's duration).
    pub share_of_step_pct: f64,
    /// Start of the idle interval, from the step annotation's start.
    pub at_ms_in_step: f64,
    /// The kernel the GPU ran next (the one the held op launched late), and its index among
    /// the step's kernels.
    pub before_kernel: String,
    pub before_kernel_index: usize,
    pub step_kernels: usize,
    /// Start of the idle interval on the trace clock (ns), for callers that place the
    /// stall in their own structure (the layer pipeline's layers); not serialized.
    #[serde(skip)]
    #[schemars(skip)]
    pub idle_start_ns: i64,
}

/// Stalls with the same holder, summed over steps.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct HostStallGroup {
    pub held_by: String,
    pub kind: String,
    pub stalls: usize,
    /// Steps with at least one such stall, of `steps` in the window.
    pub steps_with: usize,
    pub total_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    /// Mean share of the step's wall time, over the steps where it occurs.
    pub mean_share_of_step_pct: f64,
    /// The kernel that most often ran right after it.
    pub before_kernel: String,
}

/// Host stalls of one stage.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq, Default)]
pub struct HostStalls {
    /// Step annotations found (0: no stall analysis, see `note`).
    pub steps: usize,
    pub step_pattern: Option<String>,
    /// Heaviest holder first.
    pub groups: Vec<HostStallGroup>,
    /// Every stall, in time order.
    pub stalls: Vec<HostStall>,
    pub note: String,
}

impl HostStalls {
    /// One line on the heaviest holder when it stalls most steps, for the launch-bound text.
    pub fn headline(&self) -> Option<String> {
        let g = self.groups.first()?;
        Some(format!(
            "inside the steps, `{}` holds the host while the GPU idles ({} stalls in {} of {} steps, {:.1}–{:.1} ms, {:.0}% of step wall time on average, right before `{}`)",
            g.held_by,
            g.stalls,
            g.steps_with,
            self.steps,
            g.min_ms,
            g.max_ms,
            g.mean_share_of_step_pct,
            g.before_kernel
        ))
    }
}

/// The host stalls of the stage's kernels (see the module rules).
pub fn host_stalls(sk: &StageKernels<'_>) -> HostStalls {
    let s = sk.store;
    let (steps, pattern) = step_annotations(s);
    if steps.is_empty() {
        return HostStalls {
            note: "no step annotations (vLLM `execute_context_*`, `execute_model_step_*`, `ProfilerStep#*`, SGLang `step[*]`): step boundaries cannot be told from stalls, so none is reported".into(),
            ..Default::default()
        };
    }
    let mut stalls = Vec::new();
    let mut name_cache: FxHashMap<NameId, String> = FxHashMap::default();
    for (si, &a) in steps.iter().enumerate() {
        step_stalls(sk, si, a, &mut name_cache, &mut stalls);
    }
    let groups = group(&stalls);
    HostStalls {
        steps: steps.len(),
        step_pattern: pattern,
        groups,
        stalls,
        note: format!(
            "GPU idle intervals of at least {} µs and {MIN_STALL_SHARE_PCT}% of the step inside each step (between its first kernel start and last kernel end), attributed to what the step's thread was doing",
            MIN_STALL_NS / 1000
        ),
    }
}

/// CPU step annotations of the most frequent step pattern, in time order.
fn step_annotations(s: &TraceStore) -> (Vec<usize>, Option<String>) {
    let a = &s.annotations;
    let mut by: BTreeMap<&'static str, Vec<usize>> = BTreeMap::new();
    for i in 0..a.len() {
        if a.on_gpu[i] {
            continue;
        }
        if let Some(p) = step_pattern(s.name(a.name[i])) {
            by.entry(p).or_default().push(i);
        }
    }
    match by
        .into_iter()
        .max_by_key(|(p, v)| (v.len(), std::cmp::Reverse(*p)))
    {
        Some((p, mut v)) => {
            v.sort_by_key(|&i| a.ts_ns[i]);
            (v, Some(p.to_string()))
        }
        None => (Vec::new(), None),
    }
}

fn step_stalls(
    sk: &StageKernels<'_>,
    si: usize,
    a: usize,
    names: &mut FxHashMap<NameId, String>,
    out: &mut Vec<HostStall>,
) {
    let s = sk.store;
    let (k, l, an) = (&s.kernels, &s.launches, &s.annotations);
    let (t0, t1, thread) = (an.ts_ns[a], an.ts_ns[a] + an.dur_ns[a], an.thread[a]);
    let wall = an.dur_ns[a].max(1);
    // The step's kernels: launched inside the annotation (sk.kernels is in start order).
    let mine: Vec<u32> = sk
        .kernels
        .iter()
        .copied()
        .filter(|&i| {
            let li = k.launch[i as usize];
            li != NONE && (t0..=t1).contains(&l.ts_ns[li as usize])
        })
        .collect();
    let (Some(&first), Some(_)) = (mine.first(), mine.last()) else {
        return;
    };
    let span_end = mine
        .iter()
        .map(|&i| k.end_ns(i as usize))
        .max()
        .unwrap_or(0);
    // Busy union of all the device's kernels inside the span; the idle intervals between.
    let lo = sk
        .kernels
        .partition_point(|&i| k.ts_ns[i as usize] < k.ts_ns[first as usize]);
    let mut busy_end = k.end_ns(sk.kernels[lo] as usize);
    for &i in &sk.kernels[lo + 1..] {
        let (ts, end) = (k.ts_ns[i as usize], k.end_ns(i as usize));
        if ts >= span_end {
            break;
        }
        let gap = ts - busy_end;
        if gap >= MIN_STALL_NS && 100.0 * gap as f64 / wall as f64 >= MIN_STALL_SHARE_PCT {
            let (held_by, kind) = holder(s, thread, busy_end, ts);
            let next = names
                .entry(k.name[i as usize])
                .or_insert_with(|| short_name(&canonical_name(s.name(k.name[i as usize]))))
                .clone();
            out.push(HostStall {
                step: si,
                step_name: s.name(an.name[a]).to_string(),
                held_by,
                kind: kind.into(),
                ms: gap as f64 / 1e6,
                share_of_step_pct: 100.0 * gap as f64 / wall as f64,
                at_ms_in_step: (busy_end - t0) as f64 / 1e6,
                before_kernel: next,
                before_kernel_index: mine.partition_point(|&m| k.ts_ns[m as usize] < ts),
                step_kernels: mine.len(),
                idle_start_ns: busy_end,
            });
        }
        busy_end = busy_end.max(end);
    }
}

fn overlap(a0: i64, a1: i64, b0: i64, b1: i64) -> i64 {
    (a1.min(b1) - a0.max(b0)).max(0)
}

/// What holds `thread` during the idle interval [g0, g1) (see the module rules).
fn holder(s: &TraceStore, thread: u32, g0: i64, g1: i64) -> (String, &'static str) {
    let half = (g1 - g0) / 2;
    let mid = g0 + half;
    // A blocking CUDA call on the thread covering half the interval.
    let l = &s.launches;
    // A call covering half the interval starts at most a second before it (bounded scan).
    let from = l.ts_ns.partition_point(|&t| t < g0 - 1_000_000_000);
    for i in from..l.len() {
        if l.ts_ns[i] >= g1 {
            break;
        }
        if l.thread[i] != thread {
            continue;
        }
        let name = s.name(l.name[i]);
        let blocking = name.contains("Synchronize")
            || ((name.starts_with("cudaMemcpy") || name.starts_with("cuMemcpy"))
                && !name.contains("Async"));
        if blocking && overlap(l.ts_ns[i], l.ts_ns[i] + l.dur_ns[i], g0, g1) >= half {
            return (name.to_string(), "synchronization");
        }
    }
    if let Some(op) = s.cpu_op_at(thread, mid) {
        let c = &s.cpu_ops;
        for o in s.cpu_op_chain(op) {
            if overlap(c.ts_ns[o], c.ts_ns[o] + c.dur_ns[o], g0, g1) >= half {
                return (s.name(c.name[o]).to_string(), "cpu_op");
            }
        }
    }
    if let Some(f) = s.frame_at(thread, mid) {
        let frame = without_addresses(s.name(s.frames.name[f]));
        return (format!("python: {frame}"), "python");
    }
    ("unknown".into(), "unknown")
}

/// A frame name without the object addresses Python prints (`... object at 0x7f4d04706b70>`),
/// so one function groups across steps.
fn without_addresses(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find(" at 0x") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + " at 0x".len()..];
        let hex = tail.len()
            - tail
                .trim_start_matches(|c: char| c.is_ascii_hexdigit())
                .len();
        rest = &tail[hex..];
    }
    out.push_str(rest);
    out
}

fn group(stalls: &[HostStall]) -> Vec<HostStallGroup> {
    let mut by: BTreeMap<(&str, &str), Vec<&HostStall>> = BTreeMap::new();
    for st in stalls {
        by.entry((&st.held_by, &st.kind)).or_default().push(st);
    }
    let mut groups: Vec<HostStallGroup> = by
        .into_iter()
        .map(|((held_by, kind), v)| {
            let mut steps: Vec<usize> = v.iter().map(|x| x.step).collect();
            steps.dedup();
            let mut per_step: BTreeMap<usize, f64> = BTreeMap::new();
            let mut next: BTreeMap<&str, usize> = BTreeMap::new();
            for x in &v {
                *per_step.entry(x.step).or_default() += x.share_of_step_pct;
                *next.entry(&x.before_kernel).or_default() += 1;
            }
            let before_kernel = next
                .iter()
                .max_by_key(|(n, c)| (**c, std::cmp::Reverse(**n)))
                .map(|(n, _)| n.to_string())
                .unwrap_or_default();
            HostStallGroup {
                held_by: held_by.to_string(),
                kind: kind.to_string(),
                stalls: v.len(),
                steps_with: per_step.len(),
                total_ms: v.iter().map(|x| x.ms).sum(),
                min_ms: v.iter().map(|x| x.ms).fold(f64::INFINITY, f64::min),
                max_ms: v.iter().map(|x| x.ms).fold(0.0, f64::max),
                mean_share_of_step_pct: per_step.values().sum::<f64>() / per_step.len() as f64,
                before_kernel,
            }
        })
        .collect();
    groups.sort_by(|a, b| {
        b.total_ms
            .total_cmp(&a.total_ms)
            .then(a.held_by.cmp(&b.held_by))
    });
    groups
}

/// The host-stall section of `tables.md`.
pub(crate) fn render_host_stalls_md(h: &HostStalls, top: usize) -> String {
    use vllm_sota_core::md::{Align, Table};
    let mut o =
        String::from("\n### Host stalls (GPU idle inside a step while the host is busy)\n\n");
    if h.steps == 0 {
        o.push_str(&format!("{}.\n", h.note));
        return o;
    }
    if h.groups.is_empty() {
        o.push_str(&format!(
            "None in {} steps ({}). {}.\n",
            h.steps,
            h.step_pattern.as_deref().unwrap_or("-"),
            h.note
        ));
        return o;
    }
    let mut t = Table::new(&[
        ("Held by", Align::Left),
        ("Kind", Align::Left),
        ("Stalls", Align::Right),
        ("Steps", Align::Right),
        ("Total ms", Align::Right),
        ("Min–max ms", Align::Right),
        ("Mean share of step", Align::Right),
        ("Right before", Align::Left),
    ]);
    for g in h.groups.iter().take(top) {
        t.row(&[
            g.held_by.clone(),
            g.kind.clone(),
            g.stalls.to_string(),
            format!("{}/{}", g.steps_with, h.steps),
            format!("{:.2}", g.total_ms),
            format!("{:.2}–{:.2}", g.min_ms, g.max_ms),
            format!("{:.1}%", g.mean_share_of_step_pct),
            g.before_kernel.clone(),
        ]);
    }
    o.push_str(&t.render());
    o.push_str(&format!("\n{}.\n", h.note));
    o
}
