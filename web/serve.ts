/**
 * A stand-alone host for the demo, for trying it without the API server:
 *
 *   deno run -A web/serve.ts --model DIR [--adapter DIR] [--port 8000] [--host 127.0.0.1] [--build]
 *
 * serves {@link demoRoutes} (page at /demo, the folders at /models/<folder name>/…). The page is built
 * first (`deno task build:web`) when web/dist is missing or with --build. The browser needs WebGPU and a
 * secure origin: open http://127.0.0.1:PORT/demo (or localhost), not the machine's LAN address.
 */
import { parseArgs } from "node:util";
import { Hono } from "hono";
import { demoRoutes } from "./routes.ts";
import { buildWeb } from "./build.ts";

const USAGE =
  "usage: deno run -A web/serve.ts --model DIR [--adapter DIR] [--port 8000] [--host 127.0.0.1] [--build]";

function fail(msg: string): never {
  console.error(`error: ${msg}`);
  Deno.exit(1);
}

const { values: a } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string" },
    adapter: { type: "string" },
    port: { type: "string", default: "8000" },
    host: { type: "string", default: "127.0.0.1" },
    build: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  },
});
if (a.help) {
  console.log(USAGE);
  Deno.exit(0);
}
if (!a.model) fail(`--model DIR is required\n${USAGE}`);
const port = Number(a.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port ${a.port}: want 0..65535`);

const folderName = (dir: string) => dir.replace(/\/+$/, "").split("/").pop() ?? dir;
const models: Record<string, string> = {};
for (const dir of [a.model, a.adapter]) {
  if (!dir) continue;
  const st = await Deno.stat(dir).catch(() => null);
  if (!st?.isDirectory) fail(`${dir} is not a folder`);
  const name = folderName(dir);
  if (name in models) fail(`the model and the adapter folders have the same name "${name}"; rename one`);
  models[name] = dir;
}
const dist = new URL("./dist", import.meta.url).pathname;
if (a.build || !(await Deno.stat(`${dist}/index.html`).catch(() => null))) {
  console.error("building the page (deno task build:web)…");
  await buildWeb();
}
const app = new Hono();
try {
  app.route(
    "/",
    demoRoutes({ models, model: folderName(a.model), adapter: a.adapter ? folderName(a.adapter) : null }),
  );
} catch (e) {
  fail((e as Error).message);
}
Deno.serve({
  hostname: a.host,
  port,
  onListen: ({ hostname, port }) => console.error(`demo at http://${hostname}:${port}/demo`),
}, app.fetch);
