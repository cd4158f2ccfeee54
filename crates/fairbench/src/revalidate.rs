//! Revalidation (every round after a patch): re-run vLLM's winning command (and
//! optionally the leader's, to control for drift) N times with the same workload, SLA
//! and load point; rows tagged with round and vLLM commit go to
//! `benchmark/revalidation/round-N.jsonl`, never into the fixed baseline. The correctness
//! probe runs with it and its verdict is part of every vLLM row.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use vllm_sota_core::jobs::JobRunner;
use vllm_sota_core::layout::{CampaignPaths, now_rfc3339};
use vllm_sota_core::results::{CandidateRow, Correctness, RowRef, RunStatus};
use vllm_sota_core::{Framework, fsx};

use crate::artifacts::winners;
use crate::launch;
use crate::measure::{self, MeasureTarget};
use crate::preflight::{Plan, rel};
use crate::probe;
use crate::search::{self, blank_row, plan_path, reference_path};

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevalidateRequest {
    /// Campaign run directory (fair_benchmark must have finished there).
    pub campaign_dir: String,
    /// Round number (≥ 1); rows go to `benchmark/revalidation/round-N.jsonl`.
    pub round: u32,
    /// Measured repeats per scenario (default 3).
    #[serde(default = "three")]
    pub repeats: u32,
    /// Also re-run the leading framework's winner, to control for drift (default false).
    #[serde(default)]
    pub include_leader: bool,
    /// Only these scenarios (default: all).
    #[serde(default)]
    pub scenarios: Option<Vec<String>>,
    /// vLLM commit under test (default: `git rev-parse HEAD` of the campaign's vLLM checkout).
    #[serde(default)]
    pub vllm_commit: Option<String>,
    /// Run the greedy correctness probe against the unpatched build's answers (default true).
    #[serde(default = "yes")]
    pub correctness: bool,
    /// Probe match rate needed to call the patch correct (default 1.0).
    #[serde(default = "one")]
    pub min_match_rate: f64,
    /// Long-poll: wait up to this many seconds (≤ 45) for the job before returning.
    #[serde(default)]
    pub wait_s: Option<f64>,
}

fn three() -> u32 {
    3
}
fn yes() -> bool {
    true
}
fn one() -> f64 {
    1.0
}

pub(crate) fn revalidation_job_path(paths: &CampaignPaths, round: u32) -> PathBuf {
    paths
        .root
        .join(format!("benchmark/revalidation/round-{round}.job.json"))
}

pub(crate) fn revalidation_row_id(
    round: u32,
    framework: Framework,
    candidate: &str,
    scenario: &str,
    repeat: u32,
) -> String {
    format!("round-{round}/{framework}/{candidate}/{scenario}/rep{repeat}")
}

/// One winner to re-run.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub baseline_row: CandidateRow,
}

