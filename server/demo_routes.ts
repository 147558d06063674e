/**
 * The demo's HTTP routes, for the Hono server (issue 7) to mount, or any Deno host:
 *
 * - `GET /demo` → `/demo/`: the page (web/dist, from `deno task build:web`), `GET /demo/config.json`;
 * - `GET|HEAD /models/<name>/<file>`: files of the model folders named in `models`, with single-range
 *   `Range` support (src/io/http_fs.ts streams tensors that way) and `HEAD` for sizes; `/models/<name>`
 *   itself answers 200 (exists) with its file list.
 *
 * Only the configured folders are served, never a path outside them, never a directory listing of
 * anything else. Runs in Deno (reads files with Deno APIs); the browser code never imports it.
 *
 * @example
 * import { Hono } from "hono";
 * const app = new Hono();
 * app.route("/", demoRoutes({ models: { llama: "tests/testdata/llama" }, model: "llama" }));
 * Deno.serve({ port: 8000 }, app.fetch);
 */
import { Hono } from "hono";
import type { DemoConfig } from "../src/engine/demo_config.ts";

/** Options of {@link demoRoutes}. */
export interface DemoRoutesOptions {
  /** Model and adapter folders on disk, by the name they get under /models/. */
  models: Record<string, string>;
  /** The folder the page opens (a key of `models`). */
  model: string;
  /** The PEFT adapter folder the page attaches (a key of `models`), if any. */
  adapter?: string | null;
  /** The built page (default: web/dist, from `deno task build:web`). */
  distDir?: string;
  /** Default "max new tokens" of the form (128). */
  maxNewTokens?: number;
}

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  json: "application/json",
  map: "application/json",
  txt: "text/plain; charset=utf-8",
  md: "text/plain; charset=utf-8",
  jinja: "text/plain; charset=utf-8",
  png: "image/png",
  svg: "image/svg+xml",
};
const typeOf = (name: string) => TYPES[name.split(".").pop()!.toLowerCase()] ?? "application/octet-stream";

/**
 * A Hono app with the demo's routes at `/demo…` and `/models/…`; mount it with `app.route("/", …)`.
 * Throws when `model`/`adapter` name no entry of `models`.
 */
export function demoRoutes(opts: DemoRoutesOptions): Hono {
  for (const n of [opts.model, opts.adapter]) {
    if (n && !(n in opts.models)) {
      throw new Error(
        `demoRoutes: "${n}" is not one of the served folders (${Object.keys(opts.models).join(", ")})`,
      );
    }
  }
  for (const n of Object.keys(opts.models)) {
    if (!/^[\w.-]+$/.test(n) || n === "." || n === "..") {
      throw new Error(`demoRoutes: bad folder name "${n}"`);
    }
  }
  const dist = opts.distDir ?? new URL("../web/dist", import.meta.url).pathname;
  const app = new Hono();

  app.get("/demo", (c) => c.redirect("/demo/", 301));
  app.get("/demo/config.json", async (c) => {
    const versions: Record<string, string> = {};
    for (const [name, dir] of Object.entries(opts.models)) versions[name] = await fingerprint(dir);
    const body: DemoConfig = {
      modelsUrl: "../models/",
      model: opts.model,
      adapter: opts.adapter ?? null,
      versions,
      maxNewTokens: opts.maxNewTokens ?? 128,
    };
    c.header("cache-control", "no-store");
    return c.json(body);
  });
  app.get("/demo/:file{[\\w.-]*}", async (c) => {
    const file = c.req.param("file") || "index.html";
    if (file.startsWith(".")) return c.text("not found", 404);
    const path = `${dist}/${file}`;
    try {
      const data = await Deno.readFile(path);
      return c.body(data, 200, { "content-type": typeOf(file), "cache-control": "no-cache" });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      if (file === "index.html") {
        return c.text(
          `the demo is not built (${dist}/index.html is missing): run \`deno task build:web\``,
          503,
        );
      }
      return c.text("not found", 404);
    }
  });

  const serveModelFile = async (c: import("hono").Context, head: boolean) => {
    const name = c.req.param("name")!;
    const dir = opts.models[name];
    if (dir === undefined) return c.text(`no model folder "${name}"`, 404);
    const rest = c.req.path.slice(`/models/${name}`.length).replace(/^\/+/, "");
    if (rest === "") {
      const files = await listFiles(dir);
      return head ? c.body(null, 200) : c.json({ name, files });
    }
    const parts = decodeURIComponent(rest).split("/");
    if (parts.some((p) => p === "" || p === "." || p === ".." || p.includes("\\") || p.includes("\0"))) {
      return c.text("bad path", 400);
    }
    const path = `${dir}/${parts.join("/")}`;
    let size: number;
    try {
      const st = await Deno.stat(path);
      if (!st.isFile) return c.text("not found", 404);
      size = st.size;
    } catch {
      return c.text("not found", 404);
    }
    const headers: Record<string, string> = {
      "content-type": typeOf(path),
      "accept-ranges": "bytes",
      "cache-control": "no-cache",
    };
    let start = 0, end = size - 1, status: 200 | 206 = 200;
    const range = c.req.header("range");
    if (range) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      if (!m || (m[1] === "" && m[2] === "")) return c.text(`unsupported range ${range}`, 416);
      if (m[1] === "") start = Math.max(0, size - Number(m[2]));
      else (start = Number(m[1]), end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1));
      if (start > end || start >= size) {
        return c.body(null, 416, { "content-range": `bytes */${size}` });
      }
      status = 206;
      headers["content-range"] = `bytes ${start}-${end}/${size}`;
    }
    headers["content-length"] = String(end - start + 1);
    if (head) return c.body(null, status, headers);
    return c.body(await fileStream(path, start, end - start + 1), status, headers);
  };
  app.on("HEAD", ["/models/:name", "/models/:name/*"], (c) => serveModelFile(c, true));
  app.get("/models/:name", (c) => serveModelFile(c, false));
  app.get("/models/:name/*", (c) => serveModelFile(c, false));
  return app;
}

