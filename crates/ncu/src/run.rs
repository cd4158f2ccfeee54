//! `ncu_digest` end to end: pages per side → parse and select → facts, classes,
//! roofline → eligibility → the one next edit → digest files.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use vllm_sota_core::{ToolContext, fsx};

use crate::acquire::{self, Run, SidePages};
use crate::csvpage::{self, RuleRow};
use crate::metrics::{self, KernelSummary};
use crate::report::{DigestFile, NcuDigestReport, SideReport};
use crate::request::{HarnessResult, NcuDigestRequest, Source};
use crate::rules::{self, RulesFile};
use crate::{capture, decide, digest, eligibility, library, roofline, roofs, select};

/// The sides as acquired: pages (or a blocker) per side, and harness results.
struct Acquired {
    sides: Vec<(&'static str, SidePages)>,
    base_h: Option<HarnessResult>,
    cand_h: Option<HarnessResult>,
}

/// The sides as parsed: one summary per side that has counters.
struct Parsed {
    summaries: BTreeMap<&'static str, KernelSummary>,
    blocker: Option<String>,
    cross_checks: Vec<String>,
}

pub(crate) fn run_digest(req: NcuDigestRequest, ctx: &ToolContext) -> Result<NcuDigestReport> {
    acquire::check_version(&req.version)?;
    let re = regex::Regex::new(&req.kernel_regex)
        .with_context(|| format!("kernel_regex '{}' is not a valid regex", req.kernel_regex))?;
    let rules = rules::load_rules()?;
    if let Source::Import(spec) = &req.source {
        acquire::check_distinct_inputs(spec)?;
    }
    let out = acquire::output_dir(&req)?;
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    // Absolute, because ncu runs in the harness's working directory and writes `-o` there.
    let out =
        std::path::absolute(&out).with_context(|| format!("cannot resolve {}", out.display()))?;
    let mut run = Run {
        req: &req,
        rules: &rules,
        out: out.clone(),
        ctx,
        artifacts: Vec::new(),
        commands: Vec::new(),
        warnings: Vec::new(),
    };
    let ncu = capture::find_ncu(req.ncu_path.as_deref());
    if let (Some(p), None) = (&req.ncu_path, &ncu) {
        run.warnings
            .push(format!("ncu_path {} is not a file", p.display()));
    }
    let acquired = acquire_sides(&mut run, ncu.as_deref())?;
    finish(run, &re, acquired, ctx)
}

/// Step 1: CSV pages per side (capture, export or given), and harness timing.
fn acquire_sides(run: &mut Run, ncu: Option<&Path>) -> Result<Acquired> {
    let req = run.req;
    let ctx = run.ctx;
    let mut sides = Vec::new();
    let mut base_h = req.baseline_harness.clone();
    let mut cand_h = req.candidate_harness.clone();
    match &req.source {
        Source::Capture(spec) => {
            let mut argvs = vec![("baseline", &spec.baseline_argv)];
            if let Some(c) = &spec.candidate_argv {
                argvs.push(("candidate", c));
            }
            let n = argvs.len() as f64;
            for (i, (side, argv)) in argvs.iter().enumerate() {
                ctx.check_cancelled()?;
                ctx.progress(i as f64, Some(n), &format!("profiling {side} under ncu"));
                let pages = match ncu {
                    Some(n) => run.capture_side(n, spec, side, argv)?,
                    None => SidePages::Blocked(
                        "ncu is not installed here (not on PATH, nor under /opt/nvidia/nsight-compute/): no counters"
                            .into(),
                    ),
                };
                sides.push((*side, pages));
            }
            if let Some(t) = &spec.timing {
                ctx.progress(n, Some(n + 1.0), "timing the harnesses without ncu");
                let b = run.harness_timing(spec, t, "baseline", &spec.baseline_argv)?;
                base_h = base_h.or(Some(b));
                if let Some(c) = &spec.candidate_argv {
                    let c = run.harness_timing(spec, t, "candidate", c)?;
                    cand_h = cand_h.or(Some(c));
                }
            }
        }
        Source::Import(spec) => {
            sides.push((
                "baseline",
                run.import_side(ncu, "baseline", &spec.baseline)?,
            ));
            if let Some(c) = &spec.candidate {
                sides.push(("candidate", run.import_side(ncu, "candidate", c)?));
            }
        }
    }
    if !req.source.has_candidate() && cand_h.is_some() {
        run.warnings.push(
            "candidate_harness given without a candidate report: single-report digest of the baseline"
                .into(),
        );
    }
    Ok(Acquired {
        sides,
        base_h,
        cand_h,
    })
}

/// Step 2: parse each side's pages, select its launch, summarise it, cross-check the pages.
fn parse_one(
    run: &mut Run,
    re: &regex::Regex,
    side: &'static str,
    paths: &[PathBuf],
    cross_checks: &mut Vec<String>,
) -> Result<KernelSummary> {
    let parsed = paths
        .iter()
        .map(|p| csvpage::read_page(p))
        .collect::<Result<Vec<_>>>()?;
    let launches = csvpage::merge_pages(parsed)?;
    let (launch, listed) = select::select_launch(&launches, re, run.req.launch.as_deref(), side)?;
    let checks = metrics::cross_check(launch);
    if !checks.is_empty() {
        cross_checks.push(format!(
            "{side}: {} of {} quantities printed on both the details and the raw page agree within print rounding",
            checks.iter().filter(|c| c.agrees).count(),
            checks.len()
        ));
    }
    for c in checks.iter().filter(|c| !c.agrees) {
        run.warnings.push(format!(
            "{side}: details page and raw page disagree on {}: {} vs {}",
            c.key,
            rules::fmt_num(c.details),
            rules::fmt_num(c.raw)
        ));
    }
    let mut s = metrics::summarize(launch, listed);
    roofline::add_problem_facts(&mut s.facts, run.req.problem.as_ref());
    rules::add_rule_facts(run.rules, &s.rules, &mut s.facts);
    roofs::add_roof_facts(run.rules, launch, &mut s.facts);
    Ok(s)
}

/// Steps 2-6 after acquisition: parse, classify, decide, write.
fn finish(
    mut run: Run,
    re: &regex::Regex,
    acquired: Acquired,
    ctx: &ToolContext,
) -> Result<NcuDigestReport> {
    let req = run.req;
    let rules = run.rules;
    let mut summaries: BTreeMap<&'static str, KernelSummary> = BTreeMap::new();
    let mut blockers = Vec::new();
    let mut cross_checks = Vec::new();
    for (side, pages) in &acquired.sides {
        match pages {
            SidePages::Blocked(why) => blockers.push(format!("{side}: {why}")),
            SidePages::Pages(paths) => {
                let s = parse_one(&mut run, re, side, paths, &mut cross_checks)?;
                summaries.insert(side, s);
            }
        }
    }
    let parsed = Parsed {
        summaries,
        blocker: (!blockers.is_empty()).then(|| blockers.join("; ")),
        cross_checks,
    };
    check_distinct_measurements(&parsed.summaries)?;
    write_report(&mut run, re, acquired, parsed, ctx, rules, req)
}

/// Two sides whose selected launches are the same launch of the same process (ncu's
/// ID, Process ID and Host Name), or carry identical counters, are one measurement given
/// twice (e.g. one report exported in two unit styles).
fn check_distinct_measurements(s: &BTreeMap<&str, KernelSummary>) -> Result<()> {
    if let (Some(b), Some(c)) = (s.get("baseline"), s.get("candidate"))
        && b.kernel_name == c.kernel_name
        && ((b.process.is_some() && b.process == c.process && b.launch_id == c.launch_id)
            || (b.facts.len() > 5 && b.facts == c.facts))
    {
        bail!(
            "baseline ({}) and candidate ({}) hold identical counters for '{}': the same measurement given twice; leave the candidate out for a digest of one report",
            b.origin.first().map(String::as_str).unwrap_or("?"),
            c.origin.first().map(String::as_str).unwrap_or("?"),
            b.kernel_name
        );
    }
    Ok(())
}

/// One side's report: class, roofline, the top rule rows.
fn side_report(
    rules: &RulesFile,
    s: &KernelSummary,
    roofline: Option<crate::report::Roofline>,
) -> SideReport {
    let mut rule_rows: Vec<RuleRow> = s
        .rules
        .iter()
        .filter(|r| r.speedup_pct.is_some() || r.kind == "OPT" || r.kind == "WRN")
        .cloned()
        .collect();
    rule_rows.sort_by(|a, b| {
        b.speedup_pct
            .unwrap_or(-1.0)
            .total_cmp(&a.speedup_pct.unwrap_or(-1.0))
            .then(a.rule.cmp(&b.rule))
    });
    rule_rows.truncate(rules.thresholds.top_rules);
    for r in rule_rows.iter_mut() {
        if r.description.chars().count() > 400 {
            r.description = r.description.chars().take(400).collect::<String>() + "…";
        }
    }
    let ncu_bottleneck = s
        .rules
        .iter()
        .find(|r| r.rule == "SOLBottleneck")
        .map(|r| r.description.chars().take(400).collect());
    SideReport {
        kernel_name: s.kernel_name.clone(),
        launch_id: s.launch_id,
        matched_launches: s.matched_launches.iter().take(32).cloned().collect(),
        block: s.block.clone(),
        grid: s.grid.clone(),
        device_name: s.device_name.clone(),
        compute_capability: s.compute_capability.clone(),
        bound_class: rules::classify(rules, &s.facts),
        top_stalls: s
            .stalls
            .iter()
            .take(rules.thresholds.top_stalls)
            .cloned()
            .collect(),
        rules: rule_rows,
        roofline,
        origin: s.origin.clone(),
        not_applicable: s.not_applicable.clone(),
        ncu_bottleneck,
    }
}

/// Warnings when the two sides differ in kernel or launch geometry.
fn side_differences(s: &BTreeMap<&str, KernelSummary>, warnings: &mut Vec<String>) {
    let (Some(b), Some(c)) = (s.get("baseline"), s.get("candidate")) else {
        return;
    };
    if b.kernel_name != c.kernel_name {
        warnings.push(format!(
            "baseline kernel '{}' and candidate kernel '{}' differ (matched by regex)",
            b.kernel_name, c.kernel_name
        ));
    }
    if b.grid != c.grid || b.block != c.block {
        warnings.push(format!(
            "launch geometry changed: grid {} → {}, block {} → {}",
            b.grid.as_deref().unwrap_or("?"),
            c.grid.as_deref().unwrap_or("?"),
            b.block.as_deref().unwrap_or("?"),
            c.block.as_deref().unwrap_or("?")
        ));
    }
}

/// The eligibility gate from the kernel table or the request's share, and the gap.
fn eligibility_of(
    req: &NcuDigestRequest,
    rules: &RulesFile,
    re: &regex::Regex,
    warnings: &mut Vec<String>,
) -> eligibility::Eligibility {
    let (share, source) = match (&req.kernel_table_json, req.kernel_share_pct) {
        (Some(p), _) => match eligibility::share_from_table(p, re) {
            Ok((s, m, n)) => (
                Some(s),
                format!(
                    "{} ({m} of {n} rows match '{}')",
                    p.display(),
                    req.kernel_regex
                ),
            ),
            Err(e) => {
                warnings.push(format!("kernel table unusable: {e:#}"));
                (
                    req.kernel_share_pct,
                    "request (kernel table unusable)".to_string(),
                )
            }
        },
        (None, Some(s)) => (Some(s), "request".to_string()),
        (None, None) => (None, "none".to_string()),
    };
    eligibility::decide(
        share,
        req.gap_pct,
        source,
        rules.thresholds.eligibility_min_kernel_share_pct,
        rules.thresholds.eligibility_min_gap_pct,
    )
}

/// The datasheet of the GPU, when named and known.
fn gpu_spec(
    name: Option<&str>,
    warnings: &mut Vec<String>,
) -> Option<vllm_sota_core::gpu::GpuSpec> {
    match vllm_sota_core::gpu::find(name?) {
        Ok(s) => Some(s),
        Err(e) => {
            warnings.push(format!("no datasheet peaks: {e}"));
            None
        }
    }
}

/// Class, roofline and rule rows of each side with counters.
fn side_reports(
    req: &NcuDigestRequest,
    rules: &RulesFile,
    summaries: &BTreeMap<&'static str, KernelSummary>,
    spec: Option<&vllm_sota_core::gpu::GpuSpec>,
) -> BTreeMap<&'static str, SideReport> {
    summaries
        .iter()
        .map(|(side, s)| {
            let rf = roofline::roofline(
                &s.facts,
                spec,
                req.measured_peaks.as_ref(),
                req.problem.as_ref(),
            );
            (*side, side_report(rules, s, rf))
        })
        .collect()
}

