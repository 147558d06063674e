/**
 * Matmul tuning workbench (run on the GPU box): times tile variants of the tiled kernel on 4096³ in
 * every layout, GEMV lane counts and split-K targets, and checks each variant's output on an awkward
 * shape against float64 samples. Prints markdown table rows as it goes. A GPU hang or a compiler
 * crash in one variant must not cost the others, so `--list` prints the variant count and
 * `--only I` runs variant I alone (one process per variant under `timeout`):
 *
 *   deno run -A bench/workbench/matmul.ts --header
 *   for i in $(seq 0 $(($(deno run -A bench/workbench/matmul.ts --list) - 1))); do
 *     timeout 60 deno run -A bench/workbench/matmul.ts --only $i; done
 */
import { parseArgs } from "node:util";
import { createGpu, type DType } from "../../src/gpu/mod.ts";
import { Rng, Tensor } from "../../src/tensor/mod.ts";
import { matmulInto, type MatmulTuning, setMatmulTuning } from "../../src/ops/matmul.ts";
import { timeCase } from "../harness.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    n: { type: "string", default: "4096" },
    only: { type: "string" },
    list: { type: "boolean", default: false },
    header: { type: "boolean", default: false },
  },
});
if (values.header) {
  console.log(
    "| variant | case | size | wall ms | GPU ms | TFLOP/s (GPU) | TB/s (GPU) | max rel err (check) |",
  );
  console.log("|---|---|---|---:|---:|---:|---:|---:|");
  Deno.exit(0);
}
const gpu = await createGpu();
console.error(`adapter: ${gpu.info.description}`);
const defaults = setMatmulTuning({});
const n = Number(values.n);

interface Shape {
  label: string;
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  tb?: DType;
}

function make(s: Shape, seed: number) {
  const rng = new Rng(seed);
  const a = rng.uniformArray(s.M * s.K), b = rng.uniformArray(s.K * s.N);
  if (s.tb === "f16") { for (let i = 0; i < b.length; i++) b[i] = Math.f16round(b[i]); }
  const ta = Tensor.from(gpu, a, s.transA ? [s.K, s.M] : [s.M, s.K], "f32", { persistent: true });
  const tb = Tensor.from(gpu, b, s.transB ? [s.N, s.K] : [s.K, s.N], s.tb ?? "f32", { persistent: true });
  const tc = Tensor.empty(gpu, [s.M, s.N], "f32", { persistent: true });
  const run = () => matmulInto(tc, ta, tb, { transA: s.transA, transB: s.transB });
  return { a, b, ta, tb, tc, run, dispose: () => [ta, tb, tc].forEach((t) => t.dispose()) };
}

/** Max relative error of 256 sampled outputs against float64 (relative to the row's scale). */
async function check(s: Shape): Promise<number> {
  const m = make(s, 3);
  m.run();
  const c = await m.tc.read();
  const rng = new Rng(5);
  let worst = 0;
  for (let t = 0; t < 256; t++) {
    const i = Math.floor(rng.next() * s.M), j = Math.floor(rng.next() * s.N);
    let acc = 0, mag = 0;
    for (let k = 0; k < s.K; k++) {
      const x = s.transA ? m.a[k * s.M + i] : m.a[i * s.K + k];
      const y = s.transB ? m.b[j * s.K + k] : m.b[k * s.N + j];
      acc += x * y;
      mag += Math.abs(x * y);
    }
    const e = Math.abs(c[i * s.N + j] - acc) / mag;
    worst = Number.isNaN(e) ? Infinity : Math.max(worst, e);
  }
  m.dispose();
  return worst;
}

/**
 * GPU time per run without host recording: the harness's wall time includes encoding (tens of µs per
 * dispatch in Deno), which hides small kernels. Nothing is submitted while recording, so the time from
 * the end of recording to the end of sync, less an empty sync's latency, is GPU time. Runs are capped
 * below the uniform arena's ~4000 dispatches (an early flush would overlap GPU and recording).
 */
async function gpuTime(run: () => void, wallMs: number): Promise<number> {
  let idle = Infinity;
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    await gpu.sync();
    idle = Math.min(idle, performance.now() - t);
  }
  const iters = Math.max(3, Math.min(1800, Math.round(300 / wallMs)));
  let best = Infinity;
  for (let rep = 0; rep < 3; rep++) {
    for (let i = 0; i < iters; i++) run();
    const t1 = performance.now();
    await gpu.sync();
    best = Math.min(best, Math.max(0, performance.now() - t1 - idle) / iters);
  }
  return best;
}

const variants: (() => Promise<void>)[] = [];
function bench(variant: string, t: Partial<MatmulTuning>, shapes: Shape[], checkShape?: (s: Shape) => Shape) {
  variants.push(() => benchNow(variant, t, shapes, checkShape));
}

