/**
 * Training configuration: a YAML file in either the seed's sectioned layout (`model:` / `data:` /
 * `train:` / `evaluation:`) or LLaMA-Factory's flat keys, then `key=value` overrides, normalised into
 * one {@link TrainConfig} whose field names ARE LLaMA-Factory's flat keys (interop names come from
 * outside, so a resolved config is a valid LLaMA-Factory config). Every user error names the file, the
 * line and the key as written: `config/x.yaml:7: train.learning_rate: expected a number, got "fast"`.
 */
import { isMap, isScalar, LineCounter, parseDocument, stringify } from "yaml";
import { z } from "zod";
import type { FileSystem } from "../io/fs.ts";
import { SCHEDULER_TYPES, type SchedulerType } from "./schedule.ts";
import { templateNames } from "../data/templates.ts";

const num = z.number({ error: (i) => `expected a number, got ${show(i.input)}` });
const int = num.int({ error: (i) => `expected an integer, got ${show(i.input)}` });
const bool = z.boolean({ error: (i) => `expected true or false, got ${show(i.input)}` });
const str = z.string({ error: (i) => `expected a string, got ${show(i.input)}` }).min(1, "must not be empty");
const posInt = int.min(1, "must be ≥ 1");
/** A list of names, written as a YAML list or a comma-separated string (LLaMA-Factory's style). */
const names = z.union([str, z.array(str)], {
  error: (i) => `expected a list or a comma-separated string, got ${show(i.input)}`,
})
  .transform((v) => (Array.isArray(v) ? v : v.split(",")).map((s) => s.trim()).filter((s) => s !== ""));

/** The schema of the flat keys: the source of truth for which keys exist, their types and defaults. */
const Schema = z.strictObject({
  // model
  model_name_or_path: str,
  finetuning_type: z.enum(["lora", "full"], { error: (i) => `expected lora or full, got ${show(i.input)}` })
    .default("lora"),
  lora_rank: posInt.default(8),
  /** LLaMA-Factory's default is 2 × lora_rank (filled in after parsing). */
  lora_alpha: num.positive("must be > 0").optional(),
  lora_dropout: num.min(0, "must be in [0, 1)").lt(1, "must be in [0, 1)").default(0),
  /** Module names (q_proj, …) or "all" (every linear layer of the decoder). */
  lora_target: names.default(["all"]).transform((v) => v.length === 1 && v[0] === "all" ? "all" as const : v),
  use_rslora: bool.default(false),
  // data
  dataset: names.refine((v) => v.length > 0, "needs at least one dataset name"),
  eval_dataset: names.optional(),
  dataset_dir: str.default("data"),
  template: str.default("default"),
  cutoff_len: posInt.default(2048),
  max_samples: posInt.optional(),
  val_size: num.min(0, "must be ≥ 0").default(0),
  train_on_prompt: bool.default(false),
  packing: bool.default(false),
  overwrite_cache: bool.default(false),
  // train
  stage: z.literal("sft", { error: (i) => `only sft is supported, got ${show(i.input)}` }).default("sft"),
  do_train: bool.default(true),
  learning_rate: num.positive("must be > 0").default(5e-5),
  num_train_epochs: num.positive("must be > 0").default(3),
  max_steps: int.default(-1),
  per_device_train_batch_size: posInt.default(8),
  per_device_eval_batch_size: posInt.default(8),
  gradient_accumulation_steps: posInt.default(1),
  lr_scheduler_type: z.enum(SCHEDULER_TYPES as [SchedulerType, ...SchedulerType[]], {
    error: (i) => `expected one of ${SCHEDULER_TYPES.join(", ")}, got ${show(i.input)}`,
  }).default("linear"),
  warmup_ratio: num.min(0, "must be in [0, 1]").max(1, "must be in [0, 1]").default(0),
  warmup_steps: int.min(0, "must be ≥ 0").default(0),
  weight_decay: num.min(0, "must be ≥ 0").default(0),
  max_grad_norm: num.min(0, "must be ≥ 0").default(1),
  fp16: bool.default(false),
  bf16: bool.default(false),
  gradient_checkpointing: bool.default(false),
  /**
   * webtune's addition to HF's gradient_checkpointing: with it true, recompute only this many decoder
   * layers (the first ones; the rest keep their activations and no-checkpoint speed). Unset: every
   * layer, as HF. Lets a step fit a memory budget at the least recomputation (bench/train.ts).
   */
  gradient_checkpointing_layers: int.min(0, "must be ≥ 0").optional(),
  seed: int.default(42),
  logging_steps: posInt.default(500),
  plot_loss: bool.default(true),
  save_steps: posInt.default(500),
  save_total_limit: posInt.optional(),
  output_dir: str,
  overwrite_output_dir: bool.default(false),
  /** A checkpoint path, or true for the latest checkpoint in output_dir. */
  resume_from_checkpoint: z.union([str, bool, z.null()], {
    error: (i) => `expected a path or true/false, got ${show(i.input)}`,
  }).optional().transform((v) => v === false || v === null ? undefined : v),
  // evaluation
  do_eval: bool.optional(),
  eval_steps: posInt.optional(),
  eval_strategy: z.enum(["no", "steps"], { error: (i) => `expected no or steps, got ${show(i.input)}` })
    .optional(),
  metric_for_best_model: str.optional(),
  greater_is_better: bool.optional(),
  load_best_model_at_end: bool.default(false),
});

