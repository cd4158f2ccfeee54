//! Generation requests: validation as the impersonated engine does it (TensorRT-LLM's
//! forbidden fields, the served model, the chat template, lengths), request-level faults,
//! and the hand-off of a valid request to the engine.

use super::routes::{ChannelBody, RespBody, bad_request, json_error, stream_response};
use super::state::State;
use super::stream::{Formatter, Job, zero_delay_stream};
use super::truth::GroundTruth;
use crate::sim::engine::{self, EngineRequest};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tokio::sync::mpsc;
use vllm_sota_core::Framework;

/// TensorRT-LLM request fields (its pydantic models use `extra="forbid"`): the fields
/// both request models accept, then each model's own.
const TRTLLM_COMMON_FIELDS: &[&str] = &[
    "model",
    "best_of",
    "echo",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "max_tokens",
    "n",
    "presence_penalty",
    "seed",
    "stop",
    "stream",
    "stream_options",
    "temperature",
    "top_p",
    "user",
    "lora_request",
    "use_beam_search",
    "top_k",
    "min_p",
    "repetition_penalty",
    "length_penalty",
    "early_stopping",
    "stop_token_ids",
    "include_stop_str_in_output",
    "ignore_eos",
    "min_tokens",
    "skip_special_tokens",
    "spaces_between_special_tokens",
    "response_format",
    "disaggregated_params",
];
const TRTLLM_COMPLETION_ONLY_FIELDS: &[&str] = &[
    "prompt",
    "suffix",
    "top_p_min",
    "truncate_prompt_tokens",
    "return_context_logits",
    "detokenize",
];
const TRTLLM_CHAT_ONLY_FIELDS: &[&str] = &[
    "messages",
    "top_logprobs",
    "max_completion_tokens",
    "tools",
    "tool_choice",
    "add_generation_prompt",
    "add_special_tokens",
    "documents",
    "chat_template",
    "chat_template_kwargs",
    "reasoning_effort",
];

/// Whether TensorRT-LLM's request model for this route accepts `key`.
fn trtllm_accepts(chat: bool, key: &str) -> bool {
    let own = if chat {
        TRTLLM_CHAT_ONLY_FIELDS
    } else {
        TRTLLM_COMPLETION_ONLY_FIELDS
    };
    TRTLLM_COMMON_FIELDS.contains(&key) || own.contains(&key)
}

/// The dummy model's chat template (fixtures/dummy-llama-3.1-8b/tokenizer_config.json):
/// bos + per message `<|reserved_special_token_0|>role<|reserved_special_token_1|>\n\n`
/// + trimmed content + `<|reserved_special_token_2|>`, then the assistant header.
pub(super) fn render_chat(messages: &[serde_json::Value]) -> Result<String, String> {
    let mut s = String::from("<|begin_of_text|>");
    for (i, m) in messages.iter().enumerate() {
        let role = m
            .get("role")
            .and_then(|r| r.as_str())
            .ok_or_else(|| format!("messages[{i}].role: expected a string"))?;
        let content = match m.get("content") {
            Some(serde_json::Value::String(c)) => c.clone(),
            Some(serde_json::Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(|t| t.as_str()))
                .collect::<Vec<_>>()
                .join(""),
            _ => return Err(format!("messages[{i}].content: expected a string")),
        };
        s.push_str("<|reserved_special_token_0|>");
        s.push_str(role);
        s.push_str("<|reserved_special_token_1|>\n\n");
        s.push_str(content.trim());
        s.push_str("<|reserved_special_token_2|>");
    }
    s.push_str("<|reserved_special_token_0|>assistant<|reserved_special_token_1|>\n\n");
    Ok(s)
}

/// A generation request that passed validation.
struct Parsed {
    prompt_tokens: u64,
    /// Hash of the rendered prompt: greedy answers depend on the prompt only.
    prompt_key: u64,
    max_tokens: u64,
    stream: bool,
    include_usage: bool,
    logprobs: bool,
}

