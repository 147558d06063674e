/**
 * BLEU in the two conventions the medical workflow reports:
 *
 * 1. LLaMA-Factory's `bleu-4` (src/llamafactory/train/sft/metric.py, ComputeSimilarity): per
 *    sample `sentence_bleu([list(label)], list(pred), smoothing_function=SmoothingFunction().method3)`
 *    from NLTK — tokens are the CHARACTERS (code points, spaces included) of the decoded strings,
 *    uniform 4-gram weights, NIST geometric smoothing — then `round(score * 100, 4)`, and the
 *    corpus value is the mean of those rounded per-sample values.
 * 2. sacreBLEU's corpus BLEU (`sacrebleu.corpus_bleu(hyps, [refs], tokenize="13a"|"zh")`, smoothing
 *    "exp", one reference per sample) and its per-sample form `sacrebleu.sentence_bleu` (same, with
 *    effective order). Scores are on sacreBLEU's 0–100 scale.
 * @module
 */
import { codePoints, fsum, mean, ngramCounts, pyRound, pyRstrip, pySplit } from "./text.ts";
import { tokenize13a, tokenizeZh } from "./sacrebleu_tokenizers.ts";

/** Clipped n-gram matches and hypothesis n-gram count for one order (NLTK's modified precision). */
function modifiedPrecision(ref: string[], hyp: string[], n: number): { num: number; den: number } {
  const hypCounts = ngramCounts(hyp, n);
  const refCounts = ngramCounts(ref, n);
  let num = 0, total = 0;
  for (const [g, c] of hypCounts) {
    num += Math.min(c, refCounts.get(g) ?? 0);
    total += c;
  }
  return { num, den: Math.max(1, total) };
}

/**
 * NLTK `sentence_bleu([ref], hyp, weights=(0.25,)*4, smoothing_function=SmoothingFunction().method3)`
 * on token lists, in [0, 1]. Zero when no unigram matches (NLTK's early return), brevity penalty
 * exp(1 - r/c) when c ≤ r, zero-match orders replaced by 1 / (2^k · den) with k = 1, 2, …
 * @example nltkSentenceBleu([..."abcde"], [..."abcdf"]) // 0.668740304976422
 */
export function nltkSentenceBleu(ref: string[], hyp: string[]): number {
  const p = [1, 2, 3, 4].map((n) => modifiedPrecision(ref, hyp, n));
  if (p[0].num === 0) return 0;
  const c = hyp.length, r = ref.length;
  const bp = c > r ? 1 : c === 0 ? 0 : Math.exp(1 - r / c);
  let k = 1;
  const logs: number[] = [];
  for (const { num, den } of p) {
    let v: number;
    if (num === 0) v = 1 / (2 ** k++ * den);
    else v = num / den;
    if (v > 0) logs.push(0.25 * Math.log(v));
  }
  return bp * Math.exp(fsum(logs));
}

/**
 * LLaMA-Factory's per-sample `bleu-4`: character-level NLTK BLEU (method 3) × 100, rounded to 4
 * decimals with Python's rounding. Characters are Unicode code points of the raw strings.
 * @example bleu4CharSample("肌萎缩侧索硬化", "肌萎缩侧索硬化") // 100
 */
export function bleu4CharSample(prediction: string, reference: string): number {
  return pyRound(nltkSentenceBleu(codePoints(reference), codePoints(prediction)) * 100, 4);
}

/**
 * LLaMA-Factory's corpus `bleu-4`: the mean of {@link bleu4CharSample} over the samples.
 * Returns `{ score, perSample }`; an empty corpus scores 0.
 */
export function bleu4Char(
  predictions: string[],
  references: string[],
): { score: number; perSample: number[] } {
  checkPaired(predictions, references);
  const perSample = predictions.map((p, i) => bleu4CharSample(p, references[i]));
  return { score: mean(perSample), perSample };
}

/** sacreBLEU's tokenizer names supported here. */
export type SacreTokenizer = "13a" | "zh";

/** sacreBLEU's sufficient statistics for one segment or a whole corpus. */
export interface BleuStats {
  sysLen: number;
  refLen: number;
  /** Matched n-grams for n = 1..4. */
  correct: number[];
  /** Hypothesis n-grams for n = 1..4. */
  total: number[];
}

