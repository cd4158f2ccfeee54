//! Importers against real `vllm bench serve` files (fixtures) and documented native shapes.

use vllm_sota_bench::{NativeFormat, import_native, import_native_file};

fn bench_dir() -> std::path::PathBuf {
    vllm_sota_core::refs::fixtures_dir().join("h200-vllm-0.26/bench")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn vllm_chat_1000_1000_imports_the_values_in_the_file() {
    let runs =
        import_native_file(&bench_dir().join("chat_1000_1000.json"), NativeFormat::Auto).unwrap();
    assert_eq!(runs.len(), 1);
    let r = &runs[0];
    assert_eq!(r.format, NativeFormat::VllmBenchServe);
    let row = &r.row;
    // Values as written in the file.
    assert!(close(row.output_throughput.unwrap(), 4739.600832615374));
    assert!((row.output_throughput.unwrap() - 4739.6).abs() < 0.01);
    assert!(close(
        row.tpot_ms.as_ref().unwrap().p50.unwrap(),
        12.938208398398391
    ));
    assert!(close(
        row.ttft_ms.as_ref().unwrap().p50.unwrap(),
        3900.9387019999904
    ));
    assert!(close(
        row.ttft_ms.as_ref().unwrap().p99.unwrap(),
        7252.424697430005
    ));
    assert!(close(
        row.itl_ms.as_ref().unwrap().mean.unwrap(),
        12.468938054884768
    ));
    assert!(close(
        row.e2e_ms.as_ref().unwrap().p90.unwrap(),
        16855.99042740003
    ));
    assert_eq!(
        (row.num_requests, row.completed, row.failed),
        (80, Some(80), Some(0))
    );
    assert_eq!(row.success_rate, Some(1.0));
    assert_eq!(
        (row.total_input_tokens, row.total_output_tokens),
        (Some(80000), Some(80000))
    );
    assert!(close(row.duration_s.unwrap(), 16.879058558999986));
    assert!(
        row.request_goodput.is_none(),
        "request_goodput is null in the file"
    );
    assert_eq!(row.extra.get("peak_concurrency"), Some(&80.0));
    assert_eq!(row.provenance.client, "vllm bench serve");
    assert_eq!(row.provenance.itl_granularity, "per_chunk");
    assert_eq!(
        r.workload.get("max_concurrency").and_then(|v| v.as_u64()),
        Some(80)
    );
    assert_eq!(
        r.workload.get("request_rate").and_then(|v| v.as_str()),
        Some("inf")
    );
}

#[test]
fn vllm_summ_8000_1000_and_the_one_token_file() {
    let r = &import_native_file(
        &bench_dir().join("summ_8000_1000.json"),
        NativeFormat::VllmBenchServe,
    )
    .unwrap()[0];
    assert!(close(r.row.output_throughput.unwrap(), 1669.3411624501298));
    assert!(close(
        r.row.tpot_ms.as_ref().unwrap().p50.unwrap(),
        19.76256043043049
    ));
    assert_eq!(r.row.total_input_tokens, Some(320000));
    // 2 prompts, 1 output token each: the file says TPOT/ITL 0.0 (empty list → 0); they are absent.
    let one = &import_native_file(
        &bench_dir().join("vllm-infqps-concurrency2-dummy-llama-8b-20261129-130124.json"),
        NativeFormat::Auto,
    )
    .unwrap()[0];
    assert!(one.row.tpot_ms.is_none() && one.row.itl_ms.is_none());
    assert!(close(
        one.row.ttft_ms.as_ref().unwrap().p50.unwrap(),
        100.8751894999591
    ));
    assert!(
        one.notes.iter().any(|n| n.contains("tpot")),
        "{:?}",
        one.notes
    );
}

#[test]
fn sglang_jsonl_with_bare_infinity_two_runs() {
    // Keys of sglang.bench_serving's --output-file (bench-spec §4); Python writes bare Infinity.
    let text = r#"{"backend": "sglang-oai", "dataset_name": "random", "request_rate": Infinity, "max_concurrency": 64, "duration": 10.0, "completed": 64, "total_input_tokens": 65536, "total_output_tokens": 8192, "total_output_tokens_retokenized": 8190, "request_throughput": 6.4, "input_throughput": 6553.6, "output_throughput": 819.2, "total_throughput": 7372.8, "mean_e2e_latency_ms": 9000.5, "median_e2e_latency_ms": 9001.0, "p90_e2e_latency_ms": 9500.0, "p95_e2e_latency_ms": 9600.0, "p99_e2e_latency_ms": 9700.0, "mean_ttft_ms": 500.0, "median_ttft_ms": 450.0, "p99_ttft_ms": 900.0, "mean_tpot_ms": 20.0, "median_tpot_ms": 19.5, "p99_tpot_ms": 25.0, "mean_itl_ms": 20.1, "median_itl_ms": 19.0, "p95_itl_ms": 30.0, "p99_itl_ms": 40.0, "concurrency": 57.6, "accept_length": null}
{"backend": "sglang-oai", "request_rate": 4.0, "duration": 20.0, "completed": 80, "total_input_tokens": 100, "total_output_tokens": 100, "request_throughput": 4.0, "output_throughput": 5.0, "total_throughput": 10.0, "mean_ttft_ms": 0.0, "median_ttft_ms": 0.0, "p99_ttft_ms": 0.0}
"#;
    let runs = import_native(text, NativeFormat::Auto, "sg.jsonl").unwrap();
    assert_eq!(runs.len(), 2);
    let a = &runs[0];
    assert_eq!(a.format, NativeFormat::SglangBenchServing);
    assert_eq!(
        a.workload.get("request_rate").and_then(|v| v.as_str()),
        Some("inf")
    );
    assert_eq!(a.row.total_token_throughput, Some(7372.8));
    assert_eq!(a.row.e2e_ms.as_ref().unwrap().p50, Some(9001.0));
    assert_eq!(
        a.row.ttft_ms.as_ref().unwrap().p90,
        None,
        "p90 TTFT not in the file: absent"
    );
    assert_eq!(a.row.success_rate, None, "SGLang writes no failed count");
    assert_eq!(
        a.row.extra.get("total_output_tokens_retokenized"),
        Some(&8190.0)
    );
    assert!(
        runs[1].row.ttft_ms.is_none(),
        "all-zero TTFT (no content chunk) is not a measurement"
    );
    assert_eq!(runs[1].source, "sg.jsonl:2");
}

#[test]
fn trtllm_request_goodput_colon_key_and_failed_from_num_prompts() {
    let text = r#"{"date": "20261129-120000", "backend": "openai", "model_id": "m", "num_prompts": 100, "duration": 50.0, "completed": 97, "total_input_tokens": 97000, "total_output_tokens": 97000, "request_throughput": 1.94, "request_goodput:": 1.5, "output_throughput": 1940.0, "total_token_throughput": 3880.0, "user_throughput": 40.0, "mean_ttft_ms": 300.0, "median_ttft_ms": 290.0, "p99_ttft_ms": 700.0, "mean_tpot_ms": 24.0, "median_tpot_ms": 23.0, "p99_tpot_ms": 30.0, "mean_itl_ms": 24.0, "median_itl_ms": 22.0, "p99_itl_ms": 50.0, "request_rate": "inf", "burstiness": 1.0, "max_concurrency": 32}"#;
    let r = &import_native(text, NativeFormat::Auto, "trt.json").unwrap()[0];
    assert_eq!(r.format, NativeFormat::TrtllmBenchmarkServing);
    assert_eq!(r.row.request_goodput, Some(1.5));
    assert_eq!(
        (r.row.num_requests, r.row.completed, r.row.failed),
        (100, Some(97), Some(3))
    );
    assert_eq!(r.row.success_rate, Some(0.97));
    assert!(r.row.e2e_ms.is_none(), "e2el not selected: absent, not 0");
}

#[test]
fn aiperf_export_maps_itl_to_tpot_and_icl_to_itl() {
    let text = r#"{"schema_version": "1.0", "aiperf_version": "0.3.0",
      "request_latency": {"unit": "ms", "avg": 5000.0, "p50": 4900.0, "p90": 5500.0, "p95": 5600.0, "p99": 5800.0},
      "time_to_first_token": {"unit": "ms", "avg": 200.0, "p50": 190.0, "p99": 400.0},
      "inter_token_latency": {"unit": "ms", "avg": 15.0, "p50": 14.5},
      "inter_chunk_latency": {"unit": "ms", "avg": 14.0, "p50": 13.0},
      "output_sequence_length": {"unit": "tokens", "avg": 300.0, "count": 10, "sum": 3000},
      "input_sequence_length": {"unit": "tokens", "avg": 100.0, "count": 10},
      "request_throughput": {"unit": "requests/sec", "avg": 2.0},
      "output_token_throughput": {"unit": "tokens/sec", "avg": 600.0},
      "request_count": {"unit": "requests", "avg": 10},
      "error_request_count": {"unit": "requests", "avg": 2},
      "benchmark_duration": {"unit": "sec", "avg": 5.0}}"#;
    let r = &import_native(text, NativeFormat::Auto, "profile_export_aiperf.json").unwrap()[0];
    assert_eq!(r.format, NativeFormat::Aiperf);
    assert_eq!(r.row.tpot_ms.as_ref().unwrap().p50, Some(14.5));
    assert_eq!(r.row.itl_ms.as_ref().unwrap().p50, Some(13.0));
    assert_eq!(
        (r.row.completed, r.row.failed, r.row.num_requests),
        (Some(10), Some(2), 12)
    );
    assert_eq!(r.row.duration_s, Some(5.0));
    assert_eq!(
        (r.row.total_output_tokens, r.row.total_input_tokens),
        (Some(3000), Some(1000))
    );
    assert_eq!(r.row.provenance.client_version.as_deref(), Some("0.3.0"));
}

