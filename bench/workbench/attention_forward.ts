/**
 * Attention forward tuning workbench (run on the GPU box): times kernel variants of
 * kernels/attention_forward.wgsl against the previous kernel (bench/workbench/attention_forward_v0.wgsl)
 * at the Llama/Mistral layer shape T 1024, H 32, D 128 (causal Hkv 8 and 32, non-causal Hkv 8), and
 * checks every variant's output and log-sum-exp against the previous kernel's on the timed shapes and
 * on awkward ones (T not a multiple of the tile, T ≠ S, windows, small D), so a fast-but-wrong variant
 * shows. Prints one markdown table row per (variant, shape).
 *
 *   deno run -A bench/workbench/attention_forward.ts            # H200 shapes
 *   deno run -A bench/workbench/attention_forward.ts --small    # tiny shapes (lavapipe)
 *
 * Flops: 4·B·H·T·S·D, halved for a causal T = S mask (the convention of bench/kernels/attention.ts).
 */
import { parseArgs } from "node:util";
import { createGpu, type Gpu, type KernelSpec } from "../../src/gpu/mod.ts";
import { Rng, Tensor } from "../../src/tensor/mod.ts";
import { type AttentionOptions, type Dims, params } from "../../src/ops/attention_common.ts";
import { attentionForward } from "../../src/ops/attention.ts";
import { KERNEL_SOURCES } from "../../src/gpu/kernel_sources.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { small: { type: "boolean", default: false }, iters: { type: "string", default: "20" } },
});
const small = values.small;
const iters = small ? 2 : Number(values.iters);

interface Variant {
  name: string;
  spec: (D: number) => KernelSpec;
}

const v0Source = await Deno.readTextFile(new URL("./attention_forward_v0.wgsl", import.meta.url));
const current = `${KERNEL_SOURCES["attention_forward"]}\n${KERNEL_SOURCES["attention_forward_tiles"]}`;

const baseline: Variant = {
  name: "v0 previous kernel",
  spec: (D) => ({ source: v0Source, overrides: { D } }),
};
const variants: Variant[] = [];
// CW: head-dim chunk width in vec4 (8 needs 48 KiB of workgroup memory); PAIR: causal balance.
// Run 1 (H200): the first version of this kernel (CW 4, dot() scores) 0.650 ms causal Hkv 8.
// Run 2: CW 4 0.626, CW 8 0.582 (no PAIR); PAIR halves the causal imbalance (see the report).
for (const CW of small ? [4] : [4, 8]) {
  for (const PAIR of [0, 1]) {
    variants.push({
      name: `v2 CW${CW}${PAIR ? " PAIR" : ""}`,
      spec: (D) => ({ source: current, overrides: { D, CW, PAIR } }),
    });
  }
}
// The op's own launch (src/ops/attention.ts picks CW and PAIR); `spec` is unused for it.
const opVariant: Variant = { name: "op attentionForward", spec: (D) => ({ overrides: { D } }) };
variants.push(opVariant);

interface Shape {
  label: string;
  d: Dims;
  opts: AttentionOptions;
  timed: boolean;
}

const big: Shape[] = small
  ? [
    { label: "causal Hkv1", d: { B: 1, T: 128, S: 128, H: 4, Hkv: 1, D: 128 }, opts: {}, timed: true },
    { label: "causal Hkv4", d: { B: 1, T: 128, S: 128, H: 4, Hkv: 4, D: 128 }, opts: {}, timed: true },
  ]
  : [
    { label: "causal Hkv8", d: { B: 1, T: 1024, S: 1024, H: 32, Hkv: 8, D: 128 }, opts: {}, timed: true },
    { label: "causal Hkv32", d: { B: 1, T: 1024, S: 1024, H: 32, Hkv: 32, D: 128 }, opts: {}, timed: true },
    {
      label: "full Hkv8",
      d: { B: 1, T: 1024, S: 1024, H: 32, Hkv: 8, D: 128 },
      opts: { causal: false },
      timed: true,
    },
  ];
const awkward: Shape[] = [
  {
    label: "chk T70 w20 D24",
    d: { B: 2, T: 70, S: 70, H: 4, Hkv: 2, D: 24 },
    opts: { window: 20 },
    timed: false,
  },
  { label: "chk T33 S100 D128", d: { B: 1, T: 33, S: 100, H: 4, Hkv: 1, D: 128 }, opts: {}, timed: false },
  {
    label: "chk T131 S7 full D64",
    d: { B: 1, T: 131, S: 7, H: 2, Hkv: 1, D: 64 },
    opts: { causal: false, scale: 0.7 },
    timed: false,
  },
  {
    label: "chk T1 S200 w9 D8",
    d: { B: 1, T: 1, S: 200, H: 2, Hkv: 2, D: 8 },
    opts: { window: 9 },
    timed: false,
  },
  {
    label: "chk T200 S260 w70 D128",
    d: { B: 1, T: 200, S: 260, H: 2, Hkv: 1, D: 128 },
    opts: { window: 70 },
    timed: false,
  },
];

