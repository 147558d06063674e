/**
 * Backward of attention() (kernels/attention_backward.wgsl): a delta pass (rowsum of out · dout, packed
 * with the log-sum-exp), then dk/dv per key tile (per group of query heads, summed by sum_kv when a kv
 * head's query heads are split over workgroups) and dq per query tile — from the dS tiles grad_kv
 * stored (grad_q_ds) when they fit the memory budget, else recomputed (grad_q).
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
  /**
   * Most bytes of dS tiles (B·H·pairs·16 KiB; B1 T2048 H32 causal: 277 MB) grad_kv may store for dq;
   * past it (or 0) dq recomputes S and dP (grad_q: 3 products per tile instead of 1). H200, B1 T2048
   * H32/8 D128 causal: 7.36 ms without, 5.37 with (grad_q 2.81 ms → grad_q_ds 0.78).
   */
  dsMaxBytes: number;
  /**
   * grad_kv with dk and dv: one phase B for both products (P and dS tiles side by side, 48 KiB of
   * workgroup memory at D 128) where the device has the memory (not lavapipe's 32 KiB). H200 at
   * T2048 as above: grad_kv 4.54 → 4.05 ms.
   */
  mergeB: boolean;
  /**
   * With mergeB: grad_kv's phase A in 32-wide head-dim chunks (half its barriers, in the memory the
   * merged phase B takes anyway). H200 at T2048: grad_kv 4.05 → 3.73 ms.
   */
  wideA: boolean;
  /**
   * With mergeB: grad_kv's threads in two roles (S, P, dv and dP, dS, dk), each owning an 8 × 4 score
   * block and 8 keys × 8 columns of its gradient, so phases A and B read less workgroup memory per FMA
   * (same results bit for bit). H200, B1 T2048 H32/8 D128 causal: grad_kv 3.85 → 3.77 ms; T1024
   * 1.02 → 1.00 ms: the kernel is not bound by workgroup-memory reads.
   */
  split: boolean;
}

let tuning: AttentionBackwardTuning = {
  nbuf: null,
  pada: null,
  hpw: null,
  heavyFirst: true,
  dsMaxBytes: 1 << 30,
  mergeB: true,
  wideA: true,
  split: true,
};

/** Sets the tuning (for workbenches); returns the previous one. */
export function setAttentionBackwardTuning(t: Partial<AttentionBackwardTuning>): AttentionBackwardTuning {
  const old = tuning;
  tuning = { ...old, ...t };
  return old;
}

/** Workgroup memory (vec4 count) the kernel's `sm` needs for these choices. */
function smemVec4(D: number, nbuf: number, pada: number, merge = false): number {
  const ds4 = 16 * Math.ceil(D / 64);
  const b = merge ? 2048 + nbuf * 32 * ds4 : 1024 + nbuf * 16 * ds4;
  return Math.max(nbuf * 4 * 16 * (16 + pada), b);
}

/**
 * Staging that fits the device. Single buffering is preferred: on the H200 it measured faster than
 * double buffering (2.71 vs 2.86 ms at T 1024, H 32/8, D 128: less workgroup memory per workgroup
 * outweighs the second barrier per chunk).
 */
function staging(gpu: Gpu, D: number): { NBUF: number; PADA: number; SMEM: number; MERGE_SMEM: number } {
  const limit = gpu.device.limits.maxComputeWorkgroupStorageSize;
  for (const [nbuf, pada] of [[1, 1], [1, 0], [2, 1], [2, 0]]) {
    if (tuning.nbuf !== null && nbuf !== tuning.nbuf) continue;
    if (tuning.pada !== null && pada !== tuning.pada) continue;
    const smem = smemVec4(D, nbuf, pada);
    // MERGE_SMEM: grad_kv's need with MERGE_B (0 when it does not fit).
    const merged = smemVec4(D, nbuf, pada, true);
    if (smem * 16 <= limit) {
      return { NBUF: nbuf, PADA: pada, SMEM: smem, MERGE_SMEM: merged * 16 <= limit ? merged : 0 };
    }
  }
  throw new Error(`attention backward: no staging fits ${limit} bytes of workgroup memory`);
}

/**
 * Query heads per grad_kv workgroup: all G of a kv head when that already gives enough workgroups
 * (256: H200 at B1 T2048 H32/8 D128, 256 workgroups: grad_kv 3.71 ms and no sum_kv with HPW = G, vs
 * 3.77 + 0.02 with HPW 1; at T1024, 128 workgroups, HPW = G took 1.85 ms vs 1.00).
 */
