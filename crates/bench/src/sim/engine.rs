//! The virtual engine: continuous batching with a step loop on a virtual GPU.
//!
//! Each step schedules (1) one decode token for every running sequence whose prefill
//! is done, (2) prefill chunks of partially prefilled sequences, (3) newly admitted
//! sequences, all within the max-batched-tokens budget. Admission needs a free running
//! slot (max-num-seqs) and KV room for prompt + max_tokens (reserved up front, so no
//! preemption); otherwise the request waits in FIFO order. The step takes
//! `base + prefill_tokens·p + decode_seqs·d + context_tokens·a` µs, divided by TP with a
//! 10% communication tax per extra GPU, times `time_scale` (plus `admitted·s`: a cost per
//! sequence admitted in the step); then the step's tokens are
//! handed out `output_us_per_seq` apart (API-server output processing). The first output token
//! appears at the end of the step that finishes a sequence's prefill; then one token
//! per step.

use super::SimConfig;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use vllm_sota_core::Framework;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
/// Non-torch memory + CUDA graphs (vLLM fixture log: 0.22 + 0.98 GiB).
const RESERVED_GIB: f64 = 1.2;
/// How far the host may fall behind the engine's clock before it resyncs.
const MAX_LAG: Duration = Duration::from_millis(50);

/// What the engine tells a request's sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineEvent {
    /// Admitted into the running batch (prefill starts).
    Scheduled,
    /// Output token `index` (0-based) was produced.
    Token { index: u64 },
    /// All tokens produced; the sink is dropped after this.
    Finished,
}

/// Receives a request's events; returns false when the client is gone (the sequence is
/// then dropped and its KV freed).
pub type Sink = Box<dyn FnMut(EngineEvent, Instant) -> bool + Send>;

pub struct EngineRequest {
    pub prompt_tokens: u64,
    pub max_tokens: u64,
    pub sink: Sink,
}

/// KV capacity in tokens, or the log line a real engine prints when it cannot start.
pub fn kv_capacity_tokens(cfg: &SimConfig) -> Result<u64, String> {
    let tp = cfg.tensor_parallel as f64;
    let weights = cfg.weights_gib / tp;
    let batched = cfg.max_num_batched_tokens.min(1 << 20) as f64;
    let act = cfg.activation_bytes_per_token * batched / GIB;
    let kv_per_token = cfg.kv_bytes_per_token / tp;
    if weights > cfg.gpu_mem_gib {
        return Err(format!(
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate {weights:.2} GiB for model weights. GPU 0 has a total capacity of {:.2} GiB",
            cfg.gpu_mem_gib
        ));
    }
    let kv_gib = match cfg.framework {
        // TokenSpeed (a config built in code) sizes its cache as vLLM does.
        Framework::Vllm | Framework::Tokenspeed => {
            let budget = cfg.gpu_mem_gib * cfg.mem_fraction;
            let kv = budget - weights - act - RESERVED_GIB;
            if kv <= 0.0 {
                return Err(format!(
                    "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine. (budget {budget:.2} GiB, weights {weights:.2} GiB, peak activation {act:.2} GiB)"
                ));
            }
            kv
        }
        Framework::Sglang => {
            let outside = cfg.gpu_mem_gib * (1.0 - cfg.mem_fraction);
            if outside < act + RESERVED_GIB {
                return Err(format!(
                    "torch.OutOfMemoryError: CUDA out of memory. Activations for --chunked-prefill-size {} need {:.2} GiB but only {outside:.2} GiB is left outside --mem-fraction-static {}",
                    cfg.max_num_batched_tokens,
                    act + RESERVED_GIB,
                    cfg.mem_fraction
                ));
            }
            let kv = cfg.gpu_mem_gib * cfg.mem_fraction - weights;
            if kv <= 0.0 {
                return Err("RuntimeError: Not enough memory. Please try to increase --mem-fraction-static.".into());
            }
            kv
        }
        Framework::TensorrtLlm => {
            let free = cfg.gpu_mem_gib - weights - act - RESERVED_GIB;
            if free <= 0.0 {
                return Err(format!(
                    "[TensorRT-LLM][ERROR] CUDA runtime error in cudaMalloc: out of memory (weights {weights:.2} GiB + activations {act:.2} GiB exceed {:.2} GiB)",
                    cfg.gpu_mem_gib
                ));
            }
            free * cfg.mem_fraction
        }
    };
    let tokens = (kv_gib * GIB / kv_per_token).floor() as u64;
    if cfg.framework == Framework::Vllm && tokens < cfg.max_model_len as u64 {
        return Err(format!(
            "ValueError: To serve at least one request with the models's max seq len ({}), ({:.2} GiB KV cache is needed, which is larger than the available KV cache memory ({kv_gib:.2} GiB). Based on the available memory, the estimated maximum model length is {tokens}. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.",
            cfg.max_model_len,
            cfg.max_model_len as f64 * kv_per_token / GIB
        ));
    }
    Ok(tokens)
}

