/** bench/train.ts (and its FLOP count, bench/train_flops.ts) on lavapipe-sized inputs: figures finite and positive, loss falling, JSON complete. */
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { testGpu } from "../util.ts";
import { SHAPES } from "../../src/model/random.ts";
import { runTrainBench, TRAIN_BENCH_FIELDS, trainTable } from "../../bench/train.ts";
import { attentionPairs, trainStepFlops } from "../../bench/train_flops.ts";

const gpu = await testGpu();
const QKVO = ["q_proj", "k_proj", "v_proj", "o_proj"];
const opts = {
  shape: "tiny",
  seqLen: 16,
  batchSize: 1,
  rank: 8,
  alpha: 16,
  targets: QKVO,
  steps: 2,
  warmup: 1,
  log: () => {},
};

Deno.test("train bench: tiny shape, figures finite and positive, loss falls, every JSON field", async () => {
  // A large learning rate on the one repeated batch: three AdamW steps must lower the loss.
  const r = await runTrainBench(gpu, { ...opts, lr: 1e-2 });
  const json = JSON.parse(JSON.stringify(r));
  for (const k of TRAIN_BENCH_FIELDS) assert(k in json, `JSON lacks ${k}`);
  assertEquals(Object.keys(json).sort(), [...TRAIN_BENCH_FIELDS].sort());
  for (
    const k of [
      "params",
      "trainable_params",
      "warmup_s",
      "step_s_mean",
      "step_s_min",
      "tokens_per_s",
      "flops_per_step",
      "model_flops_per_step",
      "tflops",
      "peak_gpu_bytes",
      "pool_bytes",
    ] as const
  ) {
    assert(Number.isFinite(r[k]) && r[k] > 0, `${k} = ${r[k]}`);
  }
  assert(r.step_s_min <= r.step_s_mean, "min ≤ mean");
  assertEquals(r.checkpoint, false, "seq 16 < 1024: checkpointing off by default");
  assertEquals(r.checkpoint_layers, 0);
  assertEquals(r.tokens_per_step, 16);
  // 2 layers × (A [8, in] + B [out, 8]) over q (64→64), k, v (64→32), o (64→64).
  assertEquals(r.trainable_params, 2 * 8 * ((64 + 64) + 2 * (64 + 32) + (64 + 64)));
  // lavapipe has no measured ceiling: the fraction is null, not a made-up number.
  assertEquals(r.fp32_fraction, r.fp32_ceiling_tflops === null ? null : r.tflops / r.fp32_ceiling_tflops);
  assertEquals(r.losses.length, 3);
  assert(r.losses.every(Number.isFinite), `losses ${r.losses}`);
  assert(r.losses[2] < r.losses[0], `loss did not fall: ${r.losses}`);
  const weightBytes = r.params * (r.weights === "f16" ? 2 : 4) * 0.5; // norms stay f32: a lower bound
  assert(r.peak_gpu_bytes >= weightBytes + 4 * 4 * r.trainable_params, "peak covers weights, LoRA, AdamW");
  assert(trainTable(r).includes("tokens/s"), "table");
  assertEquals(r.profile, null, "no --profile, no kernel times");
  // --profile: one more step, every kernel timed; the matmuls and attention are among them.
  const p = await runTrainBench(gpu, { ...opts, lr: 1e-2, profile: true });
  assert(p.profile !== null && p.profile.length > 5, "kernel times");
  const names = p.profile.map((k) => k.name).join(" ");
  assert(/matmul:main/.test(names) && /attention_backward:/.test(names), names);
  assert(p.profile.every((k) => k.count >= 1 && k.ms >= 0), "counts and times");
  assertEquals(p.losses, r.losses, "the profiled step comes after the timed ones");
  assert(trainTable(p).includes("profiled step:"), "table lists the kernels");

  // Checkpointing recomputes the forward: more FLOPs executed, same model FLOPs, the same losses.
  const c = await runTrainBench(gpu, { ...opts, lr: 1e-2, checkpoint: true });
  assertEquals(c.checkpoint, true);
  assertEquals(c.model_flops_per_step, r.model_flops_per_step);
  assert(c.flops_per_step > r.flops_per_step, "recompute counted");
  for (let i = 0; i < 3; i++) {
    assert(Math.abs(c.losses[i] - r.losses[i]) < 1e-3, `losses ${c.losses} vs ${r.losses}`);
  }

  assertEquals(c.checkpoint_layers, 2, "true: every layer");
  // One of the two layers recomputed: half the recompute FLOPs, the same losses.
  const half = await runTrainBench(gpu, { ...opts, lr: 1e-2, checkpoint: 1 });
  assertEquals([half.checkpoint, half.checkpoint_layers], [true, 1]);
  const rec = (x: typeof r) => x.flops_per_step - x.model_flops_per_step;
  assert(Math.abs(rec(half) / rec(c) - 0.5) < 1e-9, `recompute ${rec(half)} vs ${rec(c)}`);
  for (let i = 0; i < 3; i++) {
    assert(Math.abs(half.losses[i] - r.losses[i]) < 1e-3, `losses ${half.losses} vs ${r.losses}`);
  }
  assert(trainTable(half).includes("1 layers recomputed"), "table names the recomputed layers");

  await assertRejects(() => runTrainBench(gpu, { ...opts, checkpoint: -1 }), /--checkpoint -1/);
  await assertRejects(() => runTrainBench(gpu, { ...opts, shape: "gpt5" }), /unknown/);
  await assertRejects(
    () => runTrainBench(gpu, { ...opts, targets: ["qq_proj"] }),
    /--targets qq_proj: not in tiny/,
  );
});

