/**
 * Matmul tuning workbench (run on the GPU box). Part `frozen` (default): the frozen-weight products of the
 * 7B LoRA step — f32 activations [M = 2048 tokens, in] times an f16 weight W [out, in] — forward
 * Y = X·Wᵀ ("T", f16-B A·Bᵀ) and backward dX = dY·W ("N", f16-B A·B) for q/o, k/v, gate/up and down of
 * Mistral-7B, plus 4096³ in both layouts and f32 4096³ for comparison. Each variant (tuning of
 * src/ops/matmul_kernels.ts, or "v0": the previous kernel, bench/workbench/matmul_v0.wgsl, under the
 * previous launcher choices) is timed with GPU timestamps (`gpu.timePass`, best over rounds) and its whole
 * output compared with v0's (max |diff| / max |v0|). Part `lora`: split-K targets on the LoRA products;
 * `gemv`: the decode GEMV lane counts. `--small` shrinks every shape for lavapipe (correctness only).
 *
 *   source .gpu/env.sh && deno run -A --cached-only bench/workbench/matmul.ts [--small] [--part frozen,lora]
 *     [--only NAME,NAME] [--skip NAME,NAME] [--rounds N] [--budget SECONDS]
 *
 * Every variant runs on its shapes, round after round (best round counts), until --rounds or --budget;
 * then prints variants × shapes matrices of TFLOP/s and GPU ms.
 */
import { parseArgs } from "node:util";
import { createGpu, type DType, type KernelSpec } from "../../src/gpu/mod.ts";
import { Rng, Tensor } from "../../src/tensor/mod.ts";
import { matmulInto, type MatmulTuning, setMatmulTuning } from "../../src/ops/matmul.ts";
import { gemm, lastMatmulPath } from "../../src/ops/matmul_kernels.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    small: { type: "boolean", default: false },
    part: { type: "string", default: "frozen,lora" },
    only: { type: "string" },
    skip: { type: "string", default: "" },
    budget: { type: "string", default: "1e9" },
    rounds: { type: "string", default: "3" },
  },
});
const started = performance.now();
const budgetMs = Number(values.budget) * 1000;
const parts = new Set(values.part.split(","));
const only = values.only ? new Set(values.only.split(",")) : null;
const gpu = await createGpu();
console.log(`adapter: ${gpu.info.description}; small ${values.small}`);
const defaults = setMatmulTuning({});

// v0: kernels/matmul.wgsl as it was before this workbench's variants (same bindings and uniforms).
const v0Source = await Deno.readTextFile(new URL("./matmul_v0.wgsl", import.meta.url));
let useV0 = false;
const dispatch = gpu.dispatch.bind(gpu);
gpu.dispatch = ((spec: KernelSpec, ...rest: [never, never, never]) =>
  dispatch(
    useV0 && spec.file === "matmul" ? { ...spec, file: undefined, libs: undefined, source: v0Source } : spec,
    ...rest,
  )) as typeof gpu.dispatch;

/** Deterministic fill in [-1, 1) (xorshift: Rng.uniform is too slow for 10⁸ values). */
function fill(n: number, seed: number, f16: boolean): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const v = (s >>> 0) / 2147483648 - 1;
    a[i] = f16 ? Math.f16round(v) : v;
  }
  return a;
}

interface Shape {
  label: string;
  M: number;
  N: number;
  K: number;
  transB: boolean;
  tb: DType;
  transA?: boolean;
  beta?: number;
}

