/**
 * Malformed model folders give one clear line naming the file and the problem: truncated safetensors,
 * unsupported model_type, missing tokenizer, config/weights shape and key mismatches, adapters for
 * another model. Folders are built in memory from the tiny Llama in tests/testdata.
 */
import { assert, assertRejects } from "../assert.ts";
import { testGpu } from "../util.ts";
import { memoryFs } from "../../src/io/fs.ts";
import { openSafetensors, writeSafetensors } from "../../src/io/safetensors.ts";
import { Tensor } from "../../src/tensor/mod.ts";
import { assertClose } from "../util.ts";
import { loadModel } from "../../src/model/load.ts";
import { loadAdapter } from "../../src/model/adapter.ts";
import { openModel } from "../../src/engine/open.ts";
import { golden, TESTDATA } from "./golden.ts";

const gpu = await testGpu();

async function folder(name: string, prefix: string): Promise<Record<string, Uint8Array>> {
  const files: Record<string, Uint8Array> = {};
  for await (const e of Deno.readDir(`${TESTDATA}/${name}`)) {
    files[`${prefix}/${e.name}`] = await Deno.readFile(`${TESTDATA}/${name}/${e.name}`);
  }
  return files;
}

const llama = await folder("llama", "m");
const config = JSON.parse(new TextDecoder().decode(llama["m/config.json"]));
const withConfig = (patch: Record<string, unknown>) =>
  memoryFs({ ...llama, "m/config.json": JSON.stringify({ ...config, ...patch }) });

function oneLine(e: Error): void {
  assert(!e.message.includes("\n"), `message is one line: ${e.message}`);
}

Deno.test("truncated safetensors: error names the file", async () => {
  const st = llama["m/model.safetensors"];
  const fs = memoryFs({ ...llama, "m/model.safetensors": st.subarray(0, st.length - 1000) });
  oneLine(await assertRejects(() => loadModel(gpu, fs, "m", { dtype: "f32" }), /model\.safetensors/));
});

Deno.test("unsupported model_type: error names config.json and the supported types", async () => {
  const e = await assertRejects(() => loadModel(gpu, withConfig({ model_type: "gpt2" }), "m"), /gpt2/);
  assert(/config\.json/.test(e.message) && /llama/.test(e.message), e.message);
  oneLine(e);
});

Deno.test("missing tokenizer.json: clear error before any weight is loaded", async () => {
  const files = { ...llama };
  delete files["m/tokenizer.json"];
  oneLine(await assertRejects(() => openModel(gpu, memoryFs(files), "m"), /tokenizer\.json/));
  await assertRejects(() => openModel(gpu, memoryFs(files), "nope"), /model folder nope does not exist/);
});

Deno.test("config vs weights: shape mismatches and both key lists in one error", async () => {
  let e = await assertRejects(
    () => loadModel(gpu, withConfig({ intermediate_size: 128 }), "m", { dtype: "f32" }),
    /shape mismatches: model\.layers\.0\.mlp\.gate_proj\.weight \[160,64\] \(config wants \[128,64\]\)/,
  );
  oneLine(e);
  e = await assertRejects(
    () => loadModel(gpu, withConfig({ num_hidden_layers: 3 }), "m", { dtype: "f32" }),
    /missing keys: model\.layers\.2\./,
  );
  assert(/unexpected keys: none/.test(e.message), e.message);
  e = await assertRejects(
    () => loadModel(gpu, withConfig({ num_hidden_layers: 1 }), "m", { dtype: "f32" }),
    /missing keys: none; unexpected keys: model\.layers\.1\./,
  );
  e = await assertRejects(
    () => loadModel(gpu, withConfig({ tie_word_embeddings: true, vocab_size: 400 }), "m", { dtype: "f32" }),
    /model\.embed_tokens\.weight \[500,64\] \(config wants \[400,64\]\)/,
  );
});

Deno.test("adapter for another model: names the module and the shapes", async () => {
  const model = await loadModel(gpu, memoryFs(llama), "m", { dtype: "f32" });
  try {
    const lora = await folder("llama_lora", "a");
    const st = lora["a/adapter_model.safetensors"];
    // Same byte length, other layer index: the module path no longer exists in a 2-layer model.
    const moved = st.slice();
    const pat = new TextEncoder().encode("layers.1.");
    let n = 0;
    for (let i = 0; i + pat.length <= moved.length; i++) {
      if (pat.every((b, j) => moved[i + j] === b)) (moved[i + 7] = "7".charCodeAt(0)), n++;
    }
    assert(n > 0, "renamed some keys");
    const e = await assertRejects(
      () => loadAdapter(model, memoryFs({ ...lora, "a/adapter_model.safetensors": moved }), "a"),
      /adapter modules not in the model: model\.layers\.7\./,
    );
    oneLine(e);
  } finally {
    model.dispose();
  }
});

Deno.test("sharded checkpoint (index.json + several shards) loads to the same logits", async () => {
  const fs = memoryFs(llama);
  const src = await openSafetensors(fs, "m");
  const tensors = [];
  for (const [name, info] of src.tensors) {
    tensors.push({
      name,
      dtype: "F32" as const,
      shape: [...info.shape],
      data: (await src.read(name, "f32")) as Float32Array,
    });
  }
  const files = { "s/config.json": llama["m/config.json"] };
  const out = memoryFs(files);
  await writeSafetensors(out, "s", tensors, { format: "pt" }, { maxShardBytes: 160_000 });
  const names = [...out.files.keys()];
  assert(
    names.includes("s/model.safetensors.index.json") &&
      names.filter((n) => n.endsWith(".safetensors")).length >= 3,
    `${names}`,
  );
  const model = await loadModel(gpu, out, "s", { dtype: "f32" });
  try {
    const c = golden.llama.logits[0];
    const T = c.prompt_ids.length, V = model.config.vocabSize;
    const ids = Tensor.from(gpu, c.prompt_ids, [1, T], "i32");
    const pos = Tensor.from(gpu, c.prompt_ids.map((_: number, i: number) => i), [1, T], "i32");
    const logits = model.logits(model.forward(ids, pos));
    const got = (await logits.read()) as Float32Array;
    assertClose(got.subarray((T - 1) * V), c.last, 1e-5, "sharded llama last row");
    for (const t of [ids, pos, logits]) t.dispose();
  } finally {
    model.dispose();
  }
});
