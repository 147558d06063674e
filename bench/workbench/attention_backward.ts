/**
 * Attention backward tuning workbench (run on the GPU box): random q/k/v/dO at Llama-3-8B / Mistral-7B
 * layer shapes (T 1024, H 32, D 128 causal with Hkv 8 and 32; T 2048 Hkv 8, the training shape), one
 * forward for out + lse, then every backward variant timed with GPU timestamps (`gpu.timePass`): the
 * whole backward, and each of its dispatches on its own (delta, grad_kv, sum_kv, grad_q / grad_q_ds).
 * Every variant is checked against the first, the two-pass kernels of commit 6549409 (frozen in
 * attention_backward_v0.wgsl, launched as that commit did): max |x − ref| / max |ref| over dq, dk, dv.
 * The others: commit 1cf54cb's choices (merged phase B, wide phase A, HPW 1), the split thread roles
 * (auto: HPW = G at T2048) and its neighbours. Split/merged grad_kv need 48 KiB of workgroup memory, so
 * on lavapipe (32 KiB) those variants fall back to the unmerged kernel.
 * `--small` runs small shapes (lavapipe) and also checks every variant against the float64 reference.
 *
 *   deno run -A bench/workbench/attention_backward.ts [--small] [--reps 10]
 *
 * Flops are the FlashAttention convention: 2.5 × the forward's 4·B·H·T·S·D/2 (causal half).
 */
import { parseArgs } from "node:util";
import { createGpu, type Gpu } from "../../src/gpu/mod.ts";
import { Rng, Tensor } from "../../src/tensor/mod.ts";
import { grid1d, noGrad } from "../../src/autograd/mod.ts";
import { attentionForward } from "../../src/ops/attention.ts";
import {
  type AttentionBackwardTuning,
  type BackwardStep,
  planAttentionBackward,
  setAttentionBackwardTuning,
} from "../../src/ops/attention_backward.ts";
import { dimsOf, params } from "../../src/ops/attention_common.ts";
import { attentionBackwardRef } from "../../src/reference/attention.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { small: { type: "boolean", default: false }, reps: { type: "string", default: "10" } },
});
const gpu = await createGpu();
console.error(`adapter: ${gpu.info.description}`);
const reps = Number(values.reps);
const v0Source = await Deno.readTextFile(new URL("./attention_backward_v0.wgsl", import.meta.url));

interface Plan {
  steps: BackwardStep[];
  grads: (Tensor | null)[];
  release: () => void;
}
type Make = (q: Tensor, k: Tensor, v: Tensor, o: Tensor, lse: Tensor, g: Tensor) => Plan;

/** Commit 6549409's launcher: delta, grad_kv (HPW G or 1 + sum_kv), grad_q; single-buffered, pad 1. */
function v0Plan(q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, g: Tensor): Plan {
  const d = dimsOf(q, k, v, {});
  const u = (nx = 0, R = 0) => params(d, {}).f32(1 / Math.sqrt(d.D)).u32(nx).u32(R);
  const G = d.H / d.Hkv;
  const hpw = G === 1 || Math.ceil(d.S / 64) * d.Hkv * d.B >= 512 ? G : 1;
  const smem = Math.max(4 * 16 * 17, 1024 + 16 * 16 * Math.ceil(d.D / 64));
  const overrides = { D: d.D, NBUF: 1, PADA: 1, SMEM: smem, HPW: hpw, HEAVY_FIRST: 1 };
  const spec = (entry: string) => ({ source: v0Source, entry, overrides });
  const delta = Tensor.empty(gpu, [d.B, d.H, d.T], "f32");
  const grid = grid1d(d.B * d.T * d.H, 256);
  const steps: BackwardStep[] = [{
    name: "delta",
    run: () => gpu.dispatch(spec("delta"), { 4: out.buffer, 6: g.buffer, 7: delta.buffer }, grid, u(grid[0])),
  }];
  const common = { 1: q.buffer, 2: k.buffer, 3: v.buffer, 5: lse.buffer, 6: g.buffer, 7: delta.buffer };
  const slots = d.H / hpw;
  const pk = Tensor.empty(gpu, [d.B, d.S, slots, d.D], "f32");
  const pv = Tensor.empty(gpu, [d.B, d.S, slots, d.D], "f32");
  const kvGrid = [slots, Math.ceil(d.S / 64), d.B];
  const temps = [delta];
  steps.push({
    name: "grad_kv",
    run: () => gpu.dispatch(spec("grad_kv"), { ...common, 9: pk.buffer, 10: pv.buffer }, kvGrid, u()),
  });
  let [dk, dv] = [pk, pv];
  if (hpw !== G) {
    temps.push(pk, pv);
    dk = Tensor.empty(gpu, k.shape, "f32");
    dv = Tensor.empty(gpu, v.shape, "f32");
    const sumGrid = grid1d(d.B * d.S * d.Hkv * d.D / 4, 256);
    const bufs = { 9: pk.buffer, 10: pv.buffer, 11: dk.buffer, 12: dv.buffer };
    steps.push({
      name: "sum_kv",
      run: () => gpu.dispatch(spec("sum_kv"), bufs, sumGrid, u(sumGrid[0], G / hpw)),
    });
  }
  const dq = Tensor.empty(gpu, q.shape, "f32");
  const qGrid = [d.H, Math.ceil(d.T / 64), d.B];
  steps.push({
    name: "grad_q",
    run: () => gpu.dispatch(spec("grad_q"), { ...common, 8: dq.buffer }, qGrid, u()),
  });
  return { steps, grads: [dq, dk, dv], release: () => temps.forEach((t) => t.dispose()) };
}

