/**
 * The trainer's files: checkpoint tensors (trainable weights + AdamW moments) written and read back,
 * tokenizer/config files copied into outputs, and trainer_log.jsonl (LLaMA-Factory's per-log-step
 * lines, rewritten whole at each log: the file is small and a FileSystem has no append).
 */
import type { FileSystem } from "../io/fs.ts";
import { openSafetensors, writeSafetensors } from "../io/safetensors.ts";
import type { AdamW } from "./optimizer.ts";
import { readParams, restoreParams, saveTrainable, type Trainable } from "./lora_setup.ts";
import { TOKENIZER_FILES } from "./default_model.ts";
import type { LlamaModel } from "../model/llama.ts";

export const OPTIMIZER_FILE = "optimizer.safetensors";
const PEFT_PREFIX = "base_model.model.";

/** Copies the tokenizer files (and, with `modelFiles`, config.json + generation_config.json) of `from`. */
export async function copyModelFiles(fs: FileSystem, from: string, to: string, modelFiles: boolean) {
  await fs.mkdir(to);
  const names = modelFiles ? ["config.json", "generation_config.json", ...TOKENIZER_FILES] : TOKENIZER_FILES;
  for (const f of names) {
    const p = fs.join(from, f);
    if (await fs.exists(p)) await fs.writeFile(fs.join(to, f), await fs.readFile(p));
  }
}

/**
 * Writes the trainable weights (PEFT adapter or model.safetensors) and, with `opt`, the AdamW moments
 * (`m.<name>`, `v.<name>`) into `dir`, from one batched readback.
 */
export async function writeTrainable(
  fs: FileSystem,
  dir: string,
  t: Trainable,
  o: { baseModel: string; model: LlamaModel; opt?: AdamW },
): Promise<void> {
  const all = new Map(t.params);
  const names = [...t.params.keys()];
  if (o.opt) {
    names.forEach((n, i) => {
      all.set(`m.${n}`, o.opt!.m[i]);
      all.set(`v.${n}`, o.opt!.v[i]);
    });
  }
  const values = await readParams(all);
  await saveTrainable(fs, dir, t, values, o);
  if (o.opt) {
    const tensors = names.flatMap((n) =>
      ["m", "v"].map((k) => ({
        name: `${k}.${n}`,
        dtype: "F32" as const,
        shape: [...t.params.get(n)!.shape],
        data: values.get(`${k}.${n}`)!,
      }))
    );
    await writeSafetensors(fs, fs.join(dir, OPTIMIZER_FILE), tensors, { format: "pt" });
  }
}

async function readAll(fs: FileSystem, path: string, strip = "") {
  const src = await openSafetensors(fs, path);
  const out = new Map<string, { shape: readonly number[]; data: Float32Array }>();
  for (const [name, info] of src.tensors) {
    out.set(name.startsWith(strip) ? name.slice(strip.length) : name, {
      shape: info.shape,
      data: (await src.read(name, "f32")) as Float32Array,
    });
  }
  return out;
}

/** Restores the trainable weights and, with `opt`, the AdamW moments written by {@link writeTrainable}. */
export async function readTrainable(fs: FileSystem, dir: string, t: Trainable, opt?: AdamW): Promise<void> {
  const weights = t.kind === "full"
    ? await readAll(fs, fs.join(dir, "model.safetensors"))
    : await readAll(fs, fs.join(dir, "adapter_model.safetensors"), PEFT_PREFIX);
  restoreParams(t, weights, dir);
  if (!opt) return;
  const moments = await readAll(fs, fs.join(dir, OPTIMIZER_FILE));
  const names = [...t.params.keys()];
  const pick = (k: string) =>
    new Map(
      names.map((n) => [n, moments.get(`${k}.${n}`)!]).filter(([, v]) => v !== undefined) as [
        string,
        { shape: readonly number[]; data: Float32Array },
      ][],
    );
  for (const [k, list] of [["m", opt.m], ["v", opt.v]] as const) {
    const m = pick(k);
    names.forEach((n, i) => {
      const v = m.get(n);
      if (!v) throw new Error(`${dir}/${OPTIMIZER_FILE}: ${k}.${n} missing`);
      list[i].write(v.data);
    });
  }
}

/** One line of trainer_log.jsonl (LLaMA-Factory's keys plus grad_norm and throughput). */
export interface LogEntry {
  current_steps: number;
  total_steps: number;
  loss?: number;
  grad_norm?: number;
  lr?: number;
  epoch: number;
  percentage: number;
  elapsed_time: string;
  remaining_time: string;
  tokens_per_second?: number;
  /** Matmul TFLOP/s reached (see the trainer's matmulFlopsPerToken). */
  model_tflops?: number;
  /** model_tflops over the GPU's fp32 FMA peak, when the host gives the peak. */
  peak_fraction?: number;
  eval_loss?: number;
  eval_token_accuracy?: number;
  /** Diagnosis accuracy of the first examples of the validation split; this is how many. */
  eval_accuracy?: number;
  eval_accuracy_samples?: number;
}

/** `h:mm:ss`, as LLaMA-Factory writes elapsed/remaining time. */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 3600)}:${String(Math.floor(s / 60) % 60).padStart(2, "0")}:${
    String(s % 60).padStart(2, "0")
  }`;
}

/** Rewrites `<dir>/trainer_log.jsonl` with every entry so far. */
export async function writeLog(fs: FileSystem, dir: string, entries: LogEntry[]): Promise<void> {
  const text = entries.map((e) => JSON.stringify(e)).join("\n") + (entries.length ? "\n" : "");
  await fs.writeFile(fs.join(dir, "trainer_log.jsonl"), new TextEncoder().encode(text));
}
