/**
 * src/io against files made by the Hugging Face libraries themselves (tests/io/crosscheck/hf_crosscheck.py,
 * run on the GPU machine with transformers 5.17.0, tokenizers 0.23.2, peft, safetensors; outputs kept in
 * tests/io/fixtures/hf/).
 */
import { assert, assertEquals } from "../assert.ts";
import { denoFs } from "../../platform/deno_fs.ts";
import { HfTokenizer } from "../../src/io/tokenizer.ts";
import { openSafetensors } from "../../src/io/safetensors.ts";
import { loadPeftAdapter } from "../../src/io/peft.ts";
import { memoryFs } from "../../src/io/fs.ts";

const FIX = new URL("fixtures", import.meta.url).pathname;
const HF = `${FIX}/hf`;
const golden = JSON.parse(await Deno.readTextFile(`${HF}/tokenizer_golden.json`));

interface EncodeGolden {
  text: string;
  ids: number[];
  ids_no_special: number[];
  decode: string;
  decode_skip: string;
}
interface ChatGolden {
  messages: { role: "system" | "user" | "assistant"; content: string }[];
  add_generation_prompt: boolean;
  text: string;
  ids: number[];
}

for (const name of ["bytelevel_bpe", "sentencepiece_bpe"]) {
  Deno.test(`hf golden: ${name} ids and decodes equal HF tokenizers on mixed text`, async () => {
    const t = await HfTokenizer.load(denoFs, `${FIX}/${name}`);
    const cases = golden[name].encode as EncodeGolden[];
    assert(cases.length >= 10);
    for (const g of cases) {
      const what = `${name} ${JSON.stringify(g.text)}`;
      assertEquals(t.encode(g.text), g.ids, `${what} ids`);
      assertEquals(
        t.encode(g.text, { addSpecialTokens: false }),
        g.ids_no_special,
        `${what} ids without specials`,
      );
      assertEquals(t.decode(g.ids), g.decode, `${what} decode`);
      assertEquals(
        t.decode(g.ids, { skipSpecialTokens: true }),
        g.decode_skip,
        `${what} decode skipping specials`,
      );
    }
  });

  Deno.test(`hf golden: ${name} chat template text and ids equal transformers' apply_chat_template`, async () => {
    const t = await HfTokenizer.load(denoFs, `${FIX}/${name}`);
    const chats = golden[name].chat as ChatGolden[];
    assertEquals(chats.length, 4);
    for (const c of chats) {
      const opts = { addGenerationPrompt: c.add_generation_prompt };
      assertEquals(t.applyChatTemplate(c.messages, opts), c.text);
      assertEquals(t.encodeChat(c.messages, opts), c.ids);
    }
  });
}

Deno.test("hf golden: safetensors written by torch (F32/F16/BF16/I64, 0-d, empty) read back exactly", async () => {
  const want = JSON.parse(await Deno.readTextFile(`${HF}/torch_values.json`)) as Record<string, number[]>;
  const src = await openSafetensors(denoFs, `${HF}/torch.safetensors`);
  assertEquals([src.metadata.format, src.metadata.note], ["pt", "made by torch"]);
  assertEquals(
    Object.fromEntries(
      [...src.tensors.values()].sort((a, b) => a.name < b.name ? -1 : 1).map((
        t,
      ) => [t.name, [t.dtype, t.shape]]),
    ),
    {
      bf16: ["BF16", [2, 3, 4]],
      empty: ["F32", [0, 4]],
      f16: ["F16", [7]],
      f32: ["F32", [3, 5]],
      i64: ["I64", [6]],
      scalar: ["F32", []],
    },
  );
  for (const [name, values] of Object.entries(want)) {
    assertEquals([...(await src.read(name, "f32"))], values, name);
  }
  // f16 storage of the f16/bf16 tensors keeps the values f16 can represent
  assertEquals([...(await src.read("f16", "f16"))], want.f16);
});

Deno.test("hf golden: adapter saved by PEFT (rsLoRA, 7 projections, non-zero B) loads with its values", async () => {
  const want = JSON.parse(await Deno.readTextFile(`${HF}/peft_adapter_values.json`)) as Record<
    string,
    { shape: number[]; values: number[] }
  >;
  const { config, weights, modules } = await loadPeftAdapter(denoFs, `${HF}/peft_adapter`);
  assertEquals([config.r, config.loraAlpha, config.useRslora, config.scale, config.bias], [
    4,
    16,
    true,
    8,
    "none",
  ]);
  assertEquals(config.targetModules.slice().sort(), [
    "down_proj",
    "gate_proj",
    "k_proj",
    "o_proj",
    "q_proj",
    "up_proj",
    "v_proj",
  ]);
  assertEquals(modules.size, 14);
  assertEquals(modules.get("model.layers.1.mlp.down_proj"), {
    A: "base_model.model.model.layers.1.mlp.down_proj.lora_A.weight",
    B: "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight",
  });
  for (const [name, w] of Object.entries(want)) {
    assertEquals(weights.tensors.get(name)!.shape, w.shape, name);
    assertEquals([...(await weights.read(name, "f32"))], w.values, name);
  }
});

Deno.test("hf golden: sharded checkpoint saved by huggingface_hub (index + 4 shards) reads back exactly", async () => {
  const want = JSON.parse(await Deno.readTextFile(`${HF}/torch_sharded_values.json`)) as Record<
    string,
    number[]
  >;
  const src = await openSafetensors(denoFs, `${HF}/torch_sharded`);
  assertEquals([...src.tensors.keys()].sort(), Object.keys(want).sort());
  assertEquals(new Set([...src.tensors.values()].map((t) => t.file)).size, 4);
  for (const [name, values] of Object.entries(want)) {
    assertEquals([...(await src.read(name, "f32"))], values, name);
  }
});

Deno.test("hf golden: SentencePiece variants (Metaspace split=true, legacy Llama 2 normalizer) equal HF ids", async () => {
  const variants = JSON.parse(await Deno.readTextFile(`${HF}/variants/golden.json`)) as Record<
    string,
    EncodeGolden[]
  >;
  for (const [name, cases] of Object.entries(variants)) {
    // the variants carry only tokenizer.json; the fixture's tokenizer_config.json supplies the settings
    const fs = memoryFs({
      "t/tokenizer.json": await Deno.readTextFile(`${HF}/variants/${name}/tokenizer.json`),
      "t/tokenizer_config.json": await Deno.readTextFile(`${FIX}/sentencepiece_bpe/tokenizer_config.json`),
    });
    const t = await HfTokenizer.load(fs, "t");
    assert(cases.length >= 15);
    for (const g of cases) {
      const what = `${name} ${JSON.stringify(g.text)}`;
      assertEquals(t.encode(g.text), g.ids, `${what} ids`);
      assertEquals(
        t.encode(g.text, { addSpecialTokens: false }),
        g.ids_no_special,
        `${what} ids without specials`,
      );
      assertEquals(t.decode(g.ids, { skipSpecialTokens: true }), g.decode_skip, `${what} decode`);
    }
  }
});
