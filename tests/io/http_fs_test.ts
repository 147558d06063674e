import { assertEquals, assertRejects } from "../assert.ts";
import { httpFs } from "../../src/io/http_fs.ts";
import { memoryFs } from "../../src/io/fs.ts";
import { openSafetensors, writeSafetensors } from "../../src/io/safetensors.ts";

/** A static server over a memoryFs; `ranges` false makes it ignore Range like some simple servers. */
function serve(files: Map<string, Uint8Array>, ranges: boolean, log: string[]) {
  return Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname.slice(1));
    const f = files.get(path);
    const range = req.headers.get("range");
    log.push(`${req.method} ${path}${range ? " " + range : ""}`);
    if (!f) return new Response("not found", { status: 404 });
    const m = /^bytes=(\d+)-(\d+)$/.exec(range ?? "");
    if (ranges && m) {
      const [a, b] = [Number(m[1]), Math.min(Number(m[2]), f.length - 1)];
      return new Response(req.method === "HEAD" ? null : f.slice(a, b + 1), {
        status: 206,
        headers: { "content-range": `bytes ${a}-${b}/${f.length}` },
      });
    }
    return new Response(req.method === "HEAD" ? null : f.slice(), {
      headers: { "content-length": String(f.length) },
    });
  });
}

Deno.test("httpFs: safetensors stream over HTTP with Range requests (and without Range support)", async () => {
  const mem = memoryFs({ "m/config.json": '{"a":1}' });
  const data = Float32Array.from({ length: 100 }, (_, i) => i * 0.5);
  await writeSafetensors(mem, "m", [
    { name: "w", dtype: "F32", shape: [10, 10], data },
    { name: "v", dtype: "BF16", shape: [100], data },
  ]);
  for (const ranges of [true, false]) {
    const log: string[] = [];
    const server = serve(mem.files, ranges, log);
    try {
      const fs = httpFs(`http://127.0.0.1:${server.addr.port}/`);
      assertEquals(await fs.readText("m/config.json"), '{"a":1}');
      assertEquals([await fs.exists("m/config.json"), await fs.exists("m/nope.json")], [true, false]);
      assertEquals(await fs.size("m/model.safetensors"), mem.files.get("m/model.safetensors")!.length);
      const src = await openSafetensors(fs, "m");
      log.length = 0;
      assertEquals([...(await src.read("w", "f32"))], [...data]);
      const t = src.tensors.get("w")!;
      assertEquals(
        log,
        [`GET m/model.safetensors bytes=${t.offset}-${t.offset + 399}`],
        "one ranged GET per tensor",
      );
      await assertRejects(
        () => fs.readText("m/missing.txt"),
        /^m\/missing\.txt: HTTP 404 .* from http:\/\/127\.0\.0\.1:\d+\/m\/missing\.txt$/,
      );
      await assertRejects(
        () => fs.readRange("m/config.json", 5, 10),
        /m\/config\.json: asked for 10 bytes at 5, got [0-9]+/,
      );
      await assertRejects(
        () => fs.writeFile("x", new Uint8Array(1)),
        /writeFile: the HTTP file system is read-only/,
      );
    } finally {
      await server.shutdown();
    }
  }
});