/// Step duration in µs before `time_scale`.
pub fn step_cost_us(
    cfg: &SimConfig,
    prefill_tokens: u64,
    decode_seqs: u64,
    context_tokens: u64,
    admitted_seqs: u64,
) -> f64 {
    let tp = cfg.tensor_parallel as f64;
    let raw = cfg.step_base_us
        + admitted_seqs as f64 * cfg.admit_us_per_seq
        + prefill_tokens as f64 * cfg.prefill_us_per_token
        + decode_seqs as f64 * cfg.decode_us_per_seq
        + context_tokens as f64 * cfg.attn_us_per_ctx_token;
    raw / tp * (1.0 + 0.1 * (tp - 1.0))
}

struct Seq {
    prompt: u64,
    prefilled: u64,
    max_tokens: u64,
    generated: u64,
    reserved: u64,
    sink: Sink,
    alive: bool,
}

/// Counters the server logs.
#[derive(Debug, Default, Clone, Copy)]
pub struct EngineStats {
    pub running: usize,
    pub waiting: usize,
    pub kv_used: u64,
    pub steps: u64,
}

/// Runs the step loop until the request channel closes or `dead` flips.
pub async fn run_engine(
    cfg: SimConfig,
    kv_capacity: u64,
    mut rx: mpsc::UnboundedReceiver<EngineRequest>,
    mut dead: tokio::sync::watch::Receiver<bool>,
    stats: std::sync::Arc<std::sync::Mutex<EngineStats>>,
    profiler: std::sync::Arc<super::profiler::SimProfiler>,
) {
    let mut e = Engine {
        waiting: VecDeque::new(),
        running: Vec::new(),
        kv_used: 0,
        steps: 0,
        clock: None,
    };
    loop {
        if *dead.borrow() {
            return;
        }
        if e.running.is_empty() && e.waiting.is_empty() {
            e.clock = None;
            tokio::select! {
                r = rx.recv() => match r {
                    Some(r) => e.waiting.push_back(r),
                    None => return,
                },
                _ = dead.changed() => return,
            }
        }
        while let Ok(r) = rx.try_recv() {
            e.waiting.push_back(r);
        }
        // A profiler trace being written holds the engine (it exports on this thread): a
        // real stall, so the clock resyncs after it.
        let before = Instant::now();
        profiler.wait_not_writing().await;
        let now = Instant::now();
        if now - before > Duration::from_millis(1) {
            e.clock = None;
        }
        let step_start = match e.clock {
            Some(c) if cfg.virtual_clock && now.saturating_duration_since(c) <= MAX_LAG => c,
            _ => now,
        };
        let batch = e.schedule(&cfg, kv_capacity, step_start);
        let cost_us = step_cost_us(
            &cfg,
            batch.prefill_tokens,
            batch.decode_seqs,
            batch.context,
            batch.admitted,
        ) * cfg.time_scale;
        let step_end = step_start + Duration::from_secs_f64(cost_us / 1e6);
        tokio::select! {
            _ = tokio::time::sleep_until(step_end.into()) => {}
            _ = dead.changed() => return,
        }
        let now = step_end.max(step_start);
        e.clock = Some(now);
        e.steps += 1;
        let step = super::profiler::StepInfo {
            start: step_start,
            end: now,
            prefill_seqs: batch.prefill_seqs,
            prefill_tokens: batch.prefill_tokens,
            decode_seqs: batch.decode_seqs,
        };
        if let Some(write) = profiler.on_step(step) {
            if let Err(err) = write.run().await {
                tracing::warn!("profiler trace: {err:#}");
            }
            profiler.write_done();
            e.clock = None;
        }
        // Output processing (detokenize, build the chunk) takes time per sequence in real
        // API servers, so a step's tokens leave spread out, not as one burst.
        let spread_us = cfg.output_us_per_seq * cfg.time_scale;
        let Some(emitted) = e.emit_tokens(&batch.work, now, spread_us, &mut dead).await else {
            return;
        };
        // The next step starts once the last token of this one has left.
        if let Some(c) = e.clock.as_mut() {
            *c += Duration::from_secs_f64(emitted.saturating_sub(1) as f64 * spread_us / 1e6);
        }
        e.retire(now);
        if let Ok(mut st) = stats.lock() {
            *st = EngineStats {
                running: e.running.len(),
                waiting: e.waiting.len(),
                kv_used: e.kv_used,
                steps: e.steps,
            };
        }
    }
}

