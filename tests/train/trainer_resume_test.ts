/**
 * Checkpoints: a run that "crashes" after step 4 (checkpoint at 4) and is resumed continues with the
 * same per-step losses as an uninterrupted run — LoRA dropout on, so the dropout RNG state, the AdamW
 * moments, the scheduler step and the loader position must all be restored. A save that dies halfway
 * leaves the previous checkpoint intact and resumable. Also Rng.state()/setState().
 */
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { testGpu } from "../util.ts";
import { Trainer } from "../../src/train/trainer.ts";
import { type CheckpointFs, listCheckpoints, readCheckpointState } from "../../src/train/checkpoint.ts";
import { Rng } from "../../src/tensor/mod.ts";
import { toyConfig, toyFs } from "./trainer_fixture.ts";

const gpu = await testGpu();
const STEPS = 8;
const opts = {
  max_steps: STEPS,
  save_steps: 4,
  lora_dropout: 0.2,
  lr_scheduler_type: "cosine",
  warmup_steps: 2,
  per_device_train_batch_size: 3, // 8 rows: epochs end mid-run with a short batch
};

async function losses(fs: CheckpointFs, extra: Record<string, unknown> = {}, stopAfter?: number) {
  const t = await Trainer.create(gpu, toyConfig({ ...opts, ...extra }), { fs });
  try {
    return (await t.train({ stopAfter })).steps.map((s) => s.loss);
  } finally {
    t.dispose();
  }
}

Deno.test("Rng: state() / setState() continue the same sequence", () => {
  const r = new Rng(5);
  r.normal(); // leaves a spare normal in the state
  const s = r.state();
  const want = [r.normal(), r.next(), r.int(1000)];
  const q = new Rng(99);
  q.setState(s);
  assertEquals([q.normal(), q.next(), q.int(1000)], want);
});

Deno.test("trainer: resume after a crash gives the uninterrupted run's losses", async () => {
  const whole = await losses(await toyFs());
  const fs = await toyFs();
  const before = await losses(fs, {}, 4);
  assertEquals(before.length, 4);
  assertEquals(await listCheckpoints(fs, "out"), ["out/checkpoint-4"]);
  const after = await losses(fs, { resume_from_checkpoint: true });
  assertEquals(after.length, STEPS - 4, "resumed run trains the remaining steps only");
  const resumed = [...before, ...after];
  resumed.forEach((l, i) =>
    assert(Math.abs(l - whole[i]) <= 1e-6 * Math.abs(whole[i]), `step ${i + 1}: ${l} vs ${whole[i]}`)
  );
  // Not a tautology: a fresh run with another seed differs.
  const other = await losses(await toyFs(), { seed: 4, max_steps: 2 });
  assert(Math.abs(other[1] - whole[1]) > 1e-4, "another seed changes the losses");
});

Deno.test("trainer: a save that dies halfway leaves the previous checkpoint intact", async () => {
  const fs = await toyFs();
  const write = fs.writeFile;
  fs.writeFile = (p, d) => {
    if (/\.tmp-checkpoint-8-.*optimizer/.test(p)) return Promise.reject(new Error("disk full (simulated)"));
    return write(p, d);
  };
  await assertRejects(() => losses(fs), /disk full/);
  assertEquals(await listCheckpoints(fs, "out"), ["out/checkpoint-4"]);
  assertEquals((await readCheckpointState(fs, "out/checkpoint-4")).global_step, 4);
  fs.writeFile = write;
  const after = await losses(fs, { resume_from_checkpoint: "out/checkpoint-4" });
  assertEquals(after.length, 4);
  assertEquals(await listCheckpoints(fs, "out"), ["out/checkpoint-4", "out/checkpoint-8"]);
});
