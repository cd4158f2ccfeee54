"""Held-out-like Nsight Compute cases on the H200 (torch only): a compute-bound bf16 GEMM (cuBLASLt/nvjet, TMA loads),
a skinny decode-shaped GEMM (memory-bound library kernel) and a FlashAttention forward through SDPA (closed binary)."""
import sys, torch
which = sys.argv[1]
torch.manual_seed(0)
if which == "gemm_big":
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16); b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    f = lambda: a @ b
    flops = 2 * 8192**3
elif which == "gemm_skinny":
    a = torch.randn(64, 4096, device="cuda", dtype=torch.bfloat16); b = torch.randn(4096, 28672, device="cuda", dtype=torch.bfloat16)
    f = lambda: a @ b
    flops = 2 * 64 * 4096 * 28672
elif which == "sdpa":
    q = torch.randn(4, 32, 4096, 128, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(4, 32, 4096, 128, device="cuda", dtype=torch.bfloat16); v = torch.randn_like(k)
    f = lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    flops = 4 * 4 * 32 * 4096 * 4096 * 128 // 2
for _ in range(3): f()
torch.cuda.synchronize()
import triton.testing
t = triton.testing.do_bench(f)
print(which, "ms", t, "TFLOP/s", flops / t / 1e9)