/** The resolved configuration (LLaMA-Factory's flat key names; defaults filled in). */
export type TrainConfig = z.output<typeof Schema> & { lora_alpha: number; eval_steps: number };
/** Every flat key we accept. */
export const CONFIG_KEYS: readonly string[] = Object.keys(Schema.shape);

/**
 * Section layout of the seed (`model:`, `data:`, `train:`, `evaluation:`): every flat key may appear in
 * its section under its own name, plus the seed's names (`name_or_path`, `target_modules`, `max_length`).
 */
const SECTIONS: Record<string, { aliases: Record<string, string>; keys: string[] }> = {
  model: {
    aliases: { name_or_path: "model_name_or_path", target_modules: "lora_target" },
    keys: "model_name_or_path finetuning_type lora_rank lora_alpha lora_dropout lora_target use_rslora".split(
      " ",
    ),
  },
  data: {
    aliases: { max_length: "cutoff_len" },
    keys:
      ("dataset eval_dataset dataset_dir template cutoff_len max_samples val_size train_on_prompt packing " +
        "overwrite_cache").split(" "),
  },
  // Everything from `stage` up to the evaluation keys, in schema order.
  train: {
    aliases: {},
    keys: CONFIG_KEYS.slice(CONFIG_KEYS.indexOf("stage"), CONFIG_KEYS.indexOf("do_eval")),
  },
  evaluation: {
    aliases: {},
    keys:
      ("do_eval eval_steps eval_strategy metric_for_best_model greater_is_better load_best_model_at_end " +
        "per_device_eval_batch_size eval_dataset val_size").split(" "),
  },
};

function show(v: unknown): string {
  if (v === undefined) return "nothing";
  if (typeof v === "string") return JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

/** Closest accepted name, for "did you mean" hints (edit distance ≤ 3). */
function suggest(key: string, pool: readonly string[]): string {
  const dist = (a: string, b: string) => {
    const d = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      let prev = d[0];
      d[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const t = d[j];
        d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
        prev = t;
      }
    }
    return d[b.length];
  };
  let best = "", bd = 4;
  for (const p of pool) {
    const dd = dist(key, p);
    if (dd < bd) (best = p, bd = dd);
  }
  return best ? ` (did you mean ${best}?)` : "";
}

/** One value with where it came from, for error messages. */
interface Source {
  value: unknown;
  /** "config/x.yaml:7" or "override 'lr=1'". */
  where: string;
  /** The key as the user wrote it ("train.learning_rate"). */
  key: string;
}

function fail(s: { where: string; key: string }, msg: string): never {
  throw new Error(`${s.where}: ${s.key}: ${msg}`);
}

