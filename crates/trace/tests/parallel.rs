//! The parallel reader (batches of whole events on worker threads, merged in file order)
//! must build exactly the store the sequential pass builds.

use std::path::{Path, PathBuf};
use vllm_sota_trace::TraceStore;
use vllm_sota_trace::{
    ReadOptions, read_trace_bytes_with, read_trace_bytes_with_workers, read_trace_parallel_strict,
    read_trace_with, read_trace_with_workers,
};

/// Held by the tests that switch the process-wide fast-path flag, so that one test's
/// "general scanner" read is not switched back on by another test midway.
static FAST_PATH_SWITCH: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn fx(rel: &str) -> PathBuf {
    vllm_sota_core::refs::fixtures_dir().join(rel)
}

/// Every column, name, thread and count compared; panics name the first difference.
fn assert_same(a: &TraceStore, b: &TraceStore, what: &str) {
    macro_rules! same {
        ($($f:tt)+) => {
            assert!(a.$($f)+ == b.$($f)+, "{what}: {} differs", stringify!($($f)+));
        };
    }
    assert_eq!(a.names.len(), b.names.len(), "{what}: interned name count");
    for id in 0..a.names.len() as u32 {
        assert_eq!(a.names.get(id), b.names.get(id), "{what}: name id {id}");
    }
    assert_eq!(a.threads.len(), b.threads.len(), "{what}: thread count");
    for (x, y) in a.threads.iter().zip(&b.threads) {
        assert_eq!(
            (x.pid, x.tid, &x.pid_text, &x.tid_text, &x.thread_name),
            (y.pid, y.tid, &y.pid_text, &y.tid_text, &y.thread_name),
            "{what}: threads"
        );
    }
    same!(process_names);
    same!(process_labels);
    assert_eq!(
        format!("{:?}", a.meta),
        format!("{:?}", b.meta),
        "{what}: meta"
    );
    assert_eq!(
        format!("{:?}", a.counts),
        format!("{:?}", b.counts),
        "{what}: counts"
    );
    same!(kernels.name);
    same!(kernels.ts_ns);
    same!(kernels.dur_ns);
    same!(kernels.thread);
    same!(kernels.device);
    same!(kernels.stream);
    same!(kernels.correlation);
    same!(kernels.external_id);
    same!(kernels.kind);
    same!(kernels.grid);
    same!(kernels.block);
    same!(kernels.launch);
    same!(cpu_ops.name);
    same!(cpu_ops.ts_ns);
    same!(cpu_ops.dur_ns);
    same!(cpu_ops.thread);
    same!(cpu_ops.external_id);
    same!(cpu_ops.input_dims);
    same!(cpu_ops.parent);
    same!(cpu_ops.depth);
    same!(cpu_ops.thread_ranges);
    same!(annotations.name);
    same!(annotations.ts_ns);
    same!(annotations.dur_ns);
    same!(annotations.thread);
    same!(annotations.external_id);
    same!(annotations.on_gpu);
    same!(annotations.cpu_order);
    same!(annotations.cpu_parent);
    same!(annotations.cpu_thread_ranges);
    same!(launches.name);
    same!(launches.ts_ns);
    same!(launches.dur_ns);
    same!(launches.thread);
    same!(launches.correlation);
    same!(launches.external_id);
    same!(launches.is_driver);
    same!(launches.cpu_op);
    same!(launches.frame);
    same!(launches.annotation);
    same!(flows.id);
    same!(flows.ts_ns);
    same!(flows.thread);
    same!(flows.phase);
    same!(flows.cat);
    same!(frames.name);
    same!(frames.ts_ns);
    same!(frames.dur_ns);
    same!(frames.thread);
    same!(frames.python_id);
    same!(frames.parent_python_id);
    same!(frames.parent);
    same!(frames.thread_ranges);
}

