//! Per-framework facts (`references/framework-flags.json`) and CLI flag validation
//! against a captured `--help` text, with documented translations.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

use crate::config::OrderedMap;
use vllm_sota_core::Framework;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FrameworkFlagsFile {
    pub schema_version: u32,
    pub frameworks: BTreeMap<String, FrameworkFacts>,
    #[serde(default)]
    pub launcher_templates: BTreeMap<String, Value>,
    /// Campaign precision → `--dtype` value (`_doc` ignored).
    #[serde(default)]
    pub precision_dtype: BTreeMap<String, String>,
    /// Campaign precision → the quantization method it implies when none is named.
    #[serde(default)]
    pub precision_quantization: BTreeMap<String, String>,
}

/// Where a server reports prefix-cache reuse: Prometheus counters (hits and lookups,
/// in tokens) or a log line with new and cached token counts per prefill batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PrefixCacheSource {
    #[serde(default)]
    pub metrics_route: Option<String>,
    #[serde(default)]
    pub hits_metric: Option<String>,
    #[serde(default)]
    pub queries_metric: Option<String>,
    /// Named groups `new` and `cached`.
    #[serde(default)]
    pub log_regex: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExcludedFlag {
    pub flag: String,
    pub feature: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Readiness {
    pub models_route: String,
    pub health_route: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheReset {
    pub method: String,
    pub route: String,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackendRule {
    pub flag: String,
    pub required: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FrameworkFacts {
    pub display_name: String,
    pub server_command: Vec<String>,
    pub help_args: Vec<String>,
    pub host_flag: Option<String>,
    pub port_flag: Option<String>,
    pub served_model_name_flag: Option<String>,
    pub tokenizer_flag: Option<String>,
    pub max_len_flag: Option<String>,
    pub tensor_parallel_flag: Option<String>,
    /// `dash` or `underscore`: the CLI's own spelling, used to normalize the other one.
    pub spelling: String,
    pub memory_fraction_flags: Vec<String>,
    pub excluded_flags: Vec<ExcludedFlag>,
    pub excluded_if_above_one: Vec<ExcludedFlag>,
    /// Other frameworks' names for the same knob → this CLI's name.
    pub translations: BTreeMap<String, String>,
    pub readiness: Readiness,
    pub cache_reset: Option<CacheReset>,
    pub backend_rule: Option<BackendRule>,
    /// Flags carrying the campaign's fairness inputs; `None` = the CLI has no such flag.
    #[serde(default)]
    pub dtype_flag: Option<String>,
    #[serde(default)]
    pub quantization_flag: Option<String>,
    #[serde(default)]
    pub trust_remote_code_flag: Option<String>,
    #[serde(default)]
    pub prefix_cache: Option<PrefixCacheSource>,
}

pub fn load_framework_flags() -> Result<FrameworkFlagsFile> {
    let (text, origin) = vllm_sota_core::refs::load(
        "framework-flags.json",
        Some(include_str!("../../../references/framework-flags.json")),
    )?;
    serde_json::from_str(&text).with_context(|| format!("{origin}: invalid framework flags file"))
}

impl FrameworkFlagsFile {
    /// The `--dtype` value for a campaign precision (case-insensitive); `None` when unknown.
    pub fn dtype_for(&self, precision: &str) -> Option<&str> {
        let p = precision.to_ascii_lowercase();
        self.precision_dtype
            .get(&p)
            .filter(|_| p != "_doc")
            .map(String::as_str)
    }
    pub fn facts(&self, framework: Framework) -> Result<&FrameworkFacts> {
        self.frameworks
            .get(framework.id())
            .with_context(|| format!("framework-flags.json has no entry for `{framework}`"))
    }
}

/// Flags a CLI accepts, parsed from its help text (argparse, click and clap layouts).
#[derive(Debug, Clone, Default)]
pub struct HelpFlags {
    pub flags: BTreeSet<String>,
}

impl HelpFlags {
    /// Option lines (`  --a A, -a A  text`, indented at most 8 columns) plus the argparse
    /// usage block (`[--flag X]`), which also lists options whose help is suppressed.
    pub fn parse(text: &str) -> Self {
        let mut flags = BTreeSet::new();
        let name = regex::Regex::new(r"^(-{1,2}[A-Za-z0-9][A-Za-z0-9_.\-]*)").unwrap();
        let usage = regex::Regex::new(r"\[(-{1,2}[A-Za-z0-9][A-Za-z0-9_.\-]*)").unwrap();
        let mut in_usage = false;
        for line in text.lines() {
            let indent = line.len() - line.trim_start().len();
            let trimmed = line.trim_start();
            if trimmed.starts_with("usage:") || trimmed.starts_with("Usage:") {
                in_usage = true;
            } else if trimmed.is_empty() {
                in_usage = false;
            }
            if in_usage {
                for c in usage.captures_iter(line) {
                    flags.insert(c[1].trim_end_matches('.').to_string());
                }
                continue;
            }
            if !(1..=8).contains(&indent) || !trimmed.starts_with('-') {
                continue;
            }
            // Names end where the description begins (two spaces) or the line ends.
            let head = trimmed.split("  ").next().unwrap_or(trimmed);
            for part in head.split(", ") {
                if let Some(c) = name.captures(part.trim()) {
                    // Clap writes `--port <PORT>`; click writes `--port INTEGER`; argparse `--port PORT`.
                    flags.insert(c[1].trim_end_matches('.').to_string());
                }
            }
        }
        flags.remove("-");
        flags.remove("--");
        Self { flags }
    }

    pub fn contains(&self, flag: &str) -> bool {
        if self.flags.contains(flag) {
            return true;
        }
        // vLLM-style dotted config fields: `--compilation-config.mode` is accepted when
        // `--compilation-config` is.
        if let Some((head, _)) = flag.split_once('.') {
            return self.flags.contains(head);
        }
        false
    }

    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }
}

/// Make a config key a flag: `max_num_seqs` → `--max_num_seqs` (spelling fixed later).
pub(crate) fn as_flag(key: &str) -> String {
    if key.starts_with('-') {
        key.to_string()
    } else {
        format!("--{key}")
    }
}

/// How a requested flag maps onto the target CLI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FlagResolution {
    pub requested: String,
    pub used: String,
    /// `exact`, `spelling` (dash/underscore), or `translation` (a documented alias).
    pub how: String,
}

/// Resolve `flag` for a CLI: exact, then the other spelling, then a documented translation.
/// `Err` carries the rejection reason, naming the flag.
pub fn resolve_flag(
    flag: &str,
    facts: &FrameworkFacts,
    help: &HelpFlags,
) -> std::result::Result<FlagResolution, String> {
    let flag = as_flag(flag);
    if help.contains(&flag) {
        return Ok(FlagResolution {
            requested: flag.clone(),
            used: flag,
            how: "exact".into(),
        });
    }
    let (prefix, body) = if let Some(b) = flag.strip_prefix("--") {
        ("--", b)
    } else {
        ("-", &flag[1..])
    };
    let respelled = if facts.spelling == "underscore" {
        body.replace('-', "_")
    } else {
        body.replace('_', "-")
    };
    let respelled = format!("{prefix}{respelled}");
    if respelled != flag && help.contains(&respelled) {
        return Ok(FlagResolution {
            requested: flag,
            used: respelled,
            how: "spelling".into(),
        });
    }
    for candidate in [&flag, &respelled] {
        if let Some(target) = facts.translations.get(candidate.as_str())
            && help.contains(target)
        {
            return Ok(FlagResolution {
                requested: flag.clone(),
                used: target.clone(),
                how: "translation".into(),
            });
        }
    }
    Err(format!(
        "unknown flag `{flag}`: {} does not accept it (checked against its --help)",
        facts.display_name
    ))
}

/// argv fragment for one flag: `true` → `--f`, `false` → `--no-f` when the CLI has it
/// (else omitted), scalars → `--f v`, lists → `--f a b`, objects → `--f '<json>'`.
pub(crate) fn flag_argv(flag: &str, value: &Value, help: Option<&HelpFlags>) -> Vec<String> {
    match value {
        Value::Bool(true) => vec![flag.to_string()],
        Value::Bool(false) => {
            let neg = format!("--no-{}", flag.trim_start_matches('-'));
            if help.is_some_and(|h| h.contains(&neg)) {
                vec![neg]
            } else {
                vec![]
            }
        }
        Value::Null => vec![],
        Value::Array(items) => {
            let mut v = vec![flag.to_string()];
            v.extend(items.iter().map(scalar_text));
            v
        }
        other => vec![flag.to_string(), scalar_text(other)],
    }
}

pub(crate) fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Numeric view of a flag value (`256`, `"256"`).
pub(crate) fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// All flags of an ordered flag map as argv.
pub(crate) fn flags_argv(flags: &OrderedMap<Value>, help: Option<&HelpFlags>) -> Vec<String> {
    flags
        .iter()
        .flat_map(|(k, v)| flag_argv(k, v, help))
        .collect()
}
