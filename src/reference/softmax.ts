/**
 * Float64 reference for row softmax over the last dimension (test oracle; readable, not fast).
 */

/**
 * y[r, i] = exp(x[r, i] − max_r) / Σ_j exp(x[r, j] − max_r) for `rows` rows of `v` elements.
 *
 * @example
 * softmaxRef([0, Math.log(3)], 1, 2); // [0.25, 0.75]
 */
export function softmaxRef(x: ArrayLike<number>, rows: number, v: number): Float64Array {
  const y = new Float64Array(rows * v);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let i = 0; i < v; i++) max = Math.max(max, x[r * v + i]);
    let sum = 0;
    for (let i = 0; i < v; i++) sum += Math.exp(x[r * v + i] - max);
    for (let i = 0; i < v; i++) y[r * v + i] = Math.exp(x[r * v + i] - max) / sum;
  }
  return y;
}

/**
 * Backward of softmax given its output y and the output gradient g: dx = y ⊙ (g − Σ_row g ⊙ y).
 *
 * @example
 * softmaxBackwardRef(softmaxRef(x, rows, v), g, rows, v);
 */
export function softmaxBackwardRef(
  y: ArrayLike<number>,
  g: ArrayLike<number>,
  rows: number,
  v: number,
): Float64Array {
  const dx = new Float64Array(rows * v);
  for (let r = 0; r < rows; r++) {
    let dot = 0;
    for (let i = 0; i < v; i++) dot += g[r * v + i] * y[r * v + i];
    for (let i = 0; i < v; i++) dx[r * v + i] = y[r * v + i] * (g[r * v + i] - dot);
  }
  return dx;
}
