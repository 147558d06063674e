import {
  assertClose,
  finiteDiff,
  poisoned,
  randomData,
  reductionGpus as gpus,
  relL2,
  storageTypes,
  testGpu,
} from "../util.ts";
import { assert, assertEquals } from "../assert.ts";
import { Gpu } from "../../src/gpu/mod.ts";
import { Rng, Tensor, tidy } from "../../src/tensor/mod.ts";
import { backward } from "../../src/autograd/mod.ts";
import { rmsNorm } from "../../src/ops/rmsnorm.ts";
import { rmsNormBackwardRef, rmsNormRef } from "../../src/reference/rmsnorm.ts";

const COLS = [1, 7, 33, 257, 1000]; // 1000 takes the vec4 path, the rest the scalar one
const ROWS = [1, 3, 65];
const EPS = 1e-5;
// f32 math with a tree-ordered sum (not the reference's order); with f16 weights the reference sees
// the same f16-rounded values, so the same bound holds.
const TOL = 1e-4;

Deno.test("rmsNorm forward matches the reference (f32/f16 weights, awkward sizes, both reduction libraries)", async () => {
  const rng = new Rng(11);
  for (const [lib, gpu] of await gpus()) {
    for (const wt of storageTypes(gpu)) {
      for (const cols of COLS) {
        for (const rows of ROWS) {
          await tidy(async () => {
            const x = randomData(rng, rows * cols, "f32", -2, 2);
            const w = randomData(rng, cols, wt, 0.5, 1.5);
            const y = rmsNorm(Tensor.from(gpu, x, [rows, cols]), Tensor.from(gpu, w, [cols], wt), EPS);
            assertEquals([...y.shape], [rows, cols]);
            const what = `rmsNorm ${lib} ${wt} ${rows}x${cols}`;
            assertClose(await y.read(), rmsNormRef(x, w, rows, cols, EPS), TOL, what);
          });
        }
      }
    }
  }
});

Deno.test("rmsNorm rows longer than the register cache (C = 20000: part of the row is re-read)", async () => {
  const gpu = await testGpu();
  const rng = new Rng(16);
  const [rows, cols] = [2, 20000];
  const xs = randomData(rng, rows * cols, "f32", -2, 2), gs = randomData(rng, rows * cols);
  const ws = randomData(rng, cols, "f32", 0.5, 1.5);
  const x = Tensor.from(gpu, xs, [rows, cols], "f32", { persistent: true });
  x.requiresGrad = true;
  await tidy(async () => {
    const y = rmsNorm(x, Tensor.from(gpu, ws, [cols]), EPS);
    assertClose(await y.read(), rmsNormRef(xs, ws, rows, cols, EPS), TOL, "forward C=20000");
    backward(y, Tensor.from(gpu, gs, [rows, cols]));
  });
  assertClose(await x.grad!.read(), rmsNormBackwardRef(xs, ws, gs, rows, cols, EPS).dx, TOL, "dx C=20000");
  x.grad!.dispose();
  x.dispose();
});

Deno.test("rmsNorm forward writes every element of a poisoned, reused buffer (3-d input)", async () => {
  const gpu = await testGpu();
  const rng = new Rng(12);
  // Poison a buffer and release it so the op's output lands in the same pool bucket.
  poisoned(gpu, [2, 5, 36]).dispose();
  await tidy(async () => {
    const x = randomData(rng, 360, "f32", -3, 3), w = randomData(rng, 36, "f32");
    const y = rmsNorm(Tensor.from(gpu, x, [2, 5, 36]), Tensor.from(gpu, w, [36]), 1e-6);
    assertClose(await y.read(), rmsNormRef(x, w, 10, 36, 1e-6), TOL, "rmsNorm [2,5,36]");
  });
});

