/**
 * Activation memory: recomputation (HF's gradient_checkpointing: run a block without keeping its
 * intermediates and rebuild them in backward; memory per block drops to its input and output, at the
 * cost of one more forward of the block) and early release (a block's saved activations go back to the
 * pool as soon as backward is done with the block).
 */
import { sharesStorage, Tensor, tidy } from "../tensor/mod.ts";
import { backward, isGradEnabled, type Node, record, withGrad } from "./tape.ts";

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

/**
 * y = fn(x), and once backward has passed below x, the storage of every tensor fn produced on the way
 * to y (activations its ops saved for backward) goes back to the pool, instead of when the step's
 * scope ends. A model wraps each decoder layer this way, so that during backward only the layers not
 * yet backpropagated hold activations (the others' memory serves the gradients and the layers that
 * checkpoint() rebuilds).
 *
 * Why it is safe: x gets a pass-through node, and backward walks the graph in reverse topological
 * order, so that node runs only after every op that depends on x — every op of fn that produced a
 * released tensor, and every op that consumed one — has run its rule. Released are only tensors made
 * after x's pass-through node that depend on it, have an autograd node, and share no storage with y
 * or x. A tensor fn leaks past y and reads after backward throws ("used after dispose()"); it is
 * never read stale. Without grad mode, or when x needs no gradient, this is plain fn(x).
 *
 * @example
 * x = releasingBelow((h) => decoderLayer(h), x);
 */
export function releasingBelow(fn: (x: Tensor) => Tensor, x: Tensor): Tensor {
  if (!isGradEnabled() || !x.requiresGrad) return fn(x);
  let y: Tensor | null = null;
  const entry = record(x.reshape(x.shape), "release_below", [x], (g) => {
    if (y) releaseSegment(y, entry);
    return [g];
  });
  y = fn(entry);
  return y;
}

/** Releases what releasingBelow() promises: see there. */
function releaseSegment(y: Tensor, entry: Tensor): void {
  // depends: the tensor was made after `entry` and reaches it through autograd nodes.
  const depends = new Map<Tensor, boolean>([[entry, true]]);
  const stack: Tensor[] = [y];
  while (stack.length) {
    const t = stack[stack.length - 1];
    if (depends.has(t)) {
      stack.pop();
      continue;
    }
    const inputs = (t.node as Node | null)?.inputs ?? [];
    if (t.id <= entry.id || inputs.length === 0) {
      depends.set(t, false);
      stack.pop();
      continue;
    }
    const pending = inputs.filter((x) => !depends.has(x));
    if (pending.length) {
      stack.push(...pending);
      continue;
    }
    depends.set(t, inputs.some((x) => depends.get(x)));
    stack.pop();
  }
  for (const [t, d] of depends) {
    if (d && t !== entry && !sharesStorage(t, y) && !sharesStorage(t, entry)) t.releaseStorage();
  }
}
