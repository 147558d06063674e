/**
 * Matmul launchers: path choice and dispatch of kernels/matmul.wgsl (tiled; vec4 `main` or scalar
 * `simple`), kernels/matmul_reduce.wgsl (split-K reduce, column sums) and the GEMVs (few rows of A·Bᵀ:
 * kernels/gemv.wgsl, gemv_n4.wgsl, gemv_rows.wgsl), with the tuning they read. src/ops/matmul.ts builds the public op and its backward on
 * `gemm` and `colsum`.
 */
import { type DType, type Gpu, Uniforms } from "../gpu/mod.ts";
import { KERNEL_SOURCES } from "../gpu/kernel_sources.ts";
import { Tensor } from "../tensor/mod.ts";
import { grid1d } from "../autograd/mod.ts";

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
  /**
   * gemv_n4 (one row of A, 4 columns per lane group; also the fused decode projections): the largest
   * workgroup size, lanes per group, and the workgroup count below which WG halves (down to LANES) so
   * narrow outputs still spread over the GPU. null: single-row products take gemv_t / gemv_t_h8.
   */
  n4: { WG: number; LANES: number; minGroups: number } | null;
  /**
   * gemv_rows (2 ..= maxM rows of A: decode of several sequences, also the fused projections): rows
   * per workgroup (≤ 8; more rows run as chunks that share the weights through L2), largest workgroup,
   * lanes per 4-column group, workgroup count below which WG halves. Needs n4 on (same fit rules).
   */
  rows: {
    maxM: number;
    /** Fewest rows for which a plain matmul takes gemv_rows (the fused ops take it from 2). */
    minM: number;
    R: number;
    WG: number;
    LANES: number;
    minGroups: number;
    unroll2: boolean;
  };
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
  // H200 (bench/workbench/decode.ts, call 1): 1×14336×4096 f16 WG128 0.0327 ms (86% of 4.2 TB/s),
  // WG256 0.0333, WG64 0.0369; 1×4096×14336 WG64 0.0345 (81%) vs WG128 0.0462; 1×4096×4096 WG64 0.0093
  // (86%) vs WG128 0.0108. LANES 32 beat 16, 8 and 64 (64 ties on 14336×4096). Old gemv_t_h8: 0.042,
  // 0.044 (LANES 64), 0.012 ms.
  n4: { WG: 128, LANES: 32, minGroups: 512 },
  // H200 (bench/workbench/decode.ts, call 2), f16: 16×14336×4096 0.142 ms, 16×4096×14336 0.116, 16×4096×4096
  // 0.039 (R8 L32; gemv_t 0.181 / 0.185 / 0.056); 4 rows lose to gemv_t (0.070 vs 0.055, 0.096 vs 0.063).
  rows: { maxM: 16, minM: 5, R: 8, WG: 256, LANES: 32, minGroups: 256, unroll2: true },
  splitTarget: 128,
  splitMinK: 256,
};

/**
 * Changes the tuning (workbenches, per-adapter choices). Returns the previous values.
 *
 * @example
 * const old = setMatmulTuning({ BK: 16, large: null }); // 128×128 tiles, 16-deep slabs, everywhere
 * setMatmulTuning(old);
 */
export function setMatmulTuning(t: Partial<MatmulTuning>): MatmulTuning {
  const old = {
    ...tuning,
    skinny: { ...tuning.skinny },
    large: tuning.large && { ...tuning.large },
    n4: tuning.n4 && { ...tuning.n4 },
    rows: { ...tuning.rows },
  };
  Object.assign(tuning, t);
  return old;
}

