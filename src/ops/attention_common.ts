/**
 * What the attention ops share: options, dimension checks, and the uniform block of
 * kernels/attention_forward.wgsl and attention_backward.wgsl.
 *
 * Letters: B batch, T query length, S key length, H query heads, Hkv kv heads (query head h reads kv
 * head floor(h / (H / Hkv))), D head dim (multiple of 4, ≤ 128).
 */
import { Uniforms } from "../gpu/mod.ts";
import type { Tensor } from "../tensor/mod.ts";

/** Masking and scaling of attention(). */
export interface AttentionOptions {
  /** Default true: query i (0-based within T) sees key j iff j ≤ i + (S − T). */
  causal?: boolean;
  /** Sliding window (Mistral): additionally i + (S − T) − j < window. */
  window?: number;
  /** Default 1/sqrt(D). */
  scale?: number;
}

export interface Dims {
  B: number;
  T: number;
  S: number;
  H: number;
  Hkv: number;
  D: number;
}

export const LOG2E = Math.LOG2E;

export function checkHeadDim(op: string, D: number): void {
  if (D % 4 !== 0 || D < 4 || D > 128) {
    throw new Error(`${op}: head dim ${D} unsupported (needs a multiple of 4, at most 128)`);
  }
}

export function checkHeads(op: string, H: number, Hkv: number): void {
  if (Hkv < 1 || H % Hkv !== 0) {
    throw new Error(`${op}: ${H} query heads are not a multiple of ${Hkv} kv heads`);
  }
}

export function dimsOf(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions): Dims {
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

export function params(d: Dims, opts: AttentionOptions): Uniforms {
  const scale = opts.scale ?? 1 / Math.sqrt(d.D);
  return new Uniforms().u32(d.B).u32(d.T).u32(d.S).u32(d.H).u32(d.Hkv).u32((opts.causal ?? true) ? 1 : 0)
    .u32(opts.window ?? 0).f32(scale * LOG2E);
}
