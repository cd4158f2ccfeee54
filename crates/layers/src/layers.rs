//! Layers inside one forward pass.
//!
//! Sources, in order: GPU layer annotations (`layers.N`), CPU layer annotations
//! (through each kernel's launch), Python module scopes (`nn.Module: <X>DecoderLayer_k`
//! from `with_stack`), then the repeating kernel sequence ([`crate::period`]) on the
//! pass's busiest stream. A mapping trace (an eager twin of a graph-replayed pass) is
//! handled by [`crate::mapping`]. Kernels outside every layer are pre-layer (before
//! the first), post-layer (after the last) or between-layer work, never folded into
//! a layer.

use crate::families::Family;
use crate::model::{SpanKind, TraceView};
use crate::passes::Pass;
use crate::period;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LayerSource {
    /// `gpu_user_annotation` windows named like `layers.N`.
    GpuAnnotation,
    /// `user_annotation` (record_function) scopes named like `layers.N`.
    CpuAnnotation,
    /// `nn.Module` Python scopes of the named class.
    ModuleScope { class: String },
    /// Aligned to the layers of a mapping (eager) trace.
    Mapping { matched_fraction: f64 },
    /// Repeating kernel sequence.
    Period {
        kernels_per_layer: usize,
        match_fraction: f64,
    },
}

impl LayerSource {
    pub fn describe(&self) -> String {
        match self {
            LayerSource::GpuAnnotation => "GPU layer annotations (`layers.N`)".into(),
            LayerSource::CpuAnnotation => {
                "CPU layer annotations (`layers.N`), kernels by launch".into()
            }
            LayerSource::ModuleScope { class } => {
                format!("Python module scopes `nn.Module: {class}_k`, kernels by launch")
            }
            LayerSource::Mapping { matched_fraction } => format!(
                "layer boundaries of the mapping trace, kernel sequences aligned ({:.0}% matched)",
                matched_fraction * 100.0
            ),
            LayerSource::Period {
                kernels_per_layer,
                match_fraction,
            } => {
                format!(
                    "repeating kernel sequence: {kernels_per_layer} kernels per layer ({:.0}% of positions match)",
                    match_fraction * 100.0
                )
            }
        }
    }
}

/// Kernel → place in the pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    Pre,
    Layer(usize),
    Between,
    Post,
}

#[derive(Debug, Clone)]
pub struct Segmentation {
    pub source: LayerSource,
    /// Kernel indices (into the view) per layer, in time order.
    pub layers: Vec<Vec<usize>>,
    pub pre: Vec<usize>,
    pub post: Vec<usize>,
    pub between: Vec<usize>,
    pub notes: Vec<String>,
}

impl Segmentation {
    /// Build from a per-kernel layer label (`None` = not in a layer). Layer labels are
    /// compacted to 0..L in order of their number.
    pub fn from_labels(
        source: LayerSource,
        pass_kernels: &[usize],
        labels: &[Option<usize>],
        view: &TraceView,
    ) -> Option<Self> {
        let mut ids: Vec<usize> = labels.iter().flatten().copied().collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return None;
        }
        let pos: HashMap<usize, usize> = ids.iter().enumerate().map(|(i, &l)| (l, i)).collect();
        let mut layers = vec![vec![]; ids.len()];
        let mut unassigned = vec![];
        for (&k, l) in pass_kernels.iter().zip(labels) {
            match l {
                Some(l) => layers[pos[l]].push(k),
                None => unassigned.push(k),
            }
        }
        let first = layers
            .iter()
            .filter_map(|l| l.iter().map(|&k| view.kernels[k].ts_ns).min())
            .min()?;
        let last = layers
            .iter()
            .filter_map(|l| l.iter().map(|&k| view.kernels[k].ts_ns).max())
            .max()?;
        let (mut pre, mut post, mut between) = (vec![], vec![], vec![]);
        for k in unassigned {
            let t = view.kernels[k].ts_ns;
            if t < first {
                pre.push(k)
            } else if t > last {
                post.push(k)
            } else {
                between.push(k)
            }
        }
        Some(Segmentation {
            source,
            layers,
            pre,
            post,
            between,
            notes: vec![],
        })
    }

    /// Where each kernel of the pass went (for mapping transfer).
    pub fn slots(&self) -> HashMap<usize, Slot> {
        let mut m = HashMap::new();
        for (i, l) in self.layers.iter().enumerate() {
            for &k in l {
                m.insert(k, Slot::Layer(i));
            }
        }
        for &k in &self.pre {
            m.insert(k, Slot::Pre);
        }
        for &k in &self.post {
            m.insert(k, Slot::Post);
        }
        for &k in &self.between {
            m.insert(k, Slot::Between);
        }
        m
    }
}

