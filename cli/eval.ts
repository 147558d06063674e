/**
 * `deno task eval --model DIR [--adapter DIR] --test FILE|DATASET --template NAME
 *    [--metrics accuracy,f1,bleu,rouge] [--num-samples N --seed S] [--out DIR]`
 * `deno task eval --config TRAIN_YAML [key=value ...]` (model, adapter = output_dir, eval_dataset,
 *    template, per_device_eval_batch_size, max_samples and seed from the training config)
 * `deno task eval compare --models ours=output/medical,base=models/Qwen2.5-0.5B,gpt4o=openai:gpt-4o
 *    --test FILE|DATASET --template NAME [--base DIR] [--openai-base-url URL] [--openai-api-key KEY]
 *    [--concurrency N] [--rpm N] [--retries N] [--font FILE ...] [--font-family NAME] ...`
 *
 * Shared: [--batch-size B] [--max-new-tokens N] [--dtype f16|f32] [--bootstrap N] [--top-k K]
 * [--dataset-dir DIR]. Local models are generated greedily by our engine; `openai:<name>` goes to an
 * OpenAI-compatible endpoint (OPENAI_BASE_URL / OPENAI_API_KEY from the environment unless flags say).
 * Writes generated_predictions.jsonl, metrics.json, per_disease.json and report.md (compare: those
 * per model under <out>/<name>/, plus comparison.md, comparison.json and comparison.png).
 */
import { createGpu, type Gpu } from "../src/gpu/mod.ts";
import { openModel } from "../src/engine/open.ts";
import { getTemplate } from "../src/data/templates.ts";
import { loadConfig } from "../src/train/config.ts";
import { enginePredictor, generatePredictions, METRIC_NAMES, scoreRows } from "../src/eval/evaluator.ts";
import { loadTestRecords, sampleRecords, toEvalRecords } from "../src/eval/records.ts";
import { compareModels, modelSources, parseModelList } from "../src/eval/compare.ts";
import { comparisonReport, evalReport, writeEvaluation } from "../src/eval/report.ts";
import { comparisonSpec, renderPlot } from "../src/eval/plot.ts";
import type { MetricName } from "../src/eval/metrics/mod.ts";
import { denoFs } from "../platform/deno_fs.ts";
import { fail, intFlag as int, parseFlags } from "./args.ts";
import { CJK_FALLBACKS, defaultFont, initPlots, isFile } from "./plot_fonts.ts";

const USAGE = "usage: deno task eval (--model DIR [--adapter DIR] | --config YAML [k=v ...]) --test FILE " +
  "--template NAME [--metrics accuracy,f1,bleu,rouge] [--num-samples N] [--seed S] [--out DIR]\n" +
  "       deno task eval compare --models name=DIR|name=BASE+ADAPTER|name=openai:MODEL,... --test FILE " +
  "--template NAME [--font FILE] ... (see cli/eval.ts)";
const progress = (what: string) => (done: number, total: number) => {
  if (Deno.stderr.isTerminal()) {
    Deno.stderr.writeSync(
      new TextEncoder().encode(`\r${what}: ${done}/${total}${done === total ? "\n" : ""}`),
    );
  } else if (done === total) console.error(`${what}: ${done}/${total}`);
};

