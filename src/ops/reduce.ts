/**
 * Deterministic reductions whose results stay on the GPU: sum and mean (recorded), the global squared
 * norm of many tensors (gradient clipping) and column sums (bias gradients). Fixed chunking and fixed
 * combination order, never float atomics, so a run repeats bit for bit on one device.
 *
 * Also home of rowSpec(), which every one-workgroup-per-row kernel (softmax, cross-entropy, these
 * sums) uses to link its file with the block-reduction library the device supports.
 */
import { type Gpu, type KernelSpec, Uniforms } from "../gpu/mod.ts";
import { Tensor } from "../tensor/mod.ts";
import { grid1d, record } from "../autograd/mod.ts";

const WG = 256;
const ITEMS = 16;
/** Elements (or vec4s) per partial sum. */
const CHUNK = WG * ITEMS;

/**
 * Kernel spec for `kernels/<file>.wgsl` followed by `row_reduce_subgroup.wgsl` when the device has
 * subgroups, else `row_reduce_workgroup.wgsl` (block_sum, block_max, block_min_u32, block_max_sum).
 * A module that mentions a subgroup builtin fails to build without the feature, hence two modules.
 *
 * @example
 * gpu.dispatch(rowSpec(gpu, "softmax", "fwd4", { WG: 256 }), { 5: x.buffer, 6: y.buffer }, [rows], u);
 */
export function rowSpec(
  gpu: Gpu,
  file: string,
  entry: string,
  overrides: Record<string, number> = {},
): KernelSpec {
  const lib = gpu.info.subgroups ? "row_reduce_subgroup" : "row_reduce_workgroup";
  return { file, libs: [lib], entry, overrides };
}

/** Workgroup size for one-workgroup-per-row kernels over rows of `v` elements. */
export function rowWorkgroup(v: number): number {
  return v >= 4096 ? 256 : v >= 512 ? 128 : 64;
}

/** Grid with one workgroup per row, folded into y past the per-dimension limit. */
export function rowGrid(gpu: Gpu, rows: number): [number, number] {
  return grid1d(rows, 1, gpu.device.limits.maxComputeWorkgroupsPerDimension);
}

function requireF32(op: string, t: Tensor): void {
  if (t.dtype !== "f32") throw new Error(`${op}: expects f32, got ${t.dtype} [${t.shape}]`);
}

function params(
  o: {
    n?: number;
    base?: number;
    count?: number;
    scale?: number;
    rows?: number;
    cols?: number;
    accumulate?: boolean;
  },
) {
  return new Uniforms().u32(o.n ?? 0).u32(o.base ?? 0).u32(o.count ?? 0).f32(o.scale ?? 1)
    .u32(o.rows ?? 0).u32(o.cols ?? 0).u32(o.accumulate ? 1 : 0);
}

/** Number of partial sums `x` contributes, and whether it is read as vec4. */
function partialPlan(n: number): { groups: number; vec4: boolean } {
  const vec4 = n >= 16;
  return { groups: Math.ceil((vec4 ? Math.floor(n / 4) : n) / CHUNK), vec4 };
}

/** Records partial sums of f(x) into partials[base …]. */
function partialSums(x: Tensor, partials: Tensor, base: number, square: boolean): number {
  const gpu = x.gpu;
  const { groups, vec4 } = partialPlan(x.size);
  if (groups === 0) return 0;
  const spec = rowSpec(gpu, "reduce", vec4 ? "partial_sums4" : "partial_sums", {
    WG,
    ITEMS,
    SQUARE: square ? 1 : 0,
  });
  const bindings: Record<number, GPUBuffer | { buffer: GPUBuffer; size: number }> = {
    1: x.buffer,
    3: partials.buffer,
  };
  // The vec4 view covers whole vec4s only; the kernel reads the tail through the scalar binding.
  if (vec4) bindings[2] = { buffer: x.buffer, size: Math.floor(x.size / 4) * 16 };
  gpu.dispatch(
    spec,
    bindings,
    grid1d(groups, 1, gpu.device.limits.maxComputeWorkgroupsPerDimension),
    params({ n: x.size, base }),
  );
  return groups;
}

/** Records out[0] = scale · Σ f(src[0 … count)). */
function finishSum(src: Tensor, count: number, out: Tensor, scale: number, square: boolean): void {
  const spec = rowSpec(src.gpu, "reduce", "finish_sum", { WG, ITEMS, SQUARE: square ? 1 : 0 });
  src.gpu.dispatch(spec, { 3: src.buffer, 4: out.buffer }, [1], params({ count, scale }));
}

