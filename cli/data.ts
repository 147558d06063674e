/**
 * `deno task data <subcommand>`: the medical data pipeline (issue 5).
 *
 *   pubmed    --query Q --max N --out FILE.jsonl [--api-key K] [--email E] [--base-url U] [--batch-size N]
 *   qa        --in abstracts.jsonl --out FILE.json --generator rules|openai|model [...]
 *   synth     --diseases 渐冻症,亨廷顿舞蹈症 --num-samples N --lang zh|en --seed S --out FILE.json
 *   default   regenerate data/default/ (the embedded default dataset) and register it
 *   merge     --in A --in B ... --out FILE.json --name NAME [...]
 *   validate  FILE [--format alpaca|sharegpt|openai] [--skip-invalid]
 *
 * Parsing and printing only; the work is in src/data. Errors a user can cause end in one line.
 */
import { parseArgs } from "node:util";
import cliProgress from "cli-progress";
import type { DataFs } from "../src/data/fs.ts";
import { fetchPubmed } from "../src/data/pubmed.ts";

/** The Deno file-system adapter handed to src/data. */
export const denoFs: DataFs = {
  readText: (p) => Deno.readTextFile(p),
  writeText: (p, t) => Deno.writeTextFile(p, t),
  appendText: (p, t) => Deno.writeTextFile(p, t, { append: true }),
  exists: (p) => Deno.stat(p).then(() => true, () => false),
};

/** A user error: printed as one line, exit code 2. */
class UsageError extends Error {}

type Flags = Record<string, string | boolean | (string | boolean)[] | undefined>;

function str(f: Flags, name: string, fallback?: string): string {
  const v = f[name];
  if (typeof v === "string" && v !== "") return v;
  if (fallback !== undefined) return fallback;
  throw new UsageError(`missing --${name}`);
}
function num(f: Flags, name: string, fallback?: number): number {
  const v = f[name];
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw new UsageError(`missing --${name}`);
  }
  const n = Number(v);
  if (typeof v !== "string" || v.trim() === "" || !Number.isFinite(n)) {
    throw new UsageError(`--${name}: expected a number, got "${v}"`);
  }
  return n;
}

function parse(args: string[], options: Record<string, { type: "string" | "boolean"; multiple?: boolean }>) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional.*$/s, ""));
  }
}

function progressBar(enabled: boolean, label: string) {
  if (!enabled || !Deno.stderr.isTerminal()) return null;
  return new cliProgress.SingleBar(
    { format: `${label} [{bar}] {value}/{total} {extra}`, stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
}

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
    onLog: (m) => console.error(m),
  });
  bar?.stop();
  console.log(JSON.stringify(r));
}

const COMMANDS: Record<string, (args: string[]) => Promise<void>> = { pubmed };

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
