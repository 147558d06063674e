import {
  assertClose,
  finiteDiff,
  poisoned,
  poisonPool,
  randomData,
  reductionGpus as gpus,
  testGpu,
  tolFor,
} from "../util.ts";
import { assert, assertEquals, assertThrows } from "../assert.ts";
import { Rng, Tensor, tidy } from "../../src/tensor/mod.ts";
import { backward } from "../../src/autograd/mod.ts";
import { scale } from "../../src/ops/elementwise.ts";
import {
  countValid,
  crossEntropy,
  crossEntropyRows,
  gradScaleOf,
  lossMean,
} from "../../src/ops/cross_entropy.ts";
import { crossEntropyBackwardRef, crossEntropyRef } from "../../src/reference/cross_entropy.ts";

/** Labels in [0, v) with about one row in four set to −100 (row 0 always valid). */
function makeLabels(rng: Rng, rows: number, v: number): Int32Array {
  const l = new Int32Array(rows);
  for (let r = 0; r < rows; r++) l[r] = r > 0 && rng.next() < 0.25 ? -100 : rng.int(v);
  return l;
}

/** assertClose, except that an all-zero reference (V = 1: every loss is 0) must be matched exactly. */
function closeOrZero(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  if ([...Array.from(want)].some((w) => w !== 0)) return assertClose(got, want, tol, what);
  assertEquals(
    [...Array.from(got)].every((g) => g === 0),
    true,
    `${what}: want all zero, got [${Array.from(got)}]`,
  );
}

function assertScalar(got: number, want: number, tol: number, what: string): void {
  const e = Math.abs(got - want) / Math.max(Math.abs(want), 1e-30);
  assert(e <= tol, `${what}: got ${got}, want ${want} (rel ${e.toExponential(2)} > ${tol})`);
}

// V 8 and 5000 take the vec4 kernel; 1, 7, 257 the scalar one.
const SHAPES = [[1, 1], [3, 7], [33, 257], [3, 5000], [33, 8], [33, 5000]];

Deno.test("crossEntropy and its row losses, counts and argmax flags match float64", async () => {
  for (const [lib, gpu] of await gpus()) {
    const rng = new Rng(31);
    for (const [rows, v] of SHAPES) {
      for (const mag of [4, 80]) {
        await tidy(async () => {
          const x = randomData(rng, rows * v, "f32", -mag, mag);
          const labels = makeLabels(rng, rows, v);
          const want = crossEntropyRef(x, labels, rows, v);
          const tx = Tensor.from(gpu, x, [rows, v]), tl = Tensor.from(gpu, labels, [rows], "i32");
          poisonPool(gpu, [1]);
          const loss = crossEntropy(tx, tl);
          const rowLoss = poisoned(gpu, [rows]), correct = poisoned(gpu, [rows], "u32");
          crossEntropyRows(tx, tl, rowLoss, { correctOut: correct });
          const count = countValid(tl);
          const what = `${lib} ${rows}x${v} ±${mag}`;
          closeOrZero(await loss.read(), [want.loss], tolFor("f32"), `loss ${what}`);
          closeOrZero(await rowLoss.read(), want.rowLoss, tolFor("f32"), `row losses ${what}`);
          assertEquals([...await correct.read()], [...want.correct], `correct ${what}`);
          assertEquals((await count.read())[0], want.count, `count ${what}`);
        });
      }
    }
  }
});

