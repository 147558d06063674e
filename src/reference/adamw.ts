/**
 * Reference AdamW step with clipping by global norm (float64), as torch.optim.AdamW after
 * torch.nn.utils.clip_grad_norm_. Mutates param, m, v in place.
 */
export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** ≤ 0 disables clipping. */
  maxGradNorm: number;
}

/** One step for several tensors that share one global gradient norm. `step` counts from 1. */
export function adamwStepRef(
  params: Float64Array[],
  grads: Float64Array[],
  m: Float64Array[],
  v: Float64Array[],
  step: number,
  h: AdamWHyper,
): void {
  let normSq = 0;
  for (const g of grads) for (const x of g) normSq += x * x;
  const clip = h.maxGradNorm > 0 ? Math.min(1, h.maxGradNorm / (Math.sqrt(normSq) + 1e-6)) : 1;
  const bc1 = 1 - Math.pow(h.beta1, step);
  const bc2 = 1 - Math.pow(h.beta2, step);
  params.forEach((p, k) => {
    for (let i = 0; i < p.length; i++) {
      const g = grads[k][i] * clip;
      p[i] -= h.lr * h.weightDecay * p[i];
      m[k][i] = h.beta1 * m[k][i] + (1 - h.beta1) * g;
      v[k][i] = h.beta2 * v[k][i] + (1 - h.beta2) * g * g;
      p[i] -= (h.lr / bc1) * m[k][i] / (Math.sqrt(v[k][i]) / Math.sqrt(bc2) + h.eps);
    }
  });
}
