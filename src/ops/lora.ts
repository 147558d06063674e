/**
 * LoRA linear layer (PEFT's lora.Linear): y = x·Wᵀ (+ bias) + scale · (dropout(x)·Aᵀ)·Bᵀ with W and
 * bias frozen, A [r, in] and B [out, r] trainable (f32).
 *
 * Fusion, as far as it pays: the delta is added by the second matmul's epilogue (beta = 1) into the
 * base output, so there is no separate [N, out] delta tensor or add pass; the only extra activation
 * kept for backward is x·Aᵀ, of size N × r. Backward never computes a gradient for W or bias, and
 * regenerates the dropout mask from its seed instead of storing dropout(x).
 */
import { Tensor } from "../tensor/mod.ts";
import { isGradEnabled, noGrad, record } from "../autograd/mod.ts";
import { matmul, matmulInto } from "./matmul.ts";
import { dropout } from "./dropout.ts";
import { axpy } from "./elementwise.ts";

export interface LoraAdapter {
  /** [r, in], f32, trainable. PEFT key `…lora_A.weight`. */
  A: Tensor;
  /** [out, r], f32, trainable. PEFT key `…lora_B.weight`. */
  B: Tensor;
  /** lora_alpha / r, or lora_alpha / √r with rsLoRA. */
  scale: number;
  /** lora_dropout probability on the adapter's input (0 = off, and always off under noGrad). */
  dropout?: number;
}

/**
 * Applies a frozen linear layer with a LoRA adapter. `x` is [..., in] f32; `weight` [out, in] f32 or
 * f16; `bias` [out] or null. `seed` drives the dropout mask (pass a new one each step).
 *
 * @example
 * const q = loraLinear(h, qProj.weight, null, { A, B, scale: 128 / 64, dropout: 0.05 }, stepSeed);
 */
export function loraLinear(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  lora: LoraAdapter,
  seed = 0,
): Tensor {
  const inF = x.shape[x.shape.length - 1];
  const [outF, inW] = weight.shape;
  const r = lora.A.shape[0];
  if (inW !== inF || lora.A.shape[1] !== inF || lora.B.shape[0] !== outF || lora.B.shape[1] !== r) {
    throw new Error(
      `loraLinear: x [${x.shape}], weight [${weight.shape}], A [${lora.A.shape}], B [${lora.B.shape}] do not fit`,
    );
  }
  const n = x.size / inF;
  const outShape = [...x.shape.slice(0, -1), outF];
  // Dropout only while a gradient is being recorded: evaluation and generation (noGrad) see the full input.
  const training = isGradEnabled() && (lora.A.requiresGrad || lora.B.requiresGrad);
  const p = training ? lora.dropout ?? 0 : 0;
  const x2 = x.reshape([n, inF]);
  const { y, xa } = noGrad(() => {
    const y = matmul(x2, weight, { transB: true, bias: bias ?? undefined });
    const xa = matmul(dropout(x2, p, seed), lora.A, { transB: true });
    matmulInto(y, xa, lora.B, { transB: true, alpha: lora.scale, beta: 1 });
    return { y, xa };
  });
  const out = y.reshape(outShape);
  return record(out, "lora_linear", [x, lora.A, lora.B], (g, needs) => {
    const g2 = g.reshape([n, outF]);
    // dxa = scale · g·B  [n, r]
    const dxa = matmul(g2, lora.B, { alpha: lora.scale });
    const dA = needs[1] ? matmul(dxa, dropout(x2, p, seed), { transA: true }) : null;
    const dB = needs[2] ? matmul(g2, xa, { transA: true, alpha: lora.scale }) : null;
    let dx: Tensor | null = null;
    if (needs[0]) {
      dx = matmul(g2, weight); // frozen W: input gradient only
      if (p === 0) matmulInto(dx, dxa, lora.A, { beta: 1 });
      else axpy(dx, dropout(matmul(dxa, lora.A), p, seed));
    }
    return [dx ? dx.reshape(x.shape) : null, dA, dB];
  });
}

/**
 * PEFT's initialisation: A Kaiming-uniform (a = √5, i.e. bound = 1/√in), B zero.
 * Returns persistent f32 tensors with requiresGrad set.
 */
export function initLora(
  gpu: Tensor["gpu"],
  inF: number,
  outF: number,
  r: number,
  rng: { uniform(lo: number, hi: number): number },
): { A: Tensor; B: Tensor } {
  const bound = 1 / Math.sqrt(inF);
  const a = new Float32Array(r * inF);
  for (let i = 0; i < a.length; i++) a[i] = rng.uniform(-bound, bound);
  const A = Tensor.from(gpu, a, [r, inF], "f32", { persistent: true });
  const B = Tensor.zeros(gpu, [outF, r], "f32", { persistent: true });
  A.requiresGrad = B.requiresGrad = true;
  return { A, B };
}
