import { assert, assertEquals, assertRejects, assertThrows } from "../assert.ts";
import {
  packRows,
  positionIds,
  readConversations,
  readDatasetEntry,
  recordToMessages,
  type Row,
  splitValidation,
  tokenizeConversations,
} from "../../src/data/sft.ts";
import { encodeConversation, getTemplate, type Message } from "../../src/data/templates.ts";
import { entryFor } from "../../src/data/dataset_info.ts";
import { memoryFs } from "../../src/io/fs.ts";
import { HfTokenizer } from "../../src/io/tokenizer.ts";

const fixtureDir = new URL("../io/fixtures/bytelevel_bpe/", import.meta.url);
async function tokenizer(): Promise<HfTokenizer> {
  const fs = memoryFs({
    "t/tokenizer.json": await Deno.readTextFile(new URL("tokenizer.json", fixtureDir)),
    "t/tokenizer_config.json": await Deno.readTextFile(new URL("tokenizer_config.json", fixtureDir)),
  });
  return await HfTokenizer.load(fs, "t");
}

const ALPACA = [
  {
    instruction: "Hello",
    input: "the world",
    output: "你好",
    system: "Be brief.",
    history: [["Hi", "Hello"]],
  },
  { instruction: "Q", output: "A" },
];
const SHAREGPT = [{
  conversations: [
    { from: "human", value: "Hello" },
    { from: "gpt", value: "world" },
    { from: "observation", value: "tool said 医" },
    { from: "function_call", value: "ok" },
  ],
  system: "S",
}];
const OPENAI = [{
  messages: [
    { role: "system", content: "S" },
    { role: "user", content: [{ type: "text", text: "Hello " }, { type: "text", text: "there" }] },
    { role: "assistant", content: "world" },
  ],
}];
const CUSTOM = [{ q: "question", a: "answer", sys: "custom system" }];

function dataFs() {
  return memoryFs({
    "d/dataset_info.json": JSON.stringify({
      alp: entryFor("alpaca.json", "alpaca", { system: true, history: true }),
      sg: entryFor("sharegpt.jsonl", "sharegpt", { system: true }),
      oa: entryFor("openai.json", "openai"),
      custom: { file_name: "custom.json", columns: { prompt: "q", response: "a", system: "sys" } },
      hub: { hf_hub_url: "someone/dataset" },
      bad: { file_name: "bad.json" },
    }),
    "d/alpaca.json": JSON.stringify(ALPACA),
    "d/sharegpt.jsonl": SHAREGPT.map((r) => JSON.stringify(r)).join("\n") + "\n",
    "d/openai.json": JSON.stringify(OPENAI),
    "d/custom.json": JSON.stringify(CUSTOM),
    "d/bad.json": JSON.stringify([{ instruction: "x", output: "y" }, { instruction: "x", output: "" }]),
  });
}

Deno.test("sft: dataset_info entries → conversations (alpaca, sharegpt, openai, custom columns)", async () => {
  const fs = dataFs(), t = getTemplate("chatml");
  const conv = async (n: string) =>
    (await readConversations(fs, await readDatasetEntry(fs, "d", n), t)).map((c) => c.input);
  assertEquals(await conv("alp"), [
    [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello" },
      { role: "user", content: "Hello\nthe world" },
      { role: "assistant", content: "你好" },
    ],
    [{ role: "user", content: "Q" }, { role: "assistant", content: "A" }],
  ]);
  assertEquals(await conv("sg"), [[
    { role: "system", content: "S" },
    { role: "user", content: "Hello" },
    { role: "assistant", content: "world" },
    { role: "user", content: "tool said 医" },
    { role: "assistant", content: "ok" },
  ]]);
  assertEquals(await conv("oa"), [[
    { role: "system", content: "S" },
    { role: "user", content: "Hello there" },
    { role: "assistant", content: "world" },
  ]]);
  assertEquals(await conv("custom"), [[
    { role: "system", content: "custom system" },
    { role: "user", content: "question" },
    { role: "assistant", content: "answer" },
  ]]);
});

