/**
 * GEMV launchers: the skinny products of decoding, A·Bᵀ with few rows of A and B in the nn.Linear
 * weight layout [N, K]. Three kernel families: kernels/gemv.wgsl (gemv_t / gemv_t_h8: up to 4 rows per
 * weight read, batched, any K % 4 == 0), kernels/gemv_n4.wgsl (gemv_n4 / gemv_swiglu: one row, 4
 * columns per lane group, up to three weights side by side, optionally with the RMSNorm folded in) and
 * kernels/gemv_rows.wgsl (gemv_rows / gemv_rows_swiglu: R rows per workgroup), the last two linked with
 * kernels/gemv_multi.wgsl. src/ops/matmul_kernels.ts chooses between them and the tiled kernel;
 * src/ops/matmul.ts builds fusedLinear and gateUpSwiglu on gemvMulti and gemvSwiglu.
 */
import { type DType, Uniforms } from "../gpu/mod.ts";
import type { Tensor } from "../tensor/mod.ts";

/** The GEMV part of MatmulTuning (set through setMatmulTuning). */
export interface GemvTuning {
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
}

// H200 (bench/workbench/matmul.ts, run 3): 16-byte loads win at M = 1 (2.66 vs 2.15 TB/s), vec4<f16>
// loads at M = 4 (0.061 vs 0.074 ms).
const tuning: GemvTuning = {
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
};

/**
 * Applies the GEMV fields of `t` (other fields are ignored); returns the previous GEMV tuning.
 * setMatmulTuning calls it.
 *
 * @example
 * const old = setGemvTuning({ n4: null }); // one row takes gemv_t
 * setGemvTuning(old);
 */
export function setGemvTuning(t: Partial<GemvTuning>): GemvTuning {
  const old = { ...tuning, n4: tuning.n4 && { ...tuning.n4 }, rows: { ...tuning.rows } };
  Object.assign(tuning, Object.fromEntries(Object.entries(t).filter(([k]) => k in tuning)));
  return old;
}

/**
 * The kernel the most recent product ran, set by every launcher here and in matmul_kernels.ts (one
 * record both write; lastMatmulPath() reads it).
 */
export const matmulPath = { last: "" };

/** One batched product C = alpha·A·op(B) + beta·C + bias with element strides (0 = B shared). */
export interface GemmOperands {
  a: Tensor;
  b: Tensor;
  out: Tensor;
  batch: number;
  M: number;
  N: number;
  K: number;
  strideA: number;
  strideB: number;
  alpha: number;
  beta: number;
  bias?: Tensor;
}

/** Type aliases of gemv.wgsl and matmul.wgsl for g, and the bias slot's buffer. */
export function epilogue(g: GemmOperands): { types: Record<string, DType>; biasBuf: GPUBuffer } {
  return {
    types: { TA: g.a.dtype, TB: g.b.dtype, TBIAS: g.bias ? g.bias.dtype : g.a.dtype },
    // With no bias, bind A again (read-only both times, so no usage conflict); the kernel skips it.
    biasBuf: g.bias ? g.bias.buffer : g.a.buffer,
  };
}

/** Whether a plain A·Bᵀ of M rows takes gemv_n4 (one row) or gemv_rows (minM ..= maxM rows). */
export function gemvMultiTakes(M: number): boolean {
  return M === 1 || (M >= tuning.rows.minM && M <= tuning.rows.maxM);
}

/** Whether gemv_t takes A·Bᵀ (the caller checks the layout): M ≤ gemvM, K % 4 == 0, grid in limits. */
export function gemvTFits(g: GemmOperands): boolean {
  const maxDim = g.a.gpu.device.limits.maxComputeWorkgroupsPerDimension;
  return g.M <= tuning.gemvM && g.K % 4 === 0 && Math.ceil(g.N / (256 / tuning.gemvLanes)) <= maxDim &&
    g.batch <= maxDim;
}

