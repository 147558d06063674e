import { assertClose, testGpu } from "../util.ts";
import { assert, assertEquals, assertThrows } from "../assert.ts";
import { Tensor, tidy } from "../../src/tensor/mod.ts";
import { add, mul, reshape, scale } from "../../src/ops/elementwise.ts";
import { backward, noGrad } from "../../src/autograd/mod.ts";

Deno.test("backward: shared inputs sum, leaves accumulate across calls, frozen inputs get nothing", async () => {
  const gpu = await testGpu();
  const xs = [0.5, -1.25, 2, 3.5];
  const ys = [1.5, 0.25, -0.75, 2];
  const x = Tensor.from(gpu, xs, [4], "f32", { persistent: true });
  const y = Tensor.from(gpu, ys, [4], "f32", { persistent: true }); // frozen
  x.requiresGrad = true;
  // f = 3 · (x·x + x·y), reshaped on the way: df/dx = 3 · (2x + y)
  const run = () =>
    tidy(() => {
      const f = scale(reshape(add(mul(x, x), mul(x, y)), [2, 2]), 3);
      backward(f, Tensor.from(gpu, [1, 1, 1, 1], [2, 2]));
    });
  run();
  const want = xs.map((v, i) => 3 * (2 * v + ys[i]));
  assertClose(await x.grad!.read(), want, 1e-6, "dx");
  assertEquals(y.grad, null, "frozen input has no grad");
  run(); // a second micro-batch accumulates
  assertClose(await x.grad!.read(), want.map((v) => 2 * v), 1e-6, "dx accumulated");
  for (const t of [x, y, x.grad!]) t.dispose();
});

Deno.test("noGrad records nothing; backward needs a gradient for non-scalars", async () => {
  const gpu = await testGpu();
  const x = Tensor.from(gpu, [1, 2], [2], "f32", { persistent: true });
  x.requiresGrad = true;
  tidy(() => {
    const z = noGrad(() => mul(x, x));
    assert(!z.requiresGrad && z.node === null, "noGrad output has no node");
    const w = mul(x, x);
    assertThrows(() => backward(w), /pass a gradient/);
  });
  x.dispose();
});

Deno.test("tidy releases every intermediate: pool size is flat over 50 steps", async () => {
  const gpu = await testGpu();
  const x = Tensor.from(gpu, [1, 2, 3], [3], "f32", { persistent: true });
  x.requiresGrad = true;
  const step = () =>
    tidy(() => {
      const f = mul(add(x, x), scale(x, 2));
      backward(f, Tensor.from(gpu, [1, 1, 1], [3]));
    });
  step();
  await gpu.sync();
  const before = gpu.pool.stats.buffersInUse;
  for (let i = 0; i < 50; i++) step();
  await gpu.sync();
  assertEquals(gpu.pool.stats.buffersInUse, before, "buffers in use after 50 steps");
  x.grad!.dispose();
  x.dispose();
});
