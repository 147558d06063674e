/**
 * Row softmax over the last dimension (f32), numerically stable, one workgroup per row.
 * Backward: dx = y ⊙ (g − Σ_row g ⊙ y), from the saved output y.
 */
import { Uniforms } from "../gpu/mod.ts";
import { Tensor } from "../tensor/mod.ts";
import { record } from "../autograd/mod.ts";
import { rowGrid, rowSpec, rowWorkgroup } from "./reduce.ts";

function rowsOf(op: string, x: Tensor): { rows: number; v: number } {
  if (x.dtype !== "f32") throw new Error(`${op}: expects f32, got ${x.dtype} [${x.shape}]`);
  if (x.shape.length === 0) throw new Error(`${op}: needs at least one dimension`);
  const v = x.shape[x.shape.length - 1];
  const rows = v === 0 ? 0 : x.size / v;
  if (x.size >= 2 ** 32) throw new Error(`${op}: [${x.shape}] has more than 2^32 − 1 elements`);
  return { rows, v };
}

/** vec4 kernels need 16-byte aligned rows (V % 4 == 0). */
function useVec4(v: number): boolean {
  return v % 4 === 0;
}

/** dx for y = softmax(x): one launch, a fresh f32 tensor. */
function softmaxBackward(y: Tensor, g: Tensor): Tensor {
  const { rows, v } = rowsOf("softmax backward", y);
  const gpu = y.gpu;
  const dx = Tensor.empty(gpu, y.shape);
  if (rows === 0) return dx;
  const vec4 = useVec4(v);
  gpu.dispatch(
    rowSpec(gpu, "softmax", vec4 ? "bwd4" : "bwd", { WG: rowWorkgroup(v) }),
    vec4 ? { 6: y.buffer, 7: g.buffer, 8: dx.buffer } : { 2: y.buffer, 3: g.buffer, 4: dx.buffer },
    rowGrid(gpu, rows),
    new Uniforms().u32(rows).u32(v),
  );
  return dx;
}

/**
 * Softmax over the last dimension of an f32 tensor (any rank). Recorded.
 *
 * @example
 * const probs = softmax(scores); // [B, H, T, T], each row sums to 1
 */
export function softmax(x: Tensor): Tensor {
  const { rows, v } = rowsOf("softmax", x);
  const gpu = x.gpu;
  const y = Tensor.empty(gpu, x.shape);
  if (rows > 0) {
    const vec4 = useVec4(v);
    gpu.dispatch(
      rowSpec(gpu, "softmax", vec4 ? "fwd4" : "fwd", { WG: rowWorkgroup(v) }),
      vec4 ? { 5: x.buffer, 6: y.buffer } : { 1: x.buffer, 2: y.buffer },
      rowGrid(gpu, rows),
      new Uniforms().u32(rows).u32(v),
    );
  }
  return record(y, "softmax", [x], (g) => [softmaxBackward(y, g)]);
}
