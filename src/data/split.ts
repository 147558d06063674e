/**
 * Stratified train / validation / test split: every stratum (disease, source …) is shuffled with its
 * own seeded stream and cut by the ratios, so each split holds each stratum in proportion, and adding
 * a new stratum does not reshuffle the others.
 */
import { DataRng } from "./rng.ts";

/** Split sizes as fractions that sum to 1. */
export type Ratios = readonly [train: number, validation: number, test: number];

/** The three parts. */
export interface Splits<T> {
  train: T[];
  validation: T[];
  test: T[];
}

function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Parses "0.8,0.1,0.1" (or "80,10,10"), normalising to fractions. */
export function parseRatios(s: string): Ratios {
  const xs = s.split(",").map((x) => Number(x.trim()));
  if (xs.length !== 3 || xs.some((x) => !Number.isFinite(x) || x < 0) || xs[0] <= 0) {
    throw new Error(`--split "${s}": expected three non-negative numbers train,validation,test (train > 0)`);
  }
  const sum = xs[0] + xs[1] + xs[2];
  return [xs[0] / sum, xs[1] / sum, xs[2] / sum];
}

/** How many of n items go to validation and test: rounded, and at least one each when n ≥ 3. */
export function stratumCounts(n: number, r: Ratios): [number, number, number] {
  let v = Math.round(n * r[1]), t = Math.round(n * r[2]);
  if (n >= 3) {
    if (r[1] > 0) v = Math.max(v, 1);
    if (r[2] > 0) t = Math.max(t, 1);
  }
  while (v + t >= n && n > 0 && v + t > 0) v >= t ? v-- : t--;
  return [n - v - t, v, t];
}

/**
 * Splits items by stratum. Deterministic for a seed; the order inside each split is shuffled too.
 *
 * @example
 * const s = stratifiedSplit(cases, (c) => c.disease_id, [0.8, 0.1, 0.1], 42);
 */
export function stratifiedSplit<T>(
  items: readonly T[],
  key: (t: T) => string,
  r: Ratios,
  seed: number,
): Splits<T> {
  const groups = new Map<string, T[]>();
  for (const it of items) {
    const k = key(it);
    const g = groups.get(k);
    if (g) g.push(it);
    else groups.set(k, [it]);
  }
  const out: Splits<T> = { train: [], validation: [], test: [] };
  for (const k of [...groups.keys()].sort()) {
    const g = new DataRng(seed ^ hashString(k)).shuffle(groups.get(k)!);
    const [a, v] = stratumCounts(g.length, r);
    out.train.push(...g.slice(0, a));
    out.validation.push(...g.slice(a, a + v));
    out.test.push(...g.slice(a + v));
  }
  const rng = new DataRng(seed);
  return {
    train: rng.shuffle(out.train),
    validation: rng.shuffle(out.validation),
    test: rng.shuffle(out.test),
  };
}
