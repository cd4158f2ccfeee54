//! The markdown digest (`digest.md`): identity, gate, verdict, side-by-side table,
//! stalls, roofline, NCU rules, the findings the rule weighed, and exactly one
//! `Next edit:` line at the end.

use std::collections::BTreeMap;

use crate::metrics::KernelSummary;
use crate::rules::{RulesFile, fmt_num};
use crate::{HarnessResult, HeadlineRow, NcuDigestReport, ProblemSpec};

/// (label, fact key, metric shown, display unit, divisor from the base unit)
const HEADLINE: &[(&str, &str, &str, &str, f64)] = &[
    (
        "Duration",
        "duration_ns",
        "gpu__time_duration.sum",
        "us",
        1e3,
    ),
    (
        "Compute (SM) throughput",
        "sm_pct",
        "sm__throughput.avg.pct_of_peak_sustained_elapsed",
        "% of peak",
        1.0,
    ),
    (
        "Memory throughput",
        "mem_pct",
        "gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed",
        "% of peak",
        1.0,
    ),
    (
        "DRAM throughput",
        "dram_pct",
        "gpu__dram_throughput.avg.pct_of_peak_sustained_elapsed",
        "% of peak",
        1.0,
    ),
    (
        "DRAM bandwidth",
        "dram_bytes_per_s",
        "dram__bytes.sum.per_second",
        "GB/s",
        1e9,
    ),
    (
        "DRAM bytes (read + write)",
        "dram_bytes_total",
        "dram__bytes_read.sum + dram__bytes_write.sum",
        "MB",
        1e6,
    ),
    (
        "L1/TEX throughput",
        "l1tex_pct",
        "l1tex__throughput.avg.pct_of_peak_sustained_active",
        "% of peak",
        1.0,
    ),
    (
        "L2 throughput",
        "l2_pct",
        "lts__throughput.avg.pct_of_peak_sustained_elapsed",
        "% of peak",
        1.0,
    ),
    (
        "Achieved occupancy",
        "achieved_occupancy_pct",
        "sm__warps_active.avg.pct_of_peak_sustained_active",
        "%",
        1.0,
    ),
    (
        "Theoretical occupancy",
        "theoretical_occupancy_pct",
        "sm__maximum_warps_per_active_cycle_pct",
        "%",
        1.0,
    ),
    (
        "Waves per SM",
        "waves_per_sm",
        "launch__waves_per_multiprocessor",
        "",
        1.0,
    ),
    (
        "L1/TEX hit rate",
        "l1_hit_pct",
        "l1tex__t_sector_hit_rate.pct",
        "%",
        1.0,
    ),
    (
        "L2 hit rate",
        "l2_hit_pct",
        "lts__t_sector_hit_rate.pct",
        "%",
        1.0,
    ),
    (
        "Shared-memory bank conflicts",
        "smem_conflict_pct",
        "derived: l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_{ld,st}.sum / …wavefronts…",
        "% of wavefronts",
        1.0,
    ),
    (
        "Issue slots used",
        "issue_active_pct",
        "smsp__issue_active.avg.pct_of_peak_sustained_active",
        "%",
        1.0,
    ),
    (
        "Eligible warps per scheduler",
        "eligible_warps",
        "smsp__warps_eligible.avg.per_cycle_active",
        "warps",
        1.0,
    ),
    (
        "Warp cycles per issued instruction",
        "cpi",
        "smsp__average_warp_latency_per_inst_issued.ratio",
        "cycles",
        1.0,
    ),
    (
        "Tensor pipe",
        "tensor_pipe_pct",
        "sm__pipe_tensor_cycles_active.avg.pct_of_peak_sustained_elapsed",
        "% of peak",
        1.0,
    ),
    (
        "Tensor (GMMA) pipe",
        "gmma_pipe_pct",
        "sm__inst_executed_pipe_tensor_op_gmma.avg.pct_of_peak_sustained_active",
        "% of peak",
        1.0,
    ),
    (
        "Registers per thread",
        "registers_per_thread",
        "launch__registers_per_thread",
        "",
        1.0,
    ),
    (
        "Shared memory per block (static + dynamic)",
        "smem_per_block_bytes",
        "launch__shared_mem_per_block_{static,dynamic}",
        "bytes",
        1.0,
    ),
    (
        "Block size",
        "block_size",
        "launch__block_size",
        "threads",
        1.0,
    ),
    (
        "Grid size",
        "grid_blocks",
        "launch__grid_size",
        "blocks",
        1.0,
    ),
    (
        "Local-memory spill requests",
        "spill_requests",
        "derived__local_spilling_requests",
        "",
        1.0,
    ),
];

