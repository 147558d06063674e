/**
 * Reference versions, in float64, of decode's fused launches (src/ops: fusedLinear, gateUpSwiglu,
 * ropeKvWrite, addRmsNorm): each is the composition of the plain references it replaces.
 */
import { rmsNormRef } from "./rmsnorm.ts";
import { ropeRef } from "./rope.ts";
import { swigluRef } from "./swiglu.ts";

/** y [M, N] = x [M, K] · Wᵀ (+ bias) for one weight W [N, K]. */
function linearRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  M: number,
  K: number,
) {
  const N = w.length / K;
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = bias ? bias[n] : 0;
      for (let k = 0; k < K; k++) s += x[m * K + k] * w[n * K + k];
      y[m * N + n] = s;
    }
  }
  return y;
}

/** fusedLinear: [M, ΣNi], the products x·Wiᵀ (+ bi) side by side in weight order. */
export function fusedLinearRef(
  x: ArrayLike<number>,
  weights: ArrayLike<number>[],
  biases: ArrayLike<number>[] | null,
  M: number,
  K: number,
): Float64Array {
  const parts = weights.map((w, i) => linearRef(x, w, biases ? biases[i] : null, M, K));
  const widths = weights.map((w) => w.length / K);
  const N = widths.reduce((a, b) => a + b, 0);
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    let col = 0;
    parts.forEach((p, i) => {
      out.set(p.subarray(m * widths[i], (m + 1) * widths[i]), m * N + col);
      col += widths[i];
    });
  }
  return out;
}

/** gateUpSwiglu: silu(x·Gᵀ + bg) ⊙ (x·Uᵀ + bu), [M, F]. */
export function gateUpSwigluRef(
  x: ArrayLike<number>,
  gate: ArrayLike<number>,
  up: ArrayLike<number>,
  biases: [ArrayLike<number>, ArrayLike<number>] | null,
  M: number,
  K: number,
): Float64Array {
  return swigluRef(
    linearRef(x, gate, biases?.[0] ?? null, M, K),
    linearRef(x, up, biases?.[1] ?? null, M, K),
  );
}

/**
 * ropeKvWrite: qkv [B, (H + 2·Hkv)·D] → rotated q [B, H, D]; the rotated k and the v of sequence b are
 * written into copies of the caches [B, Hkv, maxT, D] at row rows[b] (dropped past maxT).
 */
export function ropeKvWriteRef(
  qkv: ArrayLike<number>,
  positions: ArrayLike<number>,
  rows: ArrayLike<number>,
  invFreq: ArrayLike<number>,
  dims: { B: number; H: number; Hkv: number; D: number; maxT: number },
  kCache: ArrayLike<number>,
  vCache: ArrayLike<number>,
): { q: Float64Array; k: Float64Array; v: Float64Array } {
  const { B, H, Hkv, D, maxT } = dims;
  const W = (H + 2 * Hkv) * D;
  const slice = (b: number, from: number, n: number) => Array.from(qkv).slice(b * W + from, b * W + from + n);
  const q = new Float64Array(B * H * D);
  const k = Float64Array.from(kCache), v = Float64Array.from(vCache);
  for (let b = 0; b < B; b++) {
    const pos = [positions[b]];
    q.set(ropeRef(slice(b, 0, H * D), pos, invFreq, [1, 1, H, D]), b * H * D);
    const kr = ropeRef(slice(b, H * D, Hkv * D), pos, invFreq, [1, 1, Hkv, D]);
    const vr = slice(b, (H + Hkv) * D, Hkv * D);
    if (rows[b] >= maxT) continue;
    for (let g = 0; g < Hkv; g++) {
      const at = ((b * Hkv + g) * maxT + rows[b]) * D;
      k.set(kr.subarray(g * D, (g + 1) * D), at);
      v.set(vr.slice(g * D, (g + 1) * D), at);
    }
  }
  return { q, k, v };
}

/** addRmsNorm: s = x + d and y = rmsNorm(s) ⊙ w per row of C. */
export function addRmsNormRef(
  x: ArrayLike<number>,
  d: ArrayLike<number>,
  w: ArrayLike<number>,
  rows: number,
  cols: number,
  eps: number,
): { sum: Float64Array; y: Float64Array } {
  const sum = Float64Array.from(x, (v, i) => v + d[i]);
  return { sum, y: rmsNormRef(sum, w, rows, cols, eps) };
}
