/**
 * LoRA training-step benchmark (issue #4's bar): a random-weight model of a public architecture
 * (`--shape`, built on the GPU), trainable LoRA adapters attached as the trainer does
 * (src/train/lora_setup.ts), AdamW (src/train/optimizer.ts) and one seeded batch of random token ids
 * (labels = ids, every token trained). Each step is `optimizerStep` (src/train/step.ts) — forward,
 * backward, clipping, update — ended by one 4-byte readback of its loss, so a step's time is the real
 * GPU + host time a training loop that synchronised every step would see (the readback costs ≥ 10 ms in
 * Deno; the trainer itself reads back only every logging_steps). Called by `deno task bench train`
 * (bench/main.ts).
 *
 * FLOPs per step are counted, not measured (trainStepFlops, bench/train_flops.ts): matmuls and attention only.
 * Peak memory is the buffer pool's high-water mark of bytes handed out (weights included), the figure
 * comparable to torch.cuda.max_memory_allocated; `pool_bytes` adds what the pool keeps for reuse
 * (comparable to max_memory_reserved).
 */
import type { Gpu, KernelTime } from "../src/gpu/mod.ts";
import { measuredCeiling } from "../src/gpu/ceilings.ts";
import { profileTable } from "./harness.ts";
import { Rng, Tensor } from "../src/tensor/mod.ts";
import type { ModelConfig } from "../src/io/config.ts";
import { randomModel, SHAPES } from "../src/model/random.ts";
import { expectedShapes } from "../src/model/weights.ts";
import { trainStepFlops } from "./train_flops.ts";
import { attachLora } from "../src/train/lora_setup.ts";
import { AdamW } from "../src/train/optimizer.ts";
import { type MicroBatch, optimizerStep } from "../src/train/step.ts";

/** Options of runTrainBench (flags of `deno task bench train`). */
export interface TrainBenchOptions {
  shape: string;
  /** Dimensions to use instead of SHAPES[shape] (scaled models for memory slopes); shape is the label. */
  config?: ModelConfig;
  seqLen: number;
  batchSize: number;
  rank: number;
  alpha: number;
  /** Module names the adapters attach to (q_proj, …) or "all". */
  targets: string[] | "all";
  /** Timed steps. */
  steps: number;
  /** Untimed steps first (pipeline compilation happens in the first). */
  warmup: number;
  /**
   * Gradient checkpointing: true (every layer), false, or how many layers to recompute (the first
   * ones, see LlamaModel.forward); default on for seqLen ≥ 1024 (as LLaMA-Factory's default configs).
   */
  checkpoint?: boolean | number;
  /** Storage of the frozen base matrices; default f16 where the GPU has shader-f16. */
  dtype?: "f16" | "f32";
  /** AdamW learning rate (default 1e-4, as bench/peers/peft_step.py). */
  lr?: number;
  /** Seeds the weights, the LoRA A init and the token ids (default 0). */
  seed?: number;
  /** After the timed steps, one more step with every kernel timed on its own (Gpu.profile). */
  profile?: boolean;
  /** Progress lines (stderr). */
  log: (line: string) => void;
}

