/**
 * Matmul launchers: the path choice (GEMV or tiled, src/ops/gemv.ts holds the GEMVs) and the dispatch of
 * kernels/matmul.wgsl (tiled; vec4 `main` or scalar `simple`) and kernels/matmul_reduce.wgsl (split-K
 * reduce, column sums), with the tuning they read. src/ops/matmul.ts builds the public op and its
 * backward on `gemm` and `colsum`.
 */
import { type Gpu, Uniforms } from "../gpu/mod.ts";
import { Tensor } from "../tensor/mod.ts";
import { grid1d } from "../autograd/mod.ts";
import {
  epilogue,
  type GemmOperands,
  gemvFits,
  gemvMulti,
  gemvMultiTakes,
  gemvT,
  gemvTFits,
  type GemvTuning,
  matmulPath,
  setGemvTuning,
} from "./gemv.ts";

/** Linked with kernels/matmul.wgsl: `main`'s slab loads and stores (one shared array: a stable key). */
const MATMUL_LIBS = ["matmul_stage"];

/** Tile configuration of the tiled kernel (WGSL overrides), split-K, and the GEMVs' (GemvTuning). */
export interface MatmulTuning extends GemvTuning {
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
  /** Split K until about this many workgroups exist; each slice keeps ≥ splitMinK of K. */
  splitTarget: number;
  splitMinK: number;
  /**
   * Split K also for outputs of fewer than fillBelow workgroups (of the tile chosen) when K ≥ fillMinK,
   * into about fillTarget workgroups: the M = 2048 k/v projections have 128 tiles of 128×128 for 132 SMs
   * that each hold two. 0: off.
   */
  fillBelow: number;
  fillTarget: number;
  fillMinK: number;
  /** f16 B read as packed u32 (8 halves per 16-byte load; kernel override HALF_B) where aligned. */
  halfB: boolean;
  /** With halfB and Bᵀ: consecutive threads stage consecutive weight rows (kernel override B_NFAST). */
  bNFast: boolean;
  /** With halfB and B (not Bᵀ): each thread owns 8 consecutive columns (kernel override COLS8). */
  cols8: boolean;
  /**
   * Tile for packed f16 B products in the A·B layout (backward dX through a frozen weight) wherever the
   * ordinary or the large tile would run; BK a multiple of 8. null: those tiles.
   */
  f16N: { TX: number; TY: number; BK: number } | null;
  /**
   * Tile for thin products (the LoRA rank-r ones): min(M, N) ≤ 64 and max(M, N) ≥ thinFrom. The thin
   * side gets 64 (8 threads), the other 8·wide; K is split into about thinTarget workgroups with slices
   * of ≥ thinMinK. null: such products take the ordinary tile and split.
   */
  thin: { wide: number; BK: number } | null;
  thinFrom: number;
  thinTarget: number;
  thinMinK: number;
  /** Products with K ≤ shortK never take the large tile (0: no limit). */
  shortK: number;
}

// Defaults from the H200 workbench (bench/workbench/matmul.ts): 128×128 BK 8 PAD 0 reached 36–37 TFLOP/s
// f32 in every layout; 128×256 BK 16 (512 threads, exactly 48 KiB of shared memory) 36.1 f32 A·Bᵀ, 38.0
// A·B at 4096³. f16 weights (2026-11-30, best of 4 interleaved rounds): halfB + bNFast on the large tile
// took A·Bᵀ 4096³ from 31.5 to 37.3 and the M = 2048 Mistral-7B products to 37.3–37.8 (q/o, gate/up,
// down), A·B to 36.1–36.3; k/v (A·Bᵀ, 128 tiles) 29.1 → 34.9 with fill (split K in 2). Consecutive-m
// staging of f32 A and consecutive-n staging of f32 Bᵀ measured 3–15% slower and were dropped; bNFast
// is a no-op on the 128×128 BK 8 tile (one octet per weight row and slab). GEMV defaults: src/ops/gemv.ts.
// Round 2 (H200, 2026-11-30, best of 4, two calls agreeing within 0.3): f16 A·B (dX) on 128×128 BK 16
// (f16N) instead of the large tile: q,o 34.3 → 35.7, k,v 33.8 → 34.4, gate,up 34.2 → 36.0, down 34.7 →
// 35.8 TFLOP/s (cols8 is +0.2 of that; 256×128 BK 16 32.7–33.3, 128×64 34.1–34.5). LoRA (r 64, M 2048):
// the thin 128×64 / 64×128 tile BK 16, split to ~256 workgroups (slices ≥ 128): x·Aᵀ 0.070 → 0.046 ms,
// dC·B 0.070 → 0.044 (k/v 0.037 → 0.019), dhᵀ·x 0.071 → 0.042, dCᵀ·h 0.071 → 0.041 (k/v 0.039 →
// 0.020); targets 384/512 and 64×64 tiles were no better. K ≤ 128 on the 128×128 tile (shortK): h·Bᵀ and
// dx += dh·A 0.049 → 0.046.
const tuning: Omit<MatmulTuning, keyof GemvTuning> = {
  entry: "main",
  TX: 16,
  TY: 16,
  BK: 8,
  PAD: 0,
  large: { TX: 32, TY: 16, BK: 16 },
  skinny: { TX: 16, TY: 2, BK: 16 },
  skinnyM: 16,
  splitTarget: 128,
  splitMinK: 256,
  fillBelow: 256,
  fillTarget: 256,
  fillMinK: 2048,
  halfB: true,
  bNFast: true,
  cols8: true,
  f16N: { TX: 16, TY: 16, BK: 16 },
  thin: { wide: 16, BK: 16 },
  thinFrom: 512,
  thinTarget: 256,
  thinMinK: 128,
  shortK: 128,
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
    thin: tuning.thin && { ...tuning.thin },
    f16N: tuning.f16N && { ...tuning.f16N },
    ...setGemvTuning(t),
  };
  Object.assign(tuning, Object.fromEntries(Object.entries(t).filter(([k]) => k in tuning)));
  return old;
}