Deno.test("argmax flags take the first maximum, like torch.argmax", async () => {
  for (const [lib, gpu] of await gpus()) {
    // V 4096: WG 256, so indices 4 and 1028 are the two vec4s one invocation loads per iteration.
    for (const [v, far] of [[7, 5], [8, 5], [4096, 1028]]) {
      await tidy(async () => {
        // Ties across vec4s (1, far) and inside one (1, 2): only the first index counts as the argmax.
        // Then a maximum at the last index, and an ignored row (never correct).
        const row = (hi: number[]) => Array.from({ length: v }, (_, i) => hi.includes(i) ? 3 : -1);
        const ties = [[1, far], [1, far], [1, 2], [1, 2], [v - 1], [0], [4, 1028], [4, 1028]];
        const x = ties.flatMap(row);
        const l = [1, far, 1, 2, v - 1, -100, 4, 1028].map((k) => k < v ? k : -100);
        const tl = Tensor.from(gpu, l, [8], "i32");
        const correct = poisoned(gpu, [8], "u32");
        crossEntropyRows(Tensor.from(gpu, x, [8, v]), tl, poisoned(gpu, [8]), { correctOut: correct });
        const want = [1, 0, 1, 0, 1, 0, 1, 0]; // for v ≤ 1028 the last two rows are 4 (max, label) and ignored
        assertEquals([...await correct.read()], want, `ties ${lib} v=${v}`);
      });
    }
  }
});

Deno.test("all-ignored labels give loss 0 and zero gradients; out-of-range labels give NaN", async () => {
  const gpu = await testGpu();
  const rng = new Rng(32);
  await tidy(async () => {
    const tx = Tensor.from(gpu, randomData(rng, 3 * 8), [3, 8]);
    tx.requiresGrad = true;
    const loss = crossEntropy(tx, Tensor.from(gpu, [-100, -100, -100], [3], "i32"));
    assertEquals((await loss.read())[0], 0, "loss with no valid label");
    poisonPool(gpu, [3, 8]);
    backward(loss);
    assertEquals([...await tx.grad!.read()].every((g) => g === 0), true, "zero gradient");
    tx.grad!.dispose();
    const bad = crossEntropy(tx, Tensor.from(gpu, [2, 8, -100], [3], "i32"));
    assert(Number.isNaN((await bad.read())[0]), "label 8 of V 8 must poison the loss");
    const custom = crossEntropy(tx, Tensor.from(gpu, [2, 0, 0], [3], "i32"), { ignoreIndex: 0 });
    const want = crossEntropyRef(await tx.read(), [2, 0, 0], 3, 8, 0);
    assertScalar((await custom.read())[0], want.loss, tolFor("f32"), "ignoreIndex 0");
    assertThrows(() => crossEntropy(tx, Tensor.from(gpu, [1, 2], [2], "i32")), /labels/);
    assertThrows(() => crossEntropyRows(tx, Tensor.from(gpu, [1, 2, 3], [3]), poisoned(gpu, [3])), /i32/);
  });
});

Deno.test("cross-entropy backward: reference vs finite differences", () => {
  const rng = new Rng(33);
  for (const [rows, v] of [[3, 5], [4, 1]]) {
    const x = Float64Array.from(randomData(rng, rows * v, "f32", -3, 3));
    const labels = [0, -100, v - 1, 0].slice(0, rows);
    const f = (xx: Float64Array) => 1.7 * crossEntropyRef(xx, labels, rows, v).loss;
    const got = crossEntropyBackwardRef(x, labels, rows, v, -100, 1.7);
    if (v > 1) assertClose(got, finiteDiff(f, x), 1e-7, `reference ${rows}x${v}`);
    else assertEquals([...got].every((g) => g === 0), true, "V = 1 has zero gradient");
  }
});

Deno.test("cross-entropy backward through autograd matches the reference (upstream gradient 2.5)", async () => {
  for (const [lib, gpu] of await gpus()) {
    const rng = new Rng(34);
    for (const [rows, v] of [[3, 7], [33, 257], [3, 5000], [33, 8]]) {
      await tidy(async () => {
        const x = randomData(rng, rows * v, "f32", -80, 80);
        const labels = makeLabels(rng, rows, v);
        const tx = Tensor.from(gpu, x, [rows, v]);
        tx.requiresGrad = true;
        const loss = scale(crossEntropy(tx, Tensor.from(gpu, labels, [rows], "i32")), 2.5);
        poisonPool(gpu, [rows, v]);
        backward(loss);
        const want = crossEntropyBackwardRef(x, labels, rows, v, -100, 2.5);
        assertClose(await tx.grad!.read(), want, tolFor("f32"), `grad ${lib} ${rows}x${v}`);
        tx.grad!.dispose();
      });
    }
  }
});

