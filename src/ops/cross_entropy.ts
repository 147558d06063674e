/**
 * Softmax cross-entropy over f32 logits [N, V] with i32 labels, PyTorch `F.cross_entropy(...,
 * ignore_index=-100, reduction="mean")` semantics, everything on the GPU (no readback).
 *
 * Two layers: `crossEntropy` is the recorded op for logits that fit in memory; `countValid`,
 * `crossEntropyRows`, `gradScaleOf` and `lossMean` are the unrecorded pieces a chunked LM-head loss is
 * built from (logits of a chunk of rows become per-row losses and, in place, dlogits, then are dropped).
 *
 * Differences from PyTorch, both forced by "no readback": no valid label gives loss 0 (PyTorch: NaN),
 * and a label outside [0, V) that is not ignoreIndex gives a NaN row loss (PyTorch raises) with a zero
 * gradient row. countValid counts such a label (it only compares with ignoreIndex).
 */
import { Uniforms } from "../gpu/mod.ts";
import { Tensor } from "../tensor/mod.ts";
import { record } from "../autograd/mod.ts";
import { rowGrid, rowSpec, rowWorkgroup } from "./reduce.ts";

const IGNORE = -100;
const SCALAR_WG = 256;

interface Params {
  rows?: number;
  v?: number;
  ignore?: number;
  rowOffset?: number;
  n?: number;
  useGrad?: boolean;
  alpha?: number;
}

function params(o: Params): Uniforms {
  return new Uniforms().u32(o.rows ?? 0).u32(o.v ?? 0).i32(o.ignore ?? IGNORE).u32(o.rowOffset ?? 0)
    .u32(o.n ?? 0).u32(o.useGrad ? 1 : 0).f32(o.alpha ?? 1);
}

function check(cond: boolean, msg: string): void {
  if (!cond) throw new Error(msg);
}

function rowsOf(logits: Tensor): { rows: number; v: number } {
  check(logits.dtype === "f32", `crossEntropy: logits must be f32, got ${logits.dtype}`);
  check(
    logits.shape.length >= 1 && logits.shape[logits.shape.length - 1] > 0,
    `crossEntropy: bad logits [${logits.shape}]`,
  );
  check(logits.size < 2 ** 32, `crossEntropy: logits [${logits.shape}] exceed 2^32 − 1 elements; use chunks`);
  const v = logits.shape[logits.shape.length - 1];
  return { rows: logits.size / v, v };
}

/** Options of crossEntropyRows. */
export interface CrossEntropyRowsOptions {
  /** Label value whose rows contribute nothing (default −100, as PyTorch). */
  ignoreIndex?: number;
  /** f32 [1] GPU scalar (e.g. gradScaleOf(count)): when given, logits are OVERWRITTEN in place by
   *  (softmax − onehot) · gradScale[0], 0 on ignored rows. */
  gradScale?: Tensor;
  /** u32 [≥ rowOffset + n]: 1 where argmax(row) == label (first maximum, like torch.argmax), else 0. */
  correctOut?: Tensor;
  /** Logits row r uses labels[rowOffset + r] and writes lossOut / correctOut at rowOffset + r, so a
   *  chunk of rows can use the whole sequence's label and loss tensors (default 0). */
  rowOffset?: number;
}

/** Records the row kernel; `dst` receives the gradient (the logits themselves for in-place). */
function launchRows(
  logits: Tensor,
  labels: Tensor,
  lossOut: Tensor,
  o: CrossEntropyRowsOptions & { dst?: Tensor },
): void {
  const { rows, v } = rowsOf(logits);
  const off = o.rowOffset ?? 0;
  check(Number.isInteger(off) && off >= 0, `crossEntropyRows: bad rowOffset ${off}`);
  check(labels.dtype === "i32", `crossEntropyRows: labels must be i32, got ${labels.dtype}`);
  check(
    labels.size >= off + rows,
    `crossEntropyRows: labels [${labels.shape}] too short for rows ${off}..${off + rows}`,
  );
  check(
    lossOut.dtype === "f32" && lossOut.size >= off + rows,
    `crossEntropyRows: lossOut [${lossOut.shape}] ${lossOut.dtype} must be f32 with ≥ ${off + rows} elements`,
  );
  const scale = o.gradScale;
  if (scale) {
    check(scale.dtype === "f32" && scale.size >= 1, "crossEntropyRows: gradScale must be an f32 [1] tensor");
  }
  const correct = o.correctOut;
  if (correct) {
    check(
      correct.dtype === "u32" && correct.size >= off + rows,
      `crossEntropyRows: correctOut must be u32 with ≥ ${off + rows} elements`,
    );
  }
  if (rows === 0) return;
  const gpu = logits.gpu;
  const vec4 = v % 4 === 0;
  const dst = o.dst ?? logits;
  // Buffers behind a false override are still in the layout: bind stand-ins (never touched).
  const bindings: Record<number, GPUBuffer> = {
    [vec4 ? 7 : 1]: logits.buffer,
    2: labels.buffer,
    3: lossOut.buffer,
    4: (scale ?? labels).buffer,
    [vec4 ? 8 : 5]: dst.buffer,
    6: (correct ?? lossOut).buffer,
  };
  gpu.dispatch(
    rowSpec(gpu, "cross_entropy", vec4 ? "rows4" : "rows", {
      WG: rowWorkgroup(v),
      WRITE_GRAD: scale ? 1 : 0,
      WANT_ARGMAX: correct ? 1 : 0,
    }),
    bindings,
    rowGrid(gpu, rows),
    params({ rows, v, ignore: o.ignoreIndex ?? IGNORE, rowOffset: off }),
  );
}

