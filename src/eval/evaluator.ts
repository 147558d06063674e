/**
 * The evaluator: run a predictor (our engine, or an OpenAI-compatible endpoint — see openai_client.ts)
 * over test records, then score the predictions with bootstrap intervals, per disease as well.
 *
 * Latency: each prediction carries the wall time of the request that produced it (for our engine one
 * batched generate() call, so every row of a batch has the batch's time; for an endpoint its successful
 * HTTP call, without rate-limit waits or failed attempts). It is what a caller waits for an answer at
 * that batch size / concurrency.
 * @module
 */
import type { Engine } from "../engine/types.ts";
import {
  encodePrompt,
  type Message,
  stopTokenIds,
  type Template,
  type TemplateTokenizer,
} from "../data/templates.ts";
import {
  type AliasTable,
  buildAliasIndex,
  diagnosisCorrect,
  generatedDiagnosisAccuracy,
} from "./diagnosis.ts";
import { type ConfidenceInterval, type MetricName, type SacreTokenizer, scoreAll } from "./metrics/mod.ts";
import { bootstrapMean, type BootstrapOptions } from "./metrics/bootstrap.ts";
import { diagnosisAliases, type EvalRecord, toEvalRecords } from "./records.ts";

/** What a predictor returns for one conversation. */
export interface Prediction {
  text: string;
  /** Wall time of the request that produced it (ms). */
  latencyMs: number;
  /** Generated tokens when known. */
  tokens?: number;
}

/** Anything that answers conversations: our engine or a hosted model. */
export interface Predictor {
  /** Shown in tables and plots. */
  name: string;
  /** Conversations per predict() call. */
  batchSize: number;
  predict(batch: Message[][]): Promise<Prediction[]>;
}

/** Options of {@link enginePredictor}. */
export interface EnginePredictorOptions {
  name?: string;
  /** Default 8. */
  batchSize?: number;
  /** Default 128. */
  maxNewTokens?: number;
}

/** What ends a sequence under `template`: EOS ids (stop words that are tokens) and stop strings. */
function templateStops(template: Template, tokenizer: TemplateTokenizer) {
  return {
    eosTokenIds: stopTokenIds(template, tokenizer),
    stopStrings: template.stopWords.filter((w) => tokenizer.tokenToId(w) === undefined),
  };
}

/**
 * Greedy, batched generation through an {@link Engine}, prompts built with `template` (EOS ids and the
 * template's stop words end a sequence).
 * @example const p = enginePredictor(m.engine, m.tokenizer, getTemplate("medical_inquiry"), { batchSize: 4 });
 */
export function enginePredictor(
  engine: Engine,
  tokenizer: TemplateTokenizer,
  template: Template,
  opts: EnginePredictorOptions = {},
): Predictor {
  const { eosTokenIds, stopStrings } = templateStops(template, tokenizer);
  return {
    name: opts.name ?? "model",
    batchSize: opts.batchSize ?? 8,
    async predict(batch) {
      const t0 = performance.now();
      const { sequences } = await engine.generate({
        prompts: batch.map((m) => encodePrompt(template, tokenizer, m)),
        maxNewTokens: opts.maxNewTokens ?? 128,
        eosTokenIds,
        stopStrings,
      });
      const latencyMs = performance.now() - t0;
      return sequences.map((s) => ({ text: s.text.trim(), latencyMs, tokens: s.tokenIds.length }));
    },
  };
}

/** One line of generated_predictions.jsonl (LLaMA-Factory's keys, plus ours). */
export interface PredictionRow {
  index: number;
  prompt: string;
  predict: string;
  label: string;
  /** The diagnosis label accuracy is scored against. */
  diagnosis_label: string;
  disease_id: string;
  latency_ms: number;
  tokens?: number;
  /** 1 when the first stated diagnosis matches the label (filled in by scoring with accuracy). */
  correct?: number;
}

/**
 * Runs the predictor over the records in batches of `predictor.batchSize`, in order.
 * @example const rows = await generatePredictions(p, records, { onProgress: (d, n) => console.log(d, n) });
 */
export async function generatePredictions(
  predictor: Predictor,
  records: EvalRecord[],
  opts: { onProgress?: (done: number, total: number) => void } = {},
): Promise<PredictionRow[]> {
  const rows: PredictionRow[] = [];
  const bs = Math.max(1, Math.floor(predictor.batchSize));
  for (let i = 0; i < records.length; i += bs) {
    const batch = records.slice(i, i + bs);
    const preds = await predictor.predict(batch.map((r) => r.messages));
    if (preds.length !== batch.length) {
      throw new Error(`${predictor.name}: ${preds.length} predictions for a batch of ${batch.length}`);
    }
    batch.forEach((r, j) => {
      const row: PredictionRow = {
        index: r.index,
        prompt: r.prompt,
        predict: preds[j].text,
        label: r.reference,
        diagnosis_label: r.label,
        disease_id: r.diseaseId,
        latency_ms: round(preds[j].latencyMs, 3),
      };
      if (preds[j].tokens !== undefined) row.tokens = preds[j].tokens;
      rows.push(row);
    });
    opts.onProgress?.(rows.length, records.length);
  }
  return rows;
}

/** Options of {@link scoreRows}. */
export interface ScoreRowsOptions {
  /** Default accuracy, f1, bleu, rouge. */
  metrics?: MetricName[];
  /** Default {@link diagnosisAliases}(). */
  aliases?: AliasTable;
  /** Top-k accuracy (default 1). */
  k?: number;
  bootstrap?: BootstrapOptions;
}

