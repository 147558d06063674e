/**
 * Decode workbench (one device call): (a) host µs per recorded dispatch, (b) GEMV variants on the
 * decode shapes with GPU time from timestamp queries, a wall-clock GPU estimate and a float64 check,
 * (c) wall ms per token of decodeStep on random-weight real shapes, 32 steps recorded back to back and
 * one sync, plain op-by-op path vs fused path.
 *
 *   deno run -A bench/workbench/decode.ts            # H200: real shapes
 *   deno run -A bench/workbench/decode.ts --small    # lavapipe: tiny shapes, same code paths
 *   options: --only a|b|c (one part), --steps N
 */
import { parseArgs } from "node:util";
import { createGpu, type DType, Uniforms } from "../../src/gpu/mod.ts";
import { Rng, Tensor, tidy } from "../../src/tensor/mod.ts";
import { lastMatmulPath, matmulInto, type MatmulTuning, setMatmulTuning } from "../../src/ops/matmul.ts";
import {
  addRmsNorm,
  attentionDecode,
  embedding,
  fusedLinear,
  gateUpSwiglu,
  matmul,
  rmsNorm,
  ropeKvWrite,
} from "../../src/ops/mod.ts";
import { randomModel, SHAPES } from "../../src/model/random.ts";
import { decodeAttentionTuning } from "../../src/ops/attention_decode.ts";
import type { DecodeState } from "../../src/model/llama.ts";
import type { ModelConfig } from "../../src/io/config.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    small: { type: "boolean", default: false },
    only: { type: "string" },
    steps: { type: "string", default: "32" },
  },
});
const small = values.small;
const part = (p: string) => !values.only || values.only.includes(p);
const gpu = await createGpu();
const defaults = setMatmulTuning({});
console.log(`adapter: ${gpu.info.description}; subgroups ${gpu.info.subgroups}; f16 ${gpu.info.f16}`);

// ---- (a) host cost per dispatch (as bench/dispatch.ts: bind groups cached, one kernel) ----
if (part("a")) {
  const [a, b, c] = [0, 1, 2].map(() => gpu.pool.acquire(4096));
  const spec = { file: "elementwise", entry: "add", types: { ST: "f32" as const, DT: "f32" as const } };
  const record = (n: number) => {
    for (let i = 0; i < n; i++) gpu.dispatch(spec, { 1: a, 2: b, 3: c }, [1], new Uniforms().u32(256).f32(0));
  };
  record(400);
  await gpu.sync();
  let rec = 0, sub = 0;
  for (let r = 0; r < 20; r++) {
    let t = performance.now();
    record(400);
    rec += performance.now() - t;
    t = performance.now();
    gpu.flush();
    sub += performance.now() - t;
  }
  const t = performance.now();
  await gpu.sync();
  const drain = performance.now() - t;
  console.log(
    `(a) host per dispatch: record ${(rec / 8000 * 1000).toFixed(2)} µs, submit ${
      (sub / 8000 * 1000).toFixed(2)
    } µs (8000 dispatches; final drain ${drain.toFixed(1)} ms)`,
  );
  [a, b, c].forEach((x) => gpu.pool.release(x));
}

// ---- (b) GEMV variants ----
interface Shape {
  M: number;
  N: number;
  K: number;
}
const gemvShapes: Shape[] = small
  ? [{ M: 1, N: 1032, K: 256 }, { M: 1, N: 256, K: 1032 }, { M: 4, N: 1032, K: 256 }]
  : [{ M: 1, N: 14336, K: 4096 }, { M: 1, N: 4096, K: 14336 }, { M: 1, N: 4096, K: 4096 }, {
    M: 4,
    N: 14336,
    K: 4096,
  }];
const wt: DType = gpu.info.f16 ? "f16" : "f32";
// Call 1 (H200) also timed n4 with LANES 8 and 16 (worse everywhere) and WG 256 (≤ WG 128).
const fixed = (WG: number, LANES: number) => ({ n4: { WG, LANES, minGroups: 0 } });
const gemvVariants: [string, Partial<MatmulTuning>][] = [
  ["old h8 LANES32", { n4: null }],
  ["old h8 LANES64", { n4: null, gemvLanes: 64 }],
  ["n4 default (WG by N)", {}],
  ["n4 WG128 L32", fixed(128, 32)],
  ["n4 WG64 L32", fixed(64, 32)],
  ["n4 WG32 L32", fixed(32, 32)],
  ["n4 WG128 L64", fixed(128, 64)],
];

/** GPU ms per run: (timestamp queries around `iters` runs in one pass, wall-clock after recording). */
async function timeRun(run: () => void, iters: number): Promise<{ ts: number; wall: number }> {
  let ts = Infinity, wall = Infinity, idle = Infinity;
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    await gpu.sync();
    idle = Math.min(idle, performance.now() - t);
  }
  for (let rep = 0; rep < 3; rep++) {
    const g = await gpu.timePass(() => {
      for (let i = 0; i < iters; i++) run();
    });
    if (g !== null) ts = Math.min(ts, g / iters);
    for (let i = 0; i < iters; i++) run();
    const t1 = performance.now();
    await gpu.sync();
    wall = Math.min(wall, Math.max(0, performance.now() - t1 - idle) / iters);
  }
  return { ts, wall };
}

