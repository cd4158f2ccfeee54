//! The one redaction function every writer goes through.
//!
//! Secrets are removed in three ways:
//! 1. values of secret-named environment variables of this process
//!    (`HF_TOKEN`, `HUGGING_FACE_HUB_TOKEN`, `*_API_KEY`, `*_TOKEN`, `*_SECRET`, `*_PASSWORD`)
//!    are replaced wherever they appear literally;
//! 2. `NAME=value` and `--flag value` / `--flag=value` pairs whose name looks secret
//!    have their value replaced;
//! 3. token-shaped strings (`hf_...`, `sk-...`, `ghp_...`, bearer tokens) are replaced.

use regex::Regex;
use std::borrow::Cow;
use std::sync::OnceLock;

/// What a redacted secret turns into.
pub(crate) const REDACTED: &str = "<redacted>";

/// True when an environment variable name denotes a secret.
pub(crate) fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase().replace('-', "_");
    let upper = upper.trim_start_matches('_');
    matches!(
        upper,
        "HF_TOKEN" | "HUGGING_FACE_HUB_TOKEN" | "HUGGINGFACE_TOKEN" | "API_KEY" | "TOKEN"
    ) || upper.ends_with("_API_KEY")
        || upper.ends_with("APIKEY")
        || upper.ends_with("_TOKEN")
        || upper.ends_with("_SECRET")
        || upper.ends_with("_PASSWORD")
        || upper.ends_with("ACCESS_KEY")
}

struct Patterns {
    token_shaped: Regex,
    assignment: Regex,
    flag: Regex,
    bearer: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| Patterns {
        // hf_ tokens are 34+ alnum chars in practice; require 16+ to avoid eating words like "hf_model".
        token_shaped: Regex::new(
            r"\b(?:hf_[A-Za-z0-9]{16,}|sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|xox[abp]-[A-Za-z0-9\-]{10,})",
        )
        .unwrap(),
        // NAME=value (env assignments, .env lines, JSON-ish "NAME": "value" handled below)
        assignment: Regex::new(
            r#"(?i)\b([A-Z0-9_]*(?:HF_TOKEN|HUB_TOKEN|API_KEY|APIKEY|_TOKEN|_SECRET|_PASSWORD|ACCESS_KEY))(["']?\s*[:=]\s*["']?)([^\s"',;}]+)"#,
        )
        .unwrap(),
        // --hf-token X, --api-key=X, --token X
        flag: Regex::new(r"(?i)(--(?:[a-z0-9]+-)*(?:token|api-key|apikey|secret|password))([ =])([^\s\-][^\s]*)").unwrap(),
        bearer: Regex::new(r"(?i)(bearer\s+)([A-Za-z0-9._\-]{8,})").unwrap(),
    })
}

fn env_secret_values() -> &'static Vec<String> {
    static V: OnceLock<Vec<String>> = OnceLock::new();
    V.get_or_init(|| {
        let mut values: Vec<String> = std::env::vars()
            .filter(|(k, v)| is_secret_name(k) && v.len() >= 6)
            .map(|(_, v)| v)
            .collect();
        // Longest first so a value that contains another is replaced whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values
    })
}

/// Remove every secret from `text`. Cheap when there is nothing to remove.
pub fn redact(text: &str) -> Cow<'_, str> {
    redact_also(text, &[])
}

/// The values of the secret-named entries of an environment handed to a child process
/// (they are not in this process's environment, so [`redact`] alone cannot know them).
pub(crate) fn secret_values<'a>(env: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    let mut values: Vec<String> = env
        .into_iter()
        .filter(|(k, v)| is_secret_name(k) && v.len() >= 6)
        .map(|(_, v)| v.to_string())
        .collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values
}

/// [`redact`], also replacing each literal of `extra` (see [`secret_values`]).
pub(crate) fn redact_also<'t>(text: &'t str, extra: &[String]) -> Cow<'t, str> {
    let mut out: Cow<'_, str> = Cow::Borrowed(text);
    for value in extra.iter().chain(env_secret_values()) {
        if out.contains(value.as_str()) {
            out = Cow::Owned(out.replace(value.as_str(), REDACTED));
        }
    }
    let p = patterns();
    if p.token_shaped.is_match(&out) {
        out = Cow::Owned(p.token_shaped.replace_all(&out, REDACTED).into_owned());
    }
    if p.assignment.is_match(&out) {
        out = Cow::Owned(
            p.assignment
                .replace_all(&out, format!("${{1}}${{2}}{REDACTED}"))
                .into_owned(),
        );
    }
    if p.flag.is_match(&out) {
        out = Cow::Owned(
            p.flag
                .replace_all(&out, format!("${{1}}${{2}}{REDACTED}"))
                .into_owned(),
        );
    }
    if p.bearer.is_match(&out) {
        out = Cow::Owned(
            p.bearer
                .replace_all(&out, format!("${{1}}{REDACTED}"))
                .into_owned(),
        );
    }
    out
}

/// Redact every string inside a JSON value (keys too, values of secret-named keys entirely).
pub(crate) fn redact_json(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            if let Cow::Owned(r) = redact(s) {
                *s = r;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if is_secret_name(k) && !v.is_null() {
                    *v = Value::String(REDACTED.into());
                } else {
                    redact_json(v);
                }
            }
        }
        _ => {}
    }
}

/// Environment to hand a child process: the caller's entries, never logged, never written.
/// Use [`describe_env`] to record an environment in an artifact.
pub fn describe_env<'a>(env: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    env.into_iter()
        .map(|(k, v)| {
            if is_secret_name(k) {
                format!("{k}={REDACTED}")
            } else {
                redact(&format!("{k}={v}")).into_owned()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shapes_are_removed() {
        let line = "vllm serve m --hf-token hf_abcdefghijklmnopqrstuvwxyz0123 and key sk-proj-ABCDEFGHIJKLMNOPQRST";
        let r = redact(line);
        assert!(!r.contains("hf_abcdefghij"), "{r}");
        assert!(!r.contains("ABCDEFGHIJKLMNOP"), "{r}");
        assert!(r.contains("vllm serve m"));
    }

    #[test]
    fn assignments_and_flags_are_removed() {
        let r = redact(
            "HF_TOKEN=plainsecretvalue OPENAI_API_KEY: 'abc123xyz' --api-key=zzzsecret --port 8000",
        );
        assert!(
            !r.contains("plainsecretvalue") && !r.contains("abc123xyz") && !r.contains("zzzsecret"),
            "{r}"
        );
        assert!(r.contains("--port 8000"));
    }

    #[test]
    fn harmless_text_is_borrowed() {
        assert!(matches!(
            redact("max_num_seqs=256 hf_model tokenizer"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn json_secret_keys_are_blanked() {
        let mut v = serde_json::json!({"env": {"HF_TOKEN": "x", "CUDA_VISIBLE_DEVICES": "0"}, "cmd": "a --token t0psecret"});
        redact_json(&mut v);
        assert_eq!(v["env"]["HF_TOKEN"], REDACTED);
        assert_eq!(v["env"]["CUDA_VISIBLE_DEVICES"], "0");
        assert!(!v["cmd"].as_str().unwrap().contains("t0psecret"));
    }
}
