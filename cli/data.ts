/**
 * `deno task data <subcommand>`: the medical data pipeline (issue 5).
 *
 *   pubmed    --query Q --max N --out FILE.jsonl [--api-key K] [--email E] [--base-url U] [--batch-size N]
 *   qa        --in abstracts.jsonl --out FILE.json --generator rules|openai|model [...]
 *             (model: --model DIR [--adapter DIR] [--max-new-tokens N], our GPU engine; openai: --model NAME)
 *   synth     --diseases 渐冻症,亨廷顿舞蹈症 --num-samples N --lang zh|en --seed S --out FILE.json
 *   default   regenerate data/default/ (the embedded default dataset) and register it
 *   merge     --in A --in B ... --out-dir DIR --name NAME [--tokenizer MODEL_DIR] [...]
 *   validate  FILE [--format alpaca|sharegpt|openai] [--skip-invalid]
 *
 * Parsing and printing only; the work is in src/data. Errors a user can cause end in one line (exit 2).
 * Flag readers: cli/data_flags.ts; the qa subcommand: cli/data_qa.ts.
 */
import { fetchPubmed } from "../src/data/pubmed.ts";
import { denoFs } from "../platform/deno_fs.ts";
import { parseKnowledgeGraph } from "../src/data/kg.ts";
import { type Lang, synthesizeCases } from "../src/data/synth.ts";
import { type Format, FORMATS, validateDataset } from "../src/data/formats.ts";
import { mergeDatasets } from "../src/data/merge.ts";
import { parseRatios } from "../src/data/split.ts";
import { buildDefaultDataset } from "../src/data/default_dataset.ts";
import { UsageError } from "./args.ts";
import { num, parse, progressBar, str } from "./data_flags.ts";
import { qa } from "./data_qa.ts";
import { tokenCounter } from "./data_model.ts";

const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const DEFAULT_KG = `${REPO}/data/medical_kg.json`;

async function pubmed(args: string[]) {
  const { values: f } = parse(args, {
    query: { type: "string" },
    max: { type: "string" },
    out: { type: "string" },
    "api-key": { type: "string" },
    email: { type: "string" },
    tool: { type: "string" },
    "base-url": { type: "string" },
    "batch-size": { type: "string" },
    rate: { type: "string" },
    "search-format": { type: "string" },
    "no-progress": { type: "boolean" },
  });
  const apiKey = str(f, "api-key", Deno.env.get("NCBI_API_KEY") ?? "") || undefined;
  const baseUrl = str(f, "base-url", "") || undefined;
  const rate = f.rate === undefined ? undefined : num(f, "rate");
  if (rate !== undefined && !baseUrl && rate > (apiKey ? 10 : 3)) {
    throw new UsageError(
      `--rate ${rate}: NCBI allows at most ${apiKey ? 10 : 3} requests/s ${
        apiKey ? "with" : "without"
      } an API key`,
    );
  }
  const fmt = str(f, "search-format", "json");
  if (fmt !== "json" && fmt !== "xml") throw new UsageError(`--search-format: json or xml, got "${fmt}"`);
  const bar = progressBar(!f["no-progress"], "pubmed");
  let started = false;
  const r = await fetchPubmed({
    query: str(f, "query"),
    max: num(f, "max"),
    out: str(f, "out"),
    fs: denoFs,
    apiKey,
    email: str(f, "email", Deno.env.get("NCBI_EMAIL") ?? "") || undefined,
    tool: str(f, "tool", "webtune"),
    baseUrl,
    batchSize: num(f, "batch-size", 200),
    requestsPerSecond: rate,
    searchFormat: fmt,
    onProgress: (p) => {
      if (!bar) return;
      if (!started) bar.start(p.total, 0, { extra: "" }), started = true;
      bar.update(p.done, { extra: `written ${p.written}, no abstract ${p.noAbstract}` });
    },
    // A line of its own, below the bar (which redraws on its next update).
    onLog: (m) => console.error(bar && started ? `\n${m}` : m),
  });
  bar?.stop();
  console.log(JSON.stringify(r));
}

async function loadKg(path: string) {
  let json;
  try {
    json = JSON.parse(await denoFs.readText(path));
  } catch (e) {
    throw new UsageError(`--kg ${path}: ${(e as Error).message}`);
  }
  return parseKnowledgeGraph(json, path);
}

