/**
 * Hugging Face `config.json` and `generation_config.json` for the Llama family (Llama 2/3, Mistral,
 * Qwen2), validated with zod into camelCase configs. Errors name the file and the key.
 */
import { z } from "zod";
import type { FileSystem } from "./fs.ts";

/** Llama 3.1+ frequency-dependent RoPE scaling (`rope_scaling` with `rope_type: "llama3"`). */
export interface RopeScaling {
  rope_type: "llama3";
  factor: number;
  low_freq_factor: number;
  high_freq_factor: number;
  original_max_position_embeddings: number;
}

/** The architecture-defining part of `config.json`. */
export interface ModelConfig {
  modelType: "llama" | "mistral" | "qwen2";
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  /** `head_dim`, else hidden_size / num_attention_heads. */
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /**
   * Attention window in tokens, the same for every layer: Mistral's `sliding_window`; Qwen2's only when
   * `use_sliding_window` (or `layer_types`) makes every layer slide; never for Llama (HF ignores it there).
   */
  slidingWindow: number | null;
  /** Bias on q/k/v projections (always for Qwen2; `attention_bias` for Llama, which also biases o_proj). */
  attentionBias: boolean;
  /** Bias on gate/up/down projections (`mlp_bias`, Llama only). */
  mlpBias: boolean;
  bosTokenId: number | null;
  /** `eos_token_id` as a list (a single id becomes [id]; absent becomes []). */
  eosTokenId: number[];
  /** `torch_dtype` (or newer `dtype`), e.g. "bfloat16"; "float32" when absent. */
  torchDtype: string;
}

export const SUPPORTED_MODEL_TYPES = ["llama", "mistral", "qwen2"] as const;

const int = z.number().int();
const pos = int.positive();
const tokenIds = z.union([int, z.array(int), z.null()]).optional();

const Rope = z.object({
  rope_type: z.string().optional(),
  type: z.string().optional(), // older configs name it "type"
  factor: z.number().positive().optional(),
  low_freq_factor: z.number().positive().optional(),
  high_freq_factor: z.number().positive().optional(),
  original_max_position_embeddings: pos.optional(),
});

const ConfigSchema = z.object({
  model_type: z.enum(SUPPORTED_MODEL_TYPES),
  vocab_size: pos,
  hidden_size: pos,
  intermediate_size: pos,
  num_hidden_layers: pos,
  num_attention_heads: pos,
  num_key_value_heads: pos.nullish(),
  head_dim: pos.nullish(),
  hidden_act: z.literal("silu").optional(),
  rms_norm_eps: z.number().positive(),
  rope_theta: z.number().positive().nullish(),
  rope_scaling: Rope.nullish(),
  // transformers ≥ 5 writes rope_theta and the scaling into one `rope_parameters` object.
  rope_parameters: Rope.extend({
    rope_theta: z.number().positive().optional(),
    partial_rotary_factor: z.number().positive().optional(),
  }).nullish(),
  max_position_embeddings: pos,
  tie_word_embeddings: z.boolean().optional(),
  sliding_window: pos.nullish(),
  use_sliding_window: z.boolean().optional(),
  max_window_layers: int.nonnegative().nullish(),
  layer_types: z.array(z.string()).nullish(),
  attention_bias: z.boolean().optional(),
  mlp_bias: z.boolean().optional(),
  bos_token_id: tokenIds,
  eos_token_id: tokenIds,
  torch_dtype: z.string().nullish(),
  dtype: z.string().nullish(),
});

/** One line for the first zod issue: `FILE: key "a.b" expected number, got string`. */
function zodError(file: string, raw: unknown, error: z.ZodError): Error {
  const issue = error.issues[0];
  const key = issue.path.join(".");
  let value: unknown = raw;
  for (const p of issue.path) value = (value as Record<PropertyKey, unknown> | undefined)?.[p];
  if (key === "model_type" && value !== undefined) {
    return new Error(
      `${file}: model_type ${JSON.stringify(value)} is not supported (${SUPPORTED_MODEL_TYPES.join(", ")})`,
    );
  }
  if (key === "hidden_act") {
    return new Error(`${file}: hidden_act ${JSON.stringify(value)} is not supported (silu)`);
  }
  if (value === undefined) return new Error(`${file}: missing key "${key}"`);
  return new Error(
    `${file}: key "${key}": ${issue.message.replace(/^Invalid input: /, "")} (got ${JSON.stringify(value)})`,
  );
}

