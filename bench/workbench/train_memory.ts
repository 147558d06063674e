/**
 * Peak GPU memory and time of one LoRA training step, per gradient-checkpointing setting
 * (bench/train.ts runTrainBench). Two uses:
 * - `--scaled` (lavapipe): a Mistral-shaped model shrunk 16× in width (C 256, F 896, T 128) at 2 and 4
 *   layers; the slope (peak(4) − peak(2)) / 2 is the memory one decoder layer adds, in U = one [T, C]
 *   f32 tensor (the same ratios as the 7B model at T 2048, where U = 32 MiB).
 * - default (H200): mistral-7b at seq 2048, every setting in `--settings` (false, true, or a number of
 *   recomputed layers), one line each.
 *
 * deno run -A bench/workbench/train_memory.ts --scaled
 * deno run -A bench/workbench/train_memory.ts --settings false,2,4,true --steps 2
 */
import { parseArgs } from "node:util";
import { createGpu } from "../../src/gpu/mod.ts";
import { SHAPES } from "../../src/model/random.ts";
import { runTrainBench, type TrainBenchOptions } from "../train.ts";

const { values: v } = parseArgs({
  args: Deno.args,
  options: {
    scaled: { type: "boolean", default: false },
    settings: { type: "string", default: "false,true" },
    steps: { type: "string", default: "2" },
    "seq-len": { type: "string", default: "2048" },
  },
});
const gpu = await createGpu();
const QKVO = ["q_proj", "k_proj", "v_proj", "o_proj"];
const settings = v.settings!.split(",").map((s) => s === "true" ? true : s === "false" ? false : Number(s));
const mib = (b: number) => (b / 2 ** 20).toFixed(1);

const base: Omit<TrainBenchOptions, "shape"> = {
  seqLen: Number(v["seq-len"]),
  batchSize: 1,
  rank: 64,
  alpha: 128,
  targets: QKVO,
  steps: Number(v.steps),
  warmup: 1,
  log: () => {},
};

if (v.scaled) {
  const T = 128;
  const U = T * 256 * 4;
  console.log(`scaled mistral: C 256, F 896, H 8/2, D 32, V 1024, T ${T}, r 16; U = ${U / 1024} KiB`);
  // Persistent bytes one layer adds: f16 matrices, f32 norms, LoRA A/B with grad and AdamW m, v.
  const [C, F, KV, r] = [256, 896, 64, 16];
  const weights = 2 * (2 * C * C + 2 * KV * C + 3 * F * C) + 4 * 2 * C;
  const lora = 16 * r * ((C + C) * 2 + (C + KV) * 2);
  console.log(`persistent per layer: ${((weights + lora) / U).toFixed(2)} U (weights, LoRA + grads + AdamW)`);
  console.log("checkpoint | peak L2 MiB | peak L4 MiB | slope U/layer | activations U/layer");
  for (const ck of settings) {
    const peaks: number[] = [];
    for (const L of [2, 4]) {
      const config = {
        ...SHAPES["mistral-7b"],
        vocabSize: 1024,
        hiddenSize: 256,
        intermediateSize: 896,
        numHeads: 8,
        numKvHeads: 2,
        headDim: 32,
        numLayers: L,
      };
      const r = await runTrainBench(gpu, {
        ...base,
        shape: "scaled",
        config,
        seqLen: T,
        rank: 16,
        alpha: 32,
        steps: 1,
        checkpoint: ck,
      });
      peaks.push(r.peak_gpu_bytes);
    }
    const slope = (peaks[1] - peaks[0]) / 2;
    console.log(
      `${String(ck).padEnd(10)} | ${mib(peaks[0]).padStart(11)} | ${mib(peaks[1]).padStart(11)} | ${
        (slope / U).toFixed(2).padStart(13)
      } | ${((slope - weights - lora) / U).toFixed(2)}`,
    );
  }
} else {
  console.log("checkpoint | peak GiB | pool GiB | step s mean | min | TFLOP/s | losses");
  for (const ck of settings) {
    const r = await runTrainBench(gpu, { ...base, shape: "mistral-7b", checkpoint: ck });
    console.log(
      `${String(ck).padEnd(10)} | ${(r.peak_gpu_bytes / 2 ** 30).toFixed(2)} | ${
        (r.pool_bytes / 2 ** 30).toFixed(2)
      } | ${r.step_s_mean.toFixed(3)} | ${r.step_s_min.toFixed(3)} | ${r.tflops.toFixed(1)} | ${
        r.losses.map((l) => l.toFixed(4)).join(" ")
      }`,
    );
    gpu.trim();
  }
}
gpu.destroy();
