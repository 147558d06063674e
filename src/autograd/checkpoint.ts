/**
 * Activation recomputation (HF's gradient_checkpointing): run a block without keeping its
 * intermediates, and rebuild them in backward. Memory per block drops to its input and output; the
 * cost is one more forward of the block during backward.
 */
import { Tensor, tidy } from "../tensor/mod.ts";
import { backward, isGradEnabled, record, withGrad } from "./tape.ts";

/**
 * y = fn(x), recorded as one op whose backward recomputes fn on a copy of x with recording on, then
 * backpropagates through that rebuilt graph: parameter gradients accumulate into their `.grad` as
 * usual, and dx is returned to the outer graph. `params` must list every tensor fn reads that may
 * require grad (weights, LoRA A/B), so the op is recorded even when x itself needs no gradient. fn must
 * be deterministic (dropout from a fixed seed), or the rebuilt graph would differ from the first run.
 *
 * @example
 * x = checkpoint((h) => decoderLayer(h, seed), x, layerParams);
 */
export function checkpoint(fn: (x: Tensor) => Tensor, x: Tensor, params: Tensor[]): Tensor {
  const inputs = [x, ...params];
  if (!isGradEnabled() || !inputs.some((t) => t.requiresGrad)) return fn(x);
  // Forward in training mode (ops such as LoRA dropout behave as in the rebuilt graph), but keep
  // nothing: the scope releases everything fn creates except y, and record() below replaces the
  // graph y would carry with the single checkpoint node.
  const y = tidy(() => fn(x));
  return record(y, "checkpoint", inputs, (g, needs) => {
    // A view of x with no history: the rebuilt graph starts here.
    const x2 = x.reshape(x.shape);
    x2.requiresGrad = needs[0];
    // x2 is a leaf of the rebuilt graph, so backward accumulates dx into x2.grad: give it a scoped
    // tensor (leaf grads are otherwise created persistent) that we hand back to the outer graph.
    const dx = needs[0] ? Tensor.zeros(x.gpu, x.shape, "f32") : null;
    x2.grad = dx;
    tidy(() => withGrad(() => backward(fn(x2), g)));
    x2.grad = null;
    return [dx, ...params.map(() => null)];
  });
}
