/**
 * Model comparison: several models (local folders through our engine, `openai:<name>` through an
 * OpenAI-compatible endpoint) answer the same records, and each is scored the same way. Local models
 * are opened one at a time and disposed before the next, so only one sits in GPU memory.
 * @module
 */
import type { FileSystem } from "../io/fs.ts";
import {
  type EvalScores,
  generatePredictions,
  type PredictionRow,
  type Predictor,
  scoreRows,
  type ScoreRowsOptions,
} from "./evaluator.ts";
import type { EvalRecord } from "./records.ts";
import { openaiPredictor, type OpenAIPredictorOptions } from "./openai_client.ts";
import type { ModelScores } from "./plot.ts";

/** One `name=spec` entry of `--models`. */
export type ModelSpec =
  | { name: string; kind: "local"; model: string; adapter?: string }
  | { name: string; kind: "openai"; model: string };

/**
 * Parses `--models ours=output/medical,base=models/Qwen2.5-0.5B,gpt4o=openai:gpt-4o`. A spec is
 * `openai:<model>`, `BASE_DIR+ADAPTER_DIR`, or one folder (a model, or a PEFT adapter whose base is
 * found by {@link resolveLocal}).
 * @example parseModelList("a=m,b=m+lora,c=openai:gpt-4o")
 */
export function parseModelList(list: string): ModelSpec[] {
  const out: ModelSpec[] = [];
  for (const item of list.split(",").map((s) => s.trim()).filter(Boolean)) {
    const eq = item.indexOf("=");
    if (eq <= 0 || eq === item.length - 1) {
      throw new Error(`--models: "${item}": expected name=FOLDER, name=BASE+ADAPTER or name=openai:MODEL`);
    }
    const name = item.slice(0, eq).trim(), spec = item.slice(eq + 1).trim();
    if (out.some((m) => m.name === name)) throw new Error(`--models: the name "${name}" is used twice`);
    if (spec.startsWith("openai:")) {
      if (spec.length === 7) throw new Error(`--models: "${item}": openai: needs a model name`);
      out.push({ name, kind: "openai", model: spec.slice(7) });
    } else if (spec.includes("+")) {
      const [model, adapter] = spec.split("+", 2);
      out.push({ name, kind: "local", model, adapter });
    } else out.push({ name, kind: "local", model: spec });
  }
  if (out.length === 0) throw new Error("--models: no models given");
  return out;
}

/**
 * A local folder that holds a PEFT adapter (adapter_config.json) and no config.json becomes
 * (base, adapter): the base is `base` when given, else the adapter's `base_model_name_or_path`, which
 * must be a local folder.
 * @example await resolveLocal(denoFs, { name: "ours", kind: "local", model: "output/medical" }) // { model: <base>, adapter: "output/medical" }
 */
export async function resolveLocal(
  fs: FileSystem,
  m: Extract<ModelSpec, { kind: "local" }>,
  base?: string,
): Promise<{ model: string; adapter?: string }> {
  if (m.adapter) return { model: m.model, adapter: m.adapter };
  const isAdapter = await fs.exists(fs.join(m.model, "adapter_config.json")) &&
    !(await fs.exists(fs.join(m.model, "config.json")));
  if (!isAdapter) return { model: m.model };
  let fromConfig: string | undefined;
  try {
    fromConfig =
      JSON.parse(await fs.readText(fs.join(m.model, "adapter_config.json"))).base_model_name_or_path;
  } catch (e) {
    throw new Error(`${m.model}/adapter_config.json: ${(e as Error).message}`);
  }
  const b = base ?? fromConfig;
  if (!b || !(await fs.exists(b))) {
    throw new Error(
      `${m.name}=${m.model} is a LoRA adapter whose base model "${fromConfig ?? "(none)"}" is not a local ` +
        `folder: write ${m.name}=BASE_DIR+${m.model} or pass --base BASE_DIR`,
    );
  }
  return { model: b, adapter: m.model };
}

/** A model to compare: opened when its turn comes, disposed after. */
export interface ModelSource {
  name: string;
  /** What it is, for the report ("models/x + output/lora", "openai:gpt-4o"). */
  source: string;
  open(): Promise<{ predictor: Predictor; dispose?: () => void }>;
}

/**
 * The sources of parsed `--models`: `openai:` entries through {@link openaiPredictor} with the shared
 * endpoint options, local folders (adapters resolved by {@link resolveLocal}) through `openLocal`.
 * @example const sources = await modelSources(denoFs, parseModelList("ours=output/medical,gpt=openai:gpt-4o"), { openai: { baseUrl, apiKey }, openLocal });
 */
