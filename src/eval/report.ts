/**
 * Short markdown reports: one model's evaluation (metrics with intervals, per-disease breakdown, a few
 * wrong answers) and a comparison (the side-by-side table, the figure, per-model accuracy by disease).
 * @module
 */
import type { EvalScores, PredictionRow } from "./evaluator.ts";
import { type ComparedModel, comparisonTable, formatInterval } from "./compare.ts";

/** What was evaluated, for the report header. */
export interface EvalRunInfo {
  model: string;
  adapter?: string;
  test: string;
  template: string;
  /** Samples used / records in the file. */
  samples: number;
  total: number;
  seed?: number;
}

const METRIC_HELP: Record<string, string> = {
  accuracy: "first stated diagnosis = label (knowledge-graph aliases), %",
  f1: "token F1 (characters for CJK, words otherwise), %",
  "bleu-4": "LLaMA-Factory BLEU-4 (characters, smoothing method 3), mean × 100",
  sacrebleu: "corpus BLEU as sacreBLEU computes it",
  "rouge-1": "ROUGE-1 F (jieba words) × 100",
  "rouge-2": "ROUGE-2 F × 100",
  "rouge-l": "ROUGE-L F × 100",
};

/** The per-disease table: samples and each metric's value. */
function perDiseaseTable(scores: EvalScores): string {
  const ids = Object.keys(scores.per_disease);
  if (ids.length === 0) return "";
  const metrics = Object.keys(scores.metrics);
  const head = `| disease | n | ${metrics.join(" | ")} |`;
  const rule = `|${" --- |".repeat(metrics.length + 2)}`;
  const rows = ids.map((id) => {
    const d = scores.per_disease[id];
    const cells = metrics.map((m) => {
      const v = d.metrics[m]?.value;
      return v === undefined ? "–" : (m === "accuracy" || m === "f1" ? v * 100 : v).toFixed(1);
    });
    return `| ${id} | ${d.samples} | ${cells.join(" | ")} |`;
  });
  return [head, rule, ...rows].join("\n");
}

/** A warning line when the references themselves do not all score as correct. */
function ceilingNote(scores: EvalScores): string[] {
  const r = scores.reference_accuracy;
  if (r === undefined || r >= 1) return [];
  return [
    "",
    `> Note: the reference answers themselves score ${(r * 100).toFixed(1)} % accuracy against their ` +
    "labels (the diagnosis extraction misreads some of their phrasing), so accuracy here is biased down " +
    "by up to that gap.",
  ];
}

/**
 * The report of one evaluation.
 * @example await Deno.writeTextFile("out/report.md", evalReport(info, scores, rows));
 */
export function evalReport(info: EvalRunInfo, scores: EvalScores, rows: PredictionRow[]): string {
  const lines = [
    "# Evaluation report",
    "",
    `- model: \`${info.model}\`${info.adapter ? ` + adapter \`${info.adapter}\`` : ""}`,
    `- test set: \`${info.test}\` (${info.samples} of ${info.total} records` +
    (info.samples < info.total ? `, seed ${info.seed ?? 0}` : "") + `), template \`${info.template}\``,
    `- greedy decoding; intervals are bootstrap 95 % (${
      scores.metrics[Object.keys(scores.metrics)[0]]?.resamples ?? 0
    } resamples)`,
    "",
    "| metric | value [95 % interval] | meaning |",
    "| --- | --- | --- |",
    ...Object.entries(scores.metrics).map(([k, ci]) =>
      `| ${k} | ${formatInterval(k, ci)} | ${METRIC_HELP[k] ?? ""} |`
    ),
    `| latency | ${
      formatInterval("latency_ms", scores.latency_ms)
    } ms | wall time of the request (batch) per answer |`,
    ...ceilingNote(scores),
  ];
  const table = perDiseaseTable(scores);
  if (table) lines.push("", "## Per disease", "", table);
  const wrong = rows.filter((r) => r.correct === 0).slice(0, 5);
  if (wrong.length) {
    lines.push("", "## Some wrong answers", "");
    for (const r of wrong) {
      lines.push(`- #${r.index} (label ${r.diagnosis_label}): ${oneLine(r.predict)}`);
    }
  }
  return lines.join("\n") + "\n";
}