/// Layer number of an annotation name such as `model.layers.7.self_attn`.
pub(crate) fn layer_number(name: &str) -> Option<usize> {
    crate::names::get()?
        .layer_scope
        .captures(name)
        .and_then(|c| c.get(1)?.as_str().parse().ok())
}

fn module_class(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(crate::names::get()?.module_scope_prefix.as_str())?;
    // `LlamaDecoderLayer_5` → `LlamaDecoderLayer`
    Some(match rest.rfind('_') {
        Some(i) if rest[i + 1..].chars().all(|c| c.is_ascii_digit()) && i + 1 < rest.len() => {
            &rest[..i]
        }
        _ => rest,
    })
}

/// Segment one pass. `expected` = layer count from the config (or an override).
pub fn segment(view: &TraceView, pass: &Pass, expected: Option<usize>) -> Option<Segmentation> {
    let mut notes = vec![];
    if let Some(s) = segment_by_scopes(view, pass, expected, &mut notes) {
        return Some(s);
    }
    let mut s = by_period(view, pass, expected)?;
    s.notes.splice(0..0, notes);
    Some(s)
}

/// Annotations and module scopes only (no sequence analysis); `notes` collects why a
/// scope source was present but unusable.
pub(crate) fn segment_by_scopes(
    view: &TraceView,
    pass: &Pass,
    expected: Option<usize>,
    notes: &mut Vec<String>,
) -> Option<Segmentation> {
    // A scope source that puts the whole pass in one layer (e.g. CPU layer scopes
    // around a single CUDA-graph launch) is not a layer structure.
    let usable = |s: &Segmentation| s.layers.len() >= 2 || expected == Some(1);
    for kind in [SpanKind::GpuAnnotation, SpanKind::CpuAnnotation] {
        if let Some(s) = by_annotations(view, pass, kind) {
            if usable(&s) {
                return Some(s);
            }
            notes.push(format!(
                "{} cover the pass as a single layer: ignored",
                s.source.describe()
            ));
        }
    }
    match by_module_scopes(view, pass, expected) {
        Ok(s) if usable(&s) => Some(s),
        Ok(s) => {
            notes.push(format!(
                "{} cover the pass as a single layer: ignored",
                s.source.describe()
            ));
            None
        }
        Err(Some(n)) => {
            notes.push(n);
            None
        }
        Err(None) => None,
    }
}

