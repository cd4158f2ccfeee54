//! The whole analysis on [`TraceView`]s: passes → representative pass → layers →
//! layer types → per-type timing → representative layers with hot kernels, roofline
//! and Perfetto ranges. Pure (no I/O), so tests drive it with synthetic views.

use crate::config::{ConfigLayers, compact_ranges};
use crate::families::{Family, short_name};
use crate::gaps::{self, GapPlace, IdleGap};
use crate::layers::{self, Segmentation};
use crate::mapping;
use crate::model::{OpShapes, TraceView};
use crate::passes::{self, Pass, PassSource, Selection, StepTokens};
use crate::perfetto::{self, PerfettoRange, TraceClock};
use crate::roofline::{self, Roofline};
use crate::stats;
use anyhow::{Result, bail};
use serde::Serialize;
use std::collections::HashMap;
use vllm_sota_core::gpu::GpuSpec;

/// Options of one analysis.
#[derive(Debug, Clone)]
pub struct Options {
    /// Force a pass (index among the passes found) instead of the automatic choice.
    pub pass_index: Option<usize>,
    /// Override the layer count (else the config's).
    pub num_layers: Option<usize>,
    /// Hot kernels listed per representative layer.
    pub top_kernels: usize,
    /// Element type assumed for roofline bytes/peak when the trace has no types.
    pub dtype: String,
    /// The stage the caller says the trace is (`prefill`, `decode`, `mixed`): checked
    /// against what the pass shows.
    pub stage: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            pass_index: None,
            num_layers: None,
            top_kernels: 8,
            dtype: "bf16".into(),
            stage: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct KindRow {
    pub kind: String,
    pub passes: usize,
    pub median_wall_ms: f64,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PassRow {
    /// Position among the passes found (0-based).
    pub index: usize,
    pub name: String,
    pub kind: String,
    /// How the pass was delimited: gpu_annotation, cpu_annotation or idle_gap.
    pub source: PassSource,
    /// GPU wall time: first kernel start → last kernel end.
    pub wall_ms: f64,
    /// Union of kernel intervals.
    pub gpu_busy_ms: f64,
    pub kernels: usize,
    /// Requests/tokens from a vLLM step annotation.
    pub tokens: Option<StepTokens>,
    pub perfetto: PerfettoRange,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct LayerRow {
    pub layer: usize,
    pub layer_type: String,
    pub wall_ms: f64,
    /// Sum of kernel durations.
    pub kernel_ms: f64,
    /// Union of the layer's kernel intervals (GPU busy time).
    pub gpu_ms: f64,
    pub kernels: usize,
    /// Start relative to the pass start.
    pub offset_ms: f64,
}

/// Work outside layers (pre-layer, post-layer, between layers).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct WorkRow {
    pub kernels: usize,
    pub kernel_ms: f64,
    /// Wall time this part spans (pre: pass start → first layer; post: last layer → pass
    /// end; between layers: summed gaps; after the pass: pass end → next pass start).
    /// Much larger than `kernel_ms` means the GPU idles there (launch/CPU overhead).
    pub wall_ms: Option<f64>,
    /// Kernel time as a share of the pass wall time.
    pub share_of_pass: f64,
    /// Largest kernels by summed time.
    pub top: Vec<NamedMs>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct NamedMs {
    pub name: String,
    pub ms: f64,
}

/// Per-type timing. Shares and the representative layer use GPU time (kernel time
/// inside the layer), so a host stall inside one layer cannot make its type look costly;
/// wall time stands beside it, and layers holding an outlier GPU-idle gap are named.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TypeRow {
    pub layer_type: String,
    /// Layer list, e.g. `0–1` or `2–11` or `0, 3, 6`.
    pub layers: String,
    pub count: usize,
    /// Per-layer GPU time (union of the layer's kernel intervals) statistics (ms).
    pub gpu_mean_ms: f64,
    pub gpu_median_ms: f64,
    pub gpu_p95_ms: f64,
    /// Sum of these layers' GPU time over the pass's GPU busy time.
    pub gpu_share_of_pass: f64,
    /// Per-layer wall time (first kernel start → last kernel end) statistics (ms).
    pub wall_mean_ms: f64,
    pub wall_median_ms: f64,
    /// Sum of these layers' wall time over the pass wall time.
    pub wall_share_of_pass: f64,
    /// Layers of this type whose span holds an outlier GPU-idle gap (see `idle_gaps`).
    pub gap_layers: Vec<usize>,
    /// Summed outlier-gap time inside those layers (ms).
    pub gap_ms: f64,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct HotKernel {
    pub name: String,
    pub family: Family,
    /// Launches of this kernel in the layer.
    pub count: usize,
    pub ms: f64,
    pub share_of_layer: f64,
    /// Ideal time from the launching op's shapes (GEMM/attention with shapes only).
    pub roofline: Option<Roofline>,
    /// ideal / measured × 100 over the instances with a roofline.
    pub percent_of_roofline: Option<f64>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RepresentativeLayer {
    pub layer_type: String,
    /// The median layer of its type by GPU time.
    pub layer: usize,
    pub wall_ms: f64,
    pub kernel_ms: f64,
    pub gpu_ms: f64,
    pub kernels: usize,
    pub hot_kernels: Vec<HotKernel>,
    pub perfetto: PerfettoRange,
}

/// The full analysis (written to the `.json` artifact).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Analysis {
    pub trace: String,
    pub mapping_trace: Option<String>,
    pub gpu: String,
    pub config: ConfigLayers,
    pub passes_found: usize,
    pub pass_kinds: Vec<KindRow>,
    pub representative_pass: PassRow,
    pub selection: Selection,
    /// How layers were found (None: no layer structure).
    pub layer_source: Option<String>,
    pub expected_layers: Option<usize>,
    /// Layers found in the representative pass.
    pub layers_found: usize,
    /// Per-layer rows (the MCP report keeps the first 128; the JSON artifact all).
    pub layers: Vec<LayerRow>,
    pub pre_layer: WorkRow,
    pub post_layer: WorkRow,
    pub between_layers: WorkRow,
    /// GPU work after the representative pass until the next pass starts (in vLLM 0.26
    /// the lm_head GEMM and sampling run outside the `execute_context_*` annotation).
    pub after_pass: WorkRow,
    /// GPU work outside every forward pass (between steps: scheduling copies, sampling
    /// outside the step annotation, ...); `share_of_pass` is here the share of all kernel time.
    pub between_steps: WorkRow,
    pub type_table: Vec<TypeRow>,
    /// Outlier GPU-idle gaps of the representative pass, largest first, each placed
    /// (which layer) and attributed (host op holding the launching thread, or GPU-side wait).
    pub idle_gaps: Vec<IdleGap>,
    pub representative_layers: Vec<RepresentativeLayer>,
    /// Hot kernels of the whole pass (always present; the only table when no layers were found).
    pub pass_hot_kernels: Vec<HotKernel>,
    pub notes: Vec<String>,
}

fn ms(ns: i64) -> f64 {
    ns as f64 / 1e6
}

fn sum_dur(view: &TraceView, ks: &[usize]) -> i64 {
    ks.iter().map(|&k| view.kernels[k].dur_ns).sum()
}

fn span_of(view: &TraceView, ks: &[usize]) -> Option<(i64, i64)> {
    let s = ks.iter().map(|&k| view.kernels[k].ts_ns).min()?;
    let e = ks.iter().map(|&k| view.kernels[k].end_ns()).max()?;
    Some((s, e))
}

fn work_row(view: &TraceView, ks: &[usize], pass_wall: i64) -> WorkRow {
    let mut by: HashMap<&str, i64> = HashMap::new();
    for &k in ks {
        *by.entry(view.name(&view.kernels[k])).or_default() += view.kernels[k].dur_ns;
    }
    let mut top: Vec<NamedMs> = by
        .into_iter()
        .map(|(n, d)| NamedMs {
            name: short_name(n),
            ms: ms(d),
        })
        .collect();
    top.sort_by(|a, b| b.ms.total_cmp(&a.ms).then(a.name.cmp(&b.name)));
    top.truncate(3);
    let t = sum_dur(view, ks);
    WorkRow {
        kernels: ks.len(),
        kernel_ms: ms(t),
        wall_ms: None,
        share_of_pass: if pass_wall > 0 {
            t as f64 / pass_wall as f64
        } else {
            0.0
        },
        top,
    }
}

/// Shapes for a formal kernel: its own, else its mapping twin's.
struct ShapeLookup<'a> {
    formal: &'a TraceView,
    mapping: Option<&'a TraceView>,
    twins: HashMap<usize, usize>,
}

impl<'a> ShapeLookup<'a> {
    fn get(&self, k: usize) -> Option<(&'a OpShapes, (bool, u64))> {
        let kern = &self.formal.kernels[k];
        if let (Some(s), Some(op)) = (self.formal.shapes_of(kern), kern.op_instance) {
            return Some((s, (false, op)));
        }
        let m = self.mapping?;
        let twin = &m.kernels[*self.twins.get(&k)?];
        Some((m.shapes_of(twin)?, (true, twin.op_instance?)))
    }
}

fn hot_kernels(
    view: &TraceView,
    ks: &[usize],
    top: usize,
    shapes: &ShapeLookup,
    gpu: &GpuSpec,
    dtype: &str,
) -> Vec<HotKernel> {
    let total: i64 = sum_dur(view, ks).max(1);
    // Per op instance, only its longest kernel carries the op's ideal time (cuBLAS
    // split-K reduce and FlashAttention combine kernels share the op with the main kernel).
    let mut longest: HashMap<(bool, u64), usize> = HashMap::new();
    for &k in ks {
        if let Some((_, op)) = shapes.get(k) {
            let e = longest.entry(op).or_insert(k);
            if view.kernels[k].dur_ns > view.kernels[*e].dur_ns {
                *e = k;
            }
        }
    }
    struct Acc {
        count: usize,
        dur: i64,
        ideal_us: f64,
        dur_with_ideal: i64,
        roof: Option<Roofline>,
    }
    let mut by: HashMap<u32, Acc> = HashMap::new();
    for &k in ks {
        let kern = &view.kernels[k];
        let fam = view.family(kern);
        let a = by.entry(kern.name).or_insert(Acc {
            count: 0,
            dur: 0,
            ideal_us: 0.0,
            dur_with_ideal: 0,
            roof: None,
        });
        a.count += 1;
        a.dur += kern.dur_ns;
        if !fam.has_roofline() {
            continue;
        }
        if let Some((s, op)) = shapes.get(k)
            && longest.get(&op) == Some(&k)
            && let Some(r) = roofline::roofline(s, dtype, gpu)
        {
            a.ideal_us += r.ideal_us;
            a.dur_with_ideal += kern.dur_ns;
            a.roof.get_or_insert(r);
        }
    }
    let mut rows: Vec<(u32, Acc)> = by.into_iter().collect();
    rows.sort_by(|a, b| b.1.dur.cmp(&a.1.dur).then(a.0.cmp(&b.0)));
    rows.into_iter()
        .take(top)
        .map(|(name, a)| {
            let full = &view.names[name as usize];
            HotKernel {
                name: short_name(full),
                family: view.name_family(name),
                count: a.count,
                ms: ms(a.dur),
                share_of_layer: a.dur as f64 / total as f64,
                percent_of_roofline: (a.dur_with_ideal > 0)
                    .then(|| a.ideal_us * 1000.0 / a.dur_with_ideal as f64 * 100.0),
                roofline: a.roof,
            }
        })
        .collect()
}

/// The pass chosen by the request or by the steady-state rule.
fn select(all: &[Pass], opts: &Options) -> Result<Selection> {
    Ok(match opts.pass_index {
        Some(i) if i >= all.len() => bail!(
            "pass_index {i} is out of range: the trace has {} passes (0–{})",
            all.len(),
            all.len() - 1
        ),
        Some(i) => Selection {
            pass: i,
            dominant_kind: all[i].kind.clone(),
            kind_count: all.iter().filter(|p| p.kind == all[i].kind).count(),
            candidates: 1,
            first_excluded: false,
            outliers: vec![],
            reason: format!(
                "pass {i} (`{}`) was chosen by the request (pass_index)",
                all[i].name
            ),
        },
        None => passes::choose_representative(all).expect("non-empty"),
    })
}

/// Consecutive runs of same-type layers, for fitting heterogeneous stacks.
fn type_groups(config: &ConfigLayers) -> Vec<usize> {
    let mut groups: Vec<usize> = vec![];
    for (i, t) in config.types.iter().enumerate() {
        if i > 0 && config.types[i - 1] == *t {
            *groups.last_mut().expect("non-empty") += 1;
        } else {
            groups.push(1);
        }
    }
    groups
}

/// Layers carried over from the mapping trace (eager twin) onto `pass`, with the
/// kernel twins (formal kernel → mapping kernel) used for shapes.
fn segment_via_mapping(
    view: &TraceView,
    pass: &Pass,
    m: &TraceView,
    expected: Option<usize>,
    groups: &[usize],
    notes: &mut Vec<String>,
) -> (Option<Segmentation>, HashMap<usize, usize>) {
    let m_passes = passes::find_passes(m);
    let same_kind: Vec<Pass> = m_passes
        .iter()
        .filter(|p| p.kind == pass.kind)
        .cloned()
        .collect();
    let pool = if same_kind.is_empty() {
        &m_passes
    } else {
        &same_kind
    };
    let Some(sel) = passes::choose_representative(pool) else {
        notes.push("mapping trace: no forward pass found".into());
        return (None, HashMap::new());
    };
    let mp = &pool[sel.pass];
    let mut mnotes = vec![];
    let mseg = layers::segment_by_scopes(m, mp, expected, &mut mnotes)
        .or_else(|| layers::by_period_groups(m, mp, expected, groups));
    let Some(ms_) = mseg else {
        notes.push(format!(
            "mapping trace: no layer structure found in its pass `{}`",
            mp.name
        ));
        return (None, HashMap::new());
    };
    let t = mapping::transfer(view, pass, m, mp, &ms_);
    notes.push(format!(
        "mapping trace: pass `{}` segmented by {}; {}",
        mp.name,
        ms_.source.describe(),
        t.note
    ));
    (t.segmentation, t.twins.iter().copied().collect())
}

/// Layers of `pass`: its own scopes, then the mapping trace, then the kernel sequence.
fn segment(
    view: &TraceView,
    mapping: Option<&TraceView>,
    pass: &Pass,
    config: &ConfigLayers,
    expected: Option<usize>,
    notes: &mut Vec<String>,
) -> (Option<Segmentation>, HashMap<usize, usize>) {
    let groups = type_groups(config);
    let mut twins = HashMap::new();
    let mut seg_notes = vec![];
    let mut seg = layers::segment_by_scopes(view, pass, expected, &mut seg_notes);
    if let (None, Some(m)) = (&seg, mapping) {
        (seg, twins) = segment_via_mapping(view, pass, m, expected, &groups, notes);
    }
    if seg.is_none() {
        seg = layers::by_period_groups(view, pass, expected, &groups);
    }
    notes.extend(seg_notes);
    if let Some(s) = &seg {
        notes.extend(s.notes.iter().cloned());
    }
    if let Some(p) = &config.problem {
        notes.push(format!("config: {p}"));
    }
    (seg, twins)
}

/// Per-layer rows and the work outside layers.
struct LayerPart {
    rows: Vec<LayerRow>,
    spans: Vec<(i64, i64)>,
    pre: WorkRow,
    post: WorkRow,
    between: WorkRow,
    source: Option<String>,
}

fn layer_part(
    view: &TraceView,
    pass: &Pass,
    seg: Option<&Segmentation>,
    config: &ConfigLayers,
    expected: Option<usize>,
    notes: &mut Vec<String>,
) -> LayerPart {
    let pass_wall = pass.wall_ns();
    let Some(s) = seg else {
        notes.push(format!(
            "no layer structure found in pass {} ({} kernels): no layer annotations or module scopes, and no kernel sequence repeats {} times",
            pass.index,
            pass.kernels.len(),
            expected.map(|n| n.to_string()).unwrap_or_else(|| "regularly".into())
        ));
        if config.distinct().len() > 1 {
            notes.push(format!(
                "the config has {} layer types and the groups of same-type layers did not fit (a group of one layer has no repeat to find); give a mapping trace captured eagerly with `with_stack=True` (nn.Module scopes) or `record_function(\"layers.N\")` around each layer",
                config.distinct().len()
            ));
        }
        let empty = work_row(view, &[], pass_wall);
        return LayerPart {
            rows: vec![],
            spans: vec![],
            pre: empty.clone(),
            post: empty.clone(),
            between: empty,
            source: None,
        };
    };
    if let Some(n) = expected
        && s.layers.len() != n
    {
        notes.push(format!(
            "found {} layers but the config says {n}",
            s.layers.len()
        ));
    }
    let rows: Vec<LayerRow> = s
        .layers
        .iter()
        .enumerate()
        .map(|(i, ks)| {
            let (a, b) = span_of(view, ks).unwrap_or((pass.start_ns, pass.start_ns));
            LayerRow {
                layer: i,
                layer_type: config.type_of(i).label(),
                wall_ms: ms(b - a),
                kernel_ms: ms(sum_dur(view, ks)),
                gpu_ms: ms(passes::busy_ns(view, ks)),
                kernels: ks.len(),
                offset_ms: ms(a - pass.start_ns),
            }
        })
        .collect();
    let spans: Vec<(i64, i64)> = s.layers.iter().filter_map(|l| span_of(view, l)).collect();
    let mut pre = work_row(view, &s.pre, pass_wall);
    let mut post = work_row(view, &s.post, pass_wall);
    let mut between = work_row(view, &s.between, pass_wall);
    if let (Some(first), Some(last)) = (spans.first(), spans.last()) {
        pre.wall_ms = Some(ms(first.0 - pass.start_ns));
        post.wall_ms = Some(ms(pass.end_ns - last.1));
        between.wall_ms = Some(ms(spans.windows(2).map(|w| (w[1].0 - w[0].1).max(0)).sum()));
    }
    LayerPart {
        rows,
        spans,
        pre,
        post,
        between,
        source: Some(s.source.describe()),
    }
}

/// What one type-table row and its representative layer need besides the rows.
struct TypeCtx<'a> {
    view: &'a TraceView,
    pass: &'a Pass,
    seg: Option<&'a Segmentation>,
    gaps: &'a [IdleGap],
    shapes: &'a ShapeLookup<'a>,
    gpu: &'a GpuSpec,
    opts: &'a Options,
    clock: &'a TraceClock,
}

/// The type table (GPU time first, wall beside it) and the median layer of each type.
fn type_tables(rows: &[LayerRow], c: &TypeCtx) -> (Vec<TypeRow>, Vec<RepresentativeLayer>) {
    let mut type_order: Vec<&str> = vec![];
    for r in rows {
        if !type_order.contains(&r.layer_type.as_str()) {
            type_order.push(&r.layer_type);
        }
    }
    let pass_busy = ms(c.pass.busy_ns).max(1e-12);
    let pass_wall = ms(c.pass.wall_ns()).max(1e-12);
    let mut table = vec![];
    let mut reps = vec![];
    for t in type_order {
        let members: Vec<&LayerRow> = rows.iter().filter(|r| r.layer_type == t).collect();
        let gpu: Vec<f64> = members.iter().map(|r| r.gpu_ms).collect();
        let walls: Vec<f64> = members.iter().map(|r| r.wall_ms).collect();
        let (Some(g), Some(w)) = (stats::summarize(&gpu), stats::summarize(&walls)) else {
            continue;
        };
        let ids: Vec<usize> = members.iter().map(|r| r.layer).collect();
        let in_type: Vec<&IdleGap> = c
            .gaps
            .iter()
            .filter(
                |gap| matches!(gap.place, GapPlace::InsideLayer { layer } if ids.contains(&layer)),
            )
            .collect();
        let mut gap_layers: Vec<usize> = in_type
            .iter()
            .filter_map(|gap| match gap.place {
                GapPlace::InsideLayer { layer } => Some(layer),
                _ => None,
            })
            .collect();
        gap_layers.dedup();
        table.push(TypeRow {
            layer_type: t.to_string(),
            layers: compact_ranges(&ids),
            count: members.len(),
            gpu_mean_ms: g.mean,
            gpu_median_ms: g.median,
            gpu_p95_ms: g.p95,
            gpu_share_of_pass: gpu.iter().sum::<f64>() / pass_busy,
            wall_mean_ms: w.mean,
            wall_median_ms: w.median,
            wall_share_of_pass: walls.iter().sum::<f64>() / pass_wall,
            gap_layers,
            gap_ms: in_type.iter().map(|gap| gap.ms).sum(),
        });
        let pick = members[stats::median_index(&gpu).expect("non-empty")];
        let ks = &c.seg.expect("layers exist").layers[pick.layer];
        let (a, b) = span_of(c.view, ks).unwrap_or((c.pass.start_ns, c.pass.start_ns));
        reps.push(RepresentativeLayer {
            layer_type: t.to_string(),
            layer: pick.layer,
            wall_ms: pick.wall_ms,
            kernel_ms: pick.kernel_ms,
            gpu_ms: pick.gpu_ms,
            kernels: pick.kernels,
            hot_kernels: hot_kernels(
                c.view,
                ks,
                c.opts.top_kernels,
                c.shapes,
                c.gpu,
                &c.opts.dtype,
            ),
            perfetto: perfetto::range(&format!("layer {} ({t})", pick.layer), a, b, c.clock),
        });
    }
    (table, reps)
}

/// Pass kinds by count (at most 8) with their median wall time.
fn pass_kinds(all: &[Pass]) -> Vec<KindRow> {
    let mut kinds: Vec<KindRow> = vec![];
    for p in all {
        if kinds.iter().any(|k| k.kind == p.kind) {
            continue;
        }
        let walls: Vec<f64> = all
            .iter()
            .filter(|q| q.kind == p.kind)
            .map(|q| ms(q.wall_ns()))
            .collect();
        kinds.push(KindRow {
            kind: p.kind.clone(),
            passes: walls.len(),
            median_wall_ms: stats::summarize(&walls).map(|s| s.median).unwrap_or(0.0),
        });
    }
    kinds.sort_by(|a, b| b.passes.cmp(&a.passes).then(a.kind.cmp(&b.kind)));
    kinds.truncate(8);
    kinds
}

/// GPU work outside every pass, and the part of it after `pass` before the next one.
fn outside_work(view: &TraceView, all: &[Pass], pass: &Pass) -> (WorkRow, WorkRow) {
    let mut in_pass = vec![false; view.kernels.len()];
    for p in all {
        for &k in &p.kernels {
            in_pass[k] = true;
        }
    }
    let outside: Vec<usize> = (0..view.kernels.len()).filter(|&k| !in_pass[k]).collect();
    let total_kernel_ns: i64 = view.kernels.iter().map(|k| k.dur_ns).sum();
    let between_steps = work_row(view, &outside, total_kernel_ns);
    let next_start = all
        .iter()
        .map(|p| p.start_ns)
        .filter(|&t| t > pass.start_ns)
        .min();
    let after: Vec<usize> = outside
        .iter()
        .copied()
        .filter(|&k| {
            view.kernels[k].ts_ns >= pass.end_ns
                && next_start.is_none_or(|n| view.kernels[k].ts_ns < n)
        })
        .collect();
    let mut after_pass = work_row(view, &after, pass.wall_ns());
    after_pass.wall_ms = next_start.map(|n| ms(n - pass.end_ns));
    (between_steps, after_pass)
}

/// Notes on the outlier gaps: each host stall, and which layers' wall time they inflate.
fn gap_notes(gaps: &[IdleGap], rows: &[LayerRow], notes: &mut Vec<String>) {
    for g in gaps.iter().filter(|g| g.is_host_stall()).take(3) {
        notes.push(format!("host stall: {}", g.describe()));
    }
    for g in gaps {
        if let GapPlace::InsideLayer { layer } = g.place
            && let Some(r) = rows.get(layer)
        {
            notes.push(format!(
                "layer {layer}'s wall time ({:.3} ms) holds a {:.3} ms GPU-idle gap against {:.3} ms of GPU time: layer-type shares and the representative layer use GPU time",
                r.wall_ms, g.ms, r.gpu_ms
            ));
        }
    }
}

/// What the pass itself says its stage is, and why: a vLLM step's request counts, else
/// the attention query length of its launching ops (1 = decode, more = prefill).
pub(crate) fn stage_evidence(view: &TraceView, pass: &Pass) -> Option<(&'static str, String)> {
    if let Some(t) = pass.tokens {
        let stage = match (t.context_requests > 0, t.generation_requests > 0) {
            (true, false) => "prefill",
            (false, true) => "decode",
            (true, true) => "mixed",
            (false, false) => return None,
        };
        return Some((
            stage,
            format!(
                "its step annotation has {} prefill and {} decode request(s)",
                t.context_requests, t.generation_requests
            ),
        ));
    }
    let mut lens: Vec<i64> = pass
        .kernels
        .iter()
        .filter_map(|&k| view.shapes_of(&view.kernels[k]))
        .filter(|s| {
            s.op.contains("attention") && s.input_dims.first().is_some_and(|q| q.len() == 4)
        })
        .map(|s| s.input_dims[0][2])
        .collect();
    lens.sort_unstable();
    lens.dedup();
    match lens.as_slice() {
        [1] => Some(("decode", "its attention ops have query length 1".into())),
        [] => None,
        l if l[0] > 1 => Some((
            "prefill",
            format!(
                "its attention ops have query length {}–{}",
                l[0],
                l[l.len() - 1]
            ),
        )),
        _ => None,
    }
}

/// A note when the requested stage contradicts what the pass shows.
fn stage_note(view: &TraceView, pass: &Pass, stage: Option<&str>) -> Option<String> {
    let want = stage?.trim().to_ascii_lowercase();
    let want = if want == "extend" {
        "prefill".to_string()
    } else {
        want
    };
    if want != "prefill" && want != "decode" {
        return None;
    }
    let (seen, why) = stage_evidence(view, pass)?;
    (seen != want).then(|| {
        format!(
            "stage `{want}` was requested but pass {} looks like {seen}: {why}; check the trace (or the stage label) before comparing it with other {want} results",
            pass.index
        )
    })
}

/// Run the analysis. `mapping` is an eager twin for graph-replayed passes.
pub fn analyze(
    view: &TraceView,
    mapping: Option<&TraceView>,
    config: ConfigLayers,
    gpu: &GpuSpec,
    opts: &Options,
) -> Result<Analysis> {
    if view.kernels.is_empty() {
        bail!("{}", no_kernels_message(&view.path));
    }
    let mut notes: Vec<String> = vec![];
    let all = passes::find_passes(view);
    if all.is_empty() {
        bail!("trace {}: no forward pass could be delimited", view.path);
    }
    let selection = select(&all, opts)?;
    let pass = &all[selection.pass];
    notes.extend(stage_note(view, pass, opts.stage.as_deref()));
    let clock = TraceClock {
        trace_start_ns: view.trace_start_ns,
        base_time_ns: view.base_time_ns,
        display_time_unit: view.display_time_unit.clone(),
    };
    let expected = opts.num_layers.or(config.num_layers);
    let (seg, twins) = segment(view, mapping, pass, &config, expected, &mut notes);
    let shapes = ShapeLookup {
        formal: view,
        mapping,
        twins,
    };
    let lp = layer_part(view, pass, seg.as_ref(), &config, expected, &mut notes);
    let idle_gaps = gaps::outlier_gaps(view, pass, &lp.spans);
    gap_notes(&idle_gaps, &lp.rows, &mut notes);
    let (type_table, reps) = type_tables(
        &lp.rows,
        &TypeCtx {
            view,
            pass,
            seg: seg.as_ref(),
            gaps: &idle_gaps,
            shapes: &shapes,
            gpu,
            opts,
            clock: &clock,
        },
    );
    let has_shapes = view.kernels.iter().any(|k| k.shapes.is_some())
        || mapping.is_some_and(|m| m.kernels.iter().any(|k| k.shapes.is_some()));
    if !has_shapes {
        notes.push("no launching-op shapes (record_shapes off, or a graph replay without a mapping trace): no roofline column".into());
    }
    let (between_steps, after_pass) = outside_work(view, &all, pass);
    Ok(Analysis {
        trace: view.path.clone(),
        mapping_trace: mapping.map(|m| m.path.clone()),
        gpu: gpu.name.clone(),
        passes_found: all.len(),
        pass_kinds: pass_kinds(&all),
        representative_pass: PassRow {
            index: pass.index,
            name: pass.name.clone(),
            kind: pass.kind.clone(),
            source: pass.source,
            wall_ms: ms(pass.wall_ns()),
            gpu_busy_ms: ms(pass.busy_ns),
            kernels: pass.kernels.len(),
            tokens: pass.tokens,
            perfetto: perfetto::range(
                &format!("pass {}", pass.index),
                pass.start_ns,
                pass.end_ns,
                &clock,
            ),
        },
        selection,
        layer_source: lp.source,
        expected_layers: expected,
        layers_found: lp.rows.len(),
        layers: lp.rows,
        pre_layer: lp.pre,
        post_layer: lp.post,
        between_layers: lp.between,
        after_pass,
        between_steps,
        type_table,
        idle_gaps,
        representative_layers: reps,
        pass_hot_kernels: hot_kernels(
            view,
            &pass.kernels,
            opts.top_kernels,
            &shapes,
            gpu,
            &opts.dtype,
        ),
        notes,
        config,
    })
}

/// The error for a trace without GPU kernels: an empty profiler window (the workload
/// did not run while the profiler recorded) or a trace that is not the GPU worker's.
pub(crate) fn no_kernels_message(path: &str) -> String {
    format!(
        "trace {path} has no GPU kernels: either it is not a GPU worker trace (vLLM's API-server `async_llm` trace holds only Python events), or the profiler window held no GPU work — the requests did not run while the profiler was active. vLLM 0.26 records only `active_iterations` engine steps (5 by default) after `delay_iterations`: send the workload while the profiler is active, or start the server with a larger `active_iterations` (e.g. --profiler-config '{{\"profiler\":\"torch\",\"delay_iterations\":0,\"active_iterations\":50}}')"
    )
}
