/**
 * One call from a model folder to a ready engine: config + weights (+ PEFT adapter) + tokenizer +
 * generation_config defaults. The CLI, the server worker and the browser worker all start here.
 */
import type { DType, Gpu } from "../gpu/mod.ts";
import type { FileSystem } from "../io/fs.ts";
import { type GenerationConfig, loadGenerationConfig } from "../io/config.ts";
import { HfTokenizer } from "../io/tokenizer.ts";
import { loadModel } from "../model/load.ts";
import type { LlamaModel } from "../model/llama.ts";
import { type AttachedAdapter, loadAdapter, mergeAdapters } from "../model/adapter.ts";
import { LocalEngine } from "./engine.ts";
import { GREEDY, type SamplingParams } from "./sampling.ts";

/** A loaded model with everything generation needs. */
export interface OpenedModel {
  engine: LocalEngine;
  model: LlamaModel;
  tokenizer: HfTokenizer;
  generationConfig: GenerationConfig;
  adapter: AttachedAdapter | null;
  /** Sampling defaults from generation_config.json (HF: greedy unless do_sample). */
  defaults: SamplingParams;
  dispose(): void;
}

/**
 * Loads `dir` (and `adapter`, a PEFT folder) onto the GPU.
 *
 * @example
 * const m = await openModel(gpu, denoFs, "models/qwen2.5-0.5b", { adapter: "out/medical-lora" });
 * const { sequences } = await m.engine.generate({ prompts: [m.tokenizer.encode("Hi")], maxNewTokens: 32 });
 */
export async function openModel(
  gpu: Gpu,
  fs: FileSystem,
  dir: string,
  opts: {
    adapter?: string;
    /** Fold the adapter into the base weights (serving speed of the base model; see mergeAdapters). */
    mergeAdapter?: boolean;
    dtype?: DType;
    onProgress?: (done: number, total: number) => void;
  } = {},
): Promise<OpenedModel> {
  if (!(await fs.exists(dir))) throw new Error(`model folder ${dir} does not exist`);
  if (opts.adapter && !(await fs.exists(opts.adapter))) {
    throw new Error(`adapter folder ${opts.adapter} does not exist`);
  }
  const tokenizer = await HfTokenizer.load(fs, dir);
  const generationConfig = await loadGenerationConfig(fs, dir);
  const model = await loadModel(gpu, fs, dir, { dtype: opts.dtype, onProgress: opts.onProgress });
  let adapter: AttachedAdapter | null = null;
  try {
    if (opts.adapter) adapter = await loadAdapter(model, fs, opts.adapter);
    if (adapter && opts.mergeAdapter) mergeAdapters(model);
  } catch (e) {
    model.dispose();
    throw e;
  }
  const g = generationConfig;
  const eos = g.eosTokenId.length ? g.eosTokenId : model.config.eosTokenId;
  const defaults: SamplingParams = {
    ...GREEDY,
    doSample: g.doSample ?? false,
    temperature: g.temperature ?? 1,
    topK: g.topK ?? 50, // HF GenerationConfig default
    topP: g.topP ?? 1,
    repetitionPenalty: g.repetitionPenalty ?? 1,
  };
  const engine = new LocalEngine(model, { decoder: tokenizer, eosTokenIds: eos });
  return { engine, model, tokenizer, generationConfig, adapter, defaults, dispose: () => model.dispose() };
}
