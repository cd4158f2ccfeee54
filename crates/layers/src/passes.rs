//! Forward passes (engine steps) and the choice of a representative one.
//!
//! Boundaries come, in order of preference, from framework step annotations
//! (`references/trace-step-names.json`: vLLM `execute_context_X(Y)_generation_Z(W)`,
//! `record_function` step markers such as `execute_model_step_N` / `ProfilerStep#N`,
//! SGLang-style `forward_*`), GPU-side windows first (they bound GPU time), CPU-side ones through each kernel's launch
//! time; without annotations, from idle gaps on the GPU.

use crate::model::{SpanKind, TraceView};
use crate::stats;
use serde::Serialize;

/// How the pass boundaries were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PassSource {
    GpuAnnotation,
    CpuAnnotation,
    IdleGap,
}

/// Request/token counts a vLLM step annotation carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct StepTokens {
    /// Requests in prefill (context) and their tokens.
    pub context_requests: u64,
    pub context_tokens: u64,
    /// Requests in decode (generation) and their tokens.
    pub generation_requests: u64,
    pub generation_tokens: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pass {
    /// Position among all passes of the trace (0-based).
    pub index: usize,
    /// Annotation name (or `idle-gap segment N`).
    pub name: String,
    /// Grouping key: the name without a trailing step counter.
    pub kind: String,
    pub source: PassSource,
    /// Indices into `TraceView::kernels`, in time order.
    pub kernels: Vec<usize>,
    pub start_ns: i64,
    pub end_ns: i64,
    /// Union of kernel intervals (GPU busy time).
    pub busy_ns: i64,
    pub tokens: Option<StepTokens>,
}

impl PassSource {
    pub fn describe(self) -> &'static str {
        match self {
            PassSource::GpuAnnotation => "GPU step annotation",
            PassSource::CpuAnnotation => "CPU step annotation (kernels by launch)",
            PassSource::IdleGap => "idle gaps on the GPU",
        }
    }
}

impl Pass {
    pub fn wall_ns(&self) -> i64 {
        self.end_ns - self.start_ns
    }
}

fn vllm_tokens(name: &str) -> Option<StepTokens> {
    let c = crate::names::get()?.step_tokens.captures(name)?;
    let n = |i: usize| c.get(i)?.as_str().parse::<u64>().ok();
    Some(StepTokens {
        context_requests: n(1)?,
        context_tokens: n(2)?,
        generation_requests: n(3)?,
        generation_tokens: n(4)?,
    })
}

fn kind_of(name: &str, counter: bool) -> String {
    if !counter {
        return name.to_string();
    }
    let trimmed = name.trim_end_matches(|c: char| c.is_ascii_digit());
    trimmed.trim_end_matches(['_', '#']).to_string()
}

/// Union length of intervals given in time order of start.
pub(crate) fn busy_ns(view: &TraceView, kernels: &[usize]) -> i64 {
    let mut total = 0;
    let mut cur: Option<(i64, i64)> = None;
    let mut sorted: Vec<(i64, i64)> = kernels
        .iter()
        .map(|&k| (view.kernels[k].ts_ns, view.kernels[k].end_ns()))
        .collect();
    sorted.sort_unstable();
    for (s, e) in sorted {
        match cur {
            Some((cs, ce)) if s <= ce => cur = Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                cur = Some((s, e));
            }
            None => cur = Some((s, e)),
        }
    }
    if let Some((cs, ce)) = cur {
        total += ce - cs;
    }
    total
}

fn make_pass(
    view: &TraceView,
    index: usize,
    name: String,
    kind: String,
    source: PassSource,
    kernels: Vec<usize>,
) -> Option<Pass> {
    if kernels.is_empty() {
        return None;
    }
    let start_ns = kernels.iter().map(|&k| view.kernels[k].ts_ns).min()?;
    let end_ns = kernels.iter().map(|&k| view.kernels[k].end_ns()).max()?;
    let tokens = vllm_tokens(&name);
    Some(Pass {
        index,
        busy_ns: busy_ns(view, &kernels),
        name,
        kind,
        source,
        kernels,
        start_ns,
        end_ns,
        tokens,
    })
}