/**
 * For the rows of a chunk: lossOut[rowOffset + r] = logsumexp(row r) − logit[label] (0 on ignored
 * rows); with `gradScale`, logits become (softmax − onehot) · gradScale[0] in place; with
 * `correctOut`, argmax-correct flags. Not recorded.
 *
 * @example
 * crossEntropyRows(chunkLogits, labels, rowLoss, { rowOffset: r0, gradScale: gradScaleOf(count) });
 */
export function crossEntropyRows(
  logits: Tensor,
  labels: Tensor,
  lossOut: Tensor,
  opts: CrossEntropyRowsOptions = {},
): void {
  launchRows(logits, labels, lossOut, opts);
}

/**
 * Number of labels ≠ ignoreIndex, as f32 (exact up to 2^24), into a new [1] GPU tensor.
 *
 * @example
 * const count = countValid(labels); // stays on the GPU
 */
export function countValid(labels: Tensor, ignoreIndex = IGNORE): Tensor {
  check(labels.dtype === "i32", `countValid: labels must be i32, got ${labels.dtype}`);
  const gpu = labels.gpu;
  const out = Tensor.empty(gpu, [1]);
  gpu.dispatch(
    rowSpec(gpu, "cross_entropy", "count_valid", { WG: SCALAR_WG }),
    { 2: labels.buffer, 9: out.buffer },
    [1],
    params({ n: labels.size, ignore: ignoreIndex }),
  );
  return out;
}

/**
 * alpha · (grad ? grad[0] : 1) / count[0] as a [1] GPU tensor, 0 when count is 0: the `gradScale`
 * of crossEntropyRows for a mean loss whose upstream gradient is `grad`.
 *
 * @example
 * const scale = gradScaleOf(countValid(labels)); // 1 / count
 */
export function gradScaleOf(count: Tensor, opts: { grad?: Tensor; alpha?: number } = {}): Tensor {
  const gpu = count.gpu;
  const out = Tensor.empty(gpu, [1]);
  gpu.dispatch(
    rowSpec(gpu, "cross_entropy", "make_scale", {}),
    { 10: count.buffer, 11: (opts.grad ?? count).buffer, 9: out.buffer },
    [1],
    params({ useGrad: opts.grad !== undefined, alpha: opts.alpha ?? 1 }),
  );
  return out;
}

/**
 * Σ rowLoss / count[0] as a [1] GPU tensor, 0 when count is 0 (fixed summation order). Not recorded.
 *
 * @example
 * const loss = lossMean(rowLoss, countValid(labels));
 */
export function lossMean(rowLoss: Tensor, count: Tensor): Tensor {
  check(rowLoss.dtype === "f32" && count.dtype === "f32", "lossMean: rowLoss and count must be f32");
  const gpu = rowLoss.gpu;
  const out = Tensor.empty(gpu, [1]);
  gpu.dispatch(
    rowSpec(gpu, "cross_entropy", "finish", { WG: SCALAR_WG }),
    { 3: rowLoss.buffer, 10: count.buffer, 9: out.buffer },
    [1],
    params({ n: rowLoss.size }),
  );
  return out;
}

/**
 * Mean cross-entropy of logits [N, V] (f32) against labels [N] (i32), ignoring ignoreIndex rows, as a
 * [1] GPU tensor. Recorded: dlogits = (softmax − onehot) · g / count on valid rows, 0 elsewhere.
 *
 * @example
 * const loss = crossEntropy(logits, labels); // [1]
 * backward(loss);
 */
export function crossEntropy(logits: Tensor, labels: Tensor, opts: { ignoreIndex?: number } = {}): Tensor {
  const { rows } = rowsOf(logits);
  check(labels.size === rows, `crossEntropy: ${rows} logits rows but labels [${labels.shape}]`);
  const ignoreIndex = opts.ignoreIndex ?? IGNORE;
  const gpu = logits.gpu;
  const count = countValid(labels, ignoreIndex);
  const rowLoss = Tensor.empty(gpu, [rows]);
  launchRows(logits, labels, rowLoss, { ignoreIndex });
  const loss = lossMean(rowLoss, count);
  rowLoss.dispose();
  count.dispose();
  return record(loss, "crossEntropy", [logits], (g) => {
    // Recomputed rather than saved, so nothing but the inputs must outlive the forward's scope.
    const c = countValid(labels, ignoreIndex);
    const scale = gradScaleOf(c, { grad: g });
    const dlogits = Tensor.empty(gpu, logits.shape);
    const scratch = Tensor.empty(gpu, [rows]);
    launchRows(logits, labels, scratch, { ignoreIndex, gradScale: scale, dst: dlogits });
    for (const t of [c, scale, scratch]) t.dispose();
    return [dlogits];
  });
}