/// vLLM's winner (and optionally the leader) per scenario.
pub(crate) fn targets(
    plan: &Plan,
    rows: &[CandidateRow],
    req: &RevalidateRequest,
) -> Result<Vec<Target>> {
    let win = winners(rows, plan.config.benchmark.ranking_metric);
    let mut out = Vec::new();
    for sc in &plan.scenarios {
        if let Some(only) = &req.scenarios
            && !only.contains(&sc.name)
        {
            continue;
        }
        let list = win.get(&sc.name).cloned().unwrap_or_default();
        let Some(v) = list.iter().find(|r| r.is_framework(Framework::Vllm)) else {
            bail!(
                "scenario {}: no successful vLLM row in benchmark/candidates.jsonl to revalidate",
                sc.name
            );
        };
        out.push(Target {
            baseline_row: v.clone(),
        });
        if req.include_leader
            && let Some(l) = list.first()
            && !l.is_framework(Framework::Vllm)
        {
            out.push(Target {
                baseline_row: l.clone(),
            });
        }
    }
    if let Some(only) = &req.scenarios
        && let Some(bad) = only
            .iter()
            .find(|s| !plan.scenarios.iter().any(|x| &x.name == *s))
    {
        bail!(
            "scenarios: `{bad}` is not a scenario of this campaign ({})",
            plan.scenarios
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(out)
}

/// The job entry point (`job-run` kind `revalidate`).
pub fn run_revalidate_job(runner: &JobRunner) -> Result<Value> {
    let req: RevalidateRequest =
        serde_json::from_value(runner.request()).context("revalidate job request")?;
    let paths = CampaignPaths::new(&req.campaign_dir);
    let mut plan: Plan = fsx::read_json(&plan_path(&paths))
        .context("benchmark/plan.json: run fair_benchmark first")?;
    search::restore_env(&paths, &mut plan);
    search::install_sigterm_flag();
    let rows: Vec<CandidateRow> = fsx::read_jsonl(&paths.candidates())?;
    let commit = req
        .vllm_commit
        .clone()
        .or_else(|| search::vllm_commit_of_campaign(&paths));
    let targets = targets(&plan, &rows, &req)?;
    // Prove which code is measured before measuring anything.
    let vllm_import = match plan.framework(Framework::Vllm) {
        Some(fp)
            if targets
                .iter()
                .any(|t| t.baseline_row.is_framework(Framework::Vllm)) =>
        {
            let checkout = paths.campaign().ok().and_then(|c| c.vllm_checkout);
            Some(crate::codecheck::check_vllm_import(
                &plan.config,
                fp,
                checkout.as_deref(),
            )?)
        }
        _ => None,
    };
    let out_path = paths.revalidation(req.round);
    let existing: Vec<CandidateRow> = fsx::read_jsonl(&out_path)?;
    let mut done: HashSet<String> = existing.iter().map(|r| r.row_id.clone()).collect();
    let total = targets.len() * req.repeats as usize;
    let bench_dir = paths.benchmark_dir();
    launch::reap_stale(&bench_dir);
    let tok_path = measure::resolve_tokenizer(plan.config.model.tokenizer())?;
    let tok = vllm_sota_bench::TokenizerHandle::load(&tok_path)
        .with_context(|| format!("model.tokenizer: cannot load {}", tok_path.display()))?;
    let dataset = search::load_dataset(&plan, &tok)?;
    let cfg = &plan.config;
    // Group targets by deployment: one launch per (framework, candidate).
    let mut groups: BTreeMap<(Framework, String), Vec<Target>> = BTreeMap::new();
    for t in targets {
        let fw: Framework = t.baseline_row.framework.parse().with_context(|| {
            format!(
                "benchmark/candidates.jsonl row {}: field `framework`",
                t.baseline_row.row_id
            )
        })?;
        groups
            .entry((fw, t.baseline_row.candidate_id.clone()))
            .or_default()
            .push(t);
    }
    for (&(fw, ref cand_id), list) in &groups {
        let ids: Vec<(String, &Target, u32)> = list
            .iter()
            .flat_map(|t| {
                (0..req.repeats).map(move |k| {
                    (
                        revalidation_row_id(req.round, fw, cand_id, &t.baseline_row.scenario, k),
                        t,
                        k,
                    )
                })
            })
            .filter(|(id, _, _)| !done.contains(id))
            .collect();
        if ids.is_empty() {
            continue;
        }
        if search::stop_requested(runner) {
            bail!("cancelled; start revalidate again to resume");
        }
        let fp = plan
            .framework(fw)
            .with_context(|| format!("plan has no framework {fw}"))?;
        let cand = fp
            .candidates
            .iter()
            .find(|c| &c.candidate_id == cand_id)
            .with_context(|| format!("plan has no candidate {cand_id}"))?;
        let help = fp
            .help_file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(paths.root.join(f)).ok())
            .map(|t| crate::flags::HelpFlags::parse(&t));
        let port = match cfg.launch.port {
            Some(p) => p,
            None => launch::free_port(&cfg.launch.host)?,
        };
        let argv = launch::server_argv(cfg, fp, cand, help.as_ref(), port);
        let log_path = paths.root.join(format!(
            "benchmark/revalidation/round-{}/logs/{fw}/{cand_id}.log",
            req.round
        ));
        runner.progress(
            done.len() as f64,
            Some(total as f64),
            &format!("launching {fw} {cand_id}"),
        );
        let base_row = |t: &Target, k: u32, status: RunStatus, reason: Option<String>| {
            let sc = plan
                .scenarios
                .iter()
                .find(|s| s.name == t.baseline_row.scenario);
            let mut row = blank_row(&plan, fw, cand_id, cand.is_baseline, sc, k, status, reason);
            row.row_id = revalidation_row_id(req.round, fw, cand_id, &t.baseline_row.scenario, k);
            row.round = req.round;
            row.vllm_commit = commit.clone();
            row.workload = t.baseline_row.workload.clone();
            row.server_command = crate::procs::wrap_with_launcher(&argv, fp.launcher.as_deref());
            row.validated_cli_flags = t.baseline_row.validated_cli_flags.clone();
            row.artifacts
                .insert("server_log".into(), rel(&paths.root, &log_path));
            row.normalization.insert(
                "revalidation_of".into(),
                serde_json::to_value(RowRef {
                    file: "benchmark/candidates.jsonl".into(),
                    row_id: t.baseline_row.row_id.clone(),
                })
                .unwrap(),
            );
            row.normalization.insert(
                "load_point".into(),
                json!("the baseline winner's max_concurrency and request_rate, fresh prompts"),
            );
            if fw == Framework::Vllm
                && let Some(v) = &vllm_import
            {
                row.normalization.insert("vllm_import".into(), json!(v));
            }
            row
        };
        let cancel = Arc::new(AtomicBool::new(false));
        let mut server =
            match launch::launch(cfg, fp, argv.clone(), port, &log_path, &bench_dir, &|| {
                search::stop_requested(runner)
            }) {
                Ok(s) => s,
                Err(f) => {
                    for (id, t, k) in &ids {
                        let mut row = base_row(t, *k, f.status, Some(f.reason.clone()));
                        if fw == Framework::Vllm && req.correctness {
                            row.correctness = Some(Correctness {
                                probes: 0,
                                matched: 0,
                                match_rate: 0.0,
                                passed: false,
                                detail: Some("server did not start: no probe".into()),
                            });
                        }
                        fsx::append_jsonl(&out_path, &row)?;
                        done.insert(id.clone());
                    }
                    continue;
                }
            };
        // Probe right after readiness, as when the reference was recorded.
        let correctness = if fw == Framework::Vllm && req.correctness {
            let rp = reference_path(&paths, fw, cand_id);
            Some(match fsx::read_json::<probe::ProbeReference>(&rp) {
                Ok(reference) => match probe::run_probe(
                    &server.host,
                    server.port,
                    &cfg.benchmark.endpoint,
                    &server.model_id,
                ) {
                    Ok(got) => probe::compare(&reference.answers, &got, req.min_match_rate),
                    Err(e) => Correctness {
                        probes: reference.answers.len() as u32,
                        matched: 0,
                        match_rate: 0.0,
                        passed: false,
                        detail: Some(format!("probe failed: {e:#}")),
                    },
                },
                Err(_) => Correctness {
                    probes: 0,
                    matched: 0,
                    match_rate: 0.0,
                    passed: false,
                    detail: Some(format!(
                        "no reference answers at {} (recorded by fair_benchmark on the unpatched build)",
                        rel(&paths.root, &rp)
                    )),
                },
            })
        } else {
            None
        };
        let mut warmed: HashSet<String> = HashSet::new();
        let result = (|| -> Result<()> {
            for (id, t, k) in &ids {
                if search::stop_requested(runner) {
                    bail!("cancelled; start revalidate again to resume");
                }
                let sc = plan
                    .scenarios
                    .iter()
                    .find(|s| s.name == t.baseline_row.scenario)
                    .context("scenario vanished from plan")?;
                runner.progress(
                    done.len() as f64,
                    Some(total as f64),
                    &format!("round {} {fw} {cand_id} {} rep {k}", req.round, sc.name),
                );
                let key = format!("round-{}/{fw}/{cand_id}/{}/rep{k}", req.round, sc.name);
                let target = MeasureTarget {
                    base_url: server.base_url(),
                    model_id: server.model_id.clone(),
                    tokenizer: &tok,
                    seed_key: key.clone(),
                    cancel: Some(cancel.clone()),
                    dataset: dataset.as_ref(),
                    cache: search::cache_probe(fp, &server),
                };
                let mut row = base_row(t, *k, RunStatus::Ok, None);
                row.correctness = correctness.clone();
                let started = now_rfc3339();
                let outcome = (|| -> Result<measure::Point> {
                    if warmed.insert(sc.name.clone()) {
                        measure::warmup(cfg, &target, sc)?;
                    }
                    let seed = measure::point_seed(cfg, &key, 0);
                    measure::run_point(
                        cfg,
                        &target,
                        sc,
                        "revalidation",
                        t.baseline_row.workload.max_concurrency,
                        t.baseline_row.workload.request_rate,
                        seed,
                    )
                })();
                match outcome {
                    Ok(p) => {
                        row.workload.seed = Some(p.seed);
                        row.workload.length_buckets = p.length_buckets.clone();
                        row.workload.profile_shapes = p.profile_shapes.clone();
                        row.prefix_cache = p.prefix_cache.clone();
                        row.warmup = Some(measure::warmup_record(
                            cfg,
                            "scenario per launch (before its first repeat)",
                        ));
                        row.sla = cfg.benchmark.sla.evaluate(Some(&p.metrics));
                        if p.metrics.completed.unwrap_or(0) == 0 {
                            row.status = RunStatus::Failed;
                            row.failure_reason = Some(format!(
                                "no request succeeded: {}",
                                p.top_error.clone().unwrap_or_default()
                            ));
                        }
                        row.benchmark_command = measure::benchmark_command(
                            cfg,
                            &server.base_url(),
                            &server.model_id,
                            tok.path(),
                            sc,
                            &p,
                        );
                        row.metrics = Some(p.metrics);
                    }
                    Err(e) => {
                        let (st, why) = match server.exited() {
                            Some(code) => launch::classify_exit(
                                code,
                                &std::fs::read_to_string(&server.log_path).unwrap_or_default(),
                            ),
                            None => (RunStatus::Failed, format!("{e:#}")),
                        };
                        row.status = st;
                        row.failure_reason = Some(why);
                    }
                }
                row.started_at = started;
                row.finished_at = now_rfc3339();
                fsx::append_jsonl(&out_path, &row)?;
                done.insert(id.clone());
            }
            Ok(())
        })();
        server.teardown(
            &bench_dir,
            &cfg.hardware.gpu_ids(),
            cfg.hardware
                .check_gpus_free
                .then(|| std::time::Duration::from_secs_f64(cfg.launch.gpu_release_timeout_s)),
        );
        result?;
    }
    let all: Vec<CandidateRow> = fsx::read_jsonl(&out_path)?;
    let summary = summarize(&plan, &rows, &all, req.round, req.correctness);
    let md_path = paths
        .root
        .join(format!("benchmark/revalidation/round-{}.md", req.round));
    fsx::write_text(&md_path, &summary.1)?;
    let mut v = summary.0;
    v["rows_file"] = json!(rel(&paths.root, &out_path));
    v["summary_md"] = json!(rel(&paths.root, &md_path));
    v["vllm_commit"] = json!(commit);
    Ok(v)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Per framework × scenario: baseline value, median of the repeats, change; correctness
/// verdict. `patch_correct` is the probe's outcome: `false` on any failed vLLM probe,
/// `true` only when every vLLM group ran it and passed, `null` (with
/// `correctness_check` saying why) when it was switched off or never ran.
pub(crate) fn summarize(
    plan: &Plan,
    baseline: &[CandidateRow],
    rows: &[CandidateRow],
    round: u32,
    probe_on: bool,
) -> (Value, String) {
    let metric = plan.config.benchmark.ranking_metric;
    let val = |r: &CandidateRow| vllm_sota_core::results::RankingMetric::value(metric, r);
    let mut groups: BTreeMap<(String, String, String), Vec<&CandidateRow>> = BTreeMap::new();
    for r in rows {
        groups
            .entry((
                r.scenario.clone(),
                r.framework.clone(),
                r.candidate_id.clone(),
            ))
            .or_default()
            .push(r);
    }
    let mut items = Vec::new();
    let mut md = format!(
        "# Revalidation round {round}\n\nMetric: {metric:?} (median of repeats at the baseline winner's load point).\n\n| scenario | framework | candidate | baseline | median | change | repeats ok | SLA passes | correctness |\n|---|---|---|---:|---:|---:|---:|---:|---|\n"
    );
    let mut failed = false;
    let mut vllm_groups = 0usize;
    let mut vllm_checked = 0usize;
    for ((sc, fw, cand), list) in &groups {
        let base = list
            .first()
            .and_then(|r| r.normalization.get("revalidation_of"))
            .and_then(|v| v["row_id"].as_str())
            .and_then(|id| baseline.iter().find(|b| b.row_id == id))
            .and_then(val);
        let vals: Vec<f64> = list
            .iter()
            .filter(|r| r.status == RunStatus::Ok)
            .filter_map(|r| val(r))
            .collect();
        let med = median(vals.clone());
        let change = match (base, med) {
            (Some(b), Some(m)) if b > 0.0 => Some(m / b - 1.0),
            _ => None,
        };
        let passes = list.iter().filter(|r| r.passed_sla()).count();
        let corr = list.first().and_then(|r| r.correctness.clone());
        if fw == Framework::Vllm.id() {
            vllm_groups += 1;
            if let Some(c) = &corr {
                vllm_checked += 1;
                failed |= !c.passed;
            }
        }
        let corr_text = corr
            .as_ref()
            .map(|c| {
                format!(
                    "{} ({}/{})",
                    if c.passed { "pass" } else { "FAIL" },
                    c.matched,
                    c.probes
                )
            })
            .unwrap_or_else(|| {
                if fw == Framework::Vllm.id() {
                    "not checked".into()
                } else {
                    "—".into()
                }
            });
        let _ = writeln!(
            md,
            "| {sc} | {fw} | `{cand}` | {} | {} | {} | {}/{} | {passes} | {corr_text} |",
            base.map(|v| format!("{v:.3}")).unwrap_or("—".into()),
            med.map(|v| format!("{v:.3}")).unwrap_or("—".into()),
            change
                .map(|c| format!("{:+.1}%", c * 100.0))
                .unwrap_or("—".into()),
            vals.len(),
            list.len()
        );
        items.push(json!({"scenario": sc, "framework": fw, "candidate_id": cand, "baseline": base, "median": med, "change": change, "repeats_ok": vals.len(), "repeats": list.len(), "sla_passes": passes, "correctness": corr}));
    }
    let (patch_correct, check) = if failed {
        (
            Some(false),
            "failed: the probe's answers differ from the unpatched build's".to_string(),
        )
    } else if !probe_on {
        (None, "not checked: the correctness probe was switched off (correctness: false); this round is no evidence that the patch is correct".to_string())
    } else if vllm_groups == 0 || vllm_checked < vllm_groups {
        (
            None,
            "not checked: no vLLM row carries a probe result".to_string(),
        )
    } else {
        (
            Some(true),
            "passed: every vLLM probe matched the unpatched build's answers".to_string(),
        )
    };
    match patch_correct {
        Some(false) => {
            md.push_str("\n**The correctness probe failed: the patch is marked incorrect.**\n")
        }
        None => md.push_str(&format!("\n**Correctness {check}.**\n")),
        Some(true) => {}
    }
    (
        json!({"round": round, "patch_correct": patch_correct, "correctness_check": check, "results": items}),
        md,
    )
}
