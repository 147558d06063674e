/**
 * SFT examples from LLaMA-Factory datasets: conversations (read by sft_records.ts from
 * `dataset_info.json` entries) → token ids + labels with a template, cut to cutoff_len, optionally
 * packed several to a row, split into train / validation, written once to shards.
 *
 * Packing: examples are packed first-fit (longest first) into rows of at most cutoff_len tokens; each row
 * keeps its examples' lengths (`segments`) so position ids restart at 0 for every example and the trainer
 * can mask attention block-diagonally (no attention across examples — LLaMA-Factory's neat_packing). A
 * trainer that ignores `segments` gets plain packing (attention crosses examples).
 */
import { encodeConversation, type Template, type TemplateTokenizer } from "./templates.ts";
import type { FileSystem } from "../io/fs.ts";
import { hashParts, readIndex, SHARD_VERSION, type ShardIndex, writeIndex, writeShards } from "./shards.ts";
export {
  type Conversation,
  type DatasetEntry,
  readConversations,
  readDatasetEntry,
  recordToMessages,
  splitValidation,
  type TextFs,
} from "./sft_records.ts";
import {
  type Conversation,
  type DatasetEntry,
  readConversations,
  readDatasetEntry,
  splitValidation,
} from "./sft_records.ts";

export interface Row {
  inputIds: Int32Array;
  labels: Int32Array;
  /** Example lengths, summing to the row length (one entry without packing). */
  segments: number[];
}

/** Options of {@link tokenizeConversations}. */
export interface SftEncodeOptions {
  template: Template;
  tokenizer: TemplateTokenizer;
  cutoffLen: number;
  trainOnPrompt?: boolean;
}

/**
 * Encodes conversations; examples left with no trained token (a prompt longer than cutoff_len) are
 * dropped and counted in `dropped`, never silently.
 */
export function tokenizeConversations(
  convs: Conversation[],
  o: SftEncodeOptions,
): { rows: Row[]; dropped: { where: string; reason: string }[] } {
  const rows: Row[] = [], dropped: { where: string; reason: string }[] = [];
  for (const c of convs) {
    let enc;
    try {
      enc = encodeConversation(o.template, o.tokenizer, c.input, {
        cutoffLen: o.cutoffLen,
        trainOnPrompt: o.trainOnPrompt,
      });
    } catch (e) {
      throw new Error(`${c.where}: ${(e as Error).message}`);
    }
    if (!enc.labels.some((l) => l !== -100)) {
      dropped.push({ where: c.where, reason: `no response token within cutoff_len ${o.cutoffLen}` });
      continue;
    }
    rows.push({
      inputIds: Int32Array.from(enc.inputIds),
      labels: Int32Array.from(enc.labels),
      segments: [enc.inputIds.length],
    });
  }
  return { rows, dropped };
}

/**
 * Packs rows into rows of at most `cutoffLen` tokens: first-fit over examples sorted longest first
 * (ties keep input order), so the result is deterministic.
 */
export function packRows(rows: Row[], cutoffLen: number): Row[] {
  const order = rows.map((r, i) => [r.inputIds.length, i] as const).sort((a, b) =>
    b[0] - a[0] || a[1] - b[1]
  );
  const bins: { used: number; items: number[] }[] = [];
  for (const [len, i] of order) {
    if (len > cutoffLen) throw new Error(`an example of ${len} tokens exceeds cutoff_len ${cutoffLen}`);
    const bin = bins.find((b) => b.used + len <= cutoffLen);
    if (bin) (bin.used += len, bin.items.push(i));
    else bins.push({ used: len, items: [i] });
  }
  return bins.map((b) => {
    const inputIds = new Int32Array(b.used), labels = new Int32Array(b.used);
    let at = 0;
    for (const i of b.items) {
      inputIds.set(rows[i].inputIds, at);
      labels.set(rows[i].labels, at);
      at += rows[i].inputIds.length;
    }
    return { inputIds, labels, segments: b.items.map((i) => rows[i].inputIds.length) };
  });
}

/** Position ids of a row: 0, 1, … restarting at every packed example. */
export function positionIds(segments: number[]): Int32Array {
  const out = new Int32Array(segments.reduce((a, b) => a + b, 0));
  let at = 0;
  for (const len of segments) for (let p = 0; p < len; p++) out[at++] = p;
  return out;
}

/** A fingerprint of a tokenizer folder (tokenizer.json + tokenizer_config.json bytes) for the shard hash. */
export async function tokenizerFingerprint(fs: FileSystem, dir: string): Promise<string> {
  const parts: (string | Uint8Array)[] = [];
  for (const f of ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"]) {
    const p = fs.join(dir, f);
    parts.push(f, (await fs.exists(p)) ? await fs.readFile(p) : "(absent)");
  }
  return await hashParts(parts);
}

