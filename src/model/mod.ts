/**
 * The Llama family (Llama 2/3, Mistral, Qwen2) with Hugging Face parameter names: loading, PEFT
 * adapters, random-weight architectures for benches.
 *
 * @example
 * const model = await loadModel(gpu, denoFs, "models/Llama-3.2-1B");
 */
export { type LlamaLayer, LlamaModel } from "./llama.ts";
export { type DecodeState, decodeStep, decodeTuning } from "./llama_decode.ts";
export {
  checkBindingLimits,
  checkParams,
  defaultWeightDtype,
  expectedShapes,
  modelFromWeights,
} from "./weights.ts";
export { loadModel, type LoadModelOptions } from "./load.ts";
export { type AttachedAdapter, loadAdapter, removeAdapters } from "./adapter.ts";
export { fillUniform, randomModel, SHAPES } from "./random.ts";
