/**
 * Reference RMSNorm in float64, as Hugging Face's LlamaRMSNorm: per row of C values,
 * r = sqrt(mean(x²) + eps), y = w ⊙ x / r. Shapes: x, g [rows, C], w [C].
 */

/** Forward: y [rows, C]. */
export function rmsNormRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  rows: number,
  cols: number,
  eps: number,
): Float64Array {
  const y = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const r = rowRms(x, i, cols, eps);
    for (let c = 0; c < cols; c++) y[i * cols + c] = w[c] * x[i * cols + c] / r;
  }
  return y;
}

/**
 * Backward for an upstream gradient g: dx = (w⊙g)/r − x·Σ(w⊙g⊙x)/(C·r³) per row, and
 * dw = Σ_rows g⊙x/r.
 */
export function rmsNormBackwardRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  g: ArrayLike<number>,
  rows: number,
  cols: number,
  eps: number,
): { dx: Float64Array; dw: Float64Array } {
  const dx = new Float64Array(rows * cols);
  const dw = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    const r = rowRms(x, i, cols, eps);
    let s = 0;
    for (let c = 0; c < cols; c++) s += w[c] * g[o + c] * x[o + c];
    for (let c = 0; c < cols; c++) {
      dx[o + c] = w[c] * g[o + c] / r - x[o + c] * s / (cols * r * r * r);
      dw[c] += g[o + c] * x[o + c] / r;
    }
  }
  return { dx, dw };
}

function rowRms(x: ArrayLike<number>, row: number, cols: number, eps: number): number {
  let ss = 0;
  for (let c = 0; c < cols; c++) ss += x[row * cols + c] * x[row * cols + c];
  return Math.sqrt(ss / cols + eps);
}
