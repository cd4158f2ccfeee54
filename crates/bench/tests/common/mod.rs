#![allow(dead_code)]
use std::path::PathBuf;
use std::sync::OnceLock;
use vllm_sota_bench::TokenizerHandle;
use vllm_sota_bench::sim::{SimConfig, SimServer};
use vllm_sota_core::Framework;

pub fn tokenizer_path() -> PathBuf {
    vllm_sota_core::refs::fixtures_dir().join("dummy-llama-3.1-8b/tokenizer.json")
}

pub fn tokenizer() -> TokenizerHandle {
    static TOK: OnceLock<TokenizerHandle> = OnceLock::new();
    TOK.get_or_init(|| TokenizerHandle::load(&tokenizer_path()).expect("fixture tokenizer"))
        .clone()
}

/// A fast virtual engine: 2 ms steps, cheap prefill.
pub fn fast_cfg(fw: Framework) -> SimConfig {
    let mut c = SimConfig::defaults(fw);
    c.port = 0;
    c.model = "sim-llama".into();
    c.tokenizer = Some(tokenizer_path());
    c.step_base_us = 2000.0;
    c.prefill_us_per_token = 1.0;
    c.decode_us_per_seq = 5.0;
    c.max_model_len = 10240;
    c
}

/// The simulator on its own 2-worker runtime (the client gets another).
pub struct Sim {
    pub rt: tokio::runtime::Runtime,
    pub server: Option<SimServer>,
}

impl Sim {
    pub fn start(cfg: SimConfig) -> anyhow::Result<Sim> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let server = rt.block_on(SimServer::start_with_tokenizer(cfg, tokenizer()))?;
        Ok(Sim {
            rt,
            server: Some(server),
        })
    }
    pub fn url(&self) -> String {
        self.server.as_ref().unwrap().base_url()
    }
    pub fn truth(&self) -> Vec<vllm_sota_bench::sim::GroundTruth> {
        self.server.as_ref().unwrap().ground_truth()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            let _ = self.rt.block_on(s.shutdown());
        }
    }
}
