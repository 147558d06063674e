import { assertClose, randomData, testGpu } from "../util.ts";
import { assert, assertEquals, assertThrows } from "../assert.ts";
import { Rng, Tensor, tidy } from "../../src/tensor/mod.ts";
import { backward, checkpoint, releasingBelow } from "../../src/autograd/mod.ts";
import { add, dropout, matmul, reshape, rmsNorm, swiglu } from "../../src/ops/mod.ts";
import type { Gpu } from "../../src/gpu/mod.ts";

/** A residual MLP block with a frozen weight, two trained ones and dropout (a fixed seed). */
function block(x: Tensor, frozen: Tensor, w1: Tensor, w2: Tensor, norm: Tensor): Tensor {
  const h = dropout(rmsNorm(x, norm, 1e-6), 0.2, 77);
  const up = matmul(h, frozen, { transB: true });
  return add(x, matmul(swiglu(matmul(h, w1, { transB: true }), up), w2, { transB: true }));
}

/** The block's weights (persistent, values in ±0.5): one frozen, three trained. */
function blockWeights(gpu: Gpu, rng: Rng, C: number, F: number) {
  const mk = (shape: number[], train: boolean) => {
    const data = randomData(rng, shape.reduce((a, b) => a * b, 1), "f32", -0.5, 0.5);
    const t = Tensor.from(gpu, data, shape, "f32", { persistent: true });
    t.requiresGrad = train;
    return t;
  };
  return { frozen: mk([F, C], false), w1: mk([F, C], true), w2: mk([C, F], true), norm: mk([C], true) };
}

Deno.test("checkpoint: same loss gradients as the plain graph, with fewer live buffers at the peak", async () => {
  const gpu = await testGpu();
  const rng = new Rng(31);
  const [N, C, F] = [6, 16, 24];
  const { frozen, w1, w2, norm } = blockWeights(gpu, rng, C, F);
  const x0 = randomData(rng, N * C);
  const g = randomData(rng, N * C);
  const params = [w1, w2, norm];

  const run = async (useCheckpoint: boolean, xNeedsGrad: boolean) => {
    let peak = 0;
    const grads = await tidy(async () => {
      const x = Tensor.from(gpu, x0, [N, C]);
      x.requiresGrad = xNeedsGrad;
      const f = (h: Tensor) => block(h, frozen, w1, w2, norm);
      let y = x;
      for (let i = 0; i < 3; i++) y = useCheckpoint ? checkpoint(f, y, params) : f(y);
      peak = gpu.pool.stats.buffersInUse;
      backward(y, Tensor.from(gpu, g, [N, C]));
      const out = await Promise.all(
        [...params, ...(xNeedsGrad ? [x] : [])].map(async (p) => [...await p.grad!.read()]),
      );
      for (const p of [...params, x]) {
        p.grad?.dispose();
        p.grad = null;
      }
      return out;
    });
    assertEquals(frozen.grad, null, "frozen weight gets no gradient");
    return { grads, peak };
  };
  for (const xNeedsGrad of [true, false]) {
    const plain = await run(false, xNeedsGrad);
    const ckpt = await run(true, xNeedsGrad);
    plain.grads.forEach((want, i) =>
      assertClose(ckpt.grads[i], want, 1e-6, `grad ${i} (x needs grad: ${xNeedsGrad})`)
    );
    assert(
      ckpt.peak < plain.peak,
      `live buffers before backward: ${ckpt.peak} with checkpoints vs ${plain.peak}`,
    );
  }
  for (const t of [frozen, ...params]) t.dispose();
});

Deno.test("releasingBelow: same gradients; a block's tensors are freed once backward is below it", async () => {
  const gpu = await testGpu();
  const rng = new Rng(5);
  const [N, C, F] = [5, 12, 20];
  const { frozen, w1, w2, norm } = blockWeights(gpu, rng, C, F);
  const x0 = randomData(rng, N * C), g = randomData(rng, N * C);
  const params = [w1, w2, norm];
  const run = (release: boolean) =>
    tidy(async () => {
      const x = Tensor.from(gpu, x0, [N, C]);
      x.requiresGrad = true; // releasingBelow needs a gradient through the block's input
      const inner: Tensor[] = [];
      const f = (h: Tensor) => {
        const y = block(h, frozen, w1, w2, norm);
        inner.push(y);
        return reshape(y, [N * C]); // the result shares storage with y: y must survive
      };
      let y: Tensor = x;
      const outs: Tensor[] = [];
      for (let i = 0; i < 3; i++) {
        y = release ? releasingBelow(f, reshape(y, [N, C])) : f(reshape(y, [N, C]));
        outs.push(y);
      }
      backward(y, Tensor.from(gpu, g, [N * C]));
      const inUse = gpu.pool.stats.buffersInUse;
      const grads = await Promise.all([...params, x].map(async (p) => [...await p.grad!.read()]));
      // Block outputs feed the next block (or the caller): never released.
      for (const o of outs) assert(!o.disposed, "a block's result survives");
      for (const p of [...params, x]) {
        p.grad?.dispose();
        p.grad = null;
      }
      return { grads, inUse, inner };
    });
  const plain = await run(false);
  const rel = await run(true);
  plain.grads.forEach((want, i) => assertClose(rel.grads[i], want, 0, `grad ${i}`));
  assert(rel.inUse < plain.inUse, `buffers in use after backward: ${rel.inUse} released vs ${plain.inUse}`);
  // y shares its storage with the block's result (a reshape of it): kept, whatever else is released.
  assert(rel.inner.every((t) => !t.disposed), "storage shared with a block's result is kept");
  for (const t of [frozen, ...params]) t.dispose();
});

Deno.test("releasingBelow: reading a released block tensor after backward throws, never reads stale", async () => {
  const gpu = await testGpu();
  const w = Tensor.from(gpu, [0.5, -1, 2, 0.25], [2, 2], "f32", { persistent: true });
  w.requiresGrad = true;
  tidy(() => {
    const x = Tensor.from(gpu, [1, 2, 3, 4], [2, 2]);
    x.requiresGrad = true;
    let inside: Tensor | null = null;
    const y = releasingBelow((h) => {
      inside = matmul(h, w);
      return swiglu(inside, h);
    }, x);
    backward(y, Tensor.from(gpu, [1, 1, 1, 1], [2, 2]));
    assertThrows(() => inside!.buffer, /used after dispose/);
    assert(!y.disposed && !x.disposed, "input and result survive");
    w.grad!.dispose();
    w.grad = null;
  });
  w.dispose();
});
