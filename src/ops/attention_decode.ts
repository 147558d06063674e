/**
 * Decode-time attention: a preallocated KV cache, writes into it, and split-K attention of one new
 * token per sequence over it (kernels/attention_decode.wgsl).
 *
 * Letters: B batch, H query heads, Hkv kv heads, D head dim (multiple of 4, ≤ 128).
 */
import { type DType, type Gpu, Uniforms } from "../gpu/mod.ts";
import { Tensor } from "../tensor/mod.ts";
import { grid1d } from "../autograd/mod.ts";
import { checkHeadDim, checkHeads, LOG2E } from "./attention_common.ts";

/**
 * Preallocated KV cache for decode: k and v of shape [B, Hkv, maxT, D] (rows of one head contiguous, so
 * decode reads each head's keys as one block), f32 or f16 storage (f16 needs shader-f16).
 *
 * @example
 * const cache = new KvCache(gpu, 1, 8, 4096, 128, gpu.info.f16 ? "f16" : "f32");
 */
export class KvCache {
  readonly k: Tensor;
  readonly v: Tensor;
  readonly batch: number;
  readonly kvHeads: number;
  readonly maxT: number;
  readonly headDim: number;
  readonly dtype: DType;
  /** u32 split counters of the one-launch kernel (zero between launches), grown on demand. */
  #counters: Tensor | null = null;

  constructor(gpu: Gpu, batch: number, kvHeads: number, maxT: number, headDim: number, dtype: DType) {
    if (dtype !== "f32" && dtype !== "f16") throw new Error(`KvCache: dtype ${dtype} (want f32 or f16)`);
    if (dtype === "f16" && !gpu.info.f16) throw new Error("KvCache: f16 storage needs shader-f16 (use f32)");
    checkHeadDim("KvCache", headDim);
    this.batch = batch;
    this.kvHeads = kvHeads;
    this.maxT = maxT;
    this.headDim = headDim;
    this.dtype = dtype;
    const shape = [batch, kvHeads, maxT, headDim];
    this.k = Tensor.zeros(gpu, shape, dtype, { persistent: true });
    this.v = Tensor.zeros(gpu, shape, dtype, { persistent: true });
  }

  /** At least n zeroed u32 counters for attention_decode_one.wgsl (it leaves them zero). */
  counters(n: number): Tensor {
    if (!this.#counters || this.#counters.size < n) {
      this.#counters?.dispose();
      this.#counters = Tensor.zeros(this.k.gpu, [n], "u32", { persistent: true });
    }
    return this.#counters;
  }

  dispose(): void {
    this.k.dispose();
    this.v.dispose();
    this.#counters?.dispose();
  }
}

/** The uniform block of kernels/attention_decode.wgsl (one struct for its three entries). */
function decodeUniforms(
  c: KvCache,
  f: Partial<Record<"B" | "T" | "H" | "window" | "split" | "nsplit" | "n" | "nx", number>> & {
    scale2?: number;
  },
): Uniforms {
  return new Uniforms().u32(f.B ?? c.batch).u32(f.T ?? 1).u32(f.H ?? c.kvHeads).u32(c.kvHeads).u32(c.maxT)
    .u32(f.window ?? 0).f32(f.scale2 ?? 0).u32(f.split ?? 0).u32(f.nsplit ?? 0).u32(f.n ?? 0).u32(f.nx ?? 0);
}

/**
 * Writes k/v [B, T, Hkv, D] f32 into the cache at rows positions[b] .. positions[b] + T − 1 (positions:
 * u32 [B] on the GPU, so decode advances it without readback; rows past maxT are dropped). Not recorded.
 *
 * @example
 * kvCacheWrite(cache, k, v, positions); // prefill: positions = zeros
 */
export function kvCacheWrite(cache: KvCache, k: Tensor, v: Tensor, positions: Tensor): void {
  const [B, T, Hkv, D] = k.shape;
  if (
    k.shape.length !== 4 || v.shape.join() !== k.shape.join() || k.dtype !== "f32" || v.dtype !== "f32" ||
    B !== cache.batch || Hkv !== cache.kvHeads || D !== cache.headDim
  ) {
    throw new Error(
      `kvCacheWrite: k [${k.shape}] ${k.dtype}, v [${v.shape}] ${v.dtype} do not fit cache [${cache.k.shape}]`,
    );
  }
  if (positions.dtype !== "u32" || positions.size !== B) {
    throw new Error(
      `kvCacheWrite: positions must be u32 [${B}], got ${positions.dtype} [${positions.shape}]`,
    );
  }
  const gpu = k.gpu;
  const n = k.size / 4; // one vec4 per thread (D % 4 == 0)
  const grid = grid1d(n, 256, gpu.device.limits.maxComputeWorkgroupsPerDimension);
  gpu.dispatch(
    { file: "attention_decode", entry: "write", types: { ST: cache.dtype }, overrides: { D } },
    { 1: k.buffer, 2: v.buffer, 3: positions.buffer, 4: cache.k.buffer, 5: cache.v.buffer },
    grid,
    decodeUniforms(cache, { T, n, nx: grid[0] }),
  );
}

