/**
 * Seeded percentile-bootstrap confidence intervals for evaluation metrics: resample the samples
 * with replacement B times, recompute the statistic on each resample, and take the
 * (1 − level)/2 and (1 + level)/2 quantiles of those B values (linear interpolation between order
 * statistics, numpy's default). The same seed gives the same interval on every machine.
 * @module
 */

/** A bootstrap result: the statistic on the full data and its interval. */
export interface ConfidenceInterval {
  /** The statistic on the original samples. */
  value: number;
  low: number;
  high: number;
  /** Confidence level, e.g. 0.95. */
  level: number;
  resamples: number;
}

/** Options for the bootstrap helpers. */
export interface BootstrapOptions {
  /** Number of resamples (default 1000). */
  resamples?: number;
  /** Seed of the resampling generator (default 0). */
  seed?: number;
  /** Confidence level in (0, 1) (default 0.95). */
  level?: number;
}

/**
 * A small seeded generator (mulberry32): uniform floats in [0, 1). Not cryptographic; chosen for
 * being tiny, fast and identical everywhere.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The q-quantile (0 ≤ q ≤ 1) of sorted values, interpolating linearly (numpy "linear"). */
export function quantileSorted(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) throw new Error("quantile of an empty list");
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * Bootstrap CI of any statistic that is computed from a set of sample indices — use this for
 * corpus-level metrics (e.g. corpus BLEU recomputed from the resampled segments).
 * @example bootstrapStatistic(refs.length, (idx) => sacreBleuCorpus(idx.map(i => preds[i]), idx.map(i => refs[i])).score)
 */
export function bootstrapStatistic(
  n: number,
  statistic: (indices: number[]) => number,
  options: BootstrapOptions = {},
): ConfidenceInterval {
  const { resamples = 1000, seed = 0, level = 0.95 } = options;
  if (n <= 0) throw new Error("bootstrap: there are no samples to resample");
  if (!(level > 0 && level < 1)) throw new Error(`bootstrap: level must be in (0, 1), got ${level}`);
  if (!(resamples >= 1)) throw new Error(`bootstrap: resamples must be at least 1, got ${resamples}`);
  const all = Array.from({ length: n }, (_, i) => i);
  const value = statistic(all);
  const rand = mulberry32(seed);
  const stats: number[] = new Array(resamples);
  const idx = new Array<number>(n);
  for (let b = 0; b < resamples; b++) {
    for (let i = 0; i < n; i++) idx[i] = Math.floor(rand() * n);
    stats[b] = statistic(idx);
  }
  stats.sort((x, y) => x - y);
  return {
    value,
    low: quantileSorted(stats, (1 - level) / 2),
    high: quantileSorted(stats, (1 + level) / 2),
    level,
    resamples,
  };
}

/**
 * Bootstrap CI of the mean of per-sample values (accuracy as 0/1 values, per-sample F1, BLEU,
 * ROUGE…). O(B·n) with no allocation per resample.
 * @example bootstrapMean([1, 0, 1, 1], { seed: 42 }) // { value: 0.75, low: …, high: …, level: 0.95, … }
 */
export function bootstrapMean(values: readonly number[], options: BootstrapOptions = {}): ConfidenceInterval {
  return bootstrapStatistic(values.length, (idx) => {
    let s = 0;
    for (const i of idx) s += values[i];
    return s / idx.length;
  }, options);
}