/** One batched product with explicit element strides (0 = shared across the batch) and layouts. */
export interface Gemm extends GemmOperands {
  transA: boolean;
  transB: boolean;
}

/** Whether a PAD-0 tile fits the adapter's thread count and shared memory (two slabs of A and B). */
function fits(gpu: Gpu, t: { TX: number; TY: number; BK: number } | null): boolean {
  const lim = gpu.device.limits;
  return !!t && t.TX * t.TY <= lim.maxComputeInvocationsPerWorkgroup &&
    2 * t.BK * 2 * (t.TX + t.TY) * 16 <= lim.maxComputeWorkgroupStorageSize;
}

/** The large tile: when configured, allowed by the adapter, and the output fills enough workgroups. */
function useLarge(gpu: Gpu, g: Gemm): boolean {
  const L = tuning.large;
  if (!L || !fits(gpu, L) || (tuning.shortK > 0 && g.K <= tuning.shortK)) return false;
  return Math.ceil(g.N / (8 * L.TX)) * Math.ceil(g.M / (8 * L.TY)) * g.batch >= tuning.splitTarget;
}

/**
 * The kernel the most recent product ran: "gemv_n4", "gemv_rows", "gemv_t", "gemv_t_h8" (and
 * "gemv_swiglu", "gemv_rows_swiglu" after gateUpSwiglu), "main", "main/large" (the large tile),
 * "simple", with "+splitK(S)" when K was split, or "empty" (K = 0). For tests and benches that must
 * know which path they measured.
 *
 * @example
 * matmul(x, w, { transB: true });
 * lastMatmulPath(); // "gemv_t_h8" for one token through f16 weights
 */
export function lastMatmulPath(): string {
  return matmulPath.last;
}

