//! Revalidation (every round after a patch): re-run vLLM's winning command (and
//! optionally the leader's, to control for drift) N times with the same workload, SLA
//! and load point; rows tagged with round and vLLM commit go to
//! `benchmark/revalidation/round-N.jsonl`, never into the fixed baseline. The correctness
//! probe runs with it and its verdict is part of every vLLM row.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use vllm_sota_core::jobs::JobRunner;
use vllm_sota_core::layout::{CampaignPaths, now_rfc3339};
use vllm_sota_core::md::{self, Align};
use vllm_sota_core::results::{CandidateRow, Correctness, RowRef, RunStatus};
use vllm_sota_core::{Framework, fsx};

use crate::artifacts::winners;
use crate::candidates::Candidate;
use crate::codecheck::VllmImport;
use crate::config::Scenario;
use crate::launch::{self, LaunchFailure, Server};
use crate::measure::{self, MeasureTarget};
use crate::preflight::{FrameworkPlan, Plan, rel};
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
    let vllm_import = check_vllm_import(&paths, &plan, &targets)?;
    let total = targets.len() * req.repeats as usize;
    let mut round = Round::start(runner, &req, &paths, &plan, commit, vllm_import, total)?;
    for ((fw, cand_id), list) in &group_by_deployment(targets)? {
        round.run_deployment(*fw, cand_id, list)?;
    }
    round.finish(&rows)
}

/// The vLLM import check, when a vLLM winner is among the targets.
fn check_vllm_import(
    paths: &CampaignPaths,
    plan: &Plan,
    targets: &[Target],
) -> Result<Option<VllmImport>> {
    match plan.framework(Framework::Vllm) {
        Some(fp)
            if targets
                .iter()
                .any(|t| t.baseline_row.is_framework(Framework::Vllm)) =>
        {
            let checkout = paths.campaign().ok().and_then(|c| c.vllm_checkout);
            Ok(Some(crate::codecheck::check_vllm_import(
                &plan.config,
                fp,
                checkout.as_deref(),
            )?))
        }
        _ => Ok(None),
    }
}

/// Group targets by deployment: one launch per (framework, candidate).
fn group_by_deployment(targets: Vec<Target>) -> Result<BTreeMap<(Framework, String), Vec<Target>>> {
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
    Ok(groups)
}

/// A repeat still to run: its row id, the target it re-runs, the repeat number.
type Pending<'t> = (String, &'t Target, u32);

/// One revalidation round in progress: what every deployment shares, and the row ids
/// written so far (resume skips them).
struct Round<'a> {
    runner: &'a JobRunner,
    req: &'a RevalidateRequest,
    paths: &'a CampaignPaths,
    plan: &'a Plan,
    commit: Option<String>,
    vllm_import: Option<VllmImport>,
    out_path: PathBuf,
    bench_dir: PathBuf,
    tok: vllm_sota_bench::TokenizerHandle,
    dataset: Option<vllm_sota_bench::Workload>,
    done: HashSet<String>,
    total: usize,
}

/// One launch of a round: a framework's candidate with its server command and log.
struct Deployment<'a> {
    fw: Framework,
    fp: &'a FrameworkPlan,
    cand: &'a Candidate,
    port: u16,
    argv: Vec<String>,
    log_path: PathBuf,
}

impl<'a> Round<'a> {
    /// Read the rows already written, reap stale servers, load the tokenizer and workload.
    fn start(
        runner: &'a JobRunner,
        req: &'a RevalidateRequest,
        paths: &'a CampaignPaths,
        plan: &'a Plan,
        commit: Option<String>,
        vllm_import: Option<VllmImport>,
        total: usize,
    ) -> Result<Self> {
        let out_path = paths.revalidation(req.round);
        let existing: Vec<CandidateRow> = fsx::read_jsonl(&out_path)?;
        let done: HashSet<String> = existing.iter().map(|r| r.row_id.clone()).collect();
        let bench_dir = paths.benchmark_dir();
        launch::reap_stale(&bench_dir);
        let tok_path = measure::resolve_tokenizer(plan.config.model.tokenizer())?;
        let tok = vllm_sota_bench::TokenizerHandle::load(&tok_path)
            .with_context(|| format!("model.tokenizer: cannot load {}", tok_path.display()))?;
        let dataset = search::load_dataset(plan, &tok)?;
        Ok(Round {
            runner,
            req,
            paths,
            plan,
            commit,
            vllm_import,
            out_path,
            bench_dir,
            tok,
            dataset,
            done,
            total,
        })
    }

