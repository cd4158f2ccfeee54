//! Fairness enforced by the tool: the benchmark config must describe the campaign it
//! runs in (model, tokenizer, precision, quantization, trust-remote-code, GPUs,
//! frameworks); every server gets the campaign's precision, quantization, tokenizer,
//! trust-remote-code and max context in its own flag spelling; a framework runs its
//! defaults while another is tuned only with a recorded reason.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use vllm_sota_core::Framework;
use vllm_sota_core::layout::Campaign;

use crate::config::{BenchmarkConfig, OrderedMap};
use crate::flags::{FrameworkFacts, FrameworkFlagsFile, HelpFlags, scalar_text};
use crate::preflight::{FrameworkStatus, Plan};

/// `a/b/` and `a/b` name the same thing; a tokenizer given as its `tokenizer.json` names
/// the directory holding it.
fn norm_id(s: &str) -> String {
    let t = s.trim();
    let t = t.strip_suffix("/tokenizer.json").unwrap_or(t);
    t.trim_end_matches('/').to_string()
}

fn norm_precision(s: &str) -> String {
    match s.trim().to_ascii_lowercase().as_str() {
        "bfloat16" => "bf16".into(),
        "float16" | "half" => "fp16".into(),
        "float32" | "float" => "fp32".into(),
        other => other.to_string(),
    }
}

/// The config against `campaign.json`: every mismatch named (config key, campaign field,
/// both values), all at once.
pub(crate) fn check_against_campaign(cfg: &BenchmarkConfig, c: &Campaign) -> Result<()> {
    let mut bad: Vec<String> = Vec::new();
    let mut differ = |key: &str, field: &str, got: String, want: String| {
        bad.push(format!(
            "{key} is {got} but campaign.json {field} is {want}"
        ));
    };
    if norm_id(&cfg.model.name) != norm_id(&c.model) {
        differ(
            "model.name",
            "model",
            format!("`{}`", cfg.model.name),
            format!("`{}`", c.model),
        );
    }
    if norm_id(cfg.model.tokenizer()) != norm_id(&c.tokenizer) {
        differ(
            "model.tokenizer",
            "tokenizer",
            format!("`{}`", cfg.model.tokenizer()),
            format!("`{}`", c.tokenizer),
        );
    }
    if norm_precision(&cfg.model.precision) != norm_precision(&c.precision) {
        differ(
            "model.precision",
            "precision",
            format!("`{}`", cfg.model.precision),
            format!("`{}`", c.precision),
        );
    }
    let q = |v: &Option<String>| {
        v.as_deref()
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty() && s != "none")
    };
    if q(&cfg.model.quantization) != q(&c.quantization) {
        differ(
            "model.quantization",
            "quantization",
            format!("{:?}", cfg.model.quantization),
            format!("{:?}", c.quantization),
        );
    }
    if cfg.model.trust_remote_code != c.trust_remote_code {
        differ(
            "model.trust_remote_code",
            "trust_remote_code",
            cfg.model.trust_remote_code.to_string(),
            c.trust_remote_code.to_string(),
        );
    }
    let ids = cfg.hardware.gpu_ids();
    if !c.gpu_ids.is_empty() {
        if cfg.hardware.gpu_count as usize != c.gpu_ids.len() {
            differ(
                "hardware.gpu_count",
                "gpu_ids",
                cfg.hardware.gpu_count.to_string(),
                format!("{:?} ({} GPUs)", c.gpu_ids, c.gpu_ids.len()),
            );
        }
        if ids != c.gpu_ids {
            differ(
                "hardware.gpu_ids",
                "gpu_ids",
                format!("{ids:?}"),
                format!("{:?}", c.gpu_ids),
            );
        }
    }
    if let Some(m) = c.max_model_len
        && m < cfg.dataset.max_total_len()
    {
        bad.push(format!(
            "dataset: the longest scenario needs {} tokens (input + output) but campaign.json max_model_len is {m}",
            cfg.dataset.max_total_len()
        ));
    }
    for (name, fw) in cfg.frameworks.iter() {
        if fw.enabled && !c.frameworks.iter().any(|f| f == name.id()) {
            bad.push(format!(
                "frameworks.{name} is enabled but campaign.json frameworks is {:?}",
                c.frameworks
            ));
        }
    }
    if !bad.is_empty() {
        bail!(
            "the benchmark config does not match this campaign (campaign.json): {}; fix the config (or start a campaign for this setup)",
            bad.join("; ")
        );
    }
    Ok(())
}

/// The campaign's fairness inputs, as every server must get them.
#[derive(Debug, Clone)]
pub(crate) struct FairnessInputs {
    pub precision: String,
    /// `--dtype` value.
    pub dtype: String,
    pub quantization: Option<String>,
    pub trust_remote_code: bool,
    /// Set when the tokenizer differs from the model name (the server must be told).
    pub tokenizer: Option<String>,
    pub max_context: u64,
    /// The campaign fixed the max context (a server must not get another one).
    pub max_context_pinned: bool,
    pub max_context_origin: String,
}

