import { assert, assertEquals, assertRejects } from "../assert.ts";
import {
  type CheckpointFs,
  checkpointsToDelete,
  isBetter,
  latestCheckpoint,
  listCheckpoints,
  memoryCheckpointFs,
  readCheckpointState,
  resolveResume,
  saveCheckpoint,
  startingCheckpoint,
  type TrainerState,
} from "../../src/train/checkpoint.ts";
import { denoFs } from "../../platform/deno_fs.ts";

const state = (step: number, best: string | null = null, bestMetric: number | null = null): TrainerState => ({
  global_step: step,
  epoch: step / 10,
  scheduler_step: step,
  rng_state: { dropout: [step, 7] },
  data_position: { epoch: Math.floor(step / 10), index: (step % 10) * 4 },
  best_metric: bestMetric,
  best_model_checkpoint: best,
  log_history: [{ step, loss: 1 / (step + 1) }],
});
/** The trainer's part: two files, contents depending on the step. */
const writer = (fs: CheckpointFs, step: number) => async (dir: string) => {
  await fs.writeFile(fs.join(dir, "adapter_model.safetensors"), new Uint8Array([step, 1, 2, 3]));
  await fs.writeFile(fs.join(dir, "optimizer.safetensors"), new Uint8Array(64).fill(step));
};

Deno.test("checkpoint: atomic save, state round trip, latest checkpoint", async () => {
  const fs = memoryCheckpointFs();
  assertEquals(await latestCheckpoint(fs, "out"), null);
  for (const step of [5, 10, 40, 20]) {
    const p = await saveCheckpoint(fs, "out", { state: state(step), write: writer(fs, step) });
    assertEquals(p, `out/checkpoint-${step}`);
  }
  assertEquals(await listCheckpoints(fs, "out"), [
    "out/checkpoint-5",
    "out/checkpoint-10",
    "out/checkpoint-20",
    "out/checkpoint-40",
  ]);
  assertEquals(await latestCheckpoint(fs, "out"), "out/checkpoint-40", "numeric, not lexical, order");
  assertEquals(await readCheckpointState(fs, "out/checkpoint-20"), state(20));
  assertEquals([...await fs.readFile("out/checkpoint-20/adapter_model.safetensors")], [20, 1, 2, 3]);
  assertEquals((await fs.readDir("out")).filter((n) => n.startsWith(".")), [], "no temporary directory left");
  // Saving a step again replaces it.
  await saveCheckpoint(fs, "out", { state: { ...state(20), epoch: 9 }, write: writer(fs, 99) });
  assertEquals((await readCheckpointState(fs, "out/checkpoint-20")).epoch, 9);
  assertEquals([...await fs.readFile("out/checkpoint-20/adapter_model.safetensors")], [99, 1, 2, 3]);
});

Deno.test("checkpoint: a save interrupted before the rename leaves the previous checkpoint intact", async () => {
  for (const failAt of ["optimizer.safetensors", "trainer_state.json.tmp", "rename"]) {
    const fs = memoryCheckpointFs();
    await saveCheckpoint(fs, "out", { state: state(10), write: writer(fs, 10) });
    const before = new Map([...fs.files].map(([k, v]) => [k, [...v]]));
    // A file system that dies at one point of the second save (power cut / kill -9).
    const crashing: CheckpointFs = {
      ...fs,
      writeFile: (p, d) => p.endsWith(failAt) ? Promise.reject(new Error("killed")) : fs.writeFile(p, d),
      rename: (a, b) =>
        failAt === "rename" && b.endsWith("checkpoint-20")
          ? Promise.reject(new Error("killed"))
          : fs.rename(a, b),
    };
    await assertRejects(
      () => saveCheckpoint(crashing, "out", { state: state(20), write: writer(crashing, 20) }),
      /killed/,
    );
    assertEquals(await latestCheckpoint(fs, "out"), "out/checkpoint-10", failAt);
    assertEquals(await resolveResume(fs, "out", true), "out/checkpoint-10");
    for (const [k, v] of before) assertEquals([...fs.files.get(k)!], v, `${failAt}: ${k} unchanged`);
    assert(
      (await fs.readDir("out")).some((n) => n.startsWith(".tmp-checkpoint-20-")),
      "the partial write is a .tmp directory",
    );
    // The next save cleans up the leftovers.
    await saveCheckpoint(fs, "out", { state: state(20), write: writer(fs, 20) });
    assertEquals(await fs.readDir("out"), ["checkpoint-10", "checkpoint-20"]);
  }
});

Deno.test("checkpoint: save_total_limit keeps the newest and the best (HF's rotation)", async () => {
  const ck = (n: number) => `o/checkpoint-${n}`;
  const all = [10, 20, 30, 40, 50].map(ck);
  assertEquals(checkpointsToDelete(all, 2, null), [ck(10), ck(20), ck(30)]);
  assertEquals(
    checkpointsToDelete(all, 2, ck(20)),
    [ck(10), ck(30), ck(40)],
    "best moved next to the newest",
  );
  assertEquals(
    checkpointsToDelete(all, 1, ck(20)),
    [ck(10), ck(30), ck(40)],
    "limit 1 keeps best and newest",
  );
  assertEquals(checkpointsToDelete(all, 1, ck(50)), [ck(10), ck(20), ck(30), ck(40)]);
  assertEquals(checkpointsToDelete(all, 3, ck(50)), [ck(10), ck(20)]);
  assertEquals(checkpointsToDelete(all.slice(0, 2), 3, null), []);

  const fs = memoryCheckpointFs();
  for (const step of [10, 20, 30, 40]) {
    const best = step >= 20 ? "out/checkpoint-20" : null;
    await saveCheckpoint(fs, "out", {
      state: state(step, best, best ? 0.9 : null),
      write: writer(fs, step),
      saveTotalLimit: 2,
    });
  }
  assertEquals(await listCheckpoints(fs, "out"), ["out/checkpoint-20", "out/checkpoint-40"]);
  assert(
    ![...fs.files.keys()].some((k) => k.includes("checkpoint-30")),
    "every file of a pruned checkpoint is gone",
  );
});

