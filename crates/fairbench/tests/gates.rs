//! Fairness enforced by the tool, on the real `--help` fixtures of vLLM 0.26 and SGLang
//! 0.5.17: the config must match campaign.json, every server gets the campaign's
//! precision, quantization, tokenizer, trust-remote-code and max context in its own
//! spelling, tuned-vs-defaults needs a recorded reason; length buckets of a production
//! workload give the profiling shapes.

mod common;

use common::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use vllm_sota_core::Framework;
use vllm_sota_fairbench::parse_config_text;
use vllm_sota_fairbench::{FrameworkStatus, PreflightOptions, preflight};

fn opts(dir: &Path) -> PreflightOptions {
    PreflightOptions {
        help_texts: BTreeMap::from([
            (
                Framework::Vllm,
                std::fs::read_to_string(vllm_help()).unwrap(),
            ),
            (
                Framework::Sglang,
                std::fs::read_to_string(sglang_help()).unwrap(),
            ),
            (
                Framework::TensorrtLlm,
                std::fs::read_to_string(trt_help(dir)).unwrap(),
            ),
        ]),
        help_timeout: None,
        skip_gpu_check: true,
    }
}

/// A campaign.json with the given fields over the defaults of `campaign()`.
fn campaign_with(dir: &Path, patch: serde_json::Value) -> std::path::PathBuf {
    let root = campaign(dir);
    let p = root.join("campaign.json");
    let mut c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    for (k, v) in patch.as_object().unwrap() {
        c[k] = v.clone();
    }
    std::fs::write(&p, c.to_string()).unwrap();
    root
}

#[test]
fn a_config_for_another_campaign_is_refused_naming_each_field() {
    let dir = tempfile::tempdir().unwrap();
    let root = campaign_with(
        dir.path(),
        json!({"model": "meta-llama/Llama-3.1-8B-Instruct", "tokenizer": "meta-llama/Llama-3.1-8B-Instruct", "precision": "bf16", "gpu_ids": [0, 1], "frameworks": ["vllm", "sglang"]}),
    );
    let cfg = parse_config_text(
        "schema_version: 1\nmodel: {name: Qwen/Qwen3-8B, precision: fp8}\nhardware: {gpu_count: 1, gpu_ids: [3]}\nframeworks:\n  vllm: {}\n",
        "qwen.yaml",
    )
    .unwrap();
    let e = format!(
        "{:#}",
        preflight(&cfg, &root, &opts(dir.path())).unwrap_err()
    );
    for needle in [
        "model.name is `Qwen/Qwen3-8B` but campaign.json model is `meta-llama/Llama-3.1-8B-Instruct`",
        "model.precision is `fp8` but campaign.json precision is `bf16`",
        "hardware.gpu_count is 1",
        "hardware.gpu_ids is [3] but campaign.json gpu_ids is [0, 1]",
        "model.tokenizer",
    ] {
        assert!(e.contains(needle), "missing {needle:?} in: {e}");
    }
    // The matching config passes (bfloat16 spelled out is the same precision).
    let ok = parse_config_text(
        "schema_version: 1\nmodel: {name: meta-llama/Llama-3.1-8B-Instruct, precision: bfloat16}\nhardware: {gpu_count: 2}\nframeworks:\n  vllm: {}\n",
        "llama.yaml",
    )
    .unwrap();
    preflight(&ok, &root, &opts(dir.path())).unwrap();
}

