/**
 * Decode workbench (one device call): (a) host µs per recorded dispatch, (b) GEMV variants on the
 * decode shapes with GPU time from timestamp queries, a wall-clock GPU estimate and a float64 check,
 * (c) wall ms per step of decodeStep on random-weight real shapes (Qwen2.5-0.5B batch 1, Mistral-7B
 * batch 1, 4, 16), steps recorded back to back and one sync: flash + merge with gemv_t for several
 * rows, flash + merge with gemv_rows and the norms folded into the GEMVs, and the one-launch flash1;
 * (d) GPU µs of each launch of one layer, with the attention variants.
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
  attentionDecode,
  embedding,
  fusedLinear,
  gateUpSwiglu,
  matmul,
  rmsNorm,
  ropeKvWrite,
} from "../../src/ops/mod.ts";
import { randomModel, SHAPES } from "../../src/model/random.ts";
import { decodeAttentionTuning, KvCache } from "../../src/ops/attention_decode.ts";
import type { DecodeState } from "../../src/model/llama_decode.ts";
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
  ? [{ M: 1, N: 1032, K: 256 }, { M: 4, N: 1032, K: 256 }, { M: 16, N: 256, K: 1032 }]
  : [14336, 4096].flatMap((N) => [1, 4, 16].map((M) => ({ M, N, K: N === 4096 ? 14336 : 4096 })))
    .concat([{ M: 16, N: 4096, K: 4096 }]);
const wt: DType = gpu.info.f16 ? "f16" : "f32";
// Single-row variants (call 1 of the previous round: n4 LANES 8/16 and WG 256 lost everywhere).
const oneRow: [string, Partial<MatmulTuning>][] = [["n4 default", {}]];
// Several rows: the old kernel (rows path off: gemv_t, one weight read per 4 rows) and gemv_rows plans.
const rowsOf = (R: number, WG: number, LANES: number, minGroups = 256, unroll2 = true) => ({
  rows: { maxM: 16, minM: 2, R, WG, LANES, minGroups, unroll2 },
});
// H200 call 1, 16×14336×4096: gemv_t 0.182 ms, rows R8 L16 (one trip per iteration) 0.231, R4 L16 0.158;
// call 2 (two trips): R8 L32 0.142 / 0.116 / 0.039 (16×4096×14336, 16×4096×4096), R8 L16 0.138 / 0.196 /
// 0.044, R2 L32 0.159 / 0.168 / 0.059; at 4 rows gemv_t won (0.055 vs 0.059–0.079).
const manyRows: [string, Partial<MatmulTuning>][] = [
  ["old gemv_t", { rows: { ...defaults.rows, maxM: 1 } }],
  ["default", {}],
  ["rows R4 WG128 L16 mg512", rowsOf(4, 128, 16, 512)],
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
    "(b) | variant | shape | path | GPU ms (timestamps) | TB/s | % of 4.2 | FLOP rate | wall-est ms | max rel err |",
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
    for (const [name, t] of s.M > 1 ? manyRows : oneRow) {
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
        const { ts, wall } = await timeRun(run, small ? 20 : s.M > 4 ? 200 : 500);
        const tbps = bytes / (ts * 1e-3) / 1e12;
        console.log(
          `| ${name} | ${s.M}x${s.N}x${s.K} ${wt} | ${path} | ${ts.toFixed(4)} | ${tbps.toFixed(2)} | ${
            (tbps / 4.2 * 100).toFixed(0)
          }% | ${(2 * s.M * s.N * s.K / (ts * 1e-3) / 1e12).toFixed(1)} TFLOP/s | ${wall.toFixed(4)} | ${
            worst.toExponential(1)
          } |`,
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
type Attn = typeof decodeAttentionTuning.entry;
interface Mode {
  name: string;
  fused: boolean;
  matmul: Partial<MatmulTuning>;
  attn: Attn;
}

async function decodeBench(name: string, config: ModelConfig, B: number, steps: number): Promise<void> {
  const model = randomModel(gpu, config, 1);
  const maxT = small ? 64 : 1024;
  const pos = Array.from({ length: B }, (_, b) => (small ? 40 : 512) + 37 * b % (small ? 20 : 500));
  const caches = model.createCaches(B, maxT);
  const p = { persistent: true };
  const state: DecodeState = {
    positions: Tensor.from(gpu, pos, [B, 1], "i32", p),
    rows: Tensor.from(gpu, pos, [B], "u32", p),
    lengths: Tensor.from(gpu, pos.map((x) => x + 1), [B], "u32", p),
  };
  const tokens = Tensor.from(gpu, pos.map((x) => x % 1000 + 7), [B, 1], "i32", p);
  const oldRows = { rows: { ...defaults.rows, maxM: 1 } };
  // The first mode is the logits check's reference: gemv_t (4 rows per weight read), op by op when B > 1.
  const modes: Mode[] = [
    { name: "flash, old gemv", fused: B === 1, matmul: oldRows, attn: "flash" },
    { name: "flash + merge, gemv_rows, norms folded", fused: true, matmul: {}, attn: "flash" },
    { name: "flash1 one launch, norms folded", fused: true, matmul: {}, attn: "flash1" },
  ];
  const logits: Float32Array[] = [];
  for (const m of modes) {
    setMatmulTuning({ ...defaults, ...m.matmul });
    decodeAttentionTuning.entry = m.attn;
    const step = () => tidy(() => model.decodeStep(tokens, state, caches, { fused: m.fused }).dispose());
    step();
    const ref = tidy(() => model.decodeStep(tokens, state, caches, { fused: m.fused }));
    logits.push(Float32Array.from(await ref.read()));
    ref.dispose();
    const d0 = gpu.dispatchCount;
    step();
    const perStep = gpu.dispatchCount - d0;
    await gpu.sync();
    let best = Infinity, rec = Infinity;
    for (let rep = 0; rep < 2; rep++) {
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
      `| ${name} B${B} | ${m.name} | ${perStep} (${((perStep - 3) / config.numLayers).toFixed(1)}/layer) | ${
        best.toFixed(2)
      } ms | ${(1000 * B / best).toFixed(1)} tok/s | host ${rec.toFixed(2)} ms | GPU ${
        g === null ? "—" : (g / k).toFixed(3)
      } ms/step | rel err vs first ${err.toExponential(1)} |`,
    );
  }
  setMatmulTuning(defaults);
  decodeAttentionTuning.entry = "flash1";
  await opBreakdown(`${name} B${B}`, model, caches, state, tokens);
  for (const c of caches) c.dispose();
  for (const t of [state.positions, state.rows, state.lengths, tokens]) t.dispose();
  model.dispose();
  gpu.trim();
}

/** GPU µs of each launch of one fused decode layer (layer 0), 100 back to back in one pass. */
async function opBreakdown(
  name: string,
  model: ReturnType<typeof randomModel>,
  caches: ReturnType<ReturnType<typeof randomModel>["createCaches"]>,
  state: DecodeState,
  tokens: Tensor,
): Promise<void> {
  const c = model.config, l = model.layers[0];
  const B = tokens.shape[0];
  const x = tidy(() => embedding(tokens, model.embed).reshape([B, c.hiddenSize]));
  const h = rmsNorm(x, l.inputNorm, c.rmsNormEps);
  const bias = l.q.bias ? [l.q.bias, l.k.bias!, l.v.bias!] : null;
  const qkvW = [l.q.weight, l.k.weight, l.v.weight];
  const qkv = fusedLinear(h, qkvW, bias);
  const q = ropeKvWrite(qkv, c.numHeads, caches[0], state.positions, state.rows, model.invFreq);
  const o = attentionDecode(q, caches[0], state.lengths).reshape([B, c.numHeads * c.headDim]);
  const a = gateUpSwiglu(h, l.gate.weight, l.up.weight);
  const win = c.slidingWindow ? { window: c.slidingWindow } : {};
  const f32cache = new KvCache(gpu, B, c.numKvHeads, caches[0].maxT, c.headDim, "f32"); // zeros
  const attn = (t: Partial<typeof decodeAttentionTuning>) => () => {
    const saved = { ...decodeAttentionTuning };
    Object.assign(decodeAttentionTuning, t);
    attentionDecode(q, caches[0], state.lengths, win).dispose();
    Object.assign(decodeAttentionTuning, saved);
  };
  const ops: [string, () => void][] = [
    ["rmsNorm", () => rmsNorm(x, l.inputNorm, c.rmsNormEps).dispose()],
    ["q|k|v", () => fusedLinear(h, qkvW, bias).dispose()],
    ["norm+q|k|v", () => fusedLinear(x, qkvW, bias, { weight: l.inputNorm, eps: c.rmsNormEps }).dispose()],
    [
      "ropeKvWrite",
      () => ropeKvWrite(qkv, c.numHeads, caches[0], state.positions, state.rows, model.invFreq).dispose(),
    ],
    ["attn flash1 default (1)", attn({})],
    ["flash1 minKeys 64", attn({ minKeys: 64 })],
    ["flash1 minKeys 128", attn({ minKeys: 128 })],
    ["attn flash+merge (2)", attn({ entry: "flash" })],
    ["flash target 256", attn({ entry: "flash", targetGroups: 256 })],
    ["flash diag no-compute", attn({ entry: "flash", diagMode: 1 })],
    ["flash diag no-loads", attn({ entry: "flash", diagMode: 2 })],
    ["flash f32 cache", () => attentionDecode(q, f32cache, state.lengths, win).dispose()],
    ["o + res", () => matmulInto(x, o, l.o.weight, { transB: true, beta: 1 })],
    ["gate|up+SwiGLU", () => gateUpSwiglu(h, l.gate.weight, l.up.weight).dispose()],
    [
      "norm+gate|up+SwiGLU",
      () =>
        gateUpSwiglu(x, l.gate.weight, l.up.weight, null, { weight: l.postNorm, eps: c.rmsNormEps })
          .dispose(),
    ],
    ["down + res", () => matmulInto(x, a, l.down.weight, { transB: true, beta: 1 })],
    ["LM head", () => matmul(h, model.lmHead, { transB: true }).dispose()],
  ];
  const row: string[] = [];
  for (const [op, run] of ops) {
    run();
    const g = await gpu.timePass(() => {
      for (let i = 0; i < 100; i++) run();
    });
    row.push(`${op} ${g === null ? "—" : (g / 100 * 1000).toFixed(1)}`);
  }
  console.log(`(d) ${name} GPU µs per launch: ${row.join(" | ")}`);
  for (const t of [x, h, qkv, q, o, a]) t.dispose();
  f32cache.dispose();
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
    "(c) | shape | path | dispatches/step | wall ms/step | tok/s | host recording | GPU ms/step | check |",
  );
  const steps = Number(values.steps);
  const runs: [string, number][] = small
    ? [["tiny", 1], ["tiny", 4]]
    : [["qwen2.5-0.5b", 1], ["mistral-7b", 1], ["mistral-7b", 4], ["mistral-7b", 16]];
  for (const [s, B] of runs) await decodeBench(s, SHAPES[s], B, steps);
}
gpu.destroy();