    /// Launch one deployment, probe it, measure its pending repeats, tear it down.
    fn run_deployment(&mut self, fw: Framework, cand_id: &str, list: &[Target]) -> Result<()> {
        let ids = self.pending(fw, cand_id, list);
        if ids.is_empty() {
            return Ok(());
        }
        if search::stop_requested(self.runner) {
            bail!("cancelled; start revalidate again to resume");
        }
        let dep = self.deployment(fw, cand_id)?;
        self.runner.progress(
            self.done.len() as f64,
            Some(self.total as f64),
            &format!("launching {fw} {cand_id}"),
        );
        let cfg = &self.plan.config;
        let runner = self.runner;
        let cancel = Arc::new(AtomicBool::new(false));
        let launched = launch::launch(
            cfg,
            dep.fp,
            dep.argv.clone(),
            dep.port,
            &dep.log_path,
            &self.bench_dir,
            &|| search::stop_requested(runner),
        );
        let mut server = match launched {
            Ok(s) => s,
            Err(f) => return self.record_launch_failure(&dep, &ids, &f),
        };
        // Probe right after readiness, as when the reference was recorded.
        let correctness = self.probe_correctness(&dep, &server);
        let result = search::watching_cancel(runner, &cancel, || {
            self.measure_repeats(&dep, &ids, &mut server, &cancel, correctness.as_ref())
        });
        server.teardown(
            &self.bench_dir,
            &cfg.hardware.gpu_ids(),
            cfg.hardware
                .check_gpus_free
                .then(|| std::time::Duration::from_secs_f64(cfg.launch.gpu_release_timeout_s)),
        );
        result
    }

