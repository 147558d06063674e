/**
 * webtune — fine-tune (LoRA) and serve Llama-family models on WebGPU with our own WGSL kernels.
 *
 * @example
 * import { createGpu, Tensor, tidy } from "./mod.ts";
 * const gpu = await createGpu();
 * const x = Tensor.from(gpu, [1, 2, 3], [3]);
 */
export * from "./src/gpu/mod.ts";
export * from "./src/tensor/mod.ts";
export * from "./src/autograd/mod.ts";
export * from "./src/ops/mod.ts";
export { AdamW } from "./src/train/optimizer.ts";
