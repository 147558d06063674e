/**
 * Attention backward tuning workbench (run on the GPU box): random q/k/v/dO at Llama-3-8B / Mistral-7B
 * layer shapes (T 1024, H 32, D 128 causal with Hkv 8 and 32; T 2048 Hkv 8, the training shape), one
 * forward for out + lse, then every backward variant timed with GPU timestamps (`gpu.timePass`) —
 * whole backward, and the dq part (delta + grad_q) and the dk/dv part (delta + grad_kv [+ sum_kv])
 * on their own — and checked against the first variant (max |x − ref| / max |ref| over dq, dk, dv).
 * With `--old FILE` (a previous kernels/attention_backward.wgsl, launched as that file was: grad_kv
 * one workgroup per kv head, grad_q) the old kernel is the first variant and the reference.
 * `--small` runs small shapes (lavapipe) and also checks every variant against the float64 reference.
 *
 *   deno run -A bench/workbench/attention_backward.ts [--small] [--old /tmp/old.wgsl] [--reps 10]
 *
 * Flops are the FlashAttention convention: 2.5 × the forward's 4·B·H·T·S·D/2 (causal half).
 */
import { parseArgs } from "node:util";
import { createGpu, type Gpu } from "../../src/gpu/mod.ts";
import { Rng, Tensor } from "../../src/tensor/mod.ts";
import { grid1d, noGrad } from "../../src/autograd/mod.ts";
import { attentionForward } from "../../src/ops/attention.ts";
import {
  attentionBackward,
  type AttentionBackwardTuning,
  setAttentionBackwardTuning,
} from "../../src/ops/attention_backward.ts";
import { dimsOf, params } from "../../src/ops/attention_common.ts";
import { attentionBackwardRef } from "../../src/reference/attention.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    small: { type: "boolean", default: false },
    old: { type: "string" },
    reps: { type: "string", default: "10" },
  },
});
const gpu = await createGpu();
console.error(`adapter: ${gpu.info.description}`);
const reps = Number(values.reps);
const oldSource = values.old ? await Deno.readTextFile(values.old) : null;

type Run = (
  q: Tensor,
  k: Tensor,
  v: Tensor,
  o: Tensor,
  lse: Tensor,
  g: Tensor,
  needs: boolean[],
) => (Tensor | null)[];

/** The pre-rewrite launcher: delta, grad_kv over [S/64, Hkv, B], grad_q. */
function oldRun(source: string): Run {
  return (q, k, v, out, lse, g, needs) => {
    const d = dimsOf(q, k, v, {});
    const u = (nx: number) => params(d, {}).f32(1 / Math.sqrt(d.D)).u32(nx);
    const spec = (entry: string) => ({ source, entry, overrides: { D: d.D } });
    const delta = Tensor.empty(gpu, [d.B, d.H, d.T], "f32");
    const grid = grid1d(d.B * d.T * d.H, 256);
    gpu.dispatch(spec("delta"), { 4: out.buffer, 6: g.buffer, 7: delta.buffer }, grid, u(grid[0]));
    const common = { 1: q.buffer, 2: k.buffer, 3: v.buffer, 5: lse.buffer, 6: g.buffer, 7: delta.buffer };
    let dq = null, dk = null, dv = null;
    if (needs[1] || needs[2]) {
      dk = Tensor.empty(gpu, k.shape, "f32");
      dv = Tensor.empty(gpu, v.shape, "f32");
      gpu.dispatch(spec("grad_kv"), { ...common, 9: dk.buffer, 10: dv.buffer }, [
        Math.ceil(d.S / 64),
        d.Hkv,
        d.B,
      ], u(0));
    }
    if (needs[0]) {
      dq = Tensor.empty(gpu, q.shape, "f32");
      gpu.dispatch(spec("grad_q"), { ...common, 8: dq.buffer }, [Math.ceil(d.T / 64), d.H, d.B], u(0));
    }
    delta.dispose();
    return [dq, dk, dv];
  };
}

function newRun(t: Partial<AttentionBackwardTuning>): Run {
  return (q, k, v, out, lse, g, needs) => {
    const old = setAttentionBackwardTuning(t);
    try {
      return attentionBackward(q, k, v, out, lse, g, {}, needs);
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

/** Variants: a name and the launcher for a shape. */
const variants: [string, (s: Shape) => Run][] = [];
if (oldSource) variants.push(["old kernel", () => oldRun(oldSource)]);
variants.push(["new auto", () => newRun({})]);
variants.push(["new hpw 1 (split heads + sum)", () => newRun({ hpw: 1 })]);
variants.push(["new hpw G (one wg per kv head)", (s) => newRun({ hpw: s.H / s.Hkv })]);
variants.push(["new grids tile-index in x", () => newRun({ heavyFirst: false })]);
variants.push(["new nbuf 2", () => newRun({ nbuf: 2 })]);
variants.push(["new pada 0", () => newRun({ pada: 0 })]);
const shapes: Shape[] = values.small
  ? [{ B: 1, T: 130, H: 4, Hkv: 1, D: 128 }, { B: 2, T: 70, H: 4, Hkv: 2, D: 64 }]
  : [
    { B: 1, T: 1024, H: 32, Hkv: 8, D: 128 },
    { B: 1, T: 1024, H: 32, Hkv: 32, D: 128 },
    { B: 1, T: 2048, H: 32, Hkv: 8, D: 128 },
  ];

function random(shape: number[], rng: Rng): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.from(gpu, rng.uniformArray(n, -1, 1), shape, "f32", { persistent: true });
}

async function readAll(ts: (Tensor | null)[]): Promise<ArrayLike<number>[]> {
  const out = [];
  for (const t of ts) {
    out.push(await t!.read());
    t!.dispose();
  }
  return out;
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

async function time(g: Gpu, fn: () => void): Promise<number> {
  fn(); // compile + warm
  await g.sync();
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    const ms = await g.timePass(() => {
      for (let i = 0; i < reps; i++) fn();
    });
    if (ms === null) return NaN;
    best = Math.min(best, ms / reps);
  }
  return best;
}

console.log("| variant | shape | backward ms | TFLOP/s | dq part ms | dk/dv part ms | max rel diff |");
console.log("|---|---|---:|---:|---:|---:|---:|");
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
    const run = make(s);
    try {
      const all = [true, true, true];
      const go = (needs: boolean[]) => () =>
        noGrad(() => run(q, k, v, out, lse, g, needs).forEach((t) => t?.dispose()));
      const got = await readAll(noGrad(() => run(q, k, v, out, lse, g, all)));
      ref ??= got;
      let diff = maxRel(got, ref).toExponential(1);
      if (cpu) diff += ` (vs f64 ${maxRel(got, cpu).toExponential(1)})`;
      const ms = await time(gpu, go(all));
      const msQ = await time(gpu, go([true, false, false]));
      const msKV = await time(gpu, go([false, true, true]));
      console.log(
        `| ${name} | ${label} | ${ms.toFixed(3)} | ${(flops / ms / 1e9).toFixed(2)} | ${msQ.toFixed(3)} | ${
          msKV.toFixed(3)
        } | ${diff} |`,
      );
    } catch (e) {
      console.log(`| ${name} | ${label} | FAIL | | | | ${String(e).slice(0, 120)} |`);
    }
  }
  for (const t of [q, k, v, g, out, lse]) t.dispose();
}
gpu.destroy();
