/**
 * Inference: the engine (prefill + GPU-side decode), sampling, stop strings, and openModel() from a
 * Hugging Face folder.
 *
 * @example
 * const m = await openModel(gpu, denoFs, "models/qwen2.5-0.5b");
 * for await (const c of m.engine.stream({ prompts: [m.tokenizer.encode("Hi")], maxNewTokens: 64 })) print(c.text);
 */
export * from "./types.ts";
export { type EngineOptions, LocalEngine } from "./engine.ts";
export {
  advance,
  GREEDY,
  markSeen,
  type SamplerBuffers,
  sampleTokens,
  type SamplingParams,
} from "./sampling.ts";
export { findStop, type TokenDecoder } from "./stop.ts";
export { type OpenedModel, openModel } from "./open.ts";
