//! Workloads: the random dataset built in token space with the model's
//! `tokenizer.json` (exact input lengths), and the normalized JSONL workload.

use crate::rng::Rng;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The model's tokenizer (`tokenizer.json`), shared by the dataset builder, the
/// re-tokenizing cross-check and the simulator.
#[derive(Clone)]
pub struct TokenizerHandle {
    inner: Arc<tokenizers::Tokenizer>,
    path: PathBuf,
    /// Ids a random prompt may use: the vocabulary minus special added tokens.
    allowed: Arc<Vec<u32>>,
    special_to_add: usize,
}

impl std::fmt::Debug for TokenizerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenizerHandle({})", self.path.display())
    }
}

impl TokenizerHandle {
    /// Loads a `tokenizer.json` file, or the `tokenizer.json` inside a model directory.
    pub fn load(path: &Path) -> Result<Self> {
        let file = if path.is_dir() {
            path.join("tokenizer.json")
        } else {
            path.to_path_buf()
        };
        let tok = tokenizers::Tokenizer::from_file(&file)
            .map_err(|e| anyhow::anyhow!("loading tokenizer {}: {e}", file.display()))?;
        let vocab_size = tok.get_vocab_size(true) as u32;
        let special: std::collections::HashSet<u32> = tok
            .get_added_tokens_decoder()
            .iter()
            .filter(|(_, t)| t.special)
            .map(|(id, _)| *id)
            .collect();
        let allowed: Vec<u32> = (0..vocab_size)
            .filter(|id| !special.contains(id) && tok.id_to_token(*id).is_some())
            .collect();
        if allowed.is_empty() {
            bail!("tokenizer {} has no non-special tokens", file.display());
        }
        let special_to_add = tok
            .encode("", true)
            .map_err(|e| {
                anyhow::anyhow!(
                    "tokenizer {}: encoding an empty string: {e}",
                    file.display()
                )
            })?
            .len();
        Ok(TokenizerHandle {
            inner: Arc::new(tok),
            path: file,
            allowed: Arc::new(allowed),
            special_to_add,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Special tokens the server adds to a completions prompt (BOS for Llama 3 = 1).
    pub fn num_special_tokens_to_add(&self) -> usize {
        self.special_to_add
    }

    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        Ok(self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| anyhow::anyhow!("tokenizer {}: {e}", self.path.display()))?
            .get_ids()
            .to_vec())
    }

    pub fn count(&self, text: &str, add_special_tokens: bool) -> Result<usize> {
        Ok(self.encode(text, add_special_tokens)?.len())
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, false)
            .map_err(|e| anyhow::anyhow!("tokenizer {}: {e}", self.path.display()))
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    pub fn allowed_ids(&self) -> &[u32] {
        &self.allowed
    }

    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

/// What is sent: a completions prompt or chat messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    Text(String),
    Chat(Vec<ChatMessage>),
}

/// One request of a workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkloadRequest {
    pub prompt: Prompt,
    /// Expected prompt tokens as the server counts them (completions: including the
    /// special tokens it adds; chat: the content tokens, without template tokens).
    /// None when unknown (a JSONL workload loaded without a tokenizer).
    pub input_len: Option<u64>,
    /// Output tokens to force (`max_tokens` = `min_tokens`, `ignore_eos`).
    pub output_len: u64,
    /// Extra JSON fields merged into the request body (JSONL `extra_request_body`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_body: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A list of requests plus where they came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Workload {
    /// `random` or `jsonl:<path>`.
    pub source: String,
    pub requests: Vec<WorkloadRequest>,
}

/// Input/output length percentiles of a workload (tokens).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LengthStats {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_p50: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_p95: Option<f64>,
    pub output_p50: f64,
    pub output_p95: f64,
}

