import { assertEquals, assertRejects } from "../assert.ts";
import { denoFs } from "../../platform/deno_fs.ts";
import { openSafetensors, writeSafetensors } from "../../src/io/safetensors.ts";
import { joinPath } from "../../src/io/fs.ts";

Deno.test("denoFs: mkdir -p, write, size, readRange, rename, exists, errors past EOF", async () => {
  const root = await Deno.makeTempDir({ prefix: "webtune_io_" });
  try {
    const dir = denoFs.join(root, "a", "b");
    await denoFs.mkdir(dir);
    await denoFs.mkdir(dir); // again: no error
    const f = denoFs.join(dir, "x.bin");
    await denoFs.writeFile(f, Uint8Array.from({ length: 300 }, (_, i) => i & 255));
    assertEquals(await denoFs.size(f), 300);
    assertEquals([...(await denoFs.readRange(f, 254, 4))], [254, 255, 0, 1]);
    assertEquals((await denoFs.readFile(f)).length, 300);
    await assertRejects(() => denoFs.readRange(f, 298, 5), /x\.bin: cannot read 5 bytes at 298: end of file/);
    await denoFs.rename(f, denoFs.join(dir, "y.bin"));
    assertEquals([await denoFs.exists(f), await denoFs.exists(denoFs.join(dir, "y.bin"))], [false, true]);
    // a sharded checkpoint through the real file system, read back tensor by tensor
    const data = Float32Array.from({ length: 64 }, (_, i) => i / 7);
    await writeSafetensors(
      denoFs,
      denoFs.join(root, "ck"),
      [
        { name: "a", dtype: "F32", shape: [8, 8], data },
        { name: "b", dtype: "BF16", shape: [64], data },
      ],
      undefined,
      { maxShardBytes: 200 },
    );
    const src = await openSafetensors(denoFs, denoFs.join(root, "ck"));
    assertEquals([...(await src.read("a", "f32"))], [...data]);
    assertEquals((await src.read("b", "f16")).length, 64);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("joinPath: drops empty parts and duplicate slashes, keeps absolute roots", () => {
  assertEquals(joinPath("/m/", "config.json"), "/m/config.json");
  assertEquals(joinPath("m", "", "a//b/"), "m/a/b");
  assertEquals(joinPath("/"), "/");
  assertEquals(joinPath("", "x"), "x");
  assertEquals(
    joinPath("https://hf.co/m/", "/resolve//main", "config.json"),
    "https://hf.co/m/resolve/main/config.json",
  );
});
