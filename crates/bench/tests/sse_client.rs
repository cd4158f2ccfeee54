//! SSE edge cases end to end: a hand-written HTTP server sends canned streams split at
//! awkward places, and the client's per-request records must read them right.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vllm_sota_bench::Prompt;
use vllm_sota_bench::{Endpoint, LoadConfig, Workload, WorkloadRequest, run_load};

/// One scripted response: (bytes of one HTTP chunk, sleep after it in ms).
type Script = Vec<(&'static str, u64)>;

fn scripts() -> Vec<(u16, Script)> {
    vec![
        // 0: comments, role-only, a reasoning chunk split mid-JSON, CRLF events, a blank line
        // split across reads, content, finish, usage-only chunk with `choices: []`, [DONE].
        (
            200,
            vec![
                (
                    ": ping\n\ndata: {\"id\":\"chat-1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
                    60,
                ),
                (
                    "data: {\"id\":\"chat-1\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"Th",
                    40,
                ),
                (
                    "ink\"}}]}\r\n\r\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" a\"}}]}\n",
                    60,
                ),
                (
                    "\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" b\"},\"finish_reason\":\"length\"}]}\n\n",
                    0,
                ),
                (
                    "data: {\"id\":\"chat-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,\"total_tokens\":10}}\n\ndata: [DONE]\n\n",
                    0,
                ),
            ],
        ),
        // 1: an `event: error` after some text.
        (
            200,
            vec![
                (
                    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n",
                    10,
                ),
                (
                    "event: error\ndata: {\"message\":\"engine overloaded\"}\n\n",
                    0,
                ),
            ],
        ),
        // 2: HTTP 200 but only a role chunk and [DONE]: a role announcement is not a token
        // (servers may send it on admission), so no token chunk arrived → failure.
        (
            200,
            vec![(
                "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\ndata: [DONE]\n\n",
                0,
            )],
        ),
        // 3: the last event has no blank line before EOF (vLLM's client accepts it).
        (
            200,
            vec![
                (
                    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n",
                    20,
                ),
                (
                    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1}}",
                    0,
                ),
            ],
        ),
        // 4: an error JSON body mid-stream (vLLM's streaming error shape).
        (
            200,
            vec![(
                "data: {\"error\":{\"object\":\"error\",\"message\":\"boom\",\"code\":500}}\n\ndata: [DONE]\n\n",
                0,
            )],
        ),
        // 5: HTTP 429 with a JSON body.
        (
            429,
            vec![(
                "{\"object\":\"error\",\"message\":\"too many requests\"}",
                0,
            )],
        ),
        // 6: one token that decodes to nothing (a partial UTF-8 sequence, a special token),
        // as real vLLM streamed it with max_tokens 1: a chunk with a choice and empty text,
        // then usage. A success with one output token.
        (
            200,
            vec![
                (
                    "data: {\"id\":\"cmpl-6\",\"choices\":[{\"index\":0,\"text\":\"\",\"logprobs\":null,\"finish_reason\":\"length\"}]}\n\n",
                    30,
                ),
                (
                    "data: {\"id\":\"cmpl-6\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n",
                    0,
                ),
            ],
        ),
        // 7: chat: the role chunk, then a last chunk with an empty delta and a finish reason
        // (vLLM's chat shape when the token's text is empty), no usage: the token count
        // falls back to the token chunks.
        (
            200,
            vec![
                (
                    "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
                    40,
                ),
                (
                    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\ndata: [DONE]\n\n",
                    0,
                ),
            ],
        ),
        // 8: only a usage chunk (`choices: []`) and [DONE]: no token chunk → failure, even
        // though usage claims a token.
        (
            200,
            vec![(
                "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n",
                0,
            )],
        ),
    ]
}

async fn serve_conn(mut s: tokio::net::TcpStream, next: Arc<AtomicUsize>) {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        // Read one request: head + Content-Length body.
        let (head_end, len) = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..p]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                break (p + 4, len);
            }
            let n = s.read(&mut tmp).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&tmp[..n]);
        };
        while buf.len() < head_end + len {
            let n = s.read(&mut tmp).await.unwrap();
            buf.extend_from_slice(&tmp[..n]);
        }
        buf.drain(..head_end + len);
        let i = next.fetch_add(1, Ordering::SeqCst);
        let (status, script) = scripts().swap_remove(i);
        let reason = if status == 200 {
            "OK"
        } else {
            "Too Many Requests"
        };
        let ctype = if status == 200 {
            "text/event-stream"
        } else {
            "application/json"
        };
        s.write_all(format!("HTTP/1.1 {status} {reason}\r\ncontent-type: {ctype}\r\ntransfer-encoding: chunked\r\n\r\n").as_bytes())
            .await
            .unwrap();
        for (piece, sleep) in script {
            s.write_all(format!("{:x}\r\n{piece}\r\n", piece.len()).as_bytes())
                .await
                .unwrap();
            s.flush().await.unwrap();
            if sleep > 0 {
                tokio::time::sleep(Duration::from_millis(sleep)).await;
            }
        }
        s.write_all(b"0\r\n\r\n").await.unwrap();
    }
}