/** Maps a key as written (`section.key` or flat) to its flat key, or throws naming it. */
function flatKey(written: string, src: { where: string }): string {
  const dot = written.indexOf(".");
  if (dot < 0) {
    if (CONFIG_KEYS.includes(written)) return written;
    fail(
      { ...src, key: written },
      `unknown key${suggest(written, [...CONFIG_KEYS, ...Object.keys(SECTIONS)])}`,
    );
  }
  const [section, key] = [written.slice(0, dot), written.slice(dot + 1)];
  const sec = SECTIONS[section];
  if (!sec) fail({ ...src, key: written }, `unknown section${suggest(section, Object.keys(SECTIONS))}`);
  const flat = sec.aliases[key] ?? key;
  if (!sec.keys.includes(flat)) {
    fail(
      { ...src, key: written },
      `unknown key in ${section}:${suggest(key, [...sec.keys, ...Object.keys(sec.aliases)])}`,
    );
  }
  return flat;
}

/** Reads the YAML text into flat key → source, with line numbers. */
function collect(text: string, file: string): Map<string, Source> {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length) {
    const e = doc.errors[0];
    const line = e.linePos?.[0].line ?? lc.linePos(e.pos[0]).line;
    throw new Error(`${file}:${line}: not valid YAML: ${e.message.split("\n")[0]}`);
  }
  const out = new Map<string, Source>();
  if (doc.contents === null) return out;
  const lineOf = (node: unknown) => {
    const r = (node as { range?: [number, number, number] })?.range;
    return r ? lc.linePos(r[0]).line : 1;
  };
  if (!isMap(doc.contents)) throw new Error(`${file}:${lineOf(doc.contents)}: expected a mapping of keys`);
  const put = (written: string, keyNode: unknown, value: unknown) => {
    const where = `${file}:${lineOf(keyNode)}`;
    const flat = flatKey(written, { where });
    const prev = out.get(flat);
    if (prev) fail({ where, key: written }, `set twice (also as ${prev.key} at ${prev.where})`);
    out.set(flat, { value, where, key: written });
  };
  for (const pair of doc.contents.items) {
    const k = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    if (k in SECTIONS) {
      if (pair.value === null || (isScalar(pair.value) && pair.value.value === null)) continue;
      if (!isMap(pair.value)) {
        fail({ where: `${file}:${lineOf(pair.key)}`, key: k }, "expected a section of keys");
      }
      for (const inner of pair.value.items) {
        const ik = isScalar(inner.key) ? String(inner.key.value) : String(inner.key);
        put(`${k}.${ik}`, inner.key, (inner.value as { toJSON?: () => unknown })?.toJSON?.() ?? null);
      }
    } else {
      put(k, pair.key, (pair.value as { toJSON?: () => unknown })?.toJSON?.() ?? null);
    }
  }
  return out;
}

/** Scalar YAML parsing of an override value ("2e-4" → number, "true" → boolean, "[a, b]" → list). */
function parseValue(v: string): unknown {
  const doc = parseDocument(v);
  return doc.errors.length ? v : doc.toJSON();
}

/** Numbers that YAML read as strings ("2e-4" in quotes) are numbers where a number is expected. */
function coerce(key: string, v: unknown): unknown {
  const shape = Schema.shape[key as keyof typeof Schema.shape];
  const wantsNumber = shape && shape.safeParse(1).success && !shape.safeParse("x").success;
  if (wantsNumber && typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v))) return Number(v);
  return v;
}

/**
 * Parses and validates config text. `overrides` are `key=value` strings applied after the file
 * (dotted keys for sections: `train.learning_rate=1e-4`, or flat: `learning_rate=1e-4`).
 *
 * @example
 * const cfg = parseConfig(await fs.readText("config/medical_lora.yaml"), "config/medical_lora.yaml", ["train.num_train_epochs=1"]);
 */
