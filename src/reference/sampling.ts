/**
 * Float64 reference of kernels/sampling.wgsl (the test oracle; readable, never optimised): HF's
 * repetition penalty, greedy argmax, temperature / top-k / top-p filtering and the seeded draw.
 * Sampling has no backward.
 */

/** PCG hash, bit-identical to the kernel's pcg(). */
export function pcg(v: number): number {
  const s = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const w = Math.imul(((s >>> ((s >>> 28) + 4)) ^ s) >>> 0, 277803737) >>> 0;
  return ((w >>> 22) ^ w) >>> 0;
}

/** The kernel's rand(a, b, c): 24 random bits as a uniform in [0, 1). */
export function rand(a: number, b: number, c: number): number {
  return (pcg((pcg((pcg(a) ^ b) >>> 0) + c) >>> 0) >>> 8) / 16777216;
}

/** HF RepetitionPenaltyLogitsProcessor: seen tokens' logits divided (if > 0) or multiplied by `penalty`. */
export function penalise(logits: ArrayLike<number>, seen: Set<number>, penalty: number): number[] {
  return Array.from(logits, (x, i) => (seen.has(i) ? (x > 0 ? x / penalty : x * penalty) : x));
}

/** Index of the largest value, lowest index on ties. */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/**
 * Probabilities after temperature, top-k (keep the k largest) and top-p (keep the smallest top set
 * whose mass reaches p of what top-k kept), renormalised; 0 for dropped tokens.
 */
export function filteredProbs(
  x: ArrayLike<number>,
  temperature: number,
  topK: number,
  topP: number,
): number[] {
  const s = Array.from(x, (v) => v / temperature);
  const order = s.map((_, i) => i).sort((a, b) => s[b] - s[a] || a - b);
  const m = s[order[0]];
  let keep = topK > 0 && topK < s.length ? topK : s.length;
  // Ties with the k-th value stay in (the kernel keeps x ≥ threshold).
  while (keep < s.length && s[order[keep]] === s[order[keep - 1]]) keep++;
  if (topP < 1) {
    const z = order.slice(0, keep).reduce((a, i) => a + Math.exp(s[i] - m), 0);
    let acc = 0, n = 0;
    while (n < keep && acc < topP * z) acc += Math.exp(s[order[n++]] - m);
    while (n < keep && s[order[n]] === s[order[n - 1]]) n++;
    keep = n;
  }
  const kept = new Set(order.slice(0, keep));
  const p = s.map((v, i) => (kept.has(i) ? Math.exp(v - m) : 0));
  const total = p.reduce((a, b) => a + b, 0);
  return p.map((v) => v / total);
}

/** The token the kernel draws for uniform u: walk the kept probabilities in index order. */
export function drawIndex(probs: number[], u: number): number {
  let acc = 0, last = 0;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] === 0) continue;
    last = i;
    acc += probs[i];
    if (acc > u) return i;
  }
  return last;
}
