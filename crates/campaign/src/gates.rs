//! The loop's gates as `ledger_append` enforces them: an attempt only after the round's
//! evidence, a kernel edit only with the kernel gate's four conditions, code-first research
//! after two flat rounds, and an optimization only with a probe-checked improvement beyond
//! the noise (repeats and a confidence interval, not one lucky row).

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::Path;
use vllm_sota_core::fsx;
use vllm_sota_core::layout::CampaignPaths;
use vllm_sota_core::results::{CandidateRow, RankingMetric, RowRef, RunStatus};
use vllm_sota_rlcr::GapPolicy;
use vllm_sota_rlcr::stats;

use crate::ledger::{KernelGate, Provenance};

/// The latest `gap_decision` lineage row of `round`.
/// Only lines that mention `gap_decision` are parsed: the lineage grows with every append.
fn round_decision(paths: &CampaignPaths, round: u32) -> Result<Option<Value>> {
    let path = paths.lineage();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    Ok(text
        .lines()
        .filter(|l| l.contains("\"gap_decision\""))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .rfind(|r| r["kind"] == "gap_decision" && r["round"] == round))
}

/// An attempt in `round` needs that round's `gap_decision` (saying `patch`), its
/// `analysis/round-N/root-cause.md` and `analysis/round-N/layer-pipeline.md`. The error names
/// every missing piece.
pub(crate) fn attempt_gate(paths: &CampaignPaths, round: u32) -> Result<Option<Value>> {
    let decision = round_decision(paths, round)?;
    let mut missing = Vec::new();
    match decision
        .as_ref()
        .and_then(|d| d["decision"].as_str())
        .unwrap_or("")
    {
        "" => missing.push(format!(
            "humanize/lineage.jsonl: no gap_decision for round {round} (call gap_decision first)"
        )),
        "patch" => {}
        other => bail!(
            "round: round {round}'s gap_decision is `{other}`, not `patch`: no patch attempt is due this round"
        ),
    }
    for (p, tool) in [
        (paths.round_root_cause(round), "profile_tables"),
        (paths.round_layer_pipeline(round), "layer_pipeline"),
    ] {
        if !CampaignPaths::is_written(&p) {
            missing.push(format!(
                "{} (write it with {tool})",
                p.strip_prefix(&paths.root).unwrap_or(&p).display()
            ));
        }
    }
    if !missing.is_empty() {
        bail!(
            "round: an attempt in round {round} needs the round's evidence first; missing: {}",
            missing.join("; ")
        );
    }
    Ok(decision)
}

/// After two flat rounds (`expand_research` on the round's decision) the next attempt needs a
/// source idea of this round with code-first provenance.
pub(crate) fn code_first_gate(
    paths: &CampaignPaths,
    round: u32,
    decision: Option<&Value>,
) -> Result<()> {
    if decision.and_then(|d| d["expand_research"].as_bool()) != Some(true) {
        return Ok(());
    }
    let ideas: Vec<Value> = fsx::read_jsonl(&paths.source_idea_ledger().with_extension("jsonl"))?;
    let code_first = |v: &Value| {
        serde_json::from_value::<Provenance>(v.clone()).is_ok_and(Provenance::is_code_first)
    };
    let found = ideas.iter().any(|i| {
        i["round"] == round
            && (code_first(&i["provenance"])
                || i["also_from"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(code_first)))
    });
    if !found {
        bail!(
            "round: round {round} follows two flat rounds (its gap_decision says expand_research); record a source idea of round {round} with code-first provenance (vllm / sglang / tensorrt_llm / tokenspeed / pr_history) before the next attempt"
        );
    }
    Ok(())
}

/// A path given in the campaign directory or in the vLLM checkout, without `:line` / `::test`.
fn exists_in(paths: &CampaignPaths, checkout: Option<&Path>, item: &str) -> bool {
    let path = item.split("::").next().unwrap_or(item);
    let path = match path.rsplit_once(':') {
        Some((p, line)) if line.chars().all(|c| c.is_ascii_digit()) => p,
        _ => path,
    };
    if path.is_empty() || path.contains("..") || Path::new(path).is_absolute() {
        return false;
    }
    paths.root.join(path).exists() || checkout.is_some_and(|c| c.join(path).exists())
}

/// The kernel gate's four conditions; errors name the field.
pub(crate) fn kernel_gate(paths: &CampaignPaths, round: u32, k: &KernelGate) -> Result<()> {
    if k.kernel.trim().is_empty() {
        bail!("kernel.kernel: required, the kernel or family the edit targets");
    }
    let lp = paths.round_layer_pipeline(round);
    let text = std::fs::read_to_string(&lp).unwrap_or_default();
    if !text
        .to_lowercase()
        .contains(&k.kernel.trim().to_lowercase())
    {
        bail!(
            "kernel.kernel: analysis/round-{round}/layer-pipeline.md does not name '{}': the layer pipeline must identify the target first",
            k.kernel
        );
    }
    let checkout = paths.campaign().ok().and_then(|c| c.vllm_checkout);
    if !exists_in(paths, checkout.as_deref(), &k.correctness_reference) {
        bail!(
            "kernel.correctness_reference: '{}' is not an existing path in the campaign directory or the vLLM checkout",
            k.correctness_reference
        );
    }
    if k.model_shapes.is_empty() || k.model_shapes.iter().any(|s| s.trim().is_empty()) {
        bail!(
            "kernel.model_shapes: required, the model shapes the kernel runs at (e.g. 'M=64 N=4096 K=4096')"
        );
    }
    match checkout.as_deref() {
        Some(c) if exists_in(&CampaignPaths::new(c), None, &k.wiring_path) => Ok(()),
        Some(_) => bail!(
            "kernel.wiring_path: '{}' is not a file in the vLLM checkout",
            k.wiring_path
        ),
        None => bail!("kernel.wiring_path: the campaign has no vllm_checkout to check it in"),
    }
}

