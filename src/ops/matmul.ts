/**
 * Matrix multiply: C = alpha·op(A)·op(B) (+ bias), batched, f32 or f16 storage for A and B, f32 out.
 *
 * Paths (picked by shape in matmul_kernels.ts): the GEMVs (src/ops/gemv.ts) for A·Bᵀ with few rows
 * (decode), the register-tiled kernel (kernels/matmul.wgsl) otherwise, with a narrow tile when M is
 * small and a split-K pass when the output has too few tiles to fill the GPU (LoRA rank-r products).
 * Backward rules are written with matmul itself (all four transpose combinations, batch, shared B).
 */
import { Tensor } from "../tensor/mod.ts";
import { record } from "../autograd/mod.ts";
import { colsum, gemm } from "./matmul_kernels.ts";
import { gemvFits, gemvMulti, type GemvNorm, gemvNormFits, gemvSwiglu } from "./gemv.ts";
import { rmsNorm } from "./rmsnorm.ts";

export { lastMatmulPath, type MatmulTuning, setMatmulTuning } from "./matmul_kernels.ts";
export type { GemvNorm } from "./gemv.ts";

/**
 * x and the norm the fused op folds in: for one row the GEMV normalises itself (no rmsNorm launch),
 * otherwise rmsNorm runs first and the GEMV reads its output.
 */
function normed(x: Tensor, norm: GemvNorm | null): { x: Tensor; norm: GemvNorm | null; tmp: Tensor | null } {
  if (!norm || gemvNormFits(x, norm)) return { x, norm, tmp: null };
  const y = rmsNorm(x, norm.weight, norm.eps);
  return { x: y, norm: null, tmp: y };
}

/**
 * Whether fusedLinear / gateUpSwiglu accept x [..., K] f32 with these [Ni, K] weights (one weight
 * dtype, K % 8 == 0 for f16 or % 4 for f32, every matrix but the last a multiple of 4 rows).
 */
export function canFuseLinears(x: Tensor, weights: Tensor[]): boolean {
  return gemvFits(x, weights);
}

/** Whether gateUpSwiglu accepts x with gate and up (one shape and dtype; F need not be a multiple of 4). */
export function canFuseGateUp(x: Tensor, gate: Tensor, up: Tensor): boolean {
  return gemvFits(x, [gate]) && gate.dtype === up.dtype && gate.shape.join() === up.shape.join();
}

/**
 * Several nn.Linear products of one input side by side, one launch (decode's q/k/v): x [..., K] f32,
 * weights [Ni, K] (1 to 3, f16 or f32), biases one per weight or null → [..., ΣNi] f32, columns in
 * weight order. Reads each weight once per row of x (meant for one row). With `norm` the product
 * reads rmsNorm(x, norm.weight, norm.eps) instead of x (folded into the GEMV for one row, so decode
 * needs no norm launch). Not recorded for autograd.
 *
 * @example
 * if (canFuseLinears(h, [wq, wk, wv])) qkv = fusedLinear(h, [wq, wk, wv], [bq, bk, bv]); // Qwen2
 * const qkv2 = fusedLinear(x, [wq, wk, wv], null, { weight: inputNorm, eps: 1e-6 }); // norm folded in
 */
export function fusedLinear(
  x: Tensor,
  weights: Tensor[],
  biases: Tensor[] | null = null,
  norm: GemvNorm | null = null,
): Tensor {
  if (!gemvFits(x, weights)) {
    throw new Error(
      `fusedLinear: x [${x.shape}] ${x.dtype} and weights ${weights.map((w) => `[${w.shape}] ${w.dtype}`)} ` +
        "do not fit (check canFuseLinears)",
    );
  }
  const N = weights.reduce((a, w) => a + w.shape[0], 0);
  const out = Tensor.empty(x.gpu, [...x.shape.slice(0, -1), N], "f32");
  const n = normed(x, norm);
  gemvMulti(n.x, weights, out, { biases, norm: n.norm });
  n.tmp?.dispose();
  return out;
}

/**
 * The Llama MLP's first half in one launch: silu(x·gateᵀ + bg) ⊙ (x·upᵀ + bu), x [..., K] f32, gate and
 * up [F, K] → [..., F] f32. Reads the weights once per row of x (decode). `norm` as fusedLinear's.
 * Not recorded for autograd.
 *
 * @example
 * const a = gateUpSwiglu(h, gateProj.weight, upProj.weight); // then down_proj
 */