/** Runs one batched product, choosing GEMV, the vec4 or scalar tile, and split-K by shape. */
export function gemm(g: Gemm): void {
  const gpu = g.a.gpu;
  matmulPath.last = "empty";
  if (g.batch * g.M * g.N === 0) return;
  if (g.K === 0) {
    // Empty sum: out = beta·out + bias. Rare; done with the reduce kernel over zero slices.
    return reduce(gpu, g, null, 0);
  }
  if (g.transB && !g.transA) {
    if (g.batch === 1 && gemvMultiTakes(g.M) && gemvFits(g.a, [g.b])) {
      gemvMulti(g.a, [g.b], g.out, { alpha: g.alpha, beta: g.beta, biases: g.bias ? [g.bias] : null });
      return;
    }
    if (gemvTFits(g)) return gemvT(g);
  }
  const maxDim = gpu.device.limits.maxComputeWorkgroupsPerDimension;
  const { types, biasBuf } = epilogue(g);
  const hasBias = g.bias ? 1 : 0;
  const skinny = g.M <= tuning.skinnyM;
  // `main` reads and writes vec4s: the contiguous dimension of A, of B and of C must be multiples of 4.
  const aligned = g.N % 4 === 0 && (g.transA ? g.M : g.K) % 4 === 0 && (g.transB ? g.K : g.N) % 4 === 0;
  const thin = !skinny && aligned ? thinTile(g) : null;
  // Packed f16 A·B has its own tile (the large one's B staging measured slower there).
  const f16N = !skinny && !thin && aligned && tuning.halfB && g.b.dtype === "f16" && !g.transB &&
      g.N % 8 === 0 && g.strideB % 8 === 0 && fits(gpu, tuning.f16N)
    ? tuning.f16N
    : null;
  const t = skinny ? tuning.skinny : thin ?? f16N ?? ((aligned && useLarge(gpu, g)) ? tuning.large! : tuning);
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
  const S = thin ? thinSplit(g, gx * gy * g.batch, maxDim) : splitCount(g, gx * gy * g.batch, maxDim);
  const kChunk = Math.ceil(Math.ceil(g.K / S) / t.BK) * t.BK;
  const slices = Math.ceil(g.K / kChunk);
  const part = slices > 1 ? Tensor.empty(gpu, [g.batch * slices * g.M * g.N], "f32") : null;
  matmulPath.last = (t === tuning.large ? `${entry}/large` : thin ? `${entry}/thin` : entry) +
    (slices > 1 ? `+splitK(${slices})` : "");
  const u = new Uniforms().u32(g.M).u32(g.N).u32(g.K).u32(slices).u32(kChunk).u32(g.strideA).u32(g.strideB);
  if (part) u.f32(1).f32(0).u32(0);
  else u.f32(g.alpha).f32(g.beta).u32(hasBias);
  // f16 B as packed u32: 16-byte loads of 8 halves; needs 8-aligned rows, batch offsets and slabs.
  const halfB = entry === "main" && tuning.halfB && g.b.dtype === "f16" && t.BK % 8 === 0 &&
    (g.transB ? g.K : g.N) % 8 === 0 && g.strideB % 8 === 0 && BN * t.BK <= 16 * t.TX * t.TY;
  gpu.dispatch(
    {
      file: "matmul",
      libs: MATMUL_LIBS,
      entry,
      types: halfB ? { ...types, TB: "u32" } : types,
      overrides: {
        TX: t.TX,
        TY: t.TY,
        BK: t.BK,
        PAD: t === tuning.large || thin || f16N ? 0 : tuning.PAD,
        TRANS_A: +g.transA,
        TRANS_B: +g.transB,
        ...(entry === "main" ? { GA: ga, GB: gb } : {}),
        ...(halfB ? { HALF_B: 1 } : {}),
        ...(halfB && g.transB && tuning.bNFast ? { B_NFAST: 1 } : {}),
        ...(halfB && !g.transB && tuning.cols8 ? { COLS8: 1 } : {}),
      },
    },
    { 1: g.a.buffer, 2: g.b.buffer, 3: part ? part.buffer : g.out.buffer, 4: biasBuf },
    [gx, gy, g.batch * slices],
    u,
  );
  if (part) {
    reduce(gpu, g, part, slices);
    part.dispose();
  }
}

/** The thin tile (TX, TY, BK) for a product with one side ≤ 64 and the other ≥ thinFrom, else null. */
function thinTile(g: Gemm): { TX: number; TY: number; BK: number } | null {
  const T = tuning.thin;
  if (!T || Math.min(g.M, g.N) > 64 || Math.max(g.M, g.N) < tuning.thinFrom) return null;
  return { TX: g.N <= 64 ? 8 : T.wide, TY: g.M <= 64 ? 8 : T.wide, BK: T.BK };
}

/** K slices for the thin tile: about thinTarget workgroups, each slice ≥ thinMinK deep. */
function thinSplit(g: Gemm, groups: number, maxDim: number): number {
  const S = Math.min(Math.floor(g.K / tuning.thinMinK), Math.ceil(tuning.thinTarget / groups), 64);
  return Math.max(1, Math.min(S, Math.floor(maxDim / g.batch)));
}

/**
 * How many K slices: split when the output alone leaves most of the GPU idle (e.g. [2048, 64] LoRA
 * products, splitTarget), or when it fills less than about one full wave (fillBelow; long K only).
 */
function splitCount(g: Gemm, groups: number, maxDim: number): number {
  let S = 1;
  if (groups < tuning.splitTarget && g.K >= 2 * tuning.splitMinK) {
    S = Math.min(Math.floor(g.K / tuning.splitMinK), Math.ceil(tuning.splitTarget / groups), 64);
  } else if (groups < tuning.fillBelow && g.K >= tuning.fillMinK) {
    S = Math.min(Math.round(tuning.fillTarget / groups), Math.floor(g.K / (tuning.fillMinK / 2)));
  }
  return Math.max(1, Math.min(S, Math.floor(maxDim / g.batch)));
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
