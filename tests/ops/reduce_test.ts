import {
  assertClose,
  finiteDiff,
  poisoned,
  randomData,
  reductionGpus as gpus,
  testGpu,
  tolFor,
} from "../util.ts";
import { assert, assertEquals, assertThrows } from "../assert.ts";
import { Rng, Tensor, tidy } from "../../src/tensor/mod.ts";
import { backward } from "../../src/autograd/mod.ts";
import { mean, sum, sumRows, sumSquares } from "../../src/ops/reduce.ts";
import { meanRef, sumBackwardRef, sumRef, sumRowsRef, sumSquaresRef } from "../../src/reference/reduce.ts";

/** Relative error of one scalar. */
function assertScalar(got: number, want: number, tol: number, what: string): void {
  const e = Math.abs(got - want) / Math.max(Math.abs(want), 1e-30);
  assert(e <= tol, `${what}: got ${got}, want ${want} (rel ${e.toExponential(2)} > ${tol})`);
}

Deno.test("sum and mean match float64 on awkward sizes (one-launch and partial-sum paths)", async () => {
  for (const [lib, gpu] of await gpus()) {
    const rng = new Rng(11);
    for (const n of [1, 7, 257, 4099, 70_001]) {
      await tidy(async () => {
        const x = randomData(rng, n, "f32", -1, 2);
        const t = Tensor.from(gpu, x, [n]);
        const [s, m] = await gpu.readMany([sum(t), mean(t)].map((o) => ({ buffer: o.buffer, size: 4 })));
        assertScalar(new Float32Array(s)[0], sumRef(x), tolFor("f32"), `sum ${lib} n=${n}`);
        assertScalar(new Float32Array(m)[0], meanRef(x), tolFor("f32"), `mean ${lib} n=${n}`);
      });
    }
  }
});

Deno.test("sum and mean backward: reference vs finite differences, autograd vs reference", async () => {
  const rng = new Rng(12);
  const x = Float64Array.from(randomData(rng, 5));
  for (const [scale, f] of [[1, sumRef], [1 / 5, meanRef]] as const) {
    assertClose(finiteDiff((v) => 1.7 * f(v), x), sumBackwardRef(5, 1.7, scale), 1e-7, "reference");
  }
  const gpu = await testGpu();
  for (const [name, op, scale] of [["sum", sum, 1], ["mean", mean, 1 / 33]] as const) {
    await tidy(async () => {
      const t = Tensor.from(gpu, randomData(rng, 33), [3, 11]);
      t.requiresGrad = true;
      backward(op(t), Tensor.from(gpu, [1.7], [1]));
      assertClose(await t.grad!.read(), sumBackwardRef(33, 1.7, scale), tolFor("f32", true), `${name} grad`);
      t.grad!.dispose();
    });
  }
});

Deno.test("sumSquares over several tensors of awkward sizes matches float64", async () => {
  for (const [lib, gpu] of await gpus()) {
    const rng = new Rng(13);
    const sets = [[1], [7], [70_001], [1, 7, 70_001], [16, 4099, 3, 257]];
    for (const sizes of sets) {
      await tidy(async () => {
        const data = sizes.map((n) => randomData(rng, n, "f32", -3, 3));
        const out = sumSquares(data.map((d) => Tensor.from(gpu, d, [d.length])));
        assertScalar(
          (await out.read())[0],
          sumSquaresRef(data),
          tolFor("f32"),
          `sumSquares ${lib} [${sizes}]`,
        );
      });
    }
  }
});

Deno.test("sumSquares is deterministic and fails on non-f32 input", async () => {
  const gpu = await testGpu();
  const rng = new Rng(14);
  await tidy(async () => {
    const ts = [70_001, 33].map((n) => Tensor.from(gpu, randomData(rng, n), [n]));
    const a = await sumSquares(ts).read(), b = await sumSquares(ts).read();
    assertEquals(a[0], b[0], "same bits twice");
    assertThrows(() => sumSquares([Tensor.from(gpu, [1, 2], [2], "i32")]), /f32/);
    assertThrows(() => sumSquares([]), /no tensors/);
  });
});

Deno.test("sumRows with and without accumulate matches float64", async () => {
  for (const [lib, gpu] of await gpus()) {
    const rng = new Rng(15);
    for (const [rows, cols] of [[1, 1], [7, 70], [33, 257], [5, 7]]) {
      await tidy(async () => {
        const x = randomData(rng, rows * cols);
        const tx = Tensor.from(gpu, x, [rows, cols]);
        const fresh = poisoned(gpu, [cols]);
        sumRows(tx, fresh);
        assertClose(
          await fresh.read(),
          sumRowsRef(x, rows, cols),
          tolFor("f32"),
          `sumRows ${lib} ${rows}x${cols}`,
        );
        const init = randomData(rng, cols);
        const acc = Tensor.from(gpu, init, [cols]);
        sumRows(tx, acc, true);
        sumRows(tx, acc, true);
        const twice = sumRowsRef(x, rows, cols, sumRowsRef(x, rows, cols, init));
        assertClose(await acc.read(), twice, tolFor("f32"), `sumRows accumulate ${lib} ${rows}x${cols}`);
      });
    }
  }
  const gpu = await testGpu();
  tidy(() =>
    assertThrows(() => sumRows(Tensor.zeros(gpu, [2, 3]), Tensor.zeros(gpu, [2])), /needs out \[3\]/)
  );
});
