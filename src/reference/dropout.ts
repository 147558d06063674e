/** Reference dropout mask and forward: the same counter-based hash as kernels/dropout.wgsl. */
function pcg(v: number): number {
  const state = (Math.imul(v, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> (((state >>> 28) + 4) >>> 0)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** keep[i] = 1 when element i survives dropout with probability p for this seed. */
export function dropoutMaskRef(n: number, p: number, seed: number): Uint8Array {
  const keep = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const r = Math.fround((pcg((Math.imul(i, 0x9e3779b1) + seed) >>> 0) >>> 8) / 16777216);
    keep[i] = r >= p ? 1 : 0;
  }
  return keep;
}

/** out = x · keep / (1 − p); backward is the same map applied to the gradient. */
export function dropoutRef(x: ArrayLike<number>, p: number, seed: number): Float64Array {
  const keep = dropoutMaskRef(x.length, p, seed);
  return Float64Array.from(x, (v, i) => keep[i] ? v / (1 - p) : 0);
}