Deno.test("crossEntropyRows over two chunks (rowOffset, in-place gradient) equals the whole", async () => {
  for (const [lib, gpu] of await gpus()) {
    const rng = new Rng(35);
    for (const [rows, v, split] of [[33, 257, 20], [33, 5000, 1], [7, 8, 3]]) {
      await tidy(async () => {
        const x = randomData(rng, rows * v, "f32", -6, 6);
        const labels = makeLabels(rng, rows, v);
        const tl = Tensor.from(gpu, labels, [rows], "i32");
        const whole = crossEntropy(Tensor.from(gpu, x, [rows, v]), tl);
        const count = countValid(tl);
        const gradScale = gradScaleOf(count, { alpha: 0.5 });
        const rowLoss = poisoned(gpu, [rows]), correct = poisoned(gpu, [rows], "u32");
        const chunks = [[0, split], [split, rows]].map(([a, b]) => {
          const c = Tensor.from(gpu, x.subarray(a * v, b * v), [b - a, v]);
          crossEntropyRows(c, tl, rowLoss, { rowOffset: a, gradScale, correctOut: correct });
          return c;
        });
        const chunked = lossMean(rowLoss, count);
        const what = `${lib} ${rows}x${v} split ${split}`;
        assertScalar((await chunked.read())[0], (await whole.read())[0], 1e-6, `chunked loss ${what}`);
        const grads = new Float32Array(rows * v);
        grads.set(await chunks[0].read(), 0);
        grads.set(await chunks[1].read(), split * v);
        assertClose(
          grads,
          crossEntropyBackwardRef(x, labels, rows, v, -100, 0.5),
          tolFor("f32"),
          `dlogits ${what}`,
        );
        assertEquals(
          [...await correct.read()],
          [...crossEntropyRef(x, labels, rows, v).correct],
          `correct ${what}`,
        );
      });
    }
  }
});

Deno.test("crossEntropyRows with rows past the 65535 grid limit", async () => {
  const gpu = await testGpu();
  const rng = new Rng(36);
  const [rows, v] = [70_003, 3];
  await tidy(async () => {
    const x = randomData(rng, rows * v, "f32", -3, 3);
    const labels = makeLabels(rng, rows, v);
    const rowLoss = poisoned(gpu, [rows]), correct = poisoned(gpu, [rows], "u32");
    const tl = Tensor.from(gpu, labels, [rows], "i32");
    crossEntropyRows(Tensor.from(gpu, x, [rows, v]), tl, rowLoss, { correctOut: correct });
    const want = crossEntropyRef(x, labels, rows, v);
    assertClose(await rowLoss.read(), want.rowLoss, tolFor("f32"), "row losses");
    assertEquals([...await correct.read()], [...want.correct], "correct");
  });
});

Deno.test("countValid, gradScaleOf and lossMean on their own", async () => {
  const gpu = await testGpu();
  await tidy(async () => {
    const labels = Tensor.from(gpu, [3, -100, 0, -100, 7, 1, -1], [7], "i32");
    const count = countValid(labels);
    assertEquals((await count.read())[0], 5, "count (−1 is a label, not ignored)");
    assertEquals((await countValid(labels, -1).read())[0], 6, "custom ignoreIndex");
    const g = Tensor.from(gpu, [3], [1]);
    assertScalar((await gradScaleOf(count, { grad: g, alpha: 2 }).read())[0], 1.2, 1e-7, "2 · 3 / 5");
    const zero = countValid(Tensor.from(gpu, [-100], [1], "i32"));
    assertEquals((await gradScaleOf(zero).read())[0], 0, "no valid label");
    const rowLoss = Tensor.from(gpu, [1, 2, 3.5], [3]);
    assertScalar((await lossMean(rowLoss, count).read())[0], 6.5 / 5, 1e-7, "lossMean");
    assertEquals((await lossMean(rowLoss, zero).read())[0], 0, "lossMean with count 0");
  });
});