#[test]
fn canned_streams_with_every_edge_case() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let next = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            loop {
                let (s, _) = listener.accept().await.unwrap();
                tokio::spawn(serve_conn(s, next.clone()));
            }
        });
        let n = scripts().len();
        let w = Workload {
            source: "canned".into(),
            requests: (0..n)
                .map(|_| WorkloadRequest {
                    prompt: Prompt::Text("p".into()),
                    input_len: Some(7),
                    output_len: 3,
                    extra_body: None,
                })
                .collect(),
        };
        let mut cfg = LoadConfig::new(format!("http://{addr}"), "m", w);
        cfg.endpoint = Endpoint::ChatCompletions;
        cfg.max_concurrency = Some(1);
        cfg.keep_text = true;
        let rep = run_load(cfg).await.unwrap();
        let r = &rep.records;

        // 0: TTFT is the reasoning chunk (completed by the third read, ~60 ms after the role chunk).
        let a = &r[0];
        assert!(a.success, "{:?}", a.error);
        assert!(a.first_byte_ms.unwrap() < 30.0);
        assert!(
            a.ttft_ms.unwrap() >= 55.0,
            "role-only chunk must not count: ttft {:?}",
            a.ttft_ms
        );
        assert_eq!(a.token_chunks, 3);
        assert_eq!(a.itl_ms.len(), 2);
        // ' a' is complete only when its blank line arrives, at the start of the next read
        // (60 ms later), together with ' b'.
        assert!(a.itl_ms[0] >= 55.0, "{:?}", a.itl_ms);
        assert!(a.itl_ms[1] < 10.0, "{:?}", a.itl_ms);
        assert_eq!((a.prompt_tokens, a.completion_tokens), (Some(7), Some(3)));
        assert_eq!(a.finish_reason.as_deref(), Some("length"));
        assert_eq!(a.response_id.as_deref(), Some("chat-1"));
        assert_eq!(a.generated_text.as_deref(), Some("Think a b"));
        assert!(a.e2e_ms.unwrap() >= a.ttft_ms.unwrap() + 55.0);
        assert!(
            (a.tpot_ms().unwrap() - (a.e2e_ms.unwrap() - a.ttft_ms.unwrap()) / 2.0).abs() < 1e-9
        );

        assert!(!r[1].success);
        assert!(
            r[1].error.as_deref().unwrap().contains("engine overloaded"),
            "{:?}",
            r[1].error
        );
        let no_token = Some("stream ended without any token chunk (no chunk with a choice)");
        assert_eq!(r[2].error.as_deref(), no_token);
        assert_eq!(r[2].ttft_ms, None);
        assert!(r[3].success, "{:?}", r[3].error);
        assert_eq!(
            r[3].completion_tokens,
            Some(1),
            "the unterminated last event was read"
        );
        assert!(r[4].error.as_deref().unwrap().contains("boom"));
        assert_eq!(r[5].http_status, Some(429));
        assert!(
            r[5].error
                .as_deref()
                .unwrap()
                .starts_with("HTTP 429: {\"object\":\"error\",\"message\":\"too many requests\"}")
        );

        // 6: empty text, one token: success, TTFT at that chunk, one token from usage.
        let e = &r[6];
        assert!(e.success, "{:?}", e.error);
        assert_eq!((e.completion_tokens, e.token_chunks), (Some(1), 1));
        assert_eq!(e.output_tokens(), Some((1, "usage")));
        assert_eq!(e.generated_text.as_deref(), Some(""));
        assert!(e.ttft_ms.is_some());
        assert_eq!(e.ttft_ms, e.e2e_ms, "one token chunk: first and last");
        assert!(e.itl_ms.is_empty());
        // 7: TTFT at the empty finish chunk, not at the role chunk 40 ms earlier.
        let c = &r[7];
        assert!(c.success, "{:?}", c.error);
        assert!(c.ttft_ms.unwrap() >= 35.0, "{:?}", c.ttft_ms);
        assert_eq!(c.completion_tokens, None);
        assert_eq!(c.output_tokens(), Some((1, "chunk_count")));
        // 8: usage alone is not a token.
        assert_eq!(r[8].error.as_deref(), no_token);

        assert_eq!(
            rep.connections_opened, 1,
            "one keep-alive connection for all nine requests"
        );
        assert_eq!(
            (rep.summary.row.completed, rep.summary.row.failed),
            (Some(4), Some(5))
        );
    });
}
