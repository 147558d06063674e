/**
 * Decode's fused launches against their references (fusedLinear, gateUpSwiglu, addRmsNorm) and the
 * fused decodeStep against the plain one on a random tiny model: same logits, 6 launches per layer for
 * one sequence (norms folded into the GEMVs, one-launch attention), ≤ 8 for several.
 */
import { assertClose, poisoned, randomData, storageTypes, testGpu, tolFor } from "../util.ts";
import { assert, assertEquals, assertThrows } from "../assert.ts";
import { Rng, Tensor, tidy } from "../../src/tensor/mod.ts";
import { addRmsNorm, canFuseLinears, fusedLinear, gateUpSwiglu } from "../../src/ops/mod.ts";
import { lastMatmulPath } from "../../src/ops/matmul.ts";
import { addRmsNormRef, fusedLinearRef, gateUpSwigluRef } from "../../src/reference/decode.ts";
import { rmsNormRef } from "../../src/reference/rmsnorm.ts";
import { randomModel, SHAPES } from "../../src/model/random.ts";
import { type DecodeState, decodeTuning } from "../../src/model/llama_decode.ts";

Deno.test("fusedLinear: 1 to 3 weights side by side, biases, ragged last matrix, f32/f16 weights", async () => {
  const gpu = await testGpu();
  const rng = new Rng(41);
  // [K, widths]: K short of one unrolled trip and past it; last width not a multiple of 4.
  const cases: [number, number[]][] = [[24, [37]], [1032, [8, 4, 5]], [264, [12, 33]], [16, [4, 4, 4]]];
  for (const wt of storageTypes(gpu)) {
    for (const [K, widths] of cases) {
      for (const withBias of [false, true]) {
        await tidy(async () => {
          const x = randomData(rng, K, "f32");
          const ws = widths.map((n) => randomData(rng, n * K, wt));
          const bs = withBias ? widths.map((n) => randomData(rng, n, "f32")) : null;
          const xt = Tensor.from(gpu, x, [1, K]);
          const wts = ws.map((w, i) => Tensor.from(gpu, w, [widths[i], K], wt));
          assert(canFuseLinears(xt, wts), `fits: K ${K} widths ${widths}`);
          poisoned(gpu, [1, widths.reduce((a, b) => a + b)]).dispose();
          const y = fusedLinear(xt, wts, bs ? bs.map((b, i) => Tensor.from(gpu, b, [widths[i]])) : null);
          const what = `fusedLinear ${wt} K ${K} widths ${widths} bias ${withBias}`;
          assertClose(await y.read(), fusedLinearRef(x, ws, bs, 1, K), tolFor(wt), what);
        });
      }
    }
  }
});

Deno.test("fusedLinear: 2 to 16 rows (gemv_rows: R rows per workgroup, row chunks), biases, f32/f16", async () => {
  const gpu = await testGpu();
  const rng = new Rng(45);
  // [M, K, widths]: M ≤ R, one short of R, two chunks, 16 rows; ragged last matrix.
  const cases: [number, number, number[]][] = [[2, 24, [8, 4, 5]], [7, 1032, [12, 33]], [9, 40, [4, 4, 4]], [
    16,
    264,
    [8, 4, 9],
  ]];
  for (const wt of storageTypes(gpu)) {
    for (const [M, K, widths] of cases) {
      await tidy(async () => {
        const x = randomData(rng, M * K, "f32", -2, 2);
        const ws = widths.map((n) => randomData(rng, n * K, wt));
        const bs = widths.map((n) => randomData(rng, n, "f32"));
        poisoned(gpu, [M, widths.reduce((a, b) => a + b)]).dispose();
        const y = fusedLinear(
          Tensor.from(gpu, x, [M, K]),
          ws.map((w, i) => Tensor.from(gpu, w, [widths[i], K], wt)),
          bs.map((b, i) => Tensor.from(gpu, b, [widths[i]])),
        );
        assertEquals(lastMatmulPath(), "gemv_rows");
        const what = `fusedLinear ${wt} ${M} rows K ${K} widths ${widths}`;
        assertClose(await y.read(), fusedLinearRef(x, ws, bs, M, K), tolFor(wt), what);
      });
    }
  }
});

Deno.test("fusedLinear: several rows, and shapes it refuses", async () => {
  const gpu = await testGpu();
  const rng = new Rng(42);
  await tidy(async () => {
    const [M, K] = [3, 40];
    const x = randomData(rng, M * K), w0 = randomData(rng, 8 * K), w1 = randomData(rng, 3 * K);
    const wt = [Tensor.from(gpu, w0, [8, K]), Tensor.from(gpu, w1, [3, K])];
    const y = fusedLinear(Tensor.from(gpu, x, [M, K]), wt);
    assertClose(await y.read(), fusedLinearRef(x, [w0, w1], null, M, K), 1e-5, "fusedLinear 3 rows");
    // A first matrix of 6 rows would put one lane group's 4 columns into two matrices.
    const odd = [Tensor.from(gpu, randomData(rng, 6 * K), [6, K]), wt[1]];
    assert(!canFuseLinears(Tensor.from(gpu, x, [M, K]), odd), "6-row first matrix must not fit");
    assertThrows(() => fusedLinear(Tensor.from(gpu, x, [M, K]), odd), /do not fit/);
  });
});

