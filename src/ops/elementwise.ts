/**
 * Pointwise ops: add, mul, scale, cast, fill. f32 activations; cast moves between f32 and f16.
 * Backward: add passes the gradient through, mul multiplies by the other factor, scale by alpha.
 */
import { type DType, Uniforms } from "../gpu/mod.ts";
import { Tensor } from "../tensor/mod.ts";
import { grid1d, record } from "../autograd/mod.ts";

function launch(
  entry: string,
  n: number,
  alpha: number,
  st: DType,
  bindings: Record<number, Tensor>,
  dt = st,
) {
  const gpu = Object.values(bindings)[0].gpu;
  const buffers: Record<number, GPUBuffer> = {};
  for (const [k, t] of Object.entries(bindings)) buffers[Number(k)] = t.buffer;
  gpu.dispatch(
    { file: "elementwise", entry, types: { ST: st, DT: dt } },
    buffers,
    grid1d(n, 256, gpu.device.limits.maxComputeWorkgroupsPerDimension),
    new Uniforms().u32(n).f32(alpha),
  );
}

function sameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.size !== b.size || a.dtype !== b.dtype) {
    throw new Error(`${op}: [${a.shape}] ${a.dtype} and [${b.shape}] ${b.dtype} differ`);
  }
}

/** a + b, elementwise (same shape and dtype). */
export function add(a: Tensor, b: Tensor): Tensor {
  sameShape("add", a, b);
  const out = Tensor.empty(a.gpu, a.shape, a.dtype);
  launch("add", a.size, 0, a.dtype, { 1: a, 2: b, 3: out });
  return record(out, "add", [a, b], (g) => [g, g]);
}

/** a * b, elementwise (same shape and dtype). */
export function mul(a: Tensor, b: Tensor): Tensor {
  sameShape("mul", a, b);
  const out = Tensor.empty(a.gpu, a.shape, a.dtype);
  launch("mul", a.size, 0, a.dtype, { 1: a, 2: b, 3: out });
  return record(out, "mul", [a, b], (g, needs) => [needs[0] ? mul(g, b) : null, needs[1] ? mul(g, a) : null]);
}

/** alpha · a. */
export function scale(a: Tensor, alpha: number): Tensor {
  const out = Tensor.empty(a.gpu, a.shape, a.dtype);
  launch("scale", a.size, alpha, a.dtype, { 1: a, 3: out });
  return record(out, "scale", [a], (g) => [scale(g, alpha)]);
}

/** Converts between f32 and f16 storage. Gradients flow back as f32. */
export function cast(a: Tensor, dtype: DType): Tensor {
  const out = Tensor.empty(a.gpu, a.shape, dtype);
  launch("convert", a.size, 0, a.dtype, { 1: a, 5: out }, dtype);
  return record(out, "cast", [a], (g) => [g.dtype === a.dtype ? g : cast(g, a.dtype)]);
}

/** Writes `value` into every element of `t` in place (not recorded). Tests poison outputs with NaN. */
export function fill(t: Tensor, value: number): Tensor {
  launch("fill", t.size, value, t.dtype, { 3: t });
  return t;
}

/** In place `acc += alpha · b` (not recorded; optimizer and gradient bookkeeping). */
export function axpy(acc: Tensor, b: Tensor, alpha = 1): Tensor {
  sameShape("axpy", acc, b);
  launch("axpy", acc.size, alpha, acc.dtype, { 4: acc, 2: b });
  return acc;
}

/** Same data, new shape; the gradient is reshaped back. */
export function reshape(a: Tensor, shape: readonly number[]): Tensor {
  const out = a.reshape(shape);
  return record(out, "reshape", [a], (g) => [g.reshape(a.shape)]);
}

/** a · s[0] where `s` is a [1] tensor on the GPU. Recorded for `a` only (s is treated as a constant). */
export function mulScalar(a: Tensor, s: Tensor): Tensor {
  if (s.size !== 1 || s.dtype !== a.dtype) {
    throw new Error(`mulScalar: scalar must be [1] ${a.dtype}, got [${s.shape}] ${s.dtype}`);
  }
  const out = Tensor.empty(a.gpu, a.shape, a.dtype);
  launch("mul_scalar", a.size, 0, a.dtype, { 1: a, 2: s, 3: out });
  return record(out, "mul_scalar", [a], (g) => [mulScalar(g, s)]);
}

/** 1 / max(count, 1) elementwise (f32): the denominator of a mean whose count lives on the GPU. */
export function invCount(count: Tensor): Tensor {
  const out = Tensor.empty(count.gpu, count.shape, count.dtype);
  launch("inv_count", count.size, 0, count.dtype, { 1: count, 3: out });
  return out;
}
