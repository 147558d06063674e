/**
 * Backward of attention() (kernels/attention_backward.wgsl): a delta pass (rowsum of out · dout), then
 * dk/dv per key tile (per group of query heads, summed by sum_kv when a kv head's query heads are
 * split over workgroups) and dq per query tile.
 */
import type { Binding, Gpu } from "../gpu/mod.ts";
import { Tensor } from "../tensor/mod.ts";
import { grid1d } from "../autograd/mod.ts";
import { type AttentionOptions, type Dims, dimsOf, params } from "./attention_common.ts";

/** Tunables of the backward kernels; `null` fields are chosen per device and shape. */
export interface AttentionBackwardTuning {
  /** Phase-A/B staging buffers: 2 (one barrier per chunk) or 1 (fits 16 KiB less). */
  nbuf: 1 | 2 | null;
  /** Pad vec4 per staged d row (bank spread for the transposing stores). */
  pada: 0 | 1 | null;
  /** Query heads per grad_kv workgroup (must divide H / Hkv); fewer → more workgroups + a sum pass. */
  hpw: number | null;
  /** Grids with the tile index in y (heaviest tiles of every head first) instead of x. */
  heavyFirst: boolean;
}

let tuning: AttentionBackwardTuning = { nbuf: null, pada: null, hpw: null, heavyFirst: true };

/** Sets the tuning (for workbenches); returns the previous one. */
export function setAttentionBackwardTuning(t: Partial<AttentionBackwardTuning>): AttentionBackwardTuning {
  const old = tuning;
  tuning = { ...old, ...t };
  return old;
}

/** Workgroup memory (vec4 count) the kernel's `sm` needs for these choices. */
function smemVec4(D: number, nbuf: number, pada: number): number {
  const ds4 = 16 * Math.ceil(D / 64);
  return Math.max(nbuf * 4 * 16 * (16 + pada), 1024 + nbuf * 16 * ds4);
}

/**
 * Staging that fits the device. Single buffering is preferred: on the H200 it measured faster than
 * double buffering (2.71 vs 2.86 ms at T 1024, H 32/8, D 128: less workgroup memory per workgroup
 * outweighs the second barrier per chunk).
 */
function staging(gpu: Gpu, D: number): { NBUF: number; PADA: number; SMEM: number } {
  const limit = gpu.device.limits.maxComputeWorkgroupStorageSize;
  for (const [nbuf, pada] of [[1, 1], [1, 0], [2, 1], [2, 0]]) {
    if (tuning.nbuf !== null && nbuf !== tuning.nbuf) continue;
    if (tuning.pada !== null && pada !== tuning.pada) continue;
    const smem = smemVec4(D, nbuf, pada);
    if (smem * 16 <= limit) return { NBUF: nbuf, PADA: pada, SMEM: smem };
  }
  throw new Error(`attention backward: no staging fits ${limit} bytes of workgroup memory`);
}

/** Query heads per grad_kv workgroup: all G of a kv head when that already gives enough workgroups. */
function headsPerGroup(d: Dims): number {
  const G = d.H / d.Hkv;
  if (tuning.hpw !== null) {
    if (G % tuning.hpw !== 0) throw new Error(`attention backward: hpw ${tuning.hpw} does not divide ${G}`);
    return tuning.hpw;
  }
  return G === 1 || Math.ceil(d.S / 64) * d.Hkv * d.B >= 512 ? G : 1;
}

/**
 * Backward of attention() given its output and log-sum-exp (a tensor, or a buffer range): returns
 * [dq, dk, dv], null where `needs` is false (and not computed: grad_kv skips dP and the dk pass
 * when dk is not wanted, and is not launched when neither dk nor dv is). attention() records this;
 * exported for benches.
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
  const maxGroups = gpu.device.limits.maxComputeWorkgroupsPerDimension;
  const u = (nx = 0, R = 0) => params(d, opts).f32(opts.scale ?? 1 / Math.sqrt(d.D)).u32(nx).u32(R);
  const [wantK, wantV] = [needs[1], needs[2]];
  const stage = staging(gpu, d.D);
  const hpw = headsPerGroup(d);
  const spec = (entry: string) => ({
    file: "attention_backward",
    libs: ["attention_backward_tiles"],
    entry,
    overrides: {
      D: d.D,
      ...stage,
      HPW: hpw,
      WANT_K: wantK ? 1 : 0,
      WANT_V: wantV ? 1 : 0,
      HEAVY_FIRST: tuning.heavyFirst ? 1 : 0,
    },
  });
  const delta = Tensor.empty(gpu, [d.B, d.H, d.T], "f32");
  const grid = grid1d(d.B * d.T * d.H, 256, maxGroups);
  gpu.dispatch(spec("delta"), { 4: out.buffer, 6: g.buffer, 7: delta.buffer }, grid, u(grid[0]));
  const lseBinding = lse instanceof Tensor ? lse.buffer : lse;
  const common = { 1: q.buffer, 2: k.buffer, 3: v.buffer, 5: lseBinding, 6: g.buffer, 7: delta.buffer };
  let dq: Tensor | null = null, dk: Tensor | null = null, dv: Tensor | null = null;
  if (wantK || wantV) {
    const G = d.H / d.Hkv;
    const slots = d.H / hpw; // partial slots per (b, s): Hkv when one workgroup takes a whole group
    const partShape = [d.B, d.S, slots, d.D];
    // Unwanted outputs still need a binding; a 16-byte stand-in is never written.
    const make = (want: boolean, shape: readonly number[]) => Tensor.empty(gpu, want ? shape : [4], "f32");
    const pk = make(wantK, partShape), pv = make(wantV, partShape);
    const tiles = Math.ceil(d.S / 64);
    const kvGrid = tuning.heavyFirst ? [slots, tiles, d.B] : [tiles, slots, d.B];
    gpu.dispatch(spec("grad_kv"), { ...common, 9: pk.buffer, 10: pv.buffer }, kvGrid, u());
    if (hpw === G) {
      [dk, dv] = [pk, pv];
    } else {
      dk = make(wantK, k.shape);
      dv = make(wantV, v.shape);
      const sumGrid = grid1d(d.B * d.S * d.Hkv * d.D / 4, 256, maxGroups);
      const bufs = { 9: pk.buffer, 10: pv.buffer, 11: dk.buffer, 12: dv.buffer };
      gpu.dispatch(spec("sum_kv"), bufs, sumGrid, u(sumGrid[0], G / hpw));
      pk.dispose(); // safe: reuse of its buffer is recorded after this dispatch
      pv.dispose();
    }
    if (!wantK) dk = (dk.dispose(), null);
    if (!wantV) dv = (dv.dispose(), null);
  }
  if (needs[0]) {
    dq = Tensor.empty(gpu, q.shape, "f32");
    const tiles = Math.ceil(d.T / 64);
    const grid = tuning.heavyFirst ? [d.H, tiles, d.B] : [tiles, d.H, d.B];
    gpu.dispatch(spec("grad_q"), { ...common, 8: dq.buffer }, grid, u());
  }
  delta.dispose(); // safe: reuse of its buffer is recorded after these dispatches
  return [dq, dk, dv];
}
