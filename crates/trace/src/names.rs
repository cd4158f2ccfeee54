//! The trace names the tools recognise (step annotations, vLLM token counts in a step
//! name, layer scopes, nn.Module scopes), read from `references/trace-step-names.json`
//! (embedded; `$VLLM_SOTA_REFERENCES` overrides): the one copy of these rules for
//! profile_tables (step counts, host stalls) and layer_pipeline (passes, layers).
//! There is no built-in copy: when the file cannot be loaded, the tools refuse to run
//! ([`ensure_loaded`]) and the pure functions see no patterns.

use anyhow::{Context, Result};
use regex::Regex;
use serde::Deserialize;
use std::sync::OnceLock;

#[derive(Debug, Deserialize)]
struct File {
    step_patterns: Vec<StepPatternText>,
    step_tokens: String,
    layer_scope: String,
    module_scope_prefix: String,
}

#[derive(Debug, Deserialize)]
struct StepPatternText {
    regex: String,
    label: String,
    counter: bool,
}

/// One step-annotation pattern.
#[derive(Debug)]
pub struct StepPattern {
    pub regex: Regex,
    /// How reports name the pattern, e.g. `execute_context_*`.
    pub label: String,
    /// Strip a trailing `_N` / `#N` counter to form the pass kind.
    pub counter: bool,
}

/// The compiled names.
#[derive(Debug)]
pub struct TraceNames {
    /// Most specific first; the first pattern with a match wins.
    pub step_patterns: Vec<StepPattern>,
    /// Four groups: prefill requests, prefill tokens, decode requests, decode tokens.
    pub step_tokens: Regex,
    /// Group 1 is the layer number.
    pub layer_scope: Regex,
    pub module_scope_prefix: String,
}

/// Parse and compile the names file; errors name the file and the bad pattern.
pub fn parse(text: &str, origin: &str) -> Result<TraceNames> {
    let f: File =
        serde_json::from_str(text).with_context(|| format!("invalid trace names in {origin}"))?;
    let re = |field: &str, r: &str| {
        Regex::new(r).with_context(|| format!("{origin}: `{field}` is not a valid regex: {r}"))
    };
    let mut step_patterns = vec![];
    for (i, p) in f.step_patterns.iter().enumerate() {
        step_patterns.push(StepPattern {
            regex: re(&format!("step_patterns[{i}].regex"), &p.regex)?,
            label: p.label.clone(),
            counter: p.counter,
        });
    }
    let step_tokens = re("step_tokens", &f.step_tokens)?;
    anyhow::ensure!(
        step_tokens.captures_len() == 5,
        "{origin}: `step_tokens` needs 4 capture groups, has {}",
        step_tokens.captures_len() - 1
    );
    let layer_scope = re("layer_scope", &f.layer_scope)?;
    anyhow::ensure!(
        layer_scope.captures_len() >= 2,
        "{origin}: `layer_scope` needs a capture group for the layer number"
    );
    Ok(TraceNames {
        step_patterns,
        step_tokens,
        layer_scope,
        module_scope_prefix: f.module_scope_prefix,
    })
}

fn loaded() -> &'static Result<TraceNames, String> {
    static N: OnceLock<Result<TraceNames, String>> = OnceLock::new();
    N.get_or_init(|| {
        let (text, origin) = vllm_sota_core::refs::load(
            "trace-step-names.json",
            Some(include_str!("../../../references/trace-step-names.json")),
        )
        .map_err(|e| format!("{e:#}"))?;
        parse(&text, &origin).map_err(|e| format!("{e:#}"))
    })
}

/// The names, or `None` when the file could not be loaded (see [`ensure_loaded`]).
pub fn get() -> Option<&'static TraceNames> {
    loaded().as_ref().ok()
}

/// The label of the first step pattern `name` matches (most specific first), if any.
pub fn step_label(name: &str) -> Option<&'static str> {
    get()?
        .step_patterns
        .iter()
        .find(|p| p.regex.is_match(name))
        .map(|p| p.label.as_str())
}

/// An error naming the file when the names cannot be loaded.
pub fn ensure_loaded() -> Result<()> {
    match loaded() {
        Ok(_) => Ok(()),
        Err(e) => anyhow::bail!("trace names cannot be loaded: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_loads_and_bad_patterns_are_named() {
        ensure_loaded().unwrap();
        let n = get().unwrap();
        assert!(n.step_patterns.len() >= 4);
        assert!(
            n.step_patterns[0]
                .regex
                .is_match("execute_context_0(0)_generation_64(64)")
        );
        assert!(n.layer_scope.is_match("model.layers.7.self_attn"));
        for (name, label) in [
            (
                "execute_context_0(0)_generation_64(64)",
                Some("execute_context_*"),
            ),
            ("execute_model_step_3", Some("execute_model_step_*")),
            ("ProfilerStep#12", Some("ProfilerStep#*")),
            ("step[DECODE bs=80]", Some("step[*]")),
            ("forward_extend", Some("forward_*")),
            ("execute_context_", None),
            ("step[weird]", None),
            ("aten::mm", None),
        ] {
            assert_eq!(step_label(name), label, "{name}");
        }
        let e = parse(
            r#"{"step_patterns": [{"regex": "(", "label": "x", "counter": true}], "step_tokens": "", "layer_scope": "", "module_scope_prefix": ""}"#,
            "x.json",
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("step_patterns[0].regex"), "{e:#}");
        let e = parse(
            r#"{"step_patterns": [], "step_tokens": "(a)", "layer_scope": "(\\d+)", "module_scope_prefix": ""}"#,
            "x.json",
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("4 capture groups"), "{e:#}");
    }
}
