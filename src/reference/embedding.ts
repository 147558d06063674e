/**
 * Reference embedding lookup in float64: out[n] = weight[ids[n]] for ids [N], weight [V, C]; the
 * backward scatter-adds the gradient rows back, so a repeated id receives the sum of its rows.
 */

/** Forward: out [N, C]. Throws on an id outside [0, V). */
export function embeddingRef(ids: ArrayLike<number>, weight: ArrayLike<number>, vocab: number, cols: number) {
  const out = new Float64Array(ids.length * cols);
  for (let n = 0; n < ids.length; n++) {
    const id = ids[n];
    if (!(id >= 0 && id < vocab)) throw new Error(`embeddingRef: id ${id} at ${n} outside [0, ${vocab})`);
    for (let c = 0; c < cols; c++) out[n * cols + c] = weight[id * cols + c];
  }
  return out;
}

/** Backward: dweight [V, C] with dweight[v] = Σ_{n: ids[n] = v} g[n]. */
export function embeddingBackwardRef(
  ids: ArrayLike<number>,
  g: ArrayLike<number>,
  vocab: number,
  cols: number,
): Float64Array {
  const dw = new Float64Array(vocab * cols);
  for (let n = 0; n < ids.length; n++) {
    for (let c = 0; c < cols; c++) dw[ids[n] * cols + c] += g[n * cols + c];
  }
  return dw;
}