pub(crate) fn headline_rows(
    base: Option<&BTreeMap<String, f64>>,
    cand: Option<&BTreeMap<String, f64>>,
) -> Vec<HeadlineRow> {
    HEADLINE
        .iter()
        .map(|(label, key, metric, unit, div)| {
            let b = base.and_then(|f| f.get(*key)).map(|v| v / div);
            let c = cand.and_then(|f| f.get(*key)).map(|v| v / div);
            let delta_pct = match (b, c) {
                (Some(b), Some(c)) if b != 0.0 => Some((c - b) / b.abs() * 100.0),
                _ => None,
            };
            HeadlineRow {
                label: label.to_string(),
                metric: metric.to_string(),
                unit: unit.to_string(),
                baseline: b,
                candidate: c,
                delta_pct,
            }
        })
        .collect()
}

/// The verdict of a single-report digest: what was measured, no comparison.
pub(crate) fn single_verdict(
    base_h: Option<&HarnessResult>,
    base: Option<&KernelSummary>,
) -> String {
    let mut parts =
        vec!["Single report (no candidate): no delta, no faster/slower verdict".to_string()];
    if let Some(t) = base_h.and_then(|h| h.time_us) {
        parts.push(format!("harness time {} us", fmt_num(t)));
    }
    match base_h.and_then(|h| h.correct) {
        Some(true) => parts.push("correctness pass".into()),
        Some(false) => parts.push("correctness FAIL".into()),
        None => {}
    }
    if let Some(d) = base.and_then(|b| b.facts.get("duration_us")) {
        parts.push(format!("ncu duration {} us", fmt_num(*d)));
    }
    parts.join(" · ")
}

/// Faster or slower, by the harness when it timed both sides, else by ncu duration.
pub(crate) fn verdict(
    rules: &RulesFile,
    base_h: Option<&HarnessResult>,
    cand_h: Option<&HarnessResult>,
    base: Option<&KernelSummary>,
    cand: Option<&KernelSummary>,
) -> String {
    let noise = rules.thresholds.noise_band_pct;
    let mut parts = Vec::new();
    let judge = |b: f64, c: f64| -> String {
        let d = (c - b) / b * 100.0;
        let word = if d.abs() < noise {
            format!("within the ±{}% noise band", fmt_num(noise))
        } else if d < 0.0 {
            format!(
                "candidate faster, {}x",
                fmt_num((b / c * 100.0).round() / 100.0)
            )
        } else {
            "candidate SLOWER".to_string()
        };
        format!(
            "{} → {} us ({}{}%, {word})",
            fmt_num(b),
            fmt_num(c),
            if d >= 0.0 { "+" } else { "" },
            fmt_num(d)
        )
    };
    let harness = (
        base_h.and_then(|h| h.time_us),
        cand_h.and_then(|h| h.time_us),
    );
    match harness {
        (Some(b), Some(c)) if b > 0.0 => parts.push(format!("Harness time: {}", judge(b, c))),
        _ => parts.push(
            "Harness time: not given (the harness decides faster/slower; ncu duration below only explains)".into(),
        ),
    }
    let corr = |h: Option<&HarnessResult>| match h.and_then(|h| h.correct) {
        Some(true) => "pass",
        Some(false) => "FAIL",
        None => "not given",
    };
    parts.push(format!(
        "correctness: baseline {}, candidate {}",
        corr(base_h),
        corr(cand_h)
    ));
    let d = (
        base.and_then(|b| b.facts.get("duration_us")),
        cand.and_then(|c| c.facts.get("duration_us")),
    );
    if let (Some(b), Some(c)) = d {
        parts.push(format!("ncu duration: {}", judge(*b, *c)));
    }
    parts.join(" · ")
}

/// The headline quantity that moved most in the wrong direction, as "name a → b".
pub(crate) fn largest_adverse_move(b: &BTreeMap<String, f64>, c: &BTreeMap<String, f64>) -> String {
    // (fact, higher is better)
    const WATCH: &[(&str, bool)] = &[
        ("sm_pct", true),
        ("mem_pct", true),
        ("achieved_occupancy_pct", true),
        ("l1_hit_pct", true),
        ("l2_hit_pct", true),
        ("issue_active_pct", true),
        ("eligible_warps", true),
        ("dram_bytes_total", false),
        ("cpi", false),
        ("smem_conflict_pct", false),
        ("spill_requests", false),
        ("registers_per_thread", false),
    ];
    let mut worst: Option<(f64, String)> = None;
    for (k, higher_better) in WATCH {
        let (Some(bv), Some(cv)) = (b.get(*k), c.get(*k)) else {
            continue;
        };
        let rel = if *bv == 0.0 {
            if *cv == 0.0 { 0.0 } else { 1.0 }
        } else {
            (cv - bv) / bv.abs()
        };
        let adverse = if *higher_better { -rel } else { rel };
        if adverse > 0.0 && worst.as_ref().is_none_or(|w| adverse > w.0) {
            worst = Some((adverse, format!("{k} {} → {}", fmt_num(*bv), fmt_num(*cv))));
        }
    }
    worst.map(|w| w.1).unwrap_or_default()
}

