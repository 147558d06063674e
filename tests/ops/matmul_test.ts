import { assertClose, finiteDiff, poisoned, randomData, testGpu, tolFor } from "../util.ts";
import { assert, assertEquals, assertThrows } from "../assert.ts";
import { type DType } from "../../src/gpu/mod.ts";
import { Rng, Tensor, tidy } from "../../src/tensor/mod.ts";
import { backward } from "../../src/autograd/mod.ts";
import { lastMatmulPath, matmul, matmulInto, setMatmulTuning } from "../../src/ops/matmul.ts";
import { matmulBackwardRef, matmulRef, type MatmulRefSpec } from "../../src/reference/matmul.ts";

const LAYOUTS: [boolean, boolean][] = [[false, false], [false, true], [true, false], [true, true]];
const f16 = (gpuF16: boolean, t: DType): DType => (gpuF16 ? t : "f32");

interface Case extends MatmulRefSpec {
  ta: DType;
  tb: DType;
}

/** Random inputs (f16-rounded where stored as f16) and their GPU tensors. */
function inputs(rng: Rng, c: Case, gpu: Awaited<ReturnType<typeof testGpu>>) {
  const a = randomData(rng, c.batch * c.M * c.K, c.ta);
  const b = randomData(rng, (c.batchB ? c.batch : 1) * c.K * c.N, c.tb);
  const batchDims = c.batch > 1 ? [c.batch] : [];
  const ta = Tensor.from(gpu, a, [...batchDims, ...(c.transA ? [c.K, c.M] : [c.M, c.K])], c.ta);
  const tb = Tensor.from(
    gpu,
    b,
    [...(c.batchB ? batchDims : []), ...(c.transB ? [c.N, c.K] : [c.K, c.N])],
    c.tb,
  );
  return { a, b, ta, tb, outShape: [...batchDims, c.M, c.N] };
}

const tolOf = (c: Case) => Math.max(tolFor(c.ta), tolFor(c.tb));

Deno.test("matmul forward: every layout × f32/f16 storage × awkward shapes, tiled and vec4 paths", async () => {
  const gpu = await testGpu();
  const rng = new Rng(11);
  // [M, N, K]: unaligned (scalar `simple` kernel), aligned (vec4 `main` kernel), M = 1, K = 1.
  const shapes = [[33, 7, 17], [36, 44, 20], [1, 9, 1], [130, 12, 8]];
  const types: [DType, DType][] = [["f32", "f32"], ["f16", "f16"], ["f32", "f16"]].map(
    ([x, y]) => [f16(gpu.info.f16, x as DType), f16(gpu.info.f16, y as DType)],
  );
  const paths = new Set<string>();
  for (const [ta, tb] of types) {
    for (const [transA, transB] of LAYOUTS) {
      for (const [M, N, K] of shapes) {
        if (ta !== tb && transA) continue; // mixed storage is the Linear case: A activations, B weights
        await tidy(async () => {
          const c: Case = { batch: 1, M, N, K, transA, transB, ta, tb };
          const { a, b, ta: A, tb: B, outShape } = inputs(rng, c, gpu);
          const out = poisoned(gpu, outShape);
          matmulInto(out, A, B, { transA, transB });
          paths.add(lastMatmulPath());
          const what = `${ta}/${tb} ${transA ? "Aᵀ" : "A"}·${transB ? "Bᵀ" : "B"} ${M}x${N}x${K}`;
          assertClose(await out.read(), matmulRef(a, b, c), tolOf(c), what);
        });
      }
    }
  }
  assert(paths.has("main") && paths.has("simple"), `paths exercised: ${[...paths]}`);
});