fn check_fixture(path: &Path) {
    let seq = read_trace_with_workers(path, 0).unwrap();
    // Several batches of ~1 MiB: the file must be bigger than one batch to test merging.
    assert!(
        seq.counts.json_bytes > 3 << 20,
        "{}: only {} bytes of JSON",
        path.display(),
        seq.counts.json_bytes
    );
    assert!(!seq.kernels.is_empty() && !seq.cpu_ops.is_empty() && !seq.launches.is_empty());
    for workers in [2, 3] {
        let par = read_trace_parallel_strict(path, workers).unwrap();
        assert_same(
            &seq,
            &par,
            &format!("{} with {workers} workers", path.display()),
        );
    }
}

#[test]
fn parallel_and_sequential_stores_are_identical_on_the_vllm_prefill_trace() {
    check_fixture(&fx(
        "h200-vllm-0.26/prefill/rank0.1795957285380924090.pt.trace.json.gz",
    ));
}

#[test]
fn parallel_and_sequential_stores_are_identical_on_the_llama8b_decode_trace() {
    check_fixture(&fx("h200-torch-traces/llama8b_decode.trace.json.gz"));
}

/// Event names holding `}, {` look like event boundaries to the batch cutter; a cut inside
/// a string is caught (the batch before it does not end on a whole event) and the reader
/// falls back to the sequential pass, so the store is still exact.
#[test]
fn boundary_lookalikes_inside_strings_still_give_the_sequential_store() {
    let mut json = String::from("{\"traceEvents\": [\n");
    let n = 40_000;
    for i in 0..n {
        let name = format!("op}},\\n {{ {i}");
        json.push_str(&format!(
            "  {{\"ph\": \"X\", \"cat\": \"kernel\", \"name\": \"k}}, {{{}\", \"pid\": 0, \"tid\": 7, \"ts\": {}.5, \"dur\": 1.25, \"args\": {{\"correlation\": {i}, \"stream\": 7, \"device\": 0, \"grid\": [1, 1, 1]}}}},\n",
            i % 97,
            1000 + i
        ));
        json.push_str(&format!(
            "  {{\"ph\": \"X\", \"cat\": \"cpu_op\", \"name\": \"{name}\", \"pid\": 1, \"tid\": 1, \"ts\": {}, \"dur\": 0.5, \"args\": {{\"External id\": {i}}}}}{}\n",
            1000 + i,
            if i + 1 < n { "," } else { "" }
        ));
    }
    json.push_str("], \"displayTimeUnit\": \"ms\"}\n");
    assert!(json.len() > 3 << 20);
    let seq = read_trace_bytes_with_workers(json.as_bytes(), "lookalikes", 0).unwrap();
    assert_eq!(seq.kernels.len(), n);
    assert_eq!(seq.cpu_ops.len(), n);
    assert_eq!(seq.name(seq.kernels.name[5]), "k}, {5");
    assert_eq!(seq.meta.display_time_unit.as_deref(), Some("ms"));
    let par = read_trace_bytes_with_workers(json.as_bytes(), "lookalikes", 2).unwrap();
    assert_same(&seq, &par, "lookalikes");
    // The cutter did cut inside a string here: the parallel pass alone refuses the file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lookalikes.json");
    std::fs::write(&path, &json).unwrap();
    let err = format!("{:#}", read_trace_parallel_strict(&path, 2).unwrap_err());
    assert!(err.contains("fell back"), "{err}");
}

/// Bad JSON deep inside the events array gives the sequential pass's exact error (line
/// and byte offset), whatever the number of workers.
#[test]
fn errors_are_the_same_with_and_without_workers() {
    let mut json = String::from("{\"traceEvents\": [\n");
    for i in 0..30_000 {
        json.push_str(&format!(
            "  {{\"ph\": \"X\", \"cat\": \"cpu_op\", \"name\": \"aten::mm\", \"pid\": 1, \"tid\": 1, \"ts\": {i}, \"dur\": 0.5, \"args\": {{\"External id\": {i}}}}},\n"
        ));
        if i == 20_000 {
            json.push_str("  {\"ph\": \"X\", \"ts\": 1, \"dur\": oops},\n");
        }
    }
    json.push_str("  {}]}\n");
    let seq = format!(
        "{:#}",
        read_trace_bytes_with_workers(json.as_bytes(), "bad", 0).unwrap_err()
    );
    let par = format!(
        "{:#}",
        read_trace_bytes_with_workers(json.as_bytes(), "bad", 2).unwrap_err()
    );
    assert!(seq.contains("line 20003"), "{seq}");
    assert_eq!(seq, par);
}

