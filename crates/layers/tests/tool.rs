//! The `layer_pipeline` tool end to end: request validation, artifacts in a campaign
//! and in an out_dir, clear errors on bad input.

use std::path::{Path, PathBuf};
use vllm_sota_core::tool::{Tool, ToolContext};
use vllm_sota_layers::{LayerPipeline, LayerPipelineRequest};

fn fixture(name: &str) -> PathBuf {
    vllm_sota_core::refs::fixtures_dir()
        .join("h200-torch-traces")
        .join(name)
}

fn request(json: serde_json::Value) -> Result<LayerPipelineRequest, serde_json::Error> {
    serde_json::from_value(json)
}

fn err_of(req: LayerPipelineRequest) -> String {
    format!(
        "{:#}",
        LayerPipeline::run(req, &ToolContext::new()).unwrap_err()
    )
}

fn campaign(dir: &Path) -> PathBuf {
    let root = dir.join("runs/20261129_llama_sota_humanize");
    std::fs::create_dir_all(root.join("analysis")).unwrap();
    std::fs::write(root.join("campaign.json"), "{}").unwrap();
    root
}

#[test]
fn campaign_round_files_hold_every_stage_and_the_latest_copy_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let root = campaign(tmp.path());
    for (stage, trace, mapping) in [
        (
            "decode",
            "minillama_graph_decode.trace.json.gz",
            Some("minillama_eager_decode.trace.json.gz"),
        ),
        ("prefill", "llama8b_prefill.trace.json.gz", None),
    ] {
        let mut j = serde_json::json!({
            "trace": fixture(trace), "config": fixture("llama8b_config.json"), "stage": stage,
            "campaign_dir": root, "round": 2, "framework": "vllm"
        });
        if let Some(m) = mapping {
            j["mapping_trace"] = serde_json::json!(fixture(m));
        }
        let rep = LayerPipeline::run(request(j).unwrap(), &ToolContext::new()).unwrap();
        assert_eq!(rep.analysis.layers.len(), 32);
        assert!(
            rep.artifacts.iter().all(|a| Path::new(a).is_file()),
            "{:?}",
            rep.artifacts
        );
        let md = LayerPipeline::markdown(&rep);
        assert!(
            md.contains("Layer-type timing") && md.contains("visStart="),
            "{md}"
        );
    }
    let round_md =
        std::fs::read_to_string(root.join("analysis/round-2/layer-pipeline.md")).unwrap();
    assert!(
        round_md.contains("vllm decode") && round_md.contains("vllm prefill"),
        "both stages in the round file"
    );
    assert!(
        round_md.find("vllm decode").unwrap() < round_md.find("vllm prefill").unwrap(),
        "sorted by stage name"
    );
    let latest = std::fs::read_to_string(root.join("analysis/layer-pipeline.md")).unwrap();
    assert_eq!(latest, round_md);
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("analysis/round-2/layer-pipeline.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["round"], 2);
    assert_eq!(json["analyses"].as_array().unwrap().len(), 2);
    assert_eq!(
        json["analyses"][0]["layers"].as_array().unwrap().len(),
        32,
        "the JSON keeps every layer row"
    );
}

#[test]
fn out_dir_mode_writes_stage_files_and_the_report_is_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let req = request(serde_json::json!({
        "trace": fixture("minillama_eager_decode.trace.json.gz"), "config": fixture("llama8b_config.json"),
        "stage": "decode", "out_dir": tmp.path(), "top_kernels": 3
    }))
    .unwrap();
    let rep = LayerPipeline::run(req, &ToolContext::new()).unwrap();
    assert!(tmp.path().join("layer-pipeline-decode.md").is_file());
    assert!(tmp.path().join("layer-pipeline-decode.json").is_file());
    assert!(
        rep.analysis
            .representative_layers
            .iter()
            .all(|r| r.hot_kernels.len() <= 3)
    );
    let size = serde_json::to_string(&rep).unwrap().len();
    assert!(size < 64_000, "report is {size} bytes");
}

#[test]
fn directory_input_picks_the_worker_trace_and_skips_the_api_server_trace() {
    let dir = vllm_sota_core::refs::fixtures_dir().join("h200-vllm-0.26/prefill");
    let picked = vllm_sota_layers::pick_trace_file(&dir, "prefill").unwrap();
    let name = picked.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("rank0.") && !name.contains("async_llm"),
        "{name}"
    );
}

