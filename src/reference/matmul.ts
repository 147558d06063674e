/**
 * Float64 CPU reference for matmul (the test oracle; written to be obviously right, never fast).
 *
 * C = alpha·op(A)·op(B) + beta·C0 + bias, batched. A is [batch, M, K] (or [batch, K, M] with transA),
 * B is [K, N] (or [N, K] with transB) shared by every batch when `batchB` is false, else one per batch.
 */

/** Shapes and flags of one reference matmul. */
export interface MatmulRefSpec {
  batch: number;
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  /** B has a batch dimension (one B per batch); false: one B shared by every batch. */
  batchB?: boolean;
  alpha?: number;
}

function aAt(a: ArrayLike<number>, s: MatmulRefSpec, b: number, m: number, k: number): number {
  const base = b * s.M * s.K;
  return s.transA ? a[base + k * s.M + m] : a[base + m * s.K + k];
}

function bAt(bm: ArrayLike<number>, s: MatmulRefSpec, b: number, k: number, n: number): number {
  const base = s.batchB ? b * s.K * s.N : 0;
  return s.transB ? bm[base + n * s.K + k] : bm[base + k * s.N + n];
}

/**
 * Forward: returns C [batch, M, N] as float64.
 *
 * @example
 * const c = matmulRef(a, b, { batch: 1, M: 2, N: 3, K: 4 }, { bias, beta: 1, c0 });
 */
export function matmulRef(
  a: ArrayLike<number>,
  bm: ArrayLike<number>,
  s: MatmulRefSpec,
  extra: { bias?: ArrayLike<number>; beta?: number; c0?: ArrayLike<number> } = {},
): Float64Array {
  const alpha = s.alpha ?? 1;
  const beta = extra.beta ?? 0;
  const c = new Float64Array(s.batch * s.M * s.N);
  for (let b = 0; b < s.batch; b++) {
    for (let m = 0; m < s.M; m++) {
      for (let n = 0; n < s.N; n++) {
        let acc = 0;
        for (let k = 0; k < s.K; k++) acc += aAt(a, s, b, m, k) * bAt(bm, s, b, k, n);
        const i = (b * s.M + m) * s.N + n;
        let v = alpha * acc;
        if (beta !== 0) v += beta * extra.c0![i];
        if (extra.bias) v += extra.bias[n];
        c[i] = v;
      }
    }
  }
  return c;
}

/**
 * Backward: given dC [batch, M, N], returns dA (A's stored layout), dB (B's stored layout; summed over
 * the batch when B is shared) and dbias [N] (column sums of dC over batch and rows).
 */
export function matmulBackwardRef(
  a: ArrayLike<number>,
  bm: ArrayLike<number>,
  dc: ArrayLike<number>,
  s: MatmulRefSpec,
): { dA: Float64Array; dB: Float64Array; dBias: Float64Array } {
  const alpha = s.alpha ?? 1;
  const dA = new Float64Array(s.batch * s.M * s.K);
  const dB = new Float64Array((s.batchB ? s.batch : 1) * s.K * s.N);
  const dBias = new Float64Array(s.N);
  for (let b = 0; b < s.batch; b++) {
    const bBase = s.batchB ? b * s.K * s.N : 0;
    for (let m = 0; m < s.M; m++) {
      for (let n = 0; n < s.N; n++) {
        const g = dc[(b * s.M + m) * s.N + n];
        dBias[n] += g;
        for (let k = 0; k < s.K; k++) {
          // C[m, n] += alpha · op(A)[m, k] · op(B)[k, n]: each factor's gradient is alpha · g · the other.
          const ia = b * s.M * s.K + (s.transA ? k * s.M + m : m * s.K + k);
          const ib = bBase + (s.transB ? n * s.K + k : k * s.N + n);
          dA[ia] += alpha * g * bm[ib];
          dB[ib] += alpha * g * a[ia];
        }
      }
    }
  }
  return { dA, dB, dBias };
}