Deno.test("matmul large tile where the adapter allows it (48 KiB shared memory), else the 128×128 tile", async () => {
  const gpu = await testGpu();
  const rng = new Rng(16);
  // lavapipe has 32 KiB: there this checks the fallback; the H200 workbench checks the large tile.
  const lim = gpu.device.limits;
  const allowed = lim.maxComputeWorkgroupStorageSize >= 49152 && lim.maxComputeInvocationsPerWorkgroup >= 512;
  const old = setMatmulTuning({ splitTarget: 1 }); // any output counts as big enough
  try {
    for (const [transA, transB] of LAYOUTS) {
      for (const tb of new Set<DType>(["f32", f16(gpu.info.f16, "f16")])) {
        await tidy(async () => {
          // K above shortK (shorter products stay on the 128×128 tile); N % 8 ≠ 0 keeps f16 A·B off its
          // packed 128×128 tile.
          const c: Case = { batch: 1, M: 140, N: 260, K: 200, transA, transB, ta: "f32", tb };
          const { a, b, ta, tb: B, outShape } = inputs(rng, c, gpu);
          const out = poisoned(gpu, outShape);
          matmulInto(out, ta, B, { transA, transB });
          assertEquals(lastMatmulPath(), allowed ? "main/large" : "main");
          assertClose(await out.read(), matmulRef(a, b, c), tolOf(c), `large ${tb} ${transA}/${transB}`);
        });
      }
    }
  } finally {
    setMatmulTuning(old);
  }
});

Deno.test("matmul f16 weights as packed u32 (HALF_B): both layouts, batched B, split-K and fill split", async () => {
  const gpu = await testGpu();
  if (!gpu.info.f16) return; // the packed path reads f16 storage; covered where the adapter has it
  const rng = new Rng(17);
  // [case, tuning, path]: the packed path needs the weight's contiguous dim (K for Bᵀ, N for B) % 8 == 0.
  const cases: [Case, Parameters<typeof setMatmulTuning>[0], string][] = [
    [{ batch: 1, M: 36, N: 40, K: 20, ta: "f32", tb: "f16" }, {}, "main"], // A·B
    [{ batch: 1, M: 36, N: 44, K: 24, transB: true, ta: "f32", tb: "f16" }, {}, "main"], // A·Bᵀ
    [{ batch: 2, M: 36, N: 40, K: 24, batchB: true, ta: "f32", tb: "f16" }, {}, "main"], // per-batch B
    [{ batch: 1, M: 20, N: 24, K: 520, ta: "f32", tb: "f16" }, {}, "main+splitK"], // tiny output, long K
    [{ batch: 1, M: 20, N: 24, K: 520, transB: true, ta: "f32", tb: "f16" }, {}, "main+splitK"],
    // The fill split (outputs of less than a wave, long K), at test size through its thresholds.
    [
      { batch: 1, M: 36, N: 40, K: 256, transB: true, ta: "f32", tb: "f16" },
      { splitTarget: 1, fillBelow: 64, fillTarget: 8, fillMinK: 64 },
      "main+splitK",
    ],
  ];
  for (const [c, tune, path] of cases) {
    const old = setMatmulTuning(tune);
    try {
      await tidy(async () => {
        const { a, b, ta, tb, outShape } = inputs(rng, c, gpu);
        const out = poisoned(gpu, outShape);
        const what = `${c.transB ? "A·Bᵀ" : "A·B"} batch ${c.batch} ${c.M}x${c.N}x${c.K}`;
        // The profile names each launch with its overrides: the packed kernel must be the one that ran.
        const { kernels } = await gpu.profile(() => matmulInto(out, ta, tb, { transB: c.transB }));
        // Where 48 KiB exist (the H200) the large tile may take a case: the packing is the same.
        assert(lastMatmulPath().replace("/large", "").includes(path), `${what}: ran ${lastMatmulPath()}`);
        if (kernels) {
          const names = kernels.map((k) => k.name).join(" ");
          assert(
            /matmul:main<[^>]*>\{[^}]*HALF_B=1/.test(names),
            `${what}: packed kernel not used (${names})`,
          );
        }
        assertClose(await out.read(), matmulRef(a, b, c), tolOf(c), what);
      });
    } finally {
      setMatmulTuning(old);
    }
  }
});