/** `length` bytes of `path` from `offset`, streamed (a 7B model's shard is never read whole). */
async function fileStream(path: string, offset: number, length: number): Promise<ReadableStream<Uint8Array>> {
  const f = await Deno.open(path, { read: true });
  await f.seek(offset, Deno.SeekMode.Start);
  let left = length;
  return new ReadableStream<Uint8Array>({
    type: "bytes",
    async pull(ctl) {
      const buf = new Uint8Array(Math.min(left, 1 << 20));
      const n = buf.length ? await f.read(buf) : null;
      if (n === null || n === 0) {
        f.close();
        if (left > 0) ctl.error(new Error(`${path}: file shrank while being sent`));
        else ctl.close();
        return;
      }
      left -= n;
      ctl.enqueue(buf.subarray(0, n));
    },
    cancel() {
      f.close();
    },
  });
}

async function listFiles(dir: string): Promise<{ name: string; size: number }[]> {
  const out: { name: string; size: number }[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile) out.push({ name: e.name, size: (await Deno.stat(`${dir}/${e.name}`)).size });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** FNV-1a of the folder's file names, sizes and modification times: changes when any file does. */
async function fingerprint(dir: string): Promise<string> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.isFile) names.push(e.name);
  let h = 0x811c9dc5;
  for (const name of names.sort()) {
    const st = await Deno.stat(`${dir}/${name}`);
    for (const ch of `${name}:${st.size}:${st.mtime?.getTime() ?? 0};`) {
      h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
    }
  }
  return h.toString(16).padStart(8, "0");
}

/**
 * The demo routes for the model a server was started with (`--model DIR [--adapter DIR]`): the page
 * opens the same folders the API serves. Null for random-weight bench models (no folder to serve).
 *
 * @example
 * createApp(backend, { ...cfg.app, publicRoutes: demoRoutesFor(cfg.init) ?? undefined });
 */
export function demoRoutesFor(init: { model: string; shape?: string; adapter?: string | null }): Hono | null {
  if (init.shape || !init.model) return null;
  const name = (dir: string, fallback: string) =>
    dir.replace(/\/+$/, "").split("/").pop()?.replace(/[^\w.-]/g, "_") || fallback;
  const model = name(init.model, "model");
  const models: Record<string, string> = { [model]: init.model };
  let adapter: string | null = null;
  if (init.adapter) {
    adapter = name(init.adapter, "adapter");
    if (adapter === model) adapter = `${adapter}-adapter`;
    models[adapter] = init.adapter;
  }
  return demoRoutes({ models, model, adapter });
}