/** C = alpha·A·Bᵀ + beta·C + bias with gemv_t, or gemv_t_h8 for f16 B (check gemvTFits first). */
export function gemvT(g: GemmOperands): void {
  const lanes = tuning.gemvLanes;
  const { types, biasBuf } = epilogue(g);
  const u = new Uniforms().u32(g.M).u32(g.N).u32(g.K).u32(g.strideA / 4).u32(g.strideB / 4)
    .f32(g.alpha).f32(g.beta).u32(g.bias ? 1 : 0);
  // f16 weights with K % 8 == 0: 16-byte loads of 8 halves.
  const entry = g.b.dtype === "f16" && g.K % 8 === 0 && g.M <= tuning.gemvH8M ? "gemv_t_h8" : "gemv_t";
  matmulPath.last = entry;
  g.a.gpu.dispatch(
    { file: "gemv", entry, types, overrides: { LANES: lanes } },
    { 1: g.a.buffer, 2: g.b.buffer, 3: g.out.buffer, 4: biasBuf },
    [Math.ceil(g.N / (256 / lanes)), Math.ceil(g.M / 4), g.batch],
    u,
  );
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
  const ns = ws.map((w) => w.shape[0]);
  const biases = o.biases ?? null;
  if (biases && (biases.length !== ws.length || biases.some((b) => !b))) {
    throw new Error("gemvMulti: give every weight a bias or none");
  }
  const norm = o.norm ?? null;
  if (norm && !gemvNormFits(x, norm)) {
    throw new Error("gemvMulti: the norm does not fit (check gemvNormFits)");
  }
  const w = (i: number) => ws[Math.min(i, ws.length - 1)].buffer;
  const b = (i: number) => biases ? biases[Math.min(i, ws.length - 1)]!.buffer : x.buffer;
  launchMulti({
    swiglu: false,
    x,
    ws,
    bindings: { 1: x.buffer, 3: out.buffer, 4: b(0), 5: w(0), 6: w(1), 7: w(2), 8: b(1), 9: b(2) },
    N: ns.reduce((a, b) => a + b, 0),
    N0: ns[0],
    N1: ns.length > 1 ? ns[1] : 0,
    alpha: o.alpha ?? 1,
    beta: o.beta ?? 0,
    biasType: biases ? biases[0]!.dtype : null,
    norm,
  });
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
  if (norm && !gemvNormFits(x, norm)) {
    throw new Error("gemvSwiglu: the norm does not fit (check gemvNormFits)");
  }
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
  const biasType = biases ? biases[0].dtype : null;
  const one = { N: F, N0: F, N1: 0, alpha: 1, beta: 0 };
  launchMulti({ swiglu: true, x, ws: [gate, up], bindings, ...one, biasType, norm });
}

/** What gemvMulti and gemvSwiglu launch: x [M, K] f32 against `ws` into N columns (Multi's fields). */
interface MultiLaunch {
  swiglu: boolean;
  x: Tensor;
  ws: Tensor[];
  bindings: Record<number, GPUBuffer>;
  N: number;
  N0: number;
  N1: number;
  alpha: number;
  beta: number;
  /** null: no bias (the bias slots hold x). */
  biasType: DType | null;
  /** One row only (gemvNormFits). */
  norm: GemvNorm | null;
}

/**
 * gemv_rows / gemv_rows_swiglu for 2 ..= rows.maxM rows of x (each weight read once for R rows), else
 * gemv_n4 / gemv_swiglu (grid z = row).
 */
function launchMulti(l: MultiLaunch): void {
  const { x, N } = l;
  const K = x.shape[x.shape.length - 1];
  const M = x.size / K;
  const w16 = l.ws[0].dtype === "f16";
  const u = new Uniforms().u32(N).u32(K).u32(l.N0).u32(l.N1).f32(l.alpha).f32(l.beta).u32(l.biasType ? 1 : 0)
    .u32(M).f32(l.norm?.eps ?? 0);
  // f16 weights are read as u32, so the module needs no shader-f16.
  const types: Record<string, DType> = { TA: "f32", TW: w16 ? "u32" : "f32", TBIAS: l.biasType ?? "f32" };
  const many = M > 1 && M <= tuning.rows.maxM;
  const file = many ? "gemv_rows" : "gemv_n4";
  const entry = many ? (l.swiglu ? "gemv_rows_swiglu" : "gemv_rows") : (l.swiglu ? "gemv_swiglu" : "gemv_n4");
  matmulPath.last = entry;
  const spec = (overrides: Record<string, number>) => ({
    file,
    libs: ["gemv_multi"],
    entry,
    types,
    overrides,
  });
  if (many) {
    const r = rowsPlan(M, N);
    const rr: Record<string, number> = r.R > 1 ? { R: r.R, UNROLL2: tuning.rows.unroll2 ? 1 : 0 } : {};
    const grid = [r.chunks, r.cols, 1];
    x.gpu.dispatch(spec({ W16: w16 ? 1 : 0, WG: r.WG, LANES: r.LANES, ...rr }), l.bindings, grid, u);
    return;
  }
  const wg = n4Workgroup(N);
  const lanes = tuning.n4!.LANES;
  const norm: Record<string, number> = l.norm
    ? { NORM: 1, NW16: l.norm.weight.dtype === "f16" ? 1 : 0, XN: K / 4 }
    : {};
  x.gpu.dispatch(
    spec({ W16: w16 ? 1 : 0, WG: wg, LANES: lanes, ...norm }),
    { ...l.bindings, 10: l.norm ? l.norm.weight.buffer : x.buffer },
    [Math.ceil(N / (4 * (wg / lanes))), 1, M],
    u,
  );
}