/** Scores of a set of predictions: what metrics.json holds. */
export interface EvalScores {
  samples: number;
  /** Metric → value with its bootstrap interval (accuracy and f1 in [0, 1], BLEU/ROUGE ×100). */
  metrics: Record<string, ConfidenceInterval>;
  /** Mean request latency (ms) with its interval. */
  latency_ms: ConfidenceInterval;
  /**
   * Accuracy of the reference answers themselves against their labels (present with "accuracy"): the
   * ceiling of a perfect model. Below 1 means the extraction misreads the references' phrasing or the
   * labels disagree with them, and accuracy is biased down by as much.
   */
  reference_accuracy?: number;
  /** disease_id → sample count and metric values (intervals too; wide with few samples). */
  per_disease: Record<string, { samples: number; metrics: Record<string, ConfidenceInterval> }>;
}

/** The CLI's metric names: accuracy, f1, bleu (LLaMA-Factory BLEU-4), sacrebleu, rouge. */
export const METRIC_NAMES: readonly MetricName[] = ["accuracy", "f1", "bleu", "sacrebleu", "rouge"];

/**
 * Scores rows (sets `row.correct` when accuracy is asked for). sacreBLEU uses its "zh" tokenizer when
 * a reference contains CJK characters, else "13a".
 * @example const s = scoreRows(rows, { metrics: ["accuracy", "bleu"] }); s.metrics.accuracy.value
 */
export function scoreRows(rows: PredictionRow[], opts: ScoreRowsOptions = {}): EvalScores {
  const metrics = opts.metrics ?? ["accuracy", "f1", "bleu", "rouge"];
  const aliases = opts.aliases ?? diagnosisAliases();
  const bs = opts.bootstrap ?? {};
  const cjk = rows.some((r) => /[\u3400-\u9fff]/u.test(r.label));
  const sacreTokenizer: SacreTokenizer = cjk ? "zh" : "13a";
  const score = (rs: PredictionRow[]) =>
    scoreAll(rs.map((r) => r.predict), rs.map((r) => r.label), {
      metrics,
      labels: rs.map((r) => r.diagnosis_label),
      aliases,
      k: opts.k,
      sacreTokenizer,
      bootstrap: bs,
    });
  let reference_accuracy: number | undefined;
  if (metrics.includes("accuracy")) {
    const index = buildAliasIndex(aliases);
    for (const r of rows) {
      r.correct = diagnosisCorrect(r.predict, r.diagnosis_label, index, opts.k ?? 1) ? 1 : 0;
    }
    const ok = rows.filter((r) => diagnosisCorrect(r.label, r.diagnosis_label, index, opts.k ?? 1)).length;
    reference_accuracy = rows.length ? ok / rows.length : 0;
  }
  const per_disease: EvalScores["per_disease"] = {};
  const groups = Map.groupBy(rows.filter((r) => r.disease_id), (r) => r.disease_id);
  for (const id of [...groups.keys()].sort()) {
    const g = groups.get(id)!;
    per_disease[id] = { samples: g.length, metrics: score(g) };
  }
  const out: EvalScores = {
    samples: rows.length,
    metrics: score(rows),
    latency_ms: bootstrapMean(rows.map((r) => r.latency_ms), bs),
    per_disease,
  };
  if (reference_accuracy !== undefined) out.reference_accuracy = reference_accuracy;
  return out;
}

/** Options of {@link evaluateDiagnosisAccuracy}. */
export interface AccuracyEvalOptions {
  /** Default 8. */
  batchSize?: number;
  /** Default 64 (the diagnosis comes first in a good answer). */
  maxNewTokens?: number;
  /** Default {@link diagnosisAliases}(). */
  aliases?: AliasTable;
  /** Top-k (default 1). */
  k?: number;
}

/**
 * Diagnosis accuracy of an in-memory model: greedy batched generation on `records` (dataset records
 * or message lists ending with the reference answer), first stated diagnosis vs the label. The
 * generate-and-score loop is {@link generatedDiagnosisAccuracy}, which the trainer's eval_accuracy
 * (src/train/evaluate.ts, from tokenised rows) shares.
 *
 * @example
 * const engine = new LocalEngine(model, { decoder: tokenizer });
 * const { accuracy } = await evaluateDiagnosisAccuracy(engine, tokenizer, getTemplate("qwen"), evalRecords, {});
 */
export async function evaluateDiagnosisAccuracy(
  engine: Engine,
  tokenizer: TemplateTokenizer,
  template: Template,
  records: unknown[],
  opts: AccuracyEvalOptions = {},
): Promise<{ accuracy: number; correct: number; total: number; predictions: string[] }> {
  const recs = toEvalRecords(template, records);
  if (recs.length === 0) throw new Error("evaluateDiagnosisAccuracy: no records");
  return await generatedDiagnosisAccuracy(
    engine,
    recs.map((r) => encodePrompt(template, tokenizer, r.messages)),
    recs.map((r) => r.label),
    {
      batchSize: opts.batchSize ?? 8,
      request: { maxNewTokens: opts.maxNewTokens ?? 64, ...templateStops(template, tokenizer) },
      index: buildAliasIndex(opts.aliases ?? diagnosisAliases()),
      k: opts.k,
    },
  );
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
