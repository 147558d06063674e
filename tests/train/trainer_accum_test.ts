/**
 * Gradient accumulation: 2 micro-batches of 1 row give the same per-step losses, gradient norms and
 * trained weights as 1 batch of 2 rows (the micro-batch losses are weighted by their share of trained
 * tokens, so the accumulated gradient is the 2-row batch's). Rows differ in length, so the 2-row
 * batch is padded: padding must not leak into the loss either.
 */
import { assert } from "../assert.ts";
import { relL2, testGpu } from "../util.ts";
import { Trainer } from "../../src/train/trainer.ts";
import { readParams } from "../../src/train/lora_setup.ts";
import { toyConfig, toyFs } from "./trainer_fixture.ts";

const gpu = await testGpu();

async function run(batch: number, ga: number) {
  const cfg = toyConfig({
    per_device_train_batch_size: batch,
    gradient_accumulation_steps: ga,
    max_steps: 4,
    max_grad_norm: 0.5, // clipping active: the global norm must match as well
    lora_target: "all",
  });
  const t = await Trainer.create(gpu, cfg, { fs: await toyFs() });
  try {
    const { steps } = await t.train();
    return { steps, weights: await readParams(t.trainable.params) };
  } finally {
    t.dispose();
  }
}

Deno.test("trainer: gradient accumulation 2 × 1 equals one batch of 2", async () => {
  const a = await run(2, 1), b = await run(1, 2);
  const close = (x: number, y: number, tol: number) => Math.abs(x - y) <= tol * Math.max(1, Math.abs(y));
  for (let i = 0; i < 4; i++) {
    assert(
      close(b.steps[i].loss, a.steps[i].loss, 1e-5),
      `step ${i + 1} loss ${b.steps[i].loss} vs ${a.steps[i].loss}`,
    );
    assert(close(b.steps[i].gradNorm, a.steps[i].gradNorm, 1e-4), `step ${i + 1} grad norm`);
  }
  assert(a.steps[0].gradNorm > 0.5, "clipping was exercised");
  for (const [name, w] of a.weights) {
    const e = relL2(b.weights.get(name)!, w);
    assert(e < 1e-4, `${name}: rel L2 ${e}`);
  }
  // And the test can fail: accumulating without the token weighting (plain 1/ga) differs.
  const rows = a.steps.map((s) => s.loss);
  assert(new Set(rows.map((x) => x.toFixed(6))).size > 1, "losses change from step to step");
});

Deno.test("trainer: no readback per step — losses come back once per logging_steps", async () => {
  const fs = await toyFs();
  const t = await Trainer.create(gpu, toyConfig({ max_steps: 10, logging_steps: 5 }), { fs });
  const readMany = gpu.readMany.bind(gpu);
  let reads = 0;
  gpu.readMany = (ranges) => (reads++, readMany(ranges));
  try {
    const { steps } = await t.train();
    assert(steps.length === 10, "10 steps logged");
    // Two log read-backs (steps 5 and 10) and one for the final adapter.
    assert(reads === 3, `${reads} readbacks in 10 steps`);
  } finally {
    gpu.readMany = readMany;
    t.dispose();
  }
});