if (part("b")) {
  console.log(
    "(b) | variant | shape | path | GPU ms (timestamps) | TB/s | % of 4.2 | wall-est ms | max rel err |",
  );
  for (const s of gemvShapes) {
    const rng = new Rng(3);
    const a = rng.uniformArray(s.M * s.K, -1, 1);
    const b = rng.uniformArray(s.N * s.K, -1, 1);
    if (wt === "f16") { for (let i = 0; i < b.length; i++) b[i] = Math.f16round(b[i]); }
    const ta = Tensor.from(gpu, a, [s.M, s.K], "f32", { persistent: true });
    const tb = Tensor.from(gpu, b, [s.N, s.K], wt, { persistent: true });
    const tc = Tensor.empty(gpu, [s.M, s.N], "f32", { persistent: true });
    const run = () => matmulInto(tc, ta, tb, { transB: true });
    const bytes = s.N * s.K * (wt === "f16" ? 2 : 4) + s.M * (s.K + s.N) * 4;
    // Several rows always take gemv_t (the n4 variants would repeat it): time the old kernel only.
    for (const [name, t] of s.M > 1 ? gemvVariants.slice(0, 2) : gemvVariants) {
      try {
        setMatmulTuning({ ...defaults, ...t });
        run();
        const path = lastMatmulPath();
        const c = await tc.read();
        let worst = 0;
        const r2 = new Rng(5);
        for (let q = 0; q < 64; q++) {
          const i = Math.floor(r2.next() * s.M), j = Math.floor(r2.next() * s.N);
          let acc = 0, mag = 0;
          for (let k = 0; k < s.K; k++) {
            acc += a[i * s.K + k] * b[j * s.K + k];
            mag += Math.abs(a[i * s.K + k] * b[j * s.K + k]);
          }
          const e = Math.abs(c[i * s.N + j] - acc) / mag;
          worst = Number.isNaN(e) ? Infinity : Math.max(worst, e);
        }
        const { ts, wall } = await timeRun(run, small ? 20 : 1000);
        const tbps = bytes / (ts * 1e-3) / 1e12;
        console.log(
          `| ${name} | ${s.M}x${s.N}x${s.K} ${wt} | ${path} | ${ts.toFixed(4)} | ${tbps.toFixed(2)} | ${
            (tbps / 4.2 * 100).toFixed(0)
          }% | ${wall.toFixed(4)} | ${worst.toExponential(1)} |`,
        );
      } catch (e) {
        console.log(`| ${name} | ${s.M}x${s.N}x${s.K} | FAIL ${String(e).slice(0, 100)} |`);
      }
    }
    setMatmulTuning(defaults);
    [ta, tb, tc].forEach((x) => x.dispose());
  }
}

// ---- (c) decode steps ----
async function decodeBench(name: string, config: ModelConfig, steps: number): Promise<void> {
  const model = randomModel(gpu, config, 1);
  const maxT = small ? 64 : 1024;
  const pos = small ? 40 : 512;
  const caches = model.createCaches(1, maxT);
  const p = { persistent: true };
  const state: DecodeState = {
    positions: Tensor.from(gpu, [pos], [1, 1], "i32", p),
    rows: Tensor.from(gpu, [pos], [1], "u32", p),
    lengths: Tensor.from(gpu, [pos + 1], [1], "u32", p),
  };
  const tokens = Tensor.from(gpu, [7], [1, 1], "i32", p);
  type Attn = typeof decodeAttentionTuning.entry;
  const modes: [string, boolean, Partial<MatmulTuning>, Attn][] = [
    ["plain, old gemv, old attention (before)", false, { n4: null }, "partial"],
    ["fused, old attention", true, {}, "partial"],
    ["fused, split128 attention (after)", true, {}, "split128"],
  ];
  const logits: Float32Array[] = [];
  for (const [mode, fused, t, attn] of modes) {
    setMatmulTuning({ ...defaults, ...t });
    decodeAttentionTuning.entry = attn;
    const step = () => tidy(() => model.decodeStep(tokens, state, caches, { fused }).dispose());
    step();
    const ref = tidy(() => model.decodeStep(tokens, state, caches, { fused }));
    logits.push(Float32Array.from(await ref.read()));
    ref.dispose();
    const d0 = gpu.dispatchCount;
    step();
    const perStep = gpu.dispatchCount - d0;
    await gpu.sync();
    let best = Infinity, rec = Infinity;
    for (let rep = 0; rep < 3; rep++) {
      const t0 = performance.now();
      for (let i = 0; i < steps; i++) step();
      rec = Math.min(rec, (performance.now() - t0) / steps);
      await gpu.sync();
      best = Math.min(best, (performance.now() - t0) / steps);
    }
    const k = Math.max(1, Math.floor(3000 / perStep));
    const g = await gpu.timePass(() => {
      for (let i = 0; i < k; i++) step();
    });
    const err = relErr(logits[logits.length - 1], logits[0]);
    console.log(
      `| ${name} | ${mode} | ${perStep} (${((perStep - 3) / config.numLayers).toFixed(1)}/layer) | ${
        best.toFixed(2)
      } ms | ${(1000 / best).toFixed(1)} tok/s | host ${rec.toFixed(2)} ms/step recording | GPU ${
        g === null ? "—" : (g / k).toFixed(3)
      } ms/step | logits rel err vs before ${err.toExponential(1)} |`,
    );
  }
  setMatmulTuning(defaults);
  await opBreakdown(name, model, caches, state, tokens);
  for (const c of caches) c.dispose();
  for (const t of [state.positions, state.rows, state.lengths, tokens]) t.dispose();
  model.dispose();
  gpu.trim();
}