/** One result; these are the JSON field names of `deno task bench train --json`. */
export interface TrainBenchResult {
  /** "shape mistral-7b". */
  model: string;
  /** WebGPU adapter description. */
  device: string;
  /** Storage of the frozen base matrices. */
  weights: string;
  /** Frozen base parameters. */
  params: number;
  /** LoRA parameters (A and B). */
  trainable_params: number;
  seq_len: number;
  batch_size: number;
  tokens_per_step: number;
  lora_rank: number;
  lora_alpha: number;
  lora_targets: string[];
  /** Whether any layer is recomputed in backward. */
  checkpoint: boolean;
  /** Decoder layers recomputed in backward (0 … num_layers). */
  checkpoint_layers: number;
  warmup: number;
  steps: number;
  /** Wall seconds of the warm-up steps together (pipeline compilation included). */
  warmup_s: number;
  step_s_mean: number;
  step_s_min: number;
  /** tokens_per_step / step_s_mean. */
  tokens_per_s: number;
  /** FLOPs the GPU executes per step (recomputed forward included when checkpointing). */
  flops_per_step: number;
  /** Model FLOPs per step (no recomputation): the MFU numerator. */
  model_flops_per_step: number;
  /** flops_per_step / step_s_mean, in TFLOP/s. */
  tflops: number;
  /** The device's measured fp32 FMA ceiling (src/gpu/ceilings.ts), null where not measured. */
  fp32_ceiling_tflops: number | null;
  /** tflops / fp32_ceiling_tflops, or null. */
  fp32_fraction: number | null;
  /** High-water mark of pool bytes handed out, from before the model was built. */
  peak_gpu_bytes: number;
  /** Bytes the pool holds after the last step (in use + kept for reuse). */
  pool_bytes: number;
  /** GPU ms per kernel over one extra step (`--profile`), largest first; else null. */
  profile: KernelTime[] | null;
  /** Loss of every step, warm-up steps first. */
  losses: number[];
}

/** The documented JSON fields, in order (tests check that a result has each). */
export const TRAIN_BENCH_FIELDS: (keyof TrainBenchResult)[] = [
  "model",
  "device",
  "weights",
  "params",
  "trainable_params",
  "seq_len",
  "batch_size",
  "tokens_per_step",
  "lora_rank",
  "lora_alpha",
  "lora_targets",
  "checkpoint",
  "checkpoint_layers",
  "warmup",
  "steps",
  "warmup_s",
  "step_s_mean",
  "step_s_min",
  "tokens_per_s",
  "flops_per_step",
  "model_flops_per_step",
  "tflops",
  "fp32_ceiling_tflops",
  "fp32_fraction",
  "peak_gpu_bytes",
  "pool_bytes",
  "losses",
  "profile",
];

/** The seeded batch every step trains on: random ids, labels = ids, one sequence per row. */
function randomBatch(rng: Rng, rows: number, seqLen: number, vocab: number): MicroBatch {
  const n = rows * seqLen;
  const ids = new Int32Array(n);
  for (let i = 0; i < n; i++) ids[i] = rng.int(vocab);
  return {
    rows,
    seqLen,
    inputIds: ids,
    labels: ids.slice(),
    positionIds: Int32Array.from({ length: n }, (_, i) => i % seqLen),
    segmentIds: new Int32Array(n).fill(1),
  };
}

/**
 * Runs the benchmark and returns its figures.
 *
 * @example
 * const r = await runTrainBench(gpu, { shape: "mistral-7b", seqLen: 2048, batchSize: 1, rank: 64, alpha: 128, targets: ["q_proj", "k_proj", "v_proj", "o_proj"], steps: 3, warmup: 1, log: console.error });
 */