fn cell(v: Option<f64>) -> String {
    v.map(fmt_num)
        .unwrap_or_else(|| "n/a (not collected)".into())
}

fn pct_cell(v: Option<f64>) -> String {
    v.map(|d| format!("{}{}%", if d >= 0.0 { "+" } else { "" }, fmt_num(d)))
        .unwrap_or_else(|| "—".into())
}

// Markdown table-cell escaping: core::md, the one rule.
use vllm_sota_core::md::cell as esc;
use vllm_sota_core::md::{Align, Table};

/// The digest markdown: identity, gate, verdict, class, headline, stalls, roofline,
/// NCU rule rows, the findings weighed, warnings and the one `Next edit:` line.
pub(crate) fn render(
    r: &NcuDigestReport,
    rules: &RulesFile,
    spec: Option<&vllm_sota_core::gpu::GpuSpec>,
    problem: Option<&ProblemSpec>,
) -> String {
    let mut s = String::new();
    render_identity(&mut s, r, spec, problem);
    render_gate_and_verdict(&mut s, r);
    render_bound_class(&mut s, r);
    render_headline_and_stalls(&mut s, r, rules);
    render_roofline_and_rules(&mut s, r, rules);
    render_decision(&mut s, r);
    s
}

/// Title, GPU, library, the two sides and the commands run.
fn render_identity(
    s: &mut String,
    r: &NcuDigestReport,
    spec: Option<&vllm_sota_core::gpu::GpuSpec>,
    problem: Option<&ProblemSpec>,
) {
    let side = r.candidate.as_ref().or(r.baseline.as_ref());
    s.push_str(&format!(
        "# ncu digest — `{}` — {}\n\n",
        r.kernel_regex, r.version
    ));
    let cc = side
        .and_then(|x| x.compute_capability.clone())
        .unwrap_or_else(|| "?".into());
    let gpu = r.gpu.clone().unwrap_or_else(|| "unknown GPU".into());
    let extra = spec
        .map(|g| {
            format!(
                ", {} SMs, {} GB/s datasheet",
                g.sm_count,
                fmt_num(g.memory_bandwidth_gbps)
            )
        })
        .unwrap_or_default();
    s.push_str(&format!(
        "GPU: {gpu} (CC {cc}{extra}) · mode: {} · kernel wording: {}\n",
        r.mode.as_str(),
        r.kernel_language
    ));
    if let Some(p) = problem.and_then(|p| p.shape.as_deref()) {
        s.push_str(&format!("Problem: {p}\n"));
    }
    if let Some(l) = &r.library {
        s.push_str(&format!(
            "Library: {} kernel (name matches `{}`): a closed-source kernel, so the edit goes to {}\n",
            l.library,
            esc(&l.pattern),
            l.call_site
        ));
    }
    for (label, x) in [("Baseline", &r.baseline), ("Candidate", &r.candidate)] {
        if label == "Candidate" && r.single_report {
            s.push_str("Candidate: none (single-report digest of the baseline)\n");
            continue;
        }
        match x {
            Some(x) => s.push_str(&format!(
                "{label}: `{}` launch ID {} of {} matching ({}), grid {}, block {} — {}\n",
                esc(&x.kernel_name),
                x.launch_id,
                x.matched_launches.len(),
                x.matched_launches
                    .iter()
                    .map(|(id, d)| format!(
                        "{id}: {}",
                        d.map(|d| format!("{} us", fmt_num(d / 1e3)))
                            .unwrap_or("?".into())
                    ))
                    .collect::<Vec<_>>()
                    .join(", "),
                x.grid.as_deref().unwrap_or("?"),
                x.block.as_deref().unwrap_or("?"),
                x.origin.join(", ")
            )),
            None => s.push_str(&format!("{label}: no counters (see Blocker)\n")),
        }
    }
    if !r.commands.is_empty() {
        s.push_str("\nCommands:\n");
        for c in &r.commands {
            s.push_str(&format!("- `{}`\n", c.replace('`', "'")));
        }
    }
}

