/**
 * `deno serve [--parallel] -A server/main.ts` — settings from WEBTUNE_* environment variables (see
 * server/config.ts), e.g. `WEBTUNE_MODEL=models/qwen2.5-0.5b deno serve -A --port 8000 server/main.ts`.
 * Each serve process (each `--parallel` worker) starts its own engine Worker: its own GPU device, model
 * weights and KV cache (memory note in server/README.md).
 */
import { createApp } from "./app.ts";
import { loadConfig } from "./config.ts";
import { startWorkerBackend } from "./worker_client.ts";
import { demoRoutesFor } from "./demo_routes.ts";

let app;
try {
  const cfg = await loadConfig(Deno.args, Deno.env.toObject());
  const backend = await startWorkerBackend(cfg.init);
  // deno serve drains and exits on SIGINT/SIGTERM once nothing keeps the isolate alive: the engine
  // Worker would (measured: no exit without this).
  for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(sig, () => backend.close());
  app = createApp(backend, { ...cfg.app, publicRoutes: demoRoutesFor(cfg.init) ?? undefined });
} catch (e) {
  console.error(`error: ${(e as Error).message}`);
  Deno.exit(1);
}

export default { fetch: app.fetch } satisfies Deno.ServeDefaultExport;