/**
 * The comparison report: the table, the figure, and accuracy per disease for every model.
 * @example await Deno.writeTextFile("out/comparison.md", comparisonReport(results, { test, template, samples: 72, total: 72 }));
 */
export function comparisonReport(
  models: ComparedModel[],
  info: { test: string; template: string; samples: number; total: number; seed?: number },
): string {
  const lines = [
    "# Model comparison",
    "",
    `Test set \`${info.test}\` (${info.samples} of ${info.total} records` +
    (info.samples < info.total ? `, seed ${info.seed ?? 0}` : "") +
    `), template \`${info.template}\`; every model answered the same samples, greedy.`,
    "",
    ...models.map((m) => `- **${m.name}**: \`${m.source}\``),
    "",
    comparisonTable(models),
    "",
    "Cells: value [bootstrap 95 % interval]; best per column in bold. Latency: wall time of the request " +
    "that produced an answer (a batch for local models; the successful HTTP call for endpoints, rate-limit " +
    "waits and retries left out).",
    "",
    "![comparison](comparison.png)",
    ...ceilingNote(models[0].scores),
  ];
  const ids = [...new Set(models.flatMap((m) => Object.keys(m.scores.per_disease)))].sort();
  if (ids.length && models.every((m) => "accuracy" in m.metrics)) {
    lines.push(
      "",
      "## Accuracy per disease (%)",
      "",
      `| disease | n | ${models.map((m) => m.name).join(" | ")} |`,
    );
    lines.push(`|${" --- |".repeat(models.length + 2)}`);
    for (const id of ids) {
      const n = models[0].scores.per_disease[id]?.samples ?? 0;
      const cells = models.map((m) => {
        const v = m.scores.per_disease[id]?.metrics.accuracy?.value;
        return v === undefined ? "–" : (v * 100).toFixed(1);
      });
      lines.push(`| ${id} | ${n} | ${cells.join(" | ")} |`);
    }
  }
  return lines.join("\n") + "\n";
}

function oneLine(s: string): string {
  const t = s.replace(/\s+/g, " ").trim();
  return t.length > 120 ? t.slice(0, 117) + "…" : t || "(empty)";
}

/** Minimal writer the output functions need (src/io's FileSystem fits). */
export interface OutputFs {
  mkdir(path: string): Promise<void>;
  writeFile(path: string, data: Uint8Array): Promise<void>;
  join(...parts: string[]): string;
}

/**
 * Writes `generated_predictions.jsonl` (one row per line), `metrics.json` (metrics with intervals,
 * latency, sample count, reference accuracy, `extra`), `per_disease.json` and `report.md` into `dir`;
 * returns the paths.
 * @example await writeEvaluation(denoFs, "output/eval", rows, scoreRows(rows), evalReport(info, scores, rows));
 */
export async function writeEvaluation(
  fs: OutputFs,
  dir: string,
  rows: PredictionRow[],
  scores: EvalScores,
  report: string,
  extra: Record<string, unknown> = {},
): Promise<string[]> {
  await fs.mkdir(dir);
  const enc = new TextEncoder();
  const { per_disease, ...summary } = scores;
  const files: [string, string][] = [
    ["generated_predictions.jsonl", rows.map((r) => JSON.stringify(r)).join("\n") + "\n"],
    ["metrics.json", JSON.stringify({ ...extra, ...summary }, null, 2) + "\n"],
    ["per_disease.json", JSON.stringify(per_disease, null, 2) + "\n"],
    ["report.md", report],
  ];
  const paths: string[] = [];
  for (const [name, text] of files) {
    const p = fs.join(dir, name);
    await fs.writeFile(p, enc.encode(text));
    paths.push(p);
  }
  return paths;
}
