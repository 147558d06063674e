/**
 * `deno task export --model DIR --adapter DIR --out DIR [--max-shard-size BYTES]` — merge a PEFT LoRA
 * adapter into its base model and write a Hugging Face folder (sharded safetensors, config.json,
 * generation_config.json, tokenizer files) that transformers, `deno task generate` and `serve` load.
 */
import { createGpu } from "../src/gpu/mod.ts";
import { exportMerged } from "../src/train/export.ts";
import { denoFs } from "../platform/deno_fs.ts";
import { fail, numberFlag, parseFlags } from "./args.ts";

const USAGE = "usage: deno task export --model DIR --adapter DIR --out DIR [--max-shard-size BYTES]";

async function main(): Promise<void> {
  const { values: a } = parseFlags({
    args: Deno.args,
    options: {
      model: { type: "string" },
      adapter: { type: "string" },
      out: { type: "string" },
      "max-shard-size": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  }, USAGE);
  if (a.help) return void console.log(USAGE);
  if (!a.model || !a.out) throw new Error(`--model and --out are required\n${USAGE}`);
  const shard = numberFlag(
    "max-shard-size",
    a["max-shard-size"],
    (x) => Number.isInteger(x) && x > 0,
    "a positive number of bytes",
  );
  const gpu = await createGpu();
  const t0 = performance.now();
  const r = await exportMerged(gpu, denoFs, {
    model: a.model,
    adapter: a.adapter,
    out: a.out,
    maxShardBytes: shard,
  });
  console.error(
    `merged ${r.merged} layers; wrote ${a.out} (safetensors, ${r.files.join(", ")}) in ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s`,
  );
}

try {
  await main();
} catch (e) {
  fail((e as Error).message);
}
