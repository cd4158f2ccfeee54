//! Host stalls: GPU idle inside a step while the launching thread is busy, attributed to
//! what holds the host; on the real HF Llama decode trace and on small synthetic traces.

use vllm_sota_trace::StageKernels;
use vllm_sota_trace::host_stalls;
use vllm_sota_trace::read_trace_bytes;

const SDPA: &str = "cudnn_generated_fort_native_sdpa_sm80_flash_fprop_wmma_f16_knob_35";
const GEMM: &str = "nvjet_sm90_tst_256x64_64x5_4x1_v_bz_TNT";

#[derive(Default)]
struct Doc(Vec<serde_json::Value>, i64);

impl Doc {
    fn step(&mut self, name: &str, ts: f64, dur: f64) {
        self.0.push(
            serde_json::json!({"ph": "X", "cat": "user_annotation", "name": name,
            "pid": 1, "tid": 1, "ts": ts, "dur": dur, "args": {}}),
        );
    }
    fn op(&mut self, cat: &str, name: &str, ts: f64, dur: f64) {
        self.0
            .push(serde_json::json!({"ph": "X", "cat": cat, "name": name,
            "pid": 1, "tid": 1, "ts": ts, "dur": dur, "args": {}}));
    }
    /// A kernel launched at `launch` (a 5 µs `cudaLaunchKernel`), running [ts, ts+dur).
    fn kernel(&mut self, name: &str, launch: f64, ts: f64, dur: f64) {
        self.1 += 1;
        let c = self.1;
        self.0.push(
            serde_json::json!({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel",
            "pid": 1, "tid": 1, "ts": launch, "dur": 5.0, "args": {"correlation": c}}),
        );
        self.0
            .push(serde_json::json!({"ph": "X", "cat": "kernel", "name": name,
            "pid": 0, "tid": 7, "ts": ts, "dur": dur,
            "args": {"device": 0, "stream": 7, "correlation": c}}));
    }
    fn store(&self) -> vllm_sota_trace::TraceStore {
        let doc = serde_json::json!({"traceEvents": self.0});
        read_trace_bytes(doc.to_string().as_bytes(), "synthetic").unwrap()
    }
}

/// Two steps shaped like the HF decode: a GEMM, then `_cudnn_attention_forward` holds the
/// host 5 ms before it launches the SDPA kernel, then a GEMM; a 2 ms boundary between steps.
fn cudnn_like(doc: &mut Doc, at: f64) {
    doc.step("execute_model_step_0", at, 6000.0);
    doc.kernel(GEMM, at + 10.0, at + 20.0, 100.0);
    doc.op(
        "cpu_op",
        "aten::scaled_dot_product_attention",
        at + 100.0,
        5100.0,
    );
    doc.op(
        "cpu_op",
        "aten::_scaled_dot_product_cudnn_attention",
        at + 105.0,
        5090.0,
    );
    doc.op(
        "cpu_op",
        "aten::_cudnn_attention_forward",
        at + 110.0,
        5080.0,
    );
    doc.op("cpu_op", "aten::empty_like", at + 2000.0, 10.0);
    doc.kernel(SDPA, at + 5180.0, at + 5190.0, 200.0);
    doc.kernel(GEMM, at + 5300.0, at + 5400.0, 100.0);
}