/** One batched product with explicit element strides (0 = shared across the batch). */
export interface Gemm {
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
 * The kernel the most recent product ran: "gemv_n4", "gemv_rows", "gemv_t", "gemv_t_h8", "main", "main/large" (the large
 * tile), "simple", with "+splitK(S)" when K was split, or "empty" (K = 0). For tests and benches that
 * must know which path they measured.
 *
 * @example
 * matmul(x, w, { transB: true });
 * lastMatmulPath(); // "gemv_t_h8" for one token through f16 weights
 */
export function lastMatmulPath(): string {
  return lastPath;
}

/** Runs one batched product, choosing GEMV, the vec4 or scalar tile, and split-K by shape. */
export function gemm(g: Gemm): void {
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
  const rowsOk = g.M === 1 || (g.M >= tuning.rows.minM && g.M <= tuning.rows.maxM);
  if (rowsOk && g.batch === 1 && g.transB && !g.transA && gemvFits(g.a, [g.b])) {
    gemvMulti(g.a, [g.b], g.out, { alpha: g.alpha, beta: g.beta, biases: g.bias ? [g.bias] : null });
    return;
  }
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

/** out = alpha · Σ_s part[s] + beta · out + bias (S = 0: no partials). kernels/matmul_reduce.wgsl. */
function reduce(gpu: Gpu, g: Gemm, part: Tensor | null, S: number): void {
  const total = g.batch * g.M * g.N;
  const u = new Uniforms().u32(g.M).u32(g.N).u32(S).u32(total).f32(g.alpha).f32(g.beta).u32(g.bias ? 1 : 0);
  gpu.dispatch(
    { file: "matmul_reduce", entry: "splitk_reduce", types: { TBIAS: g.bias ? g.bias.dtype : "f32" } },
    // With S = 0 the partials are never read and there may be no bias: A (read-only) fills the slots.
    { 1: part ? part.buffer : g.a.buffer, 2: g.out.buffer, 3: g.bias ? g.bias.buffer : g.a.buffer },
    grid1d(total, 256, gpu.device.limits.maxComputeWorkgroupsPerDimension),
    u,
  );
}

/** Column sums of a [rows, cols] f32 tensor (the bias gradient), returned with `shape` (cols elements). */
export function colsum(x: Tensor, rows: number, cols: number, shape: readonly number[] = [cols]): Tensor {
  const out = Tensor.empty(x.gpu, shape, "f32");
  const u = new Uniforms().u32(rows).u32(cols).u32(0).u32(0).f32(1).f32(0).u32(0);
  x.gpu.dispatch(
    { file: "matmul_reduce", entry: "colsum", types: { TBIAS: "f32" } },
    { 1: x.buffer, 2: out.buffer },
    grid1d(cols, 256, x.gpu.device.limits.maxComputeWorkgroupsPerDimension),
    u,
  );
  return out;
}

/**
 * Whether gemv_n4 / gemv_swiglu take x [M, K] f32 with these [Ni, K] weights: tuning on, one weight
 * dtype (f16 or f32), K % 8 == 0 for f16 (16-byte loads) or K % 4 == 0, and every matrix but the last
 * a multiple of 4 rows (a lane group's 4 columns never straddle two matrices).
 */
export function gemvFits(x: Tensor, ws: Tensor[]): boolean {
  if (!tuning.n4 || x.dtype !== "f32" || ws.length < 1 || ws.length > 3) return false;
  const K = x.shape[x.shape.length - 1];
  const dt = ws[0].dtype;
  if ((dt !== "f16" && dt !== "f32") || K % (dt === "f16" ? 8 : 4) !== 0) return false;
  const N = ws.reduce((a, w) => a + w.shape[0], 0);
  const M = x.size / K;
  const max = x.gpu.device.limits.maxComputeWorkgroupsPerDimension;
  const cols = M > 1 && M <= tuning.rows.maxM
    ? rowsPlan(M, N).cols
    : Math.ceil(N / (4 * (n4Workgroup(N) / tuning.n4.LANES)));
  if (cols > max || M > max) return false;
  return ws.every((w, i) =>
    w.dtype === dt && w.shape.length === 2 && w.shape[1] === K &&
    (i === ws.length - 1 || w.shape[0] % 4 === 0)
  );
}

/** gemv_n4's workgroup size for N output columns: halved from WG while under minGroups workgroups. */
function n4Workgroup(N: number): number {
  const t = tuning.n4!;
  let wg = t.WG;
  while (wg > t.LANES && Math.ceil(N / (4 * wg / t.LANES)) < t.minGroups) wg /= 2;
  return wg;
}

/** gemv_rows' plan for M rows and N columns: rows per workgroup, workgroup size, grid. */
function rowsPlan(
  M: number,
  N: number,
): { R: number; WG: number; LANES: number; chunks: number; cols: number } {
  const t = tuning.rows;
  const chunks = Math.ceil(M / t.R);
  const R = Math.ceil(M / chunks);
  let WG = t.WG;
  const cols = (wg: number) => Math.ceil(N / (4 * wg / t.LANES));
  while (WG > t.LANES && cols(WG) * chunks < t.minGroups) WG /= 2;
  return { R, WG, LANES: t.LANES, chunks, cols: cols(WG) };
}

const linked = new Map<string, string>();

/** kernels/<file>.wgsl (gemv_n4 or gemv_rows) followed by the library they share, gemv_multi.wgsl. */
function multiSource(file: string): string {
  let source = linked.get(file);
  if (source === undefined) {
    source = `${KERNEL_SOURCES[file]}\n${KERNEL_SOURCES.gemv_multi}`;
    linked.set(file, source);
  }
  return source;
}

function multiSpec(
  ws: Tensor[],
  biasType: DType,
  entry: string,
  wg: number,
  lanes = tuning.n4!.LANES,
  R = 1,
  norm: GemvNorm | null = null,
  K = 0,
) {
  const w16 = ws[0].dtype === "f16";
  const n: Record<string, number> = norm
    ? { NORM: 1, NW16: norm.weight.dtype === "f16" ? 1 : 0, XN: K / 4 }
    : {};
  const file = entry.startsWith("gemv_rows") ? "gemv_rows" : "gemv_n4";
  return {
    file,
    source: multiSource(file),
    entry,
    // f16 weights are read as u32, so the module needs no shader-f16.
    types: { TA: "f32" as DType, TW: (w16 ? "u32" : "f32") as DType, TBIAS: biasType },
    overrides: {
      W16: w16 ? 1 : 0,
      WG: wg,
      LANES: lanes,
      ...(R > 1 ? { R, UNROLL2: tuning.rows.unroll2 ? 1 : 0 } : {}),
      ...n,
    },
  };
}

function multiUniforms(
  N: number,
  K: number,
  N0: number,
  N1: number,
  alpha: number,
  beta: number,
  bias: boolean,
  M = 1,
  eps = 0,
) {
  return new Uniforms().u32(N).u32(K).u32(N0).u32(N1).f32(alpha).f32(beta).u32(bias ? 1 : 0).u32(M).f32(eps);
}

/** An RMSNorm folded into a one-row GEMV: the product reads weight ⊙ x / sqrt(mean(x²) + eps). */
export interface GemvNorm {
  /** [K] f32 or f16. */
  weight: Tensor;
  eps: number;
}

/**
 * Whether gemv_n4 / gemv_swiglu can fold `norm` in for x [M, K]: one row (M = 1), the weight [K] f32
 * or f16, and the normalised row (K · 4 bytes) plus the reduction (4 KiB) fit in workgroup memory.
 */
export function gemvNormFits(x: Tensor, norm: GemvNorm): boolean {
  const K = x.shape[x.shape.length - 1];
  const w = norm.weight;
  return x.size === K && w.size === K && (w.dtype === "f32" || w.dtype === "f16") &&
    4 * K + 4096 <= x.gpu.device.limits.maxComputeWorkgroupStorageSize;
}

/**
 * out [M, ΣNi] = alpha·x·[W0; W1; W2]ᵀ + beta·out + [b0; b1; b2] with gemv_n4 (check gemvFits first):
 * up to three weight matrices side by side without copying them. biases: one per weight or null.
 */
export function gemvMulti(
  x: Tensor,
  ws: Tensor[],
  out: Tensor,
  o: { alpha?: number; beta?: number; biases?: (Tensor | null)[] | null; norm?: GemvNorm | null } = {},
): void {
  const gpu = x.gpu;
  const K = x.shape[x.shape.length - 1];
  const M = x.size / K;
  const ns = ws.map((w) => w.shape[0]);
  const N = ns.reduce((a, b) => a + b, 0);
  const biases = o.biases ?? null;
  if (biases && (biases.length !== ws.length || biases.some((b) => !b))) {
    throw new Error("gemvMulti: give every weight a bias or none");
  }
  const w = (i: number) => ws[Math.min(i, ws.length - 1)].buffer;
  const b = (i: number) => biases ? biases[Math.min(i, ws.length - 1)]!.buffer : x.buffer;
  const bindings = { 1: x.buffer, 3: out.buffer, 4: b(0), 5: w(0), 6: w(1), 7: w(2), 8: b(1), 9: b(2) };
  const norm = o.norm ?? null;
  if (norm && !gemvNormFits(x, norm)) {
    throw new Error("gemvMulti: the norm does not fit (check gemvNormFits)");
  }
  const u = multiUniforms(
    N,
    K,
    ns[0],
    ns.length > 1 ? ns[1] : 0,
    o.alpha ?? 1,
    o.beta ?? 0,
    !!biases,
    M,
    norm?.eps,
  );
  const bt = biases ? biases[0]!.dtype : "f32";
  if (M > 1 && M <= tuning.rows.maxM) {
    // Several rows: each weight is read once for R rows (gemv_rows).
    const r = rowsPlan(M, N);
    lastPath = "gemv_rows";
    gpu.dispatch(multiSpec(ws, bt, "gemv_rows", r.WG, r.LANES, r.R), bindings, [r.chunks, r.cols, 1], u);
    return;
  }
  const wg = n4Workgroup(N);
  const perGroup = 4 * (wg / tuning.n4!.LANES);
  lastPath = "gemv_n4";
  gpu.dispatch(
    multiSpec(ws, bt, "gemv_n4", wg, undefined, 1, norm, K),
    { ...bindings, 10: norm ? norm.weight.buffer : x.buffer },
    [Math.ceil(N / perGroup), 1, M],
    u,
  );
}

/** out [M, F] = silu(x·Gᵀ + bg) ⊙ (x·Uᵀ + bu) with gemv_swiglu (check gemvFits first). */
export function gemvSwiglu(
  x: Tensor,
  gate: Tensor,
  up: Tensor,
  out: Tensor,
  biases: [Tensor, Tensor] | null,
  norm: GemvNorm | null = null,
): void {
  const K = x.shape[x.shape.length - 1];
  if (norm && !gemvNormFits(x, norm)) {
    throw new Error("gemvSwiglu: the norm does not fit (check gemvNormFits)");
  }
  const M = x.size / K;
  const F = gate.shape[0];
  const bindings = {
    1: x.buffer,
    3: out.buffer,
    4: biases ? biases[0].buffer : x.buffer,
    5: gate.buffer,
    6: up.buffer,
    7: up.buffer, // W2: in the layout (dot4's loader names it), never read here
    8: biases ? biases[1].buffer : x.buffer,
  };
  const u = multiUniforms(F, K, F, 0, 1, 0, !!biases, M, norm?.eps);
  const bt = biases ? biases[0].dtype : "f32";
  if (M > 1 && M <= tuning.rows.maxM) {
    const r = rowsPlan(M, F);
    lastPath = "gemv_rows_swiglu";
    x.gpu.dispatch(multiSpec([gate, up], bt, "gemv_rows_swiglu", r.WG, r.LANES, r.R), bindings, [
      r.chunks,
      r.cols,
      1,
    ], u);
    return;
  }
  const wg = n4Workgroup(F);
  lastPath = "gemv_swiglu";
  x.gpu.dispatch(
    multiSpec([gate, up], bt, "gemv_swiglu", wg, undefined, 1, norm, K),
    { ...bindings, 10: norm ? norm.weight.buffer : x.buffer },
    [Math.ceil(F / (4 * (wg / tuning.n4!.LANES))), 1, M],
    u,
  );
}
