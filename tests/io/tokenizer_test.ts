import { assert, assertEquals, assertRejects, assertThrows } from "../assert.ts";
import { denoFs } from "../../platform/deno_fs.ts";
import { memoryFs } from "../../src/io/fs.ts";
import { HfTokenizer } from "../../src/io/tokenizer.ts";

const FIX = new URL("fixtures", import.meta.url).pathname;
const BL = `${FIX}/bytelevel_bpe`, SP = `${FIX}/sentencepiece_bpe`;

/** Mixed English / Chinese / emoji (incl. a skin-tone ZWJ-free pair) / whitespace runs, tabs, newlines. */
const TEXTS = [
  "Hello world, the thing!",
  "你好，医生。我头痛 3 天了",
  "emoji 😀👍🏽 and flags 🇨🇳 mixed 你好😀world",
  "tabs\tand\n\nnewlines  \n   many   spaces   ",
  "don't STOP we'll 12345 + 3.14 == x",
  "<|eot_id|> looks special",
];

const tokens = (t: HfTokenizer, ids: number[]) => ids.map((i) => t.idToToken(i));

async function fixtureFs(dir: string, extra: Record<string, string> = {}) {
  const files: Record<string, string> = { ...extra };
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) {
    files[`t/${f}`] = await Deno.readTextFile(`${dir}/${f}`);
  }
  return memoryFs(files);
}

Deno.test("tokenizer: byte-level BPE (Llama 3 style) ids, merges and exact round trips", async () => {
  const t = await HfTokenizer.load(denoFs, BL);
  assertEquals(tokens(t, t.encode("Hello world, the thing!")), [
    "<|begin_of_text|>",
    "Hello",
    "Ġworld",
    ",",
    "Ġthe",
    "Ġt",
    "h",
    "ing",
    "!",
  ]);
  // 你 and 好 are merged tokens; 头 is not, so it stays three byte symbols
  assertEquals(t.encode("你好头", { addSpecialTokens: false }).length, 2 + 3);
  assertEquals([t.bosTokenId, t.eosTokenIds, t.vocabSize], [280, [284], 285]);
  assertEquals(t.specialTokens.get("<|start_header_id|>"), 282);
  assertEquals(t.tokenToId("Ġworld"), 269);
  for (const s of TEXTS) {
    const ids = t.encode(s, { addSpecialTokens: false });
    assert(ids.every((i) => i >= 0 && i < t.vocabSize), `ids in range for ${s}`);
    assertEquals(t.decode(ids), s, "round trip");
    assertEquals(
      t.decode(t.encode(s), { skipSpecialTokens: true }),
      s.replace("<|eot_id|>", ""),
      "skip specials",
    );
  }
  // an added special token in the text becomes its id, not its characters
  assertEquals(t.encode("a<|eot_id|>", { addSpecialTokens: false }), [t.tokenToId("a")!, 284]);
  assertEquals(t.decode([]), "");
  assertThrows(
    () => t.decode([285]),
    /token id 285 is not in the vocabulary of .*bytelevel_bpe \(size 285\)/,
  );
});

Deno.test("tokenizer: SentencePiece-style BPE (Llama 2 / Mistral) with ▁ metaspace and byte fallback", async () => {
  const t = await HfTokenizer.load(denoFs, SP);
  assertEquals(tokens(t, t.encode("Hello world")), ["<s>", "▁Hello", "▁world"]);
  // 你好 merges with the prepended ▁; 头 is not in the vocab: its 3 UTF-8 bytes fall back to <0x..>
  assertEquals(tokens(t, t.encode("你好头", { addSpecialTokens: false })), [
    "▁你好",
    "<0xE5>",
    "<0xA4>",
    "<0xB4>",
  ]);
  assertEquals(tokens(t, t.encode("医生\t", { addSpecialTokens: false })), ["▁", "医生", "<0x09>"]);
  assertEquals([t.bosTokenId, t.eosTokenIds], [1, [2]]); // bos_token given as an AddedToken object
  for (const s of TEXTS) {
    const ids = t.encode(s);
    assertEquals(ids[0], 1, "BOS from the post-processor");
    assertEquals(t.decode(ids, { skipSpecialTokens: true }), s, "round trip");
    assertEquals(t.decode(ids), "<s> " + s, "the metaspace space is kept after a special token");
  }
  // A leading space is the ▁ Metaspace would prepend: the decoder strips it (as HF does with legacy=false).
  assertEquals(t.decode(t.encode(" x", { addSpecialTokens: false })), "x");
  assertEquals(
    t.decode([t.specialTokens.get("<|im_start|>")!, ...t.encode("hi", { addSpecialTokens: false })]),
    "<|im_start|> hi",
  );
});

