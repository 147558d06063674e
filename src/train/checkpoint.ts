/**
 * Checkpoint directories, written atomically: everything goes into `output_dir/.tmp-checkpoint-<step>-…`
 * (the trainer's tensors through src/io's writeSafetensors, then `trainer_state.json` last), and only
 * then is the directory renamed to `checkpoint-<step>`. A crash before the rename leaves every earlier
 * checkpoint as it was and only a `.tmp-…` directory behind, which the next save removes. After a save,
 * checkpoints beyond save_total_limit are deleted oldest first, keeping the best one (HF Trainer's
 * `_rotate_checkpoints` rule). Names follow HF: `checkpoint-<global_step>/trainer_state.json`.
 */
import { z } from "zod";
import { type FileSystem, memoryFs } from "../io/fs.ts";

/**
 * What checkpoints need beyond src/io's FileSystem: listing, recursive removal, and `rename` that
 * also moves directories (Deno.rename does). Deno: platform/deno_fs.ts's denoFs implements it.
 */
export interface CheckpointFs extends FileSystem {
  /** Names of the entries directly inside `dir`; [] when it does not exist. */
  readDir(dir: string): Promise<string[]>;
  /** Delete a file or a whole directory; no error when missing. */
  remove(path: string): Promise<void>;
}

/** The state file: HF trainer_state.json's names plus what an exact resume needs. */
const StateSchema = z.object({
  global_step: z.number().int().min(0),
  /** Fractional epoch, as HF logs it. */
  epoch: z.number().min(0),
  /** Scheduler steps taken (equals global_step unless a schedule is restarted). */
  scheduler_step: z.number().int().min(0),
  /** Opaque RNG states of the trainer (dropout, data order), e.g. { dropout: [s0, s1] }. */
  rng_state: z.record(z.string(), z.unknown()),
  /** The training loader's position: resume reads the next batch from here. */
  data_position: z.object({ epoch: z.number().int().min(0), index: z.number().int().min(0) }),
  best_metric: z.number().nullable(),
  best_model_checkpoint: z.string().nullable(),
  log_history: z.array(z.record(z.string(), z.unknown())).default([]),
});
/** Contents of trainer_state.json. */
export type TrainerState = z.output<typeof StateSchema>;

export const STATE_FILE = "trainer_state.json";
const NAME = /^checkpoint-(\d+)$/;

/** Step number of a checkpoint path (`…/checkpoint-40` → 40), or null. */
export function checkpointStep(path: string): number | null {
  const m = NAME.exec(path.split("/").pop() ?? "");
  return m ? Number(m[1]) : null;
}

/** Complete checkpoints in `dir` (those with a state file), oldest first. */
export async function listCheckpoints(fs: CheckpointFs, dir: string): Promise<string[]> {
  const found: [number, string][] = [];
  for (const name of await fs.readDir(dir)) {
    const step = checkpointStep(name);
    if (step !== null && (await fs.exists(fs.join(dir, name, STATE_FILE)))) {
      found.push([step, fs.join(dir, name)]);
    }
  }
  return found.sort((a, b) => a[0] - b[0]).map(([, p]) => p);
}

/**
 * The newest complete checkpoint in `dir`, or null.
 *
 * @example
 * const last = await latestCheckpoint(fs, "output/medical_lora"); // "output/medical_lora/checkpoint-1500"
 */
export async function latestCheckpoint(fs: CheckpointFs, dir: string): Promise<string | null> {
  return (await listCheckpoints(fs, dir)).at(-1) ?? null;
}

/**
 * The checkpoint `resume_from_checkpoint` names: `true` = the latest in output_dir (an error when
 * there is none), a path = that checkpoint (an error when it is not one), unset = none.
 */
export async function resolveResume(
  fs: CheckpointFs,
  outputDir: string,
  resume: string | boolean | undefined,
): Promise<string | null> {
  if (resume === undefined || resume === false) return null;
  if (resume === true) {
    const last = await latestCheckpoint(fs, outputDir);
    if (!last) {
      throw new Error(
        `resume_from_checkpoint: true, but ${outputDir} has no checkpoint-<step> with ${STATE_FILE}`,
      );
    }
    return last;
  }
  if (!(await fs.exists(fs.join(resume, STATE_FILE)))) {
    throw new Error(`resume_from_checkpoint: ${resume} is not a checkpoint (no ${STATE_FILE})`);
  }
  return resume;
}

