/**
 * Reference SwiGLU (the Llama MLP's gating) in float64: out = silu(gate) ⊙ up with
 * silu(z) = z·σ(z), σ(z) = 1 / (1 + e^−z). Elementwise; any shape.
 */

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

/** Forward: silu(gate) ⊙ up. */
export function swigluRef(gate: ArrayLike<number>, up: ArrayLike<number>): Float64Array {
  return Float64Array.from(gate, (z, i) => z * sigmoid(z) * up[i]);
}

/**
 * Backward for an upstream gradient g: dup = g ⊙ silu(gate),
 * dgate = g ⊙ up ⊙ σ(gate)·(1 + gate·(1 − σ(gate))) (the derivative of z·σ(z)).
 */
export function swigluBackwardRef(
  gate: ArrayLike<number>,
  up: ArrayLike<number>,
  g: ArrayLike<number>,
): { dgate: Float64Array; dup: Float64Array } {
  const dgate = new Float64Array(gate.length);
  const dup = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) {
    const s = sigmoid(gate[i]);
    dup[i] = g[i] * gate[i] * s;
    dgate[i] = g[i] * up[i] * s * (1 + gate[i] * (1 - s));
  }
  return { dgate, dup };
}
