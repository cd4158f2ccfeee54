//! Preflight: capture every enabled framework's `--help`, validate and translate flags,
//! apply the fairness rules (pinned memory knobs, excluded features, TensorRT-LLM backend,
//! max length), record environment gaps, check the GPUs are free, and produce the plan.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::candidates::{self, Candidate};
use crate::config::{BenchmarkConfig, FrameworkSection, OrderedMap, Scenario, stable_hash};
use crate::fairness::{
    FairnessInputs, check_against_campaign, check_search_parity, jsonl_scenario,
};
use crate::flags::{
    self, FlagResolution, FrameworkFacts, HelpFlags, as_f64, as_flag, resolve_flag,
};
use crate::procs;
use vllm_sota_core::Framework;
use vllm_sota_core::layout::Campaign;
use vllm_sota_core::proc;

/// A flag, value or whole framework refused at preflight, with the reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Rejection {
    pub framework: Framework,
    /// The candidate it applies to, or `None` for a knob / the whole framework.
    #[serde(default)]
    pub candidate_id: Option<String>,
    /// The flag at fault, when one is.
    #[serde(default)]
    pub flag: Option<String>,
    pub reason: String,
}

/// Why a framework is absent: not installed here (not "unsupported").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EnvironmentGap {
    pub framework: Framework,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FrameworkStatus {
    Ready,
    Rejected,
    EnvironmentGap,
}

/// Everything the job needs to run one framework.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FrameworkPlan {
    pub framework: Framework,
    pub status: FrameworkStatus,
    #[serde(default)]
    pub reason: Option<String>,
    /// Server argv template (placeholders `{model}` `{tokenizer}` `{host}` `{port}`), without flags.
    pub command_template: Vec<String>,
    pub launcher: Option<Vec<String>>,
    pub teardown_command: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    pub facts: FrameworkFacts,
    /// Path of the captured help text (relative to the campaign dir).
    pub help_file: Option<String>,
    pub validated_flags: Vec<FlagResolution>,
    pub candidates: Vec<Candidate>,
    /// Notes on what preflight changed (added max length, translated flags...).
    pub notes: Vec<String>,
    /// Seconds from spawn to ready before a candidate is `timeout`.
    pub startup_timeout_s: f64,
    /// Campaign fairness input → how this server gets it (`--dtype bfloat16`, or why
    /// it cannot be passed); copied into every row's `normalization.fairness`.
    #[serde(default)]
    pub fairness: BTreeMap<String, String>,
    /// `bounded search: N candidates ...` or `baseline only: <recorded reason>`.
    #[serde(default)]
    pub search: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuCheck {
    /// `free`, `busy`, `skipped`.
    pub status: String,
    pub detail: String,
}

/// The resolved plan (`benchmark/plan.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub config_hash: String,
    pub config: BenchmarkConfig,
    pub scenarios: Vec<Scenario>,
    pub frameworks: Vec<FrameworkPlan>,
    pub rejections: Vec<Rejection>,
    /// Knobs kept out of the default pass (speculative, DBO, partial prefill > 1).
    pub excluded: Vec<Rejection>,
    pub environment_gaps: Vec<EnvironmentGap>,
    pub gpu_check: GpuCheck,
    /// The longest request (input + output tokens) of the workload; for a JSONL workload
    /// read from the file at preflight.
    #[serde(default)]
    pub max_total_len: u64,
    /// JSONL workloads: the file, resolved against the campaign directory.
    #[serde(default)]
    pub dataset_path: Option<String>,
}

impl Plan {
    pub fn candidates_planned(&self) -> usize {
        self.frameworks
            .iter()
            .filter(|f| f.status == FrameworkStatus::Ready)
            .map(|f| f.candidates.len())
            .sum()
    }
    pub fn framework(&self, name: Framework) -> Option<&FrameworkPlan> {
        self.frameworks.iter().find(|f| f.framework == name)
    }
}

/// Substitute `{model}`, `{tokenizer}`, `{host}`, `{port}`.
pub(crate) fn fill_template(template: &[String], vars: &BTreeMap<&str, String>) -> Vec<String> {
    template
        .iter()
        .map(|a| {
            let mut s = a.clone();
            for (k, v) in vars {
                s = s.replace(&format!("{{{k}}}"), v);
            }
            s
        })
        .collect()
}

