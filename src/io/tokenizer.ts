/**
 * Hugging Face tokenizers from a model folder: `tokenizer.json` through @huggingface/tokenizers (byte-level
 * BPE as Llama 3 / Qwen2, SentencePiece-style BPE with byte fallback as Llama 2 / Mistral), settings and
 * special tokens from `tokenizer_config.json`, chat templates from `chat_template.jinja` or
 * `tokenizer_config.json`'s `chat_template` (a string, or a list of {name, template} where "default" is
 * used) rendered with @huggingface/jinja, as transformers' `apply_chat_template` does.
 */
import { Tokenizer } from "@huggingface/tokenizers";
import { Template } from "@huggingface/jinja";
import type { FileSystem } from "./fs.ts";

/** One chat turn. */
export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** Options of {@link HfTokenizer.applyChatTemplate}. */
export interface ChatTemplateOptions {
  /** Append the assistant header so the model answers next (HF's add_generation_prompt). */
  addGenerationPrompt?: boolean;
  /** Extra template variables, e.g. `{ enable_thinking: false }` or `{ date_string: "26 Jul 2024" }`. */
  vars?: Record<string, unknown>;
}

/** Incremental decoder: `push` returns the text the new ids add; `flush` returns what is held back. */
export interface StreamDecoder {
  push(ids: number[]): string;
  flush(): string;
}

type TokenizerConfig = Record<string, unknown>;

/** tokenizer_config.json writes a token either as "<s>" or as an AddedToken object {content: "<s>"}. */
function tokenString(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "object" && v !== null && typeof (v as { content?: unknown }).content === "string") {
    return (v as { content: string }).content;
  }
  return undefined;
}

async function readJson(fs: FileSystem, file: string): Promise<Record<string, unknown>> {
  try {
    const v = JSON.parse(await fs.readText(file));
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not a JSON object");
    return v;
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
}

/** The Metaspace replacement char when a Metaspace pre-tokenizer (alone or in a Sequence) splits. */
function metaspaceSplit(pre: unknown): string | null {
  const p = pre as { type?: string; split?: boolean; replacement?: string; pretokenizers?: unknown[] } | null;
  if (!p) return null;
  if (p.type === "Metaspace") return (p.split ?? true) ? p.replacement ?? "\u2581" : null;
  if (p.type === "Sequence") {
    for (const q of p.pretokenizers ?? []) {
      const m = metaspaceSplit(q);
      if (m !== null) return m;
    }
  }
  return null;
}

/** HF's split with MergedWithNext: "▁a▁▁b" → ["▁a", "▁", "▁b"]. */
function splitBefore(piece: string, marker: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = piece.indexOf(marker, 1); i > 0; i = piece.indexOf(marker, i + marker.length)) {
    out.push(piece.slice(start, i));
    start = i;
  }
  out.push(piece.slice(start));
  return out;
}

/** Pick the template transformers would: a string as is; from a list the "default" entry (or the only one). */
function pickTemplate(file: string, t: unknown): string | null {
  if (t == null) return null;
  if (typeof t === "string") return t;
  if (Array.isArray(t)) {
    const named = t as { name?: unknown; template?: unknown }[];
    const pick = named.find((x) => x?.name === "default") ?? (named.length === 1 ? named[0] : undefined);
    if (pick && typeof pick.template === "string") return pick.template;
    const names = named.map((x) => String(x?.name)).join(", ");
    throw new Error(`${file}: chat_template lists templates (${names}) but none is named "default"`);
  }
  throw new Error(`${file}: chat_template is neither a string nor a list of {name, template}`);
}

/**
 * A tokenizer loaded from a Hugging Face model folder.
 *
 * @example
 * const tok = await HfTokenizer.load(denoFs, "models/Qwen2.5-0.5B-Instruct");
 * const ids = tok.encodeChat([{ role: "user", content: "你好" }], { addGenerationPrompt: true });
 * const dec = tok.createStreamDecoder();
 * for (const id of generated) Deno.stdout.write(new TextEncoder().encode(dec.push([id])));
 */
