//! HF `config.json` → one type per decoder layer, driven by
//! `references/model-layer-rules.json` (which keys mean what is data, not code).
//!
//! A layer type has an attention part (`full_attention`, `sliding_attention`,
//! `linear_attention`, `mamba`, compress-ratio kinds, ...) and an MLP part (`dense` or
//! `moe`), plus a `hash` marker for the seed's DeepSeek-V4-style hash layers. MTP /
//! draft layers are counted separately: they run in draft passes, not in the main
//! forward pass.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Deserialize)]
pub struct LayerRules {
    pub nested_config_keys: Vec<String>,
    pub layer_count_keys: Vec<String>,
    pub moe: MoeRules,
    pub attention: AttentionRules,
    pub draft: DraftRules,
    pub seed_specific: SeedRules,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MoeRules {
    pub expert_count_keys: Vec<String>,
    pub dense_layer_list_keys: Vec<String>,
    pub moe_layer_list_keys: Vec<String>,
    pub first_dense_keys: Vec<String>,
    pub rules: Vec<MoeStepRule>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MoeStepRule {
    pub key: String,
    #[serde(default)]
    pub offset_key: Option<String>,
    pub form: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AttentionRules {
    pub layer_types_keys: Vec<String>,
    pub layer_type_aliases: BTreeMap<String, String>,
    pub sliding_window_keys: Vec<String>,
    pub use_sliding_window_keys: Vec<String>,
    pub max_window_layers_keys: Vec<String>,
    pub sliding_window_pattern_keys: Vec<String>,
    pub hybrid_pattern_keys: Vec<String>,
    pub hybrid_pattern_chars: BTreeMap<String, String>,
    pub attention_period_keys: Vec<AttentionPeriod>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AttentionPeriod {
    pub period: String,
    pub offset: String,
    pub other: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DraftRules {
    pub mtp_layer_count_keys: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SeedRules {
    pub compress_ratio_keys: Vec<String>,
    pub compress_ratio_names: BTreeMap<String, String>,
    pub hash_layer_count_keys: Vec<String>,
}

/// The rules shipped in `references/model-layer-rules.json` (or the override dir).
pub fn load_rules() -> Result<LayerRules> {
    let (text, origin) = vllm_sota_core::refs::load(
        "model-layer-rules.json",
        Some(include_str!("../../../references/model-layer-rules.json")),
    )?;
    serde_json::from_str(&text).with_context(|| format!("invalid layer rules in {origin}"))
}

/// The type of one decoder layer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
pub struct LayerType {
    /// `full_attention`, `sliding_attention`, `linear_attention`, `mamba`, `c4_light`, ... or `untyped`.
    pub attention: String,
    /// `dense`, `moe`, `none` (a hybrid block without MLP) or `untyped`.
    pub mlp: String,
    /// A DeepSeek-V4-style hash layer (`num_hash_layers`).
    pub hash: bool,
}

impl LayerType {
    pub fn untyped() -> Self {
        LayerType {
            attention: "untyped".into(),
            mlp: "untyped".into(),
            hash: false,
        }
    }

    pub fn label(&self) -> String {
        if self.attention == "untyped" && self.mlp == "untyped" {
            return "untyped".into();
        }
        let mut s = format!("{} + {}", self.attention, self.mlp);
        if self.hash {
            s.push_str(" (hash)");
        }
        s
    }
}

/// What the config says about the layers.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ConfigLayers {
    /// `model_type` when present.
    pub model_type: Option<String>,
    /// Decoder layers in the main forward pass, when the config names a count.
    pub num_layers: Option<usize>,
    /// One entry per layer (empty when the count is unknown); summarized in `layer_types`.
    #[serde(skip)]
    pub types: Vec<LayerType>,
    /// Each distinct type with its layers, e.g. `full_attention + moe: 2–11`.
    pub layer_types: Vec<String>,
    /// MTP / draft layers (not part of the main pass).
    pub mtp_layers: usize,
    /// Which keys decided the types, e.g. `mlp_only_layers=[0, 1]`.
    pub evidence: Vec<String>,
    /// Set when the config could not be understood: the table is then generic (untyped).
    pub problem: Option<String>,
}

impl ConfigLayers {
    /// No config: generic table.
    pub fn absent(why: &str) -> Self {
        Self::untyped(None, vec![], why.to_string())
    }

    /// No usable layer count: the layers come from the trace alone, untyped.
    fn untyped(model_type: Option<String>, evidence: Vec<String>, problem: String) -> Self {
        ConfigLayers {
            model_type,
            num_layers: None,
            types: vec![],
            layer_types: vec![],
            mtp_layers: 0,
            evidence,
            problem: Some(problem),
        }
    }

    /// Type of layer `i` (untyped when unknown).
    pub fn type_of(&self, i: usize) -> LayerType {
        self.types
            .get(i)
            .cloned()
            .unwrap_or_else(LayerType::untyped)
    }

    /// Distinct types in layer order.
    pub fn distinct(&self) -> Vec<LayerType> {
        let mut out: Vec<LayerType> = vec![];
        for t in &self.types {
            if !out.contains(t) {
                out.push(t.clone());
            }
        }
        out
    }
}

/// Sorted layer ids as runs: `0–1, 4, 6–9`.
pub(crate) fn compact_ranges(ids: &[usize]) -> String {
    let mut out: Vec<String> = vec![];
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len() && ids[j + 1] == ids[j] + 1 {
            j += 1;
        }
        out.push(if j > i {
            format!("{}–{}", ids[i], ids[j])
        } else {
            ids[i].to_string()
        });
        i = j + 1;
    }
    out.join(", ")
}

/// Read and interpret a config file. A file that cannot be read or is not a JSON
/// object is an error (naming the file); a JSON object whose layout we do not
/// understand is not: it gives `problem` and a generic table.
pub fn read_config(path: &Path, rules: &LayerRules) -> Result<ConfigLayers> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read model config {}", path.display()))?;
    let value: Value = serde_json::from_str(&text)
        .with_context(|| format!("model config {} is not valid JSON", path.display()))?;
    if !value.is_object() {
        anyhow::bail!(
            "model config {} must be a JSON object (a Hugging Face config.json), found {}",
            path.display(),
            kind_of(&value)
        );
    }
    Ok(interpret(&value, rules))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn first<'a, 'k>(cfg: &'a Value, keys: &'k [String]) -> Option<(&'k str, &'a Value)> {
    keys.iter()
        .find_map(|k| cfg.get(k).filter(|v| !v.is_null()).map(|v| (k.as_str(), v)))
}

fn as_count(v: &Value) -> Option<usize> {
    v.as_u64().map(|x| x as usize).or_else(|| {
        v.as_f64()
            .filter(|f| *f >= 0.0 && f.fract() == 0.0)
            .map(|f| f as usize)
    })
}

/// The first of `keys` set in `cfg`, read as a count (None when it is not one).
fn first_count<'k>(cfg: &Value, keys: &'k [String]) -> Option<(&'k str, usize)> {
    first(cfg, keys).and_then(|(k, v)| as_count(v).map(|c| (k, c)))
}

/// The counts in a JSON list (entries that are not counts are skipped).
fn counts(list: &[Value]) -> Vec<usize> {
    list.iter().filter_map(as_count).collect()
}

/// One kind per layer: `yes` where `pick(layer)`, else `no`.
fn per_layer(n: usize, yes: &str, no: &str, pick: impl Fn(usize) -> bool) -> Vec<String> {
    (0..n)
        .map(|i| if pick(i) { yes } else { no }.to_string())
        .collect()
}

/// One interpretation in progress: the decoder config and its layer count with the rules,
/// and what it has found so far (the keys that decided, the things ignored).
struct Reading<'a> {
    cfg: &'a Value,
    n: usize,
    rules: &'a LayerRules,
    evidence: Vec<String>,
    problems: Vec<String>,
}

/// Interpret a parsed config object.
pub fn interpret(root: &Value, rules: &LayerRules) -> ConfigLayers {
    // Multimodal wrappers keep the decoder in a nested config.
    let mut cfg = root;
    let mut evidence = vec![];
    if first(root, &rules.layer_count_keys).is_none()
        && let Some((k, nested)) = first(root, &rules.nested_config_keys)
        && nested.is_object()
    {
        cfg = nested;
        evidence.push(format!("decoder config read from `{k}`"));
    }
    let model_type = cfg
        .get("model_type")
        .or_else(|| root.get("model_type"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let Some((count_key, count_value)) = first(cfg, &rules.layer_count_keys) else {
        return ConfigLayers::untyped(
            model_type,
            evidence,
            format!(
                "the config names no layer count (looked for {}): layers are found from the trace alone and shown untyped",
                rules.layer_count_keys.join(", ")
            ),
        );
    };
    let Some(n) = as_count(count_value).filter(|&n| n > 0) else {
        return ConfigLayers::untyped(
            model_type,
            evidence,
            format!(
                "`{count_key}` is {count_value}, not a positive integer: layers are shown untyped"
            ),
        );
    };
    evidence.push(format!("{count_key}={n}"));
    let mut r = Reading {
        cfg,
        n,
        rules,
        evidence,
        problems: vec![],
    };
    let attention = attention_types(&mut r);
    let mlp = mlp_types(&mut r);
    let hash = hash_layers(&mut r);
    let mtp_layers = first_count(cfg, &rules.draft.mtp_layer_count_keys).map(|(k, c)| {
        if c > 0 {
            r.evidence.push(format!(
                "{k}={c} (MTP/draft layers run in draft passes, not in the main pass)"
            ));
        }
        c
    });
    let types: Vec<LayerType> = (0..n)
        .map(|i| LayerType {
            attention: attention[i].clone(),
            mlp: mlp[i].clone(),
            hash: hash[i],
        })
        .collect();
    let mut layer_types = vec![];
    let mut seen: Vec<&LayerType> = vec![];
    for t in &types {
        if !seen.contains(&t) {
            seen.push(t);
            let ids: Vec<usize> = (0..n).filter(|&i| &types[i] == t).collect();
            layer_types.push(format!("{}: {}", t.label(), compact_ranges(&ids)));
        }
    }
    ConfigLayers {
        model_type,
        num_layers: Some(n),
        layer_types,
        types,
        mtp_layers: mtp_layers.unwrap_or(0),
        evidence: r.evidence,
        problem: (!r.problems.is_empty()).then(|| r.problems.join("; ")),
    }
}

/// Attention kind per layer: the first source in the config that decides it.
fn attention_types(r: &mut Reading) -> Vec<String> {
    type Source = fn(&mut Reading) -> Option<Vec<String>>;
    let sources: [Source; 5] = [
        compress_ratio_kinds,
        listed_kinds,
        hybrid_pattern_kinds,
        period_kinds,
        sliding_window_kinds,
    ];
    for src in sources {
        if let Some(kinds) = src(r) {
            return kinds;
        }
    }
    vec!["full_attention".into(); r.n]
}

/// Seed-specific compress ratios (DeepSeek-V4 style) decide the attention kind.
fn compress_ratio_kinds(r: &mut Reading) -> Option<Vec<String>> {
    let (n, seed) = (r.n, &r.rules.seed_specific);
    let Some((k, Value::Array(ratios))) = first(r.cfg, &seed.compress_ratio_keys) else {
        return None;
    };
    if ratios.is_empty() {
        return None;
    }
    let mut ratios: Vec<Option<i64>> = ratios.iter().map(Value::as_i64).collect();
    if ratios.len() > n {
        r.evidence.push(format!(
            "{k} has {} entries for {n} layers: the trailing {} (MTP) dropped",
            ratios.len(),
            ratios.len() - n
        ));
        ratios.truncate(n);
    } else if ratios.len() < n {
        r.problems.push(format!(
            "`{k}` has {} entries but there are {n} layers: the rest are untyped",
            ratios.len()
        ));
    }
    r.evidence.push(format!("{k} (per-layer compress ratio)"));
    Some(
        (0..n)
            .map(|i| match ratios.get(i).copied().flatten() {
                Some(x) => seed
                    .compress_ratio_names
                    .get(&x.to_string())
                    .cloned()
                    .unwrap_or_else(|| format!("cr{x}")),
                None => "untyped".to_string(),
            })
            .collect(),
    )
}

/// An explicit per-layer list.
fn listed_kinds(r: &mut Reading) -> Option<Vec<String>> {
    let (n, a) = (r.n, &r.rules.attention);
    let (k, v) = first(r.cfg, &a.layer_types_keys)?;
    match v.as_array() {
        Some(list) if list.len() >= n => {
            let mut unknown = vec![];
            let out: Vec<String> = list[..n]
                .iter()
                .map(|t| {
                    let raw = t.as_str().unwrap_or("?");
                    a.layer_type_aliases.get(raw).cloned().unwrap_or_else(|| {
                        if !unknown.contains(&raw.to_string()) {
                            unknown.push(raw.to_string());
                        }
                        raw.to_string()
                    })
                })
                .collect();
            if !unknown.is_empty() {
                r.problems.push(format!(
                    "`{k}` has kinds this tool does not know ({}): shown as given",
                    unknown.join(", ")
                ));
            }
            r.evidence.push(format!("{k} (per-layer attention kind)"));
            return Some(out);
        }
        Some(list) => r.problems.push(format!(
            "`{k}` has {} entries for {n} layers: ignored",
            list.len()
        )),
        None => r.problems.push(format!("`{k}` is not a list: ignored")),
    }
    None
}

/// A hybrid pattern string, one character per layer.
fn hybrid_pattern_kinds(r: &mut Reading) -> Option<Vec<String>> {
    let (n, a) = (r.n, &r.rules.attention);
    let Some((k, Value::String(pattern))) = first(r.cfg, &a.hybrid_pattern_keys) else {
        return None;
    };
    if pattern.chars().count() != n {
        r.problems.push(format!(
            "`{k}` has {} characters for {n} layers: ignored",
            pattern.chars().count()
        ));
        return None;
    }
    r.evidence.push(format!("{k}={pattern}"));
    Some(
        pattern
            .chars()
            .map(|c| {
                a.hybrid_pattern_chars
                    .get(&c.to_string())
                    .cloned()
                    .unwrap_or_else(|| format!("pattern_{c}"))
            })
            .collect(),
    )
}

/// Attention every `period` layers (Jamba): others are the named kind.
fn period_kinds(r: &mut Reading) -> Option<Vec<String>> {
    let cfg = r.cfg;
    r.rules
        .attention
        .attention_period_keys
        .iter()
        .find_map(|ap| {
            let period = cfg.get(&ap.period).and_then(as_count).filter(|&p| p > 0)?;
            let offset = cfg.get(&ap.offset).and_then(as_count).unwrap_or(0);
            r.evidence
                .push(format!("{}={period}, {}={offset}", ap.period, ap.offset));
            Some(per_layer(r.n, "full_attention", &ap.other, |i| {
                i % period == offset
            }))
        })
}

/// Sliding window (Qwen2 `use_sliding_window` + `max_window_layers`, Gemma `sliding_window_pattern`, Mistral: a window on every layer).
fn sliding_window_kinds(r: &mut Reading) -> Option<Vec<String>> {
    let (cfg, n, a) = (r.cfg, r.n, &r.rules.attention);
    let (_, w) = first_count(cfg, &a.sliding_window_keys).filter(|&(_, w)| w > 0)?;
    let use_sw =
        first(cfg, &a.use_sliding_window_keys).map(|(k, v)| (k, v.as_bool().unwrap_or(false)));
    if let Some((k, false)) = use_sw {
        r.evidence.push(format!(
            "{k}=false: sliding_window={w} unused, full attention"
        ));
        return None;
    }
    if let Some((k, pattern)) =
        first_count(cfg, &a.sliding_window_pattern_keys).filter(|&(_, p)| p > 0)
    {
        r.evidence.push(format!(
            "sliding_window={w}, {k}={pattern} (every {pattern}th layer full)"
        ));
        return Some(per_layer(n, "full_attention", "sliding_attention", |i| {
            (i + 1) % pattern == 0
        }));
    }
    if let (Some((_, true)), Some((k, mwl))) = (use_sw, first_count(cfg, &a.max_window_layers_keys))
    {
        r.evidence.push(format!(
            "use_sliding_window=true, sliding_window={w}, {k}={mwl} (layers ≥ {mwl} slide)"
        ));
        return Some(per_layer(n, "sliding_attention", "full_attention", |i| {
            i >= mwl
        }));
    }
    r.evidence
        .push(format!("sliding_window={w} on every layer"));
    Some(vec!["sliding_attention".into(); n])
}

fn mlp_types(r: &mut Reading) -> Vec<String> {
    let (cfg, n, m) = (r.cfg, r.n, &r.rules.moe);
    let Some((ek, e)) = first_count(cfg, &m.expert_count_keys).filter(|&(_, c)| c > 0) else {
        return vec!["dense".into(); n];
    };
    r.evidence.push(format!("{ek}={e}"));
    // An explicit MoE list wins.
    if let Some((k, Value::Array(list))) = first(cfg, &m.moe_layer_list_keys) {
        let ids = counts(list);
        r.evidence.push(format!("{k}={ids:?}"));
        return per_layer(n, "moe", "dense", |i| ids.contains(&i));
    }
    let mut is_moe = vec![true; n];
    if let Some((k, c)) = first_count(cfg, &m.first_dense_keys) {
        if c > 0 {
            r.evidence.push(format!("{k}={c}"));
        }
        for flag in is_moe.iter_mut().take(c.min(n)) {
            *flag = false;
        }
    }
    for rule in &m.rules {
        let Some(step) = cfg.get(&rule.key).and_then(as_count) else {
            continue;
        };
        if step == 0 {
            r.problems.push(format!("`{}` is 0: ignored", rule.key));
            continue;
        }
        r.evidence.push(format!("{}={step}", rule.key));
        let offset = rule
            .offset_key
            .as_ref()
            .and_then(|k| cfg.get(k))
            .and_then(as_count)
            .unwrap_or(0);
        for (i, flag) in is_moe.iter_mut().enumerate() {
            let on = match rule.form.as_str() {
                "one_based_step" => (i + 1) % step == 0,
                "zero_based_step" => i % step == 0,
                "period_offset" => i % step == offset,
                _ => true,
            };
            *flag &= on;
        }
        break;
    }
    if let Some((k, Value::Array(list))) = first(cfg, &m.dense_layer_list_keys) {
        let ids = counts(list);
        if !ids.is_empty() {
            r.evidence.push(format!("{k}={ids:?}"));
        }
        for i in ids {
            if i < n {
                is_moe[i] = false;
            } else {
                r.problems
                    .push(format!("`{k}` names layer {i} but there are {n} layers"));
            }
        }
    }
    per_layer(n, "moe", "dense", |i| is_moe[i])
}

/// Hash layers (DeepSeek-V4 style `num_hash_layers`): the last that many layers.
fn hash_layers(r: &mut Reading) -> Vec<bool> {
    let n = r.n;
    match first_count(r.cfg, &r.rules.seed_specific.hash_layer_count_keys) {
        Some((key, c)) if c > 0 => {
            r.evidence
                .push(format!("{key}={c} (the last {c} layers are hash layers)"));
            (0..n).map(|i| i + c >= n).collect()
        }
        _ => vec![false; n],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_ranges_joins_runs() {
        assert_eq!(compact_ranges(&[0, 1, 4, 6, 7, 8]), "0–1, 4, 6–8");
        assert_eq!(compact_ranges(&[2]), "2");
        assert_eq!(compact_ranges(&[]), "");
    }
    use serde_json::json;

    fn rules() -> LayerRules {
        load_rules().unwrap()
    }

    fn fixture(name: &str) -> std::path::PathBuf {
        vllm_sota_core::refs::fixtures_dir()
            .join("h200-torch-traces")
            .join(name)
    }

    #[test]
    fn llama8b_config_is_32_dense_full_attention_layers() {
        let c = read_config(&fixture("llama8b_config.json"), &rules()).unwrap();
        assert_eq!(c.num_layers, Some(32));
        assert_eq!(c.model_type.as_deref(), Some("llama"));
        assert!(c.problem.is_none(), "{:?}", c.problem);
        assert_eq!(
            c.distinct(),
            vec![LayerType {
                attention: "full_attention".into(),
                mlp: "dense".into(),
                hash: false
            }]
        );
    }

    #[test]
    fn qwen2moe_config_has_dense_layers_0_and_1_and_moe_2_to_11() {
        let c = read_config(&fixture("qwen2moe_config.json"), &rules()).unwrap();
        assert_eq!(c.num_layers, Some(12));
        let mlp: Vec<&str> = c.types.iter().map(|t| t.mlp.as_str()).collect();
        assert_eq!(&mlp[..2], &["dense", "dense"]);
        assert!(mlp[2..].iter().all(|m| *m == "moe"));
        assert!(
            c.types.iter().all(|t| t.attention == "full_attention"),
            "use_sliding_window=false"
        );
        assert!(
            c.evidence
                .iter()
                .any(|e| e.contains("mlp_only_layers=[0, 1]")),
            "{:?}",
            c.evidence
        );
        assert_eq!(
            c.layer_types,
            vec!["full_attention + dense: 0–1", "full_attention + moe: 2–11"]
        );
    }

    #[test]
    fn deepseek_style_first_k_dense_and_mtp_layers() {
        let c = interpret(
            &json!({"model_type": "deepseek_v3", "num_hidden_layers": 61, "n_routed_experts": 256, "first_k_dense_replace": 3, "moe_layer_freq": 1, "num_nextn_predict_layers": 1}),
            &rules(),
        );
        assert_eq!(c.types.iter().filter(|t| t.mlp == "dense").count(), 3);
        assert_eq!(c.types[3].mlp, "moe");
        assert_eq!(c.mtp_layers, 1);
    }

    #[test]
    fn mixtral_all_moe_and_llama4_interleaved() {
        let c = interpret(
            &json!({"num_hidden_layers": 4, "num_local_experts": 8}),
            &rules(),
        );
        assert!(c.types.iter().all(|t| t.mlp == "moe"));
        let c = interpret(
            &json!({"num_hidden_layers": 4, "num_local_experts": 16, "interleave_moe_layer_step": 2}),
            &rules(),
        );
        let mlp: Vec<&str> = c.types.iter().map(|t| t.mlp.as_str()).collect();
        assert_eq!(mlp, ["dense", "moe", "dense", "moe"]);
    }

    #[test]
    fn sliding_variants_layer_types_list_qwen2_window_layers_and_gemma_pattern() {
        let c = interpret(
            &json!({"num_hidden_layers": 4, "layer_types": ["sliding_attention", "full_attention", "sliding_attention", "full_attention"]}),
            &rules(),
        );
        assert_eq!(c.types[0].attention, "sliding_attention");
        assert_eq!(c.distinct().len(), 2);
        let c = interpret(
            &json!({"num_hidden_layers": 4, "use_sliding_window": true, "sliding_window": 4096, "max_window_layers": 2}),
            &rules(),
        );
        let att: Vec<&str> = c.types.iter().map(|t| t.attention.as_str()).collect();
        assert_eq!(
            att,
            [
                "full_attention",
                "full_attention",
                "sliding_attention",
                "sliding_attention"
            ]
        );
        let c = interpret(
            &json!({"num_hidden_layers": 6, "sliding_window": 512, "sliding_window_pattern": 3}),
            &rules(),
        );
        let att: Vec<&str> = c.types.iter().map(|t| t.attention.as_str()).collect();
        assert_eq!(
            att,
            [
                "sliding_attention",
                "sliding_attention",
                "full_attention",
                "sliding_attention",
                "sliding_attention",
                "full_attention"
            ]
        );
        let c = interpret(
            &json!({"num_hidden_layers": 2, "sliding_window": 4096}),
            &rules(),
        );
        assert!(c.types.iter().all(|t| t.attention == "sliding_attention"));
    }

    #[test]
    fn hybrid_linear_attention_and_pattern_strings() {
        let c = interpret(
            &json!({"num_hidden_layers": 4, "num_experts": 512, "decoder_sparse_step": 1, "mlp_only_layers": [],
            "layer_types": ["linear_attention", "linear_attention", "linear_attention", "full_attention"]}),
            &rules(),
        );
        assert_eq!(
            c.types[0],
            LayerType {
                attention: "linear_attention".into(),
                mlp: "moe".into(),
                hash: false
            }
        );
        assert_eq!(c.types[3].attention, "full_attention");
        let c = interpret(
            &json!({"num_hidden_layers": 4, "hybrid_override_pattern": "M-M*"}),
            &rules(),
        );
        let att: Vec<&str> = c.types.iter().map(|t| t.attention.as_str()).collect();
        assert_eq!(att, ["mamba", "mlp_only", "mamba", "full_attention"]);
        let c = interpret(
            &json!({"num_hidden_layers": 4, "layer_types": ["weird", "full_attention", "weird", "full_attention"]}),
            &rules(),
        );
        assert!(c.problem.as_deref().unwrap().contains("weird"));
    }

    #[test]
    fn seed_compress_ratios_with_mtp_entries_and_hash_layers() {
        let c = interpret(
            &json!({"num_hidden_layers": 4, "compress_ratios": [0, 4, 128, 16, 0], "num_hash_layers": 1, "num_nextn_predict_layers": 1}),
            &rules(),
        );
        let att: Vec<&str> = c.types.iter().map(|t| t.attention.as_str()).collect();
        assert_eq!(att, ["full_attention", "c4_light", "c128_heavy", "cr16"]);
        assert!(c.types[3].hash && !c.types[2].hash);
        assert!(c.evidence.iter().any(|e| e.contains("dropped")));
    }

    #[test]
    fn multimodal_wrapper_reads_the_nested_text_config() {
        let c = interpret(
            &json!({"model_type": "llava", "text_config": {"model_type": "llama", "num_hidden_layers": 3}}),
            &rules(),
        );
        assert_eq!(c.num_layers, Some(3));
        assert_eq!(c.model_type.as_deref(), Some("llama"));
    }

    #[test]
    fn unknown_config_gives_a_clear_problem_and_no_types() {
        let c = interpret(&json!({"model_type": "mystery", "depth": 12}), &rules());
        assert_eq!(c.num_layers, None);
        assert!(c.types.is_empty());
        let p = c.problem.unwrap();
        assert!(
            p.contains("num_hidden_layers") && p.contains("untyped"),
            "{p}"
        );
        let c = interpret(&json!({"num_hidden_layers": "many"}), &rules());
        assert!(c.problem.unwrap().contains("not a positive integer"));
    }

    #[test]
    fn unreadable_or_non_object_configs_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(&p, "{\"num_hidden_layers\": 3").unwrap();
        let e = read_config(&p, &rules()).unwrap_err();
        assert!(
            format!("{e:#}").contains("config.json") && format!("{e:#}").contains("not valid JSON"),
            "{e:#}"
        );
        std::fs::write(&p, "[1, 2]").unwrap();
        let e = read_config(&p, &rules()).unwrap_err();
        assert!(format!("{e:#}").contains("must be a JSON object"), "{e:#}");
        let e = read_config(&dir.path().join("missing.json"), &rules()).unwrap_err();
        assert!(
            format!("{e:#}").contains("cannot read model config"),
            "{e:#}"
        );
    }
}