/// Options of [`preflight`] beyond the config.
#[derive(Debug, Clone, Default)]
pub struct PreflightOptions {
    /// Use these help texts instead of running the help commands (framework → text).
    pub help_texts: BTreeMap<Framework, String>,
    pub help_timeout: Option<Duration>,
    /// Skip the nvidia-smi check (tests, CPU hosts).
    pub skip_gpu_check: bool,
}

/// Run preflight for every enabled framework; help texts are written to `help_dir`.
pub fn preflight(
    cfg: &BenchmarkConfig,
    campaign_dir: &Path,
    opts: &PreflightOptions,
) -> Result<Plan> {
    let facts_file = flags::load_framework_flags()?;
    let help_dir = campaign_dir.join("help");
    let campaign_json = campaign_dir.join(vllm_sota_core::layout::CAMPAIGN_JSON);
    let campaign: Option<Campaign> = if campaign_json.is_file() {
        Some(vllm_sota_core::fsx::read_json(&campaign_json).context("campaign.json")?)
    } else {
        None
    };
    if let Some(c) = &campaign {
        check_against_campaign(cfg, c)?;
    }
    let mut plan = Plan {
        config_hash: stable_hash(serde_json::to_string(cfg)?.as_bytes()),
        config: cfg.clone(),
        scenarios: cfg.dataset.scenarios(),
        frameworks: vec![],
        rejections: vec![],
        excluded: vec![],
        environment_gaps: vec![],
        gpu_check: GpuCheck {
            status: "skipped".into(),
            detail: "not checked".into(),
        },
        max_total_len: cfg.dataset.max_total_len(),
        dataset_path: None,
    };
    if cfg.dataset.is_jsonl() {
        jsonl_scenario(cfg, campaign_dir, &mut plan)?;
    }
    let fairness = FairnessInputs::new(cfg, campaign.as_ref(), &facts_file, plan.max_total_len)?;
    for (name, section) in cfg.frameworks.iter() {
        if !section.enabled {
            continue;
        }
        let facts = facts_file.facts(*name)?.clone();
        let fp = plan_framework(
            cfg,
            *name,
            section,
            facts,
            &help_dir,
            campaign_dir,
            opts,
            &fairness,
            &mut plan,
        )?;
        plan.frameworks.push(fp);
    }
    check_search_parity(cfg, &mut plan)?;
    plan.gpu_check = if opts.skip_gpu_check || !cfg.hardware.check_gpus_free {
        GpuCheck {
            status: "skipped".into(),
            detail: "GPU check disabled".into(),
        }
    } else {
        check_gpus_free(&cfg.hardware.gpu_ids())
    };
    if plan.gpu_check.status == "busy" {
        bail!(
            "hardware.gpu_ids: {}; free them or pick other GPUs before a GPU run",
            plan.gpu_check.detail
        );
    }
    Ok(plan)
}

