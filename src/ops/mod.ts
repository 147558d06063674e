export { add, axpy, cast, fill, invCount, mul, mulScalar, reshape, scale } from "./elementwise.ts";
export {
  canFuseGateUp,
  canFuseLinears,
  fusedLinear,
  gateUpSwiglu,
  matmul,
  matmulInto,
  type MatmulOptions,
} from "./matmul.ts";
export { addRmsNorm, rmsNorm } from "./rmsnorm.ts";
export { rope, ropeInvFreq, type RopeScaling } from "./rope.ts";
export { swiglu } from "./swiglu.ts";
export { embedding } from "./embedding.ts";
export { softmax } from "./softmax.ts";
export { countValid, crossEntropy, crossEntropyRows, gradScaleOf, lossMean } from "./cross_entropy.ts";
export { mean, sum, sumRows, sumSquares } from "./reduce.ts";
export { attention, type AttentionOptions } from "./attention.ts";
export { attentionDecode, KvCache, kvCacheWrite, ropeKvWrite } from "./attention_decode.ts";
export { dropout } from "./dropout.ts";
export { initLora, type LoraAdapter, loraLinear } from "./lora.ts";
export { lmHeadCrossEntropy, type LmHeadLossOptions } from "./lm_head_loss.ts";
export { type AdamWHyper, adamwUpdate } from "./adamw.ts";
