import { assertClose, finiteDiff, randomData, storageTypes, testGpu, tolFor } from "../util.ts";
import { assertEquals } from "../assert.ts";
import { Rng, Tensor, tidy } from "../../src/tensor/mod.ts";
import { initLora, loraLinear } from "../../src/ops/lora.ts";
import { backward, noGrad } from "../../src/autograd/mod.ts";
import { loraBackwardRef, loraForwardRef, type LoraRefShapes } from "../../src/reference/lora.ts";
import { dropoutRef } from "../../src/reference/dropout.ts";

Deno.test("lora reference backward agrees with float64 finite differences", () => {
  const rng = new Rng(11);
  const sh: LoraRefShapes = { n: 3, inF: 5, outF: 4, r: 2 };
  const x = Float64Array.from(rng.uniformArray(15)), W = Float64Array.from(rng.uniformArray(20));
  const A = Float64Array.from(rng.uniformArray(10)), B = Float64Array.from(rng.uniformArray(8));
  const g = Float64Array.from(rng.uniformArray(12));
  const s = 1.7;
  const loss = (xx: Float64Array, AA: Float64Array, BB: Float64Array) =>
    loraForwardRef(xx, W, null, AA, BB, s, sh).reduce((acc, v, i) => acc + v * g[i], 0);
  const ref = loraBackwardRef(g, x, W, A, B, s, sh);
  assertClose(ref.dx, finiteDiff((v) => loss(v, A, B), x), 1e-7, "dx");
  assertClose(ref.dA, finiteDiff((v) => loss(x, v, B), A), 1e-7, "dA");
  assertClose(ref.dB, finiteDiff((v) => loss(x, A, v), B), 1e-7, "dB");
});

Deno.test("loraLinear forward/backward on the GPU vs reference; frozen weight and bias get no grad", async () => {
  const gpu = await testGpu();
  const rng = new Rng(12);
  for (const wType of storageTypes(gpu)) {
    for (const sh of [{ n: 7, inF: 33, outF: 19, r: 4 }, { n: 1, inF: 64, outF: 70, r: 8 }]) {
      await tidy(async () => {
        const x = randomData(rng, sh.n * sh.inF), W = randomData(rng, sh.outF * sh.inF, wType, -0.2, 0.2);
        const b = randomData(rng, sh.outF),
          A = randomData(rng, sh.r * sh.inF),
          B = randomData(rng, sh.outF * sh.r);
        const g = randomData(rng, sh.n * sh.outF);
        const s = 2;
        const tx = Tensor.from(gpu, x, [sh.n, sh.inF]);
        const tW = Tensor.from(gpu, W, [sh.outF, sh.inF], wType), tb = Tensor.from(gpu, b, [sh.outF]);
        const tA = Tensor.from(gpu, A, [sh.r, sh.inF]), tB = Tensor.from(gpu, B, [sh.outF, sh.r]);
        for (const t of [tx, tA, tB]) t.requiresGrad = true;
        const y = loraLinear(tx, tW, tb, { A: tA, B: tB, scale: s });
        const tol = tolFor(wType) * 10;
        assertClose(
          await y.read(),
          loraForwardRef(x, W, b, A, B, s, sh),
          tol,
          `forward W ${wType} ${JSON.stringify(sh)}`,
        );
        backward(y, Tensor.from(gpu, g, [sh.n, sh.outF]));
        const ref = loraBackwardRef(g, x, W, A, B, s, sh);
        assertClose(await tx.grad!.read(), ref.dx, tol, "dx");
        assertClose(await tA.grad!.read(), ref.dA, tol, "dA");
        assertClose(await tB.grad!.read(), ref.dB, tol, "dB");
        assertEquals([tW.grad, tb.grad], [null, null], "frozen weight and bias");
        for (const t of [tx, tA, tB]) t.grad!.dispose();
      });
    }
  }
});