Deno.test("gateUpSwiglu equals silu(x·Gᵀ + bg) ⊙ (x·Uᵀ + bu) (f32/f16 weights, ragged F, biases)", async () => {
  const gpu = await testGpu();
  const rng = new Rng(43);
  for (const wt of storageTypes(gpu)) {
    for (const [M, K, F] of [[1, 24, 37], [1, 1032, 65], [2, 64, 8], [5, 1032, 37], [16, 40, 9]]) {
      for (const withBias of [false, true]) {
        await tidy(async () => {
          const x = randomData(rng, M * K, "f32", -2, 2);
          const g = randomData(rng, F * K, wt), u = randomData(rng, F * K, wt);
          const bs: [Float32Array, Float32Array] | null = withBias
            ? [randomData(rng, F, "f32"), randomData(rng, F, "f32")]
            : null;
          poisoned(gpu, [M, F]).dispose();
          const y = gateUpSwiglu(
            Tensor.from(gpu, x, [M, K]),
            Tensor.from(gpu, g, [F, K], wt),
            Tensor.from(gpu, u, [F, K], wt),
            bs ? [Tensor.from(gpu, bs[0], [F]), Tensor.from(gpu, bs[1], [F])] : null,
          );
          const what = `gateUpSwiglu ${wt} ${M}x${K}→${F} bias ${withBias}`;
          assertClose(await y.read(), gateUpSwigluRef(x, g, u, bs, M, K), tolFor(wt), what);
        });
      }
    }
  }
});

Deno.test("fusedLinear / gateUpSwiglu with the RMSNorm folded in equal the references on rmsNorm(x)", async () => {
  const gpu = await testGpu();
  const rng = new Rng(46);
  // [M, K, widths]: one row (the norm runs inside the GEMV; K past a few unrolled trips, K = 24 with
  // 3 weight units per row), and 3 rows (rmsNorm first, then gemv_rows).
  const cases: [number, number, number[]][] = [[1, 24, [8, 4, 5]], [1, 1032, [12, 33]], [1, 264, [37]], [
    3,
    40,
    [8, 4, 9],
  ]];
  for (const wt of storageTypes(gpu)) {
    for (const nt of storageTypes(gpu)) {
      for (const [M, K, widths] of cases) {
        await tidy(async () => {
          const x = randomData(rng, M * K, "f32", -3, 3);
          const nw = randomData(rng, K, nt, 0.5, 1.5);
          const ws = widths.map((n) => randomData(rng, n * K, wt));
          const bs = widths.map((n) => randomData(rng, n, "f32"));
          const xt = Tensor.from(gpu, x, [M, K]);
          const norm = { weight: Tensor.from(gpu, nw, [K], nt), eps: 1e-5 };
          const h = rmsNormRef(x, nw, M, K, 1e-5);
          const what = `${wt} weights, ${nt} norm, ${M}x${K} widths ${widths}`;
          poisoned(gpu, [M, widths.reduce((a, b) => a + b)]).dispose();
          const y = fusedLinear(
            xt,
            ws.map((w, i) => Tensor.from(gpu, w, [widths[i], K], wt)),
            bs.map((b, i) => Tensor.from(gpu, b, [widths[i]])),
            norm,
          );
          assertEquals(lastMatmulPath(), M === 1 ? "gemv_n4" : "gemv_rows");
          assertClose(
            await y.read(),
            fusedLinearRef(h, ws, bs, M, K),
            tolFor(wt),
            `fusedLinear+norm ${what}`,
          );
          const F = Math.min(...widths);
          poisoned(gpu, [M, F]).dispose();
          const z = gateUpSwiglu(
            xt,
            Tensor.from(gpu, ws[0].subarray(0, F * K), [F, K], wt),
            Tensor.from(gpu, ws[ws.length - 1].subarray(0, F * K), [F, K], wt),
            null,
            norm,
          );
          const want = gateUpSwigluRef(
            h,
            ws[0].subarray(0, F * K),
            ws[ws.length - 1].subarray(0, F * K),
            null,
            M,
            K,
          );
          assertClose(await z.read(), want, tolFor(wt), `gateUpSwiglu+norm ${what}`);
        });
      }
    }
  }
});

