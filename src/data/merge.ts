/**
 * Dataset assembly: concatenate sources, drop exact and near duplicates (MinHash), split stratified
 * train / validation / test, write the parts, register them in dataset_info.json, and report counts
 * per source and stratum with a length histogram.
 */
import type { DataFs } from "./fs.ts";
import { type Format, validateDataset } from "./formats.ts";
import { NearDuplicateIndex, normaliseText } from "./minhash.ts";
import { type Ratios, stratifiedSplit } from "./split.ts";
import { entryFor, registerDatasets, relativeTo } from "./dataset_info.ts";

/** Options of {@link mergeDatasets}. */
export interface MergeOptions {
  fs: DataFs;
  inputs: string[];
  /** Output directory; train.json / validation.json / test.json go there. */
  outDir: string;
  /** dataset_info name of the train part; the others get _validation / _test. */
  name: string;
  /** dataset_info.json to update (default: data/dataset_info.json). */
  datasetInfo?: string;
  split?: Ratios;
  seed?: number;
  /** Jaccard threshold for near duplicates; 1 keeps all but exact duplicates (default 0.8). */
  nearDup?: number;
  /** Field to stratify by (default disease_id when records have it, else source). */
  stratifyBy?: string;
  /** Skip invalid records (counted in the report) instead of failing. */
  skipInvalid?: boolean;
  /** Token counter for the histogram; the character histogram is always given. */
  countTokens?: (text: string) => number;
}

/** Per-source counts. */
export interface SourceStats {
  records: number;
  invalid: number;
  exactDuplicates: number;
  nearDuplicates: number;
  kept: number;
}

/** What {@link mergeDatasets} did. */
export interface MergeReport {
  format: Format;
  sources: Record<string, SourceStats>;
  stratifyBy: string;
  /** stratum → [train, validation, test]. */
  strata: Record<string, [number, number, number]>;
  /** Kept records per disease_id (records without one count under "(none)"), whatever the strata. */
  diseases: Record<string, number>;
  files: Record<string, { path: string; records: number }>;
  /** Histogram of record length (characters, and tokens when a counter is given): bucket upper bound → count. */
  lengthHistogram: { unit: "chars" | "tokens"; buckets: [number, number][] }[];
}

function textOf(rec: Record<string, unknown>, format: Format): string {
  if (format === "alpaca") {
    return [rec.system, rec.instruction, rec.input, rec.output].filter(Boolean).join("\n");
  }
  const turns = (format === "sharegpt" ? rec.conversations : rec.messages) as Record<string, unknown>[];
  return turns.map((t) => {
    const c = t.value ?? t.content;
    return typeof c === "string" ? c : JSON.stringify(c);
  }).join("\n");
}

function histogram(lengths: number[]): [number, number][] {
  const bounds = [64, 128, 256, 512, 1024, 2048, 4096, Infinity];
  const counts = bounds.map(() => 0);
  for (const l of lengths) counts[bounds.findIndex((b) => l <= b)]++;
  return bounds.map((b, i) => [b, counts[i]] as [number, number]).filter(([, c]) => c > 0);
}

function baseName(p: string): string {
  return p.slice(p.lastIndexOf("/") + 1).replace(/\.(jsonl?|json)$/, "");
}

/**
 * Runs the whole assembly. Fails with the file, record and field when a record is invalid (unless
 * skipInvalid) or when sources mix formats.
 *
 * @example
 * const report = await mergeDatasets({ fs, inputs: ["qa.json", "synth.json"], outDir: "data/medical_merged", name: "medical_dataset_merged" });
 */