impl Workload {
    pub fn length_stats(&self) -> LengthStats {
        let outs: Vec<f64> = self.requests.iter().map(|r| r.output_len as f64).collect();
        let ins: Option<Vec<f64>> = self
            .requests
            .iter()
            .map(|r| r.input_len.map(|v| v as f64))
            .collect();
        let ins = ins.filter(|v| !v.is_empty());
        LengthStats {
            input_p50: ins
                .as_ref()
                .map(|v| crate::metrics::percentile_unsorted(v, 50.0)),
            input_p95: ins
                .as_ref()
                .map(|v| crate::metrics::percentile_unsorted(v, 95.0)),
            output_p50: if outs.is_empty() {
                0.0
            } else {
                crate::metrics::percentile_unsorted(&outs, 50.0)
            },
            output_p95: if outs.is_empty() {
                0.0
            } else {
                crate::metrics::percentile_unsorted(&outs, 95.0)
            },
        }
    }
}

/// Settings of the random dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RandomDatasetConfig {
    pub num_prompts: usize,
    /// Prompt tokens as the server will count them (for completions the special tokens
    /// the server adds, e.g. BOS, are included, as `vllm bench serve` does).
    pub input_len: u64,
    pub output_len: u64,
    /// 0 = fixed lengths (default); r gives lengths uniform on [floor(L(1-r)), ceil(L(1+r))].
    #[serde(default)]
    pub range_ratio: f64,
    /// Random tokens shared by every prompt (prefix-cache workload), counted in input_len.
    #[serde(default)]
    pub prefix_len: u64,
    #[serde(default)]
    pub seed: u64,
    /// Build chat messages (one user message) instead of completions prompts.
    #[serde(default)]
    pub chat: bool,
}

fn sample_len(rng: &mut Rng, len: u64, ratio: f64) -> u64 {
    if ratio <= 0.0 {
        return len;
    }
    let lo = (len as f64 * (1.0 - ratio)).floor() as u64;
    let hi = (len as f64 * (1.0 + ratio)).ceil() as u64;
    rng.range_inclusive(lo, hi)
}

/// Builds the random dataset: random ids → decode → re-encode, correcting drift until the
/// text re-encodes to exactly the target count.
pub fn random_workload(cfg: &RandomDatasetConfig, tok: &TokenizerHandle) -> Result<Workload> {
    if !(0.0..1.0).contains(&cfg.range_ratio) {
        bail!(
            "random dataset: range_ratio must be in [0, 1), got {}",
            cfg.range_ratio
        );
    }
    if cfg.output_len == 0 {
        bail!("random dataset: output_len must be >= 1");
    }
    let special = if cfg.chat {
        0
    } else {
        tok.num_special_tokens_to_add() as u64
    };
    let mut rng = Rng::new(cfg.seed);
    let allowed = tok.allowed_ids();
    let pick = |rng: &mut Rng| allowed[rng.below(allowed.len() as u64) as usize];
    let prefix_ids: Vec<u32> = (0..cfg.prefix_len).map(|_| pick(&mut rng)).collect();
    let prefix_text = if prefix_ids.is_empty() {
        String::new()
    } else {
        exact_text(tok, &prefix_ids, &mut rng, allowed)?
    };
    let prefix_tokens = tok.count(&prefix_text, false)? as u64;
    let mut requests = Vec::with_capacity(cfg.num_prompts);
    for i in 0..cfg.num_prompts {
        let total = sample_len(&mut rng, cfg.input_len, cfg.range_ratio);
        let out = sample_len(&mut rng, cfg.output_len, cfg.range_ratio).max(1);
        if total < special + prefix_tokens + 1 {
            bail!(
                "random dataset: input_len {total} leaves no room for a prompt after {special} special token(s) and a {prefix_tokens}-token prefix"
            );
        }
        let inner_len = (total - special - prefix_tokens) as usize;
        let text = build_exact(
            tok,
            &prefix_text,
            inner_len,
            prefix_tokens as usize + inner_len,
            &mut rng,
            allowed,
        )
        .with_context(|| format!("random dataset request {i}"))?;
        let prompt = if cfg.chat {
            Prompt::Chat(vec![ChatMessage {
                role: "user".into(),
                content: text,
            }])
        } else {
            Prompt::Text(text)
        };
        requests.push(WorkloadRequest {
            prompt,
            input_len: Some(total),
            output_len: out,
            extra_body: None,
        });
    }
    Ok(Workload {
        source: "random".into(),
        requests,
    })
}