/// The measured improvement of an optimization after the noise rule.
pub(crate) struct Improvement {
    pub value: f64,
    pub improvement_pct: f64,
    pub ci_low_pct: f64,
    pub ci_high_pct: f64,
    pub runs: usize,
    pub row_refs: Vec<RowRef>,
}

/// The repeats of `row`'s command in `file`: same framework, candidate and scenario, status ok.
fn repeats_of(paths: &CampaignPaths, file: &str, row: &CandidateRow) -> Result<Vec<CandidateRow>> {
    let rows: Vec<CandidateRow> =
        fsx::read_jsonl(&paths.root.join(file)).with_context(|| format!("cannot read {file}"))?;
    Ok(rows
        .into_iter()
        .filter(|r| {
            r.framework == row.framework
                && r.candidate_id == row.candidate_id
                && r.scenario == row.scenario
                && r.status == RunStatus::Ok
        })
        .collect())
}

/// The noise rule on an optimization: the measured command needs `min_repeats` ok runs, each
/// with a passing correctness probe stored on the row, and the confidence interval of the
/// relative improvement over the prior best (Welch when the prior has repeats, else the prior
/// as a fixed value) must lie entirely above the noise threshold.
pub(crate) fn noise_rule(
    paths: &CampaignPaths,
    measured_ref: &RowRef,
    measured: &CandidateRow,
    metric: RankingMetric,
    prior: (f64, Option<(String, CandidateRow)>),
) -> Result<Improvement> {
    let policy = GapPolicy::load()?;
    let sample = repeats_of(paths, &measured_ref.file, measured)?;
    for r in &sample {
        match &r.correctness {
            None => bail!(
                "measured_improvement.row_ref: row '{}' stores no correctness probe result; revalidate with the probe on (the caller's word is not evidence)",
                r.row_id
            ),
            Some(c) if !c.passed => bail!(
                "measured_improvement.row_ref: row '{}' failed its correctness probe ({}/{} matched): a faster wrong answer is no improvement",
                r.row_id,
                c.matched,
                c.probes
            ),
            _ => {}
        }
    }
    let xs: Vec<f64> = sample.iter().filter_map(|r| metric.value(r)).collect();
    if (xs.len() as u32) < policy.min_repeats {
        bail!(
            "measured_improvement.row_ref: {} ok run(s) of {} in scenario {} in {}; the noise rule needs at least {} repeats (revalidate with repeats >= {})",
            xs.len(),
            measured.candidate_id,
            measured.scenario,
            measured_ref.file,
            policy.min_repeats,
            policy.min_repeats
        );
    }
    let (prior_value, prior_row) = prior;
    let prior_xs: Vec<f64> = match &prior_row {
        Some((file, row)) => repeats_of(paths, file, row)?
            .iter()
            .filter_map(|r| metric.value(r))
            .collect(),
        None => Vec::new(),
    };
    let mean = stats::mean(&xs).expect("min_repeats >= 2");
    let conf = policy.confidence_level;
    let (base, lo, hi) = if prior_xs.len() >= 2 {
        let w = stats::welch(&xs, &prior_xs, conf).context("measured_improvement: no interval")?;
        let pm = stats::mean(&prior_xs).expect("two values");
        (pm, w.low / pm * 100.0, w.high / pm * 100.0)
    } else {
        let sd = stats::sample_sd(&xs).expect("two values");
        let n = xs.len() as f64;
        let half = stats::student_t_quantile(0.5 + conf / 2.0, n - 1.0) * sd / n.sqrt();
        (
            prior_value,
            (mean - half - prior_value) / prior_value * 100.0,
            (mean + half - prior_value) / prior_value * 100.0,
        )
    };
    let improvement_pct = (mean / base - 1.0) * 100.0;
    let thr = policy.noise_threshold_pct;
    if lo <= thr {
        bail!(
            "measured_improvement: {improvement_pct:+.2}% over the prior best {base:.4} ({:.0}% CI {lo:+.2}% .. {hi:+.2}%, {} runs) is not beyond the {thr}% noise threshold",
            conf * 100.0,
            xs.len()
        );
    }
    Ok(Improvement {
        value: mean,
        improvement_pct,
        ci_low_pct: lo,
        ci_high_pct: hi,
        runs: xs.len(),
        row_refs: sample
            .iter()
            .map(|r| RowRef {
                file: measured_ref.file.clone(),
                row_id: r.row_id.clone(),
            })
            .collect(),
    })
}