/** Entries of an output_dir that a fresh run may find there without clobbering a previous run. */
const HARMLESS = new Set(["sft_cache", "training_args.yaml"]);

/**
 * Where a run starts, by LLaMA-Factory's rules: `resume_from_checkpoint` when set; otherwise the
 * latest checkpoint in output_dir (with a message saying so) unless overwrite_output_dir; a fresh start
 * in an output_dir holding another run's files is an error unless overwrite_output_dir.
 *
 * @example
 * const { checkpoint, message } = await startingCheckpoint(fs, cfg.output_dir, cfg);
 * if (message) console.log(message);
 */
export async function startingCheckpoint(
  fs: CheckpointFs,
  outputDir: string,
  o: { resume_from_checkpoint?: string | boolean; overwrite_output_dir?: boolean },
): Promise<{ checkpoint: string | null; message?: string }> {
  if (o.resume_from_checkpoint !== undefined && o.resume_from_checkpoint !== false) {
    const checkpoint = await resolveResume(fs, outputDir, o.resume_from_checkpoint);
    return { checkpoint, message: `resuming from ${checkpoint}` };
  }
  if (o.overwrite_output_dir) return { checkpoint: null };
  const last = await latestCheckpoint(fs, outputDir);
  if (last) {
    return {
      checkpoint: last,
      message: `resuming from ${last}; set overwrite_output_dir: true or another output_dir to start over`,
    };
  }
  const other = (await fs.readDir(outputDir)).filter((n) => !HARMLESS.has(n) && !n.startsWith("."));
  if (other.length) {
    throw new Error(
      `output_dir ${outputDir} already holds ${other.slice(0, 3).join(", ")}${
        other.length > 3 ? ", …" : ""
      }; ` +
        "set overwrite_output_dir: true or choose another output_dir",
    );
  }
  return { checkpoint: null };
}

/** Reads and validates a checkpoint's state file; errors name the file and the key. */
export async function readCheckpointState(fs: FileSystem, checkpoint: string): Promise<TrainerState> {
  const path = fs.join(checkpoint, STATE_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readText(path));
  } catch (e) {
    throw new Error(`${path}: cannot read the state (${(e as Error).message})`);
  }
  const r = StateSchema.safeParse(raw);
  if (!r.success) {
    const iss = r.error.issues[0];
    throw new Error(`${path}: ${iss.path.join(".")}: ${iss.message}`);
  }
  return r.data;
}

/**
 * HF's rotation: delete oldest first, never the newest or the best, keeping `limit` (2 when the best is
 * not the newest and limit is 1). transformers 4's `_rotate_checkpoints` (best moved next to the newest)
 * and 5's `rotate_checkpoints` (newest and best protected) give the same result; both read on the GPU
 * machine. Returns the paths to delete.
 */
export function checkpointsToDelete(sorted: string[], limit: number, best: string | null): string[] {
  const order = sorted.slice();
  const bi = best === null ? -1 : order.indexOf(best);
  if (bi >= 0) {
    for (let i = bi; i < order.length - 2; i++) [order[i], order[i + 1]] = [order[i + 1], order[i]];
  }
  const keep = bi >= 0 && limit === 1 && order.at(-1) !== best ? 2 : limit;
  return order.slice(0, Math.max(0, order.length - keep));
}

/** Options of {@link saveCheckpoint}. */
export interface SaveOptions {
  /** Writes the checkpoint's files (adapter, optimizer moments…) into the temporary directory. */
  write: (dir: string) => Promise<void>;
  state: TrainerState;
  saveTotalLimit?: number;
}

/**
 * Writes `output_dir/checkpoint-<state.global_step>` atomically and prunes old checkpoints.
 * Returns the checkpoint path.
 *
 * @example
 * await saveCheckpoint(fs, cfg.output_dir, { state, saveTotalLimit: cfg.save_total_limit,
 *   write: (dir) => writeSafetensors(fs, fs.join(dir, "optimizer.safetensors"), moments) });
 */