export async function runTrainBench(gpu: Gpu, o: TrainBenchOptions): Promise<TrainBenchResult> {
  const config = o.config ?? SHAPES[o.shape];
  if (!config) throw new Error(`--shape ${o.shape}: unknown (known: ${Object.keys(SHAPES).join(", ")})`);
  if (o.dtype === "f16" && !gpu.info.f16) throw new Error("--dtype f16: this GPU has no shader-f16");
  if (o.steps < 1 || o.warmup < 0) throw new Error("--steps must be ≥ 1 and --warmup ≥ 0");
  if (o.targets !== "all") {
    // Checked before a 7B model is built for nothing: the module names of the architecture.
    const known = new Set(
      [...expectedShapes(config).keys()].map((n) => /^model\.layers\.0\.\w+\.(\w+)\.weight$/.exec(n)?.[1])
        .filter((m) => m !== undefined),
    );
    const bad = o.targets.filter((t) => !known.has(t));
    if (bad.length) {
      throw new Error(`--targets ${bad.join(",")}: not in ${o.shape} (its: ${[...known].join(",")})`);
    }
  }
  const checkpoint = o.checkpoint ?? o.seqLen >= 1024;
  if (typeof checkpoint === "number" && !(Number.isInteger(checkpoint) && checkpoint >= 0)) {
    throw new Error(`--checkpoint ${checkpoint}: want true, false or a number of layers ≥ 0`);
  }
  const layers = checkpoint === true ? config.numLayers : Math.min(config.numLayers, Number(checkpoint));
  const seed = o.seed ?? 0;
  // Start from an empty pool so peak and pool figures are this run's alone.
  gpu.trim();
  gpu.pool.resetPeak();
  o.log(`building random ${o.shape} on the GPU`);
  const model = randomModel(gpu, config, seed, o.dtype);
  let opt: AdamW | null = null, lossLog: Tensor | null = null, normLog: Tensor | null = null;
  try {
    const params = model.parameterCount;
    const trainable = attachLora(
      model,
      { rank: o.rank, alpha: o.alpha, dropout: 0, target: o.targets, rslora: false },
      new Rng(seed + 1),
    );
    const tensors = [...trainable.params.values()];
    const adam = opt = new AdamW(tensors, {
      lr: o.lr ?? 1e-4,
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      weightDecay: 0,
      maxGradNorm: 1,
    });
    const batch = randomBatch(new Rng(seed + 2), o.batchSize, o.seqLen, config.vocabSize);
    const total = o.warmup + o.steps;
    // One slot more than the steps: the profiled step's.
    const lossBuf = (lossLog = Tensor.zeros(gpu, [total + 1], "f32", { persistent: true })).buffer;
    const normBuf = (normLog = Tensor.zeros(gpu, [total + 1], "f32", { persistent: true })).buffer;
    const step = async (s: number) => {
      const logs = { losses: lossBuf, lossOffset: 4 * s, norm: normBuf, normOffset: 4 * s };
      optimizerStep(model, adam, [batch], adam.hyper.lr, [seed + s], logs, { checkpoint });
      // The step's end: its loss is the last thing it writes before the update, and the read waits for
      // the whole submit (update included).
      await gpu.read(lossBuf, 4, 4 * s);
    };
    const times: number[] = [];
    for (let s = 0; s < total; s++) {
      const what = s < o.warmup ? `warm-up ${s + 1}/${o.warmup}` : `step ${s - o.warmup + 1}/${o.steps}`;
      o.log(`${what}${s > 0 ? ` (last ${(times[s - 1] / 1000).toFixed(3)} s)` : ""}`);
      const t0 = performance.now();
      await step(s);
      times.push(performance.now() - t0);
    }
    const losses = [...new Float32Array(await gpu.read(lossBuf, 4 * total))];
    let profile: KernelTime[] | null = null;
    if (o.profile) {
      o.log("profiled step (a compute pass per kernel)");
      profile = (await gpu.profile(() => step(total))).kernels;
    }
    const stats = gpu.pool.stats;
    const timed = times.slice(o.warmup).map((ms) => ms / 1000);
    const mean = timed.reduce((x, y) => x + y, 0) / timed.length;
    const tokens = o.batchSize * o.seqLen;
    const flopOpts = { seqLen: o.seqLen, batchSize: o.batchSize, rank: o.rank, targets: o.targets };
    const flops = trainStepFlops(config, { ...flopOpts, checkpoint: layers });
    const modelFlops = trainStepFlops(config, { ...flopOpts, checkpoint: false }).total;
    const tflops = flops.total / mean / 1e12;
    const ceiling = measuredCeiling(gpu.info.description)?.fp32Tflops ?? null;
    const targets = o.targets === "all"
      ? [...new Set([...trainable.adapters.keys()].map((p) => p.slice(p.lastIndexOf(".") + 1)))]
      : o.targets;
    return {
      model: `shape ${o.shape}`,
      device: gpu.info.description,
      weights: model.dtype,
      params,
      trainable_params: tensors.reduce((n, t) => n + t.size, 0),
      seq_len: o.seqLen,
      batch_size: o.batchSize,
      tokens_per_step: tokens,
      lora_rank: o.rank,
      lora_alpha: o.alpha,
      lora_targets: targets,
      checkpoint: layers > 0,
      checkpoint_layers: layers,
      warmup: o.warmup,
      steps: o.steps,
      warmup_s: times.slice(0, o.warmup).reduce((x, y) => x + y, 0) / 1000,
      step_s_mean: mean,
      step_s_min: Math.min(...timed),
      tokens_per_s: tokens / mean,
      flops_per_step: flops.total,
      model_flops_per_step: modelFlops,
      tflops,
      fp32_ceiling_tflops: ceiling,
      fp32_fraction: ceiling ? tflops / ceiling : null,
      peak_gpu_bytes: stats.peakBytesInUse,
      pool_bytes: stats.bytesInUse + stats.bytesFree,
      losses,
      profile,
    };
  } finally {
    opt?.dispose();
    for (const p of opt?.params ?? []) p.grad?.dispose();
    lossLog?.dispose();
    normLog?.dispose();
    model.dispose();
  }
}

