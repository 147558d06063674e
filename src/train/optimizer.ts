/**
 * AdamW over a list of trainable tensors: f32 moments on the GPU, clipping by global gradient norm,
 * no readback. The global norm² of each step stays on the GPU (`gradNormSq`) so the trainer can read
 * it back only every logging_steps.
 */
import { keep, Tensor } from "../tensor/mod.ts";
import { type AdamWHyper, adamwUpdate } from "../ops/adamw.ts";
import { sumSquares } from "../ops/reduce.ts";

export class AdamW {
  readonly params: Tensor[];
  hyper: AdamWHyper;
  /** Number of steps taken (the bias-correction exponent of the next step is stepCount + 1). */
  stepCount = 0;
  readonly m: Tensor[];
  readonly v: Tensor[];
  /** Σ‖g‖² of the last step, before clipping ([1] f32 on the GPU), or null before the first step. */
  gradNormSq: Tensor | null = null;

  /**
   * @example
   * const opt = new AdamW(model.trainableParameters(), { lr: 2e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxGradNorm: 1 });
   * backward(loss); opt.step(); opt.zeroGrad();
   */
  constructor(params: Tensor[], hyper: AdamWHyper) {
    for (const p of params) {
      if (p.dtype !== "f32" || !p.requiresGrad) {
        throw new Error(`AdamW: parameter ${p.name || p.id} must be f32 with requiresGrad (got ${p.dtype})`);
      }
    }
    this.params = params;
    this.hyper = { ...hyper };
    this.m = params.map((p) => Tensor.zeros(p.gpu, p.shape, "f32", { persistent: true }));
    this.v = params.map((p) => Tensor.zeros(p.gpu, p.shape, "f32", { persistent: true }));
  }

  /** One update of every parameter that has a gradient. `lr` overrides hyper.lr (schedules). */
  step(lr = this.hyper.lr): void {
    const live = this.params.map((p, i) => [p, i] as const).filter(([p]) => p.grad);
    if (!live.length) return;
    this.stepCount++;
    const normSq = keep(sumSquares(live.map(([p]) => p.grad!)));
    const h = { ...this.hyper, lr };
    for (const [p, i] of live) adamwUpdate(p, p.grad!, this.m[i], this.v[i], normSq, this.stepCount, h);
    this.gradNormSq?.dispose();
    this.gradNormSq = normSq;
  }

  /** Zeroes every gradient (recorded GPU clears; no readback). */
  zeroGrad(): void {
    for (const p of this.params) if (p.grad) p.gpu.clear(p.grad.buffer);
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
    this.gradNormSq?.dispose();
  }
}