export function gateUpSwiglu(
  x: Tensor,
  gate: Tensor,
  up: Tensor,
  biases: [Tensor, Tensor] | null = null,
  norm: GemvNorm | null = null,
): Tensor {
  if (!canFuseGateUp(x, gate, up)) {
    throw new Error(
      `gateUpSwiglu: x [${x.shape}] ${x.dtype}, gate [${gate.shape}] ${gate.dtype}, up [${up.shape}] ${up.dtype} do not fit`,
    );
  }
  const out = Tensor.empty(x.gpu, [...x.shape.slice(0, -1), gate.shape[0]], "f32");
  const n = normed(x, norm);
  gemvSwiglu(n.x, gate, up, out, biases, n.norm);
  n.tmp?.dispose();
  return out;
}

/** Layout and epilogue options of matmul / matmulInto. */
export interface MatmulOptions {
  /** Use Aᵀ: A stored [..., K, M]. */
  transA?: boolean;
  /** Use Bᵀ: B stored [..., N, K] (the nn.Linear weight layout [out, in]). */
  transB?: boolean;
  /** Scale of the product; default 1. */
  alpha?: number;
  /** [N], f32 or f16, added to every output row. */
  bias?: Tensor;
}

/** Checked shapes of op(A)·op(B): batch dims, M, N, K and whether B is shared. */
interface Plan {
  batchDims: number[];
  batch: number;
  M: number;
  N: number;
  K: number;
  sharedB: boolean;
}

function plan(a: Tensor, b: Tensor, o: MatmulOptions): Plan {
  const what = () => `matmul: A [${a.shape}]${o.transA ? "ᵀ" : ""} · B [${b.shape}]${o.transB ? "ᵀ" : ""}`;
  for (const t of [a, b]) {
    if (t.dtype !== "f32" && t.dtype !== "f16") throw new Error(`${what()}: ${t.dtype} is not a float type`);
  }
  if (a.shape.length < 2 || b.shape.length < 2) throw new Error(`${what()}: operands must be ≥ 2-D`);
  const batchDims = a.shape.slice(0, -2);
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const [M, K] = o.transA ? [ac, ar] : [ar, ac];
  const [Kb, N] = o.transB ? [bc, br] : [br, bc];
  if (K !== Kb) throw new Error(`${what()}: inner dimensions ${K} and ${Kb} differ`);
  const sharedB = b.shape.length === 2;
  if (!sharedB && b.shape.slice(0, -2).join(",") !== batchDims.join(",")) {
    throw new Error(`${what()}: B's batch dims must match A's or B must be 2-D`);
  }
  if (o.bias && (o.bias.size !== N || (o.bias.dtype !== "f32" && o.bias.dtype !== "f16"))) {
    throw new Error(`${what()}: bias must be [${N}] f32/f16, got [${o.bias.shape}] ${o.bias.dtype}`);
  }
  return { batchDims, batch: batchDims.reduce((x, y) => x * y, 1), M, N, K, sharedB };
}

/** Runs out = alpha·op(A)·op(B) + beta·out + bias for a checked plan, folding a shared-B batch into M. */
function launch(out: Tensor, a: Tensor, b: Tensor, p: Plan, o: MatmulOptions, beta: number): void {
  const fold = p.sharedB && !o.transA;
  gemm({
    a,
    b,
    out,
    batch: fold ? 1 : p.batch,
    M: fold ? p.batch * p.M : p.M,
    N: p.N,
    K: p.K,
    strideA: p.M * p.K,
    strideB: p.sharedB ? 0 : p.K * p.N,
    transA: !!o.transA,
    transB: !!o.transB,
    alpha: o.alpha ?? 1,
    beta,
    bias: o.bias,
  });
}