Deno.test("sft: dataset errors name the file, the record and the field", async () => {
  const fs = dataFs(), t = getTemplate("chatml");
  await assertRejects(
    () => readDatasetEntry(fs, "d", "nope"),
    /^d\/dataset_info\.json: no dataset "nope" \(known: alp, sg/,
  );
  await assertRejects(
    () => readDatasetEntry(fs, "d", "hub"),
    /^d\/dataset_info\.json: hub: hf_hub_url datasets are not supported/,
  );
  await assertRejects(() => readDatasetEntry(fs, "x", "alp"), /^x\/dataset_info\.json: not found/);
  await assertRejects(
    async () => readConversations(fs, await readDatasetEntry(fs, "d", "bad"), t),
    /^d\/bad\.json: index 1: output: must be a non-empty string$/,
  );
  const e = await readDatasetEntry(fs, "d", "sg");
  assertThrows(
    () => recordToMessages(e, { conversations: [{ from: "robot", value: "x" }] }),
    /^conversations\[0\]\.from: unexpected role "robot"$/,
  );
});

Deno.test("sft: the bundled medical dataset reads as medical_inquiry field records (same ids as its alpaca view)", async () => {
  const root = new URL("../../data/", import.meta.url);
  const fs = memoryFs({
    "data/dataset_info.json": await Deno.readTextFile(new URL("dataset_info.json", root)),
    "data/default/validation.json": await Deno.readTextFile(new URL("default/validation.json", root)),
  });
  const tok = await tokenizer(), t = getTemplate("medical_inquiry");
  const entry = await readDatasetEntry(fs, "data", "medical_default_validation");
  const convs = await readConversations(fs, entry, t, 5);
  assertEquals(convs.length, 5);
  for (const c of convs) {
    const rec = c.input as Record<string, string>;
    assert(!Array.isArray(rec) && typeof rec.diagnosis === "string", "kept as a field record");
    const viaFields = encodeConversation(t, tok, rec);
    const viaAlpaca = encodeConversation(t, tok, recordToMessages(entry, rec));
    assertEquals(viaFields, viaAlpaca, c.where);
  }
});

Deno.test("sft: validation split is seeded, disjoint and complete (fraction or count)", () => {
  const items = Array.from({ length: 50 }, (_, i) => i);
  const a = splitValidation(items, 0.1, 7),
    b = splitValidation(items, 0.1, 7),
    c = splitValidation(items, 0.1, 8);
  assertEquals(a, b);
  assert(JSON.stringify(a) !== JSON.stringify(c), "another seed, another split");
  assertEquals(a.validation.length, 5);
  assertEquals([...a.train, ...a.validation].sort((x, y) => x - y), items);
  assertEquals(splitValidation(items, 12, 7).validation.length, 12);
  assertEquals(splitValidation(items, 0, 7), { train: items, validation: [] });
  assertThrows(() => splitValidation(items, 50, 7), /leaves no training examples/);
});

Deno.test("sft: tokenisation drops (and reports) examples with no response left within cutoff_len", async () => {
  const tok = await tokenizer(), t = getTemplate("llama3");
  const long: Message[] = [{ role: "user", content: "Hello world ".repeat(30) }, {
    role: "assistant",
    content: "ok",
  }];
  const short: Message[] = [{ role: "user", content: "Hi" }, { role: "assistant", content: "Hello" }];
  const { rows, dropped } = tokenizeConversations([{ input: long, where: "a: index 0" }, {
    input: short,
    where: "a: index 1",
  }], {
    template: t,
    tokenizer: tok,
    cutoffLen: 20,
  });
  assertEquals(rows.length, 2, "LLaMA-Factory's cut keeps part of the response of the long example");
  const tiny = tokenizeConversations([{ input: long, where: "a: index 0" }], {
    template: t,
    tokenizer: tok,
    cutoffLen: 3,
  });
  // cutoff 3: infer_seqlen keeps the 3 first prompt tokens and no response token.
  assertEquals(tiny.rows.length, 0);
  assertEquals(tiny.dropped, [{ where: "a: index 0", reason: "no response token within cutoff_len 3" }]);
  for (const r of rows) assert(r.inputIds.length <= 20 && r.labels.some((l) => l !== -100));
  assertEquals(dropped, []);
});

Deno.test("sft: packing keeps every example whole, fits cutoff_len, and restarts positions", () => {
  const mk = (len: number, tag: number): Row => ({
    inputIds: Int32Array.from({ length: len }, (_, i) => tag * 100 + i),
    labels: Int32Array.from({ length: len }, (_, i) => i % 2 ? tag * 100 + i : -100),
    segments: [len],
  });
  const rows = [7, 3, 9, 1, 5, 4, 8, 2].map((l, i) => mk(l, i + 1));
  const packed = packRows(rows, 10);
  const again = packRows(rows, 10);
  assertEquals(packed.map((r) => [...r.inputIds]), again.map((r) => [...r.inputIds]), "deterministic");
  for (const r of packed) {
    assert(r.inputIds.length <= 10);
    assertEquals(r.segments.reduce((a, b) => a + b, 0), r.inputIds.length);
  }
  assertEquals(packed.reduce((n, r) => n + r.inputIds.length, 0), 39);
  assert(packed.length < rows.length, "rows were combined");
  // Every example appears exactly once, contiguous and intact (ids encode example and offset).
  const seen = new Set<number>();
  for (const r of packed) {
    let at = 0;
    for (const len of r.segments) {
      const tag = Math.floor(r.inputIds[at] / 100);
      assert(!seen.has(tag), `example ${tag} twice`);
      seen.add(tag);
      assertEquals([...r.inputIds.subarray(at, at + len)], [...rows[tag - 1].inputIds]);
      assertEquals([...r.labels.subarray(at, at + len)], [...rows[tag - 1].labels]);
      at += len;
    }
  }
  assertEquals(seen.size, rows.length);
  assertEquals([...positionIds([3, 2, 1])], [0, 1, 2, 0, 1, 0]);
  assertThrows(() => packRows([mk(11, 1)], 10), /exceeds cutoff_len 10/);
});