/// Steps 3-6: classes, roofline, eligibility, the next edit, and the files.
#[allow(clippy::too_many_arguments)]
fn write_report(
    run: &mut Run,
    re: &regex::Regex,
    acquired: Acquired,
    parsed: Parsed,
    ctx: &ToolContext,
    rules: &RulesFile,
    req: &NcuDigestRequest,
) -> Result<NcuDigestReport> {
    let Acquired { base_h, cand_h, .. } = acquired;
    let Parsed {
        summaries,
        blocker,
        cross_checks,
    } = parsed;
    let gpu_name = req
        .gpu
        .clone()
        .or_else(|| summaries.values().find_map(|s| s.device_name.clone()));
    let spec = gpu_spec(gpu_name.as_deref(), &mut run.warnings);
    let mut side_reports = side_reports(req, rules, &summaries, spec.as_ref());
    side_differences(&summaries, &mut run.warnings);
    let single_report = !req.source.has_candidate();
    let headline = digest::headline_rows(
        summaries.get("baseline").map(|s| &s.facts),
        summaries.get("candidate").map(|s| &s.facts),
    );
    let verdict = if single_report {
        digest::single_verdict(base_h.as_ref(), summaries.get("baseline"))
    } else {
        digest::verdict(
            rules,
            base_h.as_ref(),
            cand_h.as_ref(),
            summaries.get("baseline"),
            summaries.get("candidate"),
        )
    };
    let eligibility = eligibility_of(req, rules, re, &mut run.warnings);

    // The one next edit, on the candidate (or the baseline alone).
    let subject = if single_report {
        "baseline"
    } else {
        "candidate"
    };
    let subject_name = summaries
        .get(subject)
        .or(summaries.get("baseline"))
        .map(|s| s.kernel_name.clone());
    let lib = subject_name
        .as_deref()
        .and_then(|n| library::detect(rules, n));
    let language = decide::language_of(
        req,
        subject_name.as_deref(),
        lib.as_ref(),
        &mut run.warnings,
    )?;
    let decision = decide::decide_next_edit(
        rules,
        req,
        &summaries,
        side_reports.get(subject),
        base_h.as_ref(),
        cand_h.as_ref(),
        blocker.as_deref(),
        &language,
        lib.as_ref(),
    );

    let digest_md = run.out.join("digest.md");
    let digest_json = run.out.join("digest.json");
    let report = NcuDigestReport {
        version: req.version.clone(),
        mode: req.source.mode(),
        single_report,
        digest_md: digest_md.clone(),
        digest_json: digest_json.clone(),
        kernel_regex: req.kernel_regex.clone(),
        gpu: gpu_name,
        next_edit: decision.line.clone(),
        chosen_by: decision.chosen_by.clone(),
        verdict,
        blocker,
        eligibility,
        baseline: side_reports.remove("baseline"),
        candidate: side_reports.remove("candidate"),
        baseline_harness: base_h,
        candidate_harness: cand_h,
        headline,
        considered: decision.considered.clone(),
        kernel_language: language,
        library: lib,
        warnings: run.warnings.clone(),
        cross_checks,
        artifacts: run.artifacts.clone(),
        commands: run.commands.clone(),
    };
    let md = digest::render(&report, rules, spec.as_ref(), req.problem.as_ref());
    fsx::write_text(&digest_md, &md)?;
    fsx::write_json(
        &digest_json,
        &DigestFile {
            report: &report,
            baseline_facts: summaries.get("baseline").map(|s| &s.facts),
            candidate_facts: summaries.get("candidate").map(|s| &s.facts),
        },
    )?;
    ctx.progress(1.0, Some(1.0), "digest written");
    Ok(report)
}
