/**
 * Matrix multiply: C = alpha·op(A)·op(B) (+ bias), batched, f32 or f16 storage for A and B, f32 out.
 *
 * Paths (picked by shape): `gemv` (kernels/gemv.wgsl) for A·Bᵀ with few rows (decode), the
 * register-tiled kernel (kernels/matmul.wgsl) otherwise, with a narrow tile when M is small and a
 * split-K pass when the output has too few tiles to fill the GPU (LoRA rank-r products).
 * Backward rules are written with matmul itself (all four transpose combinations, batch, shared B).
 */
import { type DType, type Gpu, Uniforms } from "../gpu/mod.ts";
import { Tensor } from "../tensor/mod.ts";
import { grid1d, record } from "../autograd/mod.ts";

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

/** Tile configuration of the tiled kernel (WGSL overrides) and the path thresholds. */
export interface MatmulTuning {
  /** Entry of kernels/matmul.wgsl for large aligned tiles: "main" (vec4) or "simple" (scalar). */
  entry: string;
  /** Threads per workgroup along N and M (tile = 8·TY × 8·TX), slab depth BK, smem row padding. */
  TX: number;
  TY: number;
  BK: number;
  PAD: number;
  /**
   * Bigger tile for big outputs (at least splitTarget of its workgroups), used only where the adapter
   * allows its thread count and its shared memory (PAD 0). null: never.
   */
  large: { TX: number; TY: number; BK: number } | null;
  /** Tile for M ≤ skinnyM (entry "simple"). */
  skinny: { TX: number; TY: number; BK: number };
  skinnyM: number;
  /** Largest M (rows after folding the batch) that takes the GEMV kernel for A·Bᵀ. */
  gemvM: number;
  /** Lanes per output column in the GEMV kernel. */
  gemvLanes: number;
  /** Up to this many rows, f16 weights are read 8 at a time (16-byte loads) when K % 8 == 0. */
  gemvH8M: number;
  /** Split K until about this many workgroups exist; each slice keeps ≥ splitMinK of K. */
  splitTarget: number;
  splitMinK: number;
}

// Defaults from the H200 workbench (bench/workbench/matmul.ts, run 3 in the report): 128×128 BK 8 PAD 0
// reached 36–37 TFLOP/s f32 in every layout and 34.5 with f16 B; 128×256 BK 16 (512 threads, exactly
// 48 KiB of shared memory) 35.7–38.3 and 35.3 with f16 B. GEMV: 16-byte loads win at M = 1 (2.66 vs
// 2.15 TB/s), vec4<f16> loads at M = 4 (0.061 vs 0.074 ms).
const tuning: MatmulTuning = {
  entry: "main",
  TX: 16,
  TY: 16,
  BK: 8,
  PAD: 0,
  large: { TX: 32, TY: 16, BK: 16 },
  skinny: { TX: 16, TY: 2, BK: 16 },
  skinnyM: 16,
  gemvM: 16,
  gemvLanes: 32,
  gemvH8M: 2,
  splitTarget: 128,
  splitMinK: 256,
};

/** Changes the tuning (workbenches, per-adapter choices). Returns the previous values. */
export function setMatmulTuning(t: Partial<MatmulTuning>): MatmulTuning {
  const old = { ...tuning, skinny: { ...tuning.skinny }, large: tuning.large && { ...tuning.large } };
  Object.assign(tuning, t);
  return old;
}

/** One batched product with explicit element strides (0 = shared across the batch). */
interface Gemm {
  a: Tensor;
  b: Tensor;
  out: Tensor;
  batch: number;
  M: number;
  N: number;
  K: number;
  strideA: number;
  strideB: number;
  transA: boolean;
  transB: boolean;
  alpha: number;
  beta: number;
  bias?: Tensor;
}

