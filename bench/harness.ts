/**
 * Kernel benchmark harness. A case prepares its tensors once and returns a `run` that records one
 * launch (or one fixed sequence of launches); the harness records it many times in one submit and
 * divides the wall time, so Deno's ≥ 10 ms per-readback cost is amortised away.
 *
 * Ceilings (H200, measured with PyTorch on 2026-11-29): fp32 FMA 51 TFLOP/s (cuBLAS, TF32 off),
 * memory 4.2 TB/s (read + write). Fractions printed are of these.
 */
import type { Gpu } from "../src/gpu/mod.ts";

export const PEAK_TFLOPS = 51;
export const PEAK_TBPS = 4.2;

export interface BenchCase {
  /** Family/variant, e.g. "matmul f32 A·Bᵀ". */
  name: string;
  /** Size label, e.g. "4096x4096x4096". */
  size: string;
  /** Floating-point operations per run (2 per FMA); 0 when bandwidth-bound only. */
  flops: number;
  /** Bytes that must move per run at minimum (read + write). */
  bytes: number;
  /** Builds inputs; returns the launcher and a cleanup. */
  setup(gpu: Gpu): { run: () => void; dispose: () => void };
}

export interface BenchResult {
  name: string;
  size: string;
  ms: number;
  tflops: number;
  tbps: number;
  /** Fraction of the bound that applies: max(flops fraction, bytes fraction). */
  ofCeiling: number;
}

/** Times one case: warm up, then enough iterations for ~`targetMs` of GPU time, best of 3 batches. */
export async function timeCase(gpu: Gpu, c: BenchCase, targetMs = 300): Promise<BenchResult> {
  const { run, dispose } = c.setup(gpu);
  try {
    run();
    await gpu.sync();
    let iters = 1;
    let t0 = performance.now();
    run();
    await gpu.sync();
    // The single run includes ~10 ms of Deno's readback latency; it is only used to pick a count.
    const once = Math.max(0.01, performance.now() - t0 - 10);
    iters = Math.max(3, Math.min(2000, Math.round(targetMs / once)));
    let best = Infinity;
    for (let rep = 0; rep < 3; rep++) {
      t0 = performance.now();
      for (let i = 0; i < iters; i++) run();
      await gpu.sync();
      best = Math.min(best, (performance.now() - t0) / iters);
    }
    const tflops = c.flops / (best * 1e-3) / 1e12;
    const tbps = c.bytes / (best * 1e-3) / 1e12;
    return {
      name: c.name,
      size: c.size,
      ms: best,
      tflops,
      tbps,
      ofCeiling: Math.max(tflops / PEAK_TFLOPS, tbps / PEAK_TBPS),
    };
  } finally {
    dispose();
  }
}

/** Markdown table of results. */
export function table(results: BenchResult[]): string {
  const rows = results.map((r) =>
    `| ${r.name} | ${r.size} | ${r.ms.toFixed(3)} | ${r.tflops ? r.tflops.toFixed(2) : "—"} | ${
      r.tbps.toFixed(3)
    } | ${(r.ofCeiling * 100).toFixed(1)}% |`
  );
  return ["| kernel | size | ms | TFLOP/s | TB/s | of ceiling |", "|---|---|---:|---:|---:|---:|", ...rows]
    .join("\n");
}