fn by_annotations(view: &TraceView, pass: &Pass, kind: SpanKind) -> Option<Segmentation> {
    // Layer spans overlapping the pass (GPU windows by time; CPU windows by launch).
    let spans: Vec<(usize, i64, i64, i64, i64)> = view
        .spans
        .iter()
        .filter(|s| s.kind == kind)
        .filter_map(|s| layer_number(&s.name).map(|n| (n, s.ts_ns, s.end_ns(), s.pid, s.tid)))
        .collect();
    if spans.is_empty() {
        return None;
    }
    let labels: Vec<Option<usize>> = pass
        .kernels
        .iter()
        .map(|&k| {
            let kern = &view.kernels[k];
            let (t, thread) = match kind {
                SpanKind::GpuAnnotation => (kern.ts_ns, None),
                _ => {
                    let l = kern.launch?;
                    (l.ts_ns, Some((l.pid, l.tid)))
                }
            };
            // Innermost (shortest) containing span.
            spans
                .iter()
                .filter(|(_, s, e, pid, tid)| {
                    *s <= t && t < *e && thread.is_none_or(|th| th == (*pid, *tid))
                })
                .min_by_key(|(_, s, e, _, _)| e - s)
                .map(|(n, ..)| *n)
        })
        .collect();
    let source = if kind == SpanKind::GpuAnnotation {
        LayerSource::GpuAnnotation
    } else {
        LayerSource::CpuAnnotation
    };
    Segmentation::from_labels(source, &pass.kernels, &labels, view)
}

/// Module scopes: pick the class that looks like the decoder layer and whose count in
/// the pass equals the expected layer count (or the most frequent `*DecoderLayer`).
fn by_module_scopes(
    view: &TraceView,
    pass: &Pass,
    expected: Option<usize>,
) -> Result<Segmentation, Option<String>> {
    let launches: Vec<(i64, i64, i64)> = pass
        .kernels
        .iter()
        .filter_map(|&k| view.kernels[k].launch.map(|l| (l.ts_ns, l.pid, l.tid)))
        .collect();
    let (Some(lo), Some(hi)) = (
        launches.iter().map(|l| l.0).min(),
        launches.iter().map(|l| l.0).max(),
    ) else {
        return Err(None);
    };
    let mut by_class: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, s) in view.spans.iter().enumerate() {
        if s.kind != SpanKind::PythonModule || s.end_ns() < lo || s.ts_ns > hi {
            continue;
        }
        if let Some(c) = module_class(&s.name)
            && (c.ends_with("DecoderLayer") || c.ends_with("Layer") || c.ends_with("Block"))
        {
            by_class.entry(c).or_default().push(i);
        }
    }
    if by_class.is_empty() {
        return Err(None);
    }
    let mut classes: Vec<(&str, usize)> = by_class.iter().map(|(c, v)| (*c, v.len())).collect();
    classes.sort_by(|a, b| {
        b.0.ends_with("DecoderLayer")
            .cmp(&a.0.ends_with("DecoderLayer"))
            .then(b.1.cmp(&a.1))
            .then(a.0.cmp(b.0))
    });
    let pick = match expected {
        Some(n) => classes.iter().find(|(_, c)| *c == n).copied(),
        None => classes.first().copied().filter(|(_, c)| *c >= 2),
    };
    let Some((class, _)) = pick else {
        return Err(Some(format!(
            "module scopes found ({}) but none occurs {} times in the pass",
            classes
                .iter()
                .take(4)
                .map(|(c, n)| format!("{c}×{n}"))
                .collect::<Vec<_>>()
                .join(", "),
            expected
                .map(|n| n.to_string())
                .unwrap_or_else(|| "≥ 2".into())
        )));
    };
    let mut spans: Vec<usize> = by_class[class].clone();
    spans.sort_by_key(|&i| view.spans[i].ts_ns);
    let labels: Vec<Option<usize>> = pass
        .kernels
        .iter()
        .map(|&k| {
            let l = view.kernels[k].launch?;
            spans.iter().position(|&i| {
                let s = &view.spans[i];
                s.ts_ns <= l.ts_ns && l.ts_ns < s.end_ns() && s.pid == l.pid && s.tid == l.tid
            })
        })
        .collect();
    Segmentation::from_labels(
        LayerSource::ModuleScope {
            class: class.to_string(),
        },
        &pass.kernels,
        &labels,
        view,
    )
    .ok_or(None)
}