#[test]
fn bad_requests_and_inputs_give_errors_that_name_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    // Unknown field: a typo is an error naming the field.
    let e = request(
        serde_json::json!({"trace": "x", "stage": "decode", "out_dir": "/tmp", "confg": "c.json"}),
    )
    .unwrap_err();
    assert!(e.to_string().contains("confg"), "{e}");
    // Neither campaign nor out_dir.
    let e = err_of(request(serde_json::json!({"trace": fixture("minillama_eager_decode.trace.json.gz"), "stage": "decode"})).unwrap());
    assert!(e.contains("out_dir"), "{e}");
    // Campaign without a round, and a directory that is not a campaign.
    let e = err_of(
        request(serde_json::json!({"trace": "x", "stage": "decode", "campaign_dir": tmp.path()}))
            .unwrap(),
    );
    assert!(e.contains("needs `round`"), "{e}");
    let e = err_of(request(serde_json::json!({"trace": "x", "stage": "decode", "campaign_dir": tmp.path(), "round": 1})).unwrap());
    assert!(e.contains("campaign_init"), "{e}");
    // Empty stage, bad top_kernels, unknown GPU.
    let base = serde_json::json!({"trace": fixture("minillama_eager_decode.trace.json.gz"), "stage": " ", "out_dir": tmp.path()});
    assert!(err_of(request(base.clone()).unwrap()).contains("`stage` is empty"));
    let mut j = base.clone();
    j["stage"] = "decode".into();
    j["top_kernels"] = 0.into();
    assert!(err_of(request(j.clone()).unwrap()).contains("top_kernels"));
    j["top_kernels"] = 5.into();
    j["gpu"] = "TPU v5".into();
    assert!(err_of(request(j.clone()).unwrap()).contains("unknown GPU"));
    // Missing trace, truncated gzip, empty file: the file is named.
    j["gpu"] = "H100".into();
    j["trace"] = serde_json::json!(tmp.path().join("nope.json.gz"));
    assert!(err_of(request(j.clone()).unwrap()).contains("nope.json.gz"));
    let bytes = std::fs::read(fixture("minillama_eager_decode.trace.json.gz")).unwrap();
    let cut = tmp.path().join("cut.trace.json.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    j["trace"] = serde_json::json!(cut);
    assert!(err_of(request(j.clone()).unwrap()).contains("cut.trace.json.gz"));
    let empty = tmp.path().join("empty.trace.json");
    std::fs::write(&empty, "").unwrap();
    j["trace"] = serde_json::json!(empty);
    assert!(err_of(request(j.clone()).unwrap()).contains("empty.trace.json"));
    // A trace without kernels (API-server style) is an error saying so.
    let nok = tmp.path().join("cpu_only.trace.json");
    std::fs::write(&nok, r#"{"traceEvents": [{"ph": "X", "cat": "python_function", "name": "f", "ts": 1, "dur": 2, "pid": 1, "tid": 1}]}"#).unwrap();
    j["trace"] = serde_json::json!(nok);
    assert!(err_of(request(j.clone()).unwrap()).contains("no GPU kernels"));
    // Config of the wrong JSON type.
    let bad_cfg = tmp.path().join("config.json");
    std::fs::write(&bad_cfg, "[]").unwrap();
    j["trace"] = serde_json::json!(fixture("minillama_eager_decode.trace.json.gz"));
    j["config"] = serde_json::json!(bad_cfg);
    assert!(err_of(request(j.clone()).unwrap()).contains("must be a JSON object"));
    // pass_index out of range names the count.
    j.as_object_mut().unwrap().remove("config");
    j["pass_index"] = 9.into();
    let e = err_of(request(j).unwrap());
    assert!(e.contains("pass_index 9") && e.contains("2 passes"), "{e}");
}

#[test]
fn an_empty_profiler_window_says_the_load_did_not_run_during_it() {
    // A vLLM GPU-worker trace whose window recorded no engine step: CPU ops and runtime
    // calls, no kernel. The advice is about the window (vLLM records only
    // `active_iterations` steps), not about turning CUDA activity on.
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().join("rank0.1795957285380924090.pt.trace.json");
    std::fs::write(
        &t,
        r#"{"traceEvents": [
 {"ph": "X", "cat": "cpu_op", "name": "aten::empty", "ts": 10, "dur": 2, "pid": 1590, "tid": 1590},
 {"ph": "X", "cat": "cuda_runtime", "name": "cudaStreamSynchronize", "ts": 20, "dur": 3, "pid": 1590, "tid": 1590, "args": {"correlation": 7}},
 {"ph": "X", "cat": "python_function", "name": "vllm/v1/worker/gpu_worker.py(400): profile", "ts": 5, "dur": 40, "pid": 1590, "tid": 1590}
], "deviceProperties": [{"id": 0, "name": "NVIDIA H200"}]}"#,
    )
    .unwrap();
    let e = err_of(
        request(serde_json::json!({"trace": t, "stage": "decode", "out_dir": tmp.path()})).unwrap(),
    );
    assert!(e.contains("no GPU kernels"), "{e}");
    assert!(e.contains("active_iterations"), "{e}");
    assert!(
        e.contains("did not run while the profiler was active"),
        "{e}"
    );
    assert!(!e.contains("ProfilerActivity.CUDA"), "{e}");
}