#[allow(clippy::too_many_arguments)]
fn plan_framework(
    cfg: &BenchmarkConfig,
    name: Framework,
    section: &FrameworkSection,
    facts: FrameworkFacts,
    help_dir: &Path,
    campaign_dir: &Path,
    opts: &PreflightOptions,
    fairness: &FairnessInputs,
    plan: &mut Plan,
) -> Result<FrameworkPlan> {
    let command_template = section
        .server_command
        .clone()
        .unwrap_or_else(|| facts.server_command.clone());
    let mut fp = FrameworkPlan {
        framework: name,
        status: FrameworkStatus::Ready,
        reason: None,
        command_template: command_template.clone(),
        launcher: section.launcher.clone(),
        teardown_command: section.teardown_command.clone(),
        env: section.env.clone(),
        facts: facts.clone(),
        help_file: None,
        validated_flags: vec![],
        candidates: vec![],
        notes: vec![],
        startup_timeout_s: section
            .startup_timeout_s
            .unwrap_or(cfg.launch.startup_timeout_s),
        fairness: BTreeMap::new(),
        search: String::new(),
    };
    if let Some(route) = &section.models_route {
        fp.facts.readiness.models_route = route.clone();
    }
    let vars = template_vars(cfg, &cfg.launch.host, 0);

    // 1. Help capture (or the environment gap when the framework is not installed here).
    let help_text = if let Some(text) = opts.help_texts.get(&name) {
        text.clone()
    } else {
        let help_argv = match &section.help_command {
            Some(h) => fill_template(h, &vars),
            None => {
                let mut a = fill_template(&command_template, &vars);
                a.extend(facts.help_args.iter().cloned());
                a
            }
        };
        let argv = procs::wrap_with_launcher(&help_argv, section.launcher.as_deref());
        if !proc::on_path(&argv[0]) {
            let reason = format!(
                "`{}` is not installed here (not found on PATH): environment gap",
                argv[0]
            );
            return Ok(gap(fp, plan, reason));
        }
        let timeout = opts.help_timeout.unwrap_or(Duration::from_secs(300));
        let cap = proc::Cmd::from_argv(&argv)
            .and_then(|c| c.envs(&section.env).merge_stderr().run_capture(timeout))
            .with_context(|| format!("frameworks.{name}: cannot run the help command"))?;
        if cap.timed_out {
            let reason = format!(
                "`{}` did not print its help within {:?}: environment gap",
                proc::shell_join(&argv),
                timeout
            );
            return Ok(gap(fp, plan, reason));
        }
        if HelpFlags::parse(&cap.stdout).is_empty() && cap.code == Some(0) {
            // It ran, so it is installed: the help text just is not an option list we can read.
            let reason = format!(
                "`{}` printed no option lines this tool can read; set frameworks.{name}.help_command to a command that prints the CLI's --help",
                proc::shell_join(&argv)
            );
            return Ok(reject_framework(fp, plan, None, reason));
        }
        if HelpFlags::parse(&cap.stdout).is_empty() {
            let first = crate::launch::first_error_line(&cap.stdout)
                .unwrap_or_else(|| cap.stdout.lines().next().unwrap_or("").to_string());
            let reason = format!(
                "`{}` printed no CLI flags (exit {:?}): {}: environment gap",
                proc::shell_join(&argv),
                cap.code,
                first.trim()
            );
            return Ok(gap(fp, plan, reason));
        }
        cap.stdout
    };
    let help_path = help_dir.join(format!("{name}_serve_help.txt"));
    vllm_sota_core::fsx::write_text(&help_path, &help_text)?;
    fp.help_file = Some(rel(campaign_dir, &help_path));
    let help = HelpFlags::parse(&help_text);

    // 2. Managed flags must exist; users must not set them.
    for managed in [&facts.port_flag, &facts.host_flag].into_iter().flatten() {
        if !help.contains(managed) {
            return Ok(reject_framework(
                fp,
                plan,
                Some(managed.clone()),
                format!(
                    "the server CLI has no `{managed}` flag; fair_benchmark cannot place the server"
                ),
            ));
        }
    }

    // 3. Base flags: resolve, fairness rules.
    let mut base: OrderedMap<Value> = OrderedMap::default();
    for (key, value) in section.base_server_flags.iter() {
        let res = match resolve_flag(key, &facts, &help) {
            Ok(r) => r,
            Err(reason) => {
                return Ok(reject_framework(
                    fp,
                    plan,
                    Some(as_flag(key)),
                    format!("base_server_flags: {reason}"),
                ));
            }
        };
        if Some(&res.used) == facts.port_flag.as_ref()
            || Some(&res.used) == facts.host_flag.as_ref()
        {
            return Ok(reject_framework(
                fp,
                plan,
                Some(res.used.clone()),
                format!(
                    "base_server_flags: `{}` is managed by fair_benchmark (use launch.host / launch.port)",
                    res.used
                ),
            ));
        }
        if !cfg.search.include_excluded_features {
            if let Some(x) = facts.excluded_flags.iter().find(|x| x.flag == res.used) {
                return Ok(reject_framework(
                    fp,
                    plan,
                    Some(res.used.clone()),
                    format!(
                        "base_server_flags: `{}` enables {}, which stays out of the default pass (set search.include_excluded_features to include it)",
                        res.used, x.feature
                    ),
                ));
            }
            if let Some(x) = facts
                .excluded_if_above_one
                .iter()
                .find(|x| x.flag == res.used)
                && as_f64(value).is_some_and(|v| v > 1.0)
            {
                return Ok(reject_framework(
                    fp,
                    plan,
                    Some(res.used.clone()),
                    format!(
                        "base_server_flags: `{} {}` enables {}, which stays out of the default pass",
                        res.used,
                        flags::scalar_text(value),
                        x.feature
                    ),
                ));
            }
        }
        if res.how != "exact" {
            fp.notes.push(format!(
                "`{}` → `{}` ({})",
                res.requested, res.used, res.how
            ));
        }
        fp.validated_flags.push(res.clone());
        base.insert(res.used, value.clone());
    }

    // 4. TensorRT-LLM backend rule (the command template may carry the flag too).
    if let Some(rule) = &facts.backend_rule {
        let in_template = command_template
            .iter()
            .position(|a| *a == rule.flag)
            .and_then(|i| command_template.get(i + 1))
            .cloned();
        let in_base = base.get(&rule.flag).map(flags::scalar_text);
        for got in [in_template.clone(), in_base.clone()].into_iter().flatten() {
            if got != rule.required {
                return Ok(reject_framework(
                    fp,
                    plan,
                    Some(rule.flag.clone()),
                    format!(
                        "`{} {got}`: {} must run as `{} {}`; {}",
                        rule.flag, facts.display_name, rule.flag, rule.required, rule.reason
                    ),
                ));
            }
        }
        if in_template.is_none() && in_base.is_none() {
            base.insert(rule.flag.clone(), Value::String(rule.required.clone()));
            fp.notes
                .push(format!("added `{} {}`", rule.flag, rule.required));
        }
    }

    // 4b. The campaign's fairness inputs, in this CLI's spelling.
    let pinned = match fairness.apply(&facts, &help, &mut base, &mut fp.fairness) {
        Ok(p) => p,
        Err((flag, reason)) => return Ok(reject_framework(fp, plan, flag, reason)),
    };

    // 5. Search space: resolve, drop pinned memory knobs, excluded features, bad backends.
    let mut space: OrderedMap<Vec<Value>> = OrderedMap::default();
    for (key, values) in section.search_space.iter() {
        let res = match resolve_flag(key, &facts, &help) {
            Ok(r) => r,
            Err(reason) => {
                plan.rejections.push(Rejection {
                    framework: name,
                    candidate_id: None,
                    flag: Some(as_flag(key)),
                    reason: format!("search_space: {reason}"),
                });
                continue;
            }
        };
        if pinned.contains(&res.used) {
            plan.rejections.push(Rejection {
                framework: name,
                candidate_id: None,
                flag: Some(res.used.clone()),
                reason: format!(
                    "search_space: `{}` carries a campaign fairness input (precision, quantization, tokenizer, trust-remote-code, max context): it is pinned, not searched",
                    res.used
                ),
            });
            continue;
        }
        if facts.memory_fraction_flags.contains(&res.used) {
            plan.rejections.push(Rejection {
                framework: name,
                candidate_id: None,
                flag: Some(res.used.clone()),
                reason: format!("search_space: memory-fraction knob `{}` stays pinned in base_server_flags (searching it trades KV cache for OOM risk, not speed)", res.used),
            });
            continue;
        }
        if Some(&res.used) == facts.port_flag.as_ref()
            || Some(&res.used) == facts.host_flag.as_ref()
        {
            plan.rejections.push(Rejection {
                framework: name,
                candidate_id: None,
                flag: Some(res.used.clone()),
                reason: format!("search_space: `{}` is managed by fair_benchmark", res.used),
            });
            continue;
        }
        if !cfg.search.include_excluded_features
            && let Some(x) = facts.excluded_flags.iter().find(|x| x.flag == res.used)
        {
            plan.excluded.push(Rejection {
                framework: name,
                candidate_id: None,
                flag: Some(res.used.clone()),
                reason: format!("{} stays out of the default pass", x.feature),
            });
            continue;
        }
        let mut kept = Vec::new();
        for v in values {
            if !cfg.search.include_excluded_features
                && let Some(x) = facts
                    .excluded_if_above_one
                    .iter()
                    .find(|x| x.flag == res.used)
                && as_f64(v).is_some_and(|n| n > 1.0)
            {
                plan.excluded.push(Rejection {
                    framework: name,
                    candidate_id: None,
                    flag: Some(format!("{} {}", res.used, flags::scalar_text(v))),
                    reason: format!("{} stays out of the default pass", x.feature),
                });
                continue;
            }
            if let Some(rule) = &facts.backend_rule
                && rule.flag == res.used
                && flags::scalar_text(v) != rule.required
            {
                plan.rejections.push(Rejection {
                    framework: name,
                    candidate_id: None,
                    flag: Some(format!("{} {}", res.used, flags::scalar_text(v))),
                    reason: format!(
                        "{} must run with `{} {}`; {}",
                        facts.display_name, rule.flag, rule.required, rule.reason
                    ),
                });
                continue;
            }
            kept.push(v.clone());
        }
        if kept.is_empty() {
            continue;
        }
        if res.how != "exact" {
            fp.notes.push(format!(
                "search_space `{}` → `{}` ({})",
                res.requested, res.used, res.how
            ));
        }
        fp.validated_flags.push(res.clone());
        space.insert(res.used, kept);
    }

    // 6. Same GPUs for everyone: tensor parallel = gpu_count unless set.
    if cfg.hardware.gpu_count > 1
        && let Some(tp) = &facts.tensor_parallel_flag
        && help.contains(tp)
        && base.get(tp).is_none()
        && space.get(tp).is_none()
    {
        base.insert(tp.clone(), json!(cfg.hardware.gpu_count));
        fp.notes.push(format!(
            "added `{tp} {}` (hardware.gpu_count)",
            cfg.hardware.gpu_count
        ));
    }
    if let (Some(smn), Some(served)) = (&facts.served_model_name_flag, &cfg.model.served_model_name)
        && help.contains(smn)
        && base.get(smn).is_none()
    {
        base.insert(smn.clone(), json!(served));
    }

    // 7. Max length must cover max(input + output): the campaign's max context when it
    // names one (every framework gets the same), else the workload's longest request.
    let need = fairness.max_context;
    let max_len_flag = facts.max_len_flag.clone().filter(|f| help.contains(f));
    match &max_len_flag {
        Some(f) if base.get(f).is_none() && space.get(f).is_none() => {
            base.insert(f.clone(), json!(need));
            fp.notes.push(format!(
                "added `{f} {need}` ({})",
                fairness.max_context_origin
            ));
            fp.fairness
                .insert("max_context".into(), format!("`{f} {need}`"));
        }
        Some(f) => {
            if let Some(v) = base.get(f).and_then(as_f64)
                && fairness.max_context_pinned
                && v != need as f64
            {
                return Ok(reject_framework(
                    fp,
                    plan,
                    Some(f.clone()),
                    format!(
                        "base_server_flags: `{f} {v}` differs from the campaign's max context {need} (campaign.json max_model_len): every framework gets the same"
                    ),
                ));
            }
            fp.fairness
                .insert("max_context".into(), format!("`{f}` as configured"));
        }
        None => {
            fp.notes.push(format!(
                "no known max-length flag for {}: the model's default must cover {need} tokens",
                facts.display_name
            ));
            fp.fairness.insert(
                "max_context".into(),
                format!("model default (no max-length flag in its --help); must cover {need}"),
            );
        }
    }

    // 8. Candidates, then the per-candidate max-length check.
    let cands = candidates::generate(
        name,
        &base,
        &space,
        cfg.search.tier,
        cfg.search.max_candidates_per_framework as usize,
    );
    for c in cands {
        if let Some(f) = &max_len_flag
            && let Some(v) = c.flags.get(f).and_then(as_f64)
            && v < need as f64
        {
            plan.rejections.push(Rejection {
                framework: name,
                candidate_id: Some(c.candidate_id.clone()),
                flag: Some(f.clone()),
                reason: format!("`{f} {v}` is shorter than max(input + output) = {need} tokens"),
            });
            continue;
        }
        fp.candidates.push(c);
    }
    if fp.candidates.is_empty() {
        fp.status = FrameworkStatus::Rejected;
        fp.reason = Some("no candidate left after preflight".into());
    }
    Ok(fp)
}