/// The fast paths for Kineto's exact layout and the general scanner build the same store:
/// on real traces, and on events that sit at the edge of the layout (escaped names, null
/// and negative ids, exponents, an extra key, other whitespace), which the fast paths must
/// either read the same way or leave to the general scanner.
#[test]
fn kineto_fast_paths_and_the_general_scanner_build_the_same_store() {
    let _switch = FAST_PATH_SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    let mut edge = String::from("{\"traceEvents\": [\n");
    let events = [
        // The layout itself, then one deviation per event.
        r#"{
    "ph": "X", "cat": "python_function", "name": "a.py(1): f", "pid": 802, "tid": 802,
    "ts": 5100925891742.626, "dur": 2934784.435,
    "args": {
      "Python parent id": null, "Python id": 1, "Ev Idx": 7
    }
  }"#,
        r#"{
    "ph": "X", "cat": "python_function", "name": "a.py(2): \"g\"", "pid": 802, "tid": 802,
    "ts": 5100925891743.62651, "dur": 1.5,
    "args": {
      "Python parent id": 1, "Python id": 2, "Ev Idx": 8
    }
  }"#,
        r#"{
    "ph": "X", "cat": "python_function", "name": "a.py(3): h", "pid": -1, "tid": 802,
    "ts": 5100925891744e0, "dur": 2,
    "args": {
      "Python parent id": -2, "Python id": 3, "Ev Idx": 9
    }
  }"#,
        r#"{
    "ph": "X", "cat": "python_function", "name": "a.py(4): i", "pid": 802, "tid": 802,
    "ts": 5100925891745.0, "dur": 0.0004,
    "args": {
      "Python parent id": 3, "Python id": 4, "Ev Idx": 10, "extra": [1, {"x": "}"}]
    }
  }"#,
        r#"{"ph": "X", "cat": "python_function", "name": "a.py(5): j", "pid": 802, "tid": 802, "ts": 5100925891746.5, "dur": 3.25, "args": {"Python parent id": 4, "Python id": 5}}"#,
        r#"{
    "ph": "X", "cat": "kernel", "name": "nvjet_tst_64x8", "pid": 0, "tid": 7,
    "ts": 5100925898037.875, "dur": 0.736,
    "args": {
      "External id": 43,      "queued": 0, "device": 0, "context": 1,      "stream": 7, "correlation": 97,      "grid": [1, 1, 1],      "block": [64, 1, 1]
    }
  }"#,
        r#"{
    "ph": "X", "cat": "kernel", "name": "void at::native::vectorized_elementwise_kernel<4>(int)", "pid": 0, "tid": 7,
    "ts": 5100925898040.125, "dur": 1.5,
    "args": {
      "External id": 44,      "queued": 0, "device": 0, "context": 1,      "stream": 7, "correlation": 98,      "registers per thread": 16,      "shared memory": 0,      "blocks per SM": 0.007576,      "warps per SM": 0.015152,      "grid": [132, 1, 1],      "block": [128, 1, 1],      "est. achieved occupancy %": 0
    }
  }"#,
        r#"{
    "ph": "X", "cat": "kernel", "name": "k2", "pid": 0, "tid": 7,
    "ts": 5100925898041.125, "dur": 1.5,
    "args": {
      "External id": 45,      "queued": 0, "device": 0, "context": 1,      "stream": 7, "correlation": 99,      "registers per thread": 16,      "shared memory": 0,      "blocks per SM": 0.007576,      "warps per SM": 0.015152,      "grid": [1, "x", 1],      "block": [128, 1, 1],      "est. achieved occupancy %": 0
    }
  }"#,
        r#"{
    "ph": "s", "id": 98, "pid": 802, "tid": 802, "ts": 5100925898030.500,
    "cat": "ac2g", "name": "ac2g"
  }"#,
        r#"{
    "ph": "f", "id": 98, "pid": 0, "tid": 7, "ts": 5100925898040.125,
    "cat": "ac2g", "name": "ac2g", "bp": "e"
  }"#,
        r#"{
    "ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 802, "tid": 802,
    "ts": 5100925898030.000, "dur": 9.5,
    "args": {
      "External id": 43,"Record function id": 0, "Input Dims": [[1, 2], [2, 3]], "Ev Idx": 11
    }
  }"#,
    ];
    edge.push_str(&events.join(",\n  "));
    edge.push_str("\n  ]\n}\n");
    let edge_path = tempfile::tempdir().unwrap();
    let edge_file = edge_path.path().join("edge.json");
    std::fs::write(&edge_file, &edge).unwrap();
    for path in [
        edge_file.clone(),
        fx("h200-vllm-0.26/prefill/rank0.1795957285380924090.pt.trace.json.gz"),
        fx("h200-torch-traces/llama8b_decode.trace.json.gz"),
    ] {
        let general_opts = ReadOptions {
            workers: 0,
            kineto_fast_paths: false,
            ..Default::default()
        };
        let general = read_trace_with(&path, &general_opts).unwrap();
        let fast = read_trace_with_workers(&path, 0).unwrap();
        assert_same(
            &general,
            &fast,
            &format!("{} fast vs general", path.display()),
        );
    }
    let edge_store = read_trace_with_workers(&edge_file, 0).unwrap();
    assert_eq!(edge_store.frames.len(), 5);
    assert_eq!(edge_store.kernels.len(), 3);
    assert_eq!(
        edge_store.kernels.grid,
        vec![[1, 1, 1], [132, 1, 1], [1, 1, 0]]
    );
    assert_eq!(edge_store.kernels.correlation, vec![97, 98, 99]);
    assert_eq!(edge_store.flows.phase, vec![b's', b'f']);
    assert_eq!(edge_store.cpu_ops.len(), 1);
    // Frames sort by (thread, ts): pid -1 is the second thread.
    assert_eq!(edge_store.frames.parent_python_id, vec![-1, 1, 3, 4, -2]);
    assert_eq!(
        edge_store.frames.ts_ns,
        vec![
            5_100_925_891_742_626,
            5_100_925_891_743_627,
            5_100_925_891_745_000,
            5_100_925_891_746_500,
            5_100_925_891_744_000,
        ]
    );
    assert_eq!(
        edge_store.names.get(edge_store.frames.name[1]),
        "a.py(2): \"g\""
    );
}

