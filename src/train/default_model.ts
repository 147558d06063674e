/**
 * The embedded default model: a small Llama-architecture decoder whose config and tokenizer live in
 * the repository (models/default-config/) and whose weights are drawn from a seed, so `deno task train`
 * with no arguments needs no download. It is a toy: trained from scratch on the bundled synthetic
 * cases it memorises which symptom patterns of the knowledge graph go with which of the 12 diseases;
 * it knows no medicine, no language beyond those templates, and says nothing useful about real patients.
 *
 * models/default-config/ holds config.json, generation_config.json, tokenizer.json (a byte-level BPE
 * learned from data/default/train.json by src/train/bpe.ts), tokenizer_config.json (with a chat
 * template that renders the medical_inquiry format) and webtune_init.json ({ seed, std }). Before
 * training, {@link materializeModel} writes a real Hugging Face folder (those files plus
 * model.safetensors) so that every loader downstream — the trainer, generate, serve, the browser —
 * sees an ordinary checkpoint.
 */
import type { FileSystem } from "../io/fs.ts";
import { writeSafetensors } from "../io/safetensors.ts";
import { loadModelConfig } from "../io/config.ts";
import { expectedShapes } from "../model/weights.ts";
import { Rng } from "../tensor/random.ts";
import { trainBpe } from "./bpe.ts";

/** Marks a model folder whose weights are made from a seed. */
export const INIT_FILE = "webtune_init.json";
/** Files copied from a model folder to every output (tokenizer and generation defaults). */
export const TOKENIZER_FILES = [
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "chat_template.jinja",
  "tokenizer.model",
];

const SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|pad|>"];

/** The chat template: the medical_inquiry format (BOS, system + blank line, user text, answer + EOS). */
const CHAT_TEMPLATE = "{{ bos_token }}{% for message in messages %}" +
  "{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}" +
  "{% elif message['role'] == 'user' %}{{ message['content'] }}" +
  "{% else %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}";

/**
 * The files of models/default-config/ for a vocabulary learned from `texts` and the given sizes.
 * Deterministic: the same texts give the same bytes.
 *
 * @example
 * const files = defaultModelFiles(texts, { vocabSize: 1536, hidden: 64, layers: 2 });
 */
export function defaultModelFiles(
  texts: string[],
  o: { vocabSize: number; hidden: number; layers: number; heads?: number; seed?: number },
): Record<string, string> {
  const tokenizer = trainBpe(texts, { vocabSize: o.vocabSize, specialTokens: SPECIAL, bos: SPECIAL[0] });
  const vocab = Object.keys((tokenizer.model as { vocab: object }).vocab).length;
  const heads = o.heads ?? Math.max(1, o.hidden / 32);
  const config = {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    vocab_size: vocab,
    hidden_size: o.hidden,
    intermediate_size: Math.round((o.hidden * 8) / 3 / 8) * 8,
    num_hidden_layers: o.layers,
    num_attention_heads: heads,
    num_key_value_heads: heads,
    head_dim: o.hidden / heads,
    hidden_act: "silu",
    max_position_embeddings: 512,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    attention_bias: false,
    mlp_bias: false,
    tie_word_embeddings: false,
    bos_token_id: 0,
    eos_token_id: 1,
    pad_token_id: 2,
    torch_dtype: "float32",
    initializer_range: 0.02,
  };
  const tokenizerConfig = {
    tokenizer_class: "PreTrainedTokenizerFast",
    bos_token: SPECIAL[0],
    eos_token: SPECIAL[1],
    pad_token: SPECIAL[2],
    chat_template: CHAT_TEMPLATE,
    model_max_length: 512,
    clean_up_tokenization_spaces: false,
  };
  const generation = {
    bos_token_id: 0,
    eos_token_id: 1,
    pad_token_id: 2,
    do_sample: false,
    max_new_tokens: 48,
  };
  const j = (v: unknown) => JSON.stringify(v, null, 2) + "\n";
  return {
    "config.json": j(config),
    "generation_config.json": j(generation),
    "tokenizer.json": JSON.stringify(tokenizer),
    "tokenizer_config.json": j(tokenizerConfig),
    [INIT_FILE]: j({ seed: o.seed ?? 20261129, std: 0.02 }),
  };
}

/** Whether `dir` is a seed-initialised model folder (config + webtune_init.json, no weights needed). */
export async function isSeedModel(fs: FileSystem, dir: string): Promise<boolean> {
  return await fs.exists(fs.join(dir, INIT_FILE));
}

/**
 * Writes `outDir` as a Hugging Face model folder: the config, tokenizer and generation files of `dir`
 * plus model.safetensors with weights from the seed in webtune_init.json (matrices normal with std
 * `std`, norms 1 — HF's LlamaPreTrainedModel init). Returns outDir. Reuses an existing folder written
 * from the same init file.
 *
 * @example
 * const base = await materializeModel(denoFs, "models/default-config", "output/default/base_model");
 */
export async function materializeModel(fs: FileSystem, dir: string, outDir: string): Promise<string> {
  const initText = await fs.readText(fs.join(dir, INIT_FILE));
  const init = JSON.parse(initText) as { seed: number; std: number };
  const done = fs.join(outDir, INIT_FILE);
  if ((await fs.exists(done)) && (await fs.readText(done)) === initText) return outDir;
  await fs.mkdir(outDir);
  for (const f of ["config.json", "generation_config.json", ...TOKENIZER_FILES]) {
    const p = fs.join(dir, f);
    if (await fs.exists(p)) await fs.writeFile(fs.join(outDir, f), await fs.readFile(p));
  }
  const config = await loadModelConfig(fs, dir);
  const rng = new Rng(init.seed);
  const tensors = [...expectedShapes(config)].map(([name, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (shape.length === 1) data.fill(1);
    else for (let i = 0; i < n; i++) data[i] = rng.normal() * init.std;
    return { name, dtype: "F32" as const, shape, data };
  });
  await writeSafetensors(fs, fs.join(outDir, "model.safetensors"), tensors, { format: "pt" });
  await fs.writeFile(done, new TextEncoder().encode(initText));
  return outDir;
}