export async function saveCheckpoint(fs: CheckpointFs, outputDir: string, o: SaveOptions): Promise<string> {
  const state = StateSchema.parse(o.state);
  await fs.mkdir(outputDir);
  // Leftovers of an interrupted save are never a checkpoint: remove them.
  for (const name of await fs.readDir(outputDir)) {
    if (name.startsWith(".tmp-checkpoint-") || name.startsWith(".old-checkpoint-")) {
      await fs.remove(fs.join(outputDir, name));
    }
  }
  const step = state.global_step;
  const final = fs.join(outputDir, `checkpoint-${step}`);
  const tmp = fs.join(outputDir, `.tmp-checkpoint-${step}-${crypto.randomUUID().slice(0, 8)}`);
  await fs.mkdir(tmp);
  await o.write(tmp);
  const tmpState = fs.join(tmp, STATE_FILE + ".tmp");
  await fs.writeFile(tmpState, new TextEncoder().encode(JSON.stringify(state, null, 2) + "\n"));
  await fs.rename(tmpState, fs.join(tmp, STATE_FILE));
  // Saving the same step again (a resumed run): move the old one aside, then swap.
  let old: string | null = null;
  if (await fs.exists(final)) {
    old = fs.join(outputDir, `.old-checkpoint-${step}`);
    await fs.rename(final, old);
  }
  await fs.rename(tmp, final);
  if (old) await fs.remove(old);
  if (o.saveTotalLimit !== undefined) {
    const all = await listCheckpoints(fs, outputDir);
    for (const p of checkpointsToDelete(all, o.saveTotalLimit, state.best_model_checkpoint)) {
      await fs.remove(p);
    }
  }
  return final;
}

/**
 * Whether `value` beats the best so far: HF's rule — greater is better unless the metric is a loss
 * (or `greaterIsBetter` says otherwise).
 */
export function isBetter(
  metric: string,
  value: number,
  best: number | null,
  greaterIsBetter?: boolean,
): boolean {
  const greater = greaterIsBetter ?? !/loss$/.test(metric);
  return best === null || (greater ? value > best : value < best);
}

/**
 * A {@link CheckpointFs} in memory (tests, the browser): src/io's memoryFs plus listing, removal and
 * directory renames.
 */
export function memoryCheckpointFs(initial: Record<string, Uint8Array | string> = {}) {
  const base = memoryFs(initial);
  const norm = (p: string) => base.join(p).replace(/^\.\//, "");
  const under = (p: string) => [...base.files.keys()].filter((k) => k.startsWith(norm(p) + "/"));
  const dirs = new Set<string>();
  const fs: CheckpointFs & { files: Map<string, Uint8Array> } = {
    ...base,
    // Directories are tracked here (not by memoryFs) so that remove and rename also move them.
    mkdir: (p) => {
      const parts = norm(p).split("/");
      for (let i = 1; i <= parts.length; i++) dirs.add(parts.slice(0, i).join("/"));
      return Promise.resolve();
    },
    exists: (p) => Promise.resolve(base.files.has(norm(p)) || dirs.has(norm(p)) || under(p).length > 0),
    readDir: (d) => {
      const prefix = norm(d) + "/", names = new Set<string>();
      for (const k of [...base.files.keys(), ...dirs]) {
        if (k.startsWith(prefix)) names.add(k.slice(prefix.length).split("/")[0]);
      }
      return Promise.resolve([...names].sort());
    },
    remove: (p) => {
      for (const k of under(p)) base.files.delete(k);
      base.files.delete(norm(p));
      for (const d of [...dirs]) if (d === norm(p) || d.startsWith(norm(p) + "/")) dirs.delete(d);
      return Promise.resolve();
    },
    rename: async (from, to) => {
      const f = norm(from), t = norm(to);
      if (base.files.has(f)) return await base.rename(from, to);
      if (!dirs.has(f) && !under(f).length) throw new Error(`${from}: no such file or directory`);
      if (under(t).length) throw new Error(`${to}: directory not empty`);
      for (const k of under(f)) {
        base.files.set(t + k.slice(f.length), base.files.get(k)!), base.files.delete(k);
      }
      for (const d of [...dirs]) {
        if (d === f || d.startsWith(f + "/")) (dirs.delete(d), dirs.add(t + d.slice(f.length)));
      }
    },
  };
  return fs;
}