export async function modelSources(
  fs: FileSystem,
  specs: ModelSpec[],
  opts: {
    base?: string;
    openai: Omit<OpenAIPredictorOptions, "model" | "name">;
    openLocal: (name: string, model: string, adapter?: string) => ReturnType<ModelSource["open"]>;
  },
): Promise<ModelSource[]> {
  const out: ModelSource[] = [];
  for (const s of specs) {
    if (s.kind === "openai") {
      const predictor = openaiPredictor({ ...opts.openai, model: s.model, name: s.name });
      out.push({
        name: s.name,
        source: `openai:${s.model} at ${opts.openai.baseUrl}`,
        open: () => Promise.resolve({ predictor }),
      });
    } else {
      const r = await resolveLocal(fs, s, opts.base);
      // Checked now, not when its turn comes after the other models have run.
      for (const dir of [r.model, r.adapter]) {
        if (dir && !(await fs.exists(dir))) {
          throw new Error(`--models ${s.name}: folder ${dir} does not exist`);
        }
      }
      out.push({
        name: s.name,
        source: r.adapter ? `${r.model} + ${r.adapter}` : r.model,
        open: () => opts.openLocal(s.name, r.model, r.adapter),
      });
    }
  }
  return out;
}

/** A compared model: its predictions and scores. */
export interface ComparedModel extends ModelScores {
  source: string;
  rows: PredictionRow[];
  scores: EvalScores;
}

/**
 * Runs every model on the same records (in order) and scores each with the same options.
 * @example const results = await compareModels([ours, base, gpt], records, { metrics: ["accuracy", "bleu"] });
 */
export async function compareModels(
  sources: ModelSource[],
  records: EvalRecord[],
  opts: ScoreRowsOptions & {
    onProgress?: (model: string, done: number, total: number) => void;
    /** Called with each model's result as soon as it is scored (write its files there). */
    onModelDone?: (m: ComparedModel) => void | Promise<void>;
  } = {},
): Promise<ComparedModel[]> {
  if (records.length === 0) throw new Error("compare: there are no test records");
  const out: ComparedModel[] = [];
  for (const s of sources) {
    const { predictor, dispose } = await s.open();
    let rows: PredictionRow[];
    try {
      rows = await generatePredictions(predictor, records, {
        onProgress: (d, n) => opts.onProgress?.(s.name, d, n),
      });
    } finally {
      dispose?.();
    }
    const scores = scoreRows(rows, opts);
    const m: ComparedModel = {
      name: s.name,
      source: s.source,
      rows,
      scores,
      metrics: scores.metrics,
      latency_ms: scores.latency_ms,
    };
    await opts.onModelDone?.(m);
    out.push(m);
  }
  return out;
}

/**
 * "12.34 [10.00, 15.00]" with metrics in [0, 1] shown as percentages.
 * @example formatInterval("accuracy", { value: 0.5, low: 0.4, high: 0.6 }) // "50.00 [40.00, 60.00]"
 */
export function formatInterval(metric: string, ci: { value: number; low: number; high: number }): string {
  const s = metric === "accuracy" || metric === "f1" ? 100 : 1;
  const f = (x: number) => (x * s).toFixed(2);
  return `${f(ci.value)} [${f(ci.low)}, ${f(ci.high)}]`;
}

/**
 * The side-by-side table (markdown): one row per model, one column per metric and latency; each cell
 * "value [95% interval]", the best value per column in bold.
 * @example console.log(comparisonTable(await compareModels(sources, records)));
 */
export function comparisonTable(models: ComparedModel[]): string {
  const metrics = [...new Set(models.flatMap((m) => Object.keys(m.metrics)))];
  const cols = [...metrics, "latency_ms"];
  const get = (m: ComparedModel, c: string) => c === "latency_ms" ? m.latency_ms : m.metrics[c];
  const best = new Map(cols.map((c) => {
    const vals = models.map((m) => get(m, c)?.value).filter((v): v is number => v !== undefined);
    return [c, c === "latency_ms" ? Math.min(...vals) : Math.max(...vals)];
  }));
  // Bold only a strict winner: a tie (e.g. every model at 0) marks nothing.
  const unique = new Map(
    cols.map((c) => [c, models.filter((m) => get(m, c)?.value === best.get(c)).length === 1]),
  );
  const head = `| model | ${
    cols.map((c) => c === "latency_ms" ? "latency (ms)" : c + (c === "accuracy" || c === "f1" ? " (%)" : ""))
      .join(" | ")
  } |`;
  const rule = `|${" --- |".repeat(cols.length + 1)}`;
  const lines = models.map((m) => {
    const cells = cols.map((c) => {
      const ci = get(m, c);
      if (!ci) return "–";
      const txt = formatInterval(c, ci);
      return ci.value === best.get(c) && unique.get(c) ? `**${txt}**` : txt;
    });
    return `| ${m.name} | ${cells.join(" | ")} |`;
  });
  return [head, rule, ...lines].join("\n");
}