#[test]
fn bad_inputs_give_clear_errors() {
    let e = import_native("", NativeFormat::Auto, "empty.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty.json") && e.contains("empty"), "{e}");
    let e = format!(
        "{:#}",
        import_native(
            "{\"completed\": 3, \"median_ttft_ms\": ",
            NativeFormat::Auto,
            "trunc.json"
        )
        .unwrap_err()
    );
    assert!(
        e.contains("trunc.json:1") && e.contains("not valid JSON"),
        "{e}"
    );
    let e = format!(
        "{:#}",
        import_native("[1,2]", NativeFormat::Auto, "arr.json").unwrap_err()
    );
    assert!(
        e.contains("arr.json:1") && e.contains("expected a JSON object"),
        "{e}"
    );
    let e = format!(
        "{:#}",
        import_native("{\"foo\": 1}", NativeFormat::Auto, "x.json").unwrap_err()
    );
    assert!(e.contains("cannot tell which client"), "{e}");
    let e = format!(
        "{:#}",
        import_native(
            "{\"median_ttft_ms\": 1}",
            NativeFormat::VllmBenchServe,
            "x.json"
        )
        .unwrap_err()
    );
    assert!(e.contains("missing `completed`"), "{e}");
    let e = format!(
        "{:#}",
        import_native_file(
            std::path::Path::new("/nonexistent/r.json"),
            NativeFormat::Auto
        )
        .unwrap_err()
    );
    assert!(e.contains("/nonexistent/r.json"), "{e}");
}
