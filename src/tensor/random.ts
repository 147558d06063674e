/**
 * Seeded pseudo-random numbers (mulberry32 + Box–Muller). Deterministic across runs and platforms, so
 * initialisation, data shuffling and tests repeat exactly for a seed.
 */
export class Rng {
  #s: number;
  #spare: number | null = null;

  constructor(seed: number) {
    this.#s = (seed >>> 0) ^ 0x9e3779b9;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo = -1, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }

  /** Standard normal. */
  normal(): number {
    if (this.#spare !== null) {
      const s = this.#spare;
      this.#spare = null;
      return s;
    }
    const u = Math.max(this.next(), 1e-300);
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /**
   * The generator's whole state (for checkpoints): restoring it with {@link setState} continues the
   * exact same sequence.
   *
   * @example
   * const saved = rng.state(); rng.next(); rng.setState(saved); // next() repeats
   */
  state(): [number, number | null] {
    return [this.#s, this.#spare];
  }

  /** Restores a state from {@link state}. */
  setState(s: readonly [number, number | null]): void {
    if (!Array.isArray(s) || !Number.isInteger(s[0]) || (s[1] !== null && typeof s[1] !== "number")) {
      throw new Error(`Rng.setState: want [u32, number | null], got ${JSON.stringify(s)}`);
    }
    this.#s = s[0] >>> 0;
    this.#spare = s[1];
  }

  /** `n` uniform values in [lo, hi) as a Float32Array. */
  uniformArray(n: number, lo = -1, hi = 1): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.uniform(lo, hi);
    return a;
  }
}
