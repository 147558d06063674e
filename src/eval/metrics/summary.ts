/**
 * One call that scores a set of predictions with every metric and attaches seeded bootstrap 95%
 * intervals — the shape an evaluator writes to metrics.json. Corpus sacreBLEU is bootstrapped by
 * resampling segment statistics (computed once), so its interval costs O(B·n) additions.
 * @module
 */
import {
  bleu4Char,
  type BleuStats,
  checkPaired,
  sacreBleuFromStats,
  sacreBleuStats,
  type SacreTokenizer,
} from "./bleu.ts";
import {
  bootstrapMean,
  type BootstrapOptions,
  bootstrapStatistic,
  type ConfidenceInterval,
} from "./bootstrap.ts";
import { tokenF1 } from "./f1.ts";
import { rouge } from "./rouge.ts";
import type { Segmenter } from "./segment.ts";
import { type AliasTable, buildAliasIndex, diagnosisCorrect } from "../diagnosis.ts";

/** Metric names understood by {@link scoreAll}. */
export type MetricName = "accuracy" | "f1" | "bleu" | "sacrebleu" | "rouge";

/** Options for {@link scoreAll}. */
export interface ScoreOptions {
  /** Which metrics (default all that the inputs allow; "accuracy" needs `labels`). */
  metrics?: MetricName[];
  /** Diagnosis labels, one per prediction (for "accuracy"). */
  labels?: string[];
  /** Alias table for diagnosis matching (for "accuracy"). */
  aliases?: AliasTable;
  /** Top-k for accuracy (default 1). */
  k?: number;
  /** sacreBLEU tokenizer (default "13a"; use "zh" for Chinese references). */
  sacreTokenizer?: SacreTokenizer;
  /** Segmenter for ROUGE (default jieba). */
  segment?: Segmenter;
  /** Bootstrap settings (default 1000 resamples, seed 0, level 0.95). */
  bootstrap?: BootstrapOptions;
}

/**
 * Scores with intervals, keyed "accuracy" (0–1), "f1" (0–1), "bleu-4" (LLaMA-Factory, 0–100),
 * "sacrebleu" (0–100), "rouge-1"/"rouge-2"/"rouge-l" (0–100).
 * @example scoreAll(preds, refs, { labels, aliases, metrics: ["accuracy", "bleu"] })["bleu-4"].value
 */
export function scoreAll(
  predictions: string[],
  references: string[],
  options: ScoreOptions = {},
): Record<string, ConfidenceInterval> {
  checkPaired(predictions, references);
  const metrics = options.metrics ??
    (["f1", "bleu", "sacrebleu", "rouge", ...(options.labels ? ["accuracy" as const] : [])] as MetricName[]);
  const bs = options.bootstrap ?? {};
  const out: Record<string, ConfidenceInterval> = {};
  if (predictions.length === 0) throw new Error("scoreAll: there are no predictions to score");
  for (const m of metrics) {
    if (m === "accuracy") {
      if (!options.labels || !options.aliases) {
        throw new Error('scoreAll: "accuracy" needs labels and aliases');
      }
      checkPaired(predictions, options.labels);
      const index = buildAliasIndex(options.aliases);
      const k = options.k ?? 1;
      const perSample = predictions.map((
        p,
        i,
      ) => (diagnosisCorrect(p, options.labels![i], index, k) ? 1 : 0));
      out.accuracy = bootstrapMean(perSample, bs);
    } else if (m === "f1") {
      out.f1 = bootstrapMean(tokenF1(predictions, references).perSample, bs);
    } else if (m === "bleu") {
      out["bleu-4"] = bootstrapMean(bleu4Char(predictions, references).perSample, bs);
    } else if (m === "rouge") {
      const r = rouge(predictions, references, options.segment);
      for (const key of ["rouge-1", "rouge-2", "rouge-l"] as const) {
        out[key] = bootstrapMean(r.perSample.map((s) => s[key]), bs);
      }
    } else if (m === "sacrebleu") {
      const stats = predictions.map((p, i) =>
        sacreBleuStats(p, references[i], options.sacreTokenizer ?? "13a")
      );
      out.sacrebleu = bootstrapStatistic(
        stats.length,
        (idx) => sacreBleuFromStats(sumStats(stats, idx)).score,
        bs,
      );
    } else {
      throw new Error(`scoreAll: unknown metric "${m}" (known: accuracy, f1, bleu, sacrebleu, rouge)`);
    }
  }
  return out;
}

function sumStats(stats: BleuStats[], idx: number[]): BleuStats {
  const sum: BleuStats = { sysLen: 0, refLen: 0, correct: [0, 0, 0, 0], total: [0, 0, 0, 0] };
  for (const i of idx) {
    const s = stats[i];
    sum.sysLen += s.sysLen;
    sum.refLen += s.refLen;
    for (let n = 0; n < 4; n++) {
      sum.correct[n] += s.correct[n];
      sum.total[n] += s.total[n];
    }
  }
  return sum;
}
