/**
 * Evaluation on the validation split: loss and next-token accuracy (one forward per batch, per-row
 * losses and argmax hits kept on the GPU and read back once at the end), and — when the answers name
 * diseases of the bundled knowledge graph — diagnosis accuracy: greedy generation from each example's
 * prompt through the inference engine, the first stated diagnosis resolved with the KG alias table
 * and compared with the reference answer's (generatedDiagnosisAccuracy in src/eval/diagnosis.ts, the
 * same code as the evaluator's; src/train imports only that text-level module, never src/eval's
 * evaluator, which sits above it).
 */
import { noGrad } from "../autograd/mod.ts";
import { crossEntropyRows, reshape } from "../ops/mod.ts";
import { Tensor, tidy } from "../tensor/mod.ts";
import type { LlamaModel } from "../model/llama.ts";
import type { SplitReader } from "../data/shards.ts";
import type { Row } from "../data/sft.ts";
import { LocalEngine } from "../engine/engine.ts";
import type { TokenDecoder } from "../engine/stop.ts";
import { buildAliasIndex, generatedDiagnosisAccuracy, resolveDiagnosis } from "../eval/diagnosis.ts";
import { medicalAliasTable } from "../data/kg_bundled.ts";

/**
 * Labels for next-token prediction: out[r, t] = labels[r, t + 1], −100 at each row's last position
 * (HF's shift inside the loss).
 */
export function shiftLabels(labels: Int32Array, rows: number, seqLen: number): Int32Array {
  const out = new Int32Array(labels.length).fill(-100);
  for (let r = 0; r < rows; r++) out.set(labels.subarray(r * seqLen + 1, (r + 1) * seqLen), r * seqLen);
  return out;
}

/** Options of {@link evaluate}. */
export interface EvaluateOptions {
  batchSize: number;
  /** Text decoding (the tokenizer) for diagnosis accuracy; without it only loss/accuracy are computed. */
  decoder?: TokenDecoder;
  eosTokenIds: number[];
  /** "auto": when at least half of the reference answers name a KG disease. */
  diagnosis?: boolean | "auto";
  maxNewTokens?: number;
  /** Prompts per generate call. */
  generateBatch?: number;
  /** Diagnosis accuracy uses the first this-many examples (default 256): generation is the slow part. */
  maxGenerate?: number;
}

/** Metrics in HF's naming (eval_ prefix), plus a few predictions to show. */
export interface EvalResult {
  metrics: Record<string, number>;
  samples: { reference: string; prediction: string }[];
}

async function allRows(reader: SplitReader): Promise<Row[]> {
  return await Promise.all(Array.from({ length: reader.rows }, (_, i) => reader.row(i)));
}

/** Loss and token accuracy over `rows` (no gradients; one readback). */
async function lossAndAccuracy(model: LlamaModel, rows: Row[], batchSize: number) {
  const gpu = model.gpu;
  const outs: { loss: Tensor; correct: Tensor; labels: Int32Array }[] = [];
  for (let s = 0; s < rows.length; s += batchSize) {
    const batch = rows.slice(s, s + batchSize);
    const T = Math.max(...batch.map((r) => r.inputIds.length)), B = batch.length;
    const ids = new Int32Array(B * T), labels = new Int32Array(B * T).fill(-100), pos = new Int32Array(B * T);
    batch.forEach((r, b) => {
      ids.set(r.inputIds, b * T);
      labels.set(r.labels, b * T);
      for (let t = 0; t < T; t++) pos[b * T + t] = t;
    });
    const shifted = shiftLabels(labels, B, T);
    const loss = Tensor.empty(gpu, [B * T], "f32", { persistent: true });
    const correct = Tensor.empty(gpu, [B * T], "u32", { persistent: true });
    noGrad(() =>
      tidy(() => {
        const h = model.forward(Tensor.from(gpu, ids, [B, T], "i32"), Tensor.from(gpu, pos, [B, T], "i32"));
        const logits = reshape(model.logits(h), [B * T, model.config.vocabSize]);
        crossEntropyRows(logits, Tensor.from(gpu, shifted, [B * T], "i32"), loss, { correctOut: correct });
      })
    );
    outs.push({ loss, correct, labels: shifted });
  }
  const bufs = await gpu.readMany(
    outs.flatMap((o) => [{ buffer: o.loss.buffer, size: o.loss.bytes }, {
      buffer: o.correct.buffer,
      size: o.correct.bytes,
    }]),
  );
  let sum = 0, hits = 0, n = 0;
  outs.forEach((o, k) => {
    const l = new Float32Array(bufs[2 * k]), c = new Uint32Array(bufs[2 * k + 1]);
    o.labels.forEach((lab, i) => {
      if (lab === -100) return;
      sum += l[i];
      hits += c[i];
      n++;
    });
    o.loss.dispose();
    o.correct.dispose();
  });
  return { loss: n ? sum / n : 0, accuracy: n ? hits / n : 0 };
}

/** Prompt ids (tokens before the first trained label) and reference answer ids (labels after it). */
function splitRow(r: Row, eos: Set<number>): { prompt: number[]; answer: number[] } {
  const first = r.labels.findIndex((l) => l !== -100);
  const answer = [...r.labels.subarray(first)].filter((l) => l !== -100 && !eos.has(l));
  return { prompt: [...r.inputIds.subarray(0, first)], answer };
}

/** The reference answer's first sentence: the diagnosis label it is scored against. */
function firstSentence(reference: string): string {
  return reference.split(/[。.\n]/)[0];
}

/**
 * Evaluates `model` on every row of `reader`.
 *
 * @example
 * const { metrics } = await evaluate(model, valReader, { batchSize: 8, decoder: tok, eosTokenIds: [1] });
 * metrics.eval_loss; metrics.eval_accuracy; // diagnosis accuracy (when the answers name diseases)
 */
export async function evaluate(
  model: LlamaModel,
  reader: SplitReader,
  o: EvaluateOptions,
): Promise<EvalResult> {
  const rows = await allRows(reader);
  const { loss, accuracy } = await lossAndAccuracy(model, rows, o.batchSize);
  const metrics: Record<string, number> = { eval_loss: loss, eval_token_accuracy: accuracy };
  const samples: EvalResult["samples"] = [];
  if (!o.decoder || o.diagnosis === false) return { metrics, samples };
  const eos = new Set(o.eosTokenIds);
  const parts = rows.map((r) => splitRow(r, eos)).filter((p) => p.prompt.length > 0)
    .slice(0, o.maxGenerate ?? 256);
  const refs = parts.map((p) => o.decoder!.decode(p.answer, { skipSpecialTokens: true }));
  const index = buildAliasIndex(medicalAliasTable());
  const known = new Set(index.exact.values());
  const named = refs.filter((r) => known.has(resolveDiagnosis(firstSentence(r), index))).length;
  if (o.diagnosis === "auto" && named * 2 < refs.length) return { metrics, samples };
  const engine = new LocalEngine(model, { decoder: o.decoder, eosTokenIds: o.eosTokenIds });
  const r = await generatedDiagnosisAccuracy(engine, parts.map((p) => p.prompt), refs.map(firstSentence), {
    batchSize: o.generateBatch ?? 32,
    request: { maxNewTokens: o.maxNewTokens ?? 32, chunkSize: 16 },
    index,
  });
  const preds = r.predictions;
  metrics.eval_accuracy = r.accuracy;
  metrics.eval_accuracy_samples = r.total;
  for (let i = 0; i < Math.min(3, preds.length); i++) {
    samples.push({ reference: refs[i], prediction: preds[i] });
  }
  return { metrics, samples };
}
