//! Fuzz the streaming trace reader: any bytes (plain JSON or gzip) must give Ok or Err, never
//! a panic, hang or unbounded allocation. Run: `cd crates/trace/fuzz && cargo +nightly fuzz run reader`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(store) = vllm_sota_trace::read_trace_bytes(data, "fuzz") {
        // Exercise the derived links on whatever parsed.
        for k in 0..store.kernels.len().min(64) {
            let _ = vllm_sota_trace::attribute_kernel(&store, k);
        }
    }
});