Deno.test("initLora: PEFT init (B zero, A within 1/√in) makes the adapter a no-op until trained", async () => {
  const gpu = await testGpu();
  const rng = new Rng(5);
  const { A, B } = initLora(gpu, 40, 12, 4, rng);
  const a = await A.read();
  const bound = 1 / Math.sqrt(40);
  assertEquals(a.every((v) => Math.abs(v) <= bound) && a.some((v) => v !== 0), true, "A range");
  assertEquals((await B.read()).every((v) => v === 0), true, "B zero");
  await tidy(async () => {
    const x = Tensor.from(gpu, randomData(rng, 3 * 40), [3, 40]);
    const W = Tensor.from(gpu, randomData(rng, 12 * 40), [12, 40]);
    const y = noGrad(() => loraLinear(x, W, null, { A, B, scale: 4 }));
    const want = loraForwardRef(await x.read(), await W.read(), null, a, new Float32Array(48), 4, {
      n: 3,
      inF: 40,
      outF: 12,
      r: 4,
    });
    assertClose(await y.read(), want, 1e-5, "no-op adapter");
  });
  A.dispose();
  B.dispose();
});

Deno.test("loraLinear with dropout: mask on the adapter input only, regenerated in backward", async () => {
  const gpu = await testGpu();
  const rng = new Rng(13);
  const sh = { n: 5, inF: 24, outF: 9, r: 3 };
  const p = 0.25, seed = 777, s = 1.5;
  const x = randomData(rng, sh.n * sh.inF), W = randomData(rng, sh.outF * sh.inF);
  const A = randomData(rng, sh.r * sh.inF),
    B = randomData(rng, sh.outF * sh.r),
    g = randomData(rng, sh.n * sh.outF);
  const xd = dropoutRef(x, p, seed);
  const zeroW = new Float64Array(sh.outF * sh.inF), zeroA = new Float64Array(sh.r * sh.inF);
  // Reference: base path on x, adapter path on dropout(x).
  const base = loraForwardRef(x, W, null, zeroA, B, s, sh);
  const delta = loraForwardRef(xd, zeroW, null, A, B, s, sh);
  const adapter = loraBackwardRef(g, xd, zeroW, A, B, s, sh);
  const dxBase = loraBackwardRef(g, x, W, zeroA, B, s, sh).dx;
  const dxAdapter = dropoutRef(adapter.dx, p, seed);
  await tidy(async () => {
    const tx = Tensor.from(gpu, x, [sh.n, sh.inF]), tW = Tensor.from(gpu, W, [sh.outF, sh.inF]);
    const tA = Tensor.from(gpu, A, [sh.r, sh.inF]), tB = Tensor.from(gpu, B, [sh.outF, sh.r]);
    for (const t of [tx, tA, tB]) t.requiresGrad = true;
    const y = loraLinear(tx, tW, null, { A: tA, B: tB, scale: s, dropout: p }, seed);
    assertClose(await y.read(), base.map((v, i) => v + delta[i]), 1e-5, "forward");
    backward(y, Tensor.from(gpu, g, [sh.n, sh.outF]));
    assertClose(await tx.grad!.read(), dxBase.map((v, i) => v + dxAdapter[i]), 1e-5, "dx");
    assertClose(await tA.grad!.read(), adapter.dA, 1e-5, "dA");
    assertClose(await tB.grad!.read(), adapter.dB, 1e-5, "dB");
    for (const t of [tx, tA, tB]) t.grad!.dispose();
  });
});

Deno.test("loraLinear: no dropout under noGrad (evaluation sees the full input)", async () => {
  const gpu = await testGpu();
  const rng = new Rng(14);
  const sh = { n: 4, inF: 16, outF: 6, r: 2 };
  const x = randomData(rng, sh.n * sh.inF), W = randomData(rng, sh.outF * sh.inF);
  const A = randomData(rng, sh.r * sh.inF), B = randomData(rng, sh.outF * sh.r);
  await tidy(async () => {
    const tA = Tensor.from(gpu, A, [sh.r, sh.inF]), tB = Tensor.from(gpu, B, [sh.outF, sh.r]);
    tA.requiresGrad = tB.requiresGrad = true;
    const y = noGrad(() =>
      loraLinear(Tensor.from(gpu, x, [sh.n, sh.inF]), Tensor.from(gpu, W, [sh.outF, sh.inF]), null, {
        A: tA,
        B: tB,
        scale: 2,
        dropout: 0.5,
      }, 9)
    );
    assertClose(await y.read(), loraForwardRef(x, W, null, A, B, 2, sh), 1e-5, "noGrad forward");
  });
});
