//! The eager mapping twin (`<stage>-eager/` beside `<stage>/`), the launch argv with the
//! profiler on, and the step annotations of real vLLM and SGLang traces.

use std::path::PathBuf;
use vllm_sota_core::Framework;
use vllm_sota_trace::{
    analyze_samples, eager_twin, parse_step, profiled_argv, select_traces, step_samples,
    twin_advice,
};

fn fx(rel: &str) -> PathBuf {
    vllm_sota_core::refs::fixtures_dir().join(rel)
}

#[test]
fn the_eager_twin_beside_a_stage_is_found_and_never_analysed_as_the_stage() {
    let d = tempfile::tempdir().unwrap();
    for sub in ["decode", "decode-eager", "prefill"] {
        std::fs::create_dir_all(d.path().join(sub)).unwrap();
        std::fs::write(
            d.path().join(sub).join("rank0.1.pt.trace.json"),
            r#"{"traceEvents": []}"#,
        )
        .unwrap();
    }
    let sel = select_traces(d.path()).unwrap();
    let chosen: Vec<String> = sel
        .chosen
        .iter()
        .map(|c| {
            c.path
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(chosen, vec!["prefill", "decode"], "{sel:?}");
    assert!(
        sel.skipped
            .iter()
            .any(|s| s.path.starts_with(d.path().join("decode-eager"))
                && s.reason.contains("mapping twin")),
        "{sel:?}"
    );
    let decode = d.path().join("decode/rank0.1.pt.trace.json");
    assert_eq!(eager_twin(&decode), Some(d.path().join("decode-eager")));
    // Missing twin: nothing is invented.
    assert_eq!(
        eager_twin(&d.path().join("prefill/rank0.1.pt.trace.json")),
        None
    );
}

#[test]
fn graph_advice_names_the_flag_of_the_traces_framework() {
    let note = "1616 of 2076 kernel calls were replayed from CUDA graphs (attribution `graph_unattributed`). Pass a mapping trace of the same workload without graphs (vLLM --enforce-eager) to attribute them.";
    let s = twin_advice(note, Some(Framework::Sglang));
    assert!(
        s.contains("--disable-cuda-graph") && !s.contains("enforce-eager"),
        "{s}"
    );
    let v = twin_advice(note, Some(Framework::Vllm));
    assert!(
        v.contains("--enforce-eager") && !v.contains("disable-cuda-graph"),
        "{v}"
    );
}

#[test]
fn profile_tables_on_the_sglang_fixture_gives_sglang_advice() {
    let d = tempfile::tempdir().unwrap();
    let req: vllm_sota_trace::ProfileTablesRequest = serde_json::from_value(serde_json::json!({
        "trace": fx("h200-sglang-0.5.17/prefill"),
        "out_dir": d.path(),
    }))
    .unwrap();
    let (rep, _) =
        vllm_sota_trace::run_tables(&req, &vllm_sota_core::tool::ToolContext::new()).unwrap();
    assert_eq!(rep.framework, "sglang", "{}", rep.framework_reason);
    let note = rep.stages[0]
        .graph_note
        .clone()
        .expect("graph-replayed kernels");
    assert!(
        note.contains("--disable-cuda-graph") && !note.contains("enforce-eager"),
        "{note}"
    );
    // No eager twin beside the fixture: nothing is mapped, and the note says so.
    assert!(rep.stages[0].mapping_trace.is_none());
    assert!(note.contains("graph_unattributed"), "{note}");
    // The figure: 1,616 of 2,076 kernels are replayed from SGLang's breakable graphs, and
    // without an eager twin none of them gets its eager CPU op and source line.
    assert!(note.starts_with("1616 of 2076 kernel calls"), "{note}");
}

#[test]
fn launch_argv_turns_the_profiler_on_and_graphs_off_per_framework() {
    let dir = PathBuf::from("/p/server-graph");
    let base: Vec<String> = "vllm serve /m --port 8000 --profiler-config {\"profiler\":\"torch\",\"torch_profiler_dir\":\"/old\"}"
        .split(' ')
        .map(String::from)
        .collect();
    let g = profiled_argv(Framework::Vllm, &base, &dir, 8, false);
    let i = g.iter().position(|a| a == "--profiler-config").unwrap();
    assert_eq!(
        g.iter().filter(|a| *a == "--profiler-config").count(),
        1,
        "{g:?}"
    );
    let cfg: serde_json::Value = serde_json::from_str(&g[i + 1]).unwrap();
    assert_eq!(cfg["max_iterations"], 8);
    assert_eq!(cfg["torch_profiler_dir"], "/p/server-graph");
    assert!(!g.contains(&"--enforce-eager".to_string()));
    let e = profiled_argv(Framework::Vllm, &base, &dir, 8, true);
    assert!(e.contains(&"--enforce-eager".to_string()));
    let s: Vec<String> = "python3 -m sglang.launch_server --model-path /m"
        .split(' ')
        .map(String::from)
        .collect();
    let se = profiled_argv(Framework::Sglang, &s, &dir, 8, true);
    assert_eq!(se.last().unwrap(), "--disable-cuda-graph");
    assert_eq!(profiled_argv(Framework::Sglang, &s, &dir, 8, false), s);
}

#[test]
fn step_annotations_of_real_traces_give_the_batch() {
    let v = parse_step("execute_context_0(0)_generation_64(64)").unwrap();
    assert_eq!((v.prefill_seqs, v.decode_seqs), (0, 64));
    let v = parse_step("execute_context_10(160)_generation_54(54)").unwrap();
    assert_eq!(
        (v.prefill_seqs, v.prefill_tokens, v.decode_seqs),
        (10, 160, 54)
    );
    // The real SGLang 0.5.17 prefill capture: step[EXTEND bs=1 toks=8000] then
    // step[DECODE bs=1], twice (one request after another: batch 1).
    let store = vllm_sota_trace::read_trace(&fx(
        "h200-sglang-0.5.17/prefill/capture-prefill-TP-0.trace.json.gz",
    ))
    .unwrap();
    let steps = step_samples(&store);
    let extend: Vec<_> = steps.iter().filter(|s| s.prefill_seqs > 0).collect();
    assert_eq!(extend.len(), 2, "{steps:?}");
    assert!(
        extend
            .iter()
            .all(|s| s.prefill_seqs == 1 && s.prefill_tokens == 8000)
    );
    assert_eq!(steps.len(), 4, "{steps:?}");
    // That sequential capture is what a concurrency-80 window must not look like.
    let a = analyze_samples(&steps, false, 80, 9, 2);
    assert!(!a.representative, "{a:?}");
    let d = analyze_samples(&steps, true, 64, 64, 8);
    assert!(!d.representative && d.window_batch == Some(1.0), "{d:?}");
}