async function main(): Promise<void> {
  const compare = Deno.args[0] === "compare";
  const { values: a, positionals } = parseFlags({
    args: compare ? Deno.args.slice(1) : Deno.args,
    allowPositionals: true,
    options: {
      model: { type: "string" },
      adapter: { type: "string" },
      config: { type: "string" },
      models: { type: "string" },
      base: { type: "string" },
      test: { type: "string" },
      template: { type: "string" },
      metrics: { type: "string", default: "accuracy,f1,bleu,rouge" },
      "num-samples": { type: "string" },
      seed: { type: "string" },
      out: { type: "string" },
      "batch-size": { type: "string" },
      "max-new-tokens": { type: "string" },
      dtype: { type: "string" },
      bootstrap: { type: "string" },
      "top-k": { type: "string" },
      "dataset-dir": { type: "string", default: "data" },
      "openai-base-url": { type: "string" },
      "openai-api-key": { type: "string" },
      concurrency: { type: "string" },
      rpm: { type: "string" },
      retries: { type: "string" },
      font: { type: "string", multiple: true },
      "font-family": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  }, USAGE);
  if (a.help) return void console.log(USAGE);
  if (positionals.length && !a.config) fail(`unexpected argument ${positionals[0]}\n${USAGE}`);
  const metrics = a.metrics!.split(",").map((s) => s.trim()).filter(Boolean) as MetricName[];
  for (const m of metrics) {
    if (!METRIC_NAMES.includes(m)) fail(`--metrics: unknown "${m}" (known: ${METRIC_NAMES.join(", ")})`);
  }
  if (a.dtype && a.dtype !== "f16" && a.dtype !== "f32") fail(`--dtype ${a.dtype}: want f16 or f32`);
  let numSamples = int("num-samples", a["num-samples"], 1);
  let seed = int("seed", a.seed, 0) ?? 0;
  let batchSize = int("batch-size", a["batch-size"], 1) ?? 8;
  let model = a.model, adapter = a.adapter, test = a.test, template = a.template, out = a.out;
  let datasetDir = a["dataset-dir"]!;
  if (a.config) {
    if (compare) fail("--config is for single-model evaluation; compare takes --models");
    const c = await loadConfig(denoFs, a.config, positionals).catch((e) => fail((e as Error).message));
    model ??= c.model_name_or_path;
    if (!adapter && await denoFs.exists(`${c.output_dir}/adapter_config.json`)) adapter = c.output_dir;
    test ??= c.eval_dataset?.[0];
    template ??= c.template;
    out ??= `${c.output_dir}/eval`;
    datasetDir = c.dataset_dir;
    numSamples ??= c.max_samples;
    if (a.seed === undefined) seed = c.seed;
    if (a["batch-size"] === undefined) batchSize = c.per_device_eval_batch_size;
    if (c.metric_for_best_model && !metrics.includes(c.metric_for_best_model as MetricName)) {
      if (!METRIC_NAMES.includes(c.metric_for_best_model as MetricName)) {
        fail(
          `${a.config}: metric_for_best_model "${c.metric_for_best_model}" is not one of ${
            METRIC_NAMES.join(", ")
          }`,
        );
      }
      metrics.push(c.metric_for_best_model as MetricName);
    }
  }
  if (!test) fail(`--test FILE is required${a.config ? " (the config has no eval_dataset)" : ""}\n${USAGE}`);
  if (!template) fail(`--template NAME is required\n${USAGE}`);
  let tmpl;
  try {
    tmpl = getTemplate(template);
  } catch (e) {
    fail(`--template: ${(e as Error).message}`);
  }
  const { path: testPath, records: all } = await loadTestRecords(denoFs, test, datasetDir)
    .catch((e) => fail((e as Error).message));
  let records;
  try {
    records = sampleRecords(toEvalRecords(tmpl, all), numSamples, seed);
  } catch (e) {
    fail(`${testPath}: ${(e as Error).message}`);
  }
  if (records.length === 0) fail(`${testPath}: no records`);
  const maxNewTokens = int("max-new-tokens", a["max-new-tokens"], 1) ?? 128;
  const scoreOpts = {
    metrics,
    k: int("top-k", a["top-k"], 1),
    bootstrap: { resamples: int("bootstrap", a.bootstrap, 1) ?? 1000, seed },
  };
  const info = { test: testPath, template, samples: records.length, total: all.length, seed };
  let gpu: Gpu | undefined;
  const getGpu = async () => gpu ??= await createGpu();
  const openLocal = async (name: string, dir: string, adapterDir?: string) => {
    const m = await openModel(await getGpu(), denoFs, dir, {
      adapter: adapterDir,
      dtype: a.dtype as "f16" | "f32" | undefined,
    });
    return {
      predictor: enginePredictor(m.engine, m.tokenizer, tmpl, { name, batchSize, maxNewTokens }),
      dispose: () => m.dispose(),
    };
  };

  if (!compare) {
    if (!model) fail(`--model DIR (or --config YAML) is required\n${USAGE}`);
    const { predictor, dispose } = await openLocal("model", model, adapter).catch((e) =>
      fail((e as Error).message)
    );
    const rows = await generatePredictions(predictor, records, { onProgress: progress("generating") });
    dispose();
    const scores = scoreRows(rows, scoreOpts);
    const dir = out ?? "output/eval";
    const report = evalReport({ model, adapter, ...info }, scores, rows);
    const files = await writeEvaluation(denoFs, dir, rows, scores, report, {
      model,
      adapter: adapter ?? null,
      ...info,
    });
    console.log(report);
    console.error(`wrote ${files.join(", ")}`);
    return;
  }

  // compare
  if (!a.models) fail(`compare needs --models\n${USAGE}`);
  let specs;
  try {
    specs = parseModelList(a.models);
  } catch (e) {
    fail((e as Error).message);
  }
  const fonts: Uint8Array[] = [];
  let family = a["font-family"];
  for (const f of a.font ?? []) {
    fonts.push(await Deno.readFile(f).catch((e) => fail(`--font ${f}: ${(e as Error).message}`)));
  }
  if (!fonts.length) {
    const found = await defaultFont();
    if (!found) {
      fail(
        "comparison.png needs a font: install fonts-dejavu-core, or pass --font FILE.ttf --font-family NAME",
      );
    }
    fonts.push(found.data);
    family ??= found.family;
    for (const f of CJK_FALLBACKS.filter(isFile)) fonts.push(await Deno.readFile(f));
  }
  const baseUrl = a["openai-base-url"] ?? Deno.env.get("OPENAI_BASE_URL") ?? "https://api.openai.com/v1";
  const apiKey = a["openai-api-key"] ?? Deno.env.get("OPENAI_API_KEY") ?? "";
  if (specs.some((s) => s.kind === "openai") && !apiKey && baseUrl.includes("api.openai.com")) {
    fail("openai: models need a key: set OPENAI_API_KEY or pass --openai-api-key (or --openai-base-url)");
  }
  const client = {
    concurrency: int("concurrency", a.concurrency, 1),
    requestsPerMinute: int("rpm", a.rpm, 1),
    maxRetries: int("retries", a.retries, 0),
  };
  const dir = out ?? "output/compare";
  const sources = await modelSources(denoFs, specs, {
    base: a.base,
    openai: { baseUrl, apiKey, maxTokens: maxNewTokens, ...client },
    openLocal,
  }).catch((e) => fail((e as Error).message));
  // Each model's files are written as soon as it is done, so a later failure loses nothing.
  const results = await compareModels(sources, records, {
    ...scoreOpts,
    onProgress: (m, d, n) => progress(m)(d, n),
    onModelDone: async (m) =>
      void await writeEvaluation(
        denoFs,
        `${dir}/${m.name}`,
        m.rows,
        m.scores,
        evalReport({ model: m.source, ...info }, m.scores, m.rows),
        { model: m.source, ...info },
      ),
  }).catch((e) => fail((e as Error).message));
  const spec = comparisonSpec(results, {
    title: `${testPath}: ${records.length} samples (bars: value; lines: bootstrap 95% interval)`,
  });
  await initPlots();
  const plot = await renderPlot(spec, { fonts, fontFamily: family });
  await Deno.writeFile(`${dir}/comparison.png`, plot.png);
  const report = comparisonReport(results, info);
  await Deno.writeTextFile(`${dir}/comparison.md`, report);
  const summary = results.map((m) => ({
    name: m.name,
    source: m.source,
    samples: m.scores.samples,
    metrics: m.metrics,
    latency_ms: m.latency_ms,
  }));
  await Deno.writeTextFile(
    `${dir}/comparison.json`,
    JSON.stringify({ ...info, models: summary, spec }, null, 2) + "\n",
  );
  console.log(report);
  console.error(`wrote ${dir}/comparison.{md,json,png} (${plot.width}x${plot.height}) and ${dir}/<model>/`);
}

try {
  await main();
} catch (e) {
  fail((e as Error).message);
}
