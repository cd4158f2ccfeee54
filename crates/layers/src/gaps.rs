//! GPU-idle gaps inside a forward pass, where they fall (which layer) and what held
//! the host meanwhile. Pure: reads a [`TraceView`] only.
//!
//! Rules (stated because the tables depend on them):
//! - a gap is the time between the latest kernel end so far and the next kernel start
//!   (any stream of the chosen GPU), inside the pass;
//! - an outlier gap is at least [`GAP_FLOOR_NS`], 20 × the pass's median gap and 1 % of
//!   the pass wall time (so a launch-bound eager pass, whose every gap is long, flags only
//!   the gaps that stand out);
//! - cause: a kernel launched before the GPU went idle (or from a CUDA-graph launch) waited
//!   on the GPU side; otherwise the host was late, and what held it is the trace crate's
//!   host-stall attribution for the same idle interval (`vllm_sota_trace::hoststall`: the
//!   innermost CPU op covering half of it, a blocking CUDA call, or the Python frame);
//!   there is one attribution rule for every tool, none here.

use crate::families::short_name;
use crate::model::TraceView;
use crate::passes::Pass;
use serde::Serialize;

/// The smallest gap ever flagged (200 µs).
pub(crate) const GAP_FLOOR_NS: i64 = 200_000;
/// Gaps listed per pass (the largest first).
pub(crate) const MAX_GAPS: usize = 8;

/// Where in the pass a gap falls.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "place", rename_all = "snake_case")]
pub enum GapPlace {
    /// Inside a layer's span: the gap counts in that layer's wall time.
    InsideLayer { layer: usize },
    /// Between two consecutive layers.
    BetweenLayers { after: usize, before: usize },
    /// Before the first layer.
    PreLayer,
    /// After the last layer.
    PostLayer,
    /// No layer structure was found.
    Pass,
}

impl GapPlace {
    pub fn describe(&self) -> String {
        match self {
            GapPlace::InsideLayer { layer } => format!("inside layer {layer}"),
            GapPlace::BetweenLayers { after, before } => {
                format!("between layers {after} and {before}")
            }
            GapPlace::PreLayer => "before the first layer".into(),
            GapPlace::PostLayer => "after the last layer".into(),
            GapPlace::Pass => "in the pass".into(),
        }
    }
}

/// Why the GPU idled.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum GapCause {
    /// The next kernel was launched after the GPU went idle: the host held it back.
    HostStall {
        /// What held the host (the trace crate's attribution): a CPU op, `python: <frame>`
        /// or a blocking CUDA call; absent when no attribution covers this interval (no
        /// step annotations, or the holder is unknown).
        op: Option<String>,
        /// `cpu_op`, `synchronization` or `python` (with `op`).
        kind: Option<String>,
        /// Time from the GPU going idle to the launch call (ms).
        host_late_ms: f64,
    },
    /// The next kernel was launched before the GPU went idle (or from a CUDA-graph
    /// launch): the GPU waited on a dependency, not on the host.
    GpuSide {
        /// How long before the gap the launch call happened (ms; 0 for graph launches).
        launched_before_ms: f64,
    },
    /// The next kernel has no launch record.
    Unknown,
}

/// One outlier GPU-idle gap of the pass.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct IdleGap {
    /// Start relative to the pass start (ms).
    pub offset_ms: f64,
    pub ms: f64,
    /// `ms` over the pass wall time.
    pub share_of_pass: f64,
    pub place: GapPlace,
    /// Short names of the kernels before and after the gap.
    pub kernel_before: String,
    pub kernel_after: String,
    pub cause: GapCause,
}