#[test]
fn the_op_that_holds_the_host_before_a_kernel_is_a_stall_and_the_step_boundary_is_not() {
    let mut doc = Doc::default();
    cudnn_like(&mut doc, 0.0);
    cudnn_like(&mut doc, 8000.0);
    let s = doc.store();
    let h = host_stalls(&StageKernels::heaviest_device(&s));
    assert_eq!(h.steps, 2);
    // One stall per step: [120, 5190) µs; the 2.5 ms between the steps is not one.
    assert_eq!(h.stalls.len(), 2, "{:#?}", h.stalls);
    for (i, st) in h.stalls.iter().enumerate() {
        assert_eq!(st.step, i);
        // The innermost op covering half the gap, not its wrappers nor the short op inside.
        assert_eq!(st.held_by, "aten::_cudnn_attention_forward");
        assert_eq!(st.kind, "cpu_op");
        assert!((st.ms - 5.07).abs() < 1e-9, "{}", st.ms);
        assert!(
            (st.at_ms_in_step - 0.12).abs() < 1e-9,
            "{}",
            st.at_ms_in_step
        );
        assert!((st.share_of_step_pct - 100.0 * 5070.0 / 6000.0).abs() < 1e-9);
        assert_eq!(st.before_kernel, SDPA);
        assert_eq!((st.before_kernel_index, st.step_kernels), (1, 3));
    }
    let g = &h.groups[0];
    assert_eq!((g.stalls, g.steps_with), (2, 2));
    assert!(
        h.headline()
            .unwrap()
            .contains("aten::_cudnn_attention_forward")
    );
}

#[test]
fn a_blocking_cuda_call_is_a_synchronization_and_python_work_names_its_frame() {
    let mut doc = Doc::default();
    doc.step("execute_model_step_0", 0.0, 10000.0);
    doc.kernel(GEMM, 10.0, 20.0, 100.0);
    doc.op("cuda_runtime", "cudaStreamSynchronize", 130.0, 3000.0);
    doc.kernel(GEMM, 3200.0, 3210.0, 100.0);
    doc.op(
        "python_function",
        "model.py(12): prepare_inputs",
        3320.0,
        4000.0,
    );
    doc.kernel(GEMM, 7400.0, 7410.0, 100.0);
    let s = doc.store();
    let h = host_stalls(&StageKernels::heaviest_device(&s));
    let kinds: Vec<(&str, &str)> = h
        .stalls
        .iter()
        .map(|x| (x.held_by.as_str(), x.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("cudaStreamSynchronize", "synchronization"),
            ("python: model.py(12): prepare_inputs", "python")
        ]
    );
}

#[test]
fn without_step_annotations_no_stall_is_claimed() {
    let mut doc = Doc::default();
    doc.kernel(GEMM, 10.0, 20.0, 100.0);
    doc.op("cpu_op", "aten::slow", 120.0, 5000.0);
    doc.kernel(GEMM, 5100.0, 5200.0, 100.0);
    let s = doc.store();
    let h = host_stalls(&StageKernels::heaviest_device(&s));
    assert_eq!(h.steps, 0);
    assert!(h.stalls.is_empty());
    assert!(h.note.contains("no step annotations"), "{}", h.note);
}

#[test]
fn hf_llama_decode_cudnn_attention_holds_the_host_once_per_step() {
    let fx = vllm_sota_core::refs::fixtures_dir();
    let (report, tables) = vllm_sota_trace::fixture_tables(
        &fx,
        "h200-torch-traces/llama8b_decode.trace.json.gz",
        None,
    )
    .unwrap();
    let h = &tables[0].host_stalls;
    assert_eq!(h.steps, 5);
    assert_eq!(h.stalls.len(), 5, "{:#?}", h.stalls);
    for st in &h.stalls {
        assert_eq!(st.held_by, "aten::_cudnn_attention_forward");
        // 61–67 ms, about 40–45% of each ~150 ms step, right before the SDPA kernel.
        assert!((61.0..67.0).contains(&st.ms), "{}", st.ms);
        assert!(
            (39.0..46.0).contains(&st.share_of_step_pct),
            "{}",
            st.share_of_step_pct
        );
        assert!(
            st.before_kernel
                .starts_with("cudnn_generated_fort_native_sdpa")
        );
    }
    let lb = &report.stages[0].overlap.launch_bound;
    assert!(!lb.contains("between steps"), "{lb}");
    assert!(lb.contains("aten::_cudnn_attention_forward"), "{lb}");
    assert_eq!(report.stages[0].host_stalls[0].steps_with, 5);
}
