//! One request's answer: SSE chunks in vLLM's shapes (or one JSON body), mid-stream
//! faults, ground truth per token, and the zero-delay path that bypasses the engine.

use super::state::State;
use super::truth::GroundTruth;
use crate::sim::engine::EngineEvent;
use bytes::{BufMut, Bytes, BytesMut};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Precomputed pieces of one request's SSE chunks.
pub(super) struct Formatter {
    head: Vec<u8>,
    chat: bool,
    words_offset: usize,
    prompt_key: u64,
    /// `--sim-broken-patch`: from the third token on, answers differ from the real ones.
    broken_patch: bool,
    malformed_at: Option<u64>,
    error_at: Option<u64>,
    reasoning_tokens: u64,
    comment_every: u64,
    /// Tokens with a hash below this (of `u32::MAX + 1`) decode to nothing on their own.
    empty_below: u64,
}

impl Formatter {
    pub(super) fn new(st: &State, id: &str, chat: bool, n: u64, prompt_key: u64) -> Formatter {
        let object = if chat {
            "chat.completion.chunk"
        } else {
            "text_completion"
        };
        let head = format!(
            r#"{{"id":"{id}","object":"{object}","created":{},"model":{},"#,
            st.created, st.model_json
        )
        .into_bytes();
        let every = |k: Option<u64>| k.is_some_and(|k| n.is_multiple_of(k));
        Formatter {
            head,
            chat,
            words_offset: (prompt_key % st.words.len() as u64) as usize,
            prompt_key,
            broken_patch: st.cfg.broken_patch,
            malformed_at: every(st.cfg.faults.malformed_every).then_some(0),
            error_at: every(st.cfg.faults.error_event_every).then_some(0),
            reasoning_tokens: if chat { st.cfg.reasoning_tokens } else { 0 },
            comment_every: st.cfg.comment_every,
            empty_below: (st.cfg.empty_token_fraction.clamp(0.0, 1.0) * (1u64 << 32) as f64) as u64,
        }
    }

