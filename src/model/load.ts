/**
 * Loading a Hugging Face model folder: config.json + safetensors (single or sharded) → LlamaModel.
 * Files come through src/io's FileSystem adapter, so this runs in Deno and in the browser alike.
 */
import type { DType, Gpu } from "../gpu/mod.ts";
import type { FileSystem } from "../io/fs.ts";
import { loadModelConfig } from "../io/config.ts";
import { openSafetensors } from "../io/safetensors.ts";
import type { LlamaModel } from "./llama.ts";
import { modelFromWeights } from "./weights.ts";

/** Options of loadModel. */
export interface LoadModelOptions {
  /** Storage of the weight matrices; default f16 where the GPU has shader-f16, else f32. */
  dtype?: DType;
  /** Called after each tensor is uploaded. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Loads `dir` (config.json + model.safetensors or model.safetensors.index.json + shards).
 * Errors name the folder and what is wrong (missing config, unsupported model_type, key/shape lists).
 *
 * @example
 * const model = await loadModel(gpu, denoFs, "models/Qwen2.5-0.5B-Instruct");
 */
export async function loadModel(
  gpu: Gpu,
  fs: FileSystem,
  dir: string,
  opts: LoadModelOptions = {},
): Promise<LlamaModel> {
  if (!(await fs.exists(dir))) throw new Error(`model folder ${dir} does not exist`);
  const config = await loadModelConfig(fs, dir);
  const source = await openSafetensors(fs, dir);
  return await modelFromWeights(gpu, config, source, dir, opts);
}