async function readJson(fs: FileSystem, file: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readText(file);
  } catch {
    throw new Error(`${file}: not found (${what})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

const ids = (v: number | number[] | null | undefined): number[] =>
  v == null ? [] : Array.isArray(v) ? v : [v];
const firstId = (v: number | number[] | null | undefined): number | null => ids(v)[0] ?? null;

/**
 * Parse `dir/config.json` into a {@link ModelConfig}.
 *
 * @example
 * const cfg = await loadModelConfig(denoFs, "models/Qwen2.5-0.5B-Instruct");
 * cfg.numKvHeads; // 2
 */
export async function loadModelConfig(fs: FileSystem, dir: string): Promise<ModelConfig> {
  const file = fs.join(dir, "config.json");
  const raw = await readJson(fs, file, `is ${dir} a Hugging Face model folder?`);
  const r = ConfigSchema.safeParse(raw);
  if (!r.success) throw zodError(file, raw, r.error);
  const c = r.data;
  const headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  if (!Number.isInteger(headDim)) {
    throw new Error(
      `${file}: hidden_size ${c.hidden_size} is not divisible by num_attention_heads ${c.num_attention_heads}`,
    );
  }
  const numKvHeads = c.num_key_value_heads ?? c.num_attention_heads;
  if (c.num_attention_heads % numKvHeads !== 0) {
    throw new Error(
      `${file}: num_attention_heads ${c.num_attention_heads} is not a multiple of num_key_value_heads ${numKvHeads}`,
    );
  }
  return {
    modelType: c.model_type,
    vocabSize: c.vocab_size,
    hiddenSize: c.hidden_size,
    intermediateSize: c.intermediate_size,
    numLayers: c.num_hidden_layers,
    numHeads: c.num_attention_heads,
    numKvHeads,
    headDim,
    rmsNormEps: c.rms_norm_eps,
    ropeTheta: c.rope_parameters?.rope_theta ?? c.rope_theta ?? 10000,
    ropeScaling: c.rope_parameters
      ? ropeScaling(file, "rope_parameters", c.rope_parameters)
      : ropeScaling(file, "rope_scaling", c.rope_scaling),
    maxPositionEmbeddings: c.max_position_embeddings,
    tieWordEmbeddings: c.tie_word_embeddings ?? false,
    slidingWindow: slidingWindow(file, c),
    attentionBias: c.model_type === "qwen2" ? true : c.attention_bias ?? false,
    mlpBias: c.model_type === "llama" ? c.mlp_bias ?? false : false,
    bosTokenId: firstId(c.bos_token_id),
    eosTokenId: ids(c.eos_token_id),
    torchDtype: c.torch_dtype ?? c.dtype ?? "float32",
  };
}

/** One window for all layers, or null; a config whose layers differ is rejected rather than misread. */
function slidingWindow(file: string, c: z.infer<typeof ConfigSchema>): number | null {
  // HF's Llama has no window; HF's Mistral applies sliding_window to every layer, whatever else is set.
  if (c.model_type === "llama") return null;
  if (c.model_type === "mistral") return c.sliding_window ?? null;
  let types = c.layer_types;
  if (!types) {
    // transformers' rule: with use_sliding_window, layers from max_window_layers on use the window.
    const from = c.use_sliding_window ? c.max_window_layers ?? 28 : c.num_hidden_layers; // Qwen2Config default 28
    types = Array.from(
      { length: c.num_hidden_layers },
      (_, i) => i >= from ? "sliding_attention" : "full_attention",
    );
  }
  const kinds = new Set(types);
  for (const k of kinds) {
    if (k !== "full_attention" && k !== "sliding_attention") {
      throw new Error(`${file}: layer_types holds "${k}" (full_attention, sliding_attention are supported)`);
    }
  }
  if (kinds.size > 1) {
    throw new Error(
      `${file}: some layers use a sliding window and some do not (use_sliding_window / max_window_layers / ` +
        `layer_types): per-layer windows are not supported`,
    );
  }
  return kinds.has("sliding_attention") ? c.sliding_window ?? null : null;
}

function ropeScaling(
  file: string,
  key: string,
  s: z.infer<typeof ConfigSchema>["rope_parameters"],
): RopeScaling | null {
  if (s == null) return null;
  if (s.partial_rotary_factor !== undefined && s.partial_rotary_factor !== 1) {
    throw new Error(`${file}: ${key}.partial_rotary_factor ${s.partial_rotary_factor} is not supported (1)`);
  }
  const type = s.rope_type ?? s.type;
  // rope_parameters always carries a type; "default" (or none, with only rope_theta) is plain RoPE.
  if (type === "default" || (type === undefined && key === "rope_parameters")) return null;
  if (type !== "llama3") {
    throw new Error(`${file}: ${key}.rope_type ${JSON.stringify(type)} is not supported (llama3, default)`);
  }
  for (
    const k of ["factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"] as const
  ) {
    if (s[k] === undefined) throw new Error(`${file}: missing key "${key}.${k}"`);
  }
  return {
    rope_type: "llama3",
    factor: s.factor!,
    low_freq_factor: s.low_freq_factor!,
    high_freq_factor: s.high_freq_factor!,
    original_max_position_embeddings: s.original_max_position_embeddings!,
  };
}

/** Sampling defaults from `generation_config.json`; absent fields are left to the engine's defaults. */
export interface GenerationConfig {
  eosTokenId: number[];
  bosTokenId?: number;
  padTokenId?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  repetitionPenalty?: number;
  doSample?: boolean;
  maxNewTokens?: number;
}

const GenerationSchema = z.object({
  eos_token_id: tokenIds,
  bos_token_id: tokenIds,
  pad_token_id: tokenIds,
  temperature: z.number().nonnegative().nullish(),
  top_p: z.number().positive().max(1).nullish(),
  top_k: int.nonnegative().nullish(),
  repetition_penalty: z.number().positive().nullish(),
  do_sample: z.boolean().nullish(),
  max_new_tokens: pos.nullish(),
});

/**
 * Parse `dir/generation_config.json`. When the file is absent the token ids come from `config.json`
 * (when that exists and has them) and every sampling field is undefined.
 *
 * @example
 * const gen = await loadGenerationConfig(denoFs, "models/Llama-3.2-1B-Instruct");
 * gen.eosTokenId; // [128001, 128008, 128009]
 */
export async function loadGenerationConfig(fs: FileSystem, dir: string): Promise<GenerationConfig> {
  const file = fs.join(dir, "generation_config.json");
  let raw: unknown = {};
  let source = file;
  if (await fs.exists(file)) raw = await readJson(fs, file, "");
  else {
    source = fs.join(dir, "config.json");
    if (await fs.exists(source)) raw = await readJson(fs, source, "");
    raw = {
      eos_token_id: (raw as Record<string, unknown>)?.eos_token_id,
      bos_token_id: (raw as Record<string, unknown>)?.bos_token_id,
    };
  }
  const r = GenerationSchema.safeParse(raw);
  if (!r.success) throw zodError(source, raw, r.error);
  const g = r.data;
  const out: GenerationConfig = { eosTokenId: ids(g.eos_token_id) };
  const set = <K extends keyof GenerationConfig>(k: K, v: GenerationConfig[K] | null | undefined) => {
    if (v != null) out[k] = v;
  };
  set("bosTokenId", firstId(g.bos_token_id));
  set("padTokenId", firstId(g.pad_token_id));
  set("temperature", g.temperature);
  set("topP", g.top_p);
  set("topK", g.top_k);
  set("repetitionPenalty", g.repetition_penalty);
  set("doSample", g.do_sample);
  set("maxNewTokens", g.max_new_tokens);
  return out;
}
