/**
 * Reference rotary position embedding in float64, Hugging Face "rotate_half" convention (not the
 * interleaved one): for x [B, T, H, D] and each d < D/2 the pair (d, d + D/2) is rotated by
 * angle = position[b, t] · invFreq[d]:
 *   out[d] = x[d]·cos − x[d+D/2]·sin,   out[d+D/2] = x[d+D/2]·cos + x[d]·sin.
 *
 * The angle is rounded to f32 on purpose: HF forms it as an f32 product (inv_freq @ position_ids in
 * float32), and at positions in the thousands that rounding moves cos/sin by ~1e-4 — more than our
 * f32 tolerance — so an oracle that kept it in float64 would disagree with HF and with the kernel.
 */

/** Rotates every (d, d + D/2) pair by `sign` · angle; sign −1 is the backward (the inverse rotation). */
export function ropeRef(
  x: ArrayLike<number>,
  positions: ArrayLike<number>,
  invFreq: ArrayLike<number>,
  [B, T, H, D]: readonly number[],
  sign: 1 | -1 = 1,
): Float64Array {
  const half = D / 2;
  if (!Number.isInteger(half) || invFreq.length !== half) {
    throw new Error(`ropeRef: head dim ${D} needs ${half} inverse frequencies, got ${invFreq.length}`);
  }
  const out = new Float64Array(B * T * H * D);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const pos = positions[b * T + t];
      for (let d = 0; d < half; d++) {
        const angle = Math.fround(pos * Math.fround(invFreq[d]));
        const cos = Math.cos(angle), sin = sign * Math.sin(angle);
        for (let h = 0; h < H; h++) {
          const o = ((b * T + t) * H + h) * D;
          const lo = x[o + d], hi = x[o + d + half];
          out[o + d] = lo * cos - hi * sin;
          out[o + d + half] = hi * cos + lo * sin;
        }
      }
    }
  }
  return out;
}
