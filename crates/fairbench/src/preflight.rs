//! Preflight: capture every enabled framework's `--help`, validate and translate flags,
//! apply the fairness rules (pinned memory knobs, excluded features, TensorRT-LLM backend,
//! max length), record environment gaps, check the GPUs are free, and produce the plan.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
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

/// Why preflight stops planning a framework: it enters the plan as an environment gap
/// (not installed here) or as rejected (with the flag at fault, when one is).
enum Refusal {
    Gap(String),
    Reject(Option<String>, String),
}

impl Refusal {
    /// Record the refusal in the plan and mark the framework with it.
    fn apply(self, fp: FrameworkPlan, plan: &mut Plan) -> FrameworkPlan {
        match self {
            Refusal::Gap(reason) => gap(fp, plan, reason),
            Refusal::Reject(flag, reason) => reject_framework(fp, plan, flag, reason),
        }
    }
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
    let mut fp = new_framework_plan(cfg, name, section, &facts);

    // 1. Help capture (or the environment gap when the framework is not installed here).
    let help_text = match opts.help_texts.get(&name) {
        Some(text) => text.clone(),
        None => match run_help_command(cfg, name, section, &facts, &fp.command_template, opts)? {
            Ok(text) => text,
            Err(refusal) => return Ok(refusal.apply(fp, plan)),
        },
    };
    let help_path = help_dir.join(format!("{name}_serve_help.txt"));
    vllm_sota_core::fsx::write_text(&help_path, &help_text)?;
    fp.help_file = Some(rel(campaign_dir, &help_path));
    let help = HelpFlags::parse(&help_text);

    let step = FrameworkStep {
        cfg,
        name,
        section,
        facts: &facts,
        help: &help,
        fairness,
    };
    match step.plan_flags_and_candidates(&mut fp, plan) {
        Ok(()) => Ok(fp),
        Err(refusal) => Ok(refusal.apply(fp, plan)),
    }
}

/// The plan of a framework before preflight looked at its CLI: ready, no flags yet.
fn new_framework_plan(
    cfg: &BenchmarkConfig,
    name: Framework,
    section: &FrameworkSection,
    facts: &FrameworkFacts,
) -> FrameworkPlan {
    let mut fp = FrameworkPlan {
        framework: name,
        status: FrameworkStatus::Ready,
        reason: None,
        command_template: section
            .server_command
            .clone()
            .unwrap_or_else(|| facts.server_command.clone()),
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
    fp
}

/// Run the framework's help command; the refusal says why its output cannot be used
/// (not installed, timed out, no readable option list).
fn run_help_command(
    cfg: &BenchmarkConfig,
    name: Framework,
    section: &FrameworkSection,
    facts: &FrameworkFacts,
    command_template: &[String],
    opts: &PreflightOptions,
) -> Result<std::result::Result<String, Refusal>> {
    let vars = template_vars(cfg, &cfg.launch.host, 0);
    let help_argv = match &section.help_command {
        Some(h) => fill_template(h, &vars),
        None => {
            let mut a = fill_template(command_template, &vars);
            a.extend(facts.help_args.iter().cloned());
            a
        }
    };
    let argv = procs::wrap_with_launcher(&help_argv, section.launcher.as_deref());
    if !proc::on_path(&argv[0]) {
        return Ok(Err(Refusal::Gap(format!(
            "`{}` is not installed here (not found on PATH): environment gap",
            argv[0]
        ))));
    }
    let timeout = opts.help_timeout.unwrap_or(Duration::from_secs(300));
    let cap = proc::Cmd::from_argv(&argv)
        .and_then(|c| c.envs(&section.env).merge_stderr().run_capture(timeout))
        .with_context(|| format!("frameworks.{name}: cannot run the help command"))?;
    if cap.timed_out {
        return Ok(Err(Refusal::Gap(format!(
            "`{}` did not print its help within {:?}: environment gap",
            proc::shell_join(&argv),
            timeout
        ))));
    }
    if HelpFlags::parse(&cap.stdout).is_empty() && cap.code == Some(0) {
        // It ran, so it is installed: the help text just is not an option list we can read.
        return Ok(Err(Refusal::Reject(
            None,
            format!(
                "`{}` printed no option lines this tool can read; set frameworks.{name}.help_command to a command that prints the CLI's --help",
                proc::shell_join(&argv)
            ),
        )));
    }
    if HelpFlags::parse(&cap.stdout).is_empty() {
        let first = crate::launch::first_error_line(&cap.stdout)
            .unwrap_or_else(|| cap.stdout.lines().next().unwrap_or("").to_string());
        return Ok(Err(Refusal::Gap(format!(
            "`{}` printed no CLI flags (exit {:?}): {}: environment gap",
            proc::shell_join(&argv),
            cap.code,
            first.trim()
        ))));
    }
    Ok(Ok(cap.stdout))
}

/// What every planning step of one framework reads: the config, its section, its facts,
/// the flags of its captured `--help` and the campaign's fairness inputs.
struct FrameworkStep<'a> {
    cfg: &'a BenchmarkConfig,
    name: Framework,
    section: &'a FrameworkSection,
    facts: &'a FrameworkFacts,
    help: &'a HelpFlags,
    fairness: &'a FairnessInputs,
}

