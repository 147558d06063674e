/**
 * Token-level F1 between a prediction and a reference (the SQuAD bag-of-tokens F1, with a
 * tokenisation that works for Chinese, English and both mixed).
 *
 * Tokenisation ({@link f1Tokens}), precisely:
 * 1. the text is NFKC-normalised (full-width ＡＬＳ５０％ become ALS50%) and lower-cased;
 * 2. every CJK character is one token: code points in U+3400–4DBF, U+4E00–9FFF, U+F900–FAFF,
 *    U+20000–2FFFF (Han), U+3040–30FF (kana) and U+AC00–D7AF (Hangul syllables);
 * 3. every maximal run of other letters and numbers (Unicode general category L* or N*) is one
 *    word token, so "COVID-19" gives "covid" and "19", "3.5" gives "3" and "5";
 * 4. everything else (whitespace, punctuation, symbols, marks) only separates tokens and is dropped.
 *
 * Per sample: with `common` = size of the multiset intersection, P = common / |pred|,
 * R = common / |ref|, F1 = 2PR / (P + R); 0 when nothing is in common; when either side has no
 * tokens at all, 1 if both are empty and 0 otherwise. Scores are in [0, 1].
 * Corpus: the mean of the per-sample F1 (macro average, as SQuAD reports it).
 * @module
 */
import { checkPaired } from "./bleu.ts";
import { mean } from "./text.ts";

/** True for the code points that {@link f1Tokens} turns into one token each. */
export function isCjkChar(cp: number): boolean {
  return (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x20000 && cp <= 0x2ffff) || (cp >= 0x3040 && cp <= 0x30ff) || (cp >= 0xac00 && cp <= 0xd7af);
}

const WORD_CHAR = /^[\p{L}\p{N}]$/u;

/**
 * The tokens token-F1 compares (see the module comment for the exact rules).
 * @example f1Tokens("诊断：ALS（渐冻症）") // ["诊", "断", "als", "渐", "冻", "症"]
 */
export function f1Tokens(text: string): string[] {
  const tokens: string[] = [];
  let word = "";
  for (const ch of text.normalize("NFKC").toLowerCase()) {
    if (isCjkChar(ch.codePointAt(0)!)) {
      if (word) tokens.push(word), word = "";
      tokens.push(ch);
    } else if (WORD_CHAR.test(ch)) {
      word += ch;
    } else if (word) {
      tokens.push(word), word = "";
    }
  }
  if (word) tokens.push(word);
  return tokens;
}

/**
 * Token F1 of one prediction against one reference, in [0, 1].
 * @example tokenF1Sample("the cat sat", "the cat ran") // 0.6666666666666666
 */
export function tokenF1Sample(prediction: string, reference: string): number {
  const pred = f1Tokens(prediction), ref = f1Tokens(reference);
  if (pred.length === 0 || ref.length === 0) return pred.length === ref.length ? 1 : 0;
  const refCounts = new Map<string, number>();
  for (const t of ref) refCounts.set(t, (refCounts.get(t) ?? 0) + 1);
  let common = 0;
  for (const t of pred) {
    const c = refCounts.get(t) ?? 0;
    if (c > 0) {
      common++;
      refCounts.set(t, c - 1);
    }
  }
  if (common === 0) return 0;
  const p = common / pred.length, r = common / ref.length;
  return (2 * p * r) / (p + r);
}

/** Corpus token F1: mean of {@link tokenF1Sample}, plus the per-sample values. */
export function tokenF1(predictions: string[], references: string[]): { score: number; perSample: number[] } {
  checkPaired(predictions, references);
  const perSample = predictions.map((p, i) => tokenF1Sample(p, references[i]));
  return { score: mean(perSample), perSample };
}
