/**
 * PEFT LoRA adapter folders: `adapter_config.json` + `adapter_model.safetensors`, tensors named
 * `base_model.model.<module path>.lora_A.weight` ([r, in]) and `.lora_B.weight` ([out, r]); the update
 * is W + scale · B·A with scale = lora_alpha / r, or lora_alpha / √r with rsLoRA. Folders written here
 * load in PEFT (`PeftModel.from_pretrained`) and the other way round.
 */
import { z } from "zod";
import type { FileSystem } from "./fs.ts";
import { openSafetensors, type WeightSource, writeSafetensors } from "./safetensors.ts";

/** The LoRA settings of an adapter (camelCase of PEFT's LoraConfig fields we use). */
export interface PeftConfig {
  r: number;
  loraAlpha: number;
  loraDropout: number;
  /** Module names the adapter targets, e.g. ["q_proj", "v_proj"] (a PEFT regex string becomes [regex]). */
  targetModules: string[];
  useRslora: boolean;
  baseModelNameOrPath?: string;
  /** "none" is the only value whose adapters load (other values store bias tensors we do not apply). */
  bias: string;
  taskType: string;
  /** Multiplier of B·A: loraAlpha / r, or loraAlpha / √r when useRslora. */
  scale: number;
}

/** The scale PEFT applies for these settings. */
export function loraScale(r: number, alpha: number, rslora: boolean): number {
  return rslora ? alpha / Math.sqrt(r) : alpha / r;
}

const AdapterConfigSchema = z.object({
  peft_type: z.literal("LORA"),
  r: z.number().int().positive(),
  lora_alpha: z.number().positive(),
  lora_dropout: z.number().min(0).max(1).optional(),
  target_modules: z.union([z.array(z.string()), z.string()]).nullish(),
  use_rslora: z.boolean().optional(),
  use_dora: z.boolean().optional(),
  lora_bias: z.boolean().optional(),
  fan_in_fan_out: z.boolean().optional(),
  rank_pattern: z.record(z.string(), z.unknown()).nullish(),
  alpha_pattern: z.record(z.string(), z.unknown()).nullish(),
  base_model_name_or_path: z.string().nullish(),
  bias: z.string().optional(),
  task_type: z.string().nullish(),
});

/** Parse adapter_config.json; unsupported LoRA variants are rejected with the key that selects them. */
function parseConfig(file: string, raw: unknown): PeftConfig {
  const r = AdapterConfigSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    const key = issue.path.join(".");
    const value = (raw as Record<string, unknown> | null)?.[String(issue.path[0])];
    if (key === "peft_type" && value !== undefined) {
      throw new Error(`${file}: peft_type ${JSON.stringify(value)} is not supported (LORA)`);
    }
    throw new Error(
      value === undefined
        ? `${file}: missing key "${key}"`
        : `${file}: key "${key}": ${issue.message} (got ${JSON.stringify(value)})`,
    );
  }
  const c = r.data;
  if (c.use_dora) {
    throw new Error(`${file}: use_dora is true: DoRA adapters are not supported (plain LoRA only)`);
  }
  if (c.lora_bias) throw new Error(`${file}: lora_bias is true: LoRA-B biases are not supported`);
  if (c.fan_in_fan_out) {
    throw new Error(`${file}: fan_in_fan_out is true: only nn.Linear-layout adapters are supported`);
  }
  for (const k of ["rank_pattern", "alpha_pattern"] as const) {
    if (c[k] && Object.keys(c[k]).length > 0) {
      throw new Error(
        `${file}: ${k} is set: per-module ranks/alphas are not supported (one r and lora_alpha)`,
      );
    }
  }
  const targets = c.target_modules == null
    ? []
    : typeof c.target_modules === "string"
    ? [c.target_modules]
    : c.target_modules;
  const useRslora = c.use_rslora ?? false;
  const out: PeftConfig = {
    r: c.r,
    loraAlpha: c.lora_alpha,
    loraDropout: c.lora_dropout ?? 0,
    targetModules: targets,
    useRslora,
    ...(c.base_model_name_or_path ? { baseModelNameOrPath: c.base_model_name_or_path } : {}),
    bias: c.bias ?? "none",
    taskType: c.task_type ?? "CAUSAL_LM",
    scale: loraScale(c.r, c.lora_alpha, useRslora),
  };
  return out;
}

const PREFIX = "base_model.model.";
// `.lora_A.weight` as PEFT saves it; `.lora_A.default.weight` as an in-memory state dict names it.
const KEY = /^base_model\.model\.(.+)\.lora_([AB])(?:\.[A-Za-z0-9_]+)?\.weight$/;

/**
 * Load a PEFT LoRA adapter folder: its config, its weights (read lazily, tensor by tensor), and the
 * module paths it adapts (`model.layers.0.self_attn.q_proj` → the A and B tensor names). Every tensor
 * must be a lora_A/lora_B weight of a module that has both, with A = [r, in] and B = [out, r].
 *
 * @example
 * const { config, weights, modules } = await loadPeftAdapter(denoFs, "out/medical-lora");
 * for (const [path, { A, B }] of modules) lora(path).set(await weights.read(A, "f32"), await weights.read(B, "f32"));
 */
