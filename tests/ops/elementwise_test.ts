import { assertClose, poisoned, randomData, storageTypes, testGpu, tolFor } from "../util.ts";
import { Rng, Tensor, tidy } from "../../src/tensor/mod.ts";
import { add, cast, invCount, mul, mulScalar, scale } from "../../src/ops/elementwise.ts";
import { assertEquals } from "../assert.ts";

const SIZES = [1, 7, 33, 257, 70_001];

Deno.test("elementwise add/mul/scale match the reference on awkward sizes", async () => {
  const gpu = await testGpu();
  const rng = new Rng(1);
  for (const dtype of storageTypes(gpu)) {
    for (const n of SIZES) {
      await tidy(async () => {
        const a = randomData(rng, n, dtype), b = randomData(rng, n, dtype);
        const ta = Tensor.from(gpu, a, [n], dtype), tb = Tensor.from(gpu, b, [n], dtype);
        const [s, p, k] = [add(ta, tb), mul(ta, tb), scale(ta, 0.37)];
        const tol = tolFor(dtype, true) * (dtype === "f16" ? 1 : 10);
        assertClose(await s.read(), a.map((x, i) => x + b[i]), tol, `add ${dtype} n=${n}`);
        assertClose(await p.read(), a.map((x, i) => x * b[i]), tol, `mul ${dtype} n=${n}`);
        assertClose(await k.read(), a.map((x) => x * 0.37), tol, `scale ${dtype} n=${n}`);
      });
    }
  }
});

Deno.test("cast f32 → f16 → f32 rounds like Math.f16round", async () => {
  const gpu = await testGpu();
  if (!gpu.info.f16) return;
  const rng = new Rng(2);
  const a = randomData(rng, 1000, "f32", -70000, 70000);
  await tidy(async () => {
    const half = cast(Tensor.from(gpu, a, [1000]), "f16");
    const back = cast(half, "f32");
    const got = await back.read();
    const want = a.map((x) => Math.f16round(x));
    let same = 0;
    for (let i = 0; i < a.length; i++) {
      if (got[i] === want[i] || (!isFinite(got[i]) && !isFinite(want[i]))) same++;
    }
    assertEquals(same, a.length, "exact f16 rounding");
  });
});

Deno.test("poisoned outputs read back as NaN", async () => {
  const gpu = await testGpu();
  const t = poisoned(gpu, [5]);
  const v = await t.read();
  assertEquals([...v].every(Number.isNaN), true);
  t.dispose();
});

Deno.test("mulScalar multiplies by a GPU scalar and backpropagates; invCount guards zero", async () => {
  const gpu = await testGpu();
  await tidy(async () => {
    const a = Tensor.from(gpu, [1, -2, 3.5], [3]);
    const s = Tensor.from(gpu, [0.25], [1]);
    assertClose(await mulScalar(a, s).read(), [0.25, -0.5, 0.875], 1e-7, "mulScalar");
    assertClose(await invCount(Tensor.from(gpu, [4, 0, 0.5], [3])).read(), [0.25, 1, 1], 1e-7, "invCount");
  });
});