Deno.test("tokenizer: Metaspace with split (HF's default) never merges across a ▁ boundary", async () => {
  const plain = await HfTokenizer.load(denoFs, SP);
  // split: false (the fixture) lets BPE merge the two ▁ of a double space
  assertEquals(tokens(plain, plain.encode("Hello  x", { addSpecialTokens: false })), ["▁Hello", "▁▁", "x"]);
  const fs = await fixtureFs(SP);
  const json = JSON.parse(await fs.readText("t/tokenizer.json"));
  for (
    const pre of [{ ...json.pre_tokenizer, split: true }, {
      type: "Sequence",
      pretokenizers: [{ ...json.pre_tokenizer, split: undefined }],
    }]
  ) {
    await fs.writeFile(
      "t/tokenizer.json",
      new TextEncoder().encode(JSON.stringify({ ...json, pre_tokenizer: pre })),
    );
    const t = await HfTokenizer.load(fs, "t");
    assertEquals(tokens(t, t.encode("Hello  x", { addSpecialTokens: false })), ["▁Hello", "▁", "▁", "x"]);
    assertEquals(t.decode(t.encode("Hello  world 你好", { addSpecialTokens: false })), "Hello  world 你好");
  }
});

Deno.test("tokenizer: stream decoder never emits a broken UTF-8 character and matches a whole decode", async () => {
  for (const dir of [BL, SP]) {
    const t = await HfTokenizer.load(denoFs, dir);
    for (const s of TEXTS) {
      const ids = t.encode(s);
      const d = t.createStreamDecoder();
      const chunks = ids.map((id) => d.push([id]));
      chunks.push(d.flush());
      for (const c of chunks) {
        assert(!c.includes("\uFFFD"), `${dir}: chunk ${JSON.stringify(c)} has a replacement char`);
        assert(
          !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(c),
          "no lone surrogate",
        );
      }
      assertEquals(chunks.join(""), t.decode(ids, { skipSpecialTokens: true }), `${dir}: stream = decode`);
    }
    // 😀 is four single-byte tokens in both fixtures (after SentencePiece's "▁"): three pushes hold back,
    // the fourth emits it whole.
    const ids = t.encode("😀", { addSpecialTokens: false });
    const d = t.createStreamDecoder();
    d.push(ids.slice(0, -4));
    assertEquals(ids.slice(-4).map((id) => d.push([id])), ["", "", "", "😀"]);
    // flush returns what an unfinished character held back (as U+FFFD, like HF's lossy decode)
    const e = t.createStreamDecoder();
    assertEquals([e.push(ids.slice(0, -2)).trim(), e.flush().length > 0], ["", true]);
    // several ids per push, special tokens kept on request
    const f = t.createStreamDecoder({ skipSpecialTokens: false });
    const all = t.encode("Hello 你好");
    assertEquals(f.push(all.slice(0, 2)) + f.push(all.slice(2)) + f.flush(), t.decode(all));
  }
});