export async function loadPeftAdapter(fs: FileSystem, dir: string): Promise<{
  config: PeftConfig;
  weights: WeightSource;
  modules: Map<string, { A: string; B: string }>;
}> {
  const cfgFile = fs.join(dir, "adapter_config.json");
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readText(cfgFile));
  } catch (e) {
    const missing = !(await fs.exists(cfgFile));
    throw new Error(
      missing
        ? `${cfgFile}: not found (is ${dir} a PEFT adapter folder?)`
        : `${cfgFile}: ${(e as Error).message}`,
    );
  }
  const config = parseConfig(cfgFile, raw);
  const file = fs.join(dir, "adapter_model.safetensors");
  if (!(await fs.exists(file))) {
    const bin = await fs.exists(fs.join(dir, "adapter_model.bin"));
    throw new Error(
      `${file}: not found${
        bin ? " (adapter_model.bin is a pickle: re-save the adapter with safetensors)" : ""
      }`,
    );
  }
  const weights = await openSafetensors(fs, file);
  const parts = new Map<string, { A?: string; B?: string }>();
  for (const name of weights.tensors.keys()) {
    const m = KEY.exec(name);
    if (!m) {
      throw new Error(
        `${file}: tensor "${name}" is not a LoRA weight (${PREFIX}<module>.lora_A.weight / .lora_B.weight); ` +
          `modules_to_save, bias and embedding adapters are not supported`,
      );
    }
    const p = parts.get(m[1]) ?? {};
    if (p[m[2] as "A" | "B"]) throw new Error(`${file}: module ${m[1]} has two lora_${m[2]} tensors`);
    p[m[2] as "A" | "B"] = name;
    parts.set(m[1], p);
  }
  const modules = new Map<string, { A: string; B: string }>();
  for (const [path, { A, B }] of parts) {
    if (!A || !B) {
      throw new Error(`${file}: module ${path} has lora_${A ? "A" : "B"} but no lora_${A ? "B" : "A"}`);
    }
    const a = weights.tensors.get(A)!.shape, b = weights.tensors.get(B)!.shape;
    if (a.length !== 2 || b.length !== 2 || a[0] !== config.r || b[1] !== config.r) {
      throw new Error(
        `${file}: module ${path}: lora_A [${a}] and lora_B [${b}] do not match r=${config.r} (want A [r, in], B [out, r])`,
      );
    }
    modules.set(path, { A, B });
  }
  if (modules.size === 0) throw new Error(`${file}: no LoRA tensors`);
  return { config, weights, modules };
}

/**
 * Write a PEFT adapter folder: `adapter_model.safetensors` (F32; A as [r, in], B as [out, r]) and
 * `adapter_config.json` (peft_type LORA, task_type CAUSAL_LM, bias "none") that PEFT loads as is.
 *
 * @example
 * await savePeftAdapter(denoFs, "out/lora", config, new Map([
 *   ["model.layers.0.self_attn.q_proj", { A, B, r: 8, in: 896, out: 896 }],
 * ]));
 */
export async function savePeftAdapter(
  fs: FileSystem,
  dir: string,
  config: PeftConfig,
  tensors: Map<string, { A: Float32Array; B: Float32Array; r: number; in: number; out: number }>,
): Promise<void> {
  const list: { name: string; dtype: "F32"; shape: number[]; data: Float32Array }[] = [];
  for (const [path, t] of tensors) {
    if (t.r !== config.r) {
      throw new Error(`savePeftAdapter: module ${path} has r=${t.r}, config has r=${config.r}`);
    }
    if (t.A.length !== t.r * t.in || t.B.length !== t.out * t.r) {
      throw new Error(
        `savePeftAdapter: module ${path}: A has ${t.A.length} values (want r·in = ${t.r * t.in}), ` +
          `B has ${t.B.length} (want out·r = ${t.out * t.r})`,
      );
    }
    list.push({ name: `${PREFIX}${path}.lora_A.weight`, dtype: "F32", shape: [t.r, t.in], data: t.A });
    list.push({ name: `${PREFIX}${path}.lora_B.weight`, dtype: "F32", shape: [t.out, t.r], data: t.B });
  }
  const targets = config.targetModules.length > 0
    ? config.targetModules
    : [...new Set([...tensors.keys()].map((p) => p.slice(p.lastIndexOf(".") + 1)))].sort();
  // Field set of PEFT's LoraConfig.save_pretrained, so older and newer PEFT versions both accept it.
  const adapterConfig = {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: config.baseModelNameOrPath ?? null,
    bias: "none",
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha: config.loraAlpha,
    lora_dropout: config.loraDropout,
    modules_to_save: null,
    peft_type: "LORA",
    r: config.r,
    rank_pattern: {},
    revision: null,
    target_modules: targets,
    task_type: "CAUSAL_LM",
    use_dora: false,
    use_rslora: config.useRslora,
  };
  await fs.mkdir(dir);
  await writeSafetensors(fs, fs.join(dir, "adapter_model.safetensors"), list, { format: "pt" });
  const cfgFile = fs.join(dir, "adapter_config.json");
  await fs.writeFile(
    cfgFile + ".tmp",
    new TextEncoder().encode(JSON.stringify(adapterConfig, null, 2) + "\n"),
  );
  await fs.rename(cfgFile + ".tmp", cfgFile);
}
