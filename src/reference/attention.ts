/**
 * Reference scaled-dot-product attention in float64: the test oracle for kernels/attention_*.wgsl.
 * Plain loops over the full T×S score matrix, written for reading, never for speed.
 *
 * Letters: B batch, T query length, S key length, H query heads, Hkv key/value heads (query head h
 * reads kv head floor(h / (H / Hkv))), D head dim. Layouts: q/out [B, T, H, D], k/v [B, S, Hkv, D],
 * lse [B, H, T]; decode caches [B, Hkv, maxT, D].
 *
 * Mask: query i (0-based within T) sees key j iff (not causal or j ≤ i + (S − T)) and
 * (no window or i + (S − T) − j < window).
 */
export interface AttentionRefDims {
  B: number;
  T: number;
  S: number;
  H: number;
  Hkv: number;
  D: number;
}

export interface AttentionRefOptions {
  causal?: boolean;
  window?: number;
  scale?: number;
}

/** True when query i may attend to key j (the one mask rule every kernel implements). */
export function visible(i: number, j: number, T: number, S: number, opts: AttentionRefOptions): boolean {
  const pos = i + (S - T);
  if ((opts.causal ?? true) && j > pos) return false;
  if (opts.window && pos - j >= opts.window) return false;
  return true;
}

const qIndex = (d: AttentionRefDims, b: number, t: number, h: number) => ((b * d.T + t) * d.H + h) * d.D;
const kIndex = (d: AttentionRefDims, b: number, s: number, g: number) => ((b * d.S + s) * d.Hkv + g) * d.D;

/** Softmax probabilities of one (b, h, i) row: p[j] (0 where masked) and the row's log-sum-exp. */
function row(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  dims: AttentionRefDims,
  opts: AttentionRefOptions,
  b: number,
  h: number,
  i: number,
): { p: Float64Array; lse: number } {
  const { T, S, H, Hkv, D } = dims;
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const g = Math.floor(h / (H / Hkv));
  const s = new Float64Array(S).fill(-Infinity);
  let max = -Infinity;
  for (let j = 0; j < S; j++) {
    if (!visible(i, j, T, S, opts)) continue;
    let dot = 0;
    for (let d = 0; d < D; d++) dot += q[qIndex(dims, b, i, h) + d] * k[kIndex(dims, b, j, g) + d];
    s[j] = dot * scale;
    max = Math.max(max, s[j]);
  }
  let sum = 0;
  for (let j = 0; j < S; j++) sum += s[j] === -Infinity ? 0 : Math.exp(s[j] - max);
  const p = s.map((x) => x === -Infinity ? 0 : Math.exp(x - max) / sum);
  return { p, lse: max + Math.log(sum) };
}

/** Forward: out [B, T, H, D] and lse [B, H, T] (natural log). */
export function attentionRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dims: AttentionRefDims,
  opts: AttentionRefOptions = {},
): { out: Float64Array; lse: Float64Array } {
  const { B, T, S, H, Hkv, D } = dims;
  const out = new Float64Array(B * T * H * D);
  const lse = new Float64Array(B * H * T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / (H / Hkv));
      for (let i = 0; i < T; i++) {
        const r = row(q, k, dims, opts, b, h, i);
        lse[(b * H + h) * T + i] = r.lse;
        for (let j = 0; j < S; j++) {
          if (r.p[j] === 0) continue;
          for (let d = 0; d < D; d++) out[qIndex(dims, b, i, h) + d] += r.p[j] * v[kIndex(dims, b, j, g) + d];
        }
      }
    }
  }
  return { out, lse };
}

/**
 * Backward: gradients of Σ dOut ⊙ out with respect to q, k, v. With P = softmax(scale·q·kᵀ):
 * dv = Pᵀ·dOut, dP = dOut·vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)), dq = scale·dS·k, dk = scale·dSᵀ·q;
 * dk and dv sum over the query heads that share a kv head.
 */
export function attentionBackwardRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dOut: ArrayLike<number>,
  dims: AttentionRefDims,
  opts: AttentionRefOptions = {},
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const { B, T, S, H, Hkv, D } = dims;
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const dq = new Float64Array(B * T * H * D);
  const dk = new Float64Array(B * S * Hkv * D);
  const dv = new Float64Array(B * S * Hkv * D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / (H / Hkv));
      for (let i = 0; i < T; i++) {
        const { p } = row(q, k, dims, opts, b, h, i);
        const qi = qIndex(dims, b, i, h);
        const dp = new Float64Array(S);
        let rowSum = 0;
        for (let j = 0; j < S; j++) {
          if (p[j] === 0) continue;
          for (let d = 0; d < D; d++) dp[j] += dOut[qi + d] * v[kIndex(dims, b, j, g) + d];
          rowSum += dp[j] * p[j];
        }
        for (let j = 0; j < S; j++) {
          if (p[j] === 0) continue;
          const ds = p[j] * (dp[j] - rowSum);
          const kj = kIndex(dims, b, j, g);
          for (let d = 0; d < D; d++) {
            dv[kj + d] += p[j] * dOut[qi + d];
            dq[qi + d] += scale * ds * k[kj + d];
            dk[kj + d] += scale * ds * q[qi + d];
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}

/**
 * Decode: q [B, 1, H, D] against caches [B, Hkv, maxT, D] where sequence b has lengths[b] valid keys
 * (the query is the token at position lengths[b] − 1). Returns out [B, 1, H, D].
 */
export function attentionDecodeRef(
  q: ArrayLike<number>,
  kCache: ArrayLike<number>,
  vCache: ArrayLike<number>,
  lengths: ArrayLike<number>,
  dims: { B: number; H: number; Hkv: number; D: number; maxT: number },
  opts: { window?: number; scale?: number } = {},
): Float64Array {
  const { B, H, Hkv, D, maxT } = dims;
  const out = new Float64Array(B * H * D);
  for (let b = 0; b < B; b++) {
    // Gather this sequence's keys into the [1, S, Hkv, D] layout and reuse the forward reference.
    const S = lengths[b];
    const k = new Float64Array(S * Hkv * D), v = new Float64Array(S * Hkv * D);
    for (let j = 0; j < S; j++) {
      for (let g = 0; g < Hkv; g++) {
        for (let d = 0; d < D; d++) {
          k[(j * Hkv + g) * D + d] = kCache[((b * Hkv + g) * maxT + j) * D + d];
          v[(j * Hkv + g) * D + d] = vCache[((b * Hkv + g) * maxT + j) * D + d];
        }
      }
    }
    const qb = Array.from(q).slice(b * H * D, (b + 1) * H * D);
    const r = attentionRef(qb, k, v, { B: 1, T: 1, S, H, Hkv, D }, { causal: true, ...opts });
    out.set(r.out, b * H * D);
  }
  return out;
}
