/**
 * PEFT LoRA adapters on a loaded model: every `base_model.model.<path>.lora_A/B.weight` pair goes onto
 * the Linear at <path> as a frozen f32 adapter (scale lora_alpha / r, or lora_alpha / √r with rsLoRA).
 * The same Linear.setLora hook takes trainable adapters during fine-tuning.
 */
import type { FileSystem } from "../io/fs.ts";
import { loadPeftAdapter, type PeftConfig } from "../io/peft.ts";
import { Tensor, tidy } from "../tensor/mod.ts";
import { noGrad } from "../autograd/mod.ts";
import { add, cast, matmul } from "../ops/mod.ts";
import type { LlamaModel } from "./llama.ts";

/** What was attached. */
export interface AttachedAdapter {
  /** The folder's last path component (shown by the CLI and the bench). */
  name: string;
  config: PeftConfig;
  /** Module paths that got an adapter. */
  modules: string[];
}

/**
 * Loads a PEFT adapter folder onto `model` (replacing adapters already attached to those modules).
 * Fails before attaching anything when a module path is not a linear layer of the model or a shape
 * does not fit, naming the folder, the module and the shapes.
 *
 * @example
 * const info = await loadAdapter(model, denoFs, "out/medical-lora"); // info.config.scale = alpha / r
 */
export async function loadAdapter(model: LlamaModel, fs: FileSystem, dir: string): Promise<AttachedAdapter> {
  const { config, weights, modules } = await loadPeftAdapter(fs, dir);
  const linears = model.linears();
  const unknown = [...modules.keys()].filter((p) => !linears.has(p));
  if (unknown.length) {
    throw new Error(
      `${dir}: adapter modules not in the model: ${unknown.slice(0, 8).join(", ")}${
        unknown.length > 8 ? ` … (${unknown.length - 8} more)` : ""
      } (model has e.g. ${[...linears.keys()][0]})`,
    );
  }
  for (const [path, { A, B }] of modules) {
    const lin = linears.get(path)!;
    const a = weights.tensors.get(A)!.shape, b = weights.tensors.get(B)!.shape;
    if (a[1] !== lin.inFeatures || b[0] !== lin.outFeatures) {
      throw new Error(
        `${dir}: ${path}: lora_A [${a}] / lora_B [${b}] do not fit the layer [${lin.outFeatures}, ${lin.inFeatures}] (is this adapter for another base model?)`,
      );
    }
  }
  const gpu = model.gpu;
  for (const [path, names] of modules) {
    const a = weights.tensors.get(names.A)!.shape, b = weights.tensors.get(names.B)!.shape;
    const A = Tensor.from(gpu, await weights.read(names.A, "f32"), a, "f32", { persistent: true });
    const B = Tensor.from(gpu, await weights.read(names.B, "f32"), b, "f32", { persistent: true });
    const lin = linears.get(path)!;
    if (lin.lora) {
      lin.lora.A.dispose();
      lin.lora.B.dispose();
    }
    lin.setLora({ A, B, scale: config.scale });
  }
  const name = dir.replace(/\/+$/, "").split("/").pop() ?? dir;
  return { name, config, modules: [...modules.keys()] };
}

/** Detaches and frees every adapter of the model. */
export function removeAdapters(model: LlamaModel): void {
  for (const lin of model.linears().values()) {
    if (!lin.lora) continue;
    lin.lora.A.dispose();
    lin.lora.B.dispose();
    lin.setLora(null);
  }
}

/**
 * Folds every attached adapter into its base weight (W ← W + scale·B·A, summed in f32, stored back in
 * W's dtype — what PEFT's merge_and_unload does) and detaches it: serving then costs what the base
 * model costs (an unmerged adapter adds two small matmuls per adapted layer per step). Not for
 * training. Returns the number of layers merged.
 *
 * @example
 * await loadAdapter(model, denoFs, "out/medical-lora"); mergeAdapters(model);
 */
export function mergeAdapters(model: LlamaModel): number {
  let n = 0;
  for (const lin of model.linears().values()) {
    const lora = lin.lora;
    if (!lora) continue;
    const old = lin.weight;
    const merged = Tensor.empty(model.gpu, old.shape, old.dtype, { persistent: true });
    noGrad(() =>
      tidy(() => {
        const delta = matmul(lora.B, lora.A, { alpha: lora.scale }); // [out, r]·[r, in]
        const w = old.dtype === "f32" ? old : cast(old, "f32");
        const sum = add(w, delta);
        const out = old.dtype === "f32" ? sum : cast(sum, old.dtype);
        model.gpu.copy(out.buffer, 0, merged.buffer, 0, Math.ceil(merged.bytes / 4) * 4);
      })
    );
    merged.name = old.name;
    model.replaceParam(`${lin.path}.weight`, merged);
    lin.weight = merged;
    old.dispose();
    lora.A.dispose();
    lora.B.dispose();
    lin.setLora(null);
    n++;
  }
  return n;
}