function newPlan(t: Partial<AttentionBackwardTuning>): Make {
  return (q, k, v, out, lse, g) => {
    const old = setAttentionBackwardTuning(t);
    try {
      return planAttentionBackward(q, k, v, out, lse, g, {});
    } finally {
      setAttentionBackwardTuning(old);
    }
  };
}

interface Shape {
  B: number;
  T: number;
  H: number;
  Hkv: number;
  D: number;
}

const variants: [string, (s: Shape) => Make][] = [
  ["v0 (6549409, two-pass)", () => v0Plan],
  ["1cf54cb (merged B + wide A, hpw 1)", () => newPlan({ split: false, hpw: 1 })],
  ["split roles (auto)", () => newPlan({})],
  ["split roles, AD 16", () => newPlan({ wideA: false })],
  ["split roles, pada 0", () => newPlan({ pada: 0 })],
  ["split roles, hpw 1", () => newPlan({ hpw: 1 })],
  ["1cf54cb (again)", () => newPlan({ split: false, hpw: 1 })],
  ["split roles (auto, again)", () => newPlan({})],
];
const shapes: Shape[] = values.small
  ? [{ B: 1, T: 130, H: 4, Hkv: 1, D: 128 }, { B: 2, T: 70, H: 4, Hkv: 2, D: 64 }]
  : [
    { B: 1, T: 2048, H: 32, Hkv: 8, D: 128 },
    { B: 1, T: 1024, H: 32, Hkv: 8, D: 128 },
    { B: 1, T: 1024, H: 32, Hkv: 32, D: 128 },
  ];

function random(shape: number[], rng: Rng): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.from(gpu, rng.uniformArray(n, -1, 1), shape, "f32", { persistent: true });
}

function maxRel(got: ArrayLike<number>[], want: ArrayLike<number>[]): number {
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    let scale = 0, err = 0;
    for (let j = 0; j < want[i].length; j++) {
      scale = Math.max(scale, Math.abs(want[i][j]));
      const e = Math.abs(got[i][j] - want[i][j]);
      err = Number.isNaN(e) ? Infinity : Math.max(err, e);
    }
    worst = Math.max(worst, err / scale);
  }
  return worst;
}

/** Best of 5 passes of `reps` calls, GPU ms per call (after one warm-up call). */
async function time(g: Gpu, fn: () => void): Promise<number> {
  fn();
  await g.sync();
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    const ms = await g.timePass(() => {
      for (let i = 0; i < reps; i++) fn();
    });
    if (ms === null) return NaN;
    best = Math.min(best, ms / reps);
  }
  return best;
}

console.log("| variant | shape | backward ms | TFLOP/s | per dispatch ms | max rel diff |");
console.log("|---|---|---:|---:|---|---:|");
for (const s of shapes) {
  const rng = new Rng(7);
  const q = random([s.B, s.T, s.H, s.D], rng);
  const k = random([s.B, s.T, s.Hkv, s.D], rng);
  const v = random([s.B, s.T, s.Hkv, s.D], rng);
  const g = random([s.B, s.T, s.H, s.D], rng);
  const { out, lse } = noGrad(() => attentionForward(q, k, v));
  const flops = 2.5 * 4 * s.B * s.H * s.T * s.T * s.D / 2;
  const label = `B${s.B} T${s.T} H${s.H}/${s.Hkv} D${s.D}`;
  let ref: ArrayLike<number>[] | null = null;
  let cpu: Float64Array[] | null = null;
  if (values.small) {
    const [qa, ka, va, ga] = await Promise.all([q.read(), k.read(), v.read(), g.read()]);
    const r = attentionBackwardRef(qa, ka, va, ga, { ...s, S: s.T }, {});
    cpu = [Float64Array.from(r.dq), Float64Array.from(r.dk), Float64Array.from(r.dv)];
  }
  for (const [name, make] of variants) {
    try {
      const plan = noGrad(() => make(s)(q, k, v, out, lse, g));
      const runAll = () => plan.steps.forEach((st) => st.run());
      runAll();
      const got = [];
      for (const t of plan.grads) got.push(await t!.read());
      ref ??= got;
      let diff = maxRel(got, ref).toExponential(1);
      if (cpu) diff += ` (vs f64 ${maxRel(got, cpu).toExponential(1)})`;
      const ms = await time(gpu, runAll);
      const parts = [];
      for (const st of plan.steps) parts.push(`${st.name} ${(await time(gpu, st.run)).toFixed(3)}`);
      plan.release();
      plan.grads.forEach((t) => t?.dispose());
      const tf = (flops / ms / 1e9).toFixed(2);
      console.log(`| ${name} | ${label} | ${ms.toFixed(3)} | ${tf} | ${parts.join(", ")} | ${diff} |`);
    } catch (e) {
      console.log(`| ${name} | ${label} | FAIL | | | ${String(e).slice(0, 160)} |`);
    }
  }
  for (const t of [q, k, v, g, out, lse]) t.dispose();
}
gpu.destroy();
