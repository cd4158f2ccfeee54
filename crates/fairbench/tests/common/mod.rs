#![allow(dead_code)]
//! Shared test helpers: fixture paths, the example binaries, a minimal campaign dir.

pub mod search;

use std::path::{Path, PathBuf};

pub fn fixtures() -> PathBuf {
    vllm_sota_core::refs::fixtures_dir()
}

pub fn vllm_help() -> PathBuf {
    fixtures().join("h200-vllm-0.26/help/vllm_serve_help_all.txt")
}

pub fn sglang_help() -> PathBuf {
    fixtures().join("h200-sglang-0.5.17/help/sglang_launch_server_help.txt")
}

pub fn model_dir() -> PathBuf {
    fixtures().join("dummy-llama-3.1-8b")
}

/// `<target>/debug/examples/<name>` (cargo test builds the crate's examples).
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let debug = exe.parent().unwrap().parent().unwrap();
    let p = debug.join("examples").join(name);
    assert!(
        p.is_file(),
        "example binary {} not built (run cargo test, which builds examples)",
        p.display()
    );
    p
}

/// A fake vLLM checkout: `vllm/__init__.py` (+ `_version.py`) importable with
/// `PYTHONPATH=<checkout>`, what the server's Python sees of a `pip install -e`.
pub fn fake_checkout(dir: &Path, version: &str) -> PathBuf {
    let c = dir.join(format!("vllm-checkout-{version}"));
    std::fs::create_dir_all(c.join("vllm")).unwrap();
    std::fs::write(
        c.join("vllm/__init__.py"),
        format!("__version__ = '{version}'\n"),
    )
    .unwrap();
    std::fs::write(
        c.join("vllm/_version.py"),
        format!("__version__ = version = '{version}'\n"),
    )
    .unwrap();
    c
}

/// A campaign directory with just enough campaign.json for CampaignPaths::open: the
/// dummy model, bf16, GPU 0, every framework, a fake vLLM checkout.
pub fn campaign(dir: &Path) -> PathBuf {
    let root = dir.join("run");
    std::fs::create_dir_all(root.join("benchmark")).unwrap();
    std::fs::create_dir_all(root.join("help")).unwrap();
    let checkout = fake_checkout(dir, "0.0.0+sim");
    let model = model_dir().display().to_string();
    let c = serde_json::json!({
        "schema_version": 1, "model": model, "model_slug": "dummy", "model_family": "llama",
        "tokenizer": model, "precision": "bf16", "quantization": null, "trust_remote_code": false,
        "max_model_len": null, "vllm_checkout": checkout, "vllm_base_commit": "0123abcd", "vllm_base_branch": null,
        "gpu_ids": [0], "frameworks": ["vllm", "sglang", "tensorrt_llm", "tokenspeed"], "created_at": "2026-11-29T00:00:00Z",
        "environment": {}
    });
    std::fs::write(
        root.join("campaign.json"),
        serde_json::to_string_pretty(&c).unwrap(),
    )
    .unwrap();
    // Phase 0.5 done (as history_notes leaves it when no history is available).
    std::fs::create_dir_all(root.join("history")).unwrap();
    std::fs::write(
        root.join("history/model-pr-history-notes.md"),
        "# Model PR history notes: dummy\n\n## Blocker\n\nno knowledge root\n",
    )
    .unwrap();
    root
}

/// A click-style `trtllm-serve serve --help` with the options sim-serve's trtllm mode takes
/// (no TensorRT-LLM fixture exists; this stands in for it).
pub fn trt_help(dir: &Path) -> PathBuf {
    let p = dir.join("trtllm_serve_help.txt");
    std::fs::write(
        &p,
        "Usage: trtllm-serve serve [OPTIONS] MODEL\n\n  Running an OpenAI API compatible server\n\nOptions:\n  --tokenizer TEXT                Path | Name of the tokenizer.\n  --host TEXT                     Hostname of the server.\n  --port INTEGER                  Port of the server.\n  --backend [pytorch|tensorrt|_autodeploy]\n                                  The backend to use.\n  --max_batch_size INTEGER        Maximum number of requests.\n  --max_num_tokens INTEGER        Maximum number of batched input tokens.\n  --max_seq_len INTEGER           Maximum total length of one request.\n  --tp_size INTEGER               Tensor parallelism size.\n  --ep_size INTEGER               Expert parallelism size.\n  --kv_cache_free_gpu_memory_fraction FLOAT\n                                  Free GPU memory fraction reserved for KV Cache.\n  --help                          Show this message and exit.\n",
    )
    .unwrap();
    p
}

pub fn q(p: &Path) -> String {
    serde_json::to_string(&p.display().to_string()).unwrap()
}
