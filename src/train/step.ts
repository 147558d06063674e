/**
 * One optimizer step — the math of training, free of the loop's bookkeeping so that a benchmark can
 * drive it on a random-weight model (src/model/random.ts) without a model folder or a dataset.
 *
 * Each micro-batch's loss is the mean over its trained tokens; its backward is seeded with n_i / N (its
 * share of the step's trained tokens, counted on the host from the labels), so the accumulated
 * gradient is that of the token-mean loss of the whole step (as transformers ≥ 4.46). Gradients
 * accumulate in `.grad`; AdamW clips by the global norm and updates with `lr`; the gradients are then
 * zeroed. Nothing is read back: losses and the norm² are copied into the caller's GPU log buffers.
 */
import { backward } from "../autograd/mod.ts";
import { lmHeadCrossEntropy, reshape, rmsNorm } from "../ops/mod.ts";
import { Tensor, tidy } from "../tensor/mod.ts";
import type { LlamaModel } from "../model/llama.ts";
import type { Batch } from "../data/shards.ts";
import type { AdamW } from "./optimizer.ts";
import { shiftLabels } from "./evaluate.ts";

/** Where a step leaves its numbers on the GPU (byte offsets into f32 buffers). */
export interface StepLog {
  /** Micro-batch i's loss goes to `lossOffset + 4·i`. */
  losses: GPUBuffer;
  lossOffset: number;
  /** The step's global gradient norm² (before clipping). */
  norm: GPUBuffer;
  normOffset: number;
}

/** The micro-batches as a training step needs them (Batch from src/data/shards.ts fits). */
export type MicroBatch = Pick<
  Batch,
  "rows" | "seqLen" | "inputIds" | "labels" | "positionIds" | "segmentIds"
>;

/**
 * Records forward + backward of every micro-batch and one AdamW update. `seeds` (one per micro-batch)
 * drive LoRA dropout; `opts.checkpoint` recomputes layers in backward (gradient_checkpointing: true for
 * every layer, a number for that many, see LlamaModel.forward). Returns each micro-batch's loss weight
 * (n_i / N) and the non-padding tokens.
 *
 * @example
 * const { weights } = optimizerStep(model, opt, [batch], schedule.lr(opt.stepCount), [rng.int(2 ** 31)], log);
 */
export function optimizerStep(
  model: LlamaModel,
  opt: AdamW,
  micro: MicroBatch[],
  lr: number,
  seeds: number[],
  log?: StepLog,
  opts: { checkpoint?: boolean | number } = {},
): { weights: number[]; tokens: number } {
  const gpu = model.gpu, C = model.config.hiddenSize;
  const shifted = micro.map((b) => shiftLabels(b.labels, b.rows, b.seqLen));
  const counts = shifted.map((l) => l.reduce((n, x) => n + (x === -100 ? 0 : 1), 0));
  const total = Math.max(1, counts.reduce((a, b) => a + b, 0));
  micro.forEach((b, i) => {
    tidy(() => {
      const n = b.rows * b.seqLen;
      const ids = Tensor.from(gpu, b.inputIds, [b.rows, b.seqLen], "i32");
      const pos = Tensor.from(gpu, b.positionIds, [b.rows, b.seqLen], "i32");
      const labels = Tensor.from(gpu, shifted[i], [n], "i32");
      const hidden = model.forward(ids, pos, { seed: seeds[i] ?? 0, checkpoint: opts.checkpoint });
      const normed = reshape(rmsNorm(hidden, model.norm, model.config.rmsNormEps), [n, C]);
      const loss = lmHeadCrossEntropy(normed, model.lmHead, labels);
      backward(loss, Tensor.from(gpu, [counts[i] / total], [1]));
      if (log) gpu.copy(loss.buffer, 0, log.losses, log.lossOffset + 4 * i, 4);
    });
  });
  opt.step(lr);
  if (log && opt.gradNormSq) gpu.copy(opt.gradNormSq.buffer, 0, log.norm, log.normOffset, 4);
  opt.zeroGrad();
  const tokens = micro.reduce((n, b) => n + b.segmentIds.reduce((k, s) => k + (s === 0 ? 0 : 1), 0), 0);
  return { weights: counts.map((c) => c / total), tokens };
}
