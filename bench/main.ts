/**
 * `deno task bench <what> [flags]`
 *
 *   kernels [--filter TEXT] [--json] [--small]   time every kernel case in bench/kernels/*.ts
 *
 * Model benchmarks (`--model/--shape --seq-len ...`) arrive with the models issue.
 */
import { parseArgs } from "node:util";
import { createGpu } from "../src/gpu/mod.ts";
import { type BenchCase, type BenchResult, table, timeCase } from "./harness.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    filter: { type: "string" },
    json: { type: "boolean", default: false },
    small: { type: "boolean", default: false },
    "gpu-debug": { type: "boolean", default: false },
  },
});
const what = positionals[0] ?? "kernels";
if (what !== "kernels") {
  console.error(`bench: unknown target "${what}" (available: kernels)`);
  Deno.exit(2);
}

const gpu = await createGpu({ debug: values["gpu-debug"] });
console.error(`adapter: ${gpu.info.description} (f16 ${gpu.info.f16}, subgroups ${gpu.info.subgroups})`);

// Each family file exports `cases(small: boolean): BenchCase[]`.
const families: BenchCase[] = [];
for await (const e of Deno.readDir(new URL("./kernels/", import.meta.url))) {
  if (!e.name.endsWith(".ts")) continue;
  const mod = await import(new URL(`./kernels/${e.name}`, import.meta.url).href);
  families.push(...(mod.cases as (small: boolean) => BenchCase[])(values.small));
}
families.sort((a, b) => a.name.localeCompare(b.name));
const results: BenchResult[] = [];
for (const c of families) {
  if (values.filter && !`${c.name} ${c.size}`.includes(values.filter)) continue;
  if (c.name.includes("f16") && !gpu.info.f16) continue;
  const r = await timeCase(gpu, c, values.small ? 50 : 300);
  results.push(r);
  console.error(`  ${r.name} ${r.size}: ${r.ms.toFixed(3)} ms`);
}
console.log(values.json ? JSON.stringify({ device: gpu.info, results }, null, 1) : table(results));
gpu.destroy();
