/**
 * Fused AdamW update for one parameter tensor (see kernels/adamw.wgsl for the exact arithmetic).
 * The optimizer (src/train) calls it once per trainable tensor after computing the global gradient
 * norm² into a GPU scalar, so a whole step needs no readback.
 */
import { Uniforms } from "../gpu/mod.ts";
import type { Tensor } from "../tensor/mod.ts";
import { grid1d } from "../autograd/mod.ts";
import type { AdamWHyper } from "../reference/adamw.ts";

export type { AdamWHyper };

/**
 * Updates `param` (f32) in place from `grad`, with moments `m`, `v` (f32, same size). `step` ≥ 1.
 * `normSq` is a [1] f32 GPU tensor holding Σ‖g‖² over every parameter (unused when maxGradNorm ≤ 0).
 *
 * @example
 * adamwUpdate(w, w.grad!, m, v, normSq, step, { lr: 2e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxGradNorm: 1 });
 */
export function adamwUpdate(
  param: Tensor,
  grad: Tensor,
  m: Tensor,
  v: Tensor,
  normSq: Tensor,
  step: number,
  h: AdamWHyper,
): void {
  for (const [what, t] of [["param", param], ["grad", grad], ["m", m], ["v", v]] as const) {
    if (t.dtype !== "f32" || t.size !== param.size) {
      throw new Error(
        `adamwUpdate: ${what} must be f32 with ${param.size} elements, got ${t.dtype} [${t.shape}]`,
      );
    }
  }
  if (!(step >= 1)) throw new Error(`adamwUpdate: step must be ≥ 1, got ${step}`);
  const u = new Uniforms()
    .u32(param.size)
    .f32(h.lr)
    .f32(h.beta1)
    .f32(h.beta2)
    .f32(h.eps)
    .f32(h.weightDecay)
    .f32(1 - Math.pow(h.beta1, step))
    .f32(Math.sqrt(1 - Math.pow(h.beta2, step)))
    .f32(h.maxGradNorm);
  const gpu = param.gpu;
  gpu.dispatch(
    { file: "adamw" },
    [param.buffer, grad.buffer, m.buffer, v.buffer, normSq.buffer],
    grid1d(param.size, 256, gpu.device.limits.maxComputeWorkgroupsPerDimension),
    u,
  );
}