/// Find the forward passes of a trace. Passes without kernels are dropped.
pub fn find_passes(view: &TraceView) -> Vec<Pass> {
    let patterns = crate::names::get()
        .map(|n| &n.step_patterns[..])
        .unwrap_or(&[]);
    for pat in patterns {
        let (re, counter) = (&pat.regex, pat.counter);
        let gpu: Vec<usize> = (0..view.spans.len())
            .filter(|&i| {
                view.spans[i].kind == SpanKind::GpuAnnotation && re.is_match(&view.spans[i].name)
            })
            .collect();
        let cpu: Vec<usize> = (0..view.spans.len())
            .filter(|&i| {
                view.spans[i].kind == SpanKind::CpuAnnotation && re.is_match(&view.spans[i].name)
            })
            .collect();
        if gpu.is_empty() && cpu.is_empty() {
            continue;
        }
        let (chosen, source) = if !gpu.is_empty() {
            (gpu, PassSource::GpuAnnotation)
        } else {
            (cpu, PassSource::CpuAnnotation)
        };
        let mut buckets: Vec<Vec<usize>> = vec![vec![]; chosen.len()];
        // Windows are disjoint in practice (one step at a time); attribute each kernel
        // to the window containing its GPU start (GPU windows) or its launch (CPU windows).
        let starts: Vec<i64> = chosen.iter().map(|&i| view.spans[i].ts_ns).collect();
        for (k, kern) in view.kernels.iter().enumerate() {
            let t = match source {
                PassSource::GpuAnnotation => kern.ts_ns,
                _ => match kern.launch {
                    Some(l) => l.ts_ns,
                    None => continue,
                },
            };
            let pos = starts.partition_point(|&s| s <= t);
            if pos == 0 {
                continue;
            }
            let w = &view.spans[chosen[pos - 1]];
            if t < w.end_ns() {
                buckets[pos - 1].push(k);
            }
        }
        let mut passes = vec![];
        for (slot, kernels) in chosen.iter().zip(buckets) {
            let name = view.spans[*slot].name.clone();
            let kind = kind_of(&name, counter);
            if let Some(p) = make_pass(view, passes.len(), name, kind, source, kernels) {
                passes.push(p);
            }
        }
        if !passes.is_empty() {
            return passes;
        }
    }
    idle_gap_passes(view)
}

/// Split the GPU timeline at idle gaps much longer than the typical gap.
pub(crate) fn idle_gap_passes(view: &TraceView) -> Vec<Pass> {
    if view.kernels.is_empty() {
        return vec![];
    }
    let mut gaps = vec![];
    let mut frontier = view.kernels[0].end_ns();
    for k in &view.kernels[1..] {
        gaps.push((k.ts_ns - frontier).max(0));
        frontier = frontier.max(k.end_ns());
    }
    let median_gap = {
        let mut g = gaps.clone();
        g.sort_unstable();
        g.get(g.len() / 2).copied().unwrap_or(0)
    };
    let threshold = (20 * median_gap).max(200_000); // ≥ 200 µs
    let mut segments: Vec<Vec<usize>> = vec![vec![0]];
    for (i, g) in gaps.iter().enumerate() {
        if *g > threshold {
            segments.push(vec![]);
        }
        segments.last_mut().unwrap().push(i + 1);
    }
    segments
        .into_iter()
        .enumerate()
        .filter_map(|(i, ks)| {
            make_pass(
                view,
                i,
                format!("idle-gap segment {i}"),
                "idle-gap segment".into(),
                PassSource::IdleGap,
                ks,
            )
        })
        .enumerate()
        .map(|(i, mut p)| {
            p.index = i;
            p
        })
        .collect()
}

/// The chosen pass and why.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Selection {
    /// Index into the pass list.
    pub pass: usize,
    pub dominant_kind: String,
    /// Passes of the dominant kind.
    pub kind_count: usize,
    /// Passes the median was taken over (after dropping the first and outliers).
    pub candidates: usize,
    pub first_excluded: bool,
    /// Pass indices excluded as outliers (modified z-score > 3.5 on GPU wall time).
    pub outliers: Vec<usize>,
    /// One sentence for the report.
    pub reason: String,
}

