/**
 * `deno task bench <what> [flags]`
 *
 *   kernels [--filter TEXT] [--json] [--small]   time every kernel case in bench/kernels/*.ts
 *   [model] [--model DIR [--adapter DIR [--merge-adapter]] | --shape qwen2.5-0.5b|llama-3.2-1b|mistral-7b|tiny]
 *           [--seq-len 1024] [--batch-size 1] [--gen 128] [--chunk 16] [--submit step|chunk] [--replay true|false] [--reps 5]
 *           [--dtype f16|f32] [--profile] [--json]
 *           prefill ms, time to first token, decode tok/s, peak GPU memory (bench/model.ts); any of
 *           these flags selects the model bench, which defaults to the embedded default model
 *           (output/default, from `deno task train`) or, before training, the random `tiny` shape
 *   serve (--model DIR [--adapter DIR] | --shape NAME | --url URL) [--clients 1,16] [--requests 4]
 *           [--gen 128] [--slots 16] [--chunk 16] [--endpoint diagnose|chat] [--dtype f16|f32] [--json]
 *           the HTTP server under N concurrent clients: p50/p95 latency, tokens/s (bench/serve.ts)
 *   train [--shape mistral-7b|qwen2.5-0.5b|llama-3.2-1b|tiny] [--seq-len 2048] [--batch-size 1] [--rank 64]
 *           [--alpha 128] [--targets q_proj,k_proj,v_proj,o_proj|all] [--steps 3] [--warmup 1]
 *           [--checkpoint true|false|N] [--dtype f16|f32] [--lr 1e-4] [--profile] [--json]
 *           one LoRA training step (random weights and tokens, AdamW, optimizerStep of src/train):
 *           s/step mean and min, tokens/s, FLOPs per step, TFLOP/s and fraction of the fp32 ceiling,
 *           peak GPU memory (bench/train.ts); gradient checkpointing defaults to on for seq ≥ 1024;
 *           N recomputes only the first N layers. --profile (here and in the model bench) adds GPU time
 *           per kernel over one more step (train) or 16 decode steps (model).
 *           Defaults: shape mistral-7b (needs a real GPU), all the values shown.
 */
import { parseArgs } from "node:util";
import { createGpu } from "../src/gpu/mod.ts";
import { type BenchCase, type BenchResult, table, timeCase } from "./harness.ts";
import { modelTable, runModelBench } from "./model.ts";
import { runServeBench, serveTable } from "./serve.ts";
import { runTrainBench, trainTable } from "./train.ts";

const MODEL_FLAGS = [
  "model",
  "adapter",
  "shape",
  "seq-len",
  "batch-size",
  "gen",
  "chunk",
  "submit",
  "replay",
  "reps",
  "dtype",
];

const SERVE_FLAGS = ["clients", "requests", "slots", "endpoint", "url"];

const TRAIN_FLAGS = ["rank", "alpha", "targets", "steps", "warmup", "checkpoint", "lr"];

function fail(msg: string): never {
  console.error(`error: ${msg}`);
  Deno.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      filter: { type: "string" },
      json: { type: "boolean", default: false },
      small: { type: "boolean", default: false },
      "gpu-debug": { type: "boolean", default: false },
      "merge-adapter": { type: "boolean", default: false },
      profile: { type: "boolean", default: false },
      ...Object.fromEntries(MODEL_FLAGS.map((f) => [f, { type: "string" as const }])),
      ...Object.fromEntries(SERVE_FLAGS.map((f) => [f, { type: "string" as const }])),
      ...Object.fromEntries(TRAIN_FLAGS.map((f) => [f, { type: "string" as const }])),
    },
  });
} catch (e) {
  fail((e as Error).message);
}
const { values, positionals } = parsed;
const modelFlag = MODEL_FLAGS.some((f) => (values as Record<string, unknown>)[f] !== undefined);
const what = positionals[0] ?? (modelFlag ? "model" : "kernels");
if (what !== "kernels" && what !== "model" && what !== "serve" && what !== "train") {
  fail(`bench: unknown target "${what}" (available: kernels, model, serve, train)`);
}

if (what === "serve") {
  // The server owns its GPU device (in its engine Worker): no device on this thread.
  const v = values as unknown as Record<string, string | undefined>;
  const int = (flag: string, def: number) => {
    const x = v[flag] === undefined ? def : Number(v[flag]);
    if (!Number.isInteger(x) || x < 1) fail(`--${flag} ${v[flag]}: want a positive integer`);
    return x;
  };
  const clients = (v.clients ?? "1,16").split(",").map(Number);
  if (!clients.every((c) => Number.isInteger(c) && c >= 1)) fail(`--clients ${v.clients}: want e.g. 1,4,16`);
  if (v.endpoint && v.endpoint !== "diagnose" && v.endpoint !== "chat") {
    fail(`--endpoint ${v.endpoint}: want diagnose or chat`);
  }
  if (v.dtype !== undefined && v.dtype !== "f16" && v.dtype !== "f32") {
    fail(`--dtype ${v.dtype}: want f16 or f32`);
  }
  try {
    const r = await runServeBench({
      model: v.model,
      adapter: v.adapter,
      mergeAdapter: values["merge-adapter"],
      shape: v.shape,
      url: v.url,
      clients,
      requests: int("requests", 4),
      gen: int("gen", 128),
      slots: int("slots", Math.max(...clients)),
      chunk: int("chunk", 16),
      endpoint: (v.endpoint ?? "diagnose") as "diagnose" | "chat",
      dtype: v.dtype as "f16" | "f32" | undefined,
      log: (line) => console.error(line),
    });
    console.log(values.json ? JSON.stringify(r) : serveTable(r));
  } catch (e) {
    fail((e as Error).message);
  }
  Deno.exit(0);
}