Deno.test("train bench: FLOP count of the mistral-7b step, by hand", () => {
  const c = SHAPES["mistral-7b"], T = 2048;
  // Linear weights per layer: q, o 4096²; k, v 1024·4096; gate, up, down 14336·4096.
  const perLayer = 2 * 4096 * 4096 + 2 * 1024 * 4096 + 3 * 14336 * 4096;
  const nDec = 32 * perLayer, head = 32000 * 4096;
  const a = 32 * 64 * ((4096 + 4096) * 2 + 2 * (4096 + 1024)); // r·(in + out) over q, o, k, v
  const attn = 4 * (T * (T + 1) / 2) * 128 * 32 * 32; // window 4096 > T: plain causal
  const f = trainStepFlops(c, { seqLen: T, batchSize: 1, rank: 64, targets: QKVO, checkpoint: true });
  const want = {
    forward: 2 * (nDec + head) * T + 2 * a * T + attn,
    backward: 2 * (nDec + head) * T + 4 * a * T + 2 * attn,
    recompute: 2 * nDec * T + 2 * a * T + attn,
  };
  for (const k of ["forward", "backward", "recompute"] as const) {
    assert(Math.abs(f[k] / want[k] - 1) < 1e-12, `${k}: ${f[k]} vs ${want[k]}`);
  }
  assertEquals(f.total, f.forward + f.backward + f.recompute);
  const off = trainStepFlops(c, { seqLen: T, batchSize: 1, rank: 64, targets: QKVO, checkpoint: false });
  assertEquals(off.recompute, 0);
  // 8 of the 32 layers recomputed: a quarter of the recompute.
  const some = trainStepFlops(c, { seqLen: T, batchSize: 1, rank: 64, targets: QKVO, checkpoint: 8 });
  assert(Math.abs(some.recompute / want.recompute - 0.25) < 1e-12, "8 of 32 layers");
  assertEquals(
    trainStepFlops(c, { seqLen: T, batchSize: 1, rank: 64, targets: QKVO, checkpoint: 0 }).recompute,
    0,
  );
  // Sliding window: rows past the window see `window` keys each.
  assertEquals(attentionPairs(6, 4), 1 + 2 + 3 + 4 + 4 + 4);
  assertEquals(attentionPairs(5, null), 15);
});
