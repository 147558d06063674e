/**
 * Chinese word segmentation for the word-level metrics (ROUGE): jieba, as LLaMA-Factory uses it
 * (`list(jieba.cut(text))`, i.e. precise mode with the HMM for unknown words). We use jieba-wasm,
 * a WebAssembly build of jieba-rs, which ships the same default dictionary as Python jieba 0.42.1.
 * Every metric that segments takes a `Segmenter` argument defaulting to this one, so the browser
 * (or a test) can pass another.
 * @module
 */
import { cut } from "jieba-wasm";

/** Splits text into words; must keep every character (whitespace included), like `jieba.cut`. */
export type Segmenter = (text: string) => string[];

/**
 * `list(jieba.cut(text))`: precise mode, HMM on. Non-Chinese runs come back as jieba yields them
 * (each whitespace character and each punctuation mark is its own token; ASCII words and numbers
 * such as "3.5" stay whole).
 * @example jiebaCut("我来到北京清华大学") // ["我", "来到", "北京", "清华大学"]
 */
export const jiebaCut: Segmenter = (text) => text.length === 0 ? [] : pythonAsciiRuns(cut(text, true));

/** The characters Python jieba keeps together in one block besides Chinese (its `re_han_default`). */
const BLOCK_CHARS = /^[A-Za-z0-9+#&._%\-]+$/;
/** Python jieba's HMM splitter for non-Chinese runs (`finalseg.re_skip`). */
const PY_SKIP = /([a-zA-Z0-9]+(?:\.\d+)?%?)/;
/** The only all-ASCII words in jieba's default dictionary: the DAG yields them whole. */
const ASCII_DICT_WORDS = new Set(["AT&T", "c#", "C#", "c++", "C++"]);

/**
 * One known divergence of jieba-rs from Python jieba: its HMM splitter's regex is
 * `[a-zA-Z0-9]+(?:.\d+)?%?` with an unescaped dot, so "4-6" and "COVID-19" stay whole where
 * Python jieba yields "4", "-", "6". We merge each run of consecutive all-ASCII block tokens and
 * re-split it with Python's regex (the run is exactly what Python's `finalseg.cut` sees, since
 * only the dictionary words above can interrupt it). Verified token for token against Python
 * jieba 0.42.1 on the fixtures and on generated mixed strings (tests/eval/fixtures).
 */
function pythonAsciiRuns(tokens: string[]): string[] {
  const out: string[] = [];
  let run = "";
  const flush = () => {
    if (run) { for (const piece of run.split(PY_SKIP)) if (piece) out.push(piece); }
    run = "";
  };
  for (const t of tokens) {
    if (BLOCK_CHARS.test(t) && !ASCII_DICT_WORDS.has(t)) {
      run += t;
    } else {
      flush();
      out.push(t);
    }
  }
  flush();
  return out;
}
