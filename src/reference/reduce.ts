/**
 * Float64 references for the reductions (test oracle; readable, not fast).
 */

/** Σ x. */
export function sumRef(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return s;
}

/** Σ x / n (NaN for an empty array, like PyTorch). */
export function meanRef(x: ArrayLike<number>): number {
  return sumRef(x) / x.length;
}

/**
 * Gradient of `scale · Σ x` given the incoming scalar g: scale · g everywhere (scale 1 for sum,
 * 1/n for mean).
 */
export function sumBackwardRef(n: number, g: number, scale = 1): Float64Array {
  return new Float64Array(n).fill(g * scale);
}

/**
 * Σ over arrays of Σ x² (squared global norm).
 *
 * @example
 * sumSquaresRef([[3], [4]]); // 25
 */
export function sumSquaresRef(arrays: ArrayLike<number>[]): number {
  let s = 0;
  for (const a of arrays) for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return s;
}

/** out[c] = (init ? init[c] : 0) + Σ_r x[r, c] for x [rows, cols]. */
export function sumRowsRef(
  x: ArrayLike<number>,
  rows: number,
  cols: number,
  init?: ArrayLike<number>,
): Float64Array {
  const out = new Float64Array(cols);
  for (let c = 0; c < cols; c++) {
    let s = init ? init[c] : 0;
    for (let r = 0; r < rows; r++) s += x[r * cols + c];
    out[c] = s;
  }
  return out;
}
