//! `profile_launch`: profile the winners, not a server that happens to be up.
//!
//! A detached, resumable job: for one framework of a campaign, rebuild the winning
//! candidate's launch argv from `benchmark/plan.json` (the same winner
//! `benchmark/winning-commands.md` shows: best row of `benchmark/candidates.jsonl` by the
//! campaign's ranking rule), add the profiler (vLLM `--profiler-config` bounded to the
//! window's steps; SGLang `SGLANG_TORCH_PROFILER_DIR`), launch it with fair_benchmark's
//! launch/readiness/teardown code, capture prefill and decode at the winner's concurrency
//! and lengths, tear it down, then do the same with CUDA graphs off (vLLM
//! `--enforce-eager`, SGLang `--disable-cuda-graph`) for the mapping twin. Traces land
//! in `profiles/round-N/<framework>/<stage>/` and `<stage>-eager/`; a stage directory
//! holding `capture.json` is done and skipped on resume.

use anyhow::{Context, Result, bail};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use vllm_sota_core::jobs::{self, JobRunner, JobState, JobStatus};
use vllm_sota_core::layout::CampaignPaths;
use vllm_sota_core::results::CandidateRow;
use vllm_sota_core::tool::{Tool, ToolContext};
use vllm_sota_core::{Framework, fsx};
use vllm_sota_fairbench::{
    FrameworkPlan, Plan, free_port, launch_server, plan_path, reap_stale, server_argv, winners,
};

use super::{CapturedStage, ProfileCaptureRequest, Shapes};

pub const JOB_KIND: &str = "profile_launch";

/// The winning row of `framework` for `scenario` (default: the first scenario with one).
pub(crate) fn winner_row(
    paths: &CampaignPaths,
    plan: &Plan,
    framework: Framework,
    scenario: Option<&str>,
) -> Result<CandidateRow> {
    let rows: Vec<CandidateRow> = fsx::read_jsonl(&paths.candidates())
        .with_context(|| format!("{}", paths.candidates().display()))?;
    let win = winners(&rows, plan.config.benchmark.ranking_metric);
    let names: Vec<&str> = plan.scenarios.iter().map(|s| s.name.as_str()).collect();
    if let Some(s) = scenario
        && !names.contains(&s)
    {
        bail!(
            "field `scenario`: `{s}` is not a scenario of this campaign ({})",
            names.join(", ")
        );
    }
    for sc in &plan.scenarios {
        if scenario.is_some_and(|s| s != sc.name) {
            continue;
        }
        if let Some(r) = win
            .get(&sc.name)
            .and_then(|l| l.iter().find(|r| r.framework == framework.id()))
        {
            return Ok(r.clone());
        }
    }
    bail!(
        "no successful {framework} row in {} for {}: run fair_benchmark first (winning-commands.md lists the winners)",
        paths.candidates().display(),
        scenario
            .map(|s| format!("scenario `{s}`"))
            .unwrap_or("any scenario".into())
    )
}

fn load_plan(paths: &CampaignPaths) -> Result<Plan> {
    fsx::read_json(&plan_path(paths))
        .with_context(|| format!("{} (written by fair_benchmark)", plan_path(paths).display()))
}

/// Concurrency and lengths of the framework's winning row.
pub(crate) fn winner_shapes(
    dir: &Path,
    framework: Framework,
    scenario: Option<&str>,
) -> Result<Shapes> {
    let paths = CampaignPaths::new(dir);
    let plan = load_plan(&paths)?;
    let row = winner_row(&paths, &plan, framework, scenario)?;
    shapes_of(&row)
}

fn shapes_of(row: &CandidateRow) -> Result<Shapes> {
    let c = row.workload.max_concurrency.with_context(|| {
        format!(
            "winning row `{}` was measured by request rate, not at a concurrency: pass `concurrency`",
            row.row_id
        )
    })?;
    Ok(Shapes {
        concurrency: c,
        input_len: row.workload.input_len,
        output_len: row.workload.output_len,
    })
}

