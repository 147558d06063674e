/**
 * What a run trains: LoRA adapters on the chosen linear layers (PEFT's init: A Kaiming-uniform, B zero;
 * scale alpha / r or alpha / √r with rsLoRA; base weights frozen), or every parameter of the model
 * (`finetuning_type: full`, f32 weights). Also the host side of saving them: PEFT adapter folders and
 * full-weight safetensors, read back from the GPU in one batched readback.
 */
import type { FileSystem } from "../io/fs.ts";
import { loraScale, type PeftConfig, savePeftAdapter } from "../io/peft.ts";
import { writeSafetensors } from "../io/safetensors.ts";
import { initLora, type LoraAdapter } from "../ops/mod.ts";
import type { LlamaModel } from "../model/llama.ts";
import type { Rng, Tensor } from "../tensor/mod.ts";

/** LoRA settings (the config's lora_* keys). */
export interface LoraSettings {
  rank: number;
  alpha: number;
  dropout: number;
  /** Module names (q_proj, …) or "all" (every linear layer of the decoder, as LLaMA-Factory). */
  target: string[] | "all";
  rslora: boolean;
}

/** The trainable side of a run. */
export interface Trainable {
  kind: "lora" | "full";
  /** Name → tensor (f32, requiresGrad): `<module path>.lora_A.weight` or HF parameter names. */
  params: Map<string, Tensor>;
  /** LoRA adapters by module path (empty for full fine-tuning). */
  adapters: Map<string, LoraAdapter>;
  settings?: LoraSettings;
}

/** Module paths of `model` that `target` selects; an unknown module name is an error listing the known. */
export function targetModules(model: LlamaModel, target: string[] | "all"): string[] {
  const paths = [...model.linears().keys()];
  if (target === "all") return paths;
  const known = new Set(paths.map((p) => p.slice(p.lastIndexOf(".") + 1)));
  const bad = target.filter((t) => !known.has(t));
  if (bad.length) {
    throw new Error(
      `lora_target: ${bad.join(", ")} not in the model (its linear layers: ${[...known].join(", ")})`,
    );
  }
  return paths.filter((p) => target.includes(p.slice(p.lastIndexOf(".") + 1)));
}

/**
 * Attaches fresh trainable adapters (A drawn from `rng` in module order, B zero) to the target layers.
 *
 * @example
 * const t = attachLora(model, { rank: 8, alpha: 16, dropout: 0, target: ["q_proj", "v_proj"], rslora: false }, rng);
 */
export function attachLora(model: LlamaModel, s: LoraSettings, rng: Rng): Trainable {
  const linears = model.linears();
  const params = new Map<string, Tensor>();
  const adapters = new Map<string, LoraAdapter>();
  for (const path of targetModules(model, s.target)) {
    const lin = linears.get(path)!;
    const { A, B } = initLora(model.gpu, lin.inFeatures, lin.outFeatures, s.rank, rng);
    A.name = `${path}.lora_A.weight`;
    B.name = `${path}.lora_B.weight`;
    const adapter: LoraAdapter = { A, B, scale: loraScale(s.rank, s.alpha, s.rslora), dropout: s.dropout };
    lin.setLora(adapter);
    adapters.set(path, adapter);
    params.set(A.name, A);
    params.set(B.name, B);
  }
  return { kind: "lora", params, adapters, settings: s };
}

/** Marks every parameter of an f32 model trainable (full fine-tuning). */
export function trainAll(model: LlamaModel): Trainable {
  if (model.dtype !== "f32") throw new Error("finetuning_type full needs f32 weights");
  const params = new Map<string, Tensor>();
  for (const [name, t] of model.params) {
    t.requiresGrad = true;
    params.set(name, t);
  }
  return { kind: "full", params, adapters: new Map() };
}

/** Reads every trainable tensor back in one readback: name → f32 values. */
export async function readParams(tensors: Map<string, Tensor>): Promise<Map<string, Float32Array>> {
  const list = [...tensors];
  if (!list.length) return new Map();
  const gpu = list[0][1].gpu;
  const bufs = await gpu.readMany(list.map(([, t]) => ({ buffer: t.buffer, size: t.bytes })));
  return new Map(list.map(([name], i) => [name, new Float32Array(bufs[i])]));
}

/** The PEFT config of a run's adapters. */
export function peftConfigOf(s: LoraSettings, baseModel: string, model: LlamaModel): PeftConfig {
  const targets = s.target === "all"
    ? [...new Set([...model.linears().keys()].map((p) => p.slice(p.lastIndexOf(".") + 1)))].sort()
    : [...s.target].sort();
  return {
    r: s.rank,
    loraAlpha: s.alpha,
    loraDropout: s.dropout,
    targetModules: targets,
    useRslora: s.rslora,
    baseModelNameOrPath: baseModel,
    bias: "none",
    taskType: "CAUSAL_LM",
    scale: loraScale(s.rank, s.alpha, s.rslora),
  };
}

/**
 * Writes the trainable weights into `dir`: a PEFT adapter folder (adapter_model.safetensors +
 * adapter_config.json) for LoRA, model.safetensors (F32, HF names) for full fine-tuning.
 * `values` comes from {@link readParams}.
 */
export async function saveTrainable(
  fs: FileSystem,
  dir: string,
  t: Trainable,
  values: Map<string, Float32Array>,
  o: { baseModel: string; model: LlamaModel },
): Promise<void> {
  if (t.kind === "full") {
    const tensors = [...t.params].map(([name, p]) => ({
      name,
      dtype: "F32" as const,
      shape: [...p.shape],
      data: values.get(name)!,
    }));
    await writeSafetensors(fs, fs.join(dir, "model.safetensors"), tensors, { format: "pt" });
    return;
  }
  const modules = new Map<string, { A: Float32Array; B: Float32Array; r: number; in: number; out: number }>();
  for (const [path, a] of t.adapters) {
    modules.set(path, {
      A: values.get(a.A.name)!,
      B: values.get(a.B.name)!,
      r: a.A.shape[0],
      in: a.A.shape[1],
      out: a.B.shape[0],
    });
  }
  await savePeftAdapter(fs, dir, peftConfigOf(t.settings!, o.baseModel, o.model), modules);
}

/**
 * Loads trainable weights saved by {@link saveTrainable} (a checkpoint) into the GPU tensors.
 * Every tensor must be present with its shape; errors name the file and tensor.
 */
export function restoreParams(
  t: Trainable,
  values: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>,
  where: string,
): void {
  for (const [name, p] of t.params) {
    const v = values.get(name);
    if (!v) throw new Error(`${where}: ${name} missing (was the checkpoint written by another config?)`);
    if (v.shape.join() !== p.shape.join()) {
      throw new Error(`${where}: ${name} has shape [${v.shape}], the run wants [${p.shape}]`);
    }
    p.write(v.data);
  }
}