async function benchNow(
  variant: string,
  t: Partial<MatmulTuning>,
  shapes: Shape[],
  checkShape?: (s: Shape) => Shape,
) {
  setMatmulTuning({ ...defaults, ...t });
  for (const s of shapes) {
    let err = "";
    try {
      if (checkShape) err = (await check(checkShape(s))).toExponential(1);
      const m = make(s, 1);
      const r = await timeCase(gpu, {
        name: s.label,
        size: `${s.M}x${s.N}x${s.K}`,
        flops: 2 * s.M * s.N * s.K,
        bytes: s.M * s.K * 4 + s.K * s.N * (s.tb === "f16" ? 2 : 4) + s.M * s.N * 4,
        setup: () => ({ run: m.run, dispose: () => {} }),
      }, 400);
      const gpuMs = await gpuTime(m.run, r.wallMs);
      m.dispose();
      console.log(
        `| ${variant} | ${s.label} | ${r.size} | ${r.wallMs.toFixed(3)} | ${gpuMs.toFixed(3)} | ${
          (r.tflops * r.wallMs / gpuMs).toFixed(2)
        } | ${(r.tbps * r.wallMs / gpuMs).toFixed(2)} | ${err} |`,
      );
    } catch (e) {
      console.log(
        `| ${variant} | ${s.label} | ${s.M}x${s.N}x${s.K} | FAIL | | | ${String(e).slice(0, 80)} |`,
      );
    }
  }
}

const big: Shape[] = [
  { label: "f32 A·B", M: n, N: n, K: n },
  { label: "f32 A·Bᵀ", M: n, N: n, K: n, transB: true },
  { label: "f32 Aᵀ·B", M: n, N: n, K: n, transA: true },
  { label: "f16-B A·B", M: n, N: n, K: n, tb: "f16" },
  { label: "f16-B A·Bᵀ", M: n, N: n, K: n, transB: true, tb: "f16" },
];
const awkward = (s: Shape): Shape => ({ ...s, M: 515, N: 771, K: 257 });
// Run 2 (2026-11-29) also timed: single-buffered (18 TFLOP/s), BK32 (NVIDIA compile > 30 s), 64x256,
// 256x64 (30-33), scalar `simple` (7.9); see the report. BK must keep GA, GB in {1, 2, 4}.
// Run 3: 128x128 BK16 PAD1, BK8 PAD1, BK8 PAD0, 256x128 and 128x256 BK16 PAD0 (all 33-38 TFLOP/s).
const tiles: [string, Partial<MatmulTuning>][] = [
  ["default (per-adapter choice)", {}],
  ["main 128x128 BK8 PAD0", { large: null, BK: 8, PAD: 0 }],
  ["main 128x256 BK16 PAD0 (512 thr)", { large: null, TX: 32, TY: 16, BK: 16, PAD: 0 }],
];
for (const [name, t] of tiles) bench(name, t, big, awkward);

const ffn = n === 4096 ? 14336 : 2 * n; // Llama-3-8B / Mistral-7B MLP width at n = 4096
const T = n === 4096 ? 2048 : n / 2;
const gemv: Shape[] = [
  { label: "gemv f16-B decode", M: 1, N: ffn, K: n, transB: true, tb: "f16" },
  { label: "gemv f16-B 4 rows", M: 4, N: ffn, K: n, transB: true, tb: "f16" },
  { label: "gemv f16-B 16 rows", M: 16, N: ffn, K: n, transB: true, tb: "f16" },
];
const gemvCheck = (s: Shape): Shape => ({ ...s, N: 1031, K: 1032 });
// Run 2 also timed LANES 8/128 (worse) and the skinny tiled kernel instead of GEMV (3.4 ms: 30x slower).
// n4: null keeps one-row products on gemv_t_h8 / gemv_t (the one-row default is gemv_n4 now, tuned in
// bench/workbench/decode.ts).
for (const lanes of [32, 16, 64]) {
  bench(`gemv h8 LANES ${lanes}`, { gemvLanes: lanes, n4: null }, gemv, gemvCheck);
}
bench("gemv vec4<f16> LANES 32", { gemvH8M: 0, n4: null }, gemv, gemvCheck);
bench("gemv_n4 (default for one row)", {}, gemv.slice(0, 1), gemvCheck);

const lora: Shape[] = [
  { label: "lora x·Aᵀ", M: T, N: 64, K: n, transB: true },
  { label: "lora h·Bᵀ", M: T, N: n, K: 64, transB: true },
  { label: "lora dA=dCᵀ·x", M: 64, N: n, K: T, transA: true },
  { label: "lora dB=dCᵀ·h", M: n, N: 64, K: T, transA: true },
];
const loraCheck = (s: Shape): Shape => s;
for (const target of [128, 264]) {
  bench(
    `split target ${target}`,
    { splitTarget: target },
    lora,
    target === 128 ? loraCheck : undefined,
  );
}

if (values.list) console.log(variants.length);
else if (values.only !== undefined) await variants[Number(values.only)]();
else for (const v of variants) await v();
gpu.destroy();