export class HfTokenizer {
  /** Id of the config's `bos_token`, when it names a token. */
  readonly bosTokenId?: number;
  /** Id of the config's `eos_token` ([] when absent); merge with generation_config's list for stopping. */
  readonly eosTokenIds: number[];
  /** Every special added token (content → id), e.g. "<|im_end|>" → 151645. */
  readonly specialTokens: Map<string, number>;
  /** Number of ids the tokenizer can produce (largest id + 1). */
  readonly vocabSize: number;

  private constructor(
    private readonly tok: Tokenizer,
    private readonly config: TokenizerConfig,
    private readonly chatTemplate: string | null,
    private readonly dir: string,
  ) {
    const id = (v: unknown) => {
      const s = tokenString(v);
      return s === undefined ? undefined : tok.token_to_id(s);
    };
    this.bosTokenId = id(config.bos_token);
    const eos = id(config.eos_token);
    this.eosTokenIds = eos === undefined ? [] : [eos];
    this.specialTokens = new Map();
    for (const [tid, t] of tok.get_added_tokens_decoder()) {
      if (t.special) this.specialTokens.set(t.content, tid);
    }
    let max = -1;
    for (const v of tok.get_vocab(true).values()) max = Math.max(max, v);
    this.vocabSize = max + 1;
  }

  /**
   * Load `dir/tokenizer.json` (required), `dir/tokenizer_config.json` (optional) and the chat template.
   * Failures are one line naming the file.
   */
  static async load(fs: FileSystem, dir: string): Promise<HfTokenizer> {
    const tokFile = fs.join(dir, "tokenizer.json");
    if (!(await fs.exists(tokFile))) {
      throw new Error(
        `${tokFile}: not found (webtune needs the fast-tokenizer file tokenizer.json; tokenizer.model alone is not supported)`,
      );
    }
    const json = await readJson(fs, tokFile);
    const cfgFile = fs.join(dir, "tokenizer_config.json");
    const config: TokenizerConfig = (await fs.exists(cfgFile)) ? await readJson(fs, cfgFile) : {};
    const jinjaFile = fs.join(dir, "chat_template.jinja");
    // transformers prefers chat_template.jinja over the config's chat_template when both exist.
    const template = (await fs.exists(jinjaFile))
      ? await fs.readText(jinjaFile)
      : pickTemplate(cfgFile, config.chat_template);
    // The library reads a few settings from the config; hand it plain strings and transformers' default
    // of no clean-up (it would otherwise rewrite " ." to "." on decode, unlike HF for these models).
    const libConfig = {
      ...config,
      clean_up_tokenization_spaces: config.clean_up_tokenization_spaces ?? false,
      additional_special_tokens: Array.isArray(config.additional_special_tokens)
        ? config.additional_special_tokens.map(tokenString).filter((s) => s !== undefined)
        : [],
    };
    let tok: Tokenizer;
    try {
      tok = new Tokenizer(json, libConfig);
    } catch (e) {
      throw new Error(`${tokFile}: cannot build the tokenizer (${(e as Error).message})`);
    }
    const marker = metaspaceSplit(json.pre_tokenizer);
    if (marker !== null && tok.pre_tokenizer) {
      // The library ignores Metaspace's `split` (HF's default is true: every "▁" starts a new piece, so
      // BPE never merges across words, e.g. "▁▁" between two spaces). Split its output the same way.
      const inner = tok.pre_tokenizer;
      const split = (text: string, opts?: unknown) =>
        (inner as unknown as (t: string, o?: unknown) => string[])(text, opts).flatMap((p) =>
          splitBefore(p, marker)
        );
      tok.pre_tokenizer = split as unknown as typeof inner;
    }
    return new HfTokenizer(tok, config, template, dir);
  }