fn d_stages() -> Vec<String> {
    vec!["prefill".into(), "decode".into()]
}
fn yes() -> bool {
    true
}
fn d_timeout() -> u64 {
    900
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileLaunchRequest {
    /// Campaign run directory (fair_benchmark must have finished there).
    pub campaign_dir: PathBuf,
    /// `vllm` or `sglang`: whose winning command to profile.
    pub framework: Framework,
    /// Scenario (default: the first scenario this framework has a winner for).
    #[serde(default)]
    pub scenario: Option<String>,
    /// Round number (0 = baseline): traces go to profiles/round-N/<framework>/.
    #[serde(default)]
    pub round: u32,
    /// Stages to capture (default prefill then decode).
    #[serde(default = "d_stages")]
    pub stages: Vec<String>,
    /// Also capture the mapping twin with CUDA graphs off (default true).
    #[serde(default = "yes")]
    pub eager_twin: bool,
    /// Requests in flight (default: the winning row's concurrency).
    #[serde(default)]
    pub concurrency: Option<u64>,
    /// Window length in engine steps (default 8 decode, 2 prefill; vLLM's window is fixed
    /// at launch by `max_iterations`, so both stages use the decode value there).
    #[serde(default)]
    pub steps: Option<u64>,
    /// Seconds to wait for steady state, for the window and for /stop_profile (default 900).
    #[serde(default = "d_timeout")]
    pub timeout_s: u64,
    /// Seconds from spawn to ready (default: the plan's, at least 900).
    #[serde(default)]
    pub startup_timeout_s: Option<f64>,
    /// Print the plan (argv, env, directories, shapes) and start nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Long-poll: wait up to this many seconds (≤ 45) for the job before returning.
    #[serde(default)]
    pub wait_s: Option<f64>,
}

/// One server launch: the graph build or its eager twin.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct VariantPlan {
    /// `graph` or `eager`.
    pub variant: String,
    /// Launch argv (the job picks a free port again at launch).
    pub argv: Vec<String>,
    /// Environment added to the plan's.
    pub env_added: BTreeMap<String, String>,
    /// The server's profiler directory.
    pub trace_dir: PathBuf,
    /// Stage directories and whether each already holds a finished capture.
    pub stages: Vec<(String, PathBuf, bool)>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct LaunchPlan {
    pub framework: Framework,
    pub scenario: String,
    pub candidate_id: String,
    pub row_id: String,
    pub concurrency: u64,
    pub input_len: u64,
    pub output_len: u64,
    pub variants: Vec<VariantPlan>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ProfileLaunchReport {
    /// Empty on dry runs.
    pub job_id: String,
    pub state_path: PathBuf,
    /// `running`, `succeeded`, ... or `dry_run`.
    pub status: String,
    pub plan: LaunchPlan,
    /// The job's result once it finished (within `wait_s`).
    #[schemars(schema_with = "vllm_sota_core::schema::json_object_or_null")]
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
}

fn fw_dir(paths: &CampaignPaths, round: u32, fw: Framework) -> PathBuf {
    paths
        .profile_stage_dir(round, fw.id(), "x")
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| paths.profiles_dir())
}

pub fn job_path(paths: &CampaignPaths, round: u32, fw: Framework) -> PathBuf {
    fw_dir(paths, round, fw).join("launch-job.json")
}

fn steps_for(req: &ProfileLaunchRequest, stage: &str) -> u64 {
    match (req.steps, req.framework, stage) {
        (Some(s), _, _) => s,
        (None, Framework::Vllm, _) | (None, _, "decode") => super::DEFAULT_DECODE_STEPS,
        _ => super::DEFAULT_PREFILL_STEPS,
    }
}

/// The winner's argv with the profiler on (and CUDA graphs off for the eager twin).
pub fn profiled_argv(
    fw: Framework,
    base: &[String],
    trace_dir: &Path,
    steps: u64,
    eager: bool,
) -> Vec<String> {
    let mut argv: Vec<String> = Vec::with_capacity(base.len() + 3);
    let mut i = 0;
    while i < base.len() {
        let a = &base[i];
        if fw == Framework::Vllm && a == "--profiler-config" {
            i += 2;
            continue;
        }
        if fw == Framework::Vllm && a.starts_with("--profiler-config") {
            i += 1;
            continue;
        }
        argv.push(a.clone());
        i += 1;
    }
    let has_eager = argv.iter().any(|a| a == "--enforce-eager");
    let has_no_graph = argv.iter().any(|a| a == "--disable-cuda-graph");
    if fw == Framework::Vllm {
        argv.push("--profiler-config".into());
        argv.push(
            serde_json::json!({"profiler": "torch", "torch_profiler_dir": trace_dir, "torch_profiler_record_shapes": true, "delay_iterations": 0, "max_iterations": steps})
                .to_string(),
        );
        if eager && !has_eager {
            argv.push("--enforce-eager".into());
        }
    } else if eager && !has_no_graph {
        argv.push("--disable-cuda-graph".into());
    }
    argv
}

struct Resolved {
    plan: Plan,
    row: CandidateRow,
    shapes: Shapes,
    paths: CampaignPaths,
}

fn resolve(req: &ProfileLaunchRequest) -> Result<Resolved> {
    if !matches!(req.framework, Framework::Vllm | Framework::Sglang) {
        bail!(
            "field `framework` ({}): profile_launch runs vllm or sglang",
            req.framework
        );
    }
    if req.steps == Some(0) {
        bail!("field `steps`: a window of zero engine steps never closes; give at least 1");
    }
    let paths = CampaignPaths::new(&req.campaign_dir);
    let plan = load_plan(&paths)?;
    let row = winner_row(&paths, &plan, req.framework, req.scenario.as_deref())?;
    let mut shapes = shapes_of(&row).or_else(|e| {
        req.concurrency
            .map(|c| Shapes {
                concurrency: c,
                input_len: row.workload.input_len,
                output_len: row.workload.output_len,
            })
            .ok_or(e)
    })?;
    if let Some(c) = req.concurrency {
        shapes.concurrency = c;
    }
    Ok(Resolved {
        plan,
        row,
        shapes,
        paths,
    })
}

fn candidate<'a>(
    plan: &'a Plan,
    fw: Framework,
    id: &str,
) -> Result<(&'a FrameworkPlan, &'a vllm_sota_fairbench::Candidate)> {
    let fp = plan
        .framework(fw)
        .with_context(|| format!("benchmark/plan.json has no framework {fw}"))?;
    let cand = fp
        .candidates
        .iter()
        .find(|c| c.candidate_id == id)
        .with_context(|| format!("benchmark/plan.json has no candidate {id} for {fw}"))?;
    Ok((fp, cand))
}