/** Options of {@link prepareSft} (the config's data keys plus the tokenizer). */
export interface PrepareSftOptions extends SftEncodeOptions {
  datasetDir: string;
  datasets: string[];
  /** Validation datasets; when absent, val_size splits the training data. */
  evalDatasets?: string[];
  /** From {@link tokenizerFingerprint}: part of the hash, so another tokenizer never reuses shards. */
  tokenizerFingerprint: string;
  packing?: boolean;
  maxSamples?: number;
  valSize?: number;
  seed: number;
  /** Shards go to `<cacheDir>/<hash prefix>/`. */
  cacheDir: string;
  /** Rebuild even when complete shards with the same hash exist (LLaMA-Factory's overwrite_cache). */
  overwriteCache?: boolean;
  shardTokens?: number;
}

/**
 * Datasets → shards, once: the hash covers every data file's bytes, its dataset_info entry, the
 * tokenizer, the template and every option that changes the rows, so a rerun with the same inputs
 * reuses the shards (`reused: true`) and any change rebuilds them in a new directory.
 *
 * @example
 * const { dir } = await prepareSft(fs, { datasetDir: "data", datasets: ["medical_default"], template: getTemplate("medical_inquiry"),
 *   tokenizer: tok, tokenizerFingerprint: await tokenizerFingerprint(fs, modelDir), cutoffLen: 512, seed: 42, valSize: 0.1, cacheDir: "output/.cache/sft" });
 * const train = await SplitReader.open(fs, dir, "train");
 */
export async function prepareSft(
  fs: FileSystem,
  o: PrepareSftOptions,
): Promise<{ dir: string; index: ShardIndex; reused: boolean }> {
  const entries = await Promise.all(o.datasets.map((n) => readDatasetEntry(fs, o.datasetDir, n)));
  const evalEntries = await Promise.all(
    (o.evalDatasets ?? []).map((n) => readDatasetEntry(fs, o.datasetDir, n)),
  );
  const parts: (string | Uint8Array)[] = [`webtune-sft v${SHARD_VERSION}`];
  for (const e of [...entries, ...evalEntries]) {
    if (!(await fs.exists(e.path))) throw new Error(`${e.path}: not found (dataset "${e.name}")`);
    parts.push(e.name, JSON.stringify(e.raw), await fs.readFile(e.path));
  }
  const settings = {
    datasets: o.datasets,
    evalDatasets: o.evalDatasets ?? [],
    template: o.template.name,
    cutoffLen: o.cutoffLen,
    trainOnPrompt: !!o.trainOnPrompt,
    packing: !!o.packing,
    maxSamples: o.maxSamples ?? null,
    valSize: o.valSize ?? 0,
    seed: o.seed,
  };
  parts.push(JSON.stringify(o.template), o.tokenizerFingerprint, JSON.stringify(settings));
  const hash = await hashParts(parts);
  const dir = fs.join(o.cacheDir, hash.slice(0, 16));
  const existing = o.overwriteCache ? null : await readIndex(fs, dir);
  if (existing?.hash === hash) return { dir, index: existing, reused: true };

  const read = async (es: DatasetEntry[]) =>
    (await Promise.all(es.map((e) => readConversations(fs, e, o.template, o.maxSamples)))).flat();
  const all = await read(entries);
  const { train, validation } = evalEntries.length
    ? { train: all, validation: await read(evalEntries) }
    : splitValidation(all, o.valSize ?? 0, o.seed);
  const t = tokenizeConversations(train, o), v = tokenizeConversations(validation, o);
  const trainRows = o.packing ? packRows(t.rows, o.cutoffLen) : t.rows;
  const index: ShardIndex = {
    version: SHARD_VERSION,
    hash,
    meta: {
      ...settings,
      examples: { train: t.rows.length, validation: v.rows.length },
      dropped: t.dropped.length + v.dropped.length,
      droppedFirst: [...t.dropped, ...v.dropped].slice(0, 20),
    },
    splits: {},
  };
  for (const [name, rows] of [["train", trainRows], ["validation", v.rows]] as const) {
    if (!rows.length) continue;
    const shards = await writeShards(fs, dir, name, rows, o.shardTokens);
    index.splits[name] = {
      rows: rows.length,
      tokens: rows.reduce((a, r) => a + r.inputIds.length, 0),
      shards,
    };
  }
  if (!index.splits.train) {
    throw new Error(`no training examples left (${t.dropped.length} dropped: ${t.dropped[0]?.reason})`);
  }
  await writeIndex(fs, dir, index);
  return { dir, index, reused: false };
}
