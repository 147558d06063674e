/**
 * RMSNorm as Hugging Face's LlamaRMSNorm: y = weight ⊙ x / sqrt(mean(x²) + eps) over the last axis,
 * math in f32 whatever the weight's storage (f32 or f16). Kernels: kernels/rmsnorm.wgsl.
 *
 * Backward: dx = (w⊙g)/r − x·Σ(w⊙g⊙x)/(C·r³) per row (one workgroup per row), and — only when the
 * weight is trainable — dweight = Σ_rows g⊙x/r as a two-stage column reduction (row chunks, then the
 * chunks in order), which is deterministic without float atomics.
 */
import { type DType, type KernelSpec, Uniforms } from "../gpu/mod.ts";
import { Tensor } from "../tensor/mod.ts";
import { grid1d, record } from "../autograd/mod.ts";
import { rowSpec } from "./reduce.ts";

/** Row-chunk count for the dweight reduction: enough workgroups to fill a GPU, few partial rows. */
const MAX_CHUNKS = 256;
const MIN_ROWS_PER_CHUNK = 16;

interface Launch {
  x: Tensor;
  w: Tensor;
  rows: number;
  cols: number;
  eps: number;
  vec: boolean;
}

function params(l: Launch, chunk = 0, nchunks = 0): Uniforms {
  return new Uniforms().u32(l.rows).u32(l.cols).f32(l.eps).u32(chunk).u32(nchunks);
}

/**
 * Every entry is built from rmsnorm.wgsl linked with the block-reduction library the device supports
 * (subgroup builtins or workgroup memory), see rowSpec(). Per-row entries get WG sized from C.
 */
function spec(l: Launch, entry: string, perRow = false): KernelSpec {
  const name = l.vec ? `${entry}4` : entry;
  const s = rowSpec(l.x.gpu, "rmsnorm", name, perRow ? { WG: rowWorkgroup(l) } : {});
  return { ...s, types: { WT: l.w.dtype as DType } };
}

/**
 * Threads per row: enough that each keeps at most 4 vec4s of its row in registers (the kernel's
 * CACHE), a power of two in [64, 1024] — 256 for C = 4096, 512 for C = 8192.
 */
function rowWorkgroup(l: Launch): number {
  const limits = l.x.gpu.device.limits;
  const max = Math.min(1024, limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX);
  const want = 2 ** Math.ceil(Math.log2(Math.max(1, Math.ceil((l.vec ? l.cols / 4 : l.cols) / 4))));
  return Math.min(max, Math.max(64, want));
}

/** Binding numbers: scalar entries use 1…10, vec4 entries 11…20 (see the kernel header). */
function at(l: Launch, slot: number): number {
  return l.vec && slot !== 6 && slot !== 8 ? slot + 10 : slot;
}

/**
 * RMS-normalises the last axis of `x` and scales by `weight`.
 *
 * @example
 * const h = rmsNorm(x, layer.inputLayernorm, 1e-5); // x [B, T, C] f32, weight [C] f16 → [B, T, C] f32
 */
export function rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  const cols = x.shape[x.shape.length - 1] ?? 0;
  if (x.dtype !== "f32" || x.shape.length < 1) {
    throw new Error(`rmsNorm: x must be f32 [..., C], got [${x.shape}] ${x.dtype}`);
  }
  if (
    weight.shape.length !== 1 || weight.shape[0] !== cols ||
    (weight.dtype !== "f32" && weight.dtype !== "f16")
  ) {
    throw new Error(`rmsNorm: weight must be [${cols}] f32|f16, got [${weight.shape}] ${weight.dtype}`);
  }
  const gpu = x.gpu;
  const y = Tensor.empty(gpu, x.shape, "f32");
  const rows = cols === 0 ? 0 : x.size / cols;
  if (rows === 0) return y;
  const l: Launch = { x, w: weight, rows, cols, eps, vec: cols % 4 === 0 };
  const max = gpu.device.limits.maxComputeWorkgroupsPerDimension;
  gpu.dispatch(
    spec(l, "forward", true),
    { [at(l, 1)]: x.buffer, [at(l, 2)]: weight.buffer, [at(l, 3)]: y.buffer },
    grid1d(rows, 1, max),
    params(l),
  );

  return record(y, "rmsNorm", [x, weight], (g, needs) => {
    // dx comes with rinv per row, which dweight needs too: run it even when only dweight is wanted.
    const dx = Tensor.empty(gpu, x.shape, "f32");
    const rinv = Tensor.empty(gpu, [rows], "f32");
    gpu.dispatch(
      spec(l, "backward", true),
      {
        [at(l, 1)]: x.buffer,
        [at(l, 2)]: weight.buffer,
        [at(l, 4)]: g.buffer,
        [at(l, 5)]: dx.buffer,
        6: rinv.buffer,
      },
      grid1d(rows, 1, max),
      params(l),
    );
    const dw = needs[1] ? weightGrad(l, g, rinv) : null;
    rinv.dispose();
    if (needs[0]) return [dx, dw];
    dx.dispose();
    return [null, dw];
  });
}