impl FrameworkStep<'_> {
    /// Steps 2 to 8: flags, fairness rules, search space, candidates. Rejections of single
    /// knobs or candidates go to `plan` as they are found; a refusal of the whole
    /// framework stops here.
    fn plan_flags_and_candidates(
        &self,
        fp: &mut FrameworkPlan,
        plan: &mut Plan,
    ) -> std::result::Result<(), Refusal> {
        // 2. Managed flags must exist; users must not set them.
        self.check_managed_flags()?;
        // 3. Base flags: resolve, fairness rules.
        let mut base = self.resolve_base_flags(fp)?;
        // 4. TensorRT-LLM backend rule (the command template may carry the flag too).
        self.apply_backend_rule(&fp.command_template, &mut base, &mut fp.notes)?;
        // 4b. The campaign's fairness inputs, in this CLI's spelling.
        let pinned = self
            .fairness
            .apply(self.facts, self.help, &mut base, &mut fp.fairness)
            .map_err(|(flag, reason)| Refusal::Reject(flag, reason))?;
        // 5. Search space: resolve, drop pinned memory knobs, excluded features, bad backends.
        let space = self.resolve_search_space(&pinned, fp, plan);
        // 6. Same GPUs for everyone: tensor parallel = gpu_count unless set.
        self.add_shared_flags(&mut base, &space, &mut fp.notes);
        // 7. Max length must cover max(input + output): the campaign's max context when it
        // names one (every framework gets the same), else the workload's longest request.
        let max_len_flag = self.pin_max_length(&mut base, &space, fp)?;
        // 8. Candidates, then the per-candidate max-length check.
        self.add_candidates(&base, &space, max_len_flag.as_deref(), fp, plan);
        Ok(())
    }

    fn check_managed_flags(&self) -> std::result::Result<(), Refusal> {
        let facts = self.facts;
        for managed in [&facts.port_flag, &facts.host_flag].into_iter().flatten() {
            if !self.help.contains(managed) {
                return Err(Refusal::Reject(
                    Some(managed.clone()),
                    format!(
                        "the server CLI has no `{managed}` flag; fair_benchmark cannot place the server"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The port and host flags: fair_benchmark sets them, never the config.
    fn is_managed(&self, flag: &str) -> bool {
        self.facts.port_flag.as_deref() == Some(flag)
            || self.facts.host_flag.as_deref() == Some(flag)
    }

    /// `base_server_flags` in this CLI's spelling; a flag it lacks, a managed flag or an
    /// excluded feature refuses the framework.
    fn resolve_base_flags(
        &self,
        fp: &mut FrameworkPlan,
    ) -> std::result::Result<OrderedMap<Value>, Refusal> {
        let mut base: OrderedMap<Value> = OrderedMap::default();
        for (key, value) in self.section.base_server_flags.iter() {
            let res = resolve_flag(key, self.facts, self.help).map_err(|reason| {
                Refusal::Reject(Some(as_flag(key)), format!("base_server_flags: {reason}"))
            })?;
            if self.is_managed(&res.used) {
                return Err(Refusal::Reject(
                    Some(res.used.clone()),
                    format!(
                        "base_server_flags: `{}` is managed by fair_benchmark (use launch.host / launch.port)",
                        res.used
                    ),
                ));
            }
            if !self.cfg.search.include_excluded_features {
                self.check_base_flag_not_excluded(&res.used, value)?;
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
        Ok(base)
    }

    /// A base flag that enables a feature kept out of the default pass refuses the framework.
    fn check_base_flag_not_excluded(
        &self,
        used: &str,
        value: &Value,
    ) -> std::result::Result<(), Refusal> {
        let facts = self.facts;
        if let Some(x) = facts.excluded_flags.iter().find(|x| x.flag == used) {
            return Err(Refusal::Reject(
                Some(used.to_string()),
                format!(
                    "base_server_flags: `{}` enables {}, which stays out of the default pass (set search.include_excluded_features to include it)",
                    used, x.feature
                ),
            ));
        }
        if let Some(x) = facts.excluded_if_above_one.iter().find(|x| x.flag == used)
            && as_f64(value).is_some_and(|v| v > 1.0)
        {
            return Err(Refusal::Reject(
                Some(used.to_string()),
                format!(
                    "base_server_flags: `{} {}` enables {}, which stays out of the default pass",
                    used,
                    flags::scalar_text(value),
                    x.feature
                ),
            ));
        }
        Ok(())
    }

    /// The backend rule (TensorRT-LLM): the required value, in the template or the base
    /// flags, or added to the base flags when neither sets it.
    fn apply_backend_rule(
        &self,
        command_template: &[String],
        base: &mut OrderedMap<Value>,
        notes: &mut Vec<String>,
    ) -> std::result::Result<(), Refusal> {
        let Some(rule) = &self.facts.backend_rule else {
            return Ok(());
        };
        let in_template = command_template
            .iter()
            .position(|a| *a == rule.flag)
            .and_then(|i| command_template.get(i + 1))
            .cloned();
        let in_base = base.get(&rule.flag).map(flags::scalar_text);
        for got in [in_template.clone(), in_base.clone()].into_iter().flatten() {
            if got != rule.required {
                return Err(Refusal::Reject(
                    Some(rule.flag.clone()),
                    format!(
                        "`{} {got}`: {} must run as `{} {}`; {}",
                        rule.flag, self.facts.display_name, rule.flag, rule.required, rule.reason
                    ),
                ));
            }
        }
        if in_template.is_none() && in_base.is_none() {
            base.insert(rule.flag.clone(), Value::String(rule.required.clone()));
            notes.push(format!("added `{} {}`", rule.flag, rule.required));
        }
        Ok(())
    }

    /// `search_space` in this CLI's spelling, without pinned, managed or excluded knobs and
    /// values; what is dropped goes to `plan.rejections` / `plan.excluded`.
    fn resolve_search_space(
        &self,
        pinned: &BTreeSet<String>,
        fp: &mut FrameworkPlan,
        plan: &mut Plan,
    ) -> OrderedMap<Vec<Value>> {
        let mut space: OrderedMap<Vec<Value>> = OrderedMap::default();
        for (key, values) in self.section.search_space.iter() {
            let res = match resolve_flag(key, self.facts, self.help) {
                Ok(r) => r,
                Err(reason) => {
                    plan.rejections.push(Rejection {
                        framework: self.name,
                        candidate_id: None,
                        flag: Some(as_flag(key)),
                        reason: format!("search_space: {reason}"),
                    });
                    continue;
                }
            };
            if self.drop_search_flag(&res.used, pinned, plan) {
                continue;
            }
            let kept = self.kept_search_values(&res.used, values, plan);
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
        space
    }

    /// Whether a search-space flag is left out whole (pinned fairness input, memory
    /// fraction, managed flag, excluded feature); records why.
    fn drop_search_flag(&self, used: &str, pinned: &BTreeSet<String>, plan: &mut Plan) -> bool {
        let facts = self.facts;
        let rejected = if pinned.contains(used) {
            Some(format!(
                "search_space: `{used}` carries a campaign fairness input (precision, quantization, tokenizer, trust-remote-code, max context): it is pinned, not searched"
            ))
        } else if facts.memory_fraction_flags.iter().any(|f| f == used) {
            Some(format!(
                "search_space: memory-fraction knob `{used}` stays pinned in base_server_flags (searching it trades KV cache for OOM risk, not speed)"
            ))
        } else if self.is_managed(used) {
            Some(format!(
                "search_space: `{used}` is managed by fair_benchmark"
            ))
        } else {
            None
        };
        if let Some(reason) = rejected {
            plan.rejections.push(Rejection {
                framework: self.name,
                candidate_id: None,
                flag: Some(used.to_string()),
                reason,
            });
            return true;
        }
        if !self.cfg.search.include_excluded_features
            && let Some(x) = facts.excluded_flags.iter().find(|x| x.flag == used)
        {
            plan.excluded.push(Rejection {
                framework: self.name,
                candidate_id: None,
                flag: Some(used.to_string()),
                reason: format!("{} stays out of the default pass", x.feature),
            });
            return true;
        }
        false
    }

    /// The values of a search-space flag that may be searched: not an excluded feature's
    /// value above one, not a backend other than the required one; records why.
    fn kept_search_values(&self, used: &str, values: &[Value], plan: &mut Plan) -> Vec<Value> {
        let facts = self.facts;
        let mut kept = Vec::new();
        for v in values {
            if !self.cfg.search.include_excluded_features
                && let Some(x) = facts.excluded_if_above_one.iter().find(|x| x.flag == used)
                && as_f64(v).is_some_and(|n| n > 1.0)
            {
                plan.excluded.push(Rejection {
                    framework: self.name,
                    candidate_id: None,
                    flag: Some(format!("{} {}", used, flags::scalar_text(v))),
                    reason: format!("{} stays out of the default pass", x.feature),
                });
                continue;
            }
            if let Some(rule) = &facts.backend_rule
                && rule.flag == used
                && flags::scalar_text(v) != rule.required
            {
                plan.rejections.push(Rejection {
                    framework: self.name,
                    candidate_id: None,
                    flag: Some(format!("{} {}", used, flags::scalar_text(v))),
                    reason: format!(
                        "{} must run with `{} {}`; {}",
                        facts.display_name, rule.flag, rule.required, rule.reason
                    ),
                });
                continue;
            }
            kept.push(v.clone());
        }
        kept
    }

    /// Flags every framework gets alike when the config leaves them unset: tensor
    /// parallel = `hardware.gpu_count`, the served model name.
    fn add_shared_flags(
        &self,
        base: &mut OrderedMap<Value>,
        space: &OrderedMap<Vec<Value>>,
        notes: &mut Vec<String>,
    ) {
        let (cfg, facts, help) = (self.cfg, self.facts, self.help);
        if cfg.hardware.gpu_count > 1
            && let Some(tp) = &facts.tensor_parallel_flag
            && help.contains(tp)
            && base.get(tp).is_none()
            && space.get(tp).is_none()
        {
            base.insert(tp.clone(), json!(cfg.hardware.gpu_count));
            notes.push(format!(
                "added `{tp} {}` (hardware.gpu_count)",
                cfg.hardware.gpu_count
            ));
        }
        if let (Some(smn), Some(served)) =
            (&facts.served_model_name_flag, &cfg.model.served_model_name)
            && help.contains(smn)
            && base.get(smn).is_none()
        {
            base.insert(smn.clone(), json!(served));
        }
    }

    /// Add or check the max-length flag and record how this server gets the campaign's
    /// max context; returns the flag when the CLI has one.
    fn pin_max_length(
        &self,
        base: &mut OrderedMap<Value>,
        space: &OrderedMap<Vec<Value>>,
        fp: &mut FrameworkPlan,
    ) -> std::result::Result<Option<String>, Refusal> {
        let fairness = self.fairness;
        let need = fairness.max_context;
        let max_len_flag = self
            .facts
            .max_len_flag
            .clone()
            .filter(|f| self.help.contains(f));
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
                    return Err(Refusal::Reject(
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
                    self.facts.display_name
                ));
                fp.fairness.insert(
                    "max_context".into(),
                    format!("model default (no max-length flag in its --help); must cover {need}"),
                );
            }
        }
        Ok(max_len_flag)
    }

    /// Generate the candidates; one whose max length is below the need is rejected, and a
    /// framework left without candidates is rejected.
    fn add_candidates(
        &self,
        base: &OrderedMap<Value>,
        space: &OrderedMap<Vec<Value>>,
        max_len_flag: Option<&str>,
        fp: &mut FrameworkPlan,
        plan: &mut Plan,
    ) {
        let need = self.fairness.max_context;
        let cands = candidates::generate(
            self.name,
            base,
            space,
            self.cfg.search.tier,
            self.cfg.search.max_candidates_per_framework as usize,
        );
        for c in cands {
            if let Some(f) = max_len_flag
                && let Some(v) = c.flags.get(f).and_then(as_f64)
                && v < need as f64
            {
                plan.rejections.push(Rejection {
                    framework: self.name,
                    candidate_id: Some(c.candidate_id.clone()),
                    flag: Some(f.to_string()),
                    reason: format!(
                        "`{f} {v}` is shorter than max(input + output) = {need} tokens"
                    ),
                });
                continue;
            }
            fp.candidates.push(c);
        }
        if fp.candidates.is_empty() {
            fp.status = FrameworkStatus::Rejected;
            fp.reason = Some("no candidate left after preflight".into());
        }
    }
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