function headsPerGroup(d: Dims): number {
  const G = d.H / d.Hkv;
  if (tuning.hpw !== null) {
    if (G % tuning.hpw !== 0) throw new Error(`attention backward: hpw ${tuning.hpw} does not divide ${G}`);
    return tuning.hpw;
  }
  return G === 1 || Math.ceil(d.S / 64) * d.Hkv * d.B >= 256 ? G : 1;
}

/** Query tiles that see key tile k0 (kernel qRange + pairs): grad_kv's loop, one dS slot each. */
function pairsOf(d: Dims, opts: AttentionOptions, k0: number): number {
  const off = d.S - d.T;
  const clamp = (x: number, lo: number, hi: number) => Math.min(Math.max(x, lo), hi);
  const first = (opts.causal ?? true) ? Math.floor(clamp(k0 - off, 0, d.T) / 64) * 64 : 0;
  const end = opts.window ? clamp(Math.min(k0 + 63, d.S - 1) + opts.window - off, 0, d.T) : d.T;
  return end > first ? Math.ceil(end / 64) - first / 64 : 0;
}

/** dS tile slots per (b, h): Σ over key tiles of pairsOf. */
function dsSlots(d: Dims, opts: AttentionOptions): number {
  let n = 0;
  for (let k0 = 0; k0 < d.S; k0 += 64) n += pairsOf(d, opts, k0);
  return n;
}

/** One dispatch of a backward plan, for workbenches that time the entries one by one. */
export interface BackwardStep {
  name: string;
  run: () => void;
}

/**
 * The backward's dispatches, not yet recorded: `steps` in launch order (each re-runnable: it only
 * overwrites its outputs), `grads` = [dq, dk, dv] (null where not wanted) valid once all steps ran,
 * `release()` frees the temporaries (after the steps are recorded). attentionBackward runs a plan.
 */
