//! Ideal time of a GEMM or attention kernel from its launching op's shapes
//! (`record_shapes` "Input Dims"), against a GPU's peak compute and bandwidth
//! ([`vllm_sota_core::gpu::GpuSpec::ideal_us`]): the larger of FLOPs/peak and
//! bytes/bandwidth. Bytes count each operand read once and the output written once
//! (a lower bound: real kernels re-read through L2).

use crate::model::OpShapes;
use serde::Serialize;
use vllm_sota_core::gpu::GpuSpec;

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Roofline {
    /// e.g. `aten::mm [64,4096]×[4096,6144]`
    pub shape: String,
    pub flops: f64,
    pub bytes: f64,
    /// Ideal microseconds on the GPU for this op.
    pub ideal_us: f64,
    /// `compute` or `memory`: which floor is higher.
    pub bound: String,
    /// Assumptions made (dtype, causal mask).
    pub note: Option<String>,
}

/// Bytes per element of a dtype name (`bf16`, `fp16`, `fp8`, `fp32`, `tf32`).
pub(crate) fn dtype_bytes(dtype: &str) -> f64 {
    match dtype {
        "fp8" | "int8" => 1.0,
        "fp32" | "tf32" => 4.0,
        "fp4" => 0.5,
        _ => 2.0,
    }
}

/// Parse Kineto's "Input Dims" JSON text (`[[64, 4096], [4096, 6144], []]`).
pub(crate) fn parse_input_dims(raw: &str) -> Option<Vec<Vec<i64>>> {
    let v: serde_json::Value = serde_json::from_str(raw).ok()?;
    let list = v.as_array()?;
    Some(
        list.iter()
            .map(|d| {
                d.as_array()
                    .map(|xs| xs.iter().filter_map(|x| x.as_i64()).collect())
                    .unwrap_or_default()
            })
            .collect(),
    )
}

/// Dtype from Kineto "Input type" strings, when known.
pub(crate) fn dtype_from_type(t: &str) -> Option<&'static str> {
    let t = t.to_ascii_lowercase();
    if t.contains("bfloat16") {
        Some("bf16")
    } else if t.contains("half") {
        Some("fp16")
    } else if t.contains("float8") {
        Some("fp8")
    } else if t == "float" {
        Some("fp32")
    } else {
        None
    }
}

fn prod(d: &[i64]) -> f64 {
    d.iter().map(|&x| x as f64).product()
}