/// The argv of `fw`'s winning candidate (`r.row` is `fw`'s winner).
fn base_argv(r: &Resolved, fw: Framework, port: u16) -> Result<Vec<String>> {
    let (fp, cand) = candidate(&r.plan, fw, &r.row.candidate_id)?;
    let help = fp
        .help_file
        .as_ref()
        .and_then(|f| std::fs::read_to_string(r.paths.root.join(f)).ok())
        .map(|t| vllm_sota_fairbench::HelpFlags::parse(&t));
    Ok(server_argv(&r.plan.config, fp, cand, help.as_ref(), port))
}

/// What the job will do (also the dry-run answer).
pub fn launch_plan(req: &ProfileLaunchRequest) -> Result<LaunchPlan> {
    let r = resolve(req)?;
    let dir = fw_dir(&r.paths, req.round, req.framework);
    // The job picks its own free port at launch; the plan shows one free now.
    let port = match r.plan.config.launch.port {
        Some(p) => p,
        None => free_port(&r.plan.config.launch.host)?,
    };
    let base = base_argv(&r, req.framework, port)?;
    let mut variants = Vec::new();
    for eager in [false, true] {
        if eager && !req.eager_twin {
            continue;
        }
        let variant = if eager { "eager" } else { "graph" };
        let trace_dir = dir.join(format!("server-{variant}"));
        let steps = steps_for(req, "decode");
        let argv = profiled_argv(req.framework, &base, &trace_dir, steps, eager);
        let mut env_added = BTreeMap::new();
        if req.framework == Framework::Sglang {
            env_added.insert(
                "SGLANG_TORCH_PROFILER_DIR".to_string(),
                trace_dir.display().to_string(),
            );
        }
        let stages = req
            .stages
            .iter()
            .map(|s| {
                let name = if eager {
                    format!("{s}-eager")
                } else {
                    s.clone()
                };
                let d = r
                    .paths
                    .profile_stage_dir(req.round, req.framework.id(), &name);
                let done = d.join("capture.json").is_file();
                (name, d, done)
            })
            .collect();
        variants.push(VariantPlan {
            variant: variant.into(),
            argv,
            env_added,
            trace_dir,
            stages,
        });
    }
    Ok(LaunchPlan {
        framework: req.framework,
        scenario: r.row.scenario.clone(),
        candidate_id: r.row.candidate_id.clone(),
        row_id: r.row.row_id.clone(),
        concurrency: r.shapes.concurrency,
        input_len: r.shapes.input_len,
        output_len: r.shapes.output_len,
        variants,
    })
}

