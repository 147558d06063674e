/**
 * Test records for evaluation: dataset records (alpaca, the medical_inquiry fields, sharegpt/OpenAI
 * messages) turned into a prompt conversation, a reference answer and a diagnosis label; seeded
 * sub-sampling (the same samples for every model of a comparison); the alias table that accuracy uses.
 * @module
 */
import { type Message, renderText, type Template, toMessages } from "../data/templates.ts";
import { medicalAliasTable } from "../data/kg_bundled.ts";
import type { AliasTable } from "./diagnosis.ts";
import { extractDiagnoses } from "./diagnosis.ts";
import { mulberry32 } from "./metrics/bootstrap.ts";
import { readRecords } from "../data/formats.ts";
import type { FileSystem } from "../io/fs.ts";

/** One test case, ready for any predictor. */
export interface EvalRecord {
  /** Index in the test file (stable across sub-sampling). */
  index: number;
  /** The conversation up to (and ending with) the user turn. */
  messages: Message[];
  /** The prompt as text (template rendered, BOS/EOS left out): what generated_predictions shows. */
  prompt: string;
  /** The reference answer (the last assistant turn of the record). */
  reference: string;
  /**
   * The diagnosis label: the record's `disease_id` when present, else its `label` field, else the
   * first stated diagnosis of the reference's first sentence.
   */
  label: string;
  /** `disease_id` of the record, or "" (records of data/default carry it). */
  diseaseId: string;
}

/**
 * Reads records through a template. A record without an assistant turn at the end is an error naming
 * its index (there would be nothing to score against).
 * @example toEvalRecords(getTemplate("medical_inquiry"), JSON.parse(await Deno.readTextFile("data/default/test.json")))
 */
export function toEvalRecords(t: Template, records: unknown[]): EvalRecord[] {
  return records.map((raw, index) => {
    if (!raw || typeof raw !== "object") throw new Error(`record ${index}: expected an object or a list`);
    let msgs: Message[];
    try {
      msgs = toMessages(t, raw as Message[] | Record<string, unknown>);
    } catch (e) {
      throw new Error(`record ${index}: ${(e as Error).message}`);
    }
    const last = msgs[msgs.length - 1];
    if (!last || last.role !== "assistant") {
      throw new Error(`record ${index}: the conversation must end with the assistant's reference answer`);
    }
    const messages = msgs.slice(0, -1);
    const rec = Array.isArray(raw) ? {} : raw as Record<string, unknown>;
    const diseaseId = typeof rec.disease_id === "string" ? rec.disease_id : "";
    const label = diseaseId || (typeof rec.label === "string" && rec.label) || firstDiagnosis(last.content);
    let prompt: string;
    try {
      prompt = renderText(t, messages, { addGenerationPrompt: true });
    } catch (e) {
      throw new Error(`record ${index}: ${(e as Error).message}`);
    }
    return { index, messages, prompt, reference: last.content, label, diseaseId };
  });
}

/** The first diagnosis stated in the first sentence of a reference answer. */
function firstDiagnosis(reference: string): string {
  const first = reference.trim().split(/[。；;\n]|\.(?:\s|$)/u)[0] ?? "";
  return extractDiagnoses(first, 1)[0] ?? first.trim();
}

/**
 * `n` records chosen by a seeded shuffle (all of them, in file order, when `n` is undefined or ≥ the
 * count). The choice depends only on (count, n, seed), so every model of a comparison sees the same
 * samples.
 * @example sampleRecords(records, 50, 42).map((r) => r.index)
 */
export function sampleRecords<T>(records: T[], n: number | undefined, seed = 0): T[] {
  if (n === undefined || n >= records.length) return records.slice();
  if (!Number.isInteger(n) || n < 1) throw new Error(`num_samples must be a positive integer, got ${n}`);
  const rand = mulberry32(seed);
  const idx = records.map((_, i) => i);
  for (let i = idx.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx.slice(0, n).sort((a, b) => a - b).map((i) => records[i]);
}

/**
 * The alias table for diagnosis accuracy: every name and alias of the bundled knowledge graph, plus
 * each disease id mapped to itself (so a `disease_id` label resolves exactly).
 * @example diagnosisAliases().get("渐冻症") // "als"; diagnosisAliases().get("als") // "als"
 */
export function diagnosisAliases(extra?: AliasTable): AliasTable {
  const t = medicalAliasTable();
  for (const id of new Set(t.values())) t.set(id, id);
  for (const [k, v] of extra ?? []) t.set(k, v);
  return t;
}

/**
 * Reads a test set: `test` is a file (JSON array or JSON Lines) or a dataset name registered in
 * `<datasetDir>/dataset_info.json`. Errors name the file and the line.
 * @example const { path, records } = await loadTestRecords(denoFs, "medical_default_test", "data");
 */
export async function loadTestRecords(
  fs: Pick<FileSystem, "exists" | "readText" | "join">,
  test: string,
  datasetDir = "data",
): Promise<{ path: string; records: unknown[] }> {
  let path = test;
  if (!(await fs.exists(test))) {
    const info = fs.join(datasetDir, "dataset_info.json");
    let entry: { file_name?: unknown } | undefined;
    if (await fs.exists(info)) {
      try {
        entry = JSON.parse(await fs.readText(info))[test];
      } catch (e) {
        throw new Error(`${info}: ${(e as Error).message}`);
      }
    }
    if (typeof entry?.file_name !== "string") {
      throw new Error(`--test ${test}: no such file, and no dataset of that name in ${info}`);
    }
    path = fs.join(datasetDir, entry.file_name);
  }
  const text = await fs.readText(path).catch((e) => {
    throw new Error(`${path}: ${(e as Error).message}`);
  });
  let read;
  try {
    read = readRecords(text);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  if (read.broken.length) throw new Error(`${path}: ${read.broken[0].where}: ${read.broken[0].message}`);
  return { path, records: read.records.map((r) => r.value) };
}