/// Decodes `ids` into text that re-encodes to exactly `ids.len()` tokens.
fn exact_text(
    tok: &TokenizerHandle,
    ids: &[u32],
    rng: &mut Rng,
    allowed: &[u32],
) -> Result<String> {
    build_exact(tok, "", ids.len(), ids.len(), rng, allowed)
}

/// `prefix + random text` re-encoding to exactly `target_total` tokens (no special tokens).
fn build_exact(
    tok: &TokenizerHandle,
    prefix: &str,
    inner_len: usize,
    target_total: usize,
    rng: &mut Rng,
    allowed: &[u32],
) -> Result<String> {
    for _attempt in 0..20 {
        let mut ids: Vec<u32> = (0..inner_len)
            .map(|_| allowed[rng.below(allowed.len() as u64) as usize])
            .collect();
        for _round in 0..10 {
            let text = format!("{prefix}{}", tok.decode(&ids)?);
            let n = tok.count(&text, false)?;
            if n == target_total {
                return Ok(text);
            }
            if n > target_total {
                let cut = n - target_total;
                let keep = ids.len().saturating_sub(cut).max(1);
                ids.truncate(keep);
            } else {
                for _ in 0..(target_total - n) {
                    ids.push(allowed[rng.below(allowed.len() as u64) as usize]);
                }
            }
        }
    }
    bail!(
        "could not build a prompt of exactly {target_total} tokens after 20 attempts (tokenizer merges keep drifting)"
    )
}

/// One line of the normalized JSONL workload.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonlLine {
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    messages: Option<Vec<ChatMessage>>,
    output_len: u64,
    #[serde(default)]
    input_len: Option<u64>,
    #[serde(default)]
    extra_request_body: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Loads a JSONL workload: one object per line with `prompt` (string) or `messages`
/// (chat), `output_len`, optional `input_len` and `extra_request_body`. With a
/// tokenizer, a missing `input_len` of a text prompt is counted (with special tokens).
pub fn load_jsonl_workload(path: &Path, tok: Option<&TokenizerHandle>) -> Result<Workload> {
    let lines: Vec<JsonlLine> = vllm_sota_core::fsx::read_jsonl(path)?;
    if lines.is_empty() {
        bail!("workload {}: no requests (empty file)", path.display());
    }
    let mut requests = Vec::with_capacity(lines.len());
    for (i, l) in lines.into_iter().enumerate() {
        let where_ = || format!("workload {} line {}", path.display(), i + 1);
        let prompt = match (l.prompt, l.messages) {
            (Some(p), None) => Prompt::Text(p),
            (None, Some(m)) if !m.is_empty() => Prompt::Chat(m),
            (None, Some(_)) => bail!("{}: `messages` is empty", where_()),
            (Some(_), Some(_)) => {
                bail!("{}: give either `prompt` or `messages`, not both", where_())
            }
            (None, None) => bail!("{}: missing `prompt` or `messages`", where_()),
        };
        if l.output_len == 0 {
            bail!("{}: `output_len` must be >= 1", where_());
        }
        let input_len = match (l.input_len, &prompt, tok) {
            (Some(v), _, _) => Some(v),
            (None, Prompt::Text(t), Some(tok)) => Some(tok.count(t, true)? as u64),
            (None, Prompt::Chat(m), Some(tok)) => {
                let mut n = 0;
                for msg in m {
                    n += tok.count(&msg.content, false)? as u64;
                }
                Some(n)
            }
            _ => None,
        };
        requests.push(WorkloadRequest {
            prompt,
            input_len,
            output_len: l.output_len,
            extra_body: l.extra_request_body,
        });
    }
    Ok(Workload {
        source: format!("jsonl:{}", path.display()),
        requests,
    })
}
