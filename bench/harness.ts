/**
 * Kernel benchmark harness. A case prepares its tensors once and returns a `run` that records one
 * launch (or one fixed sequence of launches); the harness records it many times in one submit and
 * divides the wall time, so Deno's ≥ 10 ms per-readback cost is amortised away.
 *
 * Ceilings (H200, measured with PyTorch on 2026-11-29): fp32 FMA 51 TFLOP/s (cuBLAS, TF32 off),
 * memory 4.2 TB/s (read + write). Fractions printed are of these.
 */
import { type Gpu, type KernelTime, measuredCeiling } from "../src/gpu/mod.ts";

/** The H200's ceilings (src/gpu/ceilings.ts): fractions are reported against them on any adapter. */
const H200 = measuredCeiling("NVIDIA H200")!;
export const PEAK_TFLOPS = H200.fp32Tflops;
export const PEAK_TBPS = H200.memoryTbps;

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
  /** GPU time per run from timestamp queries (null when the adapter has none). */
  gpuMs: number | null;
  /** Wall time per run: host recording + GPU, readback latency amortised over many runs. */
  wallMs: number;
  /** Figures below use gpuMs when known, else wallMs. */
  tflops: number;
  tbps: number;
  /** Fraction of the bound that applies: max(flops fraction, bytes fraction). */
  ofCeiling: number;
}

/**
 * Times one case. GPU time: `iters` runs recorded into one compute pass between two timestamps
 * (iters capped so the pass is not split by a uniform-arena flush), best of 3. Wall time: the same
 * runs timed from the host, best of 3; it includes the ~2 µs-per-dispatch recording cost, which is
 * what small kernels in a decode loop really pay.
 */
export async function timeCase(gpu: Gpu, c: BenchCase, targetMs = 300): Promise<BenchResult> {
  const { run, dispose } = c.setup(gpu);
  try {
    const d0 = gpu.dispatchCount;
    run();
    await gpu.sync();
    const perRun = Math.max(1, gpu.dispatchCount - d0);
    let t0 = performance.now();
    run();
    await gpu.sync();
    // The single run includes ~10 ms of Deno's readback latency; it is only used to pick a count.
    const once = Math.max(0.01, performance.now() - t0 - 10);
    const iters = Math.max(3, Math.min(2000, Math.floor(4000 / perRun), Math.round(targetMs / once)));
    let wall = Infinity, gpuBest = Infinity, timed = true;
    for (let rep = 0; rep < 3; rep++) {
      t0 = performance.now();
      for (let i = 0; i < iters; i++) run();
      await gpu.sync();
      wall = Math.min(wall, (performance.now() - t0) / iters);
      const g = await gpu.timePass(() => {
        for (let i = 0; i < iters; i++) run();
      });
      if (g === null) timed = false;
      else gpuBest = Math.min(gpuBest, g / iters);
    }
    const gpuMs = timed ? gpuBest : null;
    const ms = gpuMs ?? wall;
    const tflops = c.flops / (ms * 1e-3) / 1e12;
    const tbps = c.bytes / (ms * 1e-3) / 1e12;
    return {
      name: c.name,
      size: c.size,
      gpuMs,
      wallMs: wall,
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
    `| ${r.name} | ${r.size} | ${r.gpuMs === null ? "—" : r.gpuMs.toFixed(3)} | ${r.wallMs.toFixed(3)} | ${
      r.tflops >= 0.005 ? r.tflops.toFixed(2) : "—"
    } | ${r.tbps.toFixed(3)} | ${(r.ofCeiling * 100).toFixed(1)}% |`
  );
  return [
    "| kernel | size | GPU ms | wall ms | TFLOP/s | TB/s | of ceiling |",
    "|---|---|---:|---:|---:|---:|---:|",
    ...rows,
  ].join("\n");
}

/** Kernel times of a profiled run (Gpu.profile), largest first, with their share of the summed GPU time. */
export function profileTable(what: string, kernels: KernelTime[], top = 25): string {
  const sum = kernels.reduce((a, k) => a + k.ms, 0);
  const lines = [`${what}: ${sum.toFixed(1)} ms of kernel time (a pass per dispatch), by kernel:`];
  for (const k of kernels.slice(0, top)) {
    lines.push(
      `  ${k.ms.toFixed(2).padStart(9)} ms ${(100 * k.ms / sum).toFixed(1).padStart(5)}%  ×${
        String(k.count).padEnd(5)
      } ${k.name}`,
    );
  }
  if (kernels.length > top) lines.push(`  … ${kernels.length - top} more kernels`);
  return lines.join("\n");
}
