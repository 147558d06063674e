/**
 * demoRoutes (files of the configured folders only, Range/HEAD, config.json fingerprints) and
 * cachedHttpFs (first read downloads, a second file system reads the Cache API, a new version
 * refetches and drops the old entry), in Deno against a real local server. No GPU, no browser.
 */
import { Hono } from "hono";
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { demoRoutes } from "../../server/demo_routes.ts";
import { cachedHttpFs } from "../../web/cached_fs.ts";
import type { DemoConfig } from "../../src/engine/demo_config.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const MODEL = `${ROOT}tests/testdata/llama`;

async function withServer(
  fn: (url: string, folder: string, gets: string[]) => Promise<void>,
): Promise<void> {
  const folder = await Deno.makeTempDir({ prefix: "webtune-models-" });
  const dist = await Deno.makeTempDir({ prefix: "webtune-dist-" });
  await Deno.writeTextFile(`${dist}/index.html`, "<!doctype html><title>demo</title>");
  await Deno.writeFile(`${folder}/data.bin`, Uint8Array.from({ length: 1000 }, (_, i) => i % 251));
  await Deno.writeTextFile(`${folder}/config.json`, '{"a":1}');
  const gets: string[] = [];
  const app = new Hono();
  app.use("*", async (c, next) => {
    gets.push(`${c.req.method} ${c.req.path}`);
    await next();
  });
  app.route(
    "/",
    demoRoutes({ models: { tiny: folder, llama: MODEL }, model: "llama", adapter: "tiny", distDir: dist }),
  );
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`, folder, gets);
  } finally {
    await server.shutdown();
    await Deno.remove(folder, { recursive: true });
    await Deno.remove(dist, { recursive: true });
  }
}

Deno.test("demoRoutes: page, config, model files (Range, HEAD), nothing outside the folders", async () => {
  await withServer(async (url, folder) => {
    const redirect = await fetch(`${url}/demo`, { redirect: "manual" });
    await redirect.body?.cancel();
    assertEquals(redirect.status, 301);
    assertEquals(redirect.headers.get("location"), "/demo/");
    const page = await fetch(`${url}/demo/`);
    assertEquals(await page.text(), "<!doctype html><title>demo</title>");
    const missing = await fetch(`${url}/demo/page.js`);
    await missing.body?.cancel();
    assertEquals(missing.status, 404);

    const cfg: DemoConfig = await (await fetch(`${url}/demo/config.json`)).json();
    assertEquals(cfg.model, "llama");
    assertEquals(cfg.adapter, "tiny");
    assertEquals(cfg.modelsUrl, "../models/");
    const v1 = cfg.versions.tiny;
    assert(/^[0-9a-f]{8}$/.test(v1), `fingerprint ${v1}`);
    await Deno.writeTextFile(`${folder}/config.json`, '{"a":22}');
    const cfg2: DemoConfig = await (await fetch(`${url}/demo/config.json`)).json();
    assert(cfg2.versions.tiny !== v1, "a changed file changes the fingerprint");
    assertEquals(cfg2.versions.llama, cfg.versions.llama);

    const whole = new Uint8Array(await (await fetch(`${url}/models/tiny/data.bin`)).arrayBuffer());
    assertEquals(whole.length, 1000);
    assertEquals(whole[300], 300 % 251);
    const part = await fetch(`${url}/models/tiny/data.bin`, { headers: { Range: "bytes=100-109" } });
    assertEquals(part.status, 206);
    assertEquals(part.headers.get("content-range"), "bytes 100-109/1000");
    assertEquals(
      [...new Uint8Array(await part.arrayBuffer())],
      Array.from({ length: 10 }, (_, i) => 100 + i),
    );
    const tail = await fetch(`${url}/models/tiny/data.bin`, { headers: { Range: "bytes=-3" } });
    assertEquals([...new Uint8Array(await tail.arrayBuffer())], [997 % 251, 998 % 251, 999 % 251]);
    const past = await fetch(`${url}/models/tiny/data.bin`, { headers: { Range: "bytes=1000-" } });
    await past.body?.cancel();
    assertEquals(past.status, 416);
    const head = await fetch(`${url}/models/tiny/data.bin`, { method: "HEAD" });
    assertEquals(head.headers.get("content-length"), "1000");
    const dir = await fetch(`${url}/models/tiny`, { method: "HEAD" });
    assertEquals(dir.status, 200);
    const list = await (await fetch(`${url}/models/tiny`)).json();
    assertEquals(list.files.map((f: { name: string }) => f.name), ["config.json", "data.bin"]);

    for (const bad of ["/models/other/config.json", "/models/tiny/nope.json", "/models/tiny/%2e%2e/x"]) {
      const r = await fetch(url + bad);
      await r.body?.cancel();
      assert(r.status === 404 || r.status === 400, `${bad}: ${r.status}`);
    }
    const sneaky = await fetch(`${url}/models/tiny/..%2F..%2Fetc%2Fpasswd`);
    await sneaky.body?.cancel();
    assertEquals(sneaky.status, 400);
  });
});

Deno.test("demoRoutes: folder names must be served ones", () => {
  let msg = "";
  try {
    demoRoutes({ models: { a: "x" }, model: "b" });
  } catch (e) {
    msg = (e as Error).message;
  }
  assert(/"b" is not one of the served folders \(a\)/.test(msg), msg);
});

Deno.test("cachedHttpFs: downloads once, then reads the Cache API; a new version refetches", async () => {
  const cacheName = `webtune-test-${crypto.randomUUID()}`;
  try {
    await withServer(async (url, _folder, gets) => {
      const base = `${url}/models/`;
      const fs1 = cachedHttpFs(base, { cacheName, version: { tiny: "v1" } });
      assertEquals([...await fs1.readRange("tiny/data.bin", 250, 4)], [250, 0, 1, 2]);
      assertEquals([...await fs1.readRange("tiny/data.bin", 996, 4)], [
        996 % 251,
        997 % 251,
        998 % 251,
        999 % 251,
      ]);
      assertEquals(await fs1.size("tiny/data.bin"), 1000);
      assertEquals(gets.filter((g) => g === "GET /models/tiny/data.bin").length, 1, "one download per file");
      assertEquals(fs1.stats.downloaded, ["tiny/data.bin"]);
      await assertRejects(() => fs1.readRange("tiny/data.bin", 998, 4), /cannot read 4 bytes at 998/);
      await assertRejects(() => fs1.readText("tiny/nope.json"), /HTTP 404/);
      assertEquals(await fs1.exists("tiny/nope.json"), false);
      await assertRejects(() => fs1.writeFile("tiny/x", new Uint8Array(1)), /read-only/);

      // A second file system (a page reload): no download, bytes from the cache.
      const before = gets.length;
      const progress: boolean[] = [];
      const fs2 = cachedHttpFs(base, {
        cacheName,
        version: { tiny: "v1" },
        onDownload: (p) => progress.push(p.fromCache),
      });
      assert(await fs2.exists("tiny/data.bin"));
      assertEquals((await fs2.readFile("tiny/data.bin")).length, 1000);
      assertEquals(gets.slice(before), [], "nothing fetched from the server");
      assertEquals(fs2.stats, { networkBytes: 0, cachedBytes: 1000, downloaded: [] });
      assertEquals(progress, [true]);

      // A new fingerprint: downloaded again, and the v1 entry is gone.
      const fs3 = cachedHttpFs(base, { cacheName, version: { tiny: "v2" } });
      assertEquals((await fs3.readFile("tiny/data.bin")).length, 1000);
      assertEquals(fs3.stats.downloaded, ["tiny/data.bin"]);
      const keys = (await (await caches.open(cacheName)).keys()).map((r) => new URL(r.url).search);
      assertEquals(keys, ["?v=v2"]);

      // Without the Cache API (insecure origin): files in memory, still one download each.
      const n = gets.length;
      const mem = cachedHttpFs(base, { caches: null });
      await mem.readRange("tiny/data.bin", 0, 10);
      await mem.readRange("tiny/data.bin", 10, 10);
      assertEquals(gets.slice(n), ["GET /models/tiny/data.bin"]);
    });
  } finally {
    await caches.delete(cacheName);
  }
});