/// Events longer than a chunk's head room (64 KiB) and errors after several chunks: the
/// in-place reader keeps the text whole and the error names the exact line and byte
/// offset (counted by a second pass only when the error happens), plain or gzipped.
#[test]
fn long_events_and_late_errors_keep_exact_text_lines_and_offsets() {
    let long_name = "x".repeat(300_000);
    let mut json = String::from("{\"traceEvents\": [\n");
    for i in 0..12_000 {
        let name = if i % 4_000 == 7 {
            long_name.as_str()
        } else {
            "aten::mm"
        };
        json.push_str(&format!(
            "  {{\"ph\": \"X\", \"cat\": \"cpu_op\", \"name\": \"{name}\", \"pid\": 1, \"tid\": 1,\n   \"ts\": {i}, \"dur\": 0.5, \"args\": {{\"External id\": {i}}}}},\n"
        ));
    }
    let good = format!("{}  {{}}]}}\n", json);
    let store = read_trace_bytes_with_workers(good.as_bytes(), "long", 0).unwrap();
    assert_eq!(store.cpu_ops.len(), 12_000);
    let long_rows = (0..store.cpu_ops.len())
        .filter(|&i| store.names.get(store.cpu_ops.name[i]) == long_name)
        .count();
    assert_eq!(long_rows, 3);

    let bad = format!("{json}  {{\"ph\": \"X\", \"ts\": 1, \"dur\": oops}}]}}\n");
    let at = bad.find("oops").unwrap();
    let line = 1 + bad[..at].matches('\n').count();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, bad.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    for (what, bytes) in [("plain", bad.as_bytes()), ("gzip", &gz[..])] {
        for workers in [0, 2] {
            let err = format!(
                "{:#}",
                read_trace_bytes_with_workers(bytes, "bad", workers).unwrap_err()
            );
            assert!(
                err.contains(&format!("line {line}, byte offset {at}:")),
                "{what}, {workers} workers: {err}"
            );
        }
    }
    // A document cut short: the end-of-input error counts every line read.
    let cut = &good[..good.len() - 40];
    let err = format!(
        "{:#}",
        read_trace_bytes_with_workers(cut.as_bytes(), "cut", 0).unwrap_err()
    );
    let lines = 1 + cut.matches('\n').count();
    assert!(
        err.contains(&format!("line {lines}, byte offset {}", cut.len())),
        "{err}"
    );
}

