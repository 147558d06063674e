import { assertClose, poisoned, randomData, storageTypes, testGpu } from "../util.ts";
import { assert, assertEquals } from "../assert.ts";
import { Rng, Tensor, tidy } from "../../src/tensor/mod.ts";
import { backward } from "../../src/autograd/mod.ts";
import { embedding } from "../../src/ops/embedding.ts";
import { embeddingBackwardRef, embeddingRef } from "../../src/reference/embedding.ts";

const COLS = [1, 7, 33, 257, 1000]; // 1000 takes the vec4 path

function randomIds(rng: Rng, n: number, vocab: number): Int32Array {
  return Int32Array.from({ length: n }, () => rng.int(vocab));
}

Deno.test("embedding forward gathers exact rows (f32 and f16 tables, [N] and [B, T] ids)", async () => {
  const gpu = await testGpu();
  const rng = new Rng(41);
  for (const wt of storageTypes(gpu)) {
    for (const cols of COLS) {
      for (const idShape of [[1], [3], [5, 13]]) {
        const n = idShape.reduce((a, b) => a * b);
        const vocab = 11;
        poisoned(gpu, [...idShape, cols]).dispose(); // the output reuses this NaN-filled buffer
        await tidy(async () => {
          const ids = randomIds(rng, n, vocab);
          const w = randomData(rng, vocab * cols, wt);
          const out = embedding(
            Tensor.from(gpu, ids, idShape, "i32"),
            Tensor.from(gpu, w, [vocab, cols], wt),
          );
          assertEquals([...out.shape], [...idShape, cols]);
          // A gather is exact: f16 → f32 widening loses nothing.
          assertClose(
            await out.read(),
            embeddingRef(ids, w, vocab, cols),
            0,
            `embedding ${wt} [${idShape}] C=${cols}`,
          );
        });
      }
    }
  }
});

Deno.test("embedding forward turns an out-of-range id into a NaN row, not another row", async () => {
  const gpu = await testGpu();
  for (const cols of [3, 4]) { // scalar and vec4 paths
    await tidy(async () => {
      const table = Array.from({ length: 2 * cols }, (_, i) => i + 1);
      const w = Tensor.from(gpu, table, [2, cols]);
      const got = await embedding(Tensor.from(gpu, [1, 2, -1], [3], "i32"), w).read();
      assertEquals([...got.slice(0, cols)], table.slice(cols));
      assert([...got.slice(cols)].every(Number.isNaN), `bad ids give NaN rows, got ${[...got.slice(cols)]}`);
    });
  }
});

Deno.test("embedding reference backward sums duplicate ids (hand-checked)", () => {
  // ids [2, 0, 2]: row 2 gets g[0] + g[2], row 0 gets g[1], row 1 nothing.
  const dw = embeddingBackwardRef([2, 0, 2], [1, 2, 10, 20, 100, 200], 3, 2);
  assertEquals([...dw], [10, 20, 0, 0, 101, 202]);
});

Deno.test("embedding GPU backward: duplicate ids add up, untouched rows are zero, repeatable", async () => {
  const gpu = await testGpu();
  const rng = new Rng(42);
  // Few distinct ids among many positions → long runs of duplicates spanning several 256-id chunks.
  for (const [n, vocab, cols] of [[1, 3, 7], [65, 5, 33], [600, 9, 8], [300, 40, 257], [70, 1000, 12]]) {
    const ids = randomIds(rng, n, vocab);
    const ws = randomData(rng, vocab * cols);
    const gs = randomData(rng, n * cols);
    const runs: Float32Array[] = [];
    for (let rep = 0; rep < 2; rep++) {
      const w = Tensor.from(gpu, ws, [vocab, cols], "f32", { persistent: true });
      w.requiresGrad = true;
      tidy(() => backward(embedding(Tensor.from(gpu, ids, [n], "i32"), w), Tensor.from(gpu, gs, [n, cols])));
      runs.push(new Float32Array(await w.grad!.read()));
      w.grad!.dispose();
      w.dispose();
    }
    const want = embeddingBackwardRef(ids, gs, vocab, cols);
    assertClose(runs[0], want, 1e-5, `dweight N=${n} V=${vocab} C=${cols}`);
    for (let v = 0; v < vocab; v++) {
      if (!ids.includes(v)) assert(runs[0][v * cols] === 0, `row ${v} has no id but is ${runs[0][v * cols]}`);
    }
    assert(runs[0].every((x, i) => Object.is(x, runs[1][i])), `N=${n}: two runs differ (not deterministic)`);
  }
});

Deno.test("embedding: a frozen f16 table gets no gradient and the op records nothing for it", async () => {
  const gpu = await testGpu();
  if (!gpu.info.f16) return;
  const rng = new Rng(43);
  const w = Tensor.from(gpu, randomData(rng, 40, "f16"), [10, 4], "f16", { persistent: true });
  tidy(() => {
    const out = embedding(Tensor.from(gpu, [3, 3, 1], [3], "i32"), w);
    assert(!out.requiresGrad && out.node === null, "no tape node for a frozen table");
  });
  assertEquals(w.grad, null);
  w.dispose();
});
