//! The fair_benchmark job: for every planned candidate, launch, probe, measure every
//! scenario, append one row per candidate × scenario × repeat to the append-only
//! `benchmark/candidates.jsonl`, tear down; resume skips rows already written.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use vllm_sota_core::jobs::JobRunner;
use vllm_sota_core::layout::{CampaignPaths, now_rfc3339};
use vllm_sota_core::results::{
    CandidateRow, Hardware, RESULT_SCHEMA_VERSION, RunStatus, SlaResult, Workload,
};
use vllm_sota_core::{Framework, fsx};

use crate::candidates::Candidate;
use crate::config::{BenchmarkConfig, Scenario};
use crate::flags::HelpFlags;
use crate::launch::{self, Server};
use crate::measure::{self, MeasureTarget, Point};
use crate::preflight::{FrameworkPlan, FrameworkStatus, Plan, rel};
use crate::probe;

/// Scenario name used by rows that concern every scenario (preflight rejections, gaps).
pub(crate) const ALL_SCENARIOS: &str = "all";

pub fn plan_path(paths: &CampaignPaths) -> PathBuf {
    paths.benchmark_dir().join("plan.json")
}

pub(crate) fn row_id(framework: Framework, candidate: &str, scenario: &str, repeat: u32) -> String {
    format!("{framework}/{candidate}/{scenario}/r{repeat}")
}

pub(crate) fn hardware(cfg: &BenchmarkConfig) -> Hardware {
    Hardware {
        gpu_count: cfg.hardware.gpu_count,
        gpu_model: cfg.hardware.gpu_model.clone(),
        gpu_ids: cfg.hardware.gpu_ids(),
        multi_node: cfg.hardware.multi_node,
    }
}

pub(crate) fn workload(
    cfg: &BenchmarkConfig,
    sc: Option<&Scenario>,
    point: Option<&Point>,
) -> Workload {
    let lengths = point.and_then(|p| p.lengths.clone());
    Workload {
        dataset_path: cfg
            .dataset
            .is_jsonl()
            .then(|| cfg.dataset.path.clone())
            .flatten(),
        input_len_p50: lengths.as_ref().and_then(|l| l.input_p50),
        input_len_p95: lengths.as_ref().and_then(|l| l.input_p95),
        output_len_p50: lengths.as_ref().map(|l| l.output_p50),
        output_len_p95: lengths.as_ref().map(|l| l.output_p95),
        length_buckets: point.map(|p| p.length_buckets.clone()).unwrap_or_default(),
        profile_shapes: point.and_then(|p| p.profile_shapes.clone()),
        dataset: cfg.dataset.kind.clone(),
        scenario: sc
            .map(|s| s.name.clone())
            .unwrap_or_else(|| ALL_SCENARIOS.into()),
        input_len: sc.map(|s| s.input_len).unwrap_or(0),
        output_len: sc.map(|s| s.output_len).unwrap_or(0),
        num_prompts: cfg.dataset.num_prompts,
        max_concurrency: point.and_then(|p| p.max_concurrency),
        request_rate: point.and_then(|p| p.request_rate),
        endpoint: cfg.benchmark.endpoint.clone(),
        seed: point.map(|p| p.seed),
        label: cfg.dataset.label.clone(),
    }
}

/// Row skeleton with everything but the outcome.
#[allow(clippy::too_many_arguments)]
pub(crate) fn blank_row(
    plan: &Plan,
    framework: Framework,
    candidate_id: &str,
    is_baseline: bool,
    sc: Option<&Scenario>,
    repeat: u32,
    status: RunStatus,
    reason: Option<String>,
) -> CandidateRow {
    let cfg = &plan.config;
    let mut normalization = BTreeMap::new();
    normalization.insert("config_hash".to_string(), json!(plan.config_hash));
    if let Some(fp) = plan.framework(framework) {
        if !fp.fairness.is_empty() {
            normalization.insert("fairness".to_string(), json!(fp.fairness));
        }
        if !fp.search.is_empty() {
            normalization.insert("search".to_string(), json!(fp.search));
        }
    }
    CandidateRow {
        schema_version: RESULT_SCHEMA_VERSION,
        row_id: row_id(
            framework,
            candidate_id,
            sc.map(|s| s.name.as_str()).unwrap_or(ALL_SCENARIOS),
            repeat,
        ),
        framework: framework.id().into(),
        candidate_id: candidate_id.into(),
        is_baseline,
        scenario: sc
            .map(|s| s.name.clone())
            .unwrap_or_else(|| ALL_SCENARIOS.into()),
        round: 0,
        repeat,
        vllm_commit: None,
        status,
        failure_reason: reason,
        hardware: hardware(cfg),
        workload: workload(cfg, sc, None),
        sla: SlaResult {
            thresholds: cfg.benchmark.sla.clone(),
            passed: None,
            reasons: vec![],
        },
        metrics: None,
        normalization,
        server_command: vec![],
        benchmark_command: vec![],
        validated_cli_flags: vec![],
        artifacts: BTreeMap::new(),
        correctness: None,
        warmup: None,
        prefix_cache: None,
        started_at: now_rfc3339(),
        finished_at: now_rfc3339(),
    }
}