/**
 * Decode attention's kernel and split plan. "flash1" (default): kernels/attention_decode_one.wgsl, one
 * launch (fixed-size splits, the last split to finish merges), f16 K/V read 8 halves per load; it
 * runs splits of `per` keys: the smallest multiple of its block with ≤ 64 splits of maxT and at least
 * minKeys keys (f16 caches with D % 8 ≠ 0 take "flash").
 * "flash": splits cut the real length on the GPU,
 * K/V loaded as whole blocks through workgroup memory, a merge launch unless one split suffices.
 * flash runs about targetGroups workgroups (B · H/GW · nsplit) with at least minKeys keys per split.
 * H200 (bench/workbench/decode.ts): the earlier split128 kernel (removed) took 45.7 µs (Qwen2.5-0.5B
 * shape, 513 keys of a 1024-row cache) and 56.1 µs (Mistral-7B); "partial" (removed) 142 and 109 µs.
 */
export const decodeAttentionTuning: {
  entry: "flash1" | "flash";
  targetGroups: number;
  minKeys: number;
  /** Workbench diagnosis only: flash's MODE override (1: no compute, 2: no K/V loads). */
  diagMode: number;
} = { entry: "flash1", targetGroups: 1024, minKeys: 16, diagMode: 0 };

/** Splits per (sequence, head group): flash aims at targetGroups workgroups, ≤ 1024 (merge's limit). */
function planSplits(maxT: number, groups: number): { split: number; nsplit: number } {
  const t = decodeAttentionTuning;
  const nsplit = Math.max(
    1,
    Math.min(Math.floor(t.targetGroups / groups), Math.ceil(maxT / t.minKeys), 1024),
  );
  return { split: t.minKeys, nsplit };
}

/**
 * Decode attention: q [B, 1, H, D] f32 against the cache; lengths: u32 [B] = valid keys per sequence
 * (the new token's key already written; each ≥ 1). Honours window. → [B, 1, H, D] f32. Not recorded.
 * flash1: one launch; flash: two (flash + merge), one when a single split per sequence and head fills
 * the GPU (see decodeAttentionTuning).
 *
 * @example
 * kvCacheWrite(cache, k, v, positions); // positions = lengths − 1
 * const o = attentionDecode(q, cache, lengths);
 */
export function attentionDecode(
  q: Tensor,
  cache: KvCache,
  lengths: Tensor,
  opts: { window?: number; scale?: number } = {},
): Tensor {
  const [B, T, H, D] = q.shape;
  if (q.shape.length !== 4 || T !== 1 || q.dtype !== "f32" || B !== cache.batch || D !== cache.headDim) {
    throw new Error(
      `attentionDecode: q [${q.shape}] ${q.dtype} does not fit cache [${cache.k.shape}] (want [B, 1, H, D] f32)`,
    );
  }
  checkHeads("attentionDecode", H, cache.kvHeads);
  if (lengths.dtype !== "u32" || lengths.size !== B) {
    throw new Error(`attentionDecode: lengths must be u32 [${B}], got ${lengths.dtype} [${lengths.shape}]`);
  }
  const gpu = q.gpu;
  const G = H / cache.kvHeads;
  let gw = Math.min(8, G);
  while (G % gw !== 0) gw--;
  const scale2 = (opts.scale ?? 1 / Math.sqrt(D)) * LOG2E;
  if (decodeAttentionTuning.entry === "flash1" && (cache.dtype === "f32" || D % 8 === 0)) {
    return attentionDecodeOne(q, cache, lengths, gw, scale2, opts.window ?? 0);
  }
  const { split, nsplit } = planSplits(cache.maxT, B * (H / gw));
  const u = decodeUniforms(cache, { H, window: opts.window, scale2, split, nsplit });
  const out = Tensor.empty(gpu, q.shape, "f32");
  // With one split flash writes out itself and never touches part and ml (small then: [B, H, 1, …]).
  const part = Tensor.empty(gpu, [B, H, nsplit, D], "f32");
  const ml = Tensor.empty(gpu, [B, H, nsplit, 2], "f32");
  const spec = (entry: string, overrides: Record<string, number>) => ({
    file: "attention_decode",
    entry,
    types: { ST: cache.dtype },
    overrides,
  });
  gpu.dispatch(
    spec("flash", {
      D,
      GW: gw,
      ...(decodeAttentionTuning.diagMode ? { MODE: decodeAttentionTuning.diagMode } : {}),
    }),
    {
      4: cache.k.buffer,
      5: cache.v.buffer,
      6: lengths.buffer,
      7: q.buffer,
      8: part.buffer,
      9: ml.buffer,
      10: out.buffer,
    },
    [nsplit, H / gw, B],
    u,
  );
  if (nsplit > 1) {
    gpu.dispatch(
      spec("merge", { D }),
      { 6: lengths.buffer, 8: part.buffer, 9: ml.buffer, 10: out.buffer },
      [H, B],
      u,
    );
  }
  part.dispose();
  ml.dispose();
  return out;
}

