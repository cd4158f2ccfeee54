//! HTTP routing and response plumbing: `/health`, `/v1/models`, the two generation
//! routes and the profiler routes; JSON error bodies; the channel-fed streaming body.

use super::request::generate;
use super::state::State;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Body, Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskCx, Poll};
use std::time::Instant;
use tokio::sync::mpsc;

pub(super) type RespBody = BoxBody<Bytes, Infallible>;

pub(super) fn full(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<RespBody> {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(Full::new(body.into()).boxed())
        .expect("static response parts")
}

pub(super) fn json_error(status: StatusCode, message: &str, kind: &str) -> Response<RespBody> {
    let body = serde_json::json!({"object": "error", "message": message, "type": kind, "param": null, "code": status.as_u16()});
    full(status, "application/json", body.to_string())
}

pub(super) async fn handle(
    st: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<RespBody>, Infallible> {
    let arrival = Instant::now();
    let ready = arrival >= st.ready_at;
    let path = req.uri().path().to_string();
    let resp = match (req.method(), path.as_str()) {
        (&Method::GET, "/health") => {
            if ready {
                full(StatusCode::OK, "text/plain", "")
            } else {
                full(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "application/json",
                    r#"{"detail":"engine is starting"}"#,
                )
            }
        }
        _ if !ready => full(
            StatusCode::SERVICE_UNAVAILABLE,
            "application/json",
            r#"{"detail":"engine is starting"}"#,
        ),
        (&Method::GET, "/v1/models") => {
            let body = format!(
                r#"{{"object":"list","data":[{{"id":{m},"object":"model","created":{c},"owned_by":"{o}","root":{m},"parent":null,"max_model_len":{l}}}]}}"#,
                m = st.model_json,
                c = st.created,
                o = st.cfg.framework.id(),
                l = st.cfg.max_model_len
            );
            full(StatusCode::OK, "application/json", body)
        }
        (&Method::POST, "/v1/completions") => generate(st, req, arrival, false).await,
        (&Method::POST, "/v1/chat/completions") => generate(st, req, arrival, true).await,
        (&Method::POST, "/start_profile" | "/stop_profile") if st.profiler.routes_enabled() => {
            let start = path == "/start_profile";
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let a = if start {
                st.profiler.start(&body).await
            } else {
                st.profiler.stop().await
            };
            full(
                StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "application/json",
                a.body,
            )
        }
        _ => full(
            StatusCode::NOT_FOUND,
            "application/json",
            r#"{"detail":"Not Found"}"#,
        ),
    };
    Ok(resp)
}

pub(super) fn bad_request(msg: &str) -> Response<RespBody> {
    json_error(StatusCode::BAD_REQUEST, msg, "BadRequestError")
}

pub(super) fn stream_response(stream: bool, body: ChannelBody) -> Response<RespBody> {
    Response::builder()
        .status(StatusCode::OK)
        .header(
            hyper::header::CONTENT_TYPE,
            if stream {
                "text/event-stream; charset=utf-8"
            } else {
                "application/json"
            },
        )
        .body(body.boxed())
        .expect("static response parts")
}

/// A response body fed by a channel of ready-made byte chunks.
pub(super) enum ChannelBody {
    Unbounded(mpsc::UnboundedReceiver<Bytes>),
    Bounded(mpsc::Receiver<Bytes>),
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskCx<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let polled = match this {
            ChannelBody::Unbounded(rx) => rx.poll_recv(cx),
            ChannelBody::Bounded(rx) => rx.poll_recv(cx),
        };
        polled.map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}