Deno.test("rmsNorm reference backward matches float64 finite differences", () => {
  const rng = new Rng(13);
  const [rows, cols] = [3, 5];
  const x = Float64Array.from(randomData(rng, rows * cols, "f32", -2, 2));
  const w = Float64Array.from(randomData(rng, cols, "f32", 0.5, 1.5));
  const g = Float64Array.from(randomData(rng, rows * cols));
  const eps = 0.1; // large eps so its term matters too
  const loss = (xx: Float64Array, ww: Float64Array) =>
    rmsNormRef(xx, ww, rows, cols, eps).reduce((s, v, i) => s + v * g[i], 0);
  const { dx, dw } = rmsNormBackwardRef(x, w, g, rows, cols, eps);
  assertClose(dx, finiteDiff((v) => loss(v, w), x), 1e-7, "dx vs finite differences");
  assertClose(dw, finiteDiff((v) => loss(x, v), w), 1e-7, "dw vs finite differences");
});

Deno.test("rmsNorm GPU backward (autograd) matches the reference; a frozen f16 weight gets no grad", async () => {
  const rng = new Rng(14);
  for (const [lib, gpu] of await gpus()) await backwardCases(gpu, lib, rng);
});

async function backwardCases(gpu: Gpu, lib: string, rng: Rng): Promise<void> {
  // With C = 1, dx = w·g·r·(1 − x²r²) cancels to w·g·eps·r³ — relative error ~ (x²/eps)·2⁻²⁴ in any
  // f32 implementation (PyTorch's too) — so that case runs with a large eps.
  for (
    const [rows, cols, eps] of [[3, 7, EPS], [65, 33, EPS], [65, 1000, EPS], [1, 257, EPS], [40, 1, 0.5]]
  ) {
    for (const wt of storageTypes(gpu)) {
      const xs = randomData(rng, rows * cols, "f32", -2, 2);
      const ws = randomData(rng, cols, wt, 0.5, 1.5);
      const gs = randomData(rng, rows * cols);
      const x = Tensor.from(gpu, xs, [rows, cols], "f32", { persistent: true });
      const w = Tensor.from(gpu, ws, [cols], wt, { persistent: true });
      x.requiresGrad = true;
      w.requiresGrad = wt === "f32"; // f16 base weights are frozen
      tidy(() => backward(rmsNorm(x, w, eps), Tensor.from(gpu, gs, [rows, cols])));
      const want = rmsNormBackwardRef(xs, ws, gs, rows, cols, eps);
      const what = `${lib} ${rows}x${cols} ${wt}`;
      assertClose(await x.grad!.read(), want.dx, TOL, `dx ${what}`);
      if (wt === "f32") assertClose(await w.grad!.read(), want.dw, TOL, `dweight ${what}`);
      else assertEquals(w.grad, null, `frozen weight has no grad (${what})`);
      for (const t of [x, w, x.grad, w.grad]) t?.dispose();
    }
  }
}

Deno.test("rmsNorm dweight alone (input not trainable) is correct and bit-for-bit repeatable", async () => {
  const gpu = await testGpu();
  const rng = new Rng(15);
  const [rows, cols] = [300, 20]; // 19 row chunks
  const xs = randomData(rng, rows * cols, "f32", -2, 2), gs = randomData(rng, rows * cols);
  const ws = randomData(rng, cols, "f32", 0.5, 1.5);
  const runs: Float32Array[] = [];
  for (let k = 0; k < 2; k++) {
    const w = Tensor.from(gpu, ws, [cols], "f32", { persistent: true });
    w.requiresGrad = true;
    tidy(() =>
      backward(rmsNorm(Tensor.from(gpu, xs, [rows, cols]), w, EPS), Tensor.from(gpu, gs, [rows, cols]))
    );
    runs.push(new Float32Array(await w.grad!.read()));
    w.grad!.dispose();
    w.dispose();
  }
  assertClose(runs[0], rmsNormBackwardRef(xs, ws, gs, rows, cols, EPS).dw, TOL, "dweight");
  assert(
    runs[0].every((v, i) => Object.is(v, runs[1][i])),
    "two runs differ: the reduction is not deterministic",
  );
  assert(relL2(runs[0], runs[1]) === 0, "identical runs");
});
