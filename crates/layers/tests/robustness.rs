//! Odd but valid inputs never panic: random kernel sequences on several streams, zero
//! durations, kernels without launches, overlapping annotations, layer counts that do
//! not fit. Deterministic pseudo-random generator, so a failure reproduces.

use vllm_sota_layers::{
    ConfigLayers, Options, SpanKind, ViewBuilder, analyze, interpret, load_rules,
};

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[test]
fn random_views_analyze_without_panicking() {
    let gpu = vllm_sota_core::gpu::find("B200").unwrap();
    let rules = load_rules().unwrap();
    let names = [
        "rms_norm_kernel",
        "nvjet_gemm",
        "flash_fwd",
        "silu",
        "Memcpy DtoD",
        "nccl_allreduce",
        "topk",
    ];
    for seed in 0..60u64 {
        let mut r = Lcg(seed + 1);
        let mut b = ViewBuilder::new();
        let mut t = 0.0;
        let steps = 1 + r.below(4);
        for step in 0..steps {
            if r.below(3) > 0 {
                let kind = if r.below(2) == 0 {
                    SpanKind::GpuAnnotation
                } else {
                    SpanKind::CpuAnnotation
                };
                b.span(
                    &format!("execute_model_step_{step}"),
                    kind,
                    t - 1.0,
                    400.0 + r.below(200) as f64,
                );
            }
            let unit = 1 + r.below(6) as usize;
            let layers = r.below(9) as usize;
            for l in 0..layers {
                if r.below(4) == 0 {
                    b.span(&format!("layers.{l}"), SpanKind::GpuAnnotation, t, 30.0);
                }
                for u in 0..unit {
                    let name = names[(u + if r.below(10) == 0 { 1 } else { 0 }) % names.len()];
                    let k = b.kernel(name, t, r.below(4) as f64);
                    b.view.kernels[k].stream = 7 + r.below(2) as i64;
                    if r.below(5) == 0 {
                        b.view.kernels[k].launch = None;
                    }
                    t += 1.0 + r.below(3) as f64;
                }
            }
            t += 1000.0 * r.below(3) as f64;
        }
        b.kernel("tail", t, 1.0);
        let view = b.finish();
        let cfg = match r.below(3) {
            0 => ConfigLayers::absent("none"),
            1 => interpret(
                &serde_json::json!({"num_hidden_layers": 1 + r.below(8)}),
                &rules,
            ),
            _ => interpret(
                &serde_json::json!({"num_hidden_layers": 4, "num_experts": 8, "mlp_only_layers": [0]}),
                &rules,
            ),
        };
        let opts = Options {
            num_layers: if r.below(4) == 0 {
                Some(r.below(6) as usize)
            } else {
                None
            },
            ..Options::default()
        };
        let a =
            analyze(&view, None, cfg, &gpu, &opts).unwrap_or_else(|e| panic!("seed {seed}: {e:#}"));
        let in_layers: usize = a.layers.iter().map(|l| l.kernels).sum();
        let accounted =
            in_layers + a.pre_layer.kernels + a.post_layer.kernels + a.between_layers.kernels;
        if a.layers_found > 0 {
            assert_eq!(
                accounted, a.representative_pass.kernels,
                "seed {seed}: every kernel of the pass is in exactly one part"
            );
        }
        assert!(
            a.representative_pass.gpu_busy_ms <= a.representative_pass.wall_ms + 1e-9,
            "seed {seed}"
        );
    }
}