Deno.test("checkpoint: resume_from_checkpoint resolution and state errors", async () => {
  const fs = memoryCheckpointFs();
  await assertRejects(
    () => resolveResume(fs, "out", true),
    /^resume_from_checkpoint: true, but out has no checkpoint/,
  );
  await saveCheckpoint(fs, "out", { state: state(3), write: writer(fs, 3) });
  assertEquals(await resolveResume(fs, "out", undefined), null);
  assertEquals(await resolveResume(fs, "out", "out/checkpoint-3"), "out/checkpoint-3");
  await assertRejects(
    () => resolveResume(fs, "out", "out/checkpoint-4"),
    /out\/checkpoint-4 is not a checkpoint/,
  );
  // A directory without the state file is not a checkpoint.
  await fs.writeFile("out/checkpoint-9/adapter_model.safetensors", new Uint8Array(4));
  assertEquals(await latestCheckpoint(fs, "out"), "out/checkpoint-3");
  await fs.writeFile("out/checkpoint-9/trainer_state.json", new TextEncoder().encode('{"global_step": "x"}'));
  await assertRejects(
    () => readCheckpointState(fs, "out/checkpoint-9"),
    /^out\/checkpoint-9\/trainer_state\.json: global_step: /,
  );
  assert(isBetter("accuracy", 0.9, 0.8) && !isBetter("accuracy", 0.7, 0.8));
  assert(isBetter("eval_loss", 0.5, 0.6) && !isBetter("eval_loss", 0.7, 0.6));
  assert(isBetter("loss", 1, null) && isBetter("perplexity", 3, 4, false));
});

Deno.test("checkpoint: the same protocol on the real file system (directory renames)", async () => {
  const root = await Deno.makeTempDir();
  try {
    const fs: CheckpointFs = {
      ...denoFs,
      readDir: async (d) => {
        try {
          return await Array.fromAsync(Deno.readDir(d), (e) => e.name);
        } catch {
          return [];
        }
      },
      remove: (p) => Deno.remove(p, { recursive: true }).catch(() => {}),
    };
    const out = `${root}/out`;
    for (const step of [1, 2, 3]) {
      await saveCheckpoint(fs, out, { state: state(step), write: writer(fs, step), saveTotalLimit: 2 });
    }
    assertEquals((await fs.readDir(out)).sort(), ["checkpoint-2", "checkpoint-3"]);
    assertEquals(await readCheckpointState(fs, `${out}/checkpoint-3`), state(3));
    await saveCheckpoint(fs, out, { state: state(3), write: writer(fs, 33) });
    assertEquals([...await Deno.readFile(`${out}/checkpoint-3/adapter_model.safetensors`)], [33, 1, 2, 3]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("checkpoint: where a run starts (resume, auto-resume, overwrite, refuse to clobber)", async () => {
  const fs = memoryCheckpointFs();
  assertEquals(await startingCheckpoint(fs, "out", {}), { checkpoint: null }, "fresh output_dir");
  await fs.writeFile("out/training_args.yaml", new TextEncoder().encode("x: 1\n"));
  await fs.writeFile("out/sft_cache/abc/index.json", new TextEncoder().encode("{}"));
  assertEquals(await startingCheckpoint(fs, "out", {}), { checkpoint: null }, "our own cache is harmless");
  await fs.writeFile("out/adapter_model.safetensors", new Uint8Array(8));
  await assertRejects(
    () => startingCheckpoint(fs, "out", {}),
    /^output_dir out already holds adapter_model\.safetensors; set overwrite_output_dir: true/,
  );
  assertEquals(await startingCheckpoint(fs, "out", { overwrite_output_dir: true }), { checkpoint: null });
  await saveCheckpoint(fs, "out", { state: state(8), write: writer(fs, 8) });
  await saveCheckpoint(fs, "out", { state: state(16), write: writer(fs, 16) });
  const auto = await startingCheckpoint(fs, "out", {});
  assertEquals(auto.checkpoint, "out/checkpoint-16");
  assert(auto.message!.includes("overwrite_output_dir"));
  assertEquals(
    (await startingCheckpoint(fs, "out", { resume_from_checkpoint: "out/checkpoint-8" })).checkpoint,
    "out/checkpoint-8",
  );
  assertEquals(
    (await startingCheckpoint(fs, "out", { resume_from_checkpoint: true, overwrite_output_dir: true }))
      .checkpoint,
    "out/checkpoint-16",
  );
  assertEquals(await startingCheckpoint(fs, "out", { overwrite_output_dir: true }), { checkpoint: null });
});
