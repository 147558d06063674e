/**
 * Attention: flash-style causal / sliding-window / GQA attention with autograd, a preallocated KV cache,
 * and split-K decode attention over that cache. Kernels: kernels/attention_forward.wgsl,
 * attention_backward.wgsl, attention_decode.wgsl.
 *
 * Letters: B batch, T query length, S key length, H query heads, Hkv kv heads (query head h reads kv
 * head floor(h / (H / Hkv))), D head dim (multiple of 4, ≤ 128).
 */
import { type Binding, type DType, type Gpu, Uniforms } from "../gpu/mod.ts";
import { Tensor } from "../tensor/mod.ts";
import { grid1d, isGradEnabled, record } from "../autograd/mod.ts";

/** Masking and scaling of attention(). */
export interface AttentionOptions {
  /** Default true: query i (0-based within T) sees key j iff j ≤ i + (S − T). */
  causal?: boolean;
  /** Sliding window (Mistral): additionally i + (S − T) − j < window. */
  window?: number;
  /** Default 1/sqrt(D). */
  scale?: number;
}

interface Dims {
  B: number;
  T: number;
  S: number;
  H: number;
  Hkv: number;
  D: number;
}

const LOG2E = Math.LOG2E;

function checkHeadDim(op: string, D: number): void {
  if (D % 4 !== 0 || D < 4 || D > 128) {
    throw new Error(`${op}: head dim ${D} unsupported (needs a multiple of 4, at most 128)`);
  }
}

function checkHeads(op: string, H: number, Hkv: number): void {
  if (Hkv < 1 || H % Hkv !== 0) {
    throw new Error(`${op}: ${H} query heads are not a multiple of ${Hkv} kv heads`);
  }
}

function dimsOf(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions): Dims {
  const bad = (why: string) => new Error(`attention: q [${q.shape}], k [${k.shape}], v [${v.shape}]: ${why}`);
  if (q.shape.length !== 4 || k.shape.length !== 4 || v.shape.length !== 4) throw bad("want 4-d tensors");
  if ([q, k, v].some((t) => t.dtype !== "f32")) throw bad("want f32");
  const [B, T, H, D] = q.shape;
  const [Bk, S, Hkv, Dk] = k.shape;
  if (Bk !== B || Dk !== D || v.shape.join() !== k.shape.join()) throw bad("shapes disagree");
  checkHeads("attention", H, Hkv);
  checkHeadDim("attention", D);
  if ((opts.causal ?? true) && S < T) throw bad("causal attention needs S ≥ T (a query would see no key)");
  if (opts.window !== undefined && !(Number.isInteger(opts.window) && opts.window >= 1)) {
    throw bad(`window ${opts.window} is not a positive integer`);
  }
  return { B, T, S, H, Hkv, D };
}

function params(d: Dims, opts: AttentionOptions): Uniforms {
  const scale = opts.scale ?? 1 / Math.sqrt(d.D);
  return new Uniforms().u32(d.B).u32(d.T).u32(d.S).u32(d.H).u32(d.Hkv).u32((opts.causal ?? true) ? 1 : 0)
    .u32(opts.window ?? 0).f32(scale * LOG2E);
}

function launchForward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  d: Dims,
  opts: AttentionOptions,
  out: Binding,
  lse: Binding,
) {
  q.gpu.dispatch(
    { file: "attention_forward", overrides: { D: d.D } },
    [q.buffer, k.buffer, v.buffer, out, lse],
    [Math.ceil(d.T / 64), d.H, d.B],
    params(d, opts),
  );
}

/**
 * Forward pass that also returns the log-sum-exp [B, H, T] (natural log) of each query row: for tests
 * and benches. Not recorded for autograd; use attention() in models.
 */
export function attentionForward(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}) {
  const d = dimsOf(q, k, v, opts);
  const out = Tensor.empty(q.gpu, q.shape, "f32");
  const lse = Tensor.empty(q.gpu, [d.B, d.H, d.T], "f32");
  launchForward(q, k, v, d, opts, out.buffer, lse.buffer);
  return { out, lse };
}

/**
 * q [B, T, H, D], k/v [B, S, Hkv, D] (f32) → out [B, T, H, D] f32. Flash-style tiled online softmax: no
 * T×S matrix in memory. Recorded for autograd (dq, dk, dv; dk/dv summed over the query heads sharing a
 * kv head). The log-sum-exp the backward needs lives in the tail of the output's own buffer, so it
 * lives exactly as long as the output, whatever scope the caller keeps it in.
 *
 * @example
 * const o = attention(q, k, v, { window: 4096 }); // causal sliding-window GQA attention
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const d = dimsOf(q, k, v, opts);
  const gpu = q.gpu;
  const recording = isGradEnabled() && [q, k, v].some((t) => t.requiresGrad);
  if (!recording) {
    const out = Tensor.empty(gpu, q.shape, "f32");
    const lse = Tensor.empty(gpu, [d.B, d.H, d.T], "f32");
    launchForward(q, k, v, d, opts, out.buffer, lse.buffer);
    lse.dispose(); // safe: the pool hands it out again only to work recorded after this dispatch
    return out;
  }
  const outBytes = q.size * 4;
  const lseOffset = Math.ceil(outBytes / 256) * 256; // storage binding offsets align to 256
  const lseBytes = d.B * d.H * d.T * 4;
  const out = new Tensor(gpu, q.shape, "f32", gpu.pool.acquire(lseOffset + lseBytes));
  const lse = { buffer: out.buffer, offset: lseOffset, size: lseBytes };
  launchForward(q, k, v, d, opts, out.buffer, lse);
  return record(
    out,
    "attention",
    [q, k, v],
    (g, needs) => attentionBackward(q, k, v, out, lse, g, opts, needs),
  );
}

/**
 * Backward of attention() given its output and log-sum-exp (a tensor, or a buffer range): returns
 * [dq, dk, dv], null where `needs` is false. attention() records this; exported for benches.
 *
 * @example
 * const { out, lse } = attentionForward(q, k, v);
 * const [dq, dk, dv] = attentionBackward(q, k, v, out, lse, gradOut);
 */