// Sizes: d model width, kv k/v width, f MLP width, T tokens; --small keeps the ratios' spirit at sizes that
// are no multiples of the tiles (lavapipe).
const [d, kv, f, T] = values.small ? [136, 40, 264, 72] : [4096, 1024, 14336, 2048];
const n = values.small ? 132 : 4096;
const frozen: Shape[] = [
  { label: "N q,o", M: T, N: d, K: d, transB: false, tb: "f16" },
  { label: "N k,v", M: T, N: d, K: kv, transB: false, tb: "f16" },
  { label: "N gate,up", M: T, N: d, K: f, transB: false, tb: "f16" },
  { label: "N down", M: T, N: f, K: d, transB: false, tb: "f16" },
  { label: "N 4096³", M: n, N: n, K: n, transB: false, tb: "f16" },
  { label: "T 4096³", M: n, N: n, K: n, transB: true, tb: "f16" },
  { label: "T q,o", M: T, N: d, K: d, transB: true, tb: "f16" },
  { label: "T k,v", M: T, N: kv, K: d, transB: true, tb: "f16" },
];
const f32Shapes: Shape[] = [
  { label: "f32 N 4096³", M: n, N: n, K: n, transB: false, tb: "f32" },
];

// LoRA products (f32, rank r; src/ops/lora.ts), q/o (out = d) and k/v (out = kv); thin needs max ≥ 512.
const r = values.small ? 8 : 64;
const [lo, lkv, lT] = values.small ? [520, 136, 520] : [d, kv, T];
const lora: Shape[] = [
  { label: "x·Aᵀ", M: lT, N: r, K: lo, transB: true, tb: "f32" },
  { label: "h·Bᵀ", M: lT, N: lo, K: r, transB: true, tb: "f32", beta: 1 },
  { label: "h·Bᵀ kv", M: lT, N: lkv, K: r, transB: true, tb: "f32", beta: 1 },
  { label: "dC·B", M: lT, N: r, K: lo, transB: false, tb: "f32" },
  { label: "dC·B kv", M: lT, N: r, K: lkv, transB: false, tb: "f32" },
  { label: "dhᵀ·x", M: r, N: lo, K: lT, transB: false, tb: "f32", transA: true },
  { label: "dCᵀ·h", M: lo, N: r, K: lT, transB: false, tb: "f32", transA: true },
  { label: "dCᵀ·h kv", M: lkv, N: r, K: lT, transB: false, tb: "f32", transA: true },
  { label: "dx+=dh·A", M: lT, N: lo, K: r, transB: false, tb: "f32", beta: 1 },
];

// One buffer per role, big enough for every shape: gemm takes M, N, K explicitly.
const all = [...frozen, ...f32Shapes, ...lora];
const maxOf = (g: (s: Shape) => number) => Math.max(...all.map(g));
const A = Tensor.from(gpu, fill(maxOf((s) => s.M * s.K), 7, false), [maxOf((s) => s.M * s.K)], "f32");
const Bh = Tensor.from(gpu, fill(maxOf((s) => s.N * s.K), 9, true), [maxOf((s) => s.N * s.K)], "f16");
const nf = Math.max(...[...f32Shapes, ...lora].map((s) => s.N * s.K));
const Bf = Tensor.from(gpu, fill(nf, 11, false), [nf], "f32");
const C = Tensor.empty(gpu, [maxOf((s) => s.M * s.N)], "f32");
const ref = new Map<string, Float32Array>(); // v0's output per shape

const run = (s: Shape) =>
  gemm({
    a: A,
    b: s.tb === "f16" ? Bh : Bf,
    out: C,
    batch: 1,
    M: s.M,
    N: s.N,
    K: s.K,
    strideA: 0,
    strideB: 0,
    transA: !!s.transA,
    transB: s.transB,
    alpha: 1,
    beta: s.beta ?? 0,
  });

/** First run of a variant on a shape: compiles, reads the output and compares it with v0's. */
async function check(s: Shape): Promise<{ path: string; diff: number; firstMs: number }> {
  const t0 = performance.now();
  if (s.beta) gpu.clear(C.buffer); // beta = 1 adds onto C: start from zeros
  run(s);
  const path = lastMatmulPath();
  const out = new Float32Array(await gpu.read(C.buffer, s.M * s.N * 4));
  const firstMs = performance.now() - t0;
  const want = ref.get(s.label);
  if (!want) {
    ref.set(s.label, out);
    return { path, diff: 0, firstMs };
  }
  let dmax = 0, vmax = 0;
  for (let i = 0; i < out.length; i++) {
    const dd = Math.abs(out[i] - want[i]);
    if (!(dd <= dmax)) dmax = Number.isNaN(dd) ? Infinity : dd;
    vmax = Math.max(vmax, Math.abs(want[i]));
  }
  return { path, diff: dmax / vmax, firstMs };
}

