/**
 * A byte-level BPE tokenizer trained from text, written as a Hugging Face `tokenizer.json` (model BPE,
 * GPT-2 byte-to-unicode alphabet, the GPT-2/Llama-3 style split regex) that src/io's HfTokenizer and
 * HF `tokenizers` load unchanged. Used to build the embedded default model's tokenizer: every byte is
 * in the vocabulary (any text encodes), and merges learned from the bundled Chinese medical data make
 * frequent characters and words single tokens (a case prompt is ~70 tokens instead of ~400 bytes).
 *
 * Training is the textbook algorithm (count adjacent pairs over unique pre-tokens weighted by
 * frequency, merge the most frequent, ties broken by the pair's text) — slow but deterministic, and
 * it runs once when the tokenizer is rebuilt.
 */

/** GPT-2's reversible byte → printable character map (bytes.py `bytes_to_unicode`). */
export function byteToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) (bs.push(b), cs.push(256 + n++));
  }
  const out = new Array<string>(256);
  bs.forEach((b, i) => (out[b] = String.fromCodePoint(cs[i])));
  return out;
}

/** The split regex of HF's ByteLevel/Llama-3 pre-tokenizers (as in tests/testdata/tok_bytelevel). */
export const SPLIT_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// JavaScript has no inline (?i:…); the contractions' case does not matter for counting pairs.
const JS_SPLIT = new RegExp(SPLIT_REGEX.replace("(?i:", "(?:"), "gu");

/** Options of {@link trainBpe}. */
export interface BpeOptions {
  /** Vocabulary size including the special tokens and the 256 bytes. */
  vocabSize: number;
  /** Special tokens, ids 0, 1, … in this order (e.g. BOS, EOS, PAD). */
  specialTokens: string[];
  /** Pairs seen fewer times than this are never merged. */
  minFrequency?: number;
}

/**
 * Learns merges from `texts` and returns the tokenizer.json object. `bos` (a special token) is added by
 * the post-processor when encoding with special tokens, like Llama 3's tokenizer.
 *
 * @example
 * const json = trainBpe(texts, { vocabSize: 1536, specialTokens: ["<|begin_of_text|>", "<|end_of_text|>", "<|pad|>"] });
 */
export function trainBpe(texts: string[], o: BpeOptions & { bos?: string }): Record<string, unknown> {
  const b2u = byteToUnicode();
  const enc = new TextEncoder();
  const freq = new Map<string, number>();
  for (const t of texts) {
    for (const m of t.matchAll(JS_SPLIT)) {
      const w = [...enc.encode(m[0])].map((b) => b2u[b]).join("");
      freq.set(w, (freq.get(w) ?? 0) + 1);
    }
  }
  const words = [...freq].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([w, f]) => ({ syms: [...w], f }));
  const vocab = new Map<string, number>();
  o.specialTokens.forEach((s) => vocab.set(s, vocab.size));
  for (let b = 0; b < 256; b++) vocab.set(b2u[b], vocab.size);
  const merges: [string, string][] = [];
  const minF = o.minFrequency ?? 2;
  while (vocab.size < o.vocabSize) {
    const pairs = new Map<string, number>();
    for (const { syms, f } of words) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const k = syms[i] + "\u0000" + syms[i + 1];
        pairs.set(k, (pairs.get(k) ?? 0) + f);
      }
    }
    let best = "", bestF = 0;
    for (const [k, f] of pairs) if (f > bestF || (f === bestF && k < best)) (best = k, bestF = f);
    if (bestF < minF) break;
    const [a, b] = best.split("\u0000");
    const ab = a + b;
    merges.push([a, b]);
    if (!vocab.has(ab)) vocab.set(ab, vocab.size);
    for (const w of words) {
      const s = w.syms;
      for (let i = 0; i + 1 < s.length; i++) {
        if (s[i] === a && s[i + 1] === b) s.splice(i, 2, ab);
      }
    }
  }
  const special = o.specialTokens.map((content, id) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const bosId = o.bos === undefined ? -1 : o.specialTokens.indexOf(o.bos);
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: special,
    normalizer: null,
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: SPLIT_REGEX }, behavior: "Isolated", invert: false },
        byteLevel,
      ],
    },
    post_processor: bosId < 0 ? { ...byteLevel, trim_offsets: false } : {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: o.bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: o.bos, type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: o.bos, type_id: 0 } },
        { Sequence: { id: "B", type_id: 0 } },
      ],
      special_tokens: { [o.bos!]: { id: o.bos, ids: [bosId], tokens: [o.bos] } },
    },
    decoder: { ...byteLevel, add_prefix_space: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges,
    },
  };
}
