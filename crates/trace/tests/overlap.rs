//! The multi-stream overlap logic of the overlap-opportunity table, on small synthetic
//! traces whose every figure can be worked out by hand (times in µs).

use vllm_sota_trace::Classifier;
use vllm_sota_trace::read_trace_bytes;
use vllm_sota_trace::{StageKernels, overlap_table};

const GEMM: &str = "nvjet_sm90_tst_256x64_64x5_4x1_v_bz_TNT";
const AR: &str = "void vllm::cross_device_reduce_1stage<__nv_bfloat16, 8>";
const ADD: &str = "void at::native::vectorized_elementwise_kernel<8, at::native::CUDAFunctor_add<c10::BFloat16>, std::array<char*, 3ul> >";

/// Kernels as (name, device, stream, start µs, duration µs).
fn trace(kernels: &[(&str, i64, i64, f64, f64)]) -> vllm_sota_trace::TraceStore {
    let events: Vec<_> = kernels
        .iter()
        .enumerate()
        .map(|(i, (n, dev, stream, ts, dur))| {
            serde_json::json!({"ph": "X", "cat": "kernel", "name": n, "pid": dev, "tid": stream,
                "ts": 1000.0 + ts, "dur": dur,
                "args": {"device": dev, "stream": stream, "correlation": i + 1}})
        })
        .collect();
    let doc = serde_json::json!({"traceEvents": events});
    read_trace_bytes(doc.to_string().as_bytes(), "synthetic").unwrap()
}

fn close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() < 1e-9, "{what}: got {got}, want {want}");
}

#[test]
fn a_collective_beside_compute_on_another_stream_is_split_into_hidden_and_exposed_time() {
    // Stream 7: GEMM [0,100) and [150,250). Stream 9: all-reduce [50,130), add [260,300).
    let s = trace(&[
        (GEMM, 0, 7, 0.0, 100.0),
        (AR, 0, 9, 50.0, 80.0),
        (GEMM, 0, 7, 150.0, 100.0),
        (ADD, 0, 9, 260.0, 40.0),
    ]);
    let c = Classifier::shared();
    let sk = StageKernels::heaviest_device(&s);
    let t = overlap_table(&sk, c, None, 1.0);
    close(t.wall_ms, 0.300, "wall");
    // Busy: [0,130) + [150,250) + [260,300).
    close(t.gpu_busy_ms, 0.270, "busy");
    close(t.busy_pct_of_wall, 90.0, "busy share");
    close(t.multi_stream_overlap_ms, 0.050, "two streams busy");
    assert_eq!(t.max_concurrent_streams, 2);
    close(t.compute_ms, 0.200, "compute");
    close(t.communication_ms, 0.080, "communication");
    close(t.compute_comm_overlap_ms, 0.050, "collective under compute");
    close(t.exposed_communication_ms, 0.030, "collective alone");
    close(t.exposed_memory_ms, 0.0, "no memory work");
    // Idle gaps: 20 µs (130→150) and 10 µs (250→260).
    assert_eq!(t.idle_gaps, 2);
    close(t.idle_total_ms, 0.030, "idle");
    close(t.largest_gap_us, 20.0, "largest gap");
    assert_eq!(t.streams.len(), 2);
    assert_eq!((t.streams[0].stream, t.streams[0].kernels), (7, 2));
    close(t.streams[0].busy_ms, 0.200, "stream 7 busy");
    assert_eq!((t.streams[1].stream, t.streams[1].kernels), (9, 2));
    close(t.streams[1].busy_ms, 0.120, "stream 9 busy");
    assert!(t.mode_note.starts_with("2 streams"), "{}", t.mode_note);
    // The all-reduce is 62.5% hidden: below the 45%-exposed bar, so no row; the add runs
    // alone (100% exposed, 12.5% of GPU time) with 130 µs of slack before it on its stream.
    assert!(
        t.rows.iter().all(|r| r.family != "communication"),
        "{:?}",
        t.rows
    );
    let add = t
        .rows
        .iter()
        .find(|r| r.overlap_class == "elementwise")
        .expect("exposed add row");
    close(add.exclusive_ms, 0.040, "add exposed");
    close(add.hidden_ms, 0.0, "add hidden");
    close(add.share_pct, 12.5, "add share: 40 of 320 µs");
    assert_eq!(add.dependency_risk, "low");
    assert!(
        add.recommendation
            .starts_with("try fusion or a side stream")
    );
}

#[test]
fn a_mostly_exposed_collective_is_a_row_and_its_hidden_part_is_counted() {
    // The all-reduce [80,180) overlaps the GEMM [0,100) for 20 µs only: 80% exposed.
    let s = trace(&[(GEMM, 0, 7, 0.0, 100.0), (AR, 0, 9, 80.0, 100.0)]);
    let t = overlap_table(
        &StageKernels::heaviest_device(&s),
        Classifier::shared(),
        None,
        1.0,
    );
    let ar = t
        .rows
        .iter()
        .find(|r| r.overlap_class == "communication")
        .expect("collective row");
    close(ar.exclusive_ms, 0.080, "collective exposed");
    close(ar.hidden_ms, 0.020, "collective hidden");
    close(t.exposed_communication_ms, 0.080, "exposed communication");
    close(t.compute_comm_overlap_ms, 0.020, "overlap");
    assert_eq!(ar.dependency_risk, "low");
    assert!(
        ar.recommendation.starts_with("try overlap"),
        "{}",
        ar.recommendation
    );
}

#[test]
fn kernels_of_one_stream_never_overlap_and_other_devices_are_left_out() {
    // Device 0 holds the most kernel time; device 1's kernel overlaps in time but is not counted.
    let s = trace(&[
        (GEMM, 0, 7, 0.0, 100.0),
        (ADD, 0, 7, 100.0, 50.0),
        (GEMM, 1, 7, 20.0, 60.0),
    ]);
    let sk = StageKernels::heaviest_device(&s);
    assert_eq!(sk.device, 0);
    let t = overlap_table(&sk, Classifier::shared(), None, 1.0);
    assert_eq!(t.max_concurrent_streams, 1);
    close(t.multi_stream_overlap_ms, 0.0, "one stream");
    close(t.gpu_busy_ms, 0.150, "busy");
    assert_eq!(t.idle_gaps, 0);
    let add = &t.rows[0];
    close(add.exclusive_ms, 0.050, "add exposed");
    // Back to back after the GEMM, nothing after it: one tight side.
    assert_eq!(add.dependency_risk, "medium");
}
