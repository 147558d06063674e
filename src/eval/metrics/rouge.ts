/**
 * ROUGE-1/2/L F-scores × 100 exactly as LLaMA-Factory reports them (ComputeSimilarity in
 * src/llamafactory/train/sft/metric.py), which calls the `rouge-chinese` package (1.0.3):
 *
 * - words: `list(jieba.cut(text))` joined with " ";
 * - rouge-chinese then cuts sentences at 。！？? (and ……, ......), collapses whitespace inside each
 *   sentence and splits on " " — sentence boundaries do not matter afterwards: n-grams and the LCS
 *   run over the concatenated word list;
 * - ROUGE-N counts DISTINCT n-grams (sets: rouge-chinese's default `exclusive=True`), so repeated
 *   n-grams count once on both sides;
 * - ROUGE-L is the plain LCS of the two word lists (rouge-chinese's "summary level" function
 *   concatenates the sentences);
 * - F = 2·P·R / (P + R + 1e-8) (the 1e-8 is rouge-chinese's), then × 100, rounded to 4 decimals;
 * - when either side has no words after whitespace splitting, all three scores are 0.
 *
 * The corpus value of each key is the mean of the rounded per-sample values.
 * @module
 */
import { jiebaCut, type Segmenter } from "./segment.ts";
import { mean, pyRound, pyRstrip, pySplit } from "./text.ts";
import { checkPaired } from "./bleu.ts";

/** The three ROUGE F-scores (× 100). */
export interface RougeScores {
  "rouge-1": number;
  "rouge-2": number;
  "rouge-l": number;
}

/** rouge-chinese's `Rouge.cut_sent`: line breaks after sentence-final punctuation, then split. */
function cutSentences(para: string): string[] {
  para = para.replace(/([。！？?])([^”’])/gu, "$1\n$2");
  para = para.replace(/(\.{6})([^”’])/gu, "$1\n$2");
  para = para.replace(/(…{2})([^”’])/gu, "$1\n$2");
  para = para.replace(/([。！？?][”’])([^，。！？?])/gu, "$1\n$2");
  return pyRstrip(para).split("\n");
}

/**
 * The word list rouge-chinese scores for one side: sentences that are non-empty before whitespace
 * collapsing are kept (so a whitespace-only sentence contributes one empty-string "word", as in
 * rouge-chinese), each becomes `" ".join(s.split())`, and all are split on " ".
 */
export function rougeWords(text: string, segment: Segmenter = jiebaCut): string[] {
  const joined = segment(text).join(" ");
  const words: string[] = [];
  for (const s of cutSentences(joined)) {
    if (s.length === 0) continue;
    words.push(...pySplit(s).join(" ").split(" "));
  }
  return words;
}

function ngramSet(words: string[], n: number): Set<string> {
  const set = new Set<string>();
  for (let i = 0; i + n <= words.length; i++) set.add(words.slice(i, i + n).join("\u0001"));
  return set;
}

function fScore(overlap: number, hypCount: number, refCount: number): number {
  const p = hypCount === 0 ? 0.0 : overlap / hypCount;
  const r = refCount === 0 ? 0.0 : overlap / refCount;
  return 2.0 * ((p * r) / (p + r + 1e-8));
}

function rougeN(hyp: string[], ref: string[], n: number): number {
  const h = ngramSet(hyp, n), r = ngramSet(ref, n);
  let overlap = 0;
  for (const g of h) if (r.has(g)) overlap++;
  return fScore(overlap, h.size, r.size);
}

/** Length of the longest common subsequence of two word lists (O(n·m) time, O(m) memory). */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  let prev = new Array<number>(b.length + 1).fill(0);
  let cur = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      cur[j] = a[i - 1] === b[j - 1] ? prev[j - 1] + 1 : Math.max(prev[j], cur[j - 1]);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length];
}

/**
 * Unrounded ROUGE F-scores in [0, 1] on word lists already prepared by {@link rougeWords}
 * (what rouge-chinese's `get_scores(...)[0][key]["f"]` returns).
 */
export function rougeFromWords(hyp: string[], ref: string[]): RougeScores {
  const lcs = lcsLength(ref, hyp);
  return {
    "rouge-1": rougeN(hyp, ref, 1),
    "rouge-2": rougeN(hyp, ref, 2),
    "rouge-l": fScore(lcs, hyp.length, ref.length),
  };
}

/**
 * LLaMA-Factory's per-sample ROUGE: jieba words, rouge-chinese F-scores, × 100, rounded to 4 places.
 * @example rougeSample("患者诊断为渐冻症", "患者诊断为渐冻症")["rouge-1"] // 100
 */
export function rougeSample(
  prediction: string,
  reference: string,
  segment: Segmenter = jiebaCut,
): RougeScores {
  const hypTokens = segment(prediction), refTokens = segment(reference);
  // LLaMA-Factory's guard: `len(" ".join(tokens).split()) == 0` on either side gives zeros.
  if (pySplit(hypTokens.join(" ")).length === 0 || pySplit(refTokens.join(" ")).length === 0) {
    return { "rouge-1": 0, "rouge-2": 0, "rouge-l": 0 };
  }
  const f = rougeFromWords(rougeWords(prediction, () => hypTokens), rougeWords(reference, () => refTokens));
  return {
    "rouge-1": pyRound(f["rouge-1"] * 100, 4),
    "rouge-2": pyRound(f["rouge-2"] * 100, 4),
    "rouge-l": pyRound(f["rouge-l"] * 100, 4),
  };
}

/** Corpus ROUGE: the mean of {@link rougeSample} per key, plus the per-sample values. */
export function rouge(
  predictions: string[],
  references: string[],
  segment: Segmenter = jiebaCut,
): RougeScores & { perSample: RougeScores[] } {
  checkPaired(predictions, references);
  const perSample = predictions.map((p, i) => rougeSample(p, references[i], segment));
  return {
    "rouge-1": mean(perSample.map((s) => s["rouge-1"])),
    "rouge-2": mean(perSample.map((s) => s["rouge-2"])),
    "rouge-l": mean(perSample.map((s) => s["rouge-l"])),
    perSample,
  };
}