export function planAttentionBackward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  lse: Tensor | Binding,
  g: Tensor,
  opts: AttentionOptions = {},
  needs: boolean[] = [true, true, true],
): { steps: BackwardStep[]; grads: (Tensor | null)[]; release: () => void } {
  const d = dimsOf(q, k, v, opts);
  const gpu = q.gpu;
  const maxGroups = gpu.device.limits.maxComputeWorkgroupsPerDimension;
  const [wantQ, wantK, wantV] = needs;
  // dq from stored dS tiles when grad_kv runs anyway and the tiles fit the budget and a binding.
  const nslot = dsSlots(d, opts);
  const dsBytes = d.B * d.H * nslot * 64 * 64 * 4;
  const limit = Math.min(gpu.device.limits.maxStorageBufferBindingSize, gpu.device.limits.maxBufferSize);
  const useDS = wantQ && (wantK || wantV) && dsBytes > 0 && dsBytes <= Math.min(tuning.dsMaxBytes, limit);
  const u = (nx = 0, R = 0) =>
    params(d, opts).f32(opts.scale ?? 1 / Math.sqrt(d.D)).u32(nx).u32(R).u32(useDS ? nslot : 0);
  const { MERGE_SMEM, ...stage } = staging(gpu, d.D);
  const merge = wantK && wantV && tuning.mergeB && MERGE_SMEM > 0;
  const hpw = headsPerGroup(d);
  const heavyFirst = tuning.heavyFirst; // read now: the steps may run after the tuning changed
  const overrides = {
    D: d.D,
    ...stage,
    HPW: hpw,
    WANT_K: wantK ? 1 : 0,
    WANT_V: wantV ? 1 : 0,
    DS_OUT: useDS ? 1 : 0,
    HEAVY_FIRST: heavyFirst ? 1 : 0,
  };
  const spec = (entry: string) => ({
    file: "attention_backward",
    libs: ["attention_backward_tiles", "attention_backward_kv"],
    entry,
    overrides,
  });
  // grad_kv alone takes the merged phase B's memory: the other entries keep their occupancy.
  const wide = merge && tuning.wideA && stage.NBUF * 4 * 32 * (16 + stage.PADA) <= MERGE_SMEM;
  const kvOverrides = merge
    ? { ...overrides, MERGE_B: 1, SPLIT: tuning.split ? 1 : 0, SMEM: MERGE_SMEM, AD: wide ? 32 : 16 }
    : overrides;
  const kvSpec = { ...spec("grad_kv"), overrides: kvOverrides };
  const steps: BackwardStep[] = [];
  const temps: Tensor[] = [];
  const temp = (shape: number[]) => {
    const t = Tensor.empty(gpu, shape, "f32");
    temps.push(t);
    return t;
  };
  const ld = temp([d.B, d.H, d.T, 2]); // (lse · log2 e, Δ) per query row
  const grid = grid1d(d.B * d.T * d.H, 256, maxGroups);
  const lseBinding = lse instanceof Tensor ? lse.buffer : lse;
  const ldBufs = { 4: out.buffer, 5: lseBinding, 6: g.buffer, 7: ld.buffer };
  steps.push({ name: "delta", run: () => gpu.dispatch(spec("delta"), ldBufs, grid, u(grid[0])) });
  const common = { 1: q.buffer, 2: k.buffer, 3: v.buffer, 6: g.buffer, 7: ld.buffer };
  let dq: Tensor | null = null, dk: Tensor | null = null, dv: Tensor | null = null;
  const ds = useDS ? temp([d.B, d.H, nslot, 64, 64]) : null;
  if (wantK || wantV) {
    const G = d.H / d.Hkv;
    const slots = d.H / hpw; // partial slots per (b, s): Hkv when one workgroup takes a whole group
    const partShape = [d.B, d.S, slots, d.D];
    // Unwanted outputs still need a binding; a 16-byte stand-in is never written.
    const make = (want: boolean, shape: readonly number[]) => Tensor.empty(gpu, want ? shape : [4], "f32");
    const pk = make(wantK, partShape), pv = make(wantV, partShape);
    const tiles = Math.ceil(d.S / 64);
    const kvGrid = heavyFirst ? [slots, tiles, d.B] : [tiles, slots, d.B];
    // grad_kv's layout always holds dsb (its store is compiled in, DS_OUT only skips it): a stand-in.
    const dsBind = ds ?? temp([4]);
    const kvBufs = { ...common, 9: pk.buffer, 10: pv.buffer, 13: dsBind.buffer };
    steps.push({ name: "grad_kv", run: () => gpu.dispatch(kvSpec, kvBufs, kvGrid, u()) });
    if (hpw === G) {
      [dk, dv] = [pk, pv];
    } else {
      temps.push(pk, pv);
      dk = make(wantK, k.shape);
      dv = make(wantV, v.shape);
      const sumGrid = grid1d(d.B * d.S * d.Hkv * d.D / 4, 256, maxGroups);
      const bufs = { 9: pk.buffer, 10: pv.buffer, 11: dk.buffer, 12: dv.buffer };
      steps.push({
        name: "sum_kv",
        run: () => gpu.dispatch(spec("sum_kv"), bufs, sumGrid, u(sumGrid[0], G / hpw)),
      });
    }
    if (!wantK) temps.push(dk), dk = null;
    if (!wantV) temps.push(dv), dv = null;
  }
  if (wantQ) {
    const dqt = Tensor.empty(gpu, q.shape, "f32");
    dq = dqt;
    const tiles = Math.ceil(d.T / 64);
    const qGrid = heavyFirst ? [d.H, tiles, d.B] : [tiles, d.H, d.B];
    if (ds) {
      // q and dout are bound because phase B's loader names them (only k is read here).
      const bufs = { 1: q.buffer, 2: k.buffer, 6: g.buffer, 8: dqt.buffer, 13: ds.buffer };
      steps.push({ name: "grad_q_ds", run: () => gpu.dispatch(spec("grad_q_ds"), bufs, qGrid, u()) });
    } else {
      const bufs = { ...common, 8: dqt.buffer };
      steps.push({ name: "grad_q", run: () => gpu.dispatch(spec("grad_q"), bufs, qGrid, u()) });
    }
  }
  // Disposing is safe once the steps are recorded: the pool hands a buffer out again only to work
  // recorded after them.
  return { steps, grads: [dq, dk, dv], release: () => temps.forEach((t) => t!.dispose()) };
}

/**
 * Backward of attention() given its output and log-sum-exp (a tensor, or a buffer range): returns
 * [dq, dk, dv], null where `needs` is false (and not computed: grad_kv skips dP and the dk pass
 * when neither dk nor dq is wanted, and is not launched when neither dk nor dv is). attention()
 * records this; exported for benches.
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
  const plan = planAttentionBackward(q, k, v, out, lse, g, opts, needs);
  for (const s of plan.steps) s.run();
  plan.release();
  return plan.grads;
}
