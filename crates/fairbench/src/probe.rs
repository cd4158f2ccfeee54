//! The correctness probe: fixed prompts, greedy decoding, tokens (and logprobs when
//! served) compared with answers recorded from the unpatched build.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;
use vllm_sota_core::results::Correctness;

use vllm_sota_core::http::{self, Timeouts, request_json, url_of};

/// Fixed probe prompts: short, varied, deterministic under greedy decoding.
pub(crate) const PROBE_PROMPTS: &[&str] = &[
    "The capital of France is",
    "def fibonacci(n):\n    ",
    "Translate to German: The weather is nice today.",
    "1, 1, 2, 3, 5, 8, 13,",
    "The three primary colors are",
    "Q: What is 17 times 23?\nA:",
    "Once upon a time, in a small village by the sea,",
    "SELECT name FROM users WHERE",
];

pub(crate) const PROBE_MAX_TOKENS: u64 = 16;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ProbeAnswer {
    pub prompt: String,
    pub text: String,
    /// Token strings (completions `logprobs.tokens`) when the server returns them.
    #[serde(default)]
    pub tokens: Option<Vec<String>>,
    #[serde(default)]
    pub token_logprobs: Option<Vec<Option<f64>>>,
}

/// `benchmark/correctness/<framework>/<candidate>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ProbeReference {
    pub framework: vllm_sota_core::Framework,
    pub candidate_id: String,
    pub recorded_at: String,
    pub vllm_commit: Option<String>,
    pub max_tokens: u64,
    pub answers: Vec<ProbeAnswer>,
}

fn body(endpoint: &str, model: &str, prompt: &str, logprobs: bool) -> Value {
    if endpoint.contains("chat") {
        let mut b = json!({"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": PROBE_MAX_TOKENS, "temperature": 0, "top_p": 1, "stream": false});
        if logprobs {
            b["logprobs"] = json!(true);
        }
        b
    } else {
        let mut b = json!({"model": model, "prompt": prompt, "max_tokens": PROBE_MAX_TOKENS, "temperature": 0, "top_p": 1, "stream": false});
        if logprobs {
            b["logprobs"] = json!(1);
        }
        b
    }
}

fn parse_answer(prompt: &str, v: &Value) -> Result<ProbeAnswer> {
    let c = &v["choices"][0];
    let text = c["text"]
        .as_str()
        .or_else(|| c["message"]["content"].as_str())
        .context("no choices[0].text / message.content")?
        .to_string();
    let lp = &c["logprobs"];
    let tokens = lp["tokens"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| t.as_str().unwrap_or("").to_string())
                .collect()
        })
        .or_else(|| {
            lp["content"].as_array().map(|a| {
                a.iter()
                    .map(|t| t["token"].as_str().unwrap_or("").to_string())
                    .collect()
            })
        });
    let token_logprobs = lp["token_logprobs"]
        .as_array()
        .map(|a| a.iter().map(Value::as_f64).collect())
        .or_else(|| {
            lp["content"]
                .as_array()
                .map(|a| a.iter().map(|t| t["logprob"].as_f64()).collect())
        });
    Ok(ProbeAnswer {
        prompt: prompt.to_string(),
        text,
        tokens,
        token_logprobs,
    })
}

/// Ask every probe prompt, greedily (logprobs requested; retried without when refused).
pub(crate) fn run_probe(
    host: &str,
    port: u16,
    endpoint: &str,
    model: &str,
) -> Result<Vec<ProbeAnswer>> {
    let mut out = Vec::new();
    for prompt in PROBE_PROMPTS {
        let t = Timeouts::new(Duration::from_secs(120));
        let url = url_of(host, port, endpoint);
        let mut r = request_json("POST", &url, Some(&body(endpoint, model, prompt, true)), t)?;
        if r.status == 400 || r.status == 422 {
            r = request_json("POST", &url, Some(&body(endpoint, model, prompt, false)), t)?;
        }
        anyhow::ensure!(
            r.status == 200,
            "probe request answered {}: {}",
            r.status,
            http::snippet(&r.text())
        );
        out.push(parse_answer(prompt, &r.json()?)?);
    }
    Ok(out)
}

/// Largest |Δlogprob| on a matching answer above which the answers count as different
/// (greedy tokens can survive a numerics change that logprobs reveal).
pub(crate) const MAX_LOGPROB_DIFF: f64 = 0.05;