/**
 * C = alpha·op(A)·op(B) (+ bias), f32 output [...batch, M, N]. A [...batch, M, K] (row-major), B [K, N]
 * shared by every batch, or [...batch, K, N] matching A's batch dims. A and B may each be f32 or f16
 * (storage only; f32 accumulation). Recorded for autograd: dA, dB, dbias — each only when needed.
 *
 * @example
 * const y = matmul(x, weight, { transB: true, bias }); // nn.Linear: x [B, T, in], weight [out, in]
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const p = plan(a, b, opts);
  const out = Tensor.empty(a.gpu, [...p.batchDims, p.M, p.N], "f32");
  launch(out, a, b, p, opts, 0);
  const inputs = opts.bias ? [a, b, opts.bias] : [a, b];
  return record(out, "matmul", inputs, (g, needs) => {
    const [dA, dB] = matmulBackward(a, b, g, p, opts, needs);
    const dBias = opts.bias && needs[2] ? colsum(g, p.batch * p.M, p.N, opts.bias.shape) : null;
    return [dA, dB, dBias];
  });
}

/**
 * Not recorded: out = alpha·op(A)·op(B) + beta·out (+ bias). beta = 1 accumulates (parameter-gradient
 * `+=`, the LoRA delta added onto the base output). `out` must be f32 with the right shape.
 *
 * @example
 * matmulInto(y, h, loraB, { transB: true, alpha: scale, beta: 1 }); // y += scale · h · Bᵀ
 */
export function matmulInto(
  out: Tensor,
  a: Tensor,
  b: Tensor,
  opts: MatmulOptions & { beta?: number } = {},
): void {
  const p = plan(a, b, opts);
  if (out.dtype !== "f32" || out.size !== p.batch * p.M * p.N) {
    throw new Error(
      `matmulInto: out [${out.shape}] ${out.dtype} must be f32 [${[...p.batchDims, p.M, p.N]}]`,
    );
  }
  launch(out, a, b, p, opts, opts.beta ?? 0);
}

/** Gradients of A and B (stored layouts) for C = alpha·op(A)·op(B); null where not needed. */
function matmulBackward(
  a: Tensor,
  b: Tensor,
  g: Tensor,
  p: Plan,
  o: MatmulOptions,
  needs: boolean[],
): [Tensor | null, Tensor | null] {
  const alpha = o.alpha ?? 1;
  const tA = !!o.transA, tB = !!o.transB;
  const common = { batch: p.batch, beta: 0, alpha };
  let dA: Tensor | null = null, dB: Tensor | null = null;
  if (needs[0]) {
    // op(A)' = dC·op(B)ᵀ. Stored Aᵀ ([K, M]) wants its transpose: op(B)·dCᵀ.
    dA = Tensor.empty(a.gpu, a.shape, "f32");
    if (!tA) launch(dA, g, b, plan(g, b, { transB: !tB }), { transB: !tB, alpha }, 0);
    else {
      // dA_b = op(B)·dC_bᵀ: B (maybe shared) is the left operand here, so give explicit strides.
      gemm({
        ...common,
        a: b,
        b: g,
        out: dA,
        M: p.K,
        N: p.M,
        K: p.N,
        strideA: p.sharedB ? 0 : p.K * p.N,
        strideB: p.M * p.N,
        transA: tB,
        transB: true,
      });
    }
  }
  if (needs[1]) {
    // op(B)' = op(A)ᵀ·dC; stored Bᵀ ([N, K]) wants dCᵀ·op(A). A shared B sums over the batch.
    const [rows, cols] = tB ? [p.N, p.K] : [p.K, p.N];
    const left = tB ? g : a, right = tB ? a : g;
    const leftT = tB ? true : !tA, rightT = tB ? tA : false;
    if (p.sharedB && !tA) {
      // Fold the batch into the reduction dimension: A [batch·M, K], dC [batch·M, N].
      dB = Tensor.empty(a.gpu, b.shape, "f32");
      gemm({
        ...common,
        batch: 1,
        a: left,
        b: right,
        out: dB,
        M: rows,
        N: cols,
        K: p.batch * p.M,
        strideA: 0,
        strideB: 0,
        transA: leftT,
        transB: rightT,
      });
    } else {
      // Not shared: the per-batch gradients are dB itself. Shared (Aᵀ layouts): sum them afterwards.
      const shared = p.sharedB && p.batch > 1;
      const per = Tensor.empty(a.gpu, shared ? [p.batch, rows, cols] : b.shape, "f32");
      gemm({
        ...common,
        a: left,
        b: right,
        out: per,
        M: rows,
        N: cols,
        K: p.M,
        strideA: tB ? p.M * p.N : p.M * p.K,
        strideB: tB ? p.M * p.K : p.M * p.N,
        transA: leftT,
        transB: rightT,
      });
      if (shared) {
        dB = colsum(per, p.batch, rows * cols, b.shape);
        per.dispose();
      } else dB = per;
    }
  }
  return [dA, dB];
}