/// The step loop's state.
struct Engine {
    waiting: VecDeque<EngineRequest>,
    running: Vec<Seq>,
    kv_used: u64,
    steps: u64,
    /// With `virtual_clock`, the engine's clock: the end of the previous step (None when
    /// idle or resynced). A step starts when the previous one ended, not when the host got
    /// round to it, so the host's own work between steps (formatting a step's tokens for
    /// every stream, other tests on a loaded machine) does not stretch the simulated
    /// timeline; a host more than `MAX_LAG` behind resyncs the clock, and the lag then
    /// shows. Without it, a step starts when the host starts it (the host's work counts as
    /// engine time).
    clock: Option<Instant>,
}

/// What one step does.
struct StepBatch {
    /// Work per running sequence this step: 0 = idle, else tokens scheduled.
    work: Vec<u64>,
    prefill_tokens: u64,
    prefill_seqs: u64,
    decode_seqs: u64,
    /// Context tokens the step's attention reads.
    context: u64,
    /// Sequences admitted from the waiting queue.
    admitted: u64,
}

impl Engine {
    /// Schedules one step within the max-batched-tokens budget: a decode token for every
    /// sequence past prefill, then prefill chunks of running sequences, then admissions
    /// (FIFO, while a running slot and KV room for prompt + max_tokens are free).
    fn schedule(&mut self, cfg: &SimConfig, kv_capacity: u64, step_start: Instant) -> StepBatch {
        let mut budget = cfg.max_num_batched_tokens as u64;
        let mut b = StepBatch {
            work: vec![0; self.running.len()],
            prefill_tokens: 0,
            prefill_seqs: 0,
            decode_seqs: 0,
            context: 0,
            admitted: 0,
        };
        for (i, s) in self.running.iter().enumerate() {
            if s.prefilled == s.prompt && budget > 0 {
                b.work[i] = 1;
                budget -= 1;
                b.decode_seqs += 1;
                b.context += s.prompt + s.generated;
            }
        }
        for (i, s) in self.running.iter().enumerate() {
            if s.prefilled < s.prompt && budget > 0 {
                let chunk = (s.prompt - s.prefilled).min(budget);
                b.prefill_seqs += 1;
                b.work[i] = chunk;
                budget -= chunk;
                b.prefill_tokens += chunk;
                b.context += s.prefilled;
            }
        }
        while budget > 0 && self.running.len() < cfg.max_num_seqs {
            let Some(front) = self.waiting.front() else {
                break;
            };
            let reserve = front.prompt_tokens + front.max_tokens;
            if self.kv_used + reserve > kv_capacity {
                break;
            }
            let mut r = self.waiting.pop_front().unwrap();
            self.kv_used += reserve;
            b.admitted += 1;
            let alive = (r.sink)(EngineEvent::Scheduled, step_start);
            let chunk = r.prompt_tokens.min(budget);
            budget -= chunk;
            b.prefill_tokens += chunk;
            b.prefill_seqs += 1;
            self.running.push(Seq {
                prompt: r.prompt_tokens,
                prefilled: 0,
                max_tokens: r.max_tokens,
                generated: 0,
                reserved: reserve,
                sink: r.sink,
                alive,
            });
            b.work.push(chunk);
        }
        b
    }