/** dweight [C] = Σ_rows g ⊙ x · rinv, in row chunks then over chunks (fixed order). */
function weightGrad(l: Launch, g: Tensor, rinv: Tensor): Tensor {
  const gpu = g.gpu;
  const nchunks = Math.min(MAX_CHUNKS, Math.ceil(l.rows / MIN_ROWS_PER_CHUNK));
  const chunk = Math.ceil(l.rows / nchunks);
  const dw = Tensor.empty(gpu, [l.cols], "f32");
  // With one chunk the partial sums are the answer: write them straight into dw.
  const part = nchunks === 1 ? dw : Tensor.empty(gpu, [nchunks, l.cols], "f32");
  const u = params(l, chunk, nchunks);
  gpu.dispatch(
    spec(l, "dw_partial"),
    {
      [at(l, 1)]: l.x.buffer,
      [at(l, 4)]: g.buffer,
      6: rinv.buffer,
      [at(l, 7)]: part.buffer,
    },
    [Math.ceil((l.vec ? l.cols / 4 : l.cols) / 64), nchunks],
    u,
  );
  if (part !== dw) {
    gpu.dispatch(
      { ...spec(l, "dw_sum"), entry: "dw_sum" },
      {
        7: part.buffer,
        8: dw.buffer,
      },
      [Math.ceil(l.cols / 64)],
      u,
    );
    part.dispose();
  }
  return dw;
}

/**
 * The residual add fused into the next RMSNorm (decode): s = x + d and y = rmsNorm(s, weight, eps) in
 * one launch. x, d f32 [..., C] of one shape; returns both, f32. Not recorded for autograd.
 *
 * @example
 * const { sum, y } = addRmsNorm(x, attnOut, layer.postNorm, eps); // x ← sum, MLP input y
 */
export function addRmsNorm(x: Tensor, d: Tensor, weight: Tensor, eps: number): { sum: Tensor; y: Tensor } {
  const cols = x.shape[x.shape.length - 1] ?? 0;
  if (x.dtype !== "f32" || d.dtype !== "f32" || x.shape.join() !== d.shape.join() || x.shape.length < 1) {
    throw new Error(
      `addRmsNorm: x [${x.shape}] ${x.dtype} and d [${d.shape}] ${d.dtype} must be f32 of one shape`,
    );
  }
  if (
    weight.shape.length !== 1 || weight.shape[0] !== cols ||
    (weight.dtype !== "f32" && weight.dtype !== "f16")
  ) {
    throw new Error(`addRmsNorm: weight must be [${cols}] f32|f16, got [${weight.shape}] ${weight.dtype}`);
  }
  const gpu = x.gpu;
  const sum = Tensor.empty(gpu, x.shape, "f32");
  const y = Tensor.empty(gpu, x.shape, "f32");
  const rows = cols === 0 ? 0 : x.size / cols;
  if (rows === 0) return { sum, y };
  const l: Launch = { x, w: weight, rows, cols, eps, vec: cols % 4 === 0 };
  gpu.dispatch(
    spec(l, "add_forward", true),
    {
      [at(l, 1)]: x.buffer,
      [at(l, 2)]: weight.buffer,
      [at(l, 3)]: y.buffer,
      [at(l, 9)]: d.buffer,
      [at(l, 10)]: sum.buffer,
    },
    grid1d(rows, 1, gpu.device.limits.maxComputeWorkgroupsPerDimension),
    params(l),
  );
  return { sum, y };
}
