"""PyTorch peers for the non-matmul kernels, fp32, same shapes as bench/kernels/*.ts.

Run on the GPU machine beside `deno task bench kernels` (same device call):
    python3 bench/peers/torch_kernels.py [--json FILE]
Times with CUDA events over many iterations after warm-up; TF32 off so fp32 means fp32.
"""
import argparse
import json

import torch
import torch.nn.functional as F

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = "cuda"


def timed(fn, iters=50):
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iters


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    args = ap.parse_args()
    rows = []

    def add(name, size, ms, flops=0.0, nbytes=0.0):
        rows.append({"name": name, "size": size, "ms": ms, "tflops": flops / ms / 1e9, "tbps": nbytes / ms / 1e9})

    # attention forward / backward, causal, fp32 (SDPA picks the efficient kernel for fp32)
    for hkv in (8, 32):
        B, T, H, D = 1, 1024, 32, 128
        q = torch.randn(B, H, T, D, device=dev, requires_grad=True)
        k = torch.randn(B, hkv, T, D, device=dev, requires_grad=True)
        v = torch.randn(B, hkv, T, D, device=dev, requires_grad=True)
        fl = 4 * B * H * T * T * D / 2
        f = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=hkv != H)
        add(f"attention forward f32 Hkv={hkv}", f"B{B} T{T} H{H} D{D}", timed(f), fl)
        out = f()
        g = torch.randn_like(out)
        add(f"attention backward f32 Hkv={hkv}", f"B{B} T{T} H{H} D{D}",
            timed(lambda: torch.autograd.grad(f(), (q, k, v), g)) - timed(f), 2.5 * fl)

    x = torch.randn(4096, 4096, device=dev)
    w = torch.randn(4096, device=dev)
    add("rmsnorm f32", "4096x4096", timed(lambda: F.rms_norm(x, (4096,), w, 1e-5)), 0, 2 * x.numel() * 4)
    gate = torch.randn(4096, 14336, device=dev)
    up = torch.randn(4096, 14336, device=dev)
    add("swiglu f32", "4096x14336", timed(lambda: F.silu(gate) * up), 0, 3 * gate.numel() * 4)
    logits = torch.randn(2048, 128256, device=dev)
    labels = torch.randint(0, 128256, (2048,), device=dev)
    add("cross-entropy f32 (forward)", "2048x128256", timed(lambda: F.cross_entropy(logits, labels)), 0,
        logits.numel() * 4)
    s = torch.randn(32 * 1024, 1024, device=dev)
    add("softmax f32", "32768x1024", timed(lambda: torch.softmax(s, -1)), 0, 2 * s.numel() * 4)
    ps = [torch.randn(1 << 24, device=dev) for _ in range(4)]
    for p in ps:
        p.grad = torch.randn_like(p)
    opt = torch.optim.AdamW(ps, lr=1e-3, foreach=True)
    add("adamw f32 (foreach)", "4x16M", timed(opt.step), 0, 4 * (1 << 24) * 4 * 7)

    print("| peer kernel | size | ms | TFLOP/s | TB/s |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['name']} | {r['size']} | {r['ms']:.3f} | {r['tflops']:.2f} | {r['tbps']:.3f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "results": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
