/**
 * `deno task tokenize --model DIR --text TEXT [--json]`: the ids of TEXT with no special tokens added
 * (as HF's `tokenizer(text, add_special_tokens=False)`), one per line as `id<TAB>token`, or with --json
 * one object { ids, tokens }.
 */
import { HfTokenizer } from "../src/io/tokenizer.ts";
import { denoFs } from "../platform/deno_fs.ts";
import { fail, parseFlags } from "./args.ts";

const USAGE = "usage: deno task tokenize --model DIR --text TEXT [--json]";

async function main(): Promise<void> {
  const { values: a } = parseFlags({
    args: Deno.args,
    options: { model: { type: "string" }, text: { type: "string" }, json: { type: "boolean" } },
  }, USAGE);
  if (!a.model || a.text === undefined) fail(`--model DIR and --text TEXT are required\n${USAGE}`);
  if (!(await denoFs.exists(a.model))) fail(`model folder ${a.model} does not exist`);
  const tok = await HfTokenizer.load(denoFs, a.model);
  const ids = tok.encode(a.text, { addSpecialTokens: false });
  const tokens = ids.map((id) => tok.idToToken(id) ?? "");
  if (a.json) console.log(JSON.stringify({ ids, tokens }));
  else for (const [i, id] of ids.entries()) console.log(`${id}\t${JSON.stringify(tokens[i])}`);
}

try {
  await main();
} catch (e) {
  fail((e as Error).message);
}