/** GPU ms per run: timestamps around enough runs for ~25 ms in one pass. */
async function time(s: Shape): Promise<number> {
  const once = (await gpu.timePass(() => run(s))) ?? 10;
  const iters = Math.max(2, Math.min(50, Math.ceil((values.small ? 2 : 25) / once)));
  const ms = await gpu.timePass(() => {
    for (let i = 0; i < iters; i++) run(s);
  });
  return ms === null ? Infinity : ms / iters;
}

interface Variant {
  name: string;
  tuning: Partial<MatmulTuning>;
  shapes: Shape[];
  v0?: boolean;
}

// The launcher's choices at commit 2c1ffee (v0, and the base of every variant): what matmul_v0.wgsl ran.
const v0Choices: Partial<MatmulTuning> = {
  TX: 16,
  TY: 16,
  BK: 8,
  PAD: 0,
  large: { TX: 32, TY: 16, BK: 16 },
  splitTarget: 128,
  splitMinK: 256,
  fillBelow: 256,
  fillTarget: 256,
  fillMinK: 2048,
  halfB: true,
  bNFast: true,
  cols8: false,
  f16N: null,
  thin: null,
  shortK: 0,
};
// Round 2 (H200, 2026-11-30): figures in src/ops/matmul_kernels.ts and the commit message.
const nShapes = frozen.filter((s) => s.label.startsWith("N"));
const f16N = (TX: number, TY: number, BK: number) => ({ f16N: { TX, TY, BK } });
const frozenVariants: Variant[] = [
  { name: "f16N 128²/16", tuning: f16N(16, 16, 16), shapes: nShapes },
  { name: "f16N 128²/16 cols8", tuning: { ...f16N(16, 16, 16), cols8: true }, shapes: nShapes },
  { name: "f16N 256×128/16", tuning: f16N(16, 32, 16), shapes: nShapes },
  { name: "f16N 256×128/16 cols8", tuning: { ...f16N(16, 32, 16), cols8: true }, shapes: nShapes },
  { name: "f16N 128×64/16 cols8", tuning: { ...f16N(8, 16, 16), cols8: true }, shapes: nShapes },
];
const thin = (wide: number, BK: number, thinTarget: number, thinMinK = 128) => ({
  name: `thin ${wide === 16 ? 128 : 64}/${BK} t${thinTarget} k${thinMinK}`,
  tuning: { thin: { wide, BK }, thinFrom: 512, thinTarget, thinMinK },
  shapes: lora.filter((s) => s.K > r),
});
const loraVariants: Variant[] = [
  thin(16, 16, 256),
  thin(16, 8, 256),
  thin(8, 8, 256),
  thin(8, 8, 512),
  thin(16, 16, 384),
  thin(16, 16, 256, 64),
  { name: "shortK 128²", tuning: { shortK: 128 }, shapes: lora.filter((s) => s.K === r) },
];

const frozenOn = parts.has("frozen"), loraOn = parts.has("lora");
const picked = [...(frozenOn ? [...frozen, ...f32Shapes] : []), ...(loraOn ? lora : [])];
const variants = [
  { name: "v0", tuning: {}, shapes: picked, v0: true },
  ...(frozenOn ? frozenVariants : []),
  ...(loraOn ? loraVariants : []),
  {
    name: "default (this commit)",
    tuning: defaults,
    shapes: picked.filter((s) => !s.label.startsWith("f32")),
  },
].filter((v) => (!only || only.has(v.name) || v.v0) && !values.skip.split(",").includes(v.name));