/** sacreBLEU's result: score (0–100), precisions (0–100), brevity penalty and the statistics. */
export interface SacreBleuResult extends BleuStats {
  score: number;
  precisions: number[];
  bp: number;
}

function tokenizer(name: SacreTokenizer): (s: string) => string {
  return name === "zh" ? tokenizeZh : tokenize13a;
}

/** Segment statistics exactly as sacreBLEU gathers them (one reference, no lowercasing). */
export function sacreBleuStats(
  prediction: string,
  reference: string,
  tokenize: SacreTokenizer = "13a",
): BleuStats {
  const tok = tokenizer(tokenize);
  const hyp = pySplit(tok(pyRstrip(prediction)));
  const ref = pySplit(tok(pyRstrip(reference)));
  const correct = [0, 0, 0, 0], total = [0, 0, 0, 0];
  for (let n = 1; n <= 4; n++) {
    const refCounts = ngramCounts(ref, n);
    for (const [g, c] of ngramCounts(hyp, n)) {
      total[n - 1] += c;
      correct[n - 1] += Math.min(c, refCounts.get(g) ?? 0);
    }
  }
  return { sysLen: hyp.length, refLen: ref.length, correct, total };
}

/** sacreBLEU's `compute_bleu` with smooth_method "exp" (mteval's geometric smoothing). */
export function sacreBleuFromStats(stats: BleuStats, effectiveOrder = false): SacreBleuResult {
  const { sysLen, refLen, correct, total } = stats;
  let bp = 1.0;
  if (sysLen < refLen) bp = sysLen > 0 ? Math.exp(1 - refLen / sysLen) : 0.0;
  const precisions = [0, 0, 0, 0];
  const out = { ...stats, correct: [...correct], total: [...total], precisions, bp };
  if (!correct.some((c) => c !== 0)) return { ...out, score: 0 };
  let smooth = 1.0;
  let effOrder = 4;
  for (let n = 1; n <= 4; n++) {
    if (total[n - 1] === 0) break;
    if (effectiveOrder) effOrder = n;
    if (correct[n - 1] === 0) {
      smooth *= 2;
      precisions[n - 1] = 100 / (smooth * total[n - 1]);
    } else {
      precisions[n - 1] = (100 * correct[n - 1]) / total[n - 1];
    }
  }
  let logSum = 0;
  for (const p of precisions.slice(0, effOrder)) logSum += p === 0 ? -9999999999 : Math.log(p);
  return { ...out, score: bp * Math.exp(logSum / effOrder) };
}

/**
 * Corpus BLEU as `sacrebleu.corpus_bleu(predictions, [references], tokenize=...)` computes it:
 * statistics summed over segments, then one score.
 * @example sacreBleuCorpus(["the cat sat"], ["the cat sat"]).score // 100
 */
export function sacreBleuCorpus(
  predictions: string[],
  references: string[],
  tokenize: SacreTokenizer = "13a",
): SacreBleuResult {
  checkPaired(predictions, references);
  const sum: BleuStats = { sysLen: 0, refLen: 0, correct: [0, 0, 0, 0], total: [0, 0, 0, 0] };
  predictions.forEach((p, i) => {
    const s = sacreBleuStats(p, references[i], tokenize);
    sum.sysLen += s.sysLen;
    sum.refLen += s.refLen;
    for (let n = 0; n < 4; n++) {
      sum.correct[n] += s.correct[n];
      sum.total[n] += s.total[n];
    }
  });
  return sacreBleuFromStats(sum);
}

/** Per-sample sacreBLEU, as `sacrebleu.sentence_bleu(prediction, [reference], tokenize=...)` (effective order). */
export function sacreBleuSentence(
  prediction: string,
  reference: string,
  tokenize: SacreTokenizer = "13a",
): number {
  return sacreBleuFromStats(sacreBleuStats(prediction, reference, tokenize), true).score;
}

/** Throws a clear error when the two lists do not pair up. */
export function checkPaired(predictions: readonly string[], references: readonly string[]): void {
  if (predictions.length !== references.length) {
    throw new Error(
      `metrics: ${predictions.length} predictions but ${references.length} references; they must pair up one to one`,
    );
  }
}
