/**
 * Malformed model folders give one clear line naming the file and the problem: truncated safetensors,
 * unsupported model_type, missing tokenizer, config/weights shape and key mismatches, adapters for
 * another model. Folders are built in memory from the tiny Llama in tests/testdata.
 */
import { assert, assertRejects } from "../assert.ts";
import { testGpu } from "../util.ts";
import { memoryFs } from "../../src/io/fs.ts";
import { loadModel } from "../../src/model/load.ts";
import { loadAdapter } from "../../src/model/adapter.ts";
import { openModel } from "../../src/engine/open.ts";
import { TESTDATA } from "./golden.ts";

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