pub(crate) fn template_vars(
    cfg: &BenchmarkConfig,
    host: &str,
    port: u16,
) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("model", cfg.model.name.clone()),
        ("tokenizer", cfg.model.tokenizer().to_string()),
        ("host", host.to_string()),
        ("port", port.to_string()),
    ])
}

fn gap(mut fp: FrameworkPlan, plan: &mut Plan, reason: String) -> FrameworkPlan {
    plan.environment_gaps.push(EnvironmentGap {
        framework: fp.framework,
        reason: reason.clone(),
    });
    fp.status = FrameworkStatus::EnvironmentGap;
    fp.reason = Some(reason);
    fp
}

fn reject_framework(
    mut fp: FrameworkPlan,
    plan: &mut Plan,
    flag: Option<String>,
    reason: String,
) -> FrameworkPlan {
    plan.rejections.push(Rejection {
        framework: fp.framework,
        candidate_id: None,
        flag,
        reason: reason.clone(),
    });
    fp.status = FrameworkStatus::Rejected;
    fp.reason = Some(reason);
    fp
}

pub(crate) use vllm_sota_core::layout::relative as rel;

/// `nvidia-smi`: are the GPUs free (no compute process on them)? Skipped when absent.
pub(crate) fn check_gpus_free(ids: &[u32]) -> GpuCheck {
    if !proc::on_path("nvidia-smi") {
        return GpuCheck {
            status: "skipped".into(),
            detail: "nvidia-smi not found: no GPU check on this host".into(),
        };
    }
    match gpu_processes(ids) {
        Ok(busy) if busy.is_empty() => GpuCheck {
            status: "free".into(),
            detail: format!("no compute process on GPUs {ids:?}"),
        },
        Ok(busy) => GpuCheck {
            status: "busy".into(),
            detail: format!("GPUs in use: {}", busy.join("; ")),
        },
        Err(e) => GpuCheck {
            status: "skipped".into(),
            detail: format!("nvidia-smi failed: {e:#}"),
        },
    }
}