console.log(`data ready at ${((performance.now() - started) / 1000).toFixed(1)} s`);
// Rounds: every variant on every shape, then again; the best of the rounds counts. Interleaving keeps a
// stretch of foreign load on the GPU (seen in an earlier call) from landing on one variant only.
interface Row {
  variant: string;
  shape: string;
  path: string;
  diff: number;
  firstMs: number;
  ms: number;
  tflops: number;
}
const rows = new Map<string, Row>();
let round = 0;
for (; round < Number(values.rounds); round++) {
  if (performance.now() - started > budgetMs) break;
  for (const v of variants) {
    if (performance.now() - started > budgetMs) break;
    setMatmulTuning({ ...defaults, ...v0Choices, ...v.tuning });
    useV0 = !!v.v0;
    for (const s of v.shapes) {
      const key = `${v.name}|${s.label}`;
      try {
        const row = rows.get(key) ??
          { variant: v.name, shape: s.label, ...(await check(s)), ms: Infinity, tflops: 0 };
        row.ms = Math.min(row.ms, await time(s));
        row.tflops = 2 * s.M * s.N * s.K / (row.ms * 1e9);
        rows.set(key, row);
      } catch (e) {
        if (!rows.has(key)) console.log(`${v.name} | ${s.label} | FAIL ${String(e).slice(0, 100)}`);
      }
    }
  }
  console.log(`round ${round + 1} done at ${((performance.now() - started) / 1000).toFixed(1)} s`);
}
useV0 = false;
// Matrices per part: variants × shapes, TFLOP/s and GPU ms (best of the rounds); worst |diff| vs v0.
const groups = [[...frozen, ...f32Shapes], lora].map((g) => g.map((s) => s.label));
for (const labels of groups) {
  const vs = variants.filter((v) => labels.some((l) => rows.has(`${v.name}|${l}`)));
  if (vs.length === 0) continue;
  for (
    const [what, cell] of [["TFLOP/s", (r: Row) => r.tflops.toFixed(1)], [
      "ms",
      (r: Row) => r.ms.toFixed(3),
    ]] as const
  ) {
    console.log(`\n${what}, best of ${round} | ${labels.join(" | ")} | max diff | paths`);
    for (const v of vs) {
      const rs = labels.map((l) => rows.get(`${v.name}|${l}`));
      const diff = Math.max(...rs.map((r) => r?.diff ?? 0));
      const paths = what === "ms" ? "" : [...new Set(rs.filter((r) => r).map((r) => r!.path))].join(",");
      console.log(
        `${v.name} | ${rs.map((r) => (r ? cell(r) : "")).join(" | ")} | ${diff.toExponential(0)} | ${paths}`,
      );
    }
  }
}
setMatmulTuning(defaults);
const outDir = Deno.env.get("OUT");
if (outDir) await Deno.writeTextFile(`${outDir}/matmul.json`, JSON.stringify([...rows.values()], null, 1));

if (parts.has("gemv")) {
  // Decode GEMV (f16 weights): the op's default path vs lane counts of gemv_t_h8 (n4 off).
  const K = values.small ? 136 : 4096, N = values.small ? 264 : 14336;
  for (const [name, t] of [["default", {}], ["h8 L16", { gemvLanes: 16, n4: null }]] as const) {
    setMatmulTuning({ ...defaults, ...t });
    const rng = new Rng(3);
    const x = Tensor.from(gpu, rng.uniformArray(K), [1, K]);
    const w = Tensor.from(gpu, fill(N * K, 5, true), [N, K], "f16");
    const y = Tensor.empty(gpu, [1, N]);
    const go = () => matmulInto(y, x, w, { transB: true });
    go();
    const ms = ((await gpu.timePass(() => {
      for (let i = 0; i < 100; i++) go();
    })) ?? NaN) / 100;
    console.log(
      `| gemv ${name} | 1×${N}×${K} | ${lastMatmulPath()} | ${ms.toFixed(4)} | ${
        (N * K * 2 / ms / 1e9).toFixed(2)
      } TB/s |`,
    );
    [x, w, y].forEach((t) => t.dispose());
  }
  setMatmulTuning(defaults);
}
console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`);
gpu.destroy();