/// Every one-byte corruption of real Kineto events (a python frame, a kernel, a flow pair,
/// a CPU op): the fast paths never read the text differently from the general scanner.
/// Both give the same store, or both the same error.
#[test]
fn corrupted_kineto_events_read_the_same_with_and_without_fast_paths() {
    let _switch = FAST_PATH_SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    let events = r#"{
    "ph": "X", "cat": "python_function", "name": "vllm/v1/worker/gpu_model_runner.py(1958): execute_model", "pid": 802, "tid": 802,
    "ts": 5100925891748.929, "dur": 2934778.132,
    "args": {
      "Python parent id": 2, "Python id": 3, "Ev Idx": 26578
    }
  },
  {
    "ph": "X", "cat": "kernel", "name": "nvjet_tst_64x8_64x16_2x1_v_bz_TNT", "pid": 0, "tid": 7,
    "ts": 5100925898037.875, "dur": 0.736,
    "args": {
      "External id": 43,      "queued": 0, "device": 0, "context": 1,      "stream": 7, "correlation": 97,      "registers per thread": 16,      "shared memory": 0,      "blocks per SM": 0.007576,      "warps per SM": 0.015152,      "grid": [1, 1, 1],      "block": [64, 1, 1],      "est. achieved occupancy %": 0
    }
  },
  {
    "ph": "s", "id": 97, "pid": 802, "tid": 802, "ts": 5100925897555.992,
    "cat": "ac2g", "name": "ac2g"
  },
  {
    "ph": "f", "id": 97, "pid": 0, "tid": 7, "ts": 5100925898037.875,
    "cat": "ac2g", "name": "ac2g", "bp": "e"
  },
  {
    "ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 802, "tid": 802,
    "ts": 5100925897550.100, "dur": 9.5,
    "args": {
      "External id": 43,"Record function id": 0, "Input Dims": [[1, 2], [2, 3]], "Ev Idx": 11
    }
  }"#;
    let doc = |body: &[u8]| -> Vec<u8> {
        [&b"{\"traceEvents\": [\n  "[..], body, &b"\n  ]\n}\n"[..]].concat()
    };
    let read = |bytes: &[u8], fast: bool| {
        let opts = ReadOptions {
            workers: 0,
            kineto_fast_paths: fast,
            ..Default::default()
        };
        read_trace_bytes_with(bytes, "mutant", &opts)
    };
    let body = events.as_bytes();
    let mut checked = 0;
    for at in 0..body.len() {
        for with in [b'"', b'\\', b'9', b'-', b'e', b'.', b' ', b'\n', b'}', b'x'] {
            if body[at] == with {
                continue;
            }
            let mut mutant = body.to_vec();
            mutant[at] = with;
            let text = doc(&mutant);
            let what = format!("byte {at} set to {:?}", with as char);
            match (read(&text, false), read(&text, true)) {
                (Ok(general), Ok(fast)) => assert_same(&general, &fast, &what),
                (Err(g), Err(f)) => assert_eq!(format!("{g:#}"), format!("{f:#}"), "{what}"),
                (g, f) => panic!("{what}: general {:?}, fast {:?}", g.is_ok(), f.is_ok()),
            }
            checked += 1;
        }
    }
    assert!(checked > 10_000, "{checked} mutants");
    // The unmutated events take the fast paths and read as expected.
    let store = read(&doc(body), true).unwrap();
    assert_eq!(
        (
            store.frames.len(),
            store.kernels.len(),
            store.flows.id.len(),
            store.cpu_ops.len()
        ),
        (1, 1, 2, 1)
    );
}
