import {
  assertClose,
  finiteDiff,
  poisonPool,
  randomData,
  reductionGpus as gpus,
  testGpu,
  tolFor,
} from "../util.ts";
import { assertThrows } from "../assert.ts";
import { Rng, Tensor, tidy } from "../../src/tensor/mod.ts";
import { backward } from "../../src/autograd/mod.ts";
import { softmax } from "../../src/ops/softmax.ts";
import { softmaxBackwardRef, softmaxRef } from "../../src/reference/softmax.ts";

// V 5000 and 8 take the vec4 kernels; 1, 7, 257 the scalar ones.
const SHAPES = [[1, 1], [3, 7], [33, 257], [3, 5000], [1, 8], [33, 5000]];

Deno.test("softmax forward matches float64 on awkward shapes, both reduction libraries", async () => {
  for (const [lib, gpu] of await gpus()) {
    const rng = new Rng(21);
    for (const [rows, v] of SHAPES) {
      for (const mag of [4, 80]) {
        await tidy(async () => {
          const x = randomData(rng, rows * v, "f32", -mag, mag);
          const tx = Tensor.from(gpu, x, [rows, v]);
          poisonPool(gpu, [rows, v]);
          const y = softmax(tx);
          assertClose(
            await y.read(),
            softmaxRef(x, rows, v),
            tolFor("f32"),
            `softmax ${lib} ${rows}x${v} ±${mag}`,
          );
        });
      }
    }
  }
});

Deno.test("softmax of rank-3 input, rows past the 65535 grid limit, and a row with -inf", async () => {
  const gpu = await testGpu();
  const rng = new Rng(22);
  await tidy(async () => {
    const x = randomData(rng, 2 * 3 * 5, "f32", -3, 3);
    assertClose(
      await softmax(Tensor.from(gpu, x, [2, 3, 5])).read(),
      softmaxRef(x, 6, 5),
      tolFor("f32"),
      "rank 3",
    );
    const rows = 70_003;
    const big = randomData(rng, rows * 3, "f32", -3, 3);
    assertClose(
      await softmax(Tensor.from(gpu, big, [rows, 3])).read(),
      softmaxRef(big, rows, 3),
      tolFor("f32"),
      "folded grid",
    );
    const masked = [1, -Infinity, 2, -Infinity];
    assertClose(
      await softmax(Tensor.from(gpu, masked, [1, 4])).read(),
      softmaxRef(masked, 1, 4),
      tolFor("f32"),
      "-inf",
    );
    assertThrows(() => softmax(Tensor.zeros(gpu, [2, 2], "i32")), /f32/);
  });
});

Deno.test("softmax backward: reference vs finite differences", () => {
  const rng = new Rng(23);
  const [rows, v] = [3, 5];
  const x = Float64Array.from(randomData(rng, rows * v, "f32", -2, 2));
  const g = Float64Array.from(randomData(rng, rows * v));
  const f = (xx: Float64Array) => softmaxRef(xx, rows, v).reduce((a, y, i) => a + y * g[i], 0);
  assertClose(softmaxBackwardRef(softmaxRef(x, rows, v), g, rows, v), finiteDiff(f, x), 1e-7, "reference");
});

Deno.test("softmax backward through autograd matches the reference", async () => {
  for (const [lib, gpu] of await gpus()) {
    const rng = new Rng(24);
    // V = 1 is left out: its gradient is identically zero.
    for (const [rows, v] of [[1, 2], [3, 7], [33, 257], [3, 5000]]) {
      await tidy(async () => {
        const x = randomData(rng, rows * v, "f32", -4, 4);
        const g = randomData(rng, rows * v);
        const tx = Tensor.from(gpu, x, [rows, v]);
        tx.requiresGrad = true;
        const tg = Tensor.from(gpu, g, [rows, v]);
        const y = softmax(tx);
        poisonPool(gpu, [rows, v]); // the backward's dx
        backward(y, tg);
        const want = softmaxBackwardRef(softmaxRef(x, rows, v), g, rows, v);
        assertClose(await tx.grad!.read(), want, tolFor("f32"), `softmax grad ${lib} ${rows}x${v}`);
        tx.grad!.dispose();
      });
    }
  }
});
