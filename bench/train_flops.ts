/**
 * The FLOPs a LoRA training step executes, counted from the model config (bench/train.ts divides them by
 * the measured step time for TFLOP/s and the fraction of the fp32 ceiling).
 */
import type { ModelConfig } from "../src/io/config.ts";
import { expectedShapes } from "../src/model/weights.ts";

/** FLOPs of one training step, by part. */
export interface StepFlops {
  forward: number;
  backward: number;
  /** The forward recomputed in backward under gradient checkpointing (recomputed decoder layers only). */
  recompute: number;
  /** forward + backward + recompute. */
  total: number;
}

/** Query–key pairs one sequence attends over: Σ_i min(i + 1, window) (causal, sliding window). */
export function attentionPairs(T: number, window: number | null): number {
  const w = window && window < T ? window : T;
  // Rows 0 … w−1 see i + 1 keys; the remaining T − w rows see w each.
  return (w * (w + 1)) / 2 + (T - w) * w;
}

/**
 * Counts the matmul and attention FLOPs of one LoRA training step (norms, RoPE, SwiGLU, softmax and the
 * optimizer are left out: they are memory-bound and small). With n = B·T tokens, N the frozen linear
 * weights of the decoder plus the LM head (the embedding is a gather), N_dec those of the decoder only,
 * a the LoRA parameters (r·(in + out) per adapted layer), P the attended query–key pairs per sequence:
 *
 *   forward   = 2·N·n + 2·a·n + 4·P·D·H·B·L          (attention: Q·Kᵀ and P·V, causal halves T²)
 *   backward  = 2·N·n + 4·a·n + 8·P·D·H·B·L          (frozen W: input gradients only; LoRA: input +
 *                                                     weight gradients; attention: dQ, dK, dV, dP)
 *   recompute = 2·N_dec·n + 2·a·n + 4·P·D·H·B·L      (checkpointing: the decoder forward once more;
 *                                                     × k / L when only k of the L layers recompute)
 *
 * @example
 * trainStepFlops(SHAPES["mistral-7b"], { seqLen: 2048, batchSize: 1, rank: 64, targets: ["q_proj", "k_proj", "v_proj", "o_proj"], checkpoint: true }).total; // ≈ 9.2e13
 */
export function trainStepFlops(
  c: ModelConfig,
  o: {
    seqLen: number;
    batchSize: number;
    rank: number;
    targets: string[] | "all";
    checkpoint: boolean | number;
  },
): StepFlops {
  let nDec = 0, a = 0;
  for (const [name, shape] of expectedShapes(c)) {
    const m = /^model\.layers\.\d+\.\w+\.(\w+)\.weight$/.exec(name);
    if (!m || shape.length !== 2) continue;
    const [out, inF] = shape;
    nDec += out * inF;
    if (o.targets === "all" || o.targets.includes(m[1])) a += o.rank * (inF + out);
  }
  const n = o.batchSize * o.seqLen;
  const head = c.vocabSize * c.hiddenSize;
  const attn = 4 * attentionPairs(o.seqLen, c.slidingWindow) * c.headDim * c.numHeads * o.batchSize *
    c.numLayers;
  const forward = 2 * (nDec + head) * n + 2 * a * n + attn;
  const backward = 2 * (nDec + head) * n + 4 * a * n + 2 * attn;
  const share = o.checkpoint === true
    ? 1
    : o.checkpoint === false
    ? 0
    : Math.min(1, o.checkpoint / c.numLayers);
  const recompute = share * (2 * nDec * n + 2 * a * n + attn);
  return { forward, backward, recompute, total: forward + backward + recompute };
}