fn dims_text(d: &[i64]) -> String {
    format!(
        "[{}]",
        d.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// Roofline for one op, `None` when the op or its shapes are not understood.
pub(crate) fn roofline(op: &OpShapes, default_dtype: &str, gpu: &GpuSpec) -> Option<Roofline> {
    let dims = &op.input_dims;
    let dtype = op
        .input_types
        .iter()
        .find_map(|t| dtype_from_type(t))
        .unwrap_or(default_dtype);
    let mut notes = vec![];
    if op.input_types.is_empty() {
        notes.push(format!("dtype assumed {dtype}"));
    }
    let e = dtype_bytes(dtype);
    let name = op.op.as_str();
    let (flops, bytes, shape) = match name {
        "aten::mm" | "aten::matmul" | "aten::addmm" | "aten::linear" | "aten::bmm"
        | "aten::baddbmm" => {
            let (a, b) = match name {
                "aten::addmm" | "aten::baddbmm" => (dims.get(1)?, dims.get(2)?),
                _ => (dims.first()?, dims.get(1)?),
            };
            if a.len() < 2 || b.len() < 2 {
                return None;
            }
            let k = *a.last()? as f64;
            let (m, n, batch) = if name == "aten::linear" {
                // weight is [N, K]; leading dims of the input are the rows
                (prod(&a[..a.len() - 1]), b[0] as f64, 1.0)
            } else if a.len() == 3 && b.len() == 3 {
                (a[1] as f64, b[2] as f64, a[0] as f64)
            } else {
                (prod(&a[..a.len() - 1]), *b.last()? as f64, 1.0)
            };
            let flops = 2.0 * batch * m * n * k;
            let bytes = e * batch * (m * k + k * n + m * n);
            (
                flops,
                bytes,
                format!("{name} {}×{}", dims_text(a), dims_text(b)),
            )
        }
        _ if name.contains("attention")
            || name.contains("flash_attn")
            || name.contains("attn_fwd") =>
        {
            let (q, k) = (dims.first()?, dims.get(1)?);
            if q.len() != 4 || k.len() != 4 {
                return None;
            }
            // [B, H, L, D] (SDPA layout)
            let (b, h, lq, d) = (q[0] as f64, q[1] as f64, q[2] as f64, q[3] as f64);
            let (hk, lk) = (k[1] as f64, k[2] as f64);
            let mut flops = 4.0 * b * h * lq * lk * d;
            if lq == lk && lq > 1.0 {
                flops *= 0.5;
                notes.push("causal mask assumed (Lq = Lk)".into());
            }
            let bytes = e * (2.0 * b * h * lq * d + 2.0 * b * hk * lk * d);
            (
                flops,
                bytes,
                format!("{name} q{}×k{}", dims_text(q), dims_text(k)),
            )
        }
        _ => return None,
    };
    if flops <= 0.0 {
        return None;
    }
    let ideal_us = gpu.ideal_us(flops, bytes, dtype)?;
    let peak = gpu.peak_tflops.get(dtype)? * 1e12;
    let bound = if flops / peak >= bytes / (gpu.memory_bandwidth_gbps * 1e9) {
        "compute"
    } else {
        "memory"
    };
    Some(Roofline {
        shape,
        flops,
        bytes,
        ideal_us,
        bound: bound.into(),
        note: if notes.is_empty() {
            None
        } else {
            Some(notes.join("; "))
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h200() -> GpuSpec {
        vllm_sota_core::gpu::find("H200").unwrap()
    }

    #[test]
    fn decode_gemm_is_memory_bound_and_prefill_gemm_compute_bound() {
        // llama-8B down projection at batch 64: [64,14336]×[14336,4096] bf16
        let op = OpShapes {
            op: "aten::mm".into(),
            input_dims: vec![vec![64, 14336], vec![14336, 4096]],
            input_types: vec![],
        };
        let r = roofline(&op, "bf16", &h200()).unwrap();
        assert_eq!(r.flops, 2.0 * 64.0 * 14336.0 * 4096.0);
        assert_eq!(
            r.bytes,
            2.0 * (64.0 * 14336.0 + 14336.0 * 4096.0 + 64.0 * 4096.0)
        );
        assert_eq!(r.bound, "memory");
        // 118.0 MB at 4.8 TB/s ≈ 24.6 µs
        assert!((r.ideal_us - r.bytes / 4800e9 * 1e6).abs() < 1e-9);
        assert!(r.note.unwrap().contains("bf16"));
        // prefill 8000 tokens through the same weight
        let op = OpShapes {
            op: "aten::linear".into(),
            input_dims: vec![vec![1, 8000, 14336], vec![4096, 14336], vec![]],
            input_types: vec!["c10::BFloat16".into()],
        };
        let r = roofline(&op, "bf16", &h200()).unwrap();
        assert_eq!(r.bound, "compute");
        assert!((r.ideal_us - 2.0 * 8000.0 * 14336.0 * 4096.0 / 989.4e12 * 1e6).abs() < 1e-6);
        assert!(r.note.is_none());
    }

    #[test]
    fn sdpa_prefill_assumes_causal_and_unknown_ops_give_none() {
        let op = OpShapes {
            op: "aten::_scaled_dot_product_cudnn_attention".into(),
            input_dims: vec![
                vec![1, 32, 8000, 128],
                vec![1, 8, 8000, 128],
                vec![1, 8, 8000, 128],
            ],
            input_types: vec![],
        };
        let r = roofline(&op, "bf16", &h200()).unwrap();
        assert_eq!(r.flops, 0.5 * 4.0 * 32.0 * 8000.0 * 8000.0 * 128.0);
        assert!(r.note.unwrap().contains("causal"));
        let op = OpShapes {
            op: "aten::add".into(),
            input_dims: vec![vec![4]],
            input_types: vec![],
        };
        assert!(roofline(&op, "bf16", &h200()).is_none());
        let op = OpShapes {
            op: "aten::mm".into(),
            input_dims: vec![vec![4]],
            input_types: vec![],
        };
        assert!(roofline(&op, "bf16", &h200()).is_none());
    }

    #[test]
    fn input_dims_text_parses_including_empty_and_nested_entries() {
        assert_eq!(
            parse_input_dims("[[64, 4096], [4096, 6144], []]").unwrap(),
            vec![vec![64, 4096], vec![4096, 6144], vec![]]
        );
        assert_eq!(
            parse_input_dims("[[[1,2],[3]], [5]]").unwrap(),
            vec![vec![], vec![5]]
        );
        assert!(parse_input_dims("not json").is_none());
    }
}
