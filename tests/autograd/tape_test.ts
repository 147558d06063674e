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

Deno.test("backward frees spent gradients at once, reshape views and leaf temporaries included", async () => {
  const gpu = await testGpu();
  const n = 64;
  const x = Tensor.from(gpu, Array.from({ length: n }, (_, i) => (i % 7) - 3), [n], "f32", {
    persistent: true,
  });
  x.requiresGrad = true;
  await tidy(async () => {
    // Every reshape's rule passes a view of its incoming gradient down; the scales make fresh ones.
    let y = x;
    for (let i = 0; i < 6; i++) y = scale(reshape(y, i % 2 ? [n] : [8, n / 8]), 1.5);
    const seed = Tensor.from(gpu, new Array(n).fill(1), y.shape);
    const before = gpu.pool.stats.buffersInUse;
    backward(y, seed);
    // Only x.grad is new: no intermediate gradient (or the base behind a view of one) outlives backward.
    assertEquals(gpu.pool.stats.buffersInUse, before + 1, "buffers in use after backward");
    assert(!seed.disposed, "the caller's gradient is the caller's");
    assertClose(await x.grad!.read(), new Array(n).fill(1.5 ** 6), 1e-6, "dx");
  });
  x.grad!.dispose();
  x.dispose();
});

Deno.test("a view of released storage throws instead of reading a reused buffer", async () => {
  const gpu = await testGpu();
  tidy(() => {
    const a = Tensor.from(gpu, [1, 2, 3, 4], [4]);
    const v = a.reshape([2, 2]).reshape([4]);
    v.releaseStorage(); // releases a's buffer
    assert(a.disposed && v.disposed, "both see the release");
    assertThrows(() => v.buffer, /used after dispose/);
    assertThrows(() => a.buffer, /used after dispose/);
  });
});
