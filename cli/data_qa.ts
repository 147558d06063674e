/**
 * `deno task data qa --in abstracts.jsonl --out FILE.json --generator rules|openai|model [...]`: question
 * and answer pairs from the JSONL that `data pubmed` writes, by rules (src/data/qa_rules.ts), by an
 * OpenAI-compatible endpoint, or by a local model on our GPU engine (cli/data_model.ts). The largest
 * subcommand of cli/data.ts, kept in a file of its own.
 */
import type { PubmedRecord } from "../src/data/pubmed_xml.ts";
import { ruleQa } from "../src/data/qa_rules.ts";
import { chatQa, openAiQa } from "../src/data/qa_openai.ts";
import { denoFs } from "../platform/deno_fs.ts";
import { UsageError } from "./args.ts";
import { type Flags, num, parse, progressBar, str } from "./data_flags.ts";
import { localChat } from "./data_model.ts";

async function readAbstracts(path: string): Promise<PubmedRecord[]> {
  const text = await denoFs.readText(path).catch(() => {
    throw new UsageError(`--in ${path}: cannot read the file`);
  });
  const out: PubmedRecord[] = [];
  text.split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    let r: Partial<PubmedRecord>;
    try {
      r = JSON.parse(line);
    } catch {
      throw new UsageError(
        `${path}:${i + 1}: not a JSON line (expected the JSONL that 'data pubmed' writes)`,
      );
    }
    if (typeof r.pmid !== "string" || typeof r.title !== "string" || !Array.isArray(r.abstract)) {
      throw new UsageError(`${path}:${i + 1}: expected a PubMed record with pmid, title and abstract[]`);
    }
    out.push(r as PubmedRecord);
  });
  return out;
}

/**
 * Runs a model-backed generator under a progress bar, then lists the abstracts it failed on and
 * prints the summary line; returns the pairs.
 */
async function withBar<T>(
  f: Flags,
  total: number,
  run: (
    onProgress: (done: number) => void,
  ) => Promise<{ items: T[]; failed: { pmid: string; error: string }[] }>,
): Promise<T[]> {
  const bar = progressBar(!f["no-progress"], "qa");
  bar?.start(total, 0, { extra: "" });
  let r;
  try {
    r = await run((done) => bar?.update(done));
  } finally {
    bar?.stop();
  }
  for (const x of r.failed) console.error(`pmid ${x.pmid}: ${x.error}`);
  console.error(`${total} abstracts → ${r.items.length} pairs; ${r.failed.length} failed (listed above)`);
  return r.items;
}

/** `deno task data qa`: QA pairs from PubMed abstracts by rules, an OpenAI-compatible model or a local one. */
export async function qa(args: string[]) {
  const { values: f } = parse(args, {
    in: { type: "string" },
    out: { type: "string" },
    generator: { type: "string" },
    "base-url": { type: "string" },
    "api-key": { type: "string" },
    model: { type: "string" },
    adapter: { type: "string" },
    "max-new-tokens": { type: "string" },
    concurrency: { type: "string" },
    "pairs-per-abstract": { type: "string" },
    "no-progress": { type: "boolean" },
  });
  const gen = str(f, "generator", "rules");
  if (gen !== "rules" && gen !== "openai" && gen !== "model") {
    throw new UsageError(`--generator: rules, openai or model, got "${gen}"`);
  }
  const records = await readAbstracts(str(f, "in"));
  const out = str(f, "out");
  let items;
  if (gen === "rules") {
    const r = ruleQa(records);
    items = r.items;
    console.error(
      `${r.stats.records} abstracts → ${r.stats.pairs} pairs; skipped: ${r.stats.unstructured} unstructured, ` +
        `${r.stats.noQuestion} without objective/background, ${r.stats.noAnswer} without results/conclusions`,
    );
  } else if (gen === "model") {
    // --model is the local model folder here; generation runs on our GPU engine, one abstract at a time.
    const dir = str(f, "model");
    const { chat, dispose } = await localChat(dir, {
      adapter: f.adapter as string | undefined,
      maxNewTokens: num(f, "max-new-tokens", 512),
    });
    try {
      items = await withBar(f, records.length, (onProgress) =>
        chatQa(records, chat, {
          source: `model:${dir}`,
          concurrency: 1,
          pairsPerAbstract: num(f, "pairs-per-abstract", 3),
          onProgress,
        }));
    } finally {
      dispose();
    }
  } else {
    const baseUrl = str(f, "base-url", Deno.env.get("OPENAI_BASE_URL") ?? "https://api.openai.com/v1");
    const model = str(f, "model", Deno.env.get("OPENAI_MODEL") ?? "");
    if (!model) throw new UsageError("--generator openai needs --model (or OPENAI_MODEL)");
    items = await withBar(f, records.length, (onProgress) =>
      openAiQa(records, {
        baseUrl,
        model,
        apiKey: str(f, "api-key", Deno.env.get("OPENAI_API_KEY") ?? "") || undefined,
        concurrency: num(f, "concurrency", 4),
        pairsPerAbstract: num(f, "pairs-per-abstract", 3),
        onProgress,
      }));
  }
  await denoFs.writeText(out, JSON.stringify(items, null, 2) + "\n");
}
