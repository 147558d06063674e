/**
 * Token embedding: gathers rows of a [V, C] table (f32 or f16 storage) into f32 activations.
 * Kernels: kernels/embedding.wgsl.
 *
 * Backward (only when the table is trainable, i.e. full fine-tuning): dweight [V, C] f32 is zeroed,
 * then each row that some id hits receives the sum of its gradient rows in order of position — the
 * first position holding the id owns the row, so repeated ids add up exactly and deterministically
 * without float atomics. The ids get no gradient.
 */
import { type DType, Uniforms } from "../gpu/mod.ts";
import { Tensor } from "../tensor/mod.ts";
import { grid1d, record } from "../autograd/mod.ts";

/**
 * Looks up rows: ids i32 [N] or [B, T], weight [V, C] f32|f16 → [..., C] f32. An id outside [0, V)
 * gives a row of NaN (it cannot be checked on the host without a readback).
 *
 * @example
 * const h = embedding(ids, model.embedTokens); // ids [B, T] i32, table [V, C] f16 → [B, T, C] f32
 */
export function embedding(ids: Tensor, weight: Tensor): Tensor {
  if (ids.dtype !== "i32" || ids.shape.length < 1 || ids.shape.length > 2) {
    throw new Error(`embedding: ids must be i32 [N] or [B, T], got [${ids.shape}] ${ids.dtype}`);
  }
  if (weight.shape.length !== 2 || (weight.dtype !== "f32" && weight.dtype !== "f16")) {
    throw new Error(`embedding: weight must be [V, C] f32|f16, got [${weight.shape}] ${weight.dtype}`);
  }
  const [vocab, cols] = weight.shape;
  const n = ids.size;
  const gpu = ids.gpu;
  const out = Tensor.empty(gpu, [...ids.shape, cols], "f32");
  if (out.size === 0) return out;
  const vec = cols % 4 === 0;
  const units = vec ? cols / 4 : cols;
  const types = { WT: weight.dtype as DType };
  const u = new Uniforms().u32(n).u32(vocab).u32(units);
  const max = gpu.device.limits.maxComputeWorkgroupsPerDimension;
  // Scalar entries: bindings 1…5; vec4 entries: ids at 1, the rest at 12…15 (see the kernel header).
  const k = vec ? 10 : 0;
  gpu.dispatch(
    { file: "embedding", entry: vec ? "forward4" : "forward", types },
    { 1: ids.buffer, [2 + k]: weight.buffer, [3 + k]: out.buffer },
    grid1d(n * units, 256, max),
    u,
  );
  return record(out, "embedding", [ids, weight], (g, needs) => {
    if (!needs[1]) return [null, null];
    const dw = Tensor.zeros(gpu, [vocab, cols], "f32");
    gpu.dispatch(
      { file: "embedding", entry: vec ? "backward4" : "backward", types },
      { 1: ids.buffer, [4 + k]: g.buffer, [5 + k]: dw.buffer },
      grid1d(n, 1, max),
      u,
    );
    return [null, dw];
  });
}