/// The eligibility gate, the verdict and the blocker.
fn render_gate_and_verdict(s: &mut String, r: &NcuDigestReport) {
    s.push_str("\n## Gate\n\n");
    s.push_str(&format!(
        "{} (share source: {}).\n",
        r.eligibility.why, r.eligibility.share_source
    ));

    s.push_str("\n## Verdict\n\n");
    s.push_str(&r.verdict);
    s.push('\n');
    for (label, h) in [
        ("baseline", &r.baseline_harness),
        ("candidate", &r.candidate_harness),
    ] {
        if let Some(h) = h
            && let Some(n) = &h.note
        {
            s.push_str(&format!("- harness {label}: {}\n", esc(n)));
        }
    }
    s.push_str("\nncu explains; the harness decides: an ncu win alone is not success.\n");

    if let Some(b) = &r.blocker {
        s.push_str("\n## Blocker\n\n");
        s.push_str(b);
        s.push_str("\n\nFallback: the harness timing in the verdict is the only evidence for this comparison.\n");
    }
}

/// Bound class per side, roofs beside it, ncu's own bottleneck line, not-applicable ratios.
fn render_bound_class(s: &mut String, r: &NcuDigestReport) {
    s.push_str("\n## Bound class\n\n");
    let mut t = Table::new(&[
        ("side", Align::Left),
        ("class", Align::Left),
        ("rule", Align::Left),
        ("why", Align::Left),
    ]);
    for (label, x) in [("baseline", &r.baseline), ("candidate", &r.candidate)] {
        if let Some(x) = x {
            let class = match (&x.bound_class.roof, x.bound_class.roof_pct) {
                (Some(roof), Some(p)) => format!(
                    "{} — at the {roof} roof ({}%)",
                    x.bound_class.class,
                    fmt_num(p)
                ),
                _ => x.bound_class.class.clone(),
            };
            t.row(&[
                label.to_string(),
                format!("**{class}**"),
                format!("bound_classes #{}", x.bound_class.rule_index),
                x.bound_class.why.clone(),
            ]);
        }
    }
    s.push_str(&t.render());
    for (label, x) in [("baseline", &r.baseline), ("candidate", &r.candidate)] {
        let Some(x) = x else { continue };
        if !x.bound_class.also_at.is_empty() {
            s.push_str(&format!(
                "\n{label}: also at or above 80% of peak: {}.\n",
                x.bound_class.also_at.join(", ")
            ));
        }
        if let Some(b) = &x.ncu_bottleneck {
            s.push_str(&format!("\n{label}: ncu SOLBottleneck says: {}\n", esc(b)));
        }
        for na in &x.not_applicable {
            s.push_str(&format!("\n{label}: {}\n", esc(na)));
        }
    }
}

/// The baseline/candidate/delta table and the top warp stalls.
fn render_headline_and_stalls(s: &mut String, r: &NcuDigestReport, rules: &RulesFile) {
    s.push_str("\n## Headline (baseline | candidate | Δ)\n\n");
    let mut t = Table::new(&[
        ("metric", Align::Left),
        ("unit", Align::Left),
        ("baseline", Align::Left),
        ("candidate", Align::Left),
        ("Δ", Align::Left),
        ("source", Align::Left),
    ]);
    for h in &r.headline {
        t.row(&[
            h.label.clone(),
            h.unit.clone(),
            cell(h.baseline),
            if r.single_report {
                "—".to_string()
            } else {
                cell(h.candidate)
            },
            pct_cell(h.delta_pct),
            format!("`{}`", h.metric),
        ]);
    }
    s.push_str(&t.render());

    s.push_str("\n## Top warp stalls (cycles per issued instruction, share of CPI)\n\n");
    let mut t = Table::new(&[
        ("reason", Align::Left),
        ("baseline", Align::Left),
        ("candidate", Align::Left),
        ("meaning", Align::Left),
    ]);
    let mut reasons: Vec<String> = Vec::new();
    for x in [&r.candidate, &r.baseline].into_iter().flatten() {
        for st in &x.top_stalls {
            if !reasons.contains(&st.reason) {
                reasons.push(st.reason.clone());
            }
        }
    }
    let find = |x: &Option<crate::SideReport>, reason: &str| -> String {
        x.as_ref()
            .and_then(|x| x.top_stalls.iter().find(|st| st.reason == reason))
            .map(|st| format!("{} ({}%)", fmt_num(st.cycles), fmt_num(st.share * 100.0)))
            .unwrap_or_else(|| "—".into())
    };
    for reason in &reasons {
        t.row(&[
            reason.as_str(),
            &find(&r.baseline, reason),
            &find(&r.candidate, reason),
            rules
                .stall_advice
                .get(reason)
                .map(String::as_str)
                .unwrap_or(""),
        ]);
    }
    s.push_str(&t.render());
    s.push_str("\nSource: `smsp__average_warps_issue_stalled_<reason>_per_issue_active.ratio` / `smsp__average_warp_latency_per_inst_issued.ratio` (raw page). `—`: not among that side's top stalls or not collected.\n");

    for c in &r.cross_checks {
        s.push_str(&format!("\nCross-check: {c}."));
    }
    if !r.cross_checks.is_empty() {
        s.push('\n');
    }
}