    /// The repeats of a deployment's targets whose rows are not written yet.
    fn pending<'t>(&self, fw: Framework, cand_id: &str, list: &'t [Target]) -> Vec<Pending<'t>> {
        let round = self.req.round;
        list.iter()
            .flat_map(|t| {
                (0..self.req.repeats).map(move |k| {
                    (
                        revalidation_row_id(round, fw, cand_id, &t.baseline_row.scenario, k),
                        t,
                        k,
                    )
                })
            })
            .filter(|(id, _, _)| !self.done.contains(id))
            .collect()
    }

    /// The plan's framework and candidate of a deployment, its server command on its port
    /// and its log path.
    fn deployment(&self, fw: Framework, cand_id: &str) -> Result<Deployment<'a>> {
        let plan: &'a Plan = self.plan;
        let cfg = &plan.config;
        let fp = plan
            .framework(fw)
            .with_context(|| format!("plan has no framework {fw}"))?;
        let cand = fp
            .candidates
            .iter()
            .find(|c| c.candidate_id == cand_id)
            .with_context(|| format!("plan has no candidate {cand_id}"))?;
        let help = fp
            .help_file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(self.paths.root.join(f)).ok())
            .map(|t| crate::flags::HelpFlags::parse(&t));
        let port = match cfg.launch.port {
            Some(p) => p,
            None => launch::free_port(&cfg.launch.host)?,
        };
        let argv = launch::server_argv(cfg, fp, cand, help.as_ref(), port);
        let log_path = self.paths.root.join(format!(
            "benchmark/revalidation/round-{}/logs/{fw}/{cand_id}.log",
            self.req.round
        ));
        Ok(Deployment {
            fw,
            fp,
            cand,
            port,
            argv,
            log_path,
        })
    }

    /// A row of this round for one repeat of a target, before its outcome.
    fn base_row(
        &self,
        dep: &Deployment,
        t: &Target,
        k: u32,
        status: RunStatus,
        reason: Option<String>,
    ) -> CandidateRow {
        let (plan, fw, cand_id) = (self.plan, dep.fw, &dep.cand.candidate_id);
        let sc = plan
            .scenarios
            .iter()
            .find(|s| s.name == t.baseline_row.scenario);
        let mut row = blank_row(
            plan,
            fw,
            cand_id,
            dep.cand.is_baseline,
            sc,
            k,
            status,
            reason,
        );
        row.row_id = revalidation_row_id(self.req.round, fw, cand_id, &t.baseline_row.scenario, k);
        row.round = self.req.round;
        row.vllm_commit = self.commit.clone();
        row.workload = t.baseline_row.workload.clone();
        row.server_command =
            crate::procs::wrap_with_launcher(&dep.argv, dep.fp.launcher.as_deref());
        row.validated_cli_flags = t.baseline_row.validated_cli_flags.clone();
        row.artifacts
            .insert("server_log".into(), rel(&self.paths.root, &dep.log_path));
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
            && let Some(v) = &self.vllm_import
        {
            row.normalization.insert("vllm_import".into(), json!(v));
        }
        row
    }

    fn write_row(&mut self, id: &str, row: &CandidateRow) -> Result<()> {
        fsx::append_jsonl(&self.out_path, row)?;
        self.done.insert(id.to_string());
        Ok(())
    }

    /// The server did not start: every pending repeat becomes a row with the launch's status.
    fn record_launch_failure(
        &mut self,
        dep: &Deployment,
        ids: &[Pending],
        f: &LaunchFailure,
    ) -> Result<()> {
        for (id, t, k) in ids {
            let mut row = self.base_row(dep, t, *k, f.status, Some(f.reason.clone()));
            if dep.fw == Framework::Vllm && self.req.correctness {
                row.correctness = Some(Correctness {
                    probes: 0,
                    matched: 0,
                    match_rate: 0.0,
                    passed: false,
                    detail: Some("server did not start: no probe".into()),
                });
            }
            self.write_row(id, &row)?;
        }
        Ok(())
    }

    /// vLLM only, when asked: the probe's answers against the reference the unpatched
    /// build recorded.
    fn probe_correctness(&self, dep: &Deployment, server: &Server) -> Option<Correctness> {
        if dep.fw != Framework::Vllm || !self.req.correctness {
            return None;
        }
        let rp = reference_path(self.paths, dep.fw, &dep.cand.candidate_id);
        Some(match fsx::read_json::<probe::ProbeReference>(&rp) {
            Ok(reference) => match probe::run_probe(
                &server.host,
                server.port,
                &self.plan.config.benchmark.endpoint,
                &server.model_id,
            ) {
                Ok(got) => probe::compare(&reference.answers, &got, self.req.min_match_rate),
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
                    rel(&self.paths.root, &rp)
                )),
            },
        })
    }

    /// Measure every pending repeat on the running server, one row each; a scenario is
    /// warmed up before its first repeat.
    fn measure_repeats(
        &mut self,
        dep: &Deployment,
        ids: &[Pending],
        server: &mut Server,
        cancel: &Arc<AtomicBool>,
        correctness: Option<&Correctness>,
    ) -> Result<()> {
        let plan = self.plan;
        let (fw, cand_id) = (dep.fw, &dep.cand.candidate_id);
        let mut warmed: HashSet<String> = HashSet::new();
        for (id, t, k) in ids {
            if search::stop_requested(self.runner) {
                bail!("cancelled; start revalidate again to resume");
            }
            let sc = plan
                .scenarios
                .iter()
                .find(|s| s.name == t.baseline_row.scenario)
                .context("scenario vanished from plan")?;
            self.runner.progress(
                self.done.len() as f64,
                Some(self.total as f64),
                &format!(
                    "round {} {fw} {cand_id} {} rep {k}",
                    self.req.round, sc.name
                ),
            );
            let key = format!("round-{}/{fw}/{cand_id}/{}/rep{k}", self.req.round, sc.name);
            let target = MeasureTarget {
                base_url: server.base_url(),
                model_id: server.model_id.clone(),
                tokenizer: &self.tok,
                seed_key: key.clone(),
                cancel: Some(cancel.clone()),
                dataset: self.dataset.as_ref(),
                cache: search::cache_probe(dep.fp, server),
            };
            let mut row = self.base_row(dep, t, *k, RunStatus::Ok, None);
            row.correctness = correctness.cloned();
            let started = now_rfc3339();
            let first = warmed.insert(sc.name.clone());
            let outcome = self.run_repeat(&target, sc, t, &key, first);
            // A run cut short by a cancel is not a result: nothing is written, and the
            // resumed job measures this repeat again.
            if search::stop_requested(self.runner) {
                bail!("cancelled; start revalidate again to resume");
            }
            match outcome {
                Ok(p) => self.record_point(&mut row, server, sc, p),
                Err(e) => record_failure(&mut row, server, &e),
            }
            row.started_at = started;
            row.finished_at = now_rfc3339();
            self.write_row(id, &row)?;
        }
        Ok(())
    }

    /// One repeat at the baseline winner's load point (after the warmup on a scenario's
    /// first repeat).
    fn run_repeat(
        &self,
        target: &MeasureTarget,
        sc: &Scenario,
        t: &Target,
        key: &str,
        warm_up: bool,
    ) -> Result<measure::Point> {
        let cfg = &self.plan.config;
        if warm_up {
            measure::warmup(cfg, target, sc)?;
        }
        let seed = measure::point_seed(cfg, key, 0);
        measure::run_point(
            cfg,
            target,
            sc,
            "revalidation",
            t.baseline_row.workload.max_concurrency,
            t.baseline_row.workload.request_rate,
            seed,
        )
    }

    /// Fill a row from a measured point: workload, SLA, metrics, the benchmark command;
    /// `failed` when no request succeeded.
    fn record_point(
        &self,
        row: &mut CandidateRow,
        server: &Server,
        sc: &Scenario,
        p: measure::Point,
    ) {
        let cfg = &self.plan.config;
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
            self.tok.path(),
            sc,
            &p,
        );
        row.metrics = Some(p.metrics);
    }

    /// Summarize the round's rows against the baseline; write the round's markdown.
    fn finish(self, baseline: &[CandidateRow]) -> Result<Value> {
        let (paths, req) = (self.paths, self.req);
        let all: Vec<CandidateRow> = fsx::read_jsonl(&self.out_path)?;
        let summary = summarize(self.plan, baseline, &all, req.round, req.correctness);
        let md_path = paths
            .root
            .join(format!("benchmark/revalidation/round-{}.md", req.round));
        fsx::write_text(&md_path, &summary.1)?;
        let mut v = summary.0;
        v["rows_file"] = json!(rel(&paths.root, &self.out_path));
        v["summary_md"] = json!(rel(&paths.root, &md_path));
        v["vllm_commit"] = json!(self.commit);
        Ok(v)
    }
}