/// What the benchmark job returns (also the tool's `result` once finished).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub(crate) struct SearchResult {
    pub rows_total: usize,
    pub rows_written_this_run: usize,
    pub rows_skipped_as_done: usize,
    pub status_counts: BTreeMap<String, usize>,
    /// scenario → best framework/candidate (by the ranking rule) with its request throughput.
    pub winners: BTreeMap<String, String>,
    pub artifacts: crate::artifacts::ArtifactPaths,
}

/// The job entry point (`job-run` kind `fair_benchmark`).
pub fn run_fair_benchmark_job(runner: &JobRunner) -> Result<Value> {
    let request = runner.request();
    let dir = request["campaign_dir"]
        .as_str()
        .context("job request: campaign_dir is missing")?;
    let paths = CampaignPaths::new(dir);
    let mut plan: Plan = fsx::read_json(&plan_path(&paths))
        .context("benchmark/plan.json (written by fair_benchmark's preflight)")?;
    restore_env(&paths, &mut plan);
    install_sigterm_flag();
    let result = execute_plan(&paths, &plan, runner)?;
    Ok(serde_json::to_value(result)?)
}

static TERM_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigterm(_: libc::c_int) {
    TERM_REQUESTED.store(true, Ordering::SeqCst);
}

/// In a job process, SIGTERM (what `jobs::cancel` sends) becomes a cancel request, so the
/// job tears its server group down and records `cancelled` instead of dying mid-run.
pub(crate) fn install_sigterm_flag() {
    unsafe {
        libc::signal(libc::SIGTERM, on_sigterm as *const () as libc::sighandler_t);
    }
}

/// Cancel file written by `jobs::cancel`, or SIGTERM received.
pub(crate) fn stop_requested(runner: &JobRunner) -> bool {
    runner.cancelled() || TERM_REQUESTED.load(Ordering::SeqCst)
}

/// Environment values are redacted in plan.json when their names look secret; take them
/// again from the config file the request named (inline configs are stored redacted: pass
/// secrets through the server's own environment instead).
pub(crate) fn restore_env(paths: &CampaignPaths, plan: &mut Plan) {
    let Ok(state) = fsx::read_json::<Value>(&paths.benchmark_job()) else {
        return;
    };
    let Some(p) = state["request"]["config_path"].as_str() else {
        return;
    };
    let Ok(cfg) =
        crate::config::load_config(&crate::preflight::resolve_config_path(&paths.root, p))
    else {
        return;
    };
    for fp in &mut plan.frameworks {
        if let Some(section) = cfg.frameworks.get(&fp.framework) {
            fp.env = section.env.clone();
        }
    }
}

/// Help flags captured at preflight, for `--no-x` rendering.
fn help_of(paths: &CampaignPaths, fp: &FrameworkPlan) -> Option<HelpFlags> {
    fp.help_file
        .as_ref()
        .and_then(|f| std::fs::read_to_string(paths.root.join(f)).ok())
        .map(|t| HelpFlags::parse(&t))
}

struct Ctx<'a> {
    paths: &'a CampaignPaths,
    plan: &'a Plan,
    runner: &'a JobRunner,
    done: HashSet<String>,
    total: usize,
    written: usize,
    skipped: usize,
    cancel: Arc<AtomicBool>,
    tokenizer: Option<vllm_sota_bench::TokenizerHandle>,
    dataset: Option<vllm_sota_bench::Workload>,
}