/** GPU µs of each launch of one fused decode layer (layer 0), 200 back to back in one pass. */
async function opBreakdown(
  name: string,
  model: ReturnType<typeof randomModel>,
  caches: ReturnType<ReturnType<typeof randomModel>["createCaches"]>,
  state: DecodeState,
  tokens: Tensor,
): Promise<void> {
  const c = model.config, l = model.layers[0];
  const x = tidy(() => embedding(tokens, model.embed).reshape([1, c.hiddenSize]));
  const h = rmsNorm(x, l.inputNorm, c.rmsNormEps);
  const bias = l.q.bias ? [l.q.bias, l.k.bias!, l.v.bias!] : null;
  const qkvW = [l.q.weight, l.k.weight, l.v.weight];
  const qkv = fusedLinear(h, qkvW, bias);
  const q = ropeKvWrite(qkv, c.numHeads, caches[0], state.positions, state.rows, model.invFreq);
  const o = attentionDecode(q, caches[0], state.lengths).reshape([1, c.numHeads * c.headDim]);
  const a = gateUpSwiglu(h, l.gate.weight, l.up.weight);
  const win = c.slidingWindow ? { window: c.slidingWindow } : {};
  const ops: [string, () => void][] = [
    ["embedding", () => embedding(tokens, model.embed).dispose()],
    ["rmsNorm", () => rmsNorm(x, l.inputNorm, c.rmsNormEps).dispose()],
    [
      "addRmsNorm",
      () => Object.values(addRmsNorm(x, h, l.inputNorm, c.rmsNormEps)).forEach((t) => t.dispose()),
    ],
    ["q|k|v gemv", () => fusedLinear(h, qkvW, bias).dispose()],
    [
      "ropeKvWrite",
      () => ropeKvWrite(qkv, c.numHeads, caches[0], state.positions, state.rows, model.invFreq).dispose(),
    ],
    ["attentionDecode (2)", () => attentionDecode(q, caches[0], state.lengths, win).dispose()],
    ["attentionDecode old partial (2)", () => {
      decodeAttentionTuning.entry = "partial";
      attentionDecode(q, caches[0], state.lengths, win).dispose();
      decodeAttentionTuning.entry = "split128";
    }],
    ["o gemv + residual", () => matmulInto(x, o, l.o.weight, { transB: true, beta: 1 })],
    ["gate|up gemv + swiglu", () => gateUpSwiglu(h, l.gate.weight, l.up.weight).dispose()],
    ["down gemv + residual", () => matmulInto(x, a, l.down.weight, { transB: true, beta: 1 })],
    ["lm head", () => matmul(h, model.lmHead, { transB: true }).dispose()],
  ];
  const row: string[] = [];
  for (const [op, run] of ops) {
    run();
    const g = await gpu.timePass(() => {
      for (let i = 0; i < 200; i++) run();
    });
    row.push(`${op} ${g === null ? "—" : (g / 200 * 1000).toFixed(1)}`);
  }
  console.log(`(d) ${name} GPU µs per launch: ${row.join(" | ")}`);
  for (const t of [x, h, qkv, q, o, a]) t.dispose();
}

function relErr(x: Float32Array, y: Float32Array): number {
  let n = 0, d = 0;
  for (let i = 0; i < x.length; i++) {
    n += (x[i] - y[i]) ** 2;
    d += y[i] ** 2;
  }
  return Math.sqrt(n / d);
}

if (part("c")) {
  console.log(
    "(c) | shape | path | dispatches/step | wall ms/token | tok/s | host recording | GPU ms/step (timestamps) | check |",
  );
  const steps = Number(values.steps);
  const shapes = small ? ["tiny"] : ["qwen2.5-0.5b", "mistral-7b"];
  for (const s of shapes) await decodeBench(s, SHAPES[s], steps);
}
gpu.destroy();