Deno.test("matmul thin tile (LoRA rank-r products) in every layout, with its K split and beta", async () => {
  const gpu = await testGpu();
  const rng = new Rng(18);
  // At test size through the thresholds: one side ≤ 64, the other ≥ thinFrom (lowered to 64 here).
  const old = setMatmulTuning({ thinFrom: 64, thinTarget: 8, thinMinK: 32 });
  try {
    for (const [transA, transB] of LAYOUTS) {
      for (const [M, N, K] of [[132, 24, 200], [20, 136, 96]]) {
        await tidy(async () => {
          const c: Case = { batch: 1, M, N, K, transA, transB, ta: "f32", tb: "f32" };
          const { a, b, ta, tb, outShape } = inputs(rng, c, gpu);
          const c0 = randomData(rng, M * N);
          const out = Tensor.from(gpu, c0, outShape);
          matmulInto(out, ta, tb, { transA, transB, beta: 1 }); // dx += dh·A accumulates like this
          const what = `thin ${transA ? "Aᵀ" : "A"}·${transB ? "Bᵀ" : "B"} ${M}x${N}x${K}`;
          assert(lastMatmulPath().startsWith("main/thin+splitK"), `${what}: ran ${lastMatmulPath()}`);
          assertClose(await out.read(), matmulRef(a, b, c, { beta: 1, c0 }), tolOf(c), what);
        });
      }
    }
  } finally {
    setMatmulTuning(old);
  }
});

Deno.test("matmul epilogue: alpha, beta accumulation and f32/f16 bias on gemv, tiled and split-K paths", async () => {
  const gpu = await testGpu();
  const rng = new Rng(12);
  const bt = f16(gpu.info.f16, "f16");
  const cases: [Case, string][] = [
    // 2 ..= 4 rows: gemv_t (faster there on the H200); 5 ..= 16: gemv_rows (R rows per workgroup; 9
    // and 16 rows run as two chunks; ragged N).
    [
      { batch: 1, M: 2, N: 37, K: 24, transB: true, ta: "f32", tb: bt },
      bt === "f16" ? "gemv_t_h8" : "gemv_t",
    ],
    [{ batch: 1, M: 5, N: 37, K: 24, transB: true, ta: "f32", tb: bt }, "gemv_rows"],
    [{ batch: 1, M: 9, N: 38, K: 1032, transB: true, ta: "f32", tb: bt }, "gemv_rows"],
    [{ batch: 1, M: 16, N: 13, K: 40, transB: true, ta: "f32", tb: bt }, "gemv_rows"],
    // f16 weights with K % 8 ≠ 0 keep gemv_t (vec4<f16> loads).
    [
      { batch: 1, M: 6, N: 37, K: 28, transB: true, ta: "f32", tb: bt },
      bt === "f16" ? "gemv_t" : "gemv_rows",
    ],
    // One row: gemv_n4 (4 columns per lane group; ragged N; K short of one unrolled trip and past it).
    [{ batch: 1, M: 1, N: 37, K: 24, transB: true, ta: "f32", tb: bt }, "gemv_n4"],
    [{ batch: 1, M: 1, N: 38, K: 1032, transB: true, ta: "f32", tb: bt }, "gemv_n4"],
    [{ batch: 1, M: 1, N: 5, K: 1028, transB: true, ta: "f32", tb: "f32" }, "gemv_n4"],
    [{ batch: 1, M: 5, N: 37, K: 28, transB: true, ta: "f32", tb: "f32" }, "gemv_rows"], // f32: K % 4 suffices
    [{ batch: 1, M: 40, N: 36, K: 12, ta: "f32", tb: "f32" }, "main"],
    [{ batch: 1, M: 9, N: 7, K: 600, transA: true, ta: "f32", tb: "f32" }, "splitK"], // tiny output, long K
    [{ batch: 1, M: 20, N: 24, K: 520, transB: true, ta: "f32", tb: bt }, "main+splitK"],
  ];
  for (const [c, path] of cases) {
    for (const biasType of ["f32", bt] as DType[]) {
      await tidy(async () => {
        const { a, b, ta, tb, outShape } = inputs(rng, c, gpu);
        const bias = randomData(rng, c.N, biasType);
        const c0 = randomData(rng, c.M * c.N);
        const out = Tensor.from(gpu, c0, outShape);
        const opts = { transA: c.transA, transB: c.transB, alpha: 0.75 };
        matmulInto(out, ta, tb, { ...opts, beta: -0.5, bias: Tensor.from(gpu, bias, [c.N], biasType) });
        const what = `${path} ${c.M}x${c.N}x${c.K} bias ${biasType}`;
        assert(lastMatmulPath().includes(path), `${what}: ran ${lastMatmulPath()}`);
        const want = matmulRef(a, b, { ...c, alpha: 0.75 }, { bias, beta: -0.5, c0 });
        assertClose(await out.read(), want, tolOf(c), what);
        // beta = 0 must ignore whatever the output held (NaN here).
        const fresh = poisoned(gpu, outShape);
        matmulInto(fresh, ta, tb, opts);
        assertClose(await fresh.read(), matmulRef(a, b, { ...c, alpha: 0.75 }), tolOf(c), `${what} beta 0`);
      });
    }
  }
});

