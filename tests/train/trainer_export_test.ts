/**
 * Export: base + PEFT adapter → a merged, sharded HF folder; loading it gives the logits of the base
 * with the adapter attached (unmerged), and the tokenizer files come along.
 */
import { assert, assertEquals } from "../assert.ts";
import { relL2, testGpu } from "../util.ts";
import { exportMerged } from "../../src/train/export.ts";
import { loadModel } from "../../src/model/load.ts";
import { loadAdapter } from "../../src/model/adapter.ts";
import { HfTokenizer } from "../../src/io/tokenizer.ts";
import { memoryFs } from "../../src/io/fs.ts";
import { logitsOf } from "./trainer_fixture.ts";

const gpu = await testGpu();

Deno.test("export: merged sharded folder loads with the adapter's logits", async () => {
  const init: Record<string, Uint8Array> = {};
  for (
    const f of [
      "config.json",
      "generation_config.json",
      "model.safetensors",
      "tokenizer.json",
      "tokenizer_config.json",
    ]
  ) {
    init[`base/${f}`] = await Deno.readFile(new URL(`../testdata/llama/${f}`, import.meta.url));
  }
  for (const f of ["adapter_config.json", "adapter_model.safetensors"]) {
    init[`lora/${f}`] = await Deno.readFile(new URL(`../testdata/llama_lora/${f}`, import.meta.url));
  }
  const fs = memoryFs(init);
  const r = await exportMerged(gpu, fs, {
    model: "base",
    adapter: "lora",
    out: "merged",
    maxShardBytes: 200_000,
  });
  assert(r.merged > 0, "layers merged");
  const index = JSON.parse(await fs.readText("merged/model.safetensors.index.json"));
  const shards = [...new Set(Object.values(index.weight_map as Record<string, string>))];
  assert(shards.length >= 3, `sharded at 200 kB: ${shards}`);
  for (const s of shards) assert(await fs.exists(`merged/${s}`), `merged/${s} written`);
  assertEquals(
    (await HfTokenizer.load(fs, "merged")).encode("hello world"),
    (await HfTokenizer.load(fs, "base")).encode("hello world"),
  );

  const ids = [0, 17, 250, 3, 99, 401, 64];
  const ref = await loadModel(gpu, fs, "base", { dtype: "f32" });
  const merged = await loadModel(gpu, fs, "merged", { dtype: "f32" });
  try {
    const base = await logitsOf(ref, ids);
    await loadAdapter(ref, fs, "lora");
    const want = await logitsOf(ref, ids);
    const got = await logitsOf(merged, ids);
    assert(relL2(base, want) > 1e-3, "the adapter changes the logits");
    assert(relL2(got, want) < 1e-5, `merged vs base+adapter: rel L2 ${relL2(got, want)}`);
  } finally {
    ref.dispose();
    merged.dispose();
  }
});