/// Steady state: among passes of the dominant kind (most passes; ties → more GPU
/// time), drop the first (warm-up) when others exist and outliers (modified z-score of
/// GPU wall time > 3.5, with ≥ 5 candidates), then take the median wall time.
pub(crate) fn choose_representative(passes: &[Pass]) -> Option<Selection> {
    if passes.is_empty() {
        return None;
    }
    let mut kinds: Vec<(String, usize, i64)> = vec![];
    for p in passes {
        match kinds.iter_mut().find(|(k, _, _)| *k == p.kind) {
            Some(e) => {
                e.1 += 1;
                e.2 += p.wall_ns();
            }
            None => kinds.push((p.kind.clone(), 1, p.wall_ns())),
        }
    }
    kinds.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)));
    let dominant = kinds[0].0.clone();
    let of_kind: Vec<usize> = (0..passes.len())
        .filter(|&i| passes[i].kind == dominant)
        .collect();
    let mut cand = of_kind.clone();
    let first_excluded = cand.len() >= 2;
    if first_excluded {
        cand.remove(0);
    }
    let mut outliers = vec![];
    if cand.len() >= 5 {
        let walls: Vec<f64> = cand.iter().map(|&i| passes[i].wall_ns() as f64).collect();
        let med = stats::summarize(&walls).map(|s| s.median).unwrap_or(0.0);
        let mad = stats::mad(&walls).unwrap_or(0.0);
        if mad > 0.0 {
            cand.retain(|&i| {
                let z = 0.6745 * (passes[i].wall_ns() as f64 - med).abs() / mad;
                if z > 3.5 {
                    outliers.push(passes[i].index);
                    false
                } else {
                    true
                }
            });
        }
    }
    let walls: Vec<f64> = cand.iter().map(|&i| passes[i].wall_ns() as f64).collect();
    let pick = cand[stats::median_index(&walls)?];
    let p = &passes[pick];
    let mut why = format!(
        "pass {} (`{}`) has the median GPU wall time ({:.3} ms) among {} pass(es) of the dominant kind `{}` ({} of {} passes)",
        p.index,
        p.name,
        p.wall_ns() as f64 / 1e6,
        cand.len(),
        dominant,
        of_kind.len(),
        passes.len()
    );
    let mut excl = vec![];
    if first_excluded {
        excl.push("its first pass as warm-up".to_string());
    }
    if !outliers.is_empty() {
        excl.push(format!("{} outlier(s)", outliers.len()));
    }
    if !excl.is_empty() {
        why.push_str(&format!(", after excluding {}", excl.join(" and ")));
    }
    if of_kind.len() == 1 {
        why.push_str(
            "; it is the only pass of its kind, so no steady-state comparison was possible",
        );
    }
    why.push('.');
    Some(Selection {
        pass: pick,
        dominant_kind: dominant,
        kind_count: of_kind.len(),
        candidates: cand.len(),
        first_excluded,
        outliers,
        reason: why,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SpanKind, ViewBuilder};

    fn pass(i: usize, kind: &str, wall_ms: f64) -> Pass {
        Pass {
            index: i,
            name: kind.into(),
            kind: kind.into(),
            source: PassSource::GpuAnnotation,
            kernels: vec![],
            start_ns: (i as i64) * 100_000_000,
            end_ns: (i as i64) * 100_000_000 + (wall_ms * 1e6) as i64,
            busy_ns: 0,
            tokens: None,
        }
    }

    #[test]
    fn representative_is_the_median_of_the_dominant_kind_without_first_and_outliers() {
        let mut ps = vec![pass(0, "prefill", 30.0)];
        let walls = [20.0, 8.5, 8.0, 8.4, 8.6, 8.2, 50.0, 8.3];
        for (i, w) in walls.iter().enumerate() {
            ps.push(pass(i + 1, "decode", *w));
        }
        let s = choose_representative(&ps).unwrap();
        assert_eq!(s.dominant_kind, "decode");
        assert_eq!(s.kind_count, 8);
        assert!(s.first_excluded, "pass 1 (20 ms) is the first decode pass");
        assert_eq!(s.outliers, vec![7], "the 50 ms pass is an outlier");
        // remaining 8.5 8.0 8.4 8.6 8.2 8.3 → lower median 8.3 (pass 8)
        assert_eq!(s.pass, 8);
        assert!(
            s.reason.contains("warm-up") && s.reason.contains("1 outlier"),
            "{}",
            s.reason
        );
    }

    #[test]
    fn single_pass_is_chosen_and_says_so() {
        let s = choose_representative(&[pass(0, "execute_model_step", 150.0)]).unwrap();
        assert_eq!(s.pass, 0);
        assert!(!s.first_excluded);
        assert!(s.reason.contains("only pass"));
        assert!(choose_representative(&[]).is_none());
    }

    #[test]
    fn kinds_strip_step_counters_but_keep_vllm_batch_shapes() {
        assert_eq!(kind_of("execute_model_step_12", true), "execute_model_step");
        assert_eq!(kind_of("ProfilerStep#7", true), "ProfilerStep");
        assert_eq!(
            kind_of("execute_context_0(0)_generation_64(64)", false),
            "execute_context_0(0)_generation_64(64)"
        );
        let t = vllm_tokens("execute_context_23(368)_generation_1(1)").unwrap();
        assert_eq!(
            (
                t.context_requests,
                t.context_tokens,
                t.generation_requests,
                t.generation_tokens
            ),
            (23, 368, 1, 1)
        );
    }

    #[test]
    fn gpu_step_annotations_bound_passes_and_gaps_split_unannotated_traces() {
        let mut b = ViewBuilder::new();
        b.span("execute_model_step_0", SpanKind::GpuAnnotation, 0.0, 100.0);
        b.span(
            "execute_model_step_1",
            SpanKind::GpuAnnotation,
            1000.0,
            100.0,
        );
        for t in [0.0, 10.0, 20.0, 1000.0, 1050.0] {
            b.kernel("k", t, 5.0);
        }
        b.kernel("outside", 500.0, 5.0);
        let v = b.finish();
        let ps = find_passes(&v);
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].kernels.len(), 3);
        assert_eq!(ps[1].kind, "execute_model_step");
        assert_eq!(ps[1].busy_ns, 10_000);

        let mut b = ViewBuilder::new();
        for step in 0..3 {
            for j in 0..10 {
                b.kernel("k", step as f64 * 5000.0 + j as f64 * 10.0, 8.0);
            }
        }
        let ps = find_passes(&b.finish());
        assert_eq!(ps.len(), 3);
        assert!(
            ps.iter()
                .all(|p| p.source == PassSource::IdleGap && p.kernels.len() == 10)
        );
    }
}