function epilogue(g: Gemm): { types: Record<string, DType>; biasBuf: GPUBuffer } {
  return {
    types: { TA: g.a.dtype, TB: g.b.dtype, TBIAS: g.bias ? g.bias.dtype : g.a.dtype },
    // With no bias, bind A again (read-only both times, so no usage conflict); the kernel skips it.
    biasBuf: g.bias ? g.bias.buffer : g.a.buffer,
  };
}

let lastPath = "";

/** The large tile: when configured, allowed by the adapter, and the output fills enough workgroups. */
function useLarge(gpu: Gpu, g: Gemm): boolean {
  const L = tuning.large;
  if (!L) return false;
  const lim = gpu.device.limits;
  const smem = 2 * L.BK * 2 * (L.TX + L.TY) * 16; // two slabs of A and B, vec4 rows, PAD 0
  if (L.TX * L.TY > lim.maxComputeInvocationsPerWorkgroup || smem > lim.maxComputeWorkgroupStorageSize) {
    return false;
  }
  return Math.ceil(g.N / (8 * L.TX)) * Math.ceil(g.M / (8 * L.TY)) * g.batch >= tuning.splitTarget;
}

/**
 * The kernel the most recent product ran: "gemv_t", "gemv_t_h8", "main", "main/large" (the large
 * tile), "simple", with "+splitK(S)" when K was split, or "empty" (K = 0). For tests and benches that must know which path they measured.
 */
export function lastMatmulPath(): string {
  return lastPath;
}

function gemm(g: Gemm): void {
  const gpu = g.a.gpu;
  lastPath = "empty";
  if (g.batch * g.M * g.N === 0) return;
  if (g.K === 0) {
    // Empty sum: out = beta·out + bias. Rare; done with the reduce kernel over zero slices.
    return reduce(gpu, g, null, 0);
  }
  const maxDim = gpu.device.limits.maxComputeWorkgroupsPerDimension;
  const { types, biasBuf } = epilogue(g);
  const hasBias = g.bias ? 1 : 0;
  const lanes = tuning.gemvLanes;
  if (
    g.transB && !g.transA && g.M <= tuning.gemvM && g.K % 4 === 0 &&
    Math.ceil(g.N / (256 / lanes)) <= maxDim && g.batch <= maxDim
  ) {
    const u = new Uniforms().u32(g.M).u32(g.N).u32(g.K).u32(g.strideA / 4).u32(g.strideB / 4)
      .f32(g.alpha).f32(g.beta).u32(hasBias);
    // f16 weights with K % 8 == 0: 16-byte loads of 8 halves.
    lastPath = g.b.dtype === "f16" && g.K % 8 === 0 && g.M <= tuning.gemvH8M ? "gemv_t_h8" : "gemv_t";
    gpu.dispatch(
      {
        file: "gemv",
        entry: lastPath,
        types,
        overrides: { LANES: lanes },
      },
      { 1: g.a.buffer, 2: g.b.buffer, 3: g.out.buffer, 4: biasBuf },
      [Math.ceil(g.N / (256 / lanes)), Math.ceil(g.M / 4), g.batch],
      u,
    );
    return;
  }
  const skinny = g.M <= tuning.skinnyM;
  // `main` reads and writes vec4s: the contiguous dimension of A, of B and of C must be multiples of 4.
  const aligned = g.N % 4 === 0 && (g.transA ? g.M : g.K) % 4 === 0 && (g.transB ? g.K : g.N) % 4 === 0;
  const t = skinny ? tuning.skinny : (aligned && useLarge(gpu, g)) ? tuning.large! : tuning;
  const entry = skinny || !aligned ? "simple" : tuning.entry;
  const per = (x: number) => 8 * x * t.BK / (4 * t.TX * t.TY); // vec4 each thread stages per slab
  const [ga, gb] = [per(t.TY), per(t.TX)];
  if (entry === "main") {
    if (![1, 2, 4].includes(ga) || ![1, 2, 4].includes(gb) || t.BK % 4) {
      throw new Error(`matmul: tile TX=${t.TX} TY=${t.TY} BK=${t.BK} does not fit the vec4 kernel`);
    }
  }
  const [BM, BN] = [8 * t.TY, 8 * t.TX];
  const gx = Math.ceil(g.N / BN), gy = Math.ceil(g.M / BM);
  if (gx > maxDim || gy > maxDim) throw new Error(`matmul: [${g.M}, ${g.N}] output too large for one grid`);
  // Split K when the output alone leaves most of the GPU idle (e.g. [2048, 64] LoRA products).
  let S = 1;
  const groups = gx * gy * g.batch;
  if (groups < tuning.splitTarget && g.K >= 2 * tuning.splitMinK) {
    S = Math.min(Math.floor(g.K / tuning.splitMinK), Math.ceil(tuning.splitTarget / groups), 64);
    S = Math.max(1, Math.min(S, Math.floor(maxDim / g.batch)));
  }
  const kChunk = Math.ceil(Math.ceil(g.K / S) / t.BK) * t.BK;
  S = Math.ceil(g.K / kChunk);
  const part = S > 1 ? Tensor.empty(gpu, [g.batch * S * g.M * g.N], "f32") : null;
  lastPath = (t === tuning.large ? `${entry}/large` : entry) + (S > 1 ? `+splitK(${S})` : "");
  const u = new Uniforms().u32(g.M).u32(g.N).u32(g.K).u32(S).u32(kChunk).u32(g.strideA).u32(g.strideB);
  if (part) u.f32(1).f32(0).u32(0);
  else u.f32(g.alpha).f32(g.beta).u32(hasBias);
  gpu.dispatch(
    {
      file: "matmul",
      entry,
      types,
      overrides: {
        TX: t.TX,
        TY: t.TY,
        BK: t.BK,
        PAD: t === tuning.large ? 0 : tuning.PAD,
        TRANS_A: +g.transA,
        TRANS_B: +g.transB,
        ...(entry === "main" ? { GA: ga, GB: gb } : {}),
      },
    },
    { 1: g.a.buffer, 2: g.b.buffer, 3: part ? part.buffer : g.out.buffer, 4: biasBuf },
    [gx, gy, g.batch * S],
    u,
  );
  if (part) {
    reduce(gpu, g, part, S);
    part.dispose();
  }
}