/// The busiest stream of the pass (by kernel time).
pub(crate) fn main_stream(view: &TraceView, pass: &Pass) -> (i64, i64) {
    let mut per: HashMap<(i64, i64), i64> = HashMap::new();
    for &k in &pass.kernels {
        let kern = &view.kernels[k];
        *per.entry((kern.pid, kern.stream)).or_default() += kern.dur_ns;
    }
    per.into_iter()
        .max_by_key(|(s, t)| (*t, std::cmp::Reverse(*s)))
        .map(|(s, _)| s)
        .unwrap_or((0, 0))
}

/// Layers from the repeating kernel sequence of the busiest stream.
pub(crate) fn by_period(
    view: &TraceView,
    pass: &Pass,
    expected: Option<usize>,
) -> Option<Segmentation> {
    by_period_groups(view, pass, expected, &[])
}

/// [`by_period`] that, when one unit does not repeat `expected` times, fits the
/// config's consecutive groups of same-type layers (`groups`: their sizes in order).
pub(crate) fn by_period_groups(
    view: &TraceView,
    pass: &Pass,
    expected: Option<usize>,
    groups: &[usize],
) -> Option<Segmentation> {
    let stream = main_stream(view, pass);
    let on_main: Vec<usize> = pass
        .kernels
        .iter()
        .copied()
        .filter(|&k| {
            (view.kernels[k].pid, view.kernels[k].stream) == stream && !view.kernels[k].is_memory_op
        })
        .collect();
    let seq: Vec<u32> = on_main.iter().map(|&k| view.kernels[k].name).collect();
    let fams: Vec<Family> = on_main
        .iter()
        .map(|&k| view.family(&view.kernels[k]))
        .collect();
    let single = match expected {
        Some(n) => period::fit_period(&seq, &fams, n),
        None => period::detect_period(&seq, &fams),
    };
    let (ranges, source, mut notes) = match single {
        Some(fit) => {
            let mut notes = vec![];
            if let Some(n) = &fit.phase_note {
                notes.push(n.clone());
            }
            if expected.is_none() {
                notes.push(format!(
                    "no layer count from the config: {} repeats detected",
                    fit.layers
                ));
            }
            (
                fit.ranges(),
                LayerSource::Period {
                    kernels_per_layer: fit.period,
                    match_fraction: fit.match_fraction,
                },
                notes,
            )
        }
        None if groups.len() > 1 && expected == Some(groups.iter().sum()) => {
            let (ranges, m) = period::fit_groups(&seq, &fams, groups)?;
            let sizes: Vec<usize> = ranges.iter().map(|(a, b)| b - a).collect();
            let note = format!(
                "heterogeneous stack fitted group by group (groups of {groups:?} layers; {}–{} main-stream kernels per layer)",
                sizes.iter().min().unwrap_or(&0),
                sizes.iter().max().unwrap_or(&0)
            );
            let per = sizes.iter().copied().max().unwrap_or(0);
            (
                ranges,
                LayerSource::Period {
                    kernels_per_layer: per,
                    match_fraction: m,
                },
                vec![note],
            )
        }
        None => return None,
    };
    let mut labels_main: HashMap<usize, usize> = HashMap::new();
    for (l, &(a, b)) in ranges.iter().enumerate() {
        for &k in &on_main[a..b] {
            labels_main.insert(k, l);
        }
    }
    // Other streams and memory ops: the layer whose time window contains their start.
    let windows: Vec<(i64, i64)> = ranges
        .iter()
        .map(|&(a, b)| {
            (
                view.kernels[on_main[a]].ts_ns,
                view.kernels[on_main[b - 1]].end_ns(),
            )
        })
        .collect();
    let labels: Vec<Option<usize>> = pass
        .kernels
        .iter()
        .map(|k| {
            labels_main.get(k).copied().or_else(|| {
                if on_main.contains(k) {
                    None
                } else {
                    windows.iter().position(|&(s, e)| {
                        s <= view.kernels[*k].ts_ns && view.kernels[*k].ts_ns < e
                    })
                }
            })
        })
        .collect();
    let mut seg = Segmentation::from_labels(source, &pass.kernels, &labels, view)?;
    seg.notes.append(&mut notes);
    Some(seg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ViewBuilder;
    use crate::passes::find_passes;

    #[test]
    fn cpu_layer_scopes_around_one_graph_launch_are_not_a_layer_structure() {
        // Both layers' kernels come from one launch (a CUDA-graph replay) inside `layers.0`.
        let mut b = ViewBuilder::new();
        b.span(
            "execute_model_step_0",
            SpanKind::GpuAnnotation,
            0.0,
            10_000.0,
        );
        b.span("layers.0", SpanKind::CpuAnnotation, -20.0, 18.0);
        b.span("layers.1", SpanKind::CpuAnnotation, 100.0, 10.0);
        let mut t = 0.0;
        for _ in 0..4 {
            for n in ["rms_norm", "gemm", "attn"] {
                let k = b.kernel(n, t, 5.0);
                b.view.kernels[k].launch.as_mut().unwrap().ts_ns = -10_000;
                t += 10.0;
            }
        }
        let v = b.finish();
        let p = &find_passes(&v)[0];
        let mut notes = vec![];
        assert!(segment_by_scopes(&v, p, Some(4), &mut notes).is_none());
        assert!(notes[0].contains("single layer"), "{notes:?}");
        let seg = segment(&v, p, Some(4)).unwrap();
        assert!(matches!(
            seg.source,
            LayerSource::Period {
                kernels_per_layer: 3,
                ..
            }
        ));
    }

    #[test]
    fn layer_numbers_from_annotation_names() {
        assert_eq!(layer_number("layers.7"), Some(7));
        assert_eq!(layer_number("model.layers.12.mlp"), Some(12));
        assert_eq!(layer_number("layer_3"), Some(3));
        assert_eq!(layer_number("execute_model_step_3"), None);
        assert_eq!(layer_number("mylayers.3"), None);
        assert_eq!(
            module_class("nn.Module: LlamaDecoderLayer_31"),
            Some("LlamaDecoderLayer")
        );
        assert_eq!(module_class("nn.Module: Block"), Some("Block"));
    }

    fn synthetic(annot: Option<SpanKind>) -> TraceView {
        let mut b = ViewBuilder::new();
        b.span(
            "execute_model_step_0",
            SpanKind::GpuAnnotation,
            0.0,
            10_000.0,
        );
        let mut t = 0.0;
        b.kernel("embed", t, 5.0);
        t += 10.0;
        for l in 0..4 {
            if let Some(kind) = annot {
                b.span(
                    &format!("layers.{l}"),
                    kind,
                    if kind == SpanKind::GpuAnnotation {
                        t
                    } else {
                        t - 6.0
                    },
                    40.0,
                );
            }
            for n in ["rms_norm", "gemm", "attn", "gemm2"] {
                b.kernel(n, t, 5.0);
                t += 10.0;
            }
        }
        b.kernel("rms_norm", t, 5.0);
        b.kernel("lm_head_gemm", t + 10.0, 5.0);
        b.finish()
    }

    #[test]
    fn gpu_cpu_annotations_and_period_agree_on_four_layers_with_pre_and_post() {
        for annot in [
            Some(SpanKind::GpuAnnotation),
            Some(SpanKind::CpuAnnotation),
            None,
        ] {
            let v = synthetic(annot);
            let passes = find_passes(&v);
            assert_eq!(passes.len(), 1);
            let seg = segment(&v, &passes[0], Some(4)).unwrap();
            assert_eq!(seg.layers.len(), 4, "{annot:?}");
            assert!(
                seg.layers.iter().all(|l| l.len() == 4),
                "{annot:?}: {:?}",
                seg.layers
            );
            assert_eq!(seg.pre.len(), 1, "{annot:?}");
            assert_eq!(
                seg.post.len(),
                2,
                "{annot:?}: final norm + lm_head stay post-layer"
            );
        }
    }
}