/// Roofline placement and the NCU rule rows.
fn render_roofline_and_rules(s: &mut String, r: &NcuDigestReport, rules: &RulesFile) {
    s.push_str("\n## Roofline\n\n");
    for (label, x) in [("baseline", &r.baseline), ("candidate", &r.candidate)] {
        if let Some(rf) = x.as_ref().and_then(|x| x.roofline.as_ref()) {
            s.push_str(&format!(
                "- {label}: achieved {} GB/s of {} GB/s peak ({}%; peak from {}; ncu's own DRAM peak at this clock {} GB/s). {}{}\n",
                rf.achieved_bytes_per_s.map(|v| fmt_num(v / 1e9)).unwrap_or("n/a".into()),
                fmt_num(rf.peak_bytes_per_s / 1e9),
                rf.bandwidth_pct_of_peak.map(fmt_num).unwrap_or("n/a".into()),
                rf.peak_source,
                rf.ncu_peak_bytes_per_s.map(|v| fmt_num(v / 1e9)).unwrap_or("n/a".into()),
                rf.placement,
                rf.pct_of_attainable.map(|p| format!("; {}% of the attainable FLOP/s", fmt_num(p))).unwrap_or_default()
            ));
        }
    }

    s.push_str("\n## NCU rule findings (estimated speedup)\n\n");
    for (label, x) in [("candidate", &r.candidate), ("baseline", &r.baseline)] {
        let Some(x) = x else { continue };
        s.push_str(&format!("{label}:\n"));
        if x.rules.is_empty() {
            s.push_str("- none with an estimate\n");
        }
        for rr in &x.rules {
            let skip = rules
                .non_actionable_rules
                .iter()
                .find(|n| n.rule == rr.rule)
                .map(|n| format!(" _(not a kernel edit here: {})_", n.why))
                .unwrap_or_default();
            s.push_str(&format!(
                "- {} ({}{}, {}): {}{skip}\n",
                rr.rule,
                rr.kind,
                rr.speedup_pct
                    .map(|p| format!(", est. {} {}%", rr.speedup_type, fmt_num(p)))
                    .unwrap_or_default(),
                rr.section,
                esc(&rr.description)
            ));
        }
    }
}

/// The findings weighed, the warnings and the one next edit.
fn render_decision(s: &mut String, r: &NcuDigestReport) {
    s.push_str(&format!(
        "\n## Findings weighed for the next edit ({})\n\n",
        if r.single_report {
            "baseline"
        } else {
            "candidate"
        }
    ));
    if r.considered.is_empty() {
        s.push_str(&format!(
            "Chosen by {} before findings were ranked.\n",
            r.chosen_by
        ));
    } else {
        let mut t = Table::new(&[
            ("precedence", Align::Left),
            ("finding", Align::Left),
            ("estimate", Align::Left),
            ("source", Align::Left),
            ("status", Align::Left),
        ]);
        for c in &r.considered {
            t.row(&[
                c.precedence.to_string(),
                format!("{} ({})", c.id, c.title),
                c.estimate_pct
                    .map(|e| format!("{}%", fmt_num(e)))
                    .unwrap_or("—".into()),
                c.estimate_source.clone(),
                c.status.clone(),
            ]);
        }
        s.push_str(&t.render());
        s.push_str(&format!(
            "\nRule: references/ncu-next-edit-rule.md; chosen by `{}`.\n",
            r.chosen_by
        ));
    }

    if !r.warnings.is_empty() {
        s.push_str("\n## Warnings\n\n");
        for w in &r.warnings {
            s.push_str(&format!("- {}\n", w.replace("Next edit:", "Next edit -")));
        }
    }

    s.push_str("\n## Next edit\n\n");
    s.push_str(&r.next_edit);
    s.push('\n');
}