/** out = alpha · Σ_s part[s] + beta · out + bias (S = 0: no partials). */
function reduce(gpu: Gpu, g: Gemm, part: Tensor | null, S: number): void {
  const { types, biasBuf } = epilogue(g);
  const total = g.batch * g.M * g.N;
  const u = new Uniforms().u32(g.M).u32(g.N).u32(g.K).u32(S).u32(0).u32(total).u32(0)
    .f32(g.alpha).f32(g.beta).u32(g.bias ? 1 : 0);
  gpu.dispatch(
    { file: "matmul", entry: "splitk_reduce", types },
    // With S = 0 the partials are never read; bind A (read-only) to fill the slot.
    { 3: g.out.buffer, 4: biasBuf, 5: part ? part.buffer : g.a.buffer },
    grid1d(total, 256, gpu.device.limits.maxComputeWorkgroupsPerDimension),
    u,
  );
}

/** Column sums of a [rows, cols] f32 tensor (the bias gradient), returned with `shape` (cols elements). */
function colsum(x: Tensor, rows: number, cols: number, shape: readonly number[] = [cols]): Tensor {
  const out = Tensor.empty(x.gpu, shape, "f32");
  const u = new Uniforms().u32(rows).u32(cols).u32(0).u32(1).u32(0).u32(0).u32(0).f32(1).f32(0).u32(0);
  x.gpu.dispatch(
    { file: "matmul", entry: "colsum", types: { TA: "f32", TB: "f32", TBIAS: "f32" } },
    { 1: x.buffer, 3: out.buffer },
    grid1d(cols, 256, x.gpu.device.limits.maxComputeWorkgroupsPerDimension),
    u,
  );
  return out;
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
