/**
 * Near-duplicate detection: MinHash signatures over character shingles with LSH banding. Character
 * shingles work for Chinese (no word breaks) and English alike. A record is a near duplicate when its
 * estimated Jaccard similarity to an earlier kept record reaches the threshold.
 */

/** Lower case, NFKC, punctuation dropped, whitespace collapsed: formatting differences do not count. */
export function normaliseText(s: string): string {
  return s.normalize("NFKC").toLowerCase().replace(/[^\p{L}\p{N}]+/gu, " ").trim();
}

function fnv1a(s: string, from: number, to: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** murmur3's finaliser: a cheap bijective mix, used as the i-th "permutation" after xor with a seed. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Hashes of the character k-grams of normalised text (the whole text when shorter than k). */
export function shingles(text: string, k = 5): Set<number> {
  const t = normaliseText(text), out = new Set<number>();
  if (t.length <= k) out.add(fnv1a(t, 0, t.length));
  for (let i = 0; i + k <= t.length; i++) out.add(fnv1a(t, i, i + k));
  return out;
}

/** Exact Jaccard similarity of two shingle sets (tests use it as the oracle). */
export function jaccard(a: Set<number>, b: Set<number>): number {
  let inter = 0;
  for (const x of a) if (b.has(x)) inter++;
  return inter / (a.size + b.size - inter || 1);
}

/** Options of {@link NearDuplicateIndex}. */
export interface MinHashOptions {
  /** Estimated Jaccard at or above which a record is a duplicate (default 0.8). */
  threshold?: number;
  /** Signature length = bands × rows (default 16 × 8: candidates from about Jaccard 0.7). */
  bands?: number;
  rows?: number;
  shingleSize?: number;
}

/**
 * Incremental index: `add(text)` returns the id of an earlier near-duplicate (and does not store the
 * text), or null after storing it.
 *
 * @example
 * const idx = new NearDuplicateIndex();
 * idx.add("a long abstract ...", 0); // null
 * idx.add("a long abstract ... (reformatted)", 1); // 0
 */
export class NearDuplicateIndex {
  readonly threshold: number;
  readonly #bands: number;
  readonly #rows: number;
  readonly #k: number;
  readonly #seeds: Uint32Array;
  readonly #buckets = new Map<string, number[]>();
  readonly #sigs = new Map<number, Uint32Array>();

  constructor(o: MinHashOptions = {}) {
    this.threshold = o.threshold ?? 0.8;
    this.#bands = o.bands ?? 16;
    this.#rows = o.rows ?? 8;
    this.#k = o.shingleSize ?? 5;
    const n = this.#bands * this.#rows;
    this.#seeds = new Uint32Array(n);
    for (let i = 0; i < n; i++) this.#seeds[i] = fmix32(0x9e3779b9 + i * 0x7f4a7c15);
  }

  /** MinHash signature of a text. */
  signature(text: string): Uint32Array {
    const sig = new Uint32Array(this.#seeds.length).fill(0xffffffff);
    for (const h of shingles(text, this.#k)) {
      for (let i = 0; i < sig.length; i++) {
        const v = fmix32(h ^ this.#seeds[i]);
        if (v < sig[i]) sig[i] = v;
      }
    }
    return sig;
  }

  /** Share of equal signature positions: an unbiased estimate of the Jaccard similarity. */
  static estimate(a: Uint32Array, b: Uint32Array): number {
    let eq = 0;
    for (let i = 0; i < a.length; i++) if (a[i] === b[i]) eq++;
    return eq / a.length;
  }

  /** Checks `text` against the stored ones; stores it under `id` when it is not a near duplicate. */
  add(text: string, id: number): { duplicateOf: number; similarity: number } | null {
    const sig = this.signature(text);
    const keys: string[] = [];
    const seen = new Set<number>();
    for (let b = 0; b < this.#bands; b++) {
      const key = `${b}:${sig.subarray(b * this.#rows, (b + 1) * this.#rows).join(",")}`;
      keys.push(key);
      for (const other of this.#buckets.get(key) ?? []) {
        if (seen.has(other)) continue;
        seen.add(other);
        const sim = NearDuplicateIndex.estimate(sig, this.#sigs.get(other)!);
        if (sim >= this.threshold) return { duplicateOf: other, similarity: sim };
      }
    }
    this.#sigs.set(id, sig);
    for (const key of keys) {
      const list = this.#buckets.get(key);
      if (list) list.push(id);
      else this.#buckets.set(key, [id]);
    }
    return null;
  }
}