export function parseConfig(text: string, file: string, overrides: string[] = []): TrainConfig {
  const src = collect(text, file);
  for (const o of overrides) {
    const eq = o.indexOf("=");
    const where = `override '${o}'`;
    if (eq <= 0) throw new Error(`${where}: expected key=value`);
    const written = o.slice(0, eq).trim();
    src.set(flatKey(written, { where }), { value: parseValue(o.slice(eq + 1)), where, key: written });
  }
  const raw: Record<string, unknown> = {};
  for (const [k, s] of src) raw[k] = coerce(k, s.value);
  const r = Schema.safeParse(raw);
  if (!r.success) {
    const iss = r.error.issues[0];
    const key = String(iss.path[0] ?? "");
    const s = src.get(key);
    if (!s) {
      const hint = key === "model_name_or_path" ? " (model.name_or_path)" : "";
      throw new Error(`${file}: ${key}${hint}: required key is missing`);
    }
    fail(s, iss.message);
  }
  const c = r.data as TrainConfig;
  const at = (k: string) => src.get(k) ?? { where: file, key: k };
  if (c.fp16 && c.bf16) fail(at("bf16"), "fp16 and bf16 cannot both be true");
  if (c.val_size >= 1 && !Number.isInteger(c.val_size)) {
    fail(at("val_size"), `a fraction below 1 or a whole number of examples, got ${c.val_size}`);
  }
  if (c.max_steps === 0 || c.max_steps < -1) fail(at("max_steps"), "must be > 0 (or -1 for epochs)");
  // Templates registered from files must be registered before the config is parsed.
  if (!templateNames().includes(c.template)) {
    fail(at("template"), `unknown template "${c.template}" (known: ${templateNames().join(", ")})`);
  }
  if (c.gradient_checkpointing_layers !== undefined && !c.gradient_checkpointing) {
    fail(at("gradient_checkpointing_layers"), "needs gradient_checkpointing: true");
  }
  c.lora_alpha ??= 2 * c.lora_rank;
  c.eval_steps ??= c.logging_steps;
  return c;
}

/**
 * The model's `checkpoint` option for a config: false, true (every layer) or a layer count.
 *
 * @example
 * checkpointOption(parseConfig("...gradient_checkpointing: true\ngradient_checkpointing_layers: 4", "x.yaml")); // 4
 */
export function checkpointOption(c: TrainConfig): boolean | number {
  return c.gradient_checkpointing ? c.gradient_checkpointing_layers ?? true : false;
}

/**
 * Reads, parses and validates a config file through the FileSystem adapter.
 *
 * @example
 * const cfg = await loadConfig(denoFs, "config/medical_lora.yaml", Deno.args.slice(1));
 */
export async function loadConfig(
  fs: FileSystem,
  path: string,
  overrides: string[] = [],
): Promise<TrainConfig> {
  let text: string;
  try {
    text = await fs.readText(path);
  } catch (e) {
    throw new Error(`${path}: cannot read the config file (${(e as Error).message})`);
  }
  return parseConfig(text, path, overrides);
}

/** The config as flat LLaMA-Factory YAML (keys in schema order, unset optionals left out). */
export function configToYaml(c: TrainConfig): string {
  const out: Record<string, unknown> = {};
  for (const k of CONFIG_KEYS) {
    const v = (c as Record<string, unknown>)[k];
    if (v !== undefined) out[k] = v;
  }
  return stringify(out);
}

/**
 * Writes the resolved config to `<output_dir>/training_args.yaml` (LLaMA-Factory's name); reading it
 * back with {@link parseConfig} gives the same config.
 */
export async function saveResolvedConfig(fs: FileSystem, c: TrainConfig): Promise<string> {
  await fs.mkdir(c.output_dir);
  const path = fs.join(c.output_dir, "training_args.yaml");
  await fs.writeFile(path, new TextEncoder().encode(configToYaml(c)));
  return path;
}

/**
 * The data options of {@link TrainConfig} in the shape of src/data/sft.ts's `prepareSft` (minus the
 * tokenizer and template objects). Shards are cached in `<output_dir>/sft_cache`, so rerunning a config
 * reuses them.
 */
export function sftDataOptions(c: TrainConfig) {
  return {
    datasetDir: c.dataset_dir,
    datasets: c.dataset,
    evalDatasets: c.eval_dataset,
    cutoffLen: c.cutoff_len,
    trainOnPrompt: c.train_on_prompt,
    packing: c.packing,
    maxSamples: c.max_samples,
    valSize: c.val_size,
    seed: c.seed,
    cacheDir: `${c.output_dir}/sft_cache`,
    overwriteCache: c.overwrite_cache,
  };
}