/** attentionDecode through kernels/attention_decode_one.wgsl: one launch, grid [nsplit, H / gw, B]. */
function attentionDecodeOne(
  q: Tensor,
  cache: KvCache,
  lengths: Tensor,
  gw: number,
  scale2: number,
  window: number,
): Tensor {
  const [B, , H, D] = q.shape;
  const gpu = q.gpu;
  const f16 = cache.dtype === "f16";
  const KB = Math.floor(512 / (D / 4)); // the kernel's keys per block
  const want = Math.max(decodeAttentionTuning.minKeys, Math.ceil(cache.maxT / 64), 1);
  const per = KB * Math.ceil(want / KB);
  const nsplit = Math.ceil(cache.maxT / per); // ≤ 64: the merge keeps (m, l) of 64 splits per head
  const out = Tensor.empty(gpu, q.shape, "f32");
  const part = Tensor.empty(gpu, [B, H, nsplit, D], "f32");
  const ml = Tensor.empty(gpu, [B, H, nsplit, 2], "f32");
  const u = new Uniforms().u32(B).u32(H).u32(cache.kvHeads).u32(cache.maxT).u32(window).f32(scale2).u32(per)
    .u32(nsplit);
  gpu.dispatch(
    {
      file: "attention_decode_one",
      entry: "flash1",
      types: { KW: f16 ? "u32" : "f32" },
      overrides: { D, GW: gw, F16: f16 ? 1 : 0 },
    },
    {
      1: q.buffer,
      2: cache.k.buffer,
      3: cache.v.buffer,
      4: lengths.buffer,
      5: part.buffer,
      6: ml.buffer,
      7: out.buffer,
      8: cache.counters(B * (H / gw)).buffer,
    },
    [nsplit, H / gw, B],
    u,
  );
  part.dispose();
  ml.dispose();
  return out;
}

/**
 * Decode's RoPE and cache write in one launch: rotates q and k of the new token (positions i32 [B, 1],
 * as rope()), writes the rotated k and v into the cache at rows u32 [B] (as kvCacheWrite) and returns
 * the rotated q [B, 1, H, D] f32. `qkv` is the fused q|k|v projection, f32 [B, (H + 2·Hkv)·D] (q heads,
 * then k heads, then v heads). Needs D % 8 == 0. Not recorded.
 *
 * @example
 * const q = ropeKvWrite(qkv, H, cache, state.positions, state.rows, invFreq);
 * const o = attentionDecode(q, cache, state.lengths);
 */
export function ropeKvWrite(
  qkv: Tensor,
  H: number,
  cache: KvCache,
  positions: Tensor,
  rows: Tensor,
  invFreq: Tensor,
): Tensor {
  const { batch: B, kvHeads: Hkv, headDim: D } = cache;
  const width = (H + 2 * Hkv) * D;
  if (qkv.dtype !== "f32" || qkv.size !== B * width) {
    throw new Error(`ropeKvWrite: qkv [${qkv.shape}] ${qkv.dtype} must be f32 [${B}, ${width}]`);
  }
  checkHeads("ropeKvWrite", H, Hkv);
  if (D % 8 !== 0) throw new Error(`ropeKvWrite: head dim ${D} must be a multiple of 8`);
  if (positions.dtype !== "i32" || positions.size !== B || rows.dtype !== "u32" || rows.size !== B) {
    throw new Error(`ropeKvWrite: positions must be i32 [${B}, 1] and rows u32 [${B}]`);
  }
  if (invFreq.dtype !== "f32" || invFreq.size !== D / 2) {
    throw new Error(`ropeKvWrite: invFreq must be f32 [${D / 2}], got [${invFreq.shape}] ${invFreq.dtype}`);
  }
  const gpu = qkv.gpu;
  const out = Tensor.empty(gpu, [B, 1, H, D], "f32");
  const n = B * (H + 2 * Hkv) * (D / 8);
  const grid = grid1d(n, 256, gpu.device.limits.maxComputeWorkgroupsPerDimension);
  gpu.dispatch(
    { file: "attention_decode", entry: "rope_write", types: { ST: cache.dtype } },
    {
      11: qkv.buffer,
      12: out.buffer,
      13: positions.buffer,
      14: invFreq.buffer,
      3: rows.buffer,
      4: cache.k.buffer,
      5: cache.v.buffer,
    },
    grid,
    new Uniforms().u32(B).u32(H).u32(Hkv).u32(cache.maxT).u32(D / 8).u32(n).u32(grid[0]),
  );
  return out;
}