async function synth(args: string[]) {
  const { values: f } = parse(args, {
    diseases: { type: "string" },
    "num-samples": { type: "string" },
    lang: { type: "string" },
    seed: { type: "string" },
    out: { type: "string" },
    "hard-rate": { type: "string" },
    kg: { type: "string" },
  });
  const kg = await loadKg(str(f, "kg", DEFAULT_KG));
  const list = str(f, "diseases");
  const diseases = list === "all"
    ? kg.diseases.map((d) => d.id)
    : list.split(/[,，]/).map((s) => s.trim()).filter(Boolean);
  const lang = str(f, "lang", "zh");
  if (lang !== "zh" && lang !== "en") throw new UsageError(`--lang: zh or en, got "${lang}"`);
  let cases;
  try {
    cases = synthesizeCases(kg, {
      diseases,
      numSamples: num(f, "num-samples"),
      lang: lang as Lang,
      seed: num(f, "seed", 42),
      hardRate: num(f, "hard-rate", 0.2),
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  await denoFs.writeText(str(f, "out"), JSON.stringify(cases, null, 2) + "\n");
  console.error(`${cases.length} cases (${cases.filter((c) => c.hard).length} hard) → ${f.out}`);
}

async function defaultDataset(args: string[]) {
  const { values: f } = parse(args, { root: { type: "string" } });
  console.log(JSON.stringify(await buildDefaultDataset(denoFs, str(f, "root", REPO))));
}

async function merge(args: string[]) {
  const { values: f } = parse(args, {
    in: { type: "string", multiple: true },
    "out-dir": { type: "string" },
    name: { type: "string" },
    "dataset-info": { type: "string" },
    split: { type: "string" },
    seed: { type: "string" },
    "near-dup": { type: "string" },
    "stratify-by": { type: "string" },
    "skip-invalid": { type: "boolean" },
    tokenizer: { type: "string" },
  });
  const inputs = (f.in ?? []) as string[];
  for (const p of inputs) if (!(await denoFs.exists(p))) throw new UsageError(`--in ${p}: no such file`);
  const nearDup = num(f, "near-dup", 0.8);
  if (!(nearDup > 0 && nearDup <= 1)) {
    throw new UsageError(`--near-dup: a Jaccard threshold in (0, 1], got ${nearDup}`);
  }
  let split;
  try {
    split = f.split ? parseRatios(str(f, "split")) : undefined;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const report = await mergeDatasets({
    fs: denoFs,
    inputs,
    outDir: str(f, "out-dir"),
    name: str(f, "name"),
    datasetInfo: str(f, "dataset-info", "data/dataset_info.json"),
    split,
    seed: num(f, "seed", 42),
    nearDup,
    stratifyBy: str(f, "stratify-by", "") || undefined,
    skipInvalid: !!f["skip-invalid"],
    countTokens: f.tokenizer ? await tokenCounter(str(f, "tokenizer")) : undefined,
  });
  console.log(JSON.stringify(report, null, 2));
}

async function validate(args: string[]) {
  const { values: f, positionals } = parse(args, {
    format: { type: "string" },
    "skip-invalid": { type: "boolean" },
    out: { type: "string" },
  });
  const path = positionals[0];
  if (!path) {
    throw new UsageError(
      "usage: deno task data validate FILE [--format alpaca|sharegpt|openai] [--skip-invalid] [--out CLEAN]",
    );
  }
  const format = f.format as Format | undefined;
  if (format && !FORMATS.includes(format)) {
    throw new UsageError(`--format: one of ${FORMATS.join(", ")}, got "${format}"`);
  }
  const text = await denoFs.readText(path).catch(() => {
    throw new UsageError(`${path}: cannot read the file`);
  });
  let v;
  try {
    v = validateDataset(text, { format });
  } catch (e) {
    throw new UsageError(`${path}: ${(e as Error).message}`);
  }
  for (const e of v.errors.slice(0, 50)) console.error(`${path}: ${e.where}: ${e.field}: ${e.message}`);
  if (v.errors.length > 50) console.error(`… and ${v.errors.length - 50} more problems`);
  const bad = v.total - v.valid.length;
  if (f.out) {
    const body = v.layout === "jsonl"
      ? v.valid.map((r) => JSON.stringify(r) + "\n").join("")
      : JSON.stringify(v.valid, null, 2) + "\n";
    await denoFs.writeText(str(f, "out"), body);
  }
  console.log(
    `${path}: ${v.format} (${v.layout}), ${v.total} records, ${v.valid.length} valid, ${bad} invalid${
      f["skip-invalid"] && bad ? " (skipped)" : ""
    }`,
  );
  if (bad && !f["skip-invalid"]) {
    throw new ValidationFailed(`${bad} invalid record(s); --skip-invalid skips and counts them`);
  }
}

/** Invalid records found: exit 1 after the listing. */
class ValidationFailed extends Error {}

const COMMANDS: Record<string, (args: string[]) => Promise<void>> = {
  pubmed,
  qa,
  synth,
  default: defaultDataset,
  merge,
  validate,
};

/** Entry point; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const run = COMMANDS[cmd ?? ""];
  if (!run) {
    console.error(`usage: deno task data <${Object.keys(COMMANDS).join("|")}> [flags]  (see cli/data.ts)`);
    return 2;
  }
  try {
    await run(rest);
    return 0;
  } catch (e) {
    console.error(`data ${cmd}: ${(e as Error).message}`);
    return e instanceof UsageError ? 2 : 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