Deno.test("matmul batch: per-batch B and shared B (folded), all layouts, gemv and tiled", async () => {
  const gpu = await testGpu();
  const rng = new Rng(13);
  for (const [transA, transB] of LAYOUTS) {
    for (const batchB of [true, false]) {
      for (const [M, N, K] of [[7, 9, 5], [2, 12, 16]]) {
        await tidy(async () => {
          const c: Case = { batch: 3, M, N, K, transA, transB, batchB, ta: "f32", tb: "f32" };
          const { a, b, ta, tb } = inputs(rng, c, gpu);
          const out = matmul(ta, tb, { transA, transB });
          assertEquals(out.shape, [3, M, N]);
          const what = `batch 3 ${batchB ? "per-batch" : "shared"} B ${transA}/${transB} ${M}x${N}x${K}`;
          assertClose(await out.read(), matmulRef(a, b, c), tolFor("f32"), `${what} (${lastMatmulPath()})`);
        });
      }
    }
  }
});

Deno.test("matmul reference backward matches float64 finite differences (all layouts, shared B, alpha)", () => {
  const rng = new Rng(14);
  for (const [transA, transB] of LAYOUTS) {
    for (const batchB of [true, false]) {
      const s: MatmulRefSpec = { batch: 2, M: 3, N: 4, K: 2, transA, transB, batchB, alpha: 1.5 };
      const a = Float64Array.from(randomData(rng, s.batch * s.M * s.K));
      const b = Float64Array.from(randomData(rng, (batchB ? s.batch : 1) * s.K * s.N));
      const bias = Float64Array.from(randomData(rng, s.N));
      const w = Float64Array.from(randomData(rng, s.batch * s.M * s.N)); // loss = Σ w ⊙ C
      const loss = (x: Float64Array, y: Float64Array, z: Float64Array) =>
        matmulRef(x, y, s, { bias: z }).reduce((acc, v, i) => acc + v * w[i], 0);
      const g = matmulBackwardRef(a, b, w, s);
      const what = `${transA}/${transB} batchB ${batchB}`;
      assertClose(g.dA, finiteDiff((x) => loss(x, b, bias), a), 1e-7, `dA ${what}`);
      assertClose(g.dB, finiteDiff((y) => loss(a, y, bias), b), 1e-7, `dB ${what}`);
      assertClose(g.dBias, finiteDiff((z) => loss(a, b, z), bias), 1e-7, `dbias ${what}`);
    }
  }
});