#[test]
fn campaign_fairness_inputs_reach_every_server_in_its_own_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let root = campaign_with(
        dir.path(),
        json!({"model": "org/m", "tokenizer": "org/tok", "quantization": "fp8", "trust_remote_code": true, "max_model_len": 16384}),
    );
    let cfg = parse_config_text(
        "schema_version: 1\nmodel: {name: org/m, tokenizer: org/tok, quantization: fp8, trust_remote_code: true}\ndataset: {scenario_names: [a], input_len: [1000], output_len: [100]}\nframeworks:\n  vllm: {search_skipped_reason: defaults}\n  sglang: {}\n  tensorrt_llm: {}\n",
        "f.yaml",
    )
    .unwrap();
    let plan = preflight(&cfg, &root, &opts(dir.path())).unwrap();
    let flags = |fw: Framework| plan.framework(fw).unwrap().candidates[0].flags.clone();
    let v = flags(Framework::Vllm);
    assert_eq!(v.get("--dtype"), Some(&json!("bfloat16")));
    assert_eq!(v.get("--quantization"), Some(&json!("fp8")));
    assert_eq!(v.get("--trust-remote-code"), Some(&json!(true)));
    assert_eq!(v.get("--tokenizer"), Some(&json!("org/tok")));
    assert_eq!(v.get("--max-model-len"), Some(&json!(16384)));
    let s = flags(Framework::Sglang);
    assert_eq!(s.get("--dtype"), Some(&json!("bfloat16")));
    assert_eq!(s.get("--quantization"), Some(&json!("fp8")));
    assert_eq!(s.get("--trust-remote-code"), Some(&json!(true)));
    assert_eq!(s.get("--tokenizer-path"), Some(&json!("org/tok")));
    assert_eq!(s.get("--context-length"), Some(&json!(16384)));
    assert_eq!(
        plan.framework(Framework::Sglang).unwrap().fairness["precision"],
        "`--dtype bfloat16`"
    );
    // trtllm-serve has no quantization flag: refused, not silently run at another precision.
    let t = plan.framework(Framework::TensorrtLlm).unwrap();
    assert_eq!(t.status, FrameworkStatus::Rejected);
    assert!(
        t.reason.as_ref().unwrap().contains("quantization `fp8`"),
        "{:?}",
        t.reason
    );

    // A base flag that contradicts the campaign rejects the framework, naming it.
    let cfg = parse_config_text(
        "schema_version: 1\nmodel: {name: org/m, tokenizer: org/tok, quantization: fp8, trust_remote_code: true}\ndataset: {scenario_names: [a], input_len: [1000], output_len: [100]}\nframeworks:\n  vllm:\n    base_server_flags: {--dtype: float16}\n  sglang:\n    base_server_flags: {--context-length: 4096}\n",
        "g.yaml",
    )
    .unwrap();
    let plan = preflight(&cfg, &root, &opts(dir.path())).unwrap();
    let v = plan.framework(Framework::Vllm).unwrap();
    assert_eq!(v.status, FrameworkStatus::Rejected);
    assert!(
        v.reason.as_ref().unwrap().contains("`--dtype float16`"),
        "{:?}",
        v.reason
    );
    assert!(
        v.reason.as_ref().unwrap().contains("`--dtype bfloat16`"),
        "{:?}",
        v.reason
    );
    let s = plan.framework(Framework::Sglang).unwrap();
    assert_eq!(s.status, FrameworkStatus::Rejected);
    assert!(
        s.reason.as_ref().unwrap().contains("16384"),
        "{:?}",
        s.reason
    );
}

#[test]
fn tuned_vs_defaults_is_refused_unless_a_reason_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let root = campaign_with(dir.path(), json!({"model": "m", "tokenizer": "m"}));
    let base = "schema_version: 1\nmodel: {name: m}\nframeworks:\n  vllm:\n    search_space: {--max-num-seqs: [64, 128]}\n  sglang:\n    base_server_flags: {--mem-fraction-static: 0.88}\n";
    let cfg = parse_config_text(base, "t.yaml").unwrap();
    let e = format!(
        "{:#}",
        preflight(&cfg, &root, &opts(dir.path())).unwrap_err()
    );
    assert!(
        e.contains("tuned vs defaults")
            && e.contains("vllm (3 candidates)")
            && e.contains("frameworks.sglang.search_skipped_reason"),
        "{e}"
    );
    let with_reason = format!(
        "{base}    search_skipped_reason: \"SGLang's defaults are its tuned config for this model (cookbook)\"\n"
    );
    let cfg = parse_config_text(&with_reason, "t.yaml").unwrap();
    let plan = preflight(&cfg, &root, &opts(dir.path())).unwrap();
    assert!(
        plan.framework(Framework::Sglang)
            .unwrap()
            .search
            .starts_with("baseline only: SGLang's defaults"),
    );
    assert!(
        plan.framework(Framework::Vllm)
            .unwrap()
            .search
            .starts_with("bounded search: 3")
    );
    // Both searched: accepted without a reason.
    let both = "schema_version: 1\nmodel: {name: m}\nframeworks:\n  vllm:\n    search_space: {--max-num-seqs: [64]}\n  sglang:\n    search_space: {--max-running-requests: [64]}\n";
    preflight(
        &parse_config_text(both, "b.yaml").unwrap(),
        &root,
        &opts(dir.path()),
    )
    .unwrap();
}