export function attentionBackward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  lse: Tensor | Binding,
  g: Tensor,
  opts: AttentionOptions = {},
  needs: boolean[] = [true, true, true],
): (Tensor | null)[] {
  const d = dimsOf(q, k, v, opts);
  const gpu = q.gpu;
  const u = () => params(d, opts).f32(opts.scale ?? 1 / Math.sqrt(d.D));
  const spec = (entry: string) => ({ file: "attention_backward", entry, overrides: { D: d.D } });
  const delta = Tensor.empty(gpu, [d.B, d.H, d.T], "f32");
  const grid = grid1d(d.B * d.T * d.H, 256, gpu.device.limits.maxComputeWorkgroupsPerDimension);
  gpu.dispatch(spec("delta"), { 4: out.buffer, 6: g.buffer, 7: delta.buffer }, grid, u().u32(grid[0]));
  const lseBinding = lse instanceof Tensor ? lse.buffer : lse;
  const common = { 1: q.buffer, 2: k.buffer, 3: v.buffer, 5: lseBinding, 6: g.buffer, 7: delta.buffer };
  let dq: Tensor | null = null, dk: Tensor | null = null, dv: Tensor | null = null;
  if (needs[1] || needs[2]) {
    dk = Tensor.empty(gpu, k.shape, "f32");
    dv = Tensor.empty(gpu, v.shape, "f32");
    const grid = [Math.ceil(d.S / 64), d.Hkv, d.B];
    gpu.dispatch(spec("grad_kv"), { ...common, 9: dk.buffer, 10: dv.buffer }, grid, u().u32(0));
    // grad_kv computes both; hand back only what was asked for (frozen inputs get nothing).
    if (!needs[1]) dk = (dk.dispose(), null);
    if (!needs[2]) dv = (dv.dispose(), null);
  }
  if (needs[0]) {
    dq = Tensor.empty(gpu, q.shape, "f32");
    const grid = [Math.ceil(d.T / 64), d.H, d.B];
    gpu.dispatch(spec("grad_q"), { ...common, 8: dq.buffer }, grid, u().u32(0));
  }
  delta.dispose(); // safe: reuse of its buffer is recorded after these dispatches
  return [dq, dk, dv];
}

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

  dispose(): void {
    this.k.dispose();
    this.v.dispose();
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

/** Keys per split: enough splits that ~1024 workgroups run (one sequence still fills a big GPU), at
 * least 64 keys each so the partial results stay small next to the K/V bytes read. */
function planSplits(maxT: number, groups: number): { split: number; nsplit: number } {
  const wanted = Math.max(1, Math.ceil(1024 / groups));
  const split = Math.max(64, Math.ceil(maxT / wanted / 32) * 32);
  return { split, nsplit: Math.ceil(maxT / split) };
}

/**
 * Decode attention: q [B, 1, H, D] f32 against the cache; lengths: u32 [B] = valid keys per sequence
 * (the new token's key already written; each ≥ 1). Honours window. → [B, 1, H, D] f32. Not recorded.
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
  const { split, nsplit } = planSplits(cache.maxT, B * (H / gw));
  const scale2 = (opts.scale ?? 1 / Math.sqrt(D)) * LOG2E;
  const u = decodeUniforms(cache, { H, window: opts.window, scale2, split, nsplit });
  const part = Tensor.empty(gpu, [B, H, nsplit, D], "f32");
  const ml = Tensor.empty(gpu, [B, H, nsplit, 2], "f32");
  const out = Tensor.empty(gpu, q.shape, "f32");
  const spec = (entry: string, overrides: Record<string, number>) => ({
    file: "attention_decode",
    entry,
    types: { ST: cache.dtype },
    overrides,
  });
  gpu.dispatch(
    spec("partial", { D, GW: gw }),
    { 4: cache.k.buffer, 5: cache.v.buffer, 6: lengths.buffer, 7: q.buffer, 8: part.buffer, 9: ml.buffer },
    [nsplit, H / gw, B],
    u,
  );
  gpu.dispatch(spec("combine", { D }), { 8: part.buffer, 9: ml.buffer, 10: out.buffer }, [H, B], u);
  part.dispose();
  ml.dispose();
  return out;
}