export async function mergeDatasets(o: MergeOptions): Promise<MergeReport> {
  if (!o.inputs.length) throw new Error("no --in files given");
  const sources: Record<string, SourceStats> = {};
  const all: { rec: Record<string, unknown>; source: string }[] = [];
  let format: Format | undefined;
  for (const path of o.inputs) {
    let v;
    try {
      v = validateDataset(await o.fs.readText(path), {});
    } catch (e) {
      throw new Error(`${path}: ${(e as Error).message}`);
    }
    if (v.errors.length && !o.skipInvalid) {
      const e = v.errors[0];
      throw new Error(
        `${path}: ${e.where}: ${e.field}: ${e.message} (${v.errors.length} problem(s); --skip-invalid skips them)`,
      );
    }
    if (format && v.total && v.format !== format) {
      throw new Error(`${path}: ${v.format} records, but earlier inputs are ${format}`);
    }
    format ??= v.total ? v.format : undefined;
    const src = baseName(path);
    const stats = sources[src] ??= { records: 0, invalid: 0, exactDuplicates: 0, nearDuplicates: 0, kept: 0 };
    stats.records += v.total;
    stats.invalid += v.total - v.valid.length;
    for (const rec of v.valid as Record<string, unknown>[]) {
      all.push({ rec: { ...rec, source: typeof rec.source === "string" ? rec.source : src }, source: src });
    }
  }
  if (!format) throw new Error("the inputs hold no records");

  const exact = new Set<string>();
  const near = new NearDuplicateIndex({ threshold: o.nearDup ?? 0.8 });
  const kept: Record<string, unknown>[] = [];
  all.forEach(({ rec, source }, i) => {
    const text = textOf(rec, format!);
    const key = normaliseText(text);
    if (exact.has(key)) return void sources[source].exactDuplicates++;
    exact.add(key);
    if ((o.nearDup ?? 0.8) < 1 && near.add(text, i)) return void sources[source].nearDuplicates++;
    sources[source].kept++;
    kept.push(rec);
  });

  const stratifyBy = o.stratifyBy ??
    (kept.every((r) => typeof r.disease_id === "string") ? "disease_id" : "source");
  const keyOf = (r: Record<string, unknown>) => String(r[stratifyBy] ?? "(none)");
  const parts = stratifiedSplit(kept, keyOf, o.split ?? [0.8, 0.1, 0.1], o.seed ?? 42);
  const strata: Record<string, [number, number, number]> = {};
  for (const k of [...new Set(kept.map(keyOf))].sort()) strata[k] = [0, 0, 0];
  (["train", "validation", "test"] as const).forEach((p, j) => {
    for (const r of parts[p]) strata[keyOf(r)][j]++;
  });

  const info = o.datasetInfo ?? "data/dataset_info.json";
  const files: MergeReport["files"] = {}, entries: Record<string, ReturnType<typeof entryFor>> = {};
  const flags = {
    system: kept.some((r) => typeof r.system === "string"),
    history: kept.some((r) => Array.isArray(r.history)),
  };
  for (const p of ["train", "validation", "test"] as const) {
    if (!parts[p].length) continue;
    const path = `${o.outDir.replace(/\/$/, "")}/${p}.json`;
    await o.fs.writeText(path, JSON.stringify(parts[p], null, 2) + "\n");
    const name = p === "train" ? o.name : `${o.name}_${p}`;
    files[name] = { path, records: parts[p].length };
    entries[name] = entryFor(relativeTo(info, path), format, flags);
  }
  await registerDatasets(o.fs, info, entries);

  const diseases: Record<string, number> = {};
  for (const r of kept) {
    const k = typeof r.disease_id === "string" ? r.disease_id : "(none)";
    diseases[k] = (diseases[k] ?? 0) + 1;
  }
  const texts = kept.map((r) => textOf(r, format!));
  const lengthHistogram: MergeReport["lengthHistogram"] = [{
    unit: "chars",
    buckets: histogram(texts.map((t) => [...t].length)),
  }];
  if (o.countTokens) lengthHistogram.push({ unit: "tokens", buckets: histogram(texts.map(o.countTokens)) });
  return { format, sources, stratifyBy, strata, diseases, files, lengthHistogram };
}