  /**
   * Token ids of `text`. `addSpecialTokens` (default true) applies the post-processor (e.g. BOS), as
   * HF's `tokenizer(text)`; pass false for HF's `encode(text, add_special_tokens=False)`.
   */
  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    return this.tok.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;
  }

  /** Text of `ids`; `skipSpecialTokens` drops special added tokens (EOS, chat markers). */
  decode(ids: number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return "";
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.tok.id_to_token(id) === undefined) {
        throw new Error(`token id ${id} is not in the vocabulary of ${this.dir} (size ${this.vocabSize})`);
      }
    }
    return this.tok.decode(ids, { skip_special_tokens: opts.skipSpecialTokens ?? false });
  }

  /** The id of one vocabulary or added token string (e.g. "<|eot_id|>"), if it exists. */
  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  /** The token string of one id, if it exists. */
  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }

  /**
   * Incremental decoding for streaming: each `push` returns the text its ids add, never splitting a
   * UTF-8 character (a byte-level or byte-fallback token can end mid-character: its text is held back
   * until the character completes). Decodes a small window of recent ids each time, the way HF's
   * TextStreamer / TGI do, so decoders that depend on context (Metaspace's leading-space strip) agree
   * with a whole decode. Special tokens are skipped unless `skipSpecialTokens` is false.
   *
   * @example
   * const d = tok.createStreamDecoder();
   * let text = "";
   * for (const id of ids) text += d.push([id]);
   * text += d.flush(); // text === tok.decode(ids, { skipSpecialTokens: true })
   */
  createStreamDecoder(opts: { skipSpecialTokens?: boolean } = {}): StreamDecoder {
    const skip = { skipSpecialTokens: opts.skipSpecialTokens ?? true };
    const ids: number[] = [];
    let prefix = 0, read = 0;
    return {
      push: (more) => {
        ids.push(...more);
        const before = this.decode(ids.slice(prefix, read), skip);
        const now = this.decode(ids.slice(prefix), skip);
        // An incomplete UTF-8 sequence decodes to U+FFFD at the end: wait for the rest of it.
        if (now.length <= before.length || now.endsWith("\uFFFD")) return "";
        prefix = read;
        read = ids.length;
        return now.slice(before.length);
      },
      flush: () => {
        const before = this.decode(ids.slice(prefix, read), skip);
        const now = this.decode(ids.slice(prefix), skip);
        prefix = read = ids.length;
        return now.slice(before.length);
      },
    };
  }

  /** True when the folder provides a chat template. */
  get hasChatTemplate(): boolean {
    return this.chatTemplate !== null;
  }

  /**
   * Render the chat template (as transformers' `apply_chat_template(tokenize=False)`): the template sees
   * `messages`, `add_generation_prompt` and the config's `bos_token` / `eos_token` / `unk_token` /
   * `pad_token` strings, `tools` / `documents` as null (as transformers passes them), and `vars` (template
   * kwargs such as `enable_thinking` or `date_string`). Tokenize the result with `addSpecialTokens: false`
   * (see {@link encodeChat}).
   */
  applyChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions = {}): string {
    if (this.chatTemplate === null) {
      throw new Error(
        `${this.dir}: no chat template (no chat_template.jinja, no chat_template in tokenizer_config.json); use a raw prompt`,
      );
    }
    const vars: Record<string, unknown> = {
      tools: null,
      documents: null,
      ...opts.vars,
      messages,
      add_generation_prompt: opts.addGenerationPrompt ?? false,
    };
    for (const k of ["bos_token", "eos_token", "unk_token", "pad_token"]) {
      const s = tokenString(this.config[k]);
      if (s !== undefined && !(k in (opts.vars ?? {}))) vars[k] = s;
    }
    try {
      return new Template(this.chatTemplate).render(vars);
    } catch (e) {
      throw new Error(`${this.dir}: chat template failed: ${(e as Error).message}`);
    }
  }

  /** Ids of the rendered chat: `encode(applyChatTemplate(messages, opts), { addSpecialTokens: false })`. */
  encodeChat(messages: ChatMessage[], opts: ChatTemplateOptions = {}): number[] {
    return this.encode(this.applyChatTemplate(messages, opts), { addSpecialTokens: false });
  }
}
