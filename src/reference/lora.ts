/**
 * Reference LoRA linear layer in float64 (no dropout): y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ and its backward.
 * Shapes: x [n, in], W [out, in], b [out] | null, A [r, in], B [out, r].
 */
export interface LoraRefShapes {
  n: number;
  inF: number;
  outF: number;
  r: number;
}

/** y[i, o] = Σ_k a[i, k] · b[o, k] for a [n, k] and b [m, k] (i.e. a·bᵀ). */
function mulT(a: ArrayLike<number>, b: ArrayLike<number>, n: number, k: number, m: number): Float64Array {
  const y = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let o = 0; o < m; o++) {
      let s = 0;
      for (let j = 0; j < k; j++) s += a[i * k + j] * b[o * k + j];
      y[i * m + o] = s;
    }
  }
  return y;
}

/** Transpose of a [rows, cols]. */
function transpose(a: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
  return t;
}

export function loraForwardRef(
  x: ArrayLike<number>,
  W: ArrayLike<number>,
  b: ArrayLike<number> | null,
  A: ArrayLike<number>,
  B: ArrayLike<number>,
  s: number,
  { n, inF, outF, r }: LoraRefShapes,
): Float64Array {
  const y = mulT(x, W, n, inF, outF);
  const xa = mulT(x, A, n, inF, r);
  const d = mulT(xa, B, n, r, outF);
  for (let i = 0; i < n; i++) {
    for (let o = 0; o < outF; o++) y[i * outF + o] += s * d[i * outF + o] + (b ? b[o] : 0);
  }
  return y;
}

/** Gradients of Σ g ⊙ y with respect to x, A and B. */
export function loraBackwardRef(
  g: ArrayLike<number>,
  x: ArrayLike<number>,
  W: ArrayLike<number>,
  A: ArrayLike<number>,
  B: ArrayLike<number>,
  s: number,
  { n, inF, outF, r }: LoraRefShapes,
): { dx: Float64Array; dA: Float64Array; dB: Float64Array } {
  const xa = mulT(x, A, n, inF, r); // [n, r]
  const dxa = mulT(g, transpose(B, outF, r), n, outF, r).map((v) => v * s); // g·B · s
  const dB = mulT(transpose(g, n, outF), transpose(xa, n, r), outF, n, r).map((v) => v * s); // gᵀ·xa · s
  const dA = mulT(transpose(dxa, n, r), transpose(x, n, inF), r, n, inF); // dxaᵀ·x
  const dx = mulT(g, transpose(W, outF, inF), n, outF, inF); // g·W
  const dx2 = mulT(dxa, transpose(A, r, inF), n, r, inF); // dxa·A
  for (let i = 0; i < dx.length; i++) dx[i] += dx2[i];
  return { dx, dA, dB };
}