Deno.test("matmul GPU backward vs reference: layouts, bias, batch, shared B, frozen f16 B", async () => {
  const gpu = await testGpu();
  const rng = new Rng(15);
  const cases: Case[] = [];
  for (const [transA, transB] of LAYOUTS) {
    cases.push({ batch: 1, M: 9, N: 6, K: 7, transA, transB, ta: "f32", tb: "f32", alpha: 0.5 });
    cases.push({ batch: 3, M: 5, N: 8, K: 4, transA, transB, batchB: false, ta: "f32", tb: "f32" });
  }
  cases.push({
    batch: 2,
    M: 4,
    N: 12,
    K: 8,
    transA: true,
    transB: false,
    batchB: true,
    ta: "f32",
    tb: "f32",
  });
  // LoRA-style: f32 activations through a frozen f16 weight [out, in]; only dA (and dbias) flow.
  const frozen: Case = {
    batch: 2,
    M: 3,
    N: 12,
    K: 16,
    transB: true,
    ta: "f32",
    tb: f16(gpu.info.f16, "f16"),
  };
  cases.push(frozen);
  for (const c of cases) {
    await tidy(async () => {
      const { a, b, ta, tb, outShape } = inputs(rng, c, gpu);
      const bias = randomData(rng, c.N);
      const tbias = Tensor.from(gpu, bias, [c.N]);
      const trainB = c !== frozen;
      for (const t of trainB ? [ta, tb, tbias] : [ta, tbias]) t.requiresGrad = true;
      const out = matmul(ta, tb, { transA: c.transA, transB: c.transB, alpha: c.alpha, bias: tbias });
      const dc = randomData(rng, out.size);
      backward(out, Tensor.from(gpu, dc, outShape));
      const want = matmulBackwardRef(a, b, dc, c);
      const what = `${c.batch}x${c.M}x${c.N}x${c.K} ${c.transA}/${c.transB} batchB ${!!c.batchB} ${c.tb}`;
      assertClose(await ta.grad!.read(), want.dA, tolFor("f32"), `dA ${what}`);
      assertClose(await tbias.grad!.read(), want.dBias, tolFor("f32"), `dbias ${what}`);
      if (trainB) {
        assertEquals(tb.grad!.shape, tb.shape);
        assertClose(await tb.grad!.read(), want.dB, tolFor("f32"), `dB ${what}`);
      } else assertEquals(tb.grad, null, "a frozen weight gets no gradient");
      for (const t of [ta, tb, tbias]) t.grad?.dispose();
    });
  }
});

Deno.test("matmul with K = 0 is beta·out + bias (an empty sum)", async () => {
  const gpu = await testGpu();
  await tidy(async () => {
    const out = Tensor.from(gpu, [1, 2, 3, 4, 5, 6], [2, 3]);
    matmulInto(out, Tensor.zeros(gpu, [2, 0]), Tensor.zeros(gpu, [0, 3]), {
      beta: 2,
      bias: Tensor.from(gpu, [0.5, -1, 3], [3]),
    });
    assertEquals(lastMatmulPath(), "empty");
    assertClose(await out.read(), [2.5, 3, 9, 8.5, 9, 15], 1e-7, "K = 0");
  });
});

Deno.test("matmul rejects mismatched shapes and wrong outputs with a clear message", async () => {
  const gpu = await testGpu();
  await tidy(() => {
    const a = Tensor.zeros(gpu, [2, 3]), b = Tensor.zeros(gpu, [4, 5]);
    assertThrows(() => matmul(a, b), /inner dimensions 3 and 4 differ/);
    assertThrows(() => matmul(Tensor.zeros(gpu, [2, 2, 3]), Tensor.zeros(gpu, [3, 3, 5])), /batch dims/);
    assertThrows(() => matmulInto(Tensor.zeros(gpu, [2, 4]), a, Tensor.zeros(gpu, [3, 5])), /out \[2,4\]/);
    assertThrows(
      () => matmul(a, Tensor.zeros(gpu, [3, 5]), { bias: Tensor.zeros(gpu, [4]) }),
      /bias must be \[5\]/,
    );
  });
});
