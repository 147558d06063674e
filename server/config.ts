/**
 * Server settings from flags (`deno task serve`) or environment variables (`deno serve server/main.ts`,
 * where flags are awkward): one parser, so both entry points agree.
 *
 *   --model DIR            WEBTUNE_MODEL          HF model folder (default: output/default when present)
 *   --adapter DIR          WEBTUNE_ADAPTER        PEFT adapter folder
 *   --merge-adapter        WEBTUNE_MERGE_ADAPTER=1  fold the adapter into the weights (faster decode)
 *   --dtype f16|f32        WEBTUNE_DTYPE
 *   --name ID              WEBTUNE_MODEL_NAME     model id for clients (default: the folder's name)
 *   --host H --port P      WEBTUNE_HOST / WEBTUNE_PORT (deno task serve only; default 127.0.0.1:8000)
 *   --slots N              WEBTUNE_SLOTS          concurrent sequences (KV-cache slots, default 8)
 *   --context N            WEBTUNE_CONTEXT        tokens per slot (default: the model's maximum, ≤ 4096)
 *   --chunk N              WEBTUNE_CHUNK          decode steps per readback (default 16)
 *   --max-queue N          WEBTUNE_MAX_QUEUE      waiting requests before 503 (default 64)
 *   --timeout-ms N         WEBTUNE_TIMEOUT_MS     per-request timeout (default 120000)
 *   --api-keys-file F      WEBTUNE_API_KEYS_FILE  one key per line; WEBTUNE_API_KEYS=k1,k2 also works
 *   --cors ORIGINS         WEBTUNE_CORS           comma-separated origins or *
 *   --max-body-bytes N     WEBTUNE_MAX_BODY_BYTES (default 65536)
 *   --rate-limit N         WEBTUNE_RATE_LIMIT     requests per minute per client
 *   --log-bodies           WEBTUNE_LOG_BODIES=1   log request bodies (patient data!)
 *   --quiet                WEBTUNE_QUIET=1        no access log
 */
import { parseArgs } from "node:util";
import type { AppOptions } from "./app.ts";
import type { WorkerInit } from "./worker_client.ts";

/** Everything an entry point needs. */
export interface ServerConfig {
  init: WorkerInit;
  app: AppOptions;
  host: string;
  port: number;
}

/** Where the trainer puts the embedded default model. */
export const DEFAULT_MODEL = "output/default";

const FLAGS = {
  model: "WEBTUNE_MODEL",
  adapter: "WEBTUNE_ADAPTER",
  dtype: "WEBTUNE_DTYPE",
  name: "WEBTUNE_MODEL_NAME",
  host: "WEBTUNE_HOST",
  port: "WEBTUNE_PORT",
  slots: "WEBTUNE_SLOTS",
  context: "WEBTUNE_CONTEXT",
  chunk: "WEBTUNE_CHUNK",
  "max-queue": "WEBTUNE_MAX_QUEUE",
  "timeout-ms": "WEBTUNE_TIMEOUT_MS",
  "api-keys-file": "WEBTUNE_API_KEYS_FILE",
  cors: "WEBTUNE_CORS",
  "max-body-bytes": "WEBTUNE_MAX_BODY_BYTES",
  "rate-limit": "WEBTUNE_RATE_LIMIT",
} as const;
const SWITCHES = {
  "merge-adapter": "WEBTUNE_MERGE_ADAPTER",
  "log-bodies": "WEBTUNE_LOG_BODIES",
  quiet: "WEBTUNE_QUIET",
};

/** The usage line of `deno task serve`. */
export const USAGE =
  "usage: deno task serve [--model DIR] [--adapter DIR [--merge-adapter]] [--host H] [--port P] " +
  "[--slots N] [--context N] [--chunk N] [--max-queue N] [--timeout-ms N] [--api-keys-file F] [--cors ORIGINS] " +
  "[--max-body-bytes N] [--rate-limit N] [--dtype f16|f32] [--name ID] [--log-bodies] [--quiet]";

/**
 * Parses flags (which win) and environment variables; throws an Error with one clear message.
 *
 * @example
 * const cfg = await loadConfig(Deno.args, Deno.env.toObject());
 */
export async function loadConfig(args: string[], env: Record<string, string>): Promise<ServerConfig> {
  const { values: a } = parseArgs({
    args,
    options: {
      ...Object.fromEntries(Object.keys(FLAGS).map((k) => [k, { type: "string" as const }])),
      ...Object.fromEntries(Object.keys(SWITCHES).map((k) => [k, { type: "boolean" as const }])),
    },
  });
  const get = (k: keyof typeof FLAGS) => (a[k] as string | undefined) ?? (env[FLAGS[k]] || undefined);
  const on = (k: keyof typeof SWITCHES) =>
    (a[k] as boolean | undefined) ?? ["1", "true"].includes(env[SWITCHES[k]]);
  const int = (k: keyof typeof FLAGS, min: number) => {
    const v = get(k);
    if (v === undefined) return undefined;
    const x = Number(v);
    if (!Number.isInteger(x) || x < min) {
      throw new Error(`--${k} (${FLAGS[k]}) ${v}: want an integer ≥ ${min}`);
    }
    return x;
  };
  let model = get("model");
  if (!model) {
    const exists = await Deno.stat(DEFAULT_MODEL).then(() => true, () => false);
    if (!exists) {
      throw new Error(
        `no model: pass --model DIR (or set WEBTUNE_MODEL); the default model ${DEFAULT_MODEL} is not built ` +
          `(deno task train makes it)`,
      );
    }
    model = DEFAULT_MODEL;
  }
  const dtype = get("dtype");
  if (dtype && dtype !== "f16" && dtype !== "f32") throw new Error(`--dtype ${dtype}: want f16 or f32`);
  const keys = (env.WEBTUNE_API_KEYS ?? "").split(",").map((k) => k.trim()).filter(Boolean);
  const keyFile = get("api-keys-file");
  if (keyFile) {
    let text: string;
    try {
      text = await Deno.readTextFile(keyFile);
    } catch (e) {
      throw new Error(`--api-keys-file ${keyFile}: ${(e as Error).message}`);
    }
    const fromFile = text.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
    if (!fromFile.length) throw new Error(`--api-keys-file ${keyFile}: no keys (one per line)`);
    keys.push(...fromFile);
  }
  const quiet = on("quiet");
  return {
    init: {
      model,
      adapter: get("adapter") ?? null,
      mergeAdapter: on("merge-adapter"),
      dtype: (dtype as "f16" | "f32" | undefined) ?? null,
      name: get("name") ?? model.replace(/\/+$/, "").split("/").pop()!,
      scheduler: {
        slots: int("slots", 1),
        contextLength: int("context", 2),
        chunkSize: int("chunk", 1),
        maxQueue: int("max-queue", 0),
      },
    },
    app: {
      apiKeys: keys,
      corsOrigins: (get("cors") ?? "").split(",").map((s) => s.trim()).filter(Boolean),
      maxBodyBytes: int("max-body-bytes", 1),
      requestTimeoutMs: int("timeout-ms", 1),
      rateLimitPerMinute: int("rate-limit", 1),
      logBodies: on("log-bodies"),
      log: quiet ? undefined : (line) => console.log(line),
    },
    host: get("host") ?? "127.0.0.1",
    port: int("port", 0) ?? 8000,
  };
}