impl IdleGap {
    /// One sentence: `65.1 ms GPU idle inside layer 0 (44.0% of the pass): host in aten::x (65.1 ms) before k launched`.
    pub fn describe(&self) -> String {
        let why = match &self.cause {
            GapCause::HostStall {
                op: Some(op),
                kind,
                host_late_ms,
            } => format!(
                "the host was in `{op}`{} and launched `{}` {host_late_ms:.3} ms after the GPU went idle",
                match kind.as_deref() {
                    Some("synchronization") => " (a blocking CUDA call)",
                    _ => "",
                },
                self.kernel_after
            ),
            GapCause::HostStall {
                op: None,
                host_late_ms,
                ..
            } => format!(
                "the host launched `{}` {host_late_ms:.3} ms after the GPU went idle; nothing traced covers the wait (no step annotation to attribute within, or untraced host work)",
                self.kernel_after
            ),
            GapCause::GpuSide { launched_before_ms } => format!(
                "`{}` was already launched ({launched_before_ms:.3} ms before): the GPU waited on a dependency, not on the host",
                self.kernel_after
            ),
            GapCause::Unknown => format!("`{}` has no launch record", self.kernel_after),
        };
        format!(
            "{:.3} ms GPU idle {} ({:.1}% of the pass wall, at +{:.3} ms, after `{}`): {why}",
            self.ms,
            self.place.describe(),
            self.share_of_pass * 100.0,
            self.offset_ms,
            self.kernel_before
        )
    }

    pub fn is_host_stall(&self) -> bool {
        matches!(self.cause, GapCause::HostStall { .. })
    }
}

fn ms(ns: i64) -> f64 {
    ns as f64 / 1e6
}

/// Outlier GPU-idle gaps of `pass` (largest first, at most [`MAX_GAPS`]); `layer_spans`
/// are the layers' (start, end) in order (empty without layer structure).
pub(crate) fn outlier_gaps(
    view: &TraceView,
    pass: &Pass,
    layer_spans: &[(i64, i64)],
) -> Vec<IdleGap> {
    let mut order = pass.kernels.clone();
    order.sort_by_key(|&k| (view.kernels[k].ts_ns, k));
    let Some(&first) = order.first() else {
        return vec![];
    };
    // (gap start, gap end, kernel ending at the start, kernel starting at the end)
    let mut raw: Vec<(i64, i64, usize, usize)> = vec![];
    let mut frontier = (view.kernels[first].end_ns(), first);
    for &k in &order[1..] {
        let kern = &view.kernels[k];
        if kern.ts_ns > frontier.0 {
            raw.push((frontier.0, kern.ts_ns, frontier.1, k));
        }
        if kern.end_ns() > frontier.0 {
            frontier = (kern.end_ns(), k);
        }
    }
    // The median over every kernel boundary (zero where kernels touch or overlap).
    let mut lens: Vec<i64> = raw.iter().map(|g| g.1 - g.0).collect();
    lens.resize(order.len() - 1, 0);
    lens.sort_unstable();
    let median = lens.get(lens.len() / 2).copied().unwrap_or(0);
    let wall = pass.wall_ns().max(1);
    let threshold = GAP_FLOOR_NS.max(20 * median).max(wall / 100);
    let mut gaps: Vec<IdleGap> = raw
        .into_iter()
        .filter(|g| g.1 - g.0 >= threshold)
        .map(|(g0, g1, before, after)| IdleGap {
            offset_ms: ms(g0 - pass.start_ns),
            ms: ms(g1 - g0),
            share_of_pass: (g1 - g0) as f64 / wall as f64,
            place: place_of(g0, g1, layer_spans),
            kernel_before: short_name(view.name(&view.kernels[before])),
            kernel_after: short_name(view.name(&view.kernels[after])),
            cause: cause_of(view, g0, after),
        })
        .collect();
    gaps.sort_by(|a, b| {
        b.ms.total_cmp(&a.ms)
            .then(a.offset_ms.total_cmp(&b.offset_ms))
    });
    gaps.truncate(MAX_GAPS);
    gaps
}

fn place_of(g0: i64, g1: i64, spans: &[(i64, i64)]) -> GapPlace {
    if spans.is_empty() {
        return GapPlace::Pass;
    }
    let Some(i) = spans.iter().rposition(|s| s.0 <= g0) else {
        return GapPlace::PreLayer;
    };
    if g1 <= spans[i].1 {
        GapPlace::InsideLayer { layer: i }
    } else if i + 1 == spans.len() {
        GapPlace::PostLayer
    } else {
        GapPlace::BetweenLayers {
            after: i,
            before: i + 1,
        }
    }
}

