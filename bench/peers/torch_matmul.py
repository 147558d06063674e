"""PyTorch peer for bench/kernels/matmul.ts: fp32 matmul with TF32 OFF (plain FMA, the ceiling our WGSL
kernels compete with), fp16-weight products upcast the way our f16-storage path works, and the decode
GEMV. Timed with CUDA events; prints a markdown table.

    python3 bench/peers/torch_matmul.py
"""
import torch

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = "cuda"
n, ffn, t, r = 4096, 14336, 2048, 64


def timeit(fn, iters=None):
    fn()
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    fn()
    e.record()
    torch.cuda.synchronize()
    once = max(s.elapsed_time(e), 1e-3)
    iters = iters or max(3, min(2000, int(300 / once)))
    best = float("inf")
    for _ in range(3):
        s.record()
        for _ in range(iters):
            fn()
        e.record()
        torch.cuda.synchronize()
        best = min(best, s.elapsed_time(e) / iters)
    return best


def case(name, M, N, K, trans_a=False, trans_b=False, b_dtype=torch.float32, upcast=False):
    a = torch.rand((K, M) if trans_a else (M, K), device=dev) * 2 - 1
    b = (torch.rand((N, K) if trans_b else (K, N), device=dev) * 2 - 1).to(b_dtype)
    out = torch.empty(M, N, device=dev)
    A = a.t() if trans_a else a
    if upcast:
        # f16 weights upcast inside the product (what our f16-storage path does, without a copy).
        fn = lambda: torch.matmul(A, (b.t() if trans_b else b).float(), out=out)
    else:
        fn = lambda: torch.matmul(A, b.t() if trans_b else b, out=out)
    ms = timeit(fn)
    flops = 2 * M * N * K
    nbytes = M * K * 4 + K * N * b.element_size() + M * N * 4
    return f"| torch {name} | {M}x{N}x{K} | {ms:.3f} | {flops / ms / 1e9:.2f} | {nbytes / ms / 1e9:.3f} |"


rows = [
    case("fp32 A·B", n, n, n),
    case("fp32 A·Bᵀ", n, n, n, trans_b=True),
    case("fp32 Aᵀ·B", n, n, n, trans_a=True),
    case("f16-B upcast A·B", n, n, n, b_dtype=torch.float16, upcast=True),
    case("gemv f16-B upcast (decode)", 1, ffn, n, trans_b=True, b_dtype=torch.float16, upcast=True),
]
# Pure-fp16 GEMV (what PyTorch decode actually runs: fp16 activations, fp16 weights).
w = torch.rand(ffn, n, device=dev, dtype=torch.float16)
x = torch.rand(1, n, device=dev, dtype=torch.float16)
ms = timeit(lambda: torch.matmul(x, w.t()))
rows.append(f"| torch gemv fp16 x·Wᵀ (decode) | 1x{ffn}x{n} | {ms:.3f} | {2 * ffn * n / ms / 1e9:.2f} | "
            f"{(ffn * n * 2 + n * 2 + ffn * 2) / ms / 1e9:.3f} |")
rows += [
    case("gemv f32 4 rows", 4, ffn, n, trans_b=True),
    case("lora x·Aᵀ", t, r, n, trans_b=True),
    case("lora h·Bᵀ", t, n, r, trans_b=True),
    case("lora dB=dCᵀ·h", n, r, t, trans_a=True),
]
print(f"device: {torch.cuda.get_device_name()}  torch {torch.__version__}  tf32 off")
print("| kernel | size | ms | TFLOP/s | TB/s |")
print("|---|---|---:|---:|---:|")
print("\n".join(rows))
