import { assertClose, testGpu } from "../util.ts";
import { assert } from "../assert.ts";
import { Rng, Tensor, tidy } from "../../src/tensor/mod.ts";
import { dropout } from "../../src/ops/dropout.ts";
import { backward } from "../../src/autograd/mod.ts";
import { dropoutMaskRef, dropoutRef } from "../../src/reference/dropout.ts";

Deno.test("dropout: GPU mask equals the reference hash; backward uses the same mask", async () => {
  const gpu = await testGpu();
  const rng = new Rng(3);
  for (const n of [1, 33, 5000]) {
    const xs = rng.uniformArray(n, 0.5, 1.5);
    await tidy(async () => {
      const x = Tensor.from(gpu, xs, [n]);
      x.requiresGrad = true;
      const y = dropout(x, 0.3, 1234);
      assertClose(await y.read(), dropoutRef(xs, 0.3, 1234), 1e-6, `forward n=${n}`);
      const g = rng.uniformArray(n, 0.5, 1.5);
      backward(y, Tensor.from(gpu, g, [n]));
      assertClose(await x.grad!.read(), dropoutRef(g, 0.3, 1234), 1e-6, `backward n=${n}`);
      x.grad!.dispose();
    });
  }
  const keep = dropoutMaskRef(100_000, 0.3, 99);
  const frac = keep.reduce((a, b) => a + b, 0) / keep.length;
  assert(Math.abs(frac - 0.7) < 0.01, `kept fraction ${frac} should be ≈ 0.7`);
  const other = dropoutMaskRef(100_000, 0.3, 100);
  assert(other.some((k, i) => k !== keep[i]), "different seeds give different masks");
});
