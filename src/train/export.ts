/**
 * `deno task export`: a base model folder + a PEFT adapter → one Hugging Face model folder with the
 * adapter merged (W ← W + scale·B·A in f32, src/model/adapter.ts mergeAdapters), as PEFT's
 * merge_and_unload + save_pretrained: sharded safetensors in the base's dtype (float32 / float16 /
 * bfloat16 from config.json torch_dtype), config.json, generation_config.json and the tokenizer files.
 */
import type { Gpu } from "../gpu/mod.ts";
import type { FileSystem } from "../io/fs.ts";
import { type TensorToWrite, writeSafetensors } from "../io/safetensors.ts";
import { loadModel } from "../model/load.ts";
import { loadAdapter, mergeAdapters } from "../model/adapter.ts";
import { TOKENIZER_FILES } from "./default_model.ts";

/** Options of {@link exportMerged}. */
export interface ExportOptions {
  /** Base model folder. */
  model: string;
  /** PEFT adapter folder (omit to re-save the base, e.g. to reshard it). */
  adapter?: string;
  out: string;
  /** Largest shard (default 5 GB, save_pretrained's max_shard_size). */
  maxShardBytes?: number;
}

const SAFETENSORS_DTYPE: Record<string, TensorToWrite["dtype"]> = {
  float32: "F32",
  float16: "F16",
  bfloat16: "BF16",
};

/**
 * Merges and writes; returns the number of merged layers and the files written.
 *
 * @example
 * await exportMerged(gpu, denoFs, { model: "models/qwen2.5-0.5b", adapter: "output/medical_lora", out: "output/merged" });
 */
export async function exportMerged(
  gpu: Gpu,
  fs: FileSystem,
  o: ExportOptions,
): Promise<{ merged: number; files: string[] }> {
  if (!(await fs.exists(o.model))) throw new Error(`--model ${o.model} does not exist`);
  if (o.adapter && !(await fs.exists(o.adapter))) throw new Error(`--adapter ${o.adapter} does not exist`);
  const rawConfig = JSON.parse(await fs.readText(fs.join(o.model, "config.json")));
  const torchDtype = String(rawConfig.torch_dtype ?? rawConfig.dtype ?? "float32");
  const outDtype = SAFETENSORS_DTYPE[torchDtype] ?? "F32";
  // Merge in f32 when the result is stored in f32 (or the GPU has no f16); else in f16 storage like PEFT
  // merging a half-precision model.
  const model = await loadModel(gpu, fs, o.model, {
    dtype: outDtype === "F32" || !gpu.info.f16 ? "f32" : "f16",
  });
  try {
    let merged = 0;
    if (o.adapter) {
      await loadAdapter(model, fs, o.adapter);
      merged = mergeAdapters(model);
    }
    const tensors: TensorToWrite[] = [];
    for (const [name, t] of model.params) {
      const data = await t.read();
      tensors.push({
        name,
        dtype: outDtype,
        shape: [...t.shape],
        data: data instanceof Float16Array ? data : Float32Array.from(data),
      });
    }
    await fs.mkdir(o.out);
    await writeSafetensors(fs, o.out, tensors, { format: "pt" }, { maxShardBytes: o.maxShardBytes ?? 5e9 });
    await fs.writeFile(
      fs.join(o.out, "config.json"),
      new TextEncoder().encode(JSON.stringify(rawConfig, null, 2)),
    );
    const files: string[] = [];
    // Tokenizer files: the adapter folder's (the trainer copies them there) override the base's.
    for (const f of ["generation_config.json", ...TOKENIZER_FILES]) {
      for (const dir of o.adapter ? [o.adapter, o.model] : [o.model]) {
        const p = fs.join(dir, f);
        if (await fs.exists(p)) {
          await fs.writeFile(fs.join(o.out, f), await fs.readFile(p));
          files.push(f);
          break;
        }
      }
    }
    return { merged, files: ["config.json", ...files] };
  } finally {
    model.dispose();
  }
}
