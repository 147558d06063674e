/**
 * Small text and number helpers shared by the metric files. They reproduce the exact Python
 * behaviour that the reference libraries (sacrebleu, NLTK, rouge-chinese, LLaMA-Factory) rely on,
 * because a metric that agrees with its reference to 1e-6 has to split, strip and round exactly
 * the way Python does.
 * @module
 */

/**
 * Characters for which Python's `str.isspace()` is true (Unicode White_Space plus the ASCII
 * separators \x1c–\x1f). JavaScript's `\s` differs (it adds U+FEFF and lacks \x1c–\x1f, U+0085).
 */
const PY_SPACE =
  "\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PY_SPACE_RUN = new RegExp(`[${PY_SPACE}]+`, "u");
const PY_LEADING = new RegExp(`^[${PY_SPACE}]+`, "u");
const PY_TRAILING = new RegExp(`[${PY_SPACE}]+$`, "u");

/** True when `ch` (one code point) is whitespace to Python's `str.isspace()`. */
export function isPySpace(ch: string): boolean {
  return PY_LEADING.test(ch);
}

/**
 * Python's `s.split()` with no argument: split on runs of whitespace, drop empty pieces.
 * @example pySplit("  a\u3000b \n") // ["a", "b"]
 */
export function pySplit(s: string): string[] {
  return s.split(PY_SPACE_RUN).filter((t) => t.length > 0);
}

/** Python's `s.strip()` (whitespace only). */
export function pyStrip(s: string): string {
  return s.replace(PY_LEADING, "").replace(PY_TRAILING, "");
}

/** Python's `s.rstrip()` (whitespace only). */
export function pyRstrip(s: string): string {
  return s.replace(PY_TRAILING, "");
}

/**
 * Python 3's `round(x, digits)` for floats: the double nearest to the decimal value of `x`
 * correctly rounded to `digits` places, ties to even. `Math.round(x * 1e4) / 1e4` is not the
 * same (the product is inexact and ties go up), which would break 1e-6 agreement on means of
 * rounded values such as LLaMA-Factory's.
 * @example pyRound(0.03125, 4) // 0.0312 (a true tie: even digit kept)
 */
export function pyRound(x: number, digits: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const neg = x < 0;
  // toFixed(100) is the exact decimal expansion for every double we meet (|x| >= 1e-30).
  const exact = Math.abs(x).toFixed(100);
  const dot = exact.indexOf(".");
  const kept = exact.slice(0, dot) + exact.slice(dot + 1, dot + 1 + digits);
  const rest = exact.slice(dot + 1 + digits);
  let k = BigInt(kept);
  const first = rest.charCodeAt(0) - 48;
  const tail = /[1-9]/.test(rest.slice(1));
  if (first > 5 || (first === 5 && (tail || k % 2n === 1n))) k += 1n;
  const v = Number(k) / 10 ** digits;
  return neg ? -v : v;
}

/**
 * Python's `math.fsum`: the correctly rounded sum of the inputs (Shewchuk partials, with CPython's
 * final half-way correction). NLTK's BLEU sums its weighted log precisions with it.
 */
export function fsum(values: Iterable<number>): number {
  const partials: number[] = [];
  for (let x of values) {
    let i = 0;
    for (let y of partials) {
      if (Math.abs(x) < Math.abs(y)) [x, y] = [y, x];
      const hi = x + y;
      const lo = y - (hi - x);
      if (lo !== 0) partials[i++] = lo;
      x = hi;
    }
    partials.length = i;
    partials.push(x);
  }
  let n = partials.length;
  if (n === 0) return 0;
  let hi = partials[--n];
  let lo = 0;
  while (n > 0) {
    const x = hi;
    const y = partials[--n];
    hi = x + y;
    lo = y - (hi - x);
    if (lo !== 0) break;
  }
  // If the remaining partials push the sum over a half-way point, round the other way.
  if (n > 0 && ((lo < 0 && partials[n - 1] < 0) || (lo > 0 && partials[n - 1] > 0))) {
    const y = lo * 2;
    const x = hi + y;
    if (y === x - hi) hi = x;
  }
  return hi;
}

/** Counts of the n-grams of order `n` in `tokens`, keyed by the tokens joined with U+0001. */
export function ngramCounts(tokens: readonly string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join("\u0001");
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** Splits a string into code points (Python's `list(s)`), not UTF-16 units. */
export function codePoints(s: string): string[] {
  return Array.from(s);
}

/** Arithmetic mean; 0 for an empty list (callers document what an empty corpus means). */
export function mean(values: readonly number[]): number {
  if (values.length === 0) return 0;
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}