/// Compare answers with the reference, prompt by prompt (matched by prompt text, never by
/// position): tokens when both sides have them, else text; with logprobs on both sides,
/// a token-wise |Δlogprob| above [`MAX_LOGPROB_DIFF`] is a mismatch. A reference prompt
/// with no answer counts as a mismatch.
pub(crate) fn compare(
    reference: &[ProbeAnswer],
    got: &[ProbeAnswer],
    min_match_rate: f64,
) -> Correctness {
    let mut matched = 0u32;
    let mut max_lp_diff: f64 = 0.0;
    let mut first_mismatch = None;
    for r in reference {
        let Some(g) = got.iter().find(|g| g.prompt == r.prompt) else {
            if first_mismatch.is_none() {
                first_mismatch = Some(format!("prompt {:?}: no answer", r.prompt));
            }
            continue;
        };
        let mut lp_diff: f64 = 0.0;
        if let (Some(a), Some(b)) = (&r.token_logprobs, &g.token_logprobs) {
            for (x, y) in a.iter().zip(b) {
                if let (Some(x), Some(y)) = (x, y) {
                    lp_diff = lp_diff.max((x - y).abs());
                }
            }
        }
        let same = match (&r.tokens, &g.tokens) {
            (Some(a), Some(b)) => a == b && lp_diff <= MAX_LOGPROB_DIFF,
            _ => r.text == g.text,
        };
        if same {
            matched += 1;
            max_lp_diff = max_lp_diff.max(lp_diff);
        } else if first_mismatch.is_none() {
            first_mismatch = Some(format!(
                "prompt {:?}: expected {:?}, got {:?} (max |Δlogprob| {lp_diff:.4})",
                r.prompt, r.text, g.text
            ));
        }
    }
    let probes = reference.len() as u32;
    let match_rate = if probes == 0 {
        0.0
    } else {
        matched as f64 / probes as f64
    };
    let mut detail = format!(
        "greedy, {PROBE_MAX_TOKENS} tokens per prompt; max |Δlogprob| on matching prompts {max_lp_diff:.4}"
    );
    if let Some(m) = first_mismatch {
        detail.push_str(&format!("; first mismatch: {m}"));
    }
    Correctness {
        probes,
        matched,
        match_rate,
        passed: probes > 0 && match_rate >= min_match_rate,
        detail: Some(detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ans(prompt: &str, text: &str, toks: Option<&[&str]>) -> ProbeAnswer {
        ProbeAnswer {
            prompt: prompt.into(),
            text: text.into(),
            tokens: toks.map(|t| t.iter().map(|s| s.to_string()).collect()),
            token_logprobs: None,
        }
    }

    #[test]
    fn tokens_decide_when_both_sides_have_them() {
        let r = vec![ans("p1", "a b", Some(&["a", " b"])), ans("p2", "c", None)];
        let same = compare(&r, &r.clone(), 1.0);
        assert_eq!((same.probes, same.matched, same.passed), (2, 2, true));
        let g = vec![ans("p1", "a b", Some(&["a", " c"])), ans("p2", "c", None)];
        let c = compare(&r, &g, 1.0);
        assert_eq!((c.matched, c.match_rate, c.passed), (1, 0.5, false));
        assert!(c.detail.unwrap().contains("first mismatch"));
        let parsed = parse_answer("p", &json!({"choices":[{"text":" Paris","logprobs":{"tokens":[" Paris"],"token_logprobs":[-0.1]}}]})).unwrap();
        assert_eq!(parsed.tokens.as_deref(), Some(&[" Paris".to_string()][..]));
    }

    fn p(prompt: &str, text: &str, lp: f64) -> ProbeAnswer {
        ProbeAnswer {
            prompt: prompt.into(),
            text: text.into(),
            tokens: Some(vec![text.into()]),
            token_logprobs: Some(vec![Some(lp)]),
        }
    }

    #[test]
    fn answers_are_matched_by_prompt_not_by_arrival_order() {
        let reference = vec![p("a", "x", -0.1), p("b", "y", -0.2)];
        // Same answers, other order: every prompt still matches.
        let swapped = vec![p("b", "y", -0.2), p("a", "x", -0.1)];
        let c = compare(&reference, &swapped, 1.0);
        assert_eq!((c.matched, c.probes, c.passed), (2, 2, true));
        // Positionally "equal" answers given to the wrong prompts do not match.
        let crossed = vec![p("b", "x", -0.1), p("a", "y", -0.2)];
        let c = compare(&reference, &crossed, 1.0);
        assert_eq!((c.matched, c.passed), (0, false));
        // A missing answer is a mismatch, not a smaller denominator.
        let c = compare(&reference, &reference[..1], 1.0);
        assert_eq!((c.matched, c.probes, c.passed), (1, 2, false));
        // Same tokens, logprobs moved beyond the tolerance: a mismatch.
        let drift = vec![p("a", "x", -0.1), p("b", "y", -0.9)];
        let c = compare(&reference, &drift, 1.0);
        assert_eq!((c.matched, c.passed), (1, false));
    }
}
