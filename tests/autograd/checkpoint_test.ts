import { assertClose, randomData, testGpu } from "../util.ts";
import { assert, assertEquals } from "../assert.ts";
import { Rng, Tensor, tidy } from "../../src/tensor/mod.ts";
import { backward, checkpoint } from "../../src/autograd/mod.ts";
import { add, dropout, matmul, rmsNorm, swiglu } from "../../src/ops/mod.ts";

/** A residual MLP block with a frozen weight, two trained ones and dropout (a fixed seed). */
function block(x: Tensor, frozen: Tensor, w1: Tensor, w2: Tensor, norm: Tensor): Tensor {
  const h = dropout(rmsNorm(x, norm, 1e-6), 0.2, 77);
  const up = matmul(h, frozen, { transB: true });
  return add(x, matmul(swiglu(matmul(h, w1, { transB: true }), up), w2, { transB: true }));
}

Deno.test("checkpoint: same loss gradients as the plain graph, with fewer live buffers at the peak", async () => {
  const gpu = await testGpu();
  const rng = new Rng(31);
  const [N, C, F] = [6, 16, 24];
  const mk = (shape: number[], train: boolean) => {
    const t = Tensor.from(
      gpu,
      randomData(rng, shape.reduce((a, b) => a * b, 1), "f32", -0.5, 0.5),
      shape,
      "f32",
      {
        persistent: true,
      },
    );
    t.requiresGrad = train;
    return t;
  };
  const frozen = mk([F, C], false), w1 = mk([F, C], true), w2 = mk([C, F], true), norm = mk([C], true);
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