Deno.test("tokenizer: Llama 3 chat template from tokenizer_config.json, encodeChat has one BOS", async () => {
  const t = await HfTokenizer.load(denoFs, BL);
  const msgs = [
    { role: "system" as const, content: "Be brief." },
    { role: "user" as const, content: " 我头痛 " },
  ];
  const head = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>" +
    "<|start_header_id|>user<|end_header_id|>\n\n我头痛<|eot_id|>";
  assertEquals(t.applyChatTemplate(msgs), head);
  assertEquals(
    t.applyChatTemplate(msgs, { addGenerationPrompt: true }),
    head + "<|start_header_id|>assistant<|end_header_id|>\n\n",
  );
  const ids = t.encodeChat(msgs, { addGenerationPrompt: true });
  assertEquals(ids.filter((i) => i === 280).length, 1);
  assertEquals(ids[0], 280);
  assertEquals(ids.at(-2), t.specialTokens.get("<|end_header_id|>"));
  assertEquals(t.decode(ids), t.applyChatTemplate(msgs, { addGenerationPrompt: true }));
});

Deno.test("tokenizer: ChatML from a list-form chat_template ('default'), chat_template.jinja overrides", async () => {
  const t = await HfTokenizer.load(denoFs, SP);
  assertEquals(
    t.applyChatTemplate([{ role: "user", content: "你好" }], { addGenerationPrompt: true }),
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n",
  );
  assertEquals(
    t.applyChatTemplate([{ role: "system", content: "S" }, { role: "user", content: "U" }, {
      role: "assistant",
      content: "A",
    }]),
    "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n",
  );
  const fs = await fixtureFs(SP, {
    "t/chat_template.jinja":
      "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}",
  });
  const j = await HfTokenizer.load(fs, "t");
  assertEquals(j.applyChatTemplate([{ role: "user", content: "hi" }]), "<s>[user]hi");
  // tools/documents are null as in transformers; extra vars reach the template
  const v = await HfTokenizer.load(
    await fixtureFs(SP, {
      "t/chat_template.jinja": "{% if tools is not none %}T{% endif %}{% if documents %}D{% endif %}" +
        "{{ date_string }}|{{ 'think' if enable_thinking else 'plain' }}|{{ bos_token }}",
    }),
    "t",
  );
  assertEquals(v.applyChatTemplate([]), "|plain|<s>");
  assertEquals(
    v.applyChatTemplate([], { vars: { date_string: "26 Jul 2024", enable_thinking: true } }),
    "26 Jul 2024|think|<s>",
  );
});

Deno.test("tokenizer: missing files and bad templates are one clear line", async () => {
  await assertRejects(
    () => HfTokenizer.load(memoryFs(), "m"),
    /^m\/tokenizer\.json: not found \(webtune needs the fast-tokenizer file/,
  );
  await assertRejects(
    () => HfTokenizer.load(memoryFs({ "m/tokenizer.json": "{" }), "m"),
    /^m\/tokenizer\.json: /,
  );
  const noTemplate = await fixtureFs(BL);
  const cfg = JSON.parse(await noTemplate.readText("t/tokenizer_config.json"));
  delete cfg.chat_template;
  await noTemplate.writeFile("t/tokenizer_config.json", new TextEncoder().encode(JSON.stringify(cfg)));
  const t = await HfTokenizer.load(noTemplate, "t");
  assert(!t.hasChatTemplate);
  assertThrows(() => t.applyChatTemplate([{ role: "user", content: "x" }]), /^t: no chat template/);
  cfg.chat_template = [{ name: "a", template: "x" }, { name: "b", template: "y" }];
  await noTemplate.writeFile("t/tokenizer_config.json", new TextEncoder().encode(JSON.stringify(cfg)));
  await assertRejects(
    () => HfTokenizer.load(noTemplate, "t"),
    /tokenizer_config\.json: chat_template lists templates \(a, b\) but none is named "default"/,
  );
  cfg.chat_template = "{{ raise_exception('Conversation roles must alternate') }}";
  await noTemplate.writeFile("t/tokenizer_config.json", new TextEncoder().encode(JSON.stringify(cfg)));
  const r = await HfTokenizer.load(noTemplate, "t");
  assertThrows(
    () => r.applyChatTemplate([]),
    /^t: chat template failed: .*Conversation roles must alternate/,
  );
});
