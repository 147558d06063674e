/**
 * Float64 reference for softmax cross-entropy with ignore_index (test oracle; readable, not fast).
 * Semantics of PyTorch `F.cross_entropy(logits, labels, ignore_index, reduction="mean")`, except that
 * no valid label gives a loss of 0 (PyTorch: NaN) and an out-of-range label gives a NaN row loss
 * (PyTorch: an error), as our GPU op does.
 */

/** Per-row and mean loss, the valid count, and argmax-correct flags. */
export interface CrossEntropyRef {
  /** Σ_valid rowLoss / count, or 0 when count is 0. */
  loss: number;
  /** logsumexp(row) − row[label]; 0 on ignored rows; NaN for out-of-range labels. */
  rowLoss: Float64Array;
  /** Number of labels ≠ ignoreIndex. */
  count: number;
  /** 1 where the first index of the row maximum equals the (valid) label, else 0. */
  correct: Uint32Array;
}

function valid(label: number, v: number): boolean {
  return label >= 0 && label < v;
}

/**
 * @example
 * crossEntropyRef([0, 0], [1], 1, 2).loss; // Math.log(2)
 */
export function crossEntropyRef(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  rows: number,
  v: number,
  ignoreIndex = -100,
): CrossEntropyRef {
  const rowLoss = new Float64Array(rows);
  const correct = new Uint32Array(rows);
  let count = 0, total = 0;
  for (let r = 0; r < rows; r++) {
    const label = labels[r];
    if (label === ignoreIndex) continue;
    count++;
    if (!valid(label, v)) {
      rowLoss[r] = NaN;
      total = NaN;
      continue;
    }
    let max = -Infinity, arg = -1;
    for (let i = 0; i < v; i++) {
      if (logits[r * v + i] > max) [max, arg] = [logits[r * v + i], i];
    }
    let sum = 0;
    for (let i = 0; i < v; i++) sum += Math.exp(logits[r * v + i] - max);
    rowLoss[r] = max + Math.log(sum) - logits[r * v + label];
    correct[r] = arg === label ? 1 : 0;
    total += rowLoss[r];
  }
  return { loss: count > 0 ? total / count : 0, rowLoss, count, correct };
}

/**
 * d loss / d logits scaled by the incoming gradient g: (softmax − onehot) · g / count on valid rows,
 * 0 on ignored and out-of-range rows (and everywhere when count is 0).
 *
 * @example
 * crossEntropyBackwardRef(logits, labels, rows, v, -100, 1);
 */
export function crossEntropyBackwardRef(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  rows: number,
  v: number,
  ignoreIndex = -100,
  g = 1,
): Float64Array {
  const d = new Float64Array(rows * v);
  let count = 0;
  for (let r = 0; r < rows; r++) if (labels[r] !== ignoreIndex) count++;
  if (count === 0) return d;
  for (let r = 0; r < rows; r++) {
    const label = labels[r];
    if (label === ignoreIndex || !valid(label, v)) continue;
    let max = -Infinity;
    for (let i = 0; i < v; i++) max = Math.max(max, logits[r * v + i]);
    let sum = 0;
    for (let i = 0; i < v; i++) sum += Math.exp(logits[r * v + i] - max);
    for (let i = 0; i < v; i++) {
      const p = Math.exp(logits[r * v + i] - max) / sum;
      d[r * v + i] = (p - (i === label ? 1 : 0)) * g / count;
    }
  }
  return d;
}