impl Ctx<'_> {
    fn write(&mut self, row: &CandidateRow) -> Result<()> {
        if self.done.contains(&row.row_id) {
            return Ok(());
        }
        fsx::append_jsonl(&self.paths.candidates(), row)?;
        self.done.insert(row.row_id.clone());
        self.written += 1;
        self.runner.progress(
            self.done_count() as f64,
            Some(self.total as f64),
            &format!("{} {}: {:?}", row.framework, row.row_id, row.status),
        );
        Ok(())
    }
    fn done_count(&self) -> usize {
        self.done.len()
    }
    fn check_cancel(&self) -> Result<()> {
        if stop_requested(self.runner) {
            self.cancel.store(true, Ordering::Relaxed);
            anyhow::bail!(
                "cancelled; {} of {} rows written; start fair_benchmark again to resume",
                self.done.len(),
                self.total
            );
        }
        Ok(())
    }
}

/// Row ids the plan will produce, in order (the resume test checks exactly these exist).
pub fn planned_row_ids(plan: &Plan) -> Vec<String> {
    let mut ids = Vec::new();
    for (i, r) in plan.rejections.iter().enumerate() {
        ids.push(rejection_row_id(r, i));
    }
    for fp in &plan.frameworks {
        match fp.status {
            FrameworkStatus::Ready => {
                for c in &fp.candidates {
                    for sc in &plan.scenarios {
                        for rep in 0..plan.config.benchmark.repeats {
                            ids.push(row_id(fp.framework, &c.candidate_id, &sc.name, rep));
                        }
                    }
                }
            }
            FrameworkStatus::EnvironmentGap => {
                ids.push(row_id(fp.framework, "environment-gap", ALL_SCENARIOS, 0))
            }
            // The framework-level rejection is among plan.rejections.
            FrameworkStatus::Rejected => {}
        }
    }
    ids
}

fn rejection_row_id(r: &crate::preflight::Rejection, i: usize) -> String {
    let what = r.candidate_id.clone().unwrap_or_else(|| {
        let f = r.flag.clone().unwrap_or_else(|| "framework".into());
        let clean: String = f
            .trim_start_matches('-')
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("rejected{i:02}-{clean}")
    });
    row_id(r.framework, &what, ALL_SCENARIOS, 0)
}

pub(crate) fn execute_plan(
    paths: &CampaignPaths,
    plan: &Plan,
    runner: &JobRunner,
) -> Result<SearchResult> {
    let bench_dir = paths.benchmark_dir();
    launch::reap_stale(&bench_dir);
    let existing: Vec<CandidateRow> = fsx::read_jsonl(&paths.candidates())?;
    let done: HashSet<String> = existing.iter().map(|r| r.row_id.clone()).collect();
    let planned = planned_row_ids(plan);
    let skipped = planned.iter().filter(|id| done.contains(*id)).count();
    let cancel = Arc::new(AtomicBool::new(false));
    let mut ctx = Ctx {
        paths,
        plan,
        runner,
        done,
        total: planned.len(),
        written: 0,
        skipped,
        cancel: cancel.clone(),
        tokenizer: None,
        dataset: None,
    };
    runner.progress(
        skipped as f64,
        Some(planned.len() as f64),
        &format!("resuming: {skipped} of {} rows already done", planned.len()),
    );
    write_preflight_rows(&mut ctx)?;
    run_watching_cancel(&mut ctx, &cancel)?;
    search_result(paths, plan, ctx.written, ctx.skipped)
}

/// Preflight outcomes become rows, so summary.md and the schema see them.
fn write_preflight_rows(ctx: &mut Ctx) -> Result<()> {
    let plan = ctx.plan;
    for (i, r) in plan.rejections.iter().enumerate() {
        let id = rejection_row_id(r, i);
        if ctx.done.contains(&id) {
            continue;
        }
        let cand = id.split('/').nth(1).unwrap_or("rejected").to_string();
        let mut row = blank_row(
            plan,
            r.framework,
            &cand,
            false,
            None,
            0,
            RunStatus::Rejected,
            Some(r.reason.clone()),
        );
        if let Some(f) = &r.flag {
            row.validated_cli_flags.push(format!("rejected: {f}"));
        }
        ctx.write(&row)?;
    }
    for fp in &plan.frameworks {
        if fp.status == FrameworkStatus::EnvironmentGap {
            let mut row = blank_row(
                plan,
                fp.framework,
                "environment-gap",
                false,
                None,
                0,
                RunStatus::Skipped,
                fp.reason.clone(),
            );
            row.normalization
                .insert("environment_gap".into(), json!(true));
            ctx.write(&row)?;
        }
    }
    Ok(())
}