/// A refused request: the answer, and the status and fault to record as ground truth
/// (None: the engine never saw it, as with a body that is not JSON).
struct Refusal {
    resp: Box<Response<RespBody>>,
    recorded: Option<(u16, &'static str)>,
}

impl Refusal {
    fn bad(msg: &str) -> Refusal {
        Refusal {
            resp: Box::new(bad_request(msg)),
            recorded: None,
        }
    }
}

fn prompt_key(s: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// Validates a generation body as the impersonated engine would: TensorRT-LLM's forbidden
/// fields, the served model name, the prompt (tokenized), `max_tokens` and the context length.
fn parse(st: &State, body: &[u8], chat: bool) -> Result<Parsed, Refusal> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Refusal::bad(&format!("JSON decode error: {e}")))?;
    let Some(obj) = v.as_object() else {
        return Err(Refusal::bad("request body must be a JSON object"));
    };
    if st.cfg.framework == Framework::TensorrtLlm
        && let Some(k) = obj.keys().find(|k| !trtllm_accepts(chat, k))
    {
        return Err(Refusal {
            resp: Box::new(bad_request(&format!(
                "1 validation error: [{{'type': 'extra_forbidden', 'loc': ('body', '{k}'), 'msg': 'Extra inputs are not permitted'}}]"
            ))),
            recorded: Some((400, "extra_forbidden")),
        });
    }
    if let Some(m) = obj.get("model").and_then(|m| m.as_str())
        && m != st.cfg.model
    {
        return Err(Refusal {
            resp: Box::new(json_error(
                StatusCode::NOT_FOUND,
                &format!("The model `{m}` does not exist."),
                "NotFoundError",
            )),
            recorded: Some((404, "unknown_model")),
        });
    }
    let (prompt_tokens, prompt_key) = if chat {
        let Some(msgs) = obj.get("messages").and_then(|m| m.as_array()) else {
            return Err(Refusal::bad("`messages` is required (a list)"));
        };
        let text = render_chat(msgs).map_err(|e| Refusal::bad(&e))?;
        (st.count_cached(&text, false), prompt_key(&text))
    } else {
        match obj.get("prompt") {
            Some(serde_json::Value::String(p)) => (st.count_cached(p, true), prompt_key(p)),
            Some(serde_json::Value::Array(a)) if a.iter().all(|x| x.is_u64()) => (
                Ok(a.len()),
                prompt_key(&serde_json::Value::Array(a.clone()).to_string()),
            ),
            Some(serde_json::Value::Array(a)) if a.len() == 1 && a[0].is_string() => {
                let p = a[0].as_str().unwrap_or("");
                (st.count_cached(p, true), prompt_key(p))
            }
            _ => {
                return Err(Refusal::bad(
                    "`prompt` is required (a string or a list of token ids)",
                ));
            }
        }
    };
    let prompt_tokens =
        prompt_tokens.map_err(|e| Refusal::bad(&format!("tokenizing the prompt: {e:#}")))? as u64;
    let max_len = st.cfg.max_model_len as u64;
    let requested = obj
        .get(if chat {
            "max_completion_tokens"
        } else {
            "max_tokens"
        })
        .and_then(|x| x.as_u64())
        .or_else(|| obj.get("max_tokens").and_then(|x| x.as_u64()));
    let max_tokens = match requested {
        Some(m) => m,
        None if chat => max_len.saturating_sub(prompt_tokens),
        None => 16,
    };
    if max_tokens == 0 {
        return Err(Refusal::bad("max_tokens must be at least 1"));
    }
    if prompt_tokens + max_tokens > max_len {
        return Err(Refusal {
            resp: Box::new(bad_request(&format!(
                "This model's maximum context length is {max_len} tokens. However, you requested {} tokens ({prompt_tokens} in the messages, {max_tokens} in the completion). Please reduce the length of the messages or completion.",
                prompt_tokens + max_tokens
            ))),
            recorded: Some((400, "context_length")),
        });
    }
    Ok(Parsed {
        prompt_tokens,
        prompt_key,
        max_tokens,
        stream: obj.get("stream").and_then(|s| s.as_bool()).unwrap_or(false),
        include_usage: obj
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(|b| b.as_bool())
            .unwrap_or(false),
        // Completions: `logprobs: <int>`; chat: `logprobs: true` (OpenAI API shapes).
        logprobs: match obj.get("logprobs") {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::Number(_)) => true,
            _ => false,
        },
    })
}

/// Answers `/v1/completions` (`chat` false) or `/v1/chat/completions`: validation,
/// request-level faults, then a stream fed by the engine (or by the zero-delay path).
pub(super) async fn generate(
    st: Arc<State>,
    req: Request<Incoming>,
    arrival: Instant,
    chat: bool,
) -> Response<RespBody> {
    let n = st.arrivals.fetch_add(1, Ordering::SeqCst) + 1;
    let id = format!("{}-{n}", if chat { "chatcmpl" } else { "cmpl" });
    let endpoint = if chat {
        "/v1/chat/completions"
    } else {
        "/v1/completions"
    };
    let arrival_us = st.us(arrival);
    let refused = |status: u16, fault: &str| {
        let mut g = GroundTruth::arrived(&id, endpoint, arrival_us);
        g.status = status;
        g.fault = Some(fault.to_string());
        g
    };
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return bad_request(&format!("reading request body: {e}")),
    };
    let p = match parse(&st, &body, chat) {
        Ok(p) => p,
        Err(r) => {
            if let Some((status, fault)) = r.recorded {
                st.push_gt(refused(status, fault));
            }
            return *r.resp;
        }
    };
    if st
        .cfg
        .faults
        .error_5xx_every
        .is_some_and(|k| n.is_multiple_of(k))
    {
        st.push_gt(refused(500, "http_500"));
        return json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal server error (injected fault)",
            "InternalServerError",
        );
    }
    if st.cfg.faults.hang_after.is_some_and(|h| n > h) || st.dying.load(Ordering::SeqCst) {
        // Accepted, never answered: the engine is wedged (or about to die). Stopping the
        // server cuts the connection under this future.
        std::future::pending::<()>().await;
    }
    let mut gt = GroundTruth::arrived(&id, endpoint, arrival_us);
    gt.prompt_tokens = p.prompt_tokens;
    gt.token_us = Vec::with_capacity(p.max_tokens as usize);
    let job = Job {
        st: st.clone(),
        fmt: Formatter::new(&st, &id, chat, n, p.prompt_key),
        gt,
        stream: p.stream,
        include_usage: p.include_usage,
        max_tokens: p.max_tokens,
        text: String::new(),
        logprobs: p.logprobs,
        tokens: Vec::new(),
    };
    if st.cfg.zero_delay() {
        let (tx, rx) = mpsc::channel::<Bytes>(4);
        tokio::spawn(zero_delay_stream(job, tx));
        return stream_response(p.stream, ChannelBody::Bounded(rx));
    }
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    let mut job = job;
    let sink: engine::Sink = Box::new(move |ev, at| job.on_event(ev, at, &tx));
    let Some(engine) = &st.engine_tx else {
        return json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no engine",
            "InternalServerError",
        );
    };
    if engine
        .send(EngineRequest {
            prompt_tokens: p.prompt_tokens,
            max_tokens: p.max_tokens,
            sink,
        })
        .is_err()
    {
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "engine is dead",
            "EngineDeadError",
        );
    }
    stream_response(p.stream, ChannelBody::Unbounded(rx))
}
