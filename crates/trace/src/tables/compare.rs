//! Cross-trace comparison: per-family ms per step between two frameworks' traces.

use super::*;

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CompareRow {
    pub family: String,
    pub ours_ms_per_step: f64,
    pub theirs_ms_per_step: f64,
    /// ours − theirs (positive: we are slower in this family).
    pub diff_ms_per_step: f64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Comparison {
    pub ours_steps: u64,
    pub theirs_steps: u64,
    pub step_basis: String,
    pub ours_ms_per_step: f64,
    pub theirs_ms_per_step: f64,
    pub rows: Vec<CompareRow>,
}

/// The step-annotation pattern a CPU annotation name belongs to: the label of the first
/// pattern of `references/trace-step-names.json` it matches (vLLM `execute_context_*`,
/// `execute_model_step_*`, SGLang `step[*]` and `forward_*`, torch `ProfilerStep#*`), if any.
pub(crate) fn step_pattern(name: &str) -> Option<&'static str> {
    crate::names::step_label(name)
}

/// Engine steps in a trace: the CPU step annotations of its most frequent step pattern,
/// else 1 (totals per trace).
pub(crate) fn count_steps(s: &TraceStore) -> (u64, String) {
    let a = &s.annotations;
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for i in 0..a.len() {
        if a.on_gpu[i] {
            continue;
        }
        let Some(key) = step_pattern(s.name(a.name[i])) else {
            continue;
        };
        *counts.entry(key).or_default() += 1;
    }
    match counts.into_iter().max_by_key(|x| x.1) {
        Some((k, n)) => (n, format!("{n} `{k}` annotations")),
        None => (1, "no step annotations: totals per trace".into()),
    }
}

pub(crate) fn compare(
    ours: &KernelTable,
    ours_steps: (u64, String),
    theirs: &KernelTable,
    theirs_steps: (u64, String),
) -> Comparison {
    let mut fams: Vec<String> = ours.families.iter().map(|f| f.family.clone()).collect();
    for f in &theirs.families {
        if !fams.contains(&f.family) {
            fams.push(f.family.clone());
        }
    }
    let get = |t: &KernelTable, f: &str| {
        t.families
            .iter()
            .find(|x| x.family == f)
            .map(|x| x.total_ms)
            .unwrap_or(0.0)
    };
    let (os, ts) = (ours_steps.0.max(1) as f64, theirs_steps.0.max(1) as f64);
    let mut rows: Vec<CompareRow> = fams
        .into_iter()
        .map(|f| {
            let o = get(ours, &f) / os;
            let t = get(theirs, &f) / ts;
            CompareRow {
                family: f,
                ours_ms_per_step: o,
                theirs_ms_per_step: t,
                diff_ms_per_step: o - t,
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.diff_ms_per_step
            .abs()
            .total_cmp(&a.diff_ms_per_step.abs())
    });
    let mismatch = ours_steps.1.starts_with("no step") != theirs_steps.1.starts_with("no step");
    Comparison {
        ours_steps: ours_steps.0,
        theirs_steps: theirs_steps.0,
        step_basis: format!(
            "ours: {}; theirs: {}{}",
            ours_steps.1,
            theirs_steps.1,
            if mismatch {
                " — WARNING: only one side has step counts, so ms/step are not comparable; pass steps / competitor_steps"
            } else {
                ""
            }
        ),
        ours_ms_per_step: ours.total_gpu_ms / os,
        theirs_ms_per_step: theirs.total_gpu_ms / ts,
        rows,
    }
}