/// The job body: each variant not yet done is launched, captured stage by stage, torn down.
pub fn run_job(runner: &JobRunner) -> Result<serde_json::Value> {
    let req: ProfileLaunchRequest = serde_json::from_value(runner.request())
        .context("job request is not a profile_launch request")?;
    let r = resolve(&req)?;
    let plan = launch_plan(&req)?;
    let dir = fw_dir(&r.paths, req.round, req.framework);
    reap_stale(&dir);
    let cfg = &r.plan.config;
    // Exact prompt lengths with the campaign's tokenizer; approximate ones without it.
    let tokenizer = vllm_sota_fairbench::resolve_tokenizer(cfg.model.tokenizer()).ok();
    let mut done: Vec<CapturedStage> = Vec::new();
    let total = plan.variants.iter().map(|v| v.stages.len()).sum::<usize>() as f64;
    let mut count = 0.0;
    for v in &plan.variants {
        let todo: Vec<&(String, PathBuf, bool)> = v.stages.iter().filter(|s| !s.2).collect();
        count += (v.stages.len() - todo.len()) as f64;
        if todo.is_empty() {
            continue;
        }
        if runner.cancelled() {
            bail!("cancelled; start profile_launch again to resume");
        }
        let eager = v.variant == "eager";
        let port = match cfg.launch.port {
            Some(p) => p,
            None => free_port(&cfg.launch.host)?,
        };
        let base = base_argv(&r, req.framework, port)?;
        let argv = profiled_argv(
            req.framework,
            &base,
            &v.trace_dir,
            steps_for(&req, "decode"),
            eager,
        );
        let (fp, _) = candidate(&r.plan, req.framework, &r.row.candidate_id)?;
        let mut fp = fp.clone();
        fp.env.extend(v.env_added.clone());
        fp.startup_timeout_s = req
            .startup_timeout_s
            .unwrap_or(fp.startup_timeout_s.max(900.0));
        std::fs::create_dir_all(&v.trace_dir)?;
        let log = dir.join(format!("server-{}.log", v.variant));
        runner.progress(
            count,
            Some(total),
            &format!("launching {} ({})", req.framework, v.variant),
        );
        let server = launch_server(cfg, &fp, argv.clone(), port, &log, &dir, &|| {
            runner.cancelled()
        })
        .map_err(|f| {
            anyhow::anyhow!(
                "{} {} server did not become ready ({:?}): {}; log {}",
                req.framework,
                v.variant,
                f.status,
                f.reason,
                f.log_path.display()
            )
        })?;
        let outcome = (|| -> Result<()> {
            for (stage_name, stage_dir, _) in &todo {
                let stage = stage_name.trim_end_matches("-eager");
                runner.progress(
                    count,
                    Some(total),
                    &format!("{} {}: capturing {stage_name}", req.framework, v.variant),
                );
                let creq = ProfileCaptureRequest {
                    base_url: server.base_url(),
                    framework: req.framework,
                    model: Some(server.model_id.clone()),
                    trace_dir: v.trace_dir.clone(),
                    out_dir: stage_dir
                        .parent()
                        .map(Path::to_path_buf)
                        .unwrap_or_default(),
                    stages: vec![stage.to_string()],
                    campaign_dir: None,
                    scenario: None,
                    concurrency: Some(plan.concurrency),
                    input_len: Some(plan.input_len),
                    output_len: Some(plan.output_len),
                    decode_input_len: 128,
                    steps: Some(steps_for(&req, stage)),
                    tokenizer: tokenizer.clone(),
                    server_command: Some(argv.clone()),
                    timeout_s: req.timeout_s,
                    stage_dir_suffix: if eager {
                        "-eager".into()
                    } else {
                        String::new()
                    },
                };
                let ctx = ToolContext::new();
                let rep = super::run_capture(&creq, &ctx)?;
                done.extend(rep.stages);
                count += 1.0;
            }
            Ok(())
        })();
        server.teardown(
            &dir,
            &cfg.hardware.gpu_ids(),
            cfg.hardware
                .check_gpus_free
                .then(|| Duration::from_secs_f64(cfg.launch.gpu_release_timeout_s)),
        );
        outcome?;
    }
    Ok(serde_json::json!({"plan": plan, "captured": done}))
}