#[test]
fn a_jsonl_workload_is_read_for_its_lengths_and_max_context() {
    let dir = tempfile::tempdir().unwrap();
    let root = campaign(dir.path());
    let mut lines = String::new();
    for i in 0..20u64 {
        lines.push_str(
            &json!({"prompt": format!("request {i}"), "input_len": 100 + 50 * i, "output_len": 10 + 5 * i})
                .to_string(),
        );
        lines.push('\n');
    }
    std::fs::write(root.join("prod.jsonl"), lines).unwrap();
    let cfg = parse_config_text(
        &format!(
            "schema_version: 1\nmodel: {{name: {}}}\ndataset: {{kind: jsonl, path: prod.jsonl, scenario_names: [prod]}}\nframeworks:\n  vllm: {{}}\n",
            q(&model_dir())
        ),
        "j.yaml",
    )
    .unwrap();
    let plan = preflight(&cfg, &root, &opts(dir.path())).unwrap();
    assert_eq!(plan.scenarios[0].name, "prod");
    // Longest request: 1050 + 105; the server gets that as its max length.
    assert_eq!(plan.max_total_len, 1155);
    assert_eq!(
        plan.framework(Framework::Vllm).unwrap().candidates[0]
            .flags
            .get("--max-model-len"),
        Some(&json!(1155))
    );
    let e = parse_config_text(
        "schema_version: 1\nmodel: {name: m}\ndataset: {kind: jsonl}\nframeworks:\n  vllm: {}\n",
        "k.yaml",
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("dataset.path"), "{e:#}");
}

#[test]
fn length_buckets_pick_the_slowest_bucket_for_the_profiling_shapes() {
    use vllm_sota_bench::RequestRecord;
    let rec = |i: u64, o: u64, ttft: f64, tpot: f64| RequestRecord {
        success: true,
        expected_input_len: Some(i),
        expected_output_len: o,
        completion_tokens: Some(o),
        ttft_ms: Some(ttft),
        e2e_ms: Some(ttft + tpot * (o - 1) as f64),
        ..Default::default()
    };
    // Short requests decode slower (a batch effect), long ones prefill slower.
    let mut recs = vec![];
    for _ in 0..10 {
        recs.push(rec(100, 50, 20.0, 9.0));
    }
    for _ in 0..10 {
        recs.push(rec(4000, 400, 300.0, 5.0));
    }
    let stats = vllm_sota_bench::LengthStats {
        input_p50: Some(100.0),
        input_p95: Some(4000.0),
        output_p50: 50.0,
        output_p95: 400.0,
    };
    let (buckets, shapes) = vllm_sota_fairbench::length_buckets(&recs, &stats);
    assert_eq!(buckets.len(), 2);
    assert_eq!(
        (buckets[0].bucket.as_str(), buckets[0].requests),
        ("p50", 10)
    );
    assert_eq!(
        (buckets[1].bucket.as_str(), buckets[1].requests),
        ("p95", 10)
    );
    let s = shapes.unwrap();
    assert_eq!(
        (s.prefill_bucket.as_str(), s.prefill_input_len),
        ("p95", 4000)
    );
    assert_eq!((s.decode_bucket.as_str(), s.decode_output_len), ("p50", 50));
}
