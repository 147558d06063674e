/**
 * Reverse-mode autograd over a tape of GPU ops. Nothing op-specific lives here: an op records its
 * output, inputs and a backward closure; backward() walks the graph in reverse topological order.
 *
 * The one accumulation rule: gradients of leaves (parameters) accumulate into `leaf.grad` (`+=`), so
 * micro-batches add up until the optimizer zeroes them; gradients of intermediate tensors are summed
 * when a tensor feeds several ops and released as soon as its producer's backward has consumed them.
 */
import { type GradNode, sharesStorage, Tensor } from "../tensor/mod.ts";
import { Uniforms } from "../gpu/mod.ts";

/**
 * Backward rule of an op: given the gradient of its output and which inputs need a gradient, returns
 * one gradient per input (null where not needed). Frozen inputs get `needs[i] = false`: rules must not
 * compute weight gradients for them.
 */
export type BackwardFn = (gradOut: Tensor, needs: boolean[]) => (Tensor | null)[];

export interface Node extends GradNode {
  readonly name: string;
  readonly inputs: Tensor[];
  backward: BackwardFn | null;
}

let gradDepth = 0;

/** True unless inside noGrad(). */
export function isGradEnabled(): boolean {
  return gradDepth === 0;
}

/**
 * Runs `fn` without recording anything on the tape (inference, evaluation).
 *
 * @example
 * const logits = noGrad(() => model.forward(ids));
 */
export function noGrad<R>(fn: () => R): R {
  gradDepth++;
  let result: R;
  try {
    result = fn();
  } catch (e) {
    gradDepth--;
    throw e;
  }
  if (result instanceof Promise) return result.finally(() => gradDepth--) as R;
  gradDepth--;
  return result;
}

/**
 * Runs `fn` with recording on even inside noGrad() or a backward rule (activation recomputation needs
 * to rebuild a piece of graph while the outer backward runs untaped). Synchronous functions only.
 */
export function withGrad<R>(fn: () => R): R {
  const saved = gradDepth;
  gradDepth = 0;
  try {
    return fn();
  } finally {
    gradDepth = saved;
  }
}

/** Attaches a backward rule to `out` when grad mode is on and any input requires grad. Returns `out`. */
export function record(out: Tensor, name: string, inputs: Tensor[], backward: BackwardFn): Tensor {
  if (gradDepth > 0 || !inputs.some((t) => t.requiresGrad)) return out;
  out.requiresGrad = true;
  const node: Node = { name, inputs, backward };
  out.node = node;
  return out;
}

/** Adds `src` into `dst` on the GPU (both f32, same size). */
export function accumulate(dst: Tensor, src: Tensor): void {
  if (dst.size !== src.size || dst.dtype !== "f32" || src.dtype !== "f32") {
    throw new Error(`accumulate: [${dst.shape}] ${dst.dtype} += [${src.shape}] ${src.dtype}`);
  }
  const gpu = dst.gpu;
  const u = new Uniforms().u32(dst.size).f32(1);
  gpu.dispatch({ file: "elementwise", entry: "axpy", types: { ST: "f32", DT: "f32" } }, {
    4: dst.buffer,
    2: src.buffer,
  }, [
    ...grid1d(dst.size, 256, gpu.device.limits.maxComputeWorkgroupsPerDimension),
  ], u);
}

/** Workgroup grid for `n` items at `perGroup` items per workgroup, folded into y when x would overflow. */
export function grid1d(n: number, perGroup: number, maxDim = 65535): [number, number] {
  const groups = Math.max(1, Math.ceil(n / perGroup));
  if (groups <= maxDim) return [groups, 1];
  const y = Math.ceil(groups / maxDim);
  return [Math.ceil(groups / y), y];
}

/**
 * Backpropagates from `root`. A non-scalar root needs `gradient` (same shape). Leaf gradients land in
 * `leaf.grad` (created persistent on first use, then accumulated).
 *
 * @example
 * const loss = crossEntropy(logits, labels);
 * backward(loss); // every parameter with requiresGrad now has .grad
 */
export function backward(root: Tensor, gradient?: Tensor): void {
  if (!root.requiresGrad) {
    throw new Error("backward: the tensor does not require grad (no parameter feeds it)");
  }
  if (!gradient && root.size !== 1) {
    throw new Error(`backward: root has shape [${root.shape}]; pass a gradient`);
  }

  // Iterative DFS post-order: deep graphs (80 layers × dozens of ops) would overflow recursion.
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, boolean][] = [[root, false]];
  while (stack.length) {
    const [t, done] = stack.pop()!;
    if (done) {
      order.push(t);
      continue;
    }
    if (seen.has(t)) continue;
    seen.add(t);
    stack.push([t, true]);
    const node = t.node as Node | null;
    if (node) { for (const x of node.inputs) if (x.requiresGrad && !seen.has(x)) stack.push([x, false]); }
  }

  const grads = new Map<Tensor, Tensor>();
  grads.set(root, gradient ?? Tensor.from(root.gpu, [1], root.shape, "f32"));
  // A spent gradient's storage goes back to the pool at once, unless a pending gradient or the caller's
  // `gradient` shares it (rules may pass their incoming gradient on, or a reshape of it). Releasing the
  // storage, not the tensor: disposing a reshape view alone would keep its buffer until the step ends.
  const release = (spent: Tensor) => {
    if (gradient && sharesStorage(spent, gradient)) return;
    for (const live of grads.values()) if (sharesStorage(live, spent)) return;
    spent.releaseStorage();
  };
  for (let i = order.length - 1; i >= 0; i--) {
    const t = order[i];
    const g = grads.get(t);
    if (!g) continue;
    const node = t.node as Node | null;
    if (!node) {
      accumulateLeaf(t, g);
      grads.delete(t);
      release(g);
      continue;
    }
    if (!node.backward) throw new Error(`backward: op ${node.name} was already backpropagated (graph freed)`);
    const needs = node.inputs.map((x) => x.requiresGrad);
    // Rules run untaped: no higher-order gradients, and ops they call must not grow the graph.
    const gin = noGrad(() => node.backward!(g, needs));
    node.backward = null;
    const spent = [g];
    grads.delete(t);
    node.inputs.forEach((x, k) => {
      let gx = gin[k];
      if (!needs[k] || !gx) return;
      // Two inputs must never share one gradient buffer: accumulating into one would change the other.
      if (gin.slice(0, k).some((o) => o && sharesStorage(o, gx!))) gx = gin[k] = clone(gx);
      if (gx.size !== x.size) {
        throw new Error(
          `backward: op ${node.name} gave a gradient of shape [${gx.shape}] for input [${x.shape}]`,
        );
      }
      const prev = grads.get(x);
      if (prev) {
        accumulate(prev, gx);
        spent.push(gx);
      } else grads.set(x, gx);
    });
    for (const x of spent) release(x);
  }
}

function accumulateLeaf(leaf: Tensor, g: Tensor): void {
  if (!leaf.grad) {
    leaf.grad = Tensor.zeros(leaf.gpu, leaf.shape, "f32", { persistent: true });
    leaf.grad.name = leaf.name ? `${leaf.name}.grad` : "";
  }
  accumulate(leaf.grad, g);
}

function clone(t: Tensor): Tensor {
  const c = Tensor.empty(t.gpu, t.shape, t.dtype);
  t.gpu.copy(t.buffer, 0, c.buffer, 0, Math.ceil(t.bytes / 4) * 4);
  return c;
}