pub struct ProfileLaunch;

impl Tool for ProfileLaunch {
    const NAME: &'static str = "profile_launch";
    const DESCRIPTION: &'static str = "Profile the winners, not a server that happens to be up: a detached, resumable job that launches the framework's winning command from fair_benchmark (benchmark/winning-commands.md: the best row of candidates.jsonl, argv rebuilt from plan.json) with the profiler on (vLLM --profiler-config with max_iterations = the window's steps; SGLang SGLANG_TORCH_PROFILER_DIR + num_steps), captures prefill and decode with profile_capture at the winner's concurrency and lengths, tears it down, then does the same with CUDA graphs off (vLLM --enforce-eager, SGLang --disable-cuda-graph) for the mapping twin. Traces go to profiles/round-N/<framework>/<stage>/ and <stage>-eager/, each with capture.json (window batch, steps, representativeness); finished stages are skipped on resume. dry_run returns the plan (argv, env, directories, shapes) without starting anything. Poll with job_status (state profiles/round-N/<framework>/launch-job.json) or pass wait_s ≤ 45. Then profile_tables with trace = profiles/round-N/<framework> picks the eager twin automatically.";
    type Request = ProfileLaunchRequest;
    type Report = ProfileLaunchReport;

    fn run(req: Self::Request, _ctx: &ToolContext) -> Result<Self::Report> {
        let plan = launch_plan(&req)?;
        let paths = CampaignPaths::new(&req.campaign_dir);
        let state_path = job_path(&paths, req.round, req.framework);
        if req.dry_run {
            return Ok(ProfileLaunchReport {
                job_id: String::new(),
                state_path,
                status: "dry_run".into(),
                plan,
                result: None,
                error: None,
            });
        }
        let mut st = match jobs::status(&state_path) {
            Ok(s) if s.status == JobStatus::Running => s,
            _ => {
                let exe =
                    std::env::current_exe().context("cannot locate the vllm-sota executable")?;
                jobs::start(&state_path, JOB_KIND, serde_json::to_value(&req)?, &exe)?
            }
        };
        let wait = req.wait_s.unwrap_or(0.0).clamp(0.0, 45.0);
        let t0 = std::time::Instant::now();
        while !st.status.is_final() && t0.elapsed().as_secs_f64() < wait {
            std::thread::sleep(Duration::from_millis(500));
            st = jobs::status(&state_path)?;
        }
        Ok(report_of(st, plan))
    }

    fn markdown(r: &Self::Report) -> String {
        let mut o = format!(
            "# profile_launch — {} `{}` ({}, concurrency {}, {} → {} tokens)\n\n- Job `{}`: **{}**, state `{}`\n",
            r.plan.framework,
            r.plan.candidate_id,
            r.plan.scenario,
            r.plan.concurrency,
            r.plan.input_len,
            r.plan.output_len,
            r.job_id,
            r.status,
            r.state_path.display()
        );
        for v in &r.plan.variants {
            o.push_str(&format!(
                "\n## {}\n\n```sh\n{}{}\n```\n\n",
                v.variant,
                v.env_added
                    .iter()
                    .map(|(k, val)| format!("{k}={} ", vllm_sota_core::proc::shell_quote(val)))
                    .collect::<String>(),
                vllm_sota_core::proc::shell_join(&v.argv)
            ));
            for (s, d, done) in &v.stages {
                o.push_str(&format!(
                    "- {s} → `{}`{}\n",
                    d.display(),
                    if *done { " (done)" } else { "" }
                ));
            }
        }
        if let Some(e) = &r.error {
            o.push_str(&format!("\nError: {e}\n"));
        }
        o
    }
}

fn report_of(st: JobState, plan: LaunchPlan) -> ProfileLaunchReport {
    ProfileLaunchReport {
        job_id: st.job_id.clone(),
        state_path: st.state_path.clone(),
        status: format!("{:?}", st.status).to_lowercase(),
        plan,
        result: st.result.clone(),
        error: st.error.clone(),
    }
}
