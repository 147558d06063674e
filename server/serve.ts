/**
 * `deno task serve [--model DIR] [--adapter DIR] [--port 8000] [--host 127.0.0.1] …` — the diagnosis API
 * (server/app.ts) with the engine in a Worker. All flags: server/config.ts. Prints
 * `listening on http://HOST:PORT` once the model is loaded; SIGINT/SIGTERM drain and stop.
 */
import { createApp } from "./app.ts";
import { loadConfig, USAGE } from "./config.ts";
import { startWorkerBackend } from "./worker_client.ts";
import { demoRoutesFor } from "./demo_routes.ts";

if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
  console.log(USAGE);
  Deno.exit(0);
}
let cfg;
try {
  cfg = await loadConfig(Deno.args, Deno.env.toObject());
} catch (e) {
  console.error(`error: ${(e as Error).message}\n${USAGE}`);
  Deno.exit(1);
}
let backend;
try {
  backend = await startWorkerBackend(cfg.init);
} catch (e) {
  console.error(`error: ${(e as Error).message}`);
  Deno.exit(1);
}
const info = await backend.info();
const server = Deno.serve({
  hostname: cfg.host,
  port: cfg.port,
  onListen: ({ hostname, port }) => {
    console.log(
      `model ${info.model}${
        info.adapter ? ` + adapter ${info.adapter}` : ""
      }: ${info.slots} slots × ${info.contextLength} tokens` +
        (cfg.app.apiKeys?.length ? `, ${cfg.app.apiKeys.length} API key(s)` : ", no API keys"),
    );
    console.log(`listening on http://${hostname}:${port}`);
  },
}, createApp(backend, { ...cfg.app, publicRoutes: demoRoutesFor(cfg.init) ?? undefined }).fetch);
const stop = async () => {
  await server.shutdown();
  await backend.close();
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