    /// Applies the step's work and hands out its tokens `spread_us` apart from `now`: the
    /// first token of each sequence whose prefill completed, one token of each decoding
    /// one. Returns how many tokens were spread out, or `None` when `dead` flipped meanwhile.
    async fn emit_tokens(
        &mut self,
        work: &[u64],
        now: Instant,
        spread_us: f64,
        dead: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Option<u32> {
        let mut emitted = 0u32;
        for (s, w) in self.running.iter_mut().zip(work.iter()) {
            if *w == 0 || !s.alive {
                continue;
            }
            if s.prefilled < s.prompt {
                s.prefilled += w;
                if s.prefilled < s.prompt {
                    continue;
                }
            }
            if spread_us > 0.0 {
                let due = now + Duration::from_secs_f64(emitted as f64 * spread_us / 1e6);
                if due > Instant::now() + Duration::from_micros(500) {
                    tokio::select! {
                        _ = tokio::time::sleep_until(due.into()) => {}
                        _ = dead.changed() => return None,
                    }
                }
                emitted += 1;
            }
            // Prefill just completed (first token) or a decode step.
            let index = s.generated;
            s.generated += 1;
            s.alive = (s.sink)(EngineEvent::Token { index }, now);
        }
        Some(emitted)
    }

    /// Drops finished sequences (telling live ones they are done) and those whose client
    /// is gone, freeing their KV.
    fn retire(&mut self, now: Instant) {
        let kv_used = &mut self.kv_used;
        self.running.retain_mut(|s| {
            let done = s.generated >= s.max_tokens;
            if done && s.alive {
                (s.sink)(EngineEvent::Finished, now);
            }
            if done || !s.alive {
                *kv_used -= s.reserved;
                false
            } else {
                true
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_capacity_matches_the_vllm_fixture_log_and_knobs_move_it() {
        // Fixture server_ok_graph.log: 0.85 utilization → "GPU KV cache size: 839,648 tokens".
        let mut c = SimConfig::defaults(Framework::Vllm);
        c.mem_fraction = 0.85;
        c.max_model_len = 10240;
        let t = kv_capacity_tokens(&c).unwrap();
        assert!((t as f64 - 839_648.0).abs() / 839_648.0 < 0.01, "{t}");
        c.mem_fraction = 0.5;
        assert!(kv_capacity_tokens(&c).unwrap() < t);
        c.mem_fraction = 0.1;
        let e = kv_capacity_tokens(&c).unwrap_err();
        assert!(
            e.contains("No available memory for the cache blocks"),
            "{e}"
        );
        c.mem_fraction = 0.2;
        c.max_model_len = 131072;
        let e = kv_capacity_tokens(&c).unwrap_err();
        assert!(e.contains("max seq len (131072)"), "{e}");
        let mut t2 = SimConfig::defaults(Framework::TensorrtLlm);
        t2.tensor_parallel = 2;
        let one = kv_capacity_tokens(&SimConfig::defaults(Framework::TensorrtLlm)).unwrap();
        assert!(
            kv_capacity_tokens(&t2).unwrap() > 2 * one,
            "TP shards weights and KV"
        );
        let mut s = SimConfig::defaults(Framework::Sglang);
        s.mem_fraction = 0.999;
        assert!(
            kv_capacity_tokens(&s)
                .unwrap_err()
                .contains("mem-fraction-static")
        );
    }

    #[test]
    fn step_cost_grows_with_work_and_shrinks_with_tp() {
        let c = SimConfig::defaults(Framework::Vllm);
        let base = step_cost_us(&c, 0, 1, 100, 0);
        assert!(step_cost_us(&c, 8000, 1, 100, 0) > base + 70_000.0);
        assert!(step_cost_us(&c, 0, 64, 64_000, 0) > base);
        let mut tp = c.clone();
        tp.tensor_parallel = 4;
        assert!(step_cost_us(&tp, 8000, 0, 0, 0) < step_cost_us(&c, 8000, 0, 0, 0) / 2.0);
    }
}