/** out[0] = scale · Σ x, through partial sums when x is longer than one chunk. */
function reduceInto(x: Tensor, out: Tensor, scale: number): void {
  if (x.size <= CHUNK) return finishSum(x, x.size, out, scale, false);
  const partials = Tensor.empty(x.gpu, [partialPlan(x.size).groups]);
  const groups = partialSums(x, partials, 0, false);
  finishSum(partials, groups, out, scale, false);
  partials.dispose(); // safe: later work that reuses the buffer is recorded after these reads
}

/** out = scale · g[0] everywhere, shaped like `shape` (backward of sum and mean). */
function broadcast(g: Tensor, shape: readonly number[], scale: number): Tensor {
  const gpu = g.gpu;
  const out = Tensor.empty(gpu, shape);
  if (out.size === 0) return out;
  gpu.dispatch(
    rowSpec(gpu, "reduce", "broadcast", { WG, ITEMS }),
    { 5: g.buffer, 4: out.buffer },
    grid1d(out.size, WG, gpu.device.limits.maxComputeWorkgroupsPerDimension),
    params({ n: out.size, scale }),
  );
  return out;
}

function scalarReduce(op: string, x: Tensor, scale: number): Tensor {
  requireF32(op, x);
  const out = Tensor.empty(x.gpu, [1]);
  reduceInto(x, out, scale);
  return record(out, op, [x], (g) => [broadcast(g, x.shape, scale)]);
}

/**
 * Σ of all elements of an f32 tensor, as a [1] GPU tensor (fixed order; no readback). Recorded:
 * the gradient is the incoming scalar broadcast to x's shape.
 *
 * @example
 * const total = sum(x); // [1]
 */
export function sum(x: Tensor): Tensor {
  return scalarReduce("sum", x, 1);
}

/**
 * Mean of all elements of an f32 tensor, as a [1] GPU tensor. Recorded (gradient g / n everywhere).
 * An empty tensor gives NaN, like PyTorch.
 *
 * @example
 * const m = mean(x); // [1]
 */
export function mean(x: Tensor): Tensor {
  return scalarReduce("mean", x, 1 / x.size);
}

/**
 * Σ over all tensors of Σ x², into a [1] f32 GPU tensor: the squared global gradient norm for
 * clipping. One partial-sum launch per tensor into one shared partials buffer, then one final
 * reduce; no readback, no atomics. Not recorded.
 *
 * @example
 * const norm2 = sumSquares(params.map((p) => p.grad!)); // [1]; read it only every logging step
 */
export function sumSquares(tensors: Tensor[]): Tensor {
  if (tensors.length === 0) throw new Error("sumSquares: no tensors");
  const gpu = tensors[0].gpu;
  for (const t of tensors) requireF32("sumSquares", t);
  const total = tensors.reduce((a, t) => a + partialPlan(t.size).groups, 0);
  const partials = Tensor.empty(gpu, [Math.max(1, total)]);
  let base = 0;
  for (const t of tensors) base += partialSums(t, partials, base, true);
  const out = Tensor.empty(gpu, [1]);
  finishSum(partials, base, out, 1, false);
  partials.dispose();
  return out;
}

/**
 * Column sums of x [R, C] (any rank: the last dim is C): out[c] = Σ_r x[r, c], or out[c] += … when
 * `accumulate` (bias gradients accumulate over micro-batches). Fixed order. Not recorded.
 *
 * @example
 * sumRows(dy, bias.grad!, true); // dy [T, C] → bias.grad [C] +=
 */
export function sumRows(x: Tensor, out: Tensor, accumulate = false): void {
  requireF32("sumRows", x);
  requireF32("sumRows", out);
  const cols = x.shape.length ? x.shape[x.shape.length - 1] : 1;
  if (out.size !== cols) throw new Error(`sumRows: x [${x.shape}] needs out [${cols}], got [${out.shape}]`);
  if (cols === 0) return;
  const gpu = x.gpu;
  const rows = x.size / cols;
  gpu.dispatch(
    rowSpec(gpu, "reduce", "sum_rows", { WG, ITEMS }),
    { 1: x.buffer, 4: out.buffer },
    grid1d(cols, 64, gpu.device.limits.maxComputeWorkgroupsPerDimension),
    params({ rows, cols, accumulate }),
  );
}
