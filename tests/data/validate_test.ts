import { checkRecord, detectFormat, validateDataset } from "../../src/data/formats.ts";
import { assert, assertEquals, assertThrows } from "../assert.ts";

Deno.test("validate alpaca: errors name index/line and field", () => {
  const v = validateDataset(
    JSON.stringify([
      { instruction: "q", input: "", output: "a" },
      { instruction: "q", output: "" },
      { instruction: 3, output: "a", history: [["x"]] },
    ]),
    {},
  );
  assertEquals(v.format, "alpaca");
  assertEquals([v.total, v.valid.length], [3, 1]);
  assertEquals(v.errors.map((e) => `${e.where} ${e.field}`), [
    "index 1 output",
    "index 2 instruction",
    "index 2 history[0]",
  ]);
  assert(/non-empty/.test(v.errors[0].message));
});

Deno.test("validate sharegpt and openai: roles and turn order", () => {
  const sg = [
    { conversations: [{ from: "human", value: "hi" }, { from: "gpt", value: "hello" }] },
    { conversations: [{ from: "human", value: "hi" }, { from: "bot", value: "hello" }] },
    {
      conversations: [{ from: "system", value: "s" }, { from: "human", value: "a" }, {
        from: "human",
        value: "b",
      }],
    },
    {
      conversations: [{ from: "human", value: "a" }, { from: "gpt", value: "b" }, {
        from: "human",
        value: "c",
      }],
    },
  ];
  const v = validateDataset(sg.map((r) => JSON.stringify(r)).join("\n") + "\n\n", {});
  assertEquals([v.format, v.layout, v.valid.length], ["sharegpt", "jsonl", 1]);
  assertEquals(v.errors.map((e) => `${e.where} ${e.field}`), [
    "line 2 conversations[1].from",
    "line 3 conversations[2]",
    "line 4 conversations[2]",
  ]);
  assert(
    /expected an assistant turn, got "human"/.test(v.errors[1].message) &&
      /last turn/.test(v.errors[2].message),
  );
  const oa = checkRecord({
    messages: [{ role: "system", content: "s" }, { role: "user", content: [{ type: "text", text: "x" }] }],
  }, "openai");
  assertEquals(oa.map((e) => `${e.field}: ${e.message}`), [
    "messages[1]: the last turn must be the assistant's",
  ]);
  assertEquals(checkRecord({ messages: [{ role: "user", content: "q" }] }, "openai")[0].field, "messages");
  assertEquals(
    checkRecord(
      { messages: [{ role: "user", content: "q" }, { role: "assistant", content: "a" }] },
      "openai",
    ),
    [],
  );
  assertEquals(
    checkRecord({ messages: [{ role: "user", content: "q" }, { role: "user", content: "a" }] }, "openai")[0]
      .field,
    "messages[1]",
  );
  assertEquals(detectFormat({ foo: 1 }), null);
});

Deno.test("validate: broken JSON lines are reported, not dropped; unknown format and bad arrays throw", () => {
  const v = validateDataset('{"instruction":"q","output":"a"}\n{"instruction":"q",\n', {});
  assertEquals([v.total, v.valid.length], [2, 1]);
  assertEquals(v.errors[0].where, "line 2");
  assert(/not valid JSON/.test(v.errors[0].message));
  assertThrows(() => validateDataset('{"foo":1}\n', {}), /line 1: cannot tell the format/);
  assertThrows(() => validateDataset('[{"instruction":"q",\n"output":}]', {}), /line 2: not valid JSON/);
  const forced = validateDataset('{"instruction":"q","output":"a"}\n', { format: "sharegpt" });
  assertEquals(forced.errors[0].field, "conversations");
});