const gpu = await createGpu({ debug: values["gpu-debug"] });
console.error(`adapter: ${gpu.info.description} (f16 ${gpu.info.f16}, subgroups ${gpu.info.subgroups})`);

if (what === "model") {
  const v = values as unknown as Record<string, string | undefined>;
  const int = (flag: string, def: number) => {
    const x = v[flag] === undefined ? def : Number(v[flag]);
    if (!Number.isInteger(x) || x < 1) fail(`--${flag} ${v[flag]}: want a positive integer`);
    return x;
  };
  if (v.dtype !== undefined && v.dtype !== "f16" && v.dtype !== "f32") {
    fail(`--dtype ${v.dtype}: want f16 or f32`);
  }
  if (v.submit !== undefined && v.submit !== "step" && v.submit !== "chunk") {
    fail(`--submit ${v.submit}: want step or chunk`);
  }
  if (v.replay !== undefined && v.replay !== "true" && v.replay !== "false") {
    fail(`--replay ${v.replay}: want true or false`);
  }
  const tty = Deno.stderr.isTerminal();
  const enc = new TextEncoder();
  try {
    const r = await runModelBench(gpu, {
      model: v.model,
      adapter: v.adapter,
      mergeAdapter: values["merge-adapter"],
      shape: v.shape,
      seqLen: int("seq-len", 1024),
      batchSize: int("batch-size", 1),
      gen: int("gen", 128),
      chunk: int("chunk", 16),
      submit: v.submit as "step" | "chunk" | undefined,
      replay: v.replay === undefined ? undefined : v.replay !== "false",
      reps: int("reps", 5),
      dtype: v.dtype as "f16" | "f32" | undefined,
      profile: values.profile === true,
      // One rewritten progress line on a terminal, plain lines in logs.
      log: (line) => Deno.stderr.writeSync(enc.encode(tty ? `\r\x1b[2K${line}` : `${line}\n`)),
    });
    if (tty) console.error("");
    console.log(values.json ? JSON.stringify(r) : modelTable(r));
  } catch (e) {
    if (tty) console.error("");
    fail((e as Error).message);
  }
  gpu.destroy();
  Deno.exit(0);
}

if (what === "train") {
  const v = values as unknown as Record<string, string | undefined>;
  const int = (flag: string, def: number, min = 1) => {
    const x = v[flag] === undefined ? def : Number(v[flag]);
    if (!Number.isInteger(x) || x < min) fail(`--${flag} ${v[flag]}: want an integer ≥ ${min}`);
    return x;
  };
  if (v.dtype !== undefined && v.dtype !== "f16" && v.dtype !== "f32") {
    fail(`--dtype ${v.dtype}: want f16 or f32`);
  }
  if (v.checkpoint !== undefined && !/^(true|false|\d+)$/.test(v.checkpoint)) {
    fail(`--checkpoint ${v.checkpoint}: want true, false or a number of layers to recompute`);
  }
  const alpha = v.alpha === undefined ? 128 : Number(v.alpha);
  if (!(alpha > 0)) fail(`--alpha ${v.alpha}: want a positive number`);
  const lr = v.lr === undefined ? 1e-4 : Number(v.lr);
  if (!(lr > 0)) fail(`--lr ${v.lr}: want a positive number`);
  const targets = (v.targets ?? "q_proj,k_proj,v_proj,o_proj").split(",").map((t) => t.trim());
  if (targets.some((t) => !t)) fail(`--targets ${v.targets}: want e.g. q_proj,v_proj or all`);
  const tty = Deno.stderr.isTerminal();
  const enc = new TextEncoder();
  try {
    const r = await runTrainBench(gpu, {
      shape: v.shape ?? "mistral-7b",
      seqLen: int("seq-len", 2048),
      batchSize: int("batch-size", 1),
      rank: int("rank", 64),
      alpha,
      targets: targets.length === 1 && targets[0] === "all" ? "all" : targets,
      steps: int("steps", 3),
      warmup: int("warmup", 1, 0),
      checkpoint: v.checkpoint === undefined
        ? undefined
        : /^\d+$/.test(v.checkpoint)
        ? Number(v.checkpoint)
        : v.checkpoint === "true",
      dtype: v.dtype as "f16" | "f32" | undefined,
      lr,
      profile: values.profile === true,
      log: (line) => Deno.stderr.writeSync(enc.encode(tty ? `\r\x1b[2K${line}` : `${line}\n`)),
    });
    if (tty) console.error("");
    console.log(values.json ? JSON.stringify(r) : trainTable(r));
  } catch (e) {
    if (tty) console.error("");
    gpu.destroy(); // exiting with a live device has crashed lavapipe's teardown
    fail((e as Error).message);
  }
  gpu.destroy();
  Deno.exit(0);
}

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
  console.error(
    `  ${r.name} ${r.size}: GPU ${r.gpuMs?.toFixed(3) ?? "—"} ms, wall ${r.wallMs.toFixed(3)} ms`,
  );
}
console.log(values.json ? JSON.stringify({ device: gpu.info, results }, null, 1) : table(results));
gpu.destroy();