function flopsOf(s: Shape): number {
  const { B, T, S, H, D } = s.d;
  const full = 4 * B * H * T * S * D;
  return (s.opts.causal ?? true) && T === S ? full / 2 : full;
}

function setup(gpu: Gpu, s: Shape) {
  const { B, T, S, H, Hkv, D } = s.d;
  const rng = new Rng(7);
  const mk = (shape: number[]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return Tensor.from(gpu, rng.uniformArray(n, -1, 1), shape, "f32", { persistent: true });
  };
  const q = mk([B, T, H, D]), k = mk([B, S, Hkv, D]), v = mk([B, S, Hkv, D]);
  const out = Tensor.empty(gpu, [B, T, H, D], "f32", { persistent: true });
  const lse = Tensor.empty(gpu, [B, H, T], "f32", { persistent: true });
  const u = params(s.d, s.opts);
  const nQ = Math.ceil(T / 64);
  // keep: copy the op's outputs into out/lse (a copy ends the compute pass, so not while timing).
  const run = (vr: Variant, keep = false) => {
    if (vr === opVariant) {
      const r = attentionForward(q, k, v, s.opts);
      if (keep) {
        gpu.copy(r.out.buffer, 0, out.buffer, 0, out.size * 4);
        gpu.copy(r.lse.buffer, 0, lse.buffer, 0, lse.size * 4);
      }
      r.out.dispose();
      r.lse.dispose();
      return;
    }
    const spec = vr.spec(D);
    const gx = spec.overrides?.PAIR ? Math.ceil(nQ / 2) : nQ;
    gpu.dispatch(spec, [q.buffer, k.buffer, v.buffer, out.buffer, lse.buffer], [gx, H, B], u);
  };
  const result = async (vr: Variant) => {
    // Poison first so rows a variant forgets to write show as NaN.
    out.write(new Float32Array(out.size).fill(NaN));
    lse.write(new Float32Array(lse.size).fill(NaN));
    run(vr, true);
    return { out: await out.read(), lse: await lse.read() };
  };
  return { run, result, dispose: () => [q, k, v, out, lse].forEach((t) => t.dispose()) };
}

/** Max |a − b| over max |b| (NaN anywhere → Infinity). */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]);
    if (Number.isNaN(e)) return Infinity;
    num = Math.max(num, e);
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / (den || 1);
}

/** Best and worst per-run GPU ms over 5 passes of `iters` runs (worst shows a disturbed measurement). */
async function timeMs(gpu: Gpu, run: () => void): Promise<[number, number]> {
  let best = Infinity, worst = 0;
  for (let rep = 0; rep < 5; rep++) {
    const t0 = performance.now();
    const ms = await gpu.timePass(() => {
      for (let i = 0; i < iters; i++) run();
    });
    const wall = performance.now() - t0;
    best = Math.min(best, (ms ?? wall) / iters);
    worst = Math.max(worst, (ms ?? wall) / iters);
  }
  return [best, worst];
}

const gpu = await createGpu();
console.error(`adapter: ${gpu.info.description}`);
console.log("| variant | shape | GPU ms best (worst) | TFLOP/s | max rel diff out | max abs diff lse |");
console.log("|---|---|---:|---:|---:|---:|");
for (const s of [...big, ...awkward]) {
  const c = setup(gpu, s);
  const want = await c.result(baseline);
  if (s.timed) {
    const [ms, worst] = await timeMs(gpu, () => c.run(baseline));
    console.log(
      `| ${baseline.name} | ${s.label} | ${ms.toFixed(3)} (${worst.toFixed(3)}) | ${
        (flopsOf(s) / ms / 1e9).toFixed(2)
      } | | |`,
    );
  }
  for (const vr of variants) {
    try {
      const got = await c.result(vr);
      const dOut = relDiff(got.out, want.out).toExponential(1);
      const dLse = relDiff(got.lse, want.lse) * Math.max(...Array.from(want.lse, Math.abs));
      let time = "| |";
      if (s.timed) {
        const [ms, worst] = await timeMs(gpu, () => c.run(vr));
        time = `| ${ms.toFixed(3)} (${worst.toFixed(3)}) | ${(flopsOf(s) / ms / 1e9).toFixed(2)} |`;
      }
      console.log(`| ${vr.name} | ${s.label} ${time} ${dOut} | ${dLse.toExponential(1)} |`);
    } catch (e) {
      console.log(`| ${vr.name} | ${s.label} | FAIL | | ${String(e).slice(0, 100)} | |`);
    }
  }
  c.dispose();
}
gpu.destroy();