fn nvsmi(args: &[&str]) -> Result<String> {
    let out = proc::Cmd::new("nvidia-smi")
        .args(args)
        .run_capture(std::time::Duration::from_secs(30))
        .context("cannot run nvidia-smi")?;
    if !out.success() {
        bail!(
            "nvidia-smi {}: {}",
            args.join(" "),
            if out.timed_out {
                "timed out after 30 s"
            } else {
                out.stderr.trim()
            }
        );
    }
    Ok(out.stdout)
}

/// `GPU <id>: pid <pid> (<MiB> MiB)` for every compute process on the given GPUs.
pub(crate) fn gpu_processes(ids: &[u32]) -> Result<Vec<String>> {
    let gpus = nvsmi(&["--query-gpu=index,uuid", "--format=csv,noheader"])?;
    let uuids: BTreeMap<String, u32> = gpus
        .lines()
        .filter_map(|l| {
            let mut it = l.split(',').map(str::trim);
            let idx = it.next()?.parse().ok()?;
            Some((it.next()?.to_string(), idx))
        })
        .collect();
    let apps = nvsmi(&[
        "--query-compute-apps=pid,gpu_uuid,used_memory",
        "--format=csv,noheader,nounits",
    ])?;
    Ok(parse_compute_apps(&apps, &uuids, ids))
}

pub fn parse_compute_apps(apps: &str, uuids: &BTreeMap<String, u32>, ids: &[u32]) -> Vec<String> {
    let mut busy = vec![];
    for line in apps.lines() {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() < 3 {
            continue;
        }
        if let Some(&idx) = uuids.get(f[1])
            && ids.contains(&idx)
        {
            busy.push(format!("GPU {idx}: pid {} ({} MiB)", f[0], f[2]));
        }
    }
    busy
}

/// Resolve a config request field: a path (YAML/JSON) relative to the campaign dir, or inline JSON.
pub(crate) fn resolve_config_path(campaign_dir: &Path, path: &str) -> PathBuf {
    let p = PathBuf::from(path);
    if p.is_absolute() {
        p
    } else {
        campaign_dir.join(p)
    }
}
