//! The simulator's background tasks: the start-up and periodic engine log lines, the
//! ground-truth flusher, and the accept loop that serves each connection.

use super::routes::handle;
use super::state::State;
use super::truth::GroundTruth;
use anyhow::Result;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// "Application startup complete." once ready, then (engine mode) vLLM's periodic
/// "Running: N reqs, Waiting: M reqs, GPU KV cache usage" line every 10 s.
pub(super) fn spawn_log_lines(state: &Arc<State>, addr: SocketAddr, kv_capacity: u64) {
    {
        let st = state.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(st.ready_at.into()).await;
            tracing::info!("Application startup complete.");
            eprintln!(
                "INFO [sim-serve] Application startup complete. ({} on {})",
                st.cfg.framework.id(),
                addr
            );
        });
    }
    if state.cfg.zero_delay() {
        return;
    }
    let st = state.clone();
    tokio::spawn(async move {
        let mut stop = st.stop_tx.subscribe();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(10)) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let s = *st.stats.lock().unwrap();
            tracing::info!(
                "Engine 000: Running: {} reqs, Waiting: {} reqs, GPU KV cache usage: {:.1}%, steps {}",
                s.running,
                s.waiting,
                100.0 * s.kv_used as f64 / kv_capacity.max(1) as f64,
                s.steps
            );
        }
    });
}

/// Appends new ground truth to `cfg.ground_truth` every 250 ms (when set).
pub(super) fn spawn_flusher(state: &Arc<State>) -> Option<tokio::task::JoinHandle<()>> {
    state.cfg.ground_truth.as_ref().map(|_| {
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if let Err(e) = flush_gt(&st).await {
                    tracing::warn!("ground truth: {e:#}");
                }
            }
        })
    })
}

/// Serves each accepted connection until the stop signal; then refuses new connections
/// and cuts open streams.
pub(super) fn spawn_accept(
    listener: tokio::net::TcpListener,
    accept_state: Arc<State>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut stop = accept_state.stop_tx.subscribe();
        let mut conns = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                r = listener.accept() => {
                    let Ok((stream, _)) = r else { continue };
                    stream.set_nodelay(true).ok();
                    let st = accept_state.clone();
                    conns.spawn(async move {
                        let svc = hyper::service::service_fn(move |req| handle(st.clone(), req));
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
                _ = stop.wait_for(|s| *s) => break,
            }
            while conns.try_join_next().is_some() {}
        }
        // Dropping the listener refuses new connections; aborting cuts open streams.
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    })
}

pub(super) async fn flush_gt(st: &Arc<State>) -> Result<()> {
    let Some(path) = st.cfg.ground_truth.clone() else {
        return Ok(());
    };
    let batch: Vec<GroundTruth> = {
        let gt = st.gt.lock().unwrap();
        let mut done = st.gt_flushed.lock().unwrap();
        let b = gt[*done..].to_vec();
        *done = gt.len();
        b
    };
    if batch.is_empty() {
        return Ok(());
    }
    tokio::task::spawn_blocking(move || -> Result<()> {
        for g in &batch {
            vllm_sota_core::fsx::append_jsonl(&path, g)?;
        }
        Ok(())
    })
    .await?
}