/// A repeat that did not measure: the server's exit status when it died, else the error.
fn record_failure(row: &mut CandidateRow, server: &mut Server, e: &anyhow::Error) {
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

/// A group's correctness cell: the probe's verdict with matched/probes, "not checked" for
/// vLLM without a probe result, a dash for competitors (never probed).
fn correctness_text(corr: Option<&Correctness>, is_vllm: bool) -> String {
    match corr {
        Some(c) => format!(
            "{} ({}/{})",
            if c.passed { "pass" } else { "FAIL" },
            c.matched,
            c.probes
        ),
        None if is_vllm => "not checked".into(),
        None => "—".into(),
    }
}

/// The round's `patch_correct` and its explanation: false on any failed vLLM probe, null
/// when the probe was off or some vLLM group has no result, true when every group passed.
fn patch_verdict(
    failed: bool,
    probe_on: bool,
    vllm_groups: usize,
    vllm_checked: usize,
) -> (Option<bool>, String) {
    if failed {
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
    }
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
    let mut table = md::Table::new(&[
        ("scenario", Align::Left),
        ("framework", Align::Left),
        ("candidate", Align::Left),
        ("baseline", Align::Right),
        ("median", Align::Right),
        ("change", Align::Right),
        ("repeats ok", Align::Right),
        ("SLA passes", Align::Right),
        ("correctness", Align::Left),
    ]);
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
        let corr_text = correctness_text(corr.as_ref(), fw == Framework::Vllm.id());
        table.row(&[
            sc.clone(),
            fw.clone(),
            format!("`{cand}`"),
            base.map(|v| format!("{v:.3}")).unwrap_or("—".into()),
            med.map(|v| format!("{v:.3}")).unwrap_or("—".into()),
            change
                .map(|c| format!("{:+.1}%", c * 100.0))
                .unwrap_or("—".into()),
            format!("{}/{}", vals.len(), list.len()),
            passes.to_string(),
            corr_text,
        ]);
        items.push(json!({"scenario": sc, "framework": fw, "candidate_id": cand, "baseline": base, "median": med, "change": change, "repeats_ok": vals.len(), "repeats": list.len(), "sla_passes": passes, "correctness": corr}));
    }
    let mut md = format!(
        "# Revalidation round {round}\n\nMetric: {metric:?} (median of repeats at the baseline winner's load point).\n\n{}",
        table.render()
    );
    let (patch_correct, check) = patch_verdict(failed, probe_on, vllm_groups, vllm_checked);
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