fn cause_of(view: &TraceView, idle_from: i64, next: usize) -> GapCause {
    let Some(launch) = view.kernels[next].launch else {
        return GapCause::Unknown;
    };
    if launch.is_graph_launch {
        return GapCause::GpuSide {
            launched_before_ms: 0.0,
        };
    }
    if launch.ts_ns <= idle_from {
        return GapCause::GpuSide {
            launched_before_ms: ms(idle_from - launch.ts_ns),
        };
    }
    // The trace crate's stall for this idle interval: the one starting where it starts.
    let stall = view
        .host_stalls
        .iter()
        .find(|h| (h.start_ns - idle_from).abs() <= 1_000 && h.kind != "unknown");
    GapCause::HostStall {
        op: stall.map(|h| h.held_by.clone()),
        kind: stall.map(|h| h.kind.clone()),
        host_late_ms: ms(launch.ts_ns - idle_from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SpanKind, ViewBuilder};
    use crate::passes;

    #[test]
    fn a_late_launch_is_a_host_stall_named_by_the_trace_crates_attribution() {
        let mut b = ViewBuilder::new();
        b.span(
            "execute_model_step_0",
            SpanKind::GpuAnnotation,
            0.0,
            20_000.0,
        );
        for i in 0..20 {
            b.kernel("gemm", i as f64 * 10.0, 8.0);
        }
        // The host sits in an attention op for 9.85 ms; the next kernel launches at its end.
        b.host_stall("aten::_cudnn_attention_forward", 198.0, 9_852.0);
        b.kernel("sdpa", 10_050.0, 20.0); // launched at 10045
        for i in 0..5 {
            b.kernel("gemm", 10_100.0 + i as f64 * 10.0, 8.0);
        }
        let v = b.finish();
        let ps = passes::find_passes(&v);
        let gaps = outlier_gaps(&v, &ps[0], &[]);
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        let g = &gaps[0];
        assert!((g.ms - 9.852).abs() < 1e-9, "{}", g.ms);
        assert_eq!(g.place, GapPlace::Pass);
        match &g.cause {
            GapCause::HostStall {
                op, host_late_ms, ..
            } => {
                assert_eq!(op.as_deref(), Some("aten::_cudnn_attention_forward"));
                assert!((host_late_ms - 9.847).abs() < 1e-9, "{host_late_ms}");
            }
            c => panic!("{c:?}"),
        }
        assert!(g.describe().contains("aten::_cudnn_attention_forward"));
    }

    #[test]
    fn a_kernel_launched_before_the_idle_time_is_a_gpu_side_wait_and_places_follow_layers() {
        let mut b = ViewBuilder::new();
        for i in 0..30 {
            b.kernel("k", i as f64 * 10.0, 8.0);
        }
        let late = b.kernel("k", 5_000.0, 8.0);
        b.view.kernels[late].launch.as_mut().unwrap().ts_ns = crate::model::us(100.0);
        let v = b.finish();
        let ps = passes::find_passes(&v);
        assert_eq!(ps.len(), 2, "the 4.7 ms gap splits idle-gap passes");
        let whole = Pass {
            kernels: (0..v.kernels.len()).collect(),
            start_ns: 0,
            end_ns: crate::model::us(5_008.0),
            ..ps[0].clone()
        };
        let spans = [
            (0, crate::model::us(150.0)),
            (crate::model::us(160.0), crate::model::us(5_008.0)),
        ];
        let gaps = outlier_gaps(&v, &whole, &spans);
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].place, GapPlace::InsideLayer { layer: 1 });
        assert!(
            matches!(gaps[0].cause, GapCause::GpuSide { .. }),
            "{:?}",
            gaps[0].cause
        );
        assert_eq!(place_of(10, 20, &spans[1..]), GapPlace::PreLayer);
        assert_eq!(
            place_of(151_000, 159_000, &spans),
            GapPlace::BetweenLayers {
                after: 0,
                before: 1
            }
        );
        assert_eq!(place_of(6_000_000, 7_000_000, &spans), GapPlace::PostLayer);
    }
}