/** x with an SI prefix: 9.2e13 → "92.0 T". */
function si(x: number): string {
  const [d, p] = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]].find(([d]) => x >= (d as number)) ??
    [1, ""];
  return `${(x / (d as number)).toFixed(x >= 1e3 ? 2 : 0)} ${p}`;
}

/** Bytes as GiB, or MiB below 1 GiB. */
function bytes(x: number): string {
  return x >= 2 ** 30 ? `${(x / 2 ** 30).toFixed(2)} GiB` : `${(x / 2 ** 20).toFixed(1)} MiB`;
}

/** The result as a short aligned table. */
export function trainTable(r: TrainBenchResult): string {
  const rows: [string, string][] = [
    ["model", `${r.model} (${(r.params / 1e6).toFixed(1)}M frozen params, ${r.weights} weights)`],
    ["device", r.device],
    [
      "LoRA",
      `r ${r.lora_rank}, alpha ${r.lora_alpha} on ${r.lora_targets.join(",")} (${
        (r.trainable_params / 1e6).toFixed(2)
      }M trainable), AdamW`,
    ],
    [
      "shape",
      `batch ${r.batch_size} × seq ${r.seq_len}, gradient checkpointing ${
        r.checkpoint ? `on (${r.checkpoint_layers} layers recomputed)` : "off"
      }`,
    ],
    [
      "step",
      `${r.step_s_mean.toFixed(3)} s mean, ${r.step_s_min.toFixed(3)} s min over ${r.steps} (warm-up ${
        r.warmup_s.toFixed(2)
      } s for ${r.warmup})`,
    ],
    ["tokens/s", r.tokens_per_s.toFixed(0)],
    [
      "FLOPs per step",
      `${si(r.flops_per_step)}FLOP (model ${si(r.model_flops_per_step)}FLOP, without recomputation)`,
    ],
    [
      "achieved",
      `${si(r.tflops * 1e12)}FLOP/s${
        r.fp32_fraction === null
          ? " (no measured fp32 ceiling for this device)"
          : ` = ${(100 * r.fp32_fraction).toFixed(1)}% of fp32 ${r.fp32_ceiling_tflops} TFLOP/s`
      }`,
    ],
    [
      "peak GPU memory",
      `${bytes(r.peak_gpu_bytes)} (the pool holds ${bytes(r.pool_bytes)} after the steps)`,
    ],
    ["loss", r.losses.map((l) => l.toFixed(4)).join(" → ")],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  const table = rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join("\n");
  return r.profile ? `${table}\n${profileTable("profiled step", r.profile)}` : table;
}
