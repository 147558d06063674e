/**
 * Checkpoint ↔ model: the parameter names and shapes a ModelConfig implies, the check of a
 * checkpoint against them (both key lists and every shape, one error naming all problems), and the
 * upload of a WeightSource tensor by tensor (a 7B model never sits twice in host memory).
 */
import { Tensor } from "../tensor/mod.ts";
import type { DType, Gpu } from "../gpu/mod.ts";
import type { ModelConfig } from "../io/config.ts";
import type { WeightSource } from "../io/safetensors.ts";
import { ropeInvFreq } from "../ops/mod.ts";
import { LlamaModel } from "./llama.ts";

/**
 * Parameter name → shape, exactly as the HF checkpoint names them.
 *
 * @example
 * expectedShapes(cfg).get("model.layers.0.self_attn.k_proj.weight"); // [Hkv·D, C]
 */
export function expectedShapes(c: ModelConfig): Map<string, number[]> {
  const C = c.hiddenSize, F = c.intermediateSize, qd = c.numHeads * c.headDim, kvd = c.numKvHeads * c.headDim;
  const m = new Map<string, number[]>();
  m.set("model.embed_tokens.weight", [c.vocabSize, C]);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    m.set(`${p}.input_layernorm.weight`, [C]);
    m.set(`${p}.post_attention_layernorm.weight`, [C]);
    const proj: [string, number, number, boolean][] = [
      ["self_attn.q_proj", qd, C, c.attentionBias],
      ["self_attn.k_proj", kvd, C, c.attentionBias],
      ["self_attn.v_proj", kvd, C, c.attentionBias],
      // Qwen2 biases q/k/v only; Llama's attention_bias covers o_proj too.
      ["self_attn.o_proj", C, qd, c.attentionBias && c.modelType === "llama"],
      ["mlp.gate_proj", F, C, c.mlpBias],
      ["mlp.up_proj", F, C, c.mlpBias],
      ["mlp.down_proj", C, F, c.mlpBias],
    ];
    for (const [name, out, inF, bias] of proj) {
      m.set(`${p}.${name}.weight`, [out, inF]);
      if (bias) m.set(`${p}.${name}.bias`, [out]);
    }
  }
  m.set("model.norm.weight", [C]);
  if (!c.tieWordEmbeddings) m.set("lm_head.weight", [c.vocabSize, C]);
  return m;
}

/** Checkpoint keys that carry no parameter (old checkpoints saved RoPE buffers; tied heads). */
function ignorable(name: string, c: ModelConfig): boolean {
  return name.endsWith(".rotary_emb.inv_freq") || (c.tieWordEmbeddings && name === "lm_head.weight");
}

function list(names: string[], max = 12): string {
  if (names.length === 0) return "none";
  const shown = names.slice(0, max).join(", ");
  return names.length > max ? `${shown} … (${names.length - max} more)` : shown;
}

/**
 * Compares a checkpoint's tensors with what the config implies. Throws ONE error listing the missing
 * keys, the unexpected keys and every shape mismatch (`where` names the folder or file).
 */
export function checkParams(
  c: ModelConfig,
  found: ReadonlyMap<string, { shape: readonly number[] }>,
  where: string,
): void {
  const want = expectedShapes(c);
  const missing = [...want.keys()].filter((k) => !found.has(k));
  const unexpected = [...found.keys()].filter((k) => !want.has(k) && !ignorable(k, c));
  const shapes: string[] = [];
  for (const [k, shape] of want) {
    const got = found.get(k);
    if (got && got.shape.join() !== shape.join()) {
      shapes.push(`${k} [${got.shape}] (config wants [${shape}])`);
    }
  }
  if (missing.length || unexpected.length || shapes.length) {
    throw new Error(
      `${where}: weights do not match config.json (${c.modelType}, ${c.numLayers} layers, hidden ${c.hiddenSize}): ` +
        `missing keys: ${list(missing)}; unexpected keys: ${list(unexpected)}; shape mismatches: ${
          list(shapes)
        }`,
    );
  }
}

/**
 * Fails early, naming the tensor, when one weight would exceed the device's largest storage binding
 * (128 MiB on lavapipe and in many browsers; 2 GiB on an H200): kernels bind each tensor whole.
 */
export function checkBindingLimits(gpu: Gpu, c: ModelConfig, dtype: DType, where: string): void {
  const limit = gpu.device.limits.maxStorageBufferBindingSize;
  for (const [name, shape] of expectedShapes(c)) {
    const bytes = shape.reduce((a, b) => a * b, 1) * (shape.length === 2 && dtype === "f16" ? 2 : 4);
    if (bytes > limit) {
      throw new Error(
        `${where}: ${name} [${shape}] needs ${
          (bytes / 2 ** 20).toFixed(1)
        } MiB in one buffer binding but this GPU allows ${
          (limit / 2 ** 20).toFixed(1)
        } MiB (maxStorageBufferBindingSize)${dtype === "f32" ? "; f16 weights halve it" : ""}`,
      );
    }
  }
}

/** The storage type base weights get on this GPU: f16 with shader-f16, else f32. */
export function defaultWeightDtype(gpu: Gpu): DType {
  return gpu.info.f16 ? "f16" : "f32";
}

/** RoPE inverse frequencies for a config, as a persistent f32 tensor. */
export function invFreqOf(gpu: Gpu, c: ModelConfig): Tensor {
  return Tensor.from(gpu, ropeInvFreq(c.headDim, c.ropeTheta, c.ropeScaling), [c.headDim / 2], "f32", {
    persistent: true,
  });
}

/**
 * Builds a LlamaModel from a WeightSource: checks keys and shapes first, then uploads one tensor at a
 * time. Matrices get `dtype` (default: f16 where the GPU has shader-f16); 1-D tensors (norms, biases)
 * stay f32 — they are tiny and HF keeps them at full precision too. `where` names the source in errors.
 *
 * @example
 * const model = await modelFromWeights(gpu, config, await openSafetensors(fs, dir), dir);
 */
export async function modelFromWeights(
  gpu: Gpu,
  config: ModelConfig,
  source: WeightSource,
  where: string,
  opts: { dtype?: DType; onProgress?: (done: number, total: number) => void } = {},
): Promise<LlamaModel> {
  checkParams(config, source.tensors, where);
  const dtype = opts.dtype ?? defaultWeightDtype(gpu);
  if (dtype === "f16" && !gpu.info.f16) {
    throw new Error(`${where}: f16 weights requested but the GPU has no shader-f16`);
  }
  checkBindingLimits(gpu, config, dtype, where);
  const params = new Map<string, Tensor>();
  const shapes = expectedShapes(config);
  let done = 0;
  try {
    for (const [name, shape] of shapes) {
      const as = shape.length === 2 && dtype === "f16" ? "f16" : "f32";
      const data = await source.read(name, as);
      const t = Tensor.from(gpu, data, shape, as, { persistent: true });
      t.name = name;
      params.set(name, t);
      opts.onProgress?.(++done, shapes.size);
    }
  } catch (e) {
    for (const t of params.values()) t.dispose();
    throw e;
  }
  return new LlamaModel(gpu, config, params, invFreqOf(gpu, config), dtype);
}
