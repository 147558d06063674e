/**
 * Measured compute and memory ceilings of the adapters we benchmark on, by WebGPU adapter description.
 * Fractions printed by benches and the training log are of these. Measured 2026-11-29 with PyTorch on
 * the same machine: fp32 matmul by cuBLAS with TF32 off (WGSL cannot reach tensor cores), device copy.
 */
export interface Ceiling {
  /** fp32 FMA throughput, TFLOP/s (2 FLOPs per FMA). */
  fp32Tflops: number;
  /** Memory bandwidth, TB/s (read + write). */
  memoryTbps: number;
}

const MEASURED: Record<string, Ceiling> = {
  "NVIDIA H200": { fp32Tflops: 51, memoryTbps: 4.2 },
};

/** The measured ceiling of an adapter, or undefined when we have not measured it. */
export function measuredCeiling(description: string): Ceiling | undefined {
  return MEASURED[description];
}