impl FairnessInputs {
    pub(crate) fn new(
        cfg: &BenchmarkConfig,
        campaign: Option<&Campaign>,
        facts: &FrameworkFlagsFile,
        max_total_len: u64,
    ) -> Result<Self> {
        let m = &cfg.model;
        let dtype = facts.dtype_for(&m.precision).with_context(|| {
            format!(
                "model.precision: `{}` is not a known precision (framework-flags.json precision_dtype knows {})",
                m.precision,
                facts
                    .precision_dtype
                    .keys()
                    .filter(|k| !k.starts_with('_'))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        let quantization = m
            .quantization
            .clone()
            .filter(|q| !q.trim().is_empty())
            .or_else(|| {
                facts
                    .precision_quantization
                    .get(&m.precision.to_ascii_lowercase())
                    .cloned()
            });
        let tokenizer = m
            .tokenizer
            .as_ref()
            .filter(|t| norm_id(t) != norm_id(&m.name))
            .cloned();
        let (max_context, pinned, origin) = match campaign.and_then(|c| c.max_model_len) {
            Some(v) => (
                v.max(max_total_len),
                true,
                "campaign.json max_model_len".to_string(),
            ),
            None => (max_total_len, false, "max(input + output)".to_string()),
        };
        Ok(Self {
            precision: m.precision.clone(),
            dtype: dtype.to_string(),
            quantization,
            trust_remote_code: m.trust_remote_code,
            tokenizer,
            max_context,
            max_context_pinned: pinned,
            max_context_origin: origin,
        })
    }

    /// Put the inputs into `base` in this CLI's spelling, recording how in `record`.
    /// Returns the flags now pinned (never searched); `Err((flag, reason))` rejects the
    /// framework: a conflicting value, or an input this CLI cannot be given.
    pub(crate) fn apply(
        &self,
        facts: &FrameworkFacts,
        help: &HelpFlags,
        base: &mut OrderedMap<Value>,
        record: &mut BTreeMap<String, String>,
    ) -> std::result::Result<BTreeSet<String>, Refusal> {
        let usable = |f: &Option<String>| f.clone().filter(|f| help.contains(f));
        let name = &facts.display_name;
        let mut pinned = BTreeSet::new();
        // Precision.
        match usable(&facts.dtype_flag) {
            Some(f) => pin(
                &mut pinned,
                "precision",
                &f,
                json!(self.dtype),
                base,
                record,
            )?,
            None => {
                record.insert(
                    "precision".into(),
                    format!(
                        "checkpoint dtype ({name} has no dtype flag); the checkpoint must be {}",
                        self.precision
                    ),
                );
            }
        }
        // Quantization.
        let qflag = usable(&facts.quantization_flag);
        match (&self.quantization, &qflag) {
            (Some(q), Some(f)) => pin(&mut pinned, "quantization", f, json!(q), base, record)?,
            (Some(q), None) => {
                return Err((
                    None,
                    format!(
                        "the campaign's quantization `{q}` cannot be passed to {name} (no quantization flag in its --help): it would run another precision than the other frameworks; use a checkpoint quantized the same way for every framework and name it in model.name"
                    ),
                ));
            }
            (None, Some(f)) => {
                pinned.insert(f.clone());
                if let Some(v) = base.get(f) {
                    return Err((
                        Some(f.clone()),
                        format!(
                            "base_server_flags: `{f} {}` quantizes {name} but the campaign has no quantization",
                            scalar_text(v)
                        ),
                    ));
                }
                record.insert("quantization".into(), "none".into());
            }
            (None, None) => {
                record.insert("quantization".into(), "none".into());
            }
        }
        // Trust remote code: passed when the campaign sets it; never on when it does not.
        let tflag = usable(&facts.trust_remote_code_flag);
        match (self.trust_remote_code, &tflag) {
            (true, Some(f)) => pin(
                &mut pinned,
                "trust_remote_code",
                f,
                json!(true),
                base,
                record,
            )?,
            (true, None) => {
                return Err((
                    None,
                    format!(
                        "the campaign needs trust-remote-code but {name}'s --help has no such flag"
                    ),
                ));
            }
            (false, f) => {
                if let Some(f) = f {
                    pinned.insert(f.clone());
                    if base.get(f).is_some_and(|v| v == &Value::Bool(true)) {
                        return Err((
                            Some(f.clone()),
                            format!(
                                "base_server_flags: `{f}` is set but the campaign does not trust remote code"
                            ),
                        ));
                    }
                }
                record.insert("trust_remote_code".into(), "off (default)".into());
            }
        }
        // Tokenizer: the one the client counts with, when it is not the model's own.
        match (&self.tokenizer, usable(&facts.tokenizer_flag)) {
            (Some(t), Some(f)) => pin(&mut pinned, "tokenizer", &f, json!(t), base, record)?,
            (Some(t), None) => {
                return Err((
                    None,
                    format!(
                        "the campaign's tokenizer `{t}` cannot be passed to {name} (no tokenizer flag in its --help)"
                    ),
                ));
            }
            (None, f) => {
                if let Some(f) = f {
                    pinned.insert(f);
                }
                record.insert("tokenizer".into(), "the model's own".into());
            }
        }
        if self.max_context_pinned
            && let Some(f) = usable(&facts.max_len_flag)
        {
            pinned.insert(f);
        }
        Ok(pinned)
    }
}

type Refusal = (Option<String>, String);

/// Set one fairness flag in `base` (refusing a conflicting user value) and record it.
fn pin(
    pinned: &mut BTreeSet<String>,
    input: &str,
    flag: &str,
    want: Value,
    base: &mut OrderedMap<Value>,
    record: &mut BTreeMap<String, String>,
) -> std::result::Result<(), Refusal> {
    pinned.insert(flag.to_string());
    if let Some(got) = base.get(flag)
        && scalar_text(got) != scalar_text(&want)
    {
        return Err((
            Some(flag.to_string()),
            format!(
                "base_server_flags: `{flag} {}` differs from the campaign's {input} (`{flag} {}`): every framework gets the campaign's value",
                scalar_text(got),
                scalar_text(&want)
            ),
        ));
    }
    let shown = match &want {
        Value::Bool(true) => format!("`{flag}`"),
        v => format!("`{flag} {}`", scalar_text(v)),
    };
    base.insert(flag.to_string(), want);
    record.insert(input.to_string(), shown);
    Ok(())
}

/// A framework runs its baseline only while another is searched: refused unless
/// `frameworks.<name>.search_skipped_reason` records why. Fills every plan's `search`.
pub(crate) fn check_search_parity(cfg: &BenchmarkConfig, plan: &mut Plan) -> Result<()> {
    let searched: Vec<(Framework, usize)> = plan
        .frameworks
        .iter()
        .filter(|f| f.status == FrameworkStatus::Ready && f.candidates.len() > 1)
        .map(|f| (f.framework, f.candidates.len()))
        .collect();
    let mut refused = Vec::new();
    for fp in plan
        .frameworks
        .iter_mut()
        .filter(|f| f.status == FrameworkStatus::Ready)
    {
        if fp.candidates.len() > 1 {
            fp.search = format!(
                "bounded search: {} candidates (tier {}, cap {}), baseline first",
                fp.candidates.len(),
                cfg.search.tier,
                cfg.search.max_candidates_per_framework
            );
            continue;
        }
        let reason = cfg
            .frameworks
            .get(&fp.framework)
            .and_then(|s| s.search_skipped_reason.clone())
            .filter(|r| !r.trim().is_empty());
        match reason {
            Some(r) => fp.search = format!("baseline only: {r}"),
            None if searched.is_empty() => {
                fp.search = "baseline only (no framework is searched)".into()
            }
            None => refused.push(fp.framework),
        }
    }
    if !refused.is_empty() {
        let tuned: Vec<String> = searched
            .iter()
            .map(|(f, n)| format!("{f} ({n} candidates)"))
            .collect();
        bail!(
            "tuned vs defaults: {} searched but {} would run its baseline only; give each a bounded search_space (its knobs may have been rejected at preflight) or record why in frameworks.<name>.search_skipped_reason ({})",
            tuned.join(", "),
            refused
                .iter()
                .map(|f| f.id())
                .collect::<Vec<_>>()
                .join(", "),
            refused
                .iter()
                .map(|f| format!("frameworks.{f}.search_skipped_reason"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// JSONL workload: read the file once at preflight for its length percentiles (the
/// scenario's lengths) and its longest request (the max context every server needs).
pub(crate) fn jsonl_scenario(
    cfg: &BenchmarkConfig,
    campaign_dir: &Path,
    plan: &mut Plan,
) -> Result<()> {
    let raw = cfg.dataset.path.as_deref().unwrap_or_default();
    let path = crate::preflight::resolve_config_path(campaign_dir, raw);
    let tok = crate::measure::resolve_tokenizer(cfg.model.tokenizer())
        .ok()
        .and_then(|p| vllm_sota_bench::TokenizerHandle::load(&p).ok());
    let w = vllm_sota_bench::load_jsonl_workload(&path, tok.as_ref())
        .with_context(|| format!("dataset.path {raw}"))?;
    let mut longest = 0u64;
    for (i, r) in w.requests.iter().enumerate() {
        let Some(inp) = r.input_len else {
            bail!(
                "dataset.path {raw}: line {} has no input_len and the tokenizer `{}` could not be loaded to count it",
                i + 1,
                cfg.model.tokenizer()
            );
        };
        longest = longest.max(inp + r.output_len);
    }
    let stats = w.length_stats();
    if let Some(sc) = plan.scenarios.first_mut() {
        sc.input_len = stats.input_p50.unwrap_or(0.0).round() as u64;
        sc.output_len = stats.output_p50.round() as u64;
    }
    plan.max_total_len = longest;
    plan.dataset_path = Some(path.display().to_string());
    Ok(())
}
