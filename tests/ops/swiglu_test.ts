import { assertClose, finiteDiff, poisoned, randomData, testGpu } from "../util.ts";
import { assertEquals } from "../assert.ts";
import { Rng, Tensor, tidy } from "../../src/tensor/mod.ts";
import { backward } from "../../src/autograd/mod.ts";
import { swiglu } from "../../src/ops/swiglu.ts";
import { swigluBackwardRef, swigluRef } from "../../src/reference/swiglu.ts";

// Elementwise f32 with exp: a few ulps from the float64 reference.
const TOL = 1e-5;
const SHAPES = [[1], [7], [3, 33], [65, 257], [3, 1000], [2, 3, 28]]; // sizes % 4 == 0 take the vec4 path

Deno.test("swiglu forward matches the reference on awkward sizes", async () => {
  const gpu = await testGpu();
  const rng = new Rng(21);
  for (const shape of SHAPES) {
    const n = shape.reduce((a, b) => a * b);
    poisoned(gpu, shape).dispose(); // the output reuses this NaN-filled buffer
    await tidy(async () => {
      const gate = randomData(rng, n, "f32", -6, 6), up = randomData(rng, n, "f32", -2, 2);
      const out = swiglu(Tensor.from(gpu, gate, shape), Tensor.from(gpu, up, shape));
      assertEquals([...out.shape], shape);
      assertClose(await out.read(), swigluRef(gate, up), TOL, `swiglu [${shape}]`);
    });
  }
});

Deno.test("swiglu saturates cleanly for large |gate|", async () => {
  const gpu = await testGpu();
  const gate = [-200, -90, -30, 30, 90, 200, 0.5, -0.5];
  const up = [1, 2, 3, 4, 5, 6, 7, 8];
  await tidy(async () => {
    const out = await swiglu(Tensor.from(gpu, gate, [8]), Tensor.from(gpu, up, [8])).read();
    assertClose(out, swigluRef(gate, up), TOL, "swiglu saturation");
  });
});

Deno.test("swiglu reference backward matches float64 finite differences", () => {
  const rng = new Rng(22);
  const n = 9;
  const gate = Float64Array.from(randomData(rng, n, "f32", -4, 4));
  const up = Float64Array.from(randomData(rng, n, "f32", -2, 2));
  const g = Float64Array.from(randomData(rng, n));
  const loss = (a: Float64Array, b: Float64Array) => swigluRef(a, b).reduce((s, v, i) => s + v * g[i], 0);
  const { dgate, dup } = swigluBackwardRef(gate, up, g);
  assertClose(dgate, finiteDiff((v) => loss(v, up), gate), 1e-7, "dgate vs finite differences");
  assertClose(dup, finiteDiff((v) => loss(gate, v), up), 1e-7, "dup vs finite differences");
});

Deno.test("swiglu GPU backward (autograd) matches the reference; a frozen input gets no grad", async () => {
  const gpu = await testGpu();
  const rng = new Rng(23);
  for (const shape of [[7], [5, 33], [4, 64]]) {
    for (const frozenUp of [false, true]) {
      const n = shape.reduce((a, b) => a * b);
      const gs = randomData(rng, n, "f32", -6, 6), us = randomData(rng, n, "f32", -2, 2);
      const dy = randomData(rng, n);
      const gate = Tensor.from(gpu, gs, shape, "f32", { persistent: true });
      const up = Tensor.from(gpu, us, shape, "f32", { persistent: true });
      gate.requiresGrad = true;
      up.requiresGrad = !frozenUp;
      tidy(() => backward(swiglu(gate, up), Tensor.from(gpu, dy, shape)));
      const want = swigluBackwardRef(gs, us, dy);
      assertClose(await gate.grad!.read(), want.dgate, TOL, `dgate [${shape}]`);
      if (frozenUp) assertEquals(up.grad, null, "frozen up has no grad");
      else assertClose(await up.grad!.read(), want.dup, TOL, `dup [${shape}]`);
      for (const t of [gate, up, gate.grad, up.grad]) t?.dispose();
    }
  }
});