/// Run every framework while a watcher thread turns a stop request into `cancel`.
fn run_watching_cancel(ctx: &mut Ctx, cancel: &Arc<AtomicBool>) -> Result<()> {
    let runner = ctx.runner;
    watching_cancel(runner, cancel, || run_frameworks(ctx))
}

/// Run `f` while a watcher thread turns the job's stop request (cancel file or SIGTERM)
/// into `cancel`, so a load in flight stops within a fraction of a second instead of at
/// the next check between runs.
pub(crate) fn watching_cancel<T>(
    runner: &JobRunner,
    cancel: &Arc<AtomicBool>,
    f: impl FnOnce() -> T,
) -> T {
    std::thread::scope(|s| {
        let finished = Arc::new(AtomicBool::new(false));
        let fin = finished.clone();
        let cancel_flag = cancel.clone();
        s.spawn(move || {
            while !fin.load(Ordering::Relaxed) {
                if stop_requested(runner) {
                    cancel_flag.store(true, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        // Stops the watcher even when `f` panics (scope joins it).
        struct Done(Arc<AtomicBool>);
        impl Drop for Done {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _done = Done(finished);
        f()
    })
}

/// Write the artifacts from every row of the file; count statuses, name the winners.
fn search_result(
    paths: &CampaignPaths,
    plan: &Plan,
    written: usize,
    skipped: usize,
) -> Result<SearchResult> {
    let rows: Vec<CandidateRow> = fsx::read_jsonl(&paths.candidates())?;
    let artifacts = crate::artifacts::write_all(paths, plan, &rows)?;
    let mut status_counts = BTreeMap::new();
    for r in &rows {
        *status_counts
            .entry(format!("{:?}", r.status).to_lowercase())
            .or_insert(0) += 1;
    }
    let winners = crate::artifacts::winners(&rows, plan.config.benchmark.ranking_metric)
        .into_iter()
        .filter_map(|(sc, list)| {
            list.first().map(|w| {
                (
                    sc,
                    format!(
                        "{}/{} ({:.3} req/s)",
                        w.framework,
                        w.candidate_id,
                        w.request_throughput().unwrap_or(0.0)
                    ),
                )
            })
        })
        .collect();
    Ok(SearchResult {
        rows_total: rows.len(),
        rows_written_this_run: written,
        rows_skipped_as_done: skipped,
        status_counts,
        winners,
        artifacts,
    })
}

fn run_frameworks(ctx: &mut Ctx) -> Result<()> {
    let plan = ctx.plan;
    for fp in plan
        .frameworks
        .iter()
        .filter(|f| f.status == FrameworkStatus::Ready)
    {
        let help = help_of(ctx.paths, fp);
        for cand in &fp.candidates {
            ctx.check_cancel()?;
            let pending: Vec<(&Scenario, u32)> = plan
                .scenarios
                .iter()
                .flat_map(|sc| (0..plan.config.benchmark.repeats).map(move |r| (sc, r)))
                .filter(|(sc, r)| {
                    !ctx.done
                        .contains(&row_id(fp.framework, &cand.candidate_id, &sc.name, *r))
                })
                .collect();
            if pending.is_empty() {
                continue;
            }
            run_candidate(ctx, fp, cand, help.as_ref(), &pending)?;
        }
    }
    Ok(())
}

fn run_candidate(
    ctx: &mut Ctx,
    fp: &FrameworkPlan,
    cand: &Candidate,
    help: Option<&HelpFlags>,
    pending: &[(&Scenario, u32)],
) -> Result<()> {
    let plan = ctx.plan;
    let cfg = &plan.config;
    let bench_dir = ctx.paths.benchmark_dir();
    let port = match cfg.launch.port {
        Some(p) => p,
        None => launch::free_port(&cfg.launch.host)?,
    };
    let argv = launch::server_argv(cfg, fp, cand, help, port);
    let log_path = bench_dir
        .join("logs")
        .join(fp.framework.id())
        .join(format!("{}.log", cand.candidate_id));
    let log_rel = rel(&ctx.paths.root, &log_path);
    let validated: Vec<String> = fp
        .validated_flags
        .iter()
        .map(|f| {
            if f.how == "exact" {
                f.used.clone()
            } else {
                format!("{} (from {}, {})", f.used, f.requested, f.how)
            }
        })
        .collect();
    let started = now_rfc3339();
    let decorate = |row: &mut CandidateRow| {
        row.server_command = crate::procs::wrap_with_launcher(&argv, fp.launcher.as_deref());
        row.validated_cli_flags = validated.clone();
        row.artifacts.insert("server_log".into(), log_rel.clone());
        row.started_at = started.clone();
        row.finished_at = now_rfc3339();
        row.normalization.insert(
            "flags_varied".into(),
            serde_json::to_value(&cand.varied).unwrap_or(Value::Null),
        );
    };
    ctx.runner.progress(
        ctx.done_count() as f64,
        Some(ctx.total as f64),
        &format!("launching {} {}", fp.framework, cand.candidate_id),
    );
    let cancel = ctx.cancel.clone();
    let server = launch::launch(cfg, fp, argv.clone(), port, &log_path, &bench_dir, &|| {
        cancel.load(Ordering::Relaxed)
    });
    let mut server: Server = match server {
        Ok(s) => s,
        Err(f) => {
            if f.status == RunStatus::Skipped {
                ctx.check_cancel()?;
            }
            for (sc, rep) in pending {
                let mut row = blank_row(
                    plan,
                    fp.framework,
                    &cand.candidate_id,
                    cand.is_baseline,
                    Some(sc),
                    *rep,
                    f.status,
                    Some(f.reason.clone()),
                );
                decorate(&mut row);
                ctx.write(&row)?;
            }
            return Ok(());
        }
    };
    let ready_s = server.ready_after_s;
    let result = measure_candidate(ctx, fp, cand, &mut server, pending, &decorate, ready_s);
    server.teardown(&bench_dir, &cfg.hardware.gpu_ids(), gpu_wait(cfg));
    result
}

fn gpu_wait(cfg: &BenchmarkConfig) -> Option<Duration> {
    cfg.hardware
        .check_gpus_free
        .then(|| Duration::from_secs_f64(cfg.launch.gpu_release_timeout_s))
}

fn tokenizer(ctx: &mut Ctx) -> Result<vllm_sota_bench::TokenizerHandle> {
    if ctx.tokenizer.is_none() {
        let path = measure::resolve_tokenizer(ctx.plan.config.model.tokenizer())?;
        ctx.tokenizer = Some(
            vllm_sota_bench::TokenizerHandle::load(&path)
                .with_context(|| format!("model.tokenizer: cannot load {}", path.display()))?,
        );
    }
    Ok(ctx.tokenizer.clone().unwrap())
}

/// The JSONL workload of the plan, loaded once (None for random workloads).
pub(crate) fn load_dataset(
    plan: &Plan,
    tok: &vllm_sota_bench::TokenizerHandle,
) -> Result<Option<vllm_sota_bench::Workload>> {
    match (&plan.dataset_path, plan.config.dataset.is_jsonl()) {
        (Some(p), true) => Ok(Some(
            vllm_sota_bench::load_jsonl_workload(Path::new(p), Some(tok))
                .with_context(|| format!("dataset.path {p}"))?,
        )),
        _ => Ok(None),
    }
}

/// How to read this server's prefix-cache reuse, when its framework reports it.
pub(crate) fn cache_probe(fp: &FrameworkPlan, server: &Server) -> Option<measure::CacheProbe> {
    fp.facts
        .prefix_cache
        .clone()
        .map(|source| measure::CacheProbe {
            host: server.host.clone(),
            port: server.port,
            source,
            log_path: server.log_path.clone(),
        })
}

pub(crate) fn reference_path(
    paths: &CampaignPaths,
    framework: Framework,
    candidate: &str,
) -> PathBuf {
    paths
        .benchmark_dir()
        .join("correctness")
        .join(framework.id())
        .join(format!("{candidate}.json"))
}

#[allow(clippy::too_many_arguments)]
fn measure_candidate(
    ctx: &mut Ctx,
    fp: &FrameworkPlan,
    cand: &Candidate,
    server: &mut Server,
    pending: &[(&Scenario, u32)],
    decorate: &dyn Fn(&mut CandidateRow),
    ready_s: f64,
) -> Result<()> {
    let plan = ctx.plan;
    let cfg = &plan.config;
    // Reference answers of the unpatched build, right after readiness (fresh server).
    if fp.framework == Framework::Vllm && cfg.launch.record_correctness_reference {
        record_correctness_reference(ctx, fp, cand, server)?;
    }
    let tok = tokenizer(ctx)?;
    if ctx.dataset.is_none() {
        ctx.dataset = load_dataset(plan, &tok)?;
    }
    let dataset = ctx.dataset.clone();
    let mut dead: Option<(RunStatus, String)> = None;
    for (sc, rep) in pending {
        ctx.check_cancel()?;
        let mut row = blank_row(
            plan,
            fp.framework,
            &cand.candidate_id,
            cand.is_baseline,
            Some(sc),
            *rep,
            RunStatus::Ok,
            None,
        );
        if let Some((st, why)) = &dead {
            row.status = *st;
            row.failure_reason = Some(why.clone());
            decorate(&mut row);
            ctx.write(&row)?;
            continue;
        }
        ctx.runner.progress(
            ctx.done_count() as f64,
            Some(ctx.total as f64),
            &format!(
                "measuring {} {} {} r{rep}",
                fp.framework, cand.candidate_id, sc.name
            ),
        );
        let target = MeasureTarget {
            base_url: server.base_url(),
            model_id: server.model_id.clone(),
            tokenizer: &tok,
            seed_key: format!("{}/{}/{}/r{rep}", fp.framework, cand.candidate_id, sc.name),
            cancel: Some(ctx.cancel.clone()),
            dataset: dataset.as_ref(),
            cache: cache_probe(fp, server),
        };
        let outcome = measure_while_alive(cfg, &target, sc, server);
        ctx.check_cancel()?;
        match outcome {
            Ok(m) => record_measured(ctx, fp, cand, sc, *rep, &mut row, &m)?,
            Err(e) => {
                let (st, why) = failure_of(server, &e);
                row.status = st;
                row.failure_reason = Some(why.clone());
                if server.exited().is_some() {
                    dead = Some((st, why));
                }
            }
        }
        normalize(&mut row, ready_s);
        decorate(&mut row);
        ctx.write(&row)?;
    }
    Ok(())
}

/// Record the probe's answers as the candidate's correctness reference, unless one is
/// already there; a failed probe is only a warning.
fn record_correctness_reference(
    ctx: &Ctx,
    fp: &FrameworkPlan,
    cand: &Candidate,
    server: &Server,
) -> Result<()> {
    let path = reference_path(ctx.paths, fp.framework, &cand.candidate_id);
    if path.exists() {
        return Ok(());
    }
    match probe::run_probe(
        &server.host,
        server.port,
        &ctx.plan.config.benchmark.endpoint,
        &server.model_id,
    ) {
        Ok(answers) => {
            let reference = probe::ProbeReference {
                framework: fp.framework,
                candidate_id: cand.candidate_id.clone(),
                recorded_at: now_rfc3339(),
                vllm_commit: vllm_commit_of_campaign(ctx.paths),
                max_tokens: probe::PROBE_MAX_TOKENS,
                answers,
            };
            fsx::write_json(&path, &reference)?;
        }
        Err(e) => tracing::warn!(
            "correctness reference not recorded for {}: {e:#}",
            cand.candidate_id
        ),
    }
    Ok(())
}

/// Measure a scenario; between points, a server that exited ends the measurement.
fn measure_while_alive(
    cfg: &BenchmarkConfig,
    target: &MeasureTarget,
    sc: &Scenario,
    server: &mut Server,
) -> Result<measure::Measured> {
    let log_path = server.log_path.clone();
    let mut alive = || -> Result<()> {
        if let Some(code) = server.exited() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let (_, why) = launch::classify_exit(code, &log);
            anyhow::bail!("server exited during the benchmark: {why}");
        }
        Ok(())
    };
    measure::measure(cfg, target, sc, &mut alive)
}

/// Fill a row from a measurement: the sweep file, the best point's workload, SLA and
/// metrics; `timeout` or `failed` when no request of that point succeeded.
fn record_measured(
    ctx: &Ctx,
    fp: &FrameworkPlan,
    cand: &Candidate,
    sc: &Scenario,
    rep: u32,
    row: &mut CandidateRow,
    m: &measure::Measured,
) -> Result<()> {
    let cfg = &ctx.plan.config;
    let raw = ctx
        .paths
        .benchmark_dir()
        .join("raw")
        .join(fp.framework.id())
        .join(&cand.candidate_id)
        .join(format!("{}-r{rep}.json", sc.name));
    fsx::write_json(&raw, &json!({"row_id": row.row_id, "points": m.points}))?;
    row.artifacts
        .insert("sweep".into(), rel(&ctx.paths.root, &raw));
    row.benchmark_command = m.benchmark_command.clone();
    if let Some(i) = m.best {
        let p = &m.points[i];
        row.workload = workload(cfg, Some(sc), Some(p));
        row.sla = cfg.benchmark.sla.evaluate(Some(&p.metrics));
        row.metrics = Some(p.metrics.clone());
        row.prefix_cache = p.prefix_cache.clone();
        row.warmup = Some(measure::warmup_record(
            cfg,
            "candidate × scenario × repeat (before its first point)",
        ));
        if p.metrics.completed.unwrap_or(0) == 0 {
            row.status = if p.top_error.as_deref().is_some_and(|e| {
                e.to_ascii_lowercase().contains("timeout")
                    || e.to_ascii_lowercase().contains("timed out")
            }) {
                RunStatus::Timeout
            } else {
                RunStatus::Failed
            };
            row.failure_reason = Some(format!(
                "no request succeeded: {}",
                p.top_error.clone().unwrap_or_default()
            ));
        }
    }
    row.normalization
        .insert("points_measured".into(), json!(m.points.len()));
    Ok(())
}

/// Status and reason of a failed measurement: the server's exit when it died, else the error.
fn failure_of(server: &mut Server, e: &anyhow::Error) -> (RunStatus, String) {
    let msg = format!("{e:#}");
    if let Some(code) = server.exited() {
        let log = std::fs::read_to_string(&server.log_path).unwrap_or_default();
        let (st, why) = launch::classify_exit(code, &log);
        (st, format!("server died during the benchmark: {why}"))
    } else {
        (RunStatus::Failed, msg)
    }
}

/// What was done to make rows comparable.
fn normalize(row: &mut CandidateRow, ready_s: f64) {
    let n = &mut row.normalization;
    n.insert(
        "client".into(),
        json!("vllm-sota (same client, same tokenizer, every framework)"),
    );
    if row.workload.dataset == "jsonl" {
        n.insert("unique_prompts".into(), json!("production prompts from the JSONL file, a seed-chosen window per candidate, scenario, repeat and load point (lines may repeat across points: see prefix_cache)"));
    } else {
        n.insert("unique_prompts".into(), json!("fresh random prompts per candidate, scenario, repeat and load point; warmup on its own prompts"));
    }
    n.insert("warmup_excluded".into(), json!(true));
    n.insert(
        "forced_output_length".into(),
        json!("ignore_eos + min_tokens = max_tokens"),
    );
    n.insert("temperature".into(), json!(0.0));
    n.insert(
        "server_ready_s".into(),
        json!((ready_s * 1000.0).round() / 1000.0),
    );
}

pub(crate) fn vllm_commit_of_campaign(paths: &CampaignPaths) -> Option<String> {
    let c = paths.campaign().ok()?;
    let checkout = c.vllm_checkout?;
    git_head(&checkout).or(c.vllm_base_commit)
}

pub(crate) fn git_head(dir: &Path) -> Option<String> {
    let out = vllm_sota_core::proc::Cmd::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "HEAD"])
        .run_capture(std::time::Duration::from_secs(30))
        .ok()?;
    out.success().then(|| out.stdout.trim().to_string())
}
