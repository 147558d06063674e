/**
 * Random-weight models of real architectures, filled on the GPU (no host copies, so a 7B shape builds
 * in seconds): speed and memory can be measured without downloading a checkpoint.
 */
import { Uniforms } from "../gpu/mod.ts";
import type { DType, Gpu } from "../gpu/mod.ts";
import { Tensor } from "../tensor/mod.ts";
import { grid1d } from "../autograd/mod.ts";
import type { ModelConfig } from "../io/config.ts";
import { LlamaModel } from "./llama.ts";
import { checkBindingLimits, defaultWeightDtype, expectedShapes, invFreqOf } from "./weights.ts";

const base = {
  rmsNormEps: 1e-5,
  ropeScaling: null,
  slidingWindow: null,
  attentionBias: false,
  mlpBias: false,
  bosTokenId: null,
  torchDtype: "bfloat16",
};

/** The dimensions of public checkpoints' config.json files (`--shape` of `deno task bench`). */
export const SHAPES: Record<string, ModelConfig> = {
  "qwen2.5-0.5b": {
    ...base,
    modelType: "qwen2",
    vocabSize: 151936,
    hiddenSize: 896,
    intermediateSize: 4864,
    numLayers: 24,
    numHeads: 14,
    numKvHeads: 2,
    headDim: 64,
    rmsNormEps: 1e-6,
    ropeTheta: 1000000,
    maxPositionEmbeddings: 32768,
    tieWordEmbeddings: true,
    attentionBias: true,
    eosTokenId: [151645, 151643],
  },
  "llama-3.2-1b": {
    ...base,
    modelType: "llama",
    vocabSize: 128256,
    hiddenSize: 2048,
    intermediateSize: 8192,
    numLayers: 16,
    numHeads: 32,
    numKvHeads: 8,
    headDim: 64,
    ropeTheta: 500000,
    ropeScaling: {
      rope_type: "llama3",
      factor: 32,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 8192,
    },
    maxPositionEmbeddings: 131072,
    tieWordEmbeddings: true,
    bosTokenId: 128000,
    eosTokenId: [128001, 128008, 128009],
  },
  "mistral-7b": {
    ...base,
    modelType: "mistral",
    vocabSize: 32000,
    hiddenSize: 4096,
    intermediateSize: 14336,
    numLayers: 32,
    numHeads: 32,
    numKvHeads: 8,
    headDim: 128,
    ropeTheta: 10000,
    maxPositionEmbeddings: 32768,
    tieWordEmbeddings: false,
    slidingWindow: 4096,
    bosTokenId: 1,
    eosTokenId: [2],
  },
  /** A few-MB model for smoke runs on software adapters (lavapipe, SwiftShader). */
  tiny: {
    ...base,
    modelType: "llama",
    vocabSize: 512,
    hiddenSize: 64,
    intermediateSize: 160,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    ropeTheta: 10000,
    maxPositionEmbeddings: 4096,
    tieWordEmbeddings: false,
    eosTokenId: [1],
  },
};

/**
 * Fills `t` (f32 or f16) with uniform values in [lo, hi) from a counter-based hash of (seed, index),
 * on the GPU (kernels/sampling.wgsl fill_uniform).
 */
export function fillUniform(t: Tensor, lo: number, hi: number, seed: number): void {
  const gpu = t.gpu;
  const grid = grid1d(t.size, 256, gpu.device.limits.maxComputeWorkgroupsPerDimension);
  const u = new Uniforms();
  for (let i = 0; i < 4; i++) u.u32(0); // B, V, K, col
  u.u32(seed >>> 0).u32(0).f32(1).u32(0).f32(1).f32(1).u32(0).u32(0).u32(0).u32(t.size).u32(grid[0]).f32(lo)
    .f32(hi).u32(0);
  gpu.dispatch(
    { file: "sampling", entry: "fill_uniform", types: { ST: t.dtype } },
    { 10: t.buffer },
    grid,
    u,
  );
}

/**
 * A model of `config`'s architecture with random weights made on the GPU: matrices uniform with
 * std 1/√in, norms ≈ 1, biases small — activations stay O(1) like a trained model's.
 *
 * @example
 * const model = randomModel(gpu, SHAPES["qwen2.5-0.5b"], 0); // f16 matrices where supported
 */
export function randomModel(gpu: Gpu, config: ModelConfig, seed: number, dtype?: DType): LlamaModel {
  const wt = dtype ?? defaultWeightDtype(gpu);
  checkBindingLimits(gpu, config, wt, `random ${config.modelType}`);
  const params = new Map<string, Tensor>();
  let k = 0;
  for (const [name, shape] of expectedShapes(config)) {
    const matrix = shape.length === 2;
    const t = Tensor.empty(gpu, shape, matrix ? wt : "f32", { persistent: true });
    t.name = name;
    const s = seed * 7919 + k++;
    if (name.endsWith("norm.weight")) fillUniform(t, 0.9, 1.1, s);
    else if (!matrix) fillUniform(t, -0.1, 0.1, s);
    else {
      const a = Math.sqrt(3 / shape[1]);
      fillUniform(t, -a, a, s);
    }
    params.set(name, t);
  }
  return new LlamaModel(gpu, config, params, invFreqOf(gpu, config), wt);
}