Deno.test("addRmsNorm writes x + d and its RMSNorm (vec4 and scalar rows, f32/f16 weights)", async () => {
  const gpu = await testGpu();
  const rng = new Rng(44);
  for (const wt of storageTypes(gpu)) {
    for (const [rows, cols] of [[1, 7], [3, 1000], [2, 33], [1, 20000]]) {
      await tidy(async () => {
        const x = randomData(rng, rows * cols, "f32", -2, 2), d = randomData(rng, rows * cols, "f32", -2, 2);
        const w = randomData(rng, cols, wt, 0.5, 1.5);
        poisoned(gpu, [rows, cols]).dispose();
        const r = addRmsNorm(
          Tensor.from(gpu, x, [rows, cols]),
          Tensor.from(gpu, d, [rows, cols]),
          Tensor.from(gpu, w, [cols], wt),
          1e-5,
        );
        const want = addRmsNormRef(x, d, w, rows, cols, 1e-5);
        const what = `addRmsNorm ${wt} ${rows}x${cols}`;
        assertClose(await r.sum.read(), want.sum, 1e-6, `${what} sum`);
        assertClose(await r.y.read(), want.y, 1e-4, `${what} y`);
      });
    }
  }
});

// foldNormMaxK 0: the norms run as their own launches (what hidden sizes above the limit get).
for (const [foldMaxK, launches] of [[2048, 6], [0, 8]]) {
  Deno.test(`decodeStep: fused path gives the plain path's logits in ${launches} launches per layer (norm fold up to K ${foldMaxK}; tiny model, 3 steps)`, async () => {
    const gpu = await testGpu();
    const saved = decodeTuning.foldNormMaxK;
    decodeTuning.foldNormMaxK = foldMaxK;
    try {
      for (const wt of storageTypes(gpu)) {
        const model = randomModel(gpu, SHAPES.tiny, 5, wt);
        const c = model.config;
        const [fused, plain] = [model.createCaches(1, 16), model.createCaches(1, 16)];
        const p = { persistent: true };
        for (let pos = 0; pos < 3; pos++) {
          await tidy(async () => {
            const state: DecodeState = {
              positions: Tensor.from(gpu, [pos], [1, 1], "i32", p),
              rows: Tensor.from(gpu, [pos], [1], "u32", p),
              lengths: Tensor.from(gpu, [pos + 1], [1], "u32", p),
            };
            const tokens = Tensor.from(gpu, [(pos * 37 + 11) % c.vocabSize], [1, 1], "i32");
            const d0 = gpu.dispatchCount;
            const a = model.decodeStep(tokens, state, fused);
            const perLayer = (gpu.dispatchCount - d0 - 3) / c.numLayers; // embedding, final norm, LM head
            assertEquals(perLayer, launches, `fused decode: ${perLayer} launches per layer`);
            const b = model.decodeStep(tokens, state, plain, { fused: false });
            assertClose(await a.read(), await b.read(), tolFor(wt), `decodeStep ${wt} position ${pos}`);
            for (const t of Object.values(state)) t.dispose();
          });
        }
        for (const cache of [...fused, ...plain]) cache.dispose();
        model.dispose();
      }
    } finally {
      decodeTuning.foldNormMaxK = saved;
    }
  });
}

Deno.test("decodeStep of 3 sequences at different positions: fused (gemv_rows) equals plain, 8 launches per layer", async () => {
  const gpu = await testGpu();
  for (const wt of storageTypes(gpu)) {
    const model = randomModel(gpu, SHAPES.tiny, 6, wt);
    const c = model.config;
    const B = 3;
    const [fused, plain] = [model.createCaches(B, 16), model.createCaches(B, 16)];
    const p = { persistent: true };
    for (let step = 0; step < 3; step++) {
      await tidy(async () => {
        const pos = [step, step + 4, 2 * step + 9]; // rows 0..4 of sequence 1 stay zeros: fine for both
        const state: DecodeState = {
          positions: Tensor.from(gpu, pos, [B, 1], "i32", p),
          rows: Tensor.from(gpu, pos, [B], "u32", p),
          lengths: Tensor.from(gpu, pos.map((x) => x + 1), [B], "u32", p),
        };
        const tokens = Tensor.from(gpu, pos.map((x, b) => (x * 37 + 11 * b) % c.vocabSize), [B, 1], "i32");
        const d0 = gpu.dispatchCount;
        const a = model.decodeStep(tokens, state, fused);
        const perLayer = (gpu.dispatchCount - d0 - 3) / c.numLayers;
        assertEquals(perLayer, 8, `fused decode B${B}: ${perLayer} launches per layer`);
        const b = model.decodeStep(tokens, state, plain, { fused: false });
        assertClose(await a.read(), await b.read(), tolFor(wt), `decodeStep B${B} ${wt} step ${step}`);
        for (const t of Object.values(state)) t.dispose();
      });
    }
    for (const cache of [...fused, ...plain]) cache.dispose();
    model.dispose();
  }
});