    fn role_chunk(&self, out: &mut BytesMut) {
        out.put_slice(b"data: ");
        out.put_slice(&self.head);
        out.put_slice(br#""choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#);
        out.put_slice(b"\n\n");
    }

    fn token_chunk(&self, out: &mut BytesMut, word: &str, index: u64, last: bool) {
        if self.comment_every > 0 && index > 0 && index.is_multiple_of(self.comment_every) {
            out.put_slice(b": keep-alive\n\n");
        }
        out.put_slice(b"data: ");
        out.put_slice(&self.head);
        let finish: &[u8] = if last { br#""length""# } else { b"null" };
        if self.chat && word.is_empty() {
            // vLLM's chat shape for a last token with no text: an empty delta.
            out.put_slice(br#""choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"#);
            out.put_slice(finish);
            out.put_slice(b"}]}\n\n");
        } else if self.chat {
            let field: &[u8] = if index < self.reasoning_tokens {
                b"reasoning_content"
            } else {
                b"content"
            };
            out.put_slice(br#""choices":[{"index":0,"delta":{""#);
            out.put_slice(field);
            out.put_slice(br#"":""#);
            out.put_slice(word.as_bytes());
            out.put_slice(br#""},"logprobs":null,"finish_reason":"#);
            out.put_slice(finish);
            out.put_slice(b"}]}\n\n");
        } else {
            out.put_slice(br#""choices":[{"index":0,"text":""#);
            out.put_slice(word.as_bytes());
            out.put_slice(br#"","logprobs":null,"finish_reason":"#);
            out.put_slice(finish);
            out.put_slice(br#","stop_reason":null}],"usage":null}"#);
            out.put_slice(b"\n\n");
        }
    }

    fn usage_chunk(&self, out: &mut BytesMut, prompt: u64, completion: u64) {
        out.put_slice(b"data: ");
        out.put_slice(&self.head);
        let u = format!(
            r#""choices":[],"usage":{{"prompt_tokens":{prompt},"total_tokens":{},"completion_tokens":{completion}}}}}"#,
            prompt + completion
        );
        out.put_slice(u.as_bytes());
        out.put_slice(b"\n\n");
    }
}

/// One request's generation state.
pub(super) struct Job {
    pub(super) st: Arc<State>,
    pub(super) fmt: Formatter,
    pub(super) gt: GroundTruth,
    pub(super) stream: bool,
    pub(super) include_usage: bool,
    pub(super) max_tokens: u64,
    /// Non-streaming responses accumulate their text.
    pub(super) text: String,
    /// Logprobs were asked for (returned in non-streaming answers).
    pub(super) logprobs: bool,
    /// Non-streaming: (token, logprob) per output token.
    pub(super) tokens: Vec<(String, f64)>,
}

enum Step {
    Continue,
    Stop,
}

impl Job {
    /// Output token `index`: a function of the prompt (greedy), shifted from the third
    /// token on in broken-patch mode.
    fn word(&self, index: u64) -> &str {
        let w = &self.st.words;
        let shift = if self.fmt.broken_patch && index >= 2 {
            1
        } else {
            0
        };
        &w[(self.fmt.words_offset + index as usize + shift) % w.len()]
    }

    /// Whether output token `index` decodes to no text on its own (`--sim-empty-token-fraction`;
    /// a function of the prompt and the index, so runs repeat).
    fn decodes_empty(&self, index: u64) -> bool {
        if self.fmt.empty_below == 0 {
            return false;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.fmt.prompt_key, index, "empty-text").hash(&mut h);
        (h.finish() >> 32) < self.fmt.empty_below
    }

    /// Deterministic logprob of output token `index` (in (-1, 0)).
    fn logprob(&self, index: u64) -> f64 {
        let shift = if self.fmt.broken_patch && index >= 2 {
            1
        } else {
            0
        };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.fmt.prompt_key, index + shift).hash(&mut h);
        -((h.finish() % 997) as f64 + 1.0) / 1000.0
    }

    /// Formats token `index` into `out`, applying mid-stream faults.
    fn token(&mut self, index: u64, at: Instant, out: &mut BytesMut) -> Step {
        let t = self.st.us(at);
        if self.gt.first_token_us.is_none() {
            self.gt.first_token_us = Some(t);
        }
        self.gt.token_us.push(t);
        self.gt.completion_tokens = index + 1;
        let mid = self.max_tokens / 2;
        if self.stream && self.fmt.malformed_at.is_some() && index == mid {
            out.put_slice(b"data: {\"choices\":[{\"index\":0,\"text\":\"trunc\n\n");
            self.gt.fault = Some("malformed_sse".into());
        }
        if self.stream && self.fmt.error_at.is_some() && index == mid {
            out.put_slice(b"data: {\"error\":{\"object\":\"error\",\"message\":\"injected engine error\",\"type\":\"InternalServerError\",\"param\":null,\"code\":500}}\n\ndata: [DONE]\n\n");
            self.gt.fault = Some("error_event".into());
            self.gt.status = 500;
            return Step::Stop;
        }
        let last = index + 1 == self.max_tokens;
        let word = if self.decodes_empty(index) {
            String::new()
        } else {
            self.word(index).to_string()
        };
        if self.stream {
            // Completions stream a chunk per token even when its text is empty; vLLM's chat
            // sends nothing for a token with no text unless it ends the stream.
            if !(self.fmt.chat && word.is_empty() && !last) {
                self.fmt.token_chunk(out, &word, index, last);
            }
        } else {
            self.text.push_str(&word);
            if self.logprobs {
                let lp = self.logprob(index);
                self.tokens.push((word, lp));
            }
        }
        Step::Continue
    }

    /// Final chunks (usage, `[DONE]`) or the whole JSON body; records ground truth.
    fn finish(&mut self, at: Instant, out: &mut BytesMut) {
        self.gt.finished_us = Some(self.st.us(at));
        let (p, c) = (self.gt.prompt_tokens, self.gt.completion_tokens);
        if self.stream {
            if self.include_usage {
                self.fmt.usage_chunk(out, p, c);
            }
            out.put_slice(b"data: [DONE]\n\n");
        } else {
            let (object, mut choice) = if self.fmt.chat {
                (
                    "chat.completion",
                    serde_json::json!({"index": 0, "message": {"role": "assistant", "content": self.text}, "logprobs": null, "finish_reason": "length"}),
                )
            } else {
                (
                    "text_completion",
                    serde_json::json!({"index": 0, "text": self.text, "logprobs": null, "finish_reason": "length"}),
                )
            };
            if self.logprobs {
                choice["logprobs"] = if self.fmt.chat {
                    serde_json::json!({"content": self.tokens.iter().map(|(t, lp)| serde_json::json!({"token": t, "logprob": lp, "bytes": t.as_bytes(), "top_logprobs": []})).collect::<Vec<_>>()})
                } else {
                    let mut offset = 0usize;
                    let offsets: Vec<usize> = self
                        .tokens
                        .iter()
                        .map(|(t, _)| {
                            let o = offset;
                            offset += t.len();
                            o
                        })
                        .collect();
                    serde_json::json!({
                        "text_offset": offsets,
                        "token_logprobs": self.tokens.iter().map(|(_, lp)| *lp).collect::<Vec<_>>(),
                        "tokens": self.tokens.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>(),
                        "top_logprobs": self.tokens.iter().map(|(t, lp)| serde_json::json!({t.clone(): lp})).collect::<Vec<_>>(),
                    })
                };
            }
            let body = serde_json::json!({
                "id": self.gt.id, "object": object, "created": self.st.created, "model": self.st.cfg.model,
                "choices": [choice],
                "usage": {"prompt_tokens": p, "total_tokens": p + c, "completion_tokens": c}
            });
            out.put_slice(body.to_string().as_bytes());
        }
        self.record_and_count();
    }

    fn record_and_count(&mut self) {
        let g = std::mem::replace(
            &mut self.gt,
            GroundTruth {
                status: 0,
                ..GroundTruth::arrived("", "", 0)
            },
        );
        let ok = g.fault.is_none();
        self.st.push_gt(g);
        if ok {
            let done = self.st.completed.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some(limit) = self.st.cfg.faults.crash_after
                && done >= limit
            {
                // Let the last stream's final bytes leave before dying; requests that
                // arrive meanwhile wait for the cut.
                self.st.dying.store(true, Ordering::SeqCst);
                let st = self.st.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    st.crash(format!("injected crash after {done} completed requests"));
                });
            }
        }
    }

    pub(super) fn on_event(
        &mut self,
        ev: EngineEvent,
        at: Instant,
        tx: &mpsc::UnboundedSender<Bytes>,
    ) -> bool {
        let mut out = BytesMut::with_capacity(320);
        match ev {
            EngineEvent::Scheduled => {
                self.gt.scheduled_us = Some(self.st.us(at));
                if self.stream && self.fmt.chat {
                    self.fmt.role_chunk(&mut out);
                }
            }
            EngineEvent::Token { index } => {
                // Ground truth is the hand-off time of this token to its connection, not
                // the step's end: formatting a 1,000-sequence step takes time.
                let at = Instant::now();
                if let Step::Stop = self.token(index, at, &mut out) {
                    self.gt.finished_us = Some(self.st.us(at));
                    let _ = tx.send(out.freeze());
                    self.record_and_count();
                    return false;
                }
            }
            EngineEvent::Finished => self.finish(at, &mut out),
        }
        if out.is_empty() {
            return !tx.is_closed();
        }
        tx.send(out.freeze()).is_ok()
    }
}

/// Zero-delay mode: every token as fast as the connection takes them, `batch` events per write.
pub(super) async fn zero_delay_stream(mut job: Job, tx: mpsc::Sender<Bytes>) {
    let batch = job.st.cfg.zero_delay_batch.max(1) as u64;
    let mut out = BytesMut::with_capacity(320 * batch as usize);
    let now = Instant::now();
    job.gt.scheduled_us = Some(job.st.us(now));
    if job.stream && job.fmt.chat {
        job.fmt.role_chunk(&mut out);
    }
    let mut t = now;
    for index in 0..job.max_tokens {
        if index % batch == 0 {
            t = Instant::now();
        }
        if let Step::Stop = job.token(index, t, &mut out) {
            job.gt.finished_us = Some(job.st.us(t));
            let _ = tx.send(out.split().freeze()).await;
            job.record_and_count();
            return;
        }
        if (index + 1) % batch == 0 && job.stream && tx.send(out.split().freeze()).await.is_err() {
            return;
        }
    }
    job.finish(Instant::now(), &mut out);
    let _ = tx.send(out.split().freeze()).await;
}
