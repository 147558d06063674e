import { assert, assertEquals, assertThrows } from "../assert.ts";
import {
  encodeConversation,
  encodePrompt,
  getTemplate,
  IGNORE_INDEX,
  inferSeqlen,
  registerTemplate,
  registerTemplateFile,
  renderText,
  stopTokenIds,
  templateNames,
} from "../../src/data/templates.ts";
import { inquiryPrompt } from "../../src/data/synth.ts";
import { memoryFs } from "../../src/io/fs.ts";
import { type ChatMessage, HfTokenizer } from "../../src/io/tokenizer.ts";

const fixture = (p: string) => Deno.readTextFile(new URL(`../io/fixtures/${p}`, import.meta.url));

// Models' own chat templates, as written in their tokenizer_config.json (Qwen2.5's without the tools branch).
const CHATML =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + " +
  "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
const QWEN25 =
  "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + " +
  "'<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a " +
  'helpful assistant.<|im_end|>\\n\' }}{%- endif %}{%- for message in messages %}{%- if (message.role == "user") ' +
  'or (message.role == "system" and not loop.first) or (message.role == "assistant") %}{{- \'<|im_start|>\' + ' +
  "message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endif %}{%- endfor %}{%- if " +
  "add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

/** The io helper's byte-level BPE fixture, with ChatML's two added tokens when `chatml`. */
async function tokenizer(chatTemplate: string | null, chatml: boolean): Promise<HfTokenizer> {
  const tj = JSON.parse(await fixture("bytelevel_bpe/tokenizer.json"));
  const config = JSON.parse(await fixture("bytelevel_bpe/tokenizer_config.json"));
  if (chatml) {
    let next = Math.max(
      ...Object.values(tj.model.vocab as Record<string, number>),
      ...tj.added_tokens.map((t: { id: number }) => t.id),
    ) + 1;
    for (const content of ["<|im_start|>", "<|im_end|>"]) {
      tj.added_tokens.push({
        id: next++,
        content,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      });
    }
    config.eos_token = "<|im_end|>";
    delete config.bos_token;
    // Qwen's tokenizer adds no BOS.
    tj.post_processor = null;
  }
  if (chatTemplate !== null) config.chat_template = chatTemplate;
  const fs = memoryFs({
    "t/tokenizer.json": JSON.stringify(tj),
    "t/tokenizer_config.json": JSON.stringify(config),
  });
  return await HfTokenizer.load(fs, "t");
}

const CHATS: ChatMessage[][] = [
  [{ role: "user", content: "Hello world" }, { role: "assistant", content: "你好 the world!" }],
  [
    { role: "system", content: "You are a careful 医 assistant." },
    { role: "user", content: "Hello\n\nthe  world" },
    { role: "assistant", content: "thing 你好" },
    { role: "user", content: "医?" },
    { role: "assistant", content: "Hello." },
  ],
];

for (
  const [name, jinja, chatml] of [["chatml", CHATML, true], ["qwen", QWEN25, true], [
    "llama3",
    null,
    false,
  ]] as const
) {
  Deno.test(`templates: ${name} renders and tokenises exactly like the model's own chat template`, async () => {
    const tok = await tokenizer(jinja, chatml);
    const t = getTemplate(name);
    for (const msgs of CHATS) {
      const bosToken = name === "llama3" ? "<|begin_of_text|>" : undefined;
      assertEquals(renderText(t, msgs, { bosToken }), tok.applyChatTemplate(msgs), `${name} text`);
      const enc = encodeConversation(t, tok, msgs);
      assertEquals(enc.inputIds, tok.encodeChat(msgs), `${name} ids`);
      const prompt = msgs.slice(0, -1);
      assertEquals(
        encodePrompt(t, tok, prompt),
        tok.encodeChat(prompt, { addGenerationPrompt: true }),
        `${name} prompt`,
      );
      // Labels: −100 exactly on the prompt ids; the rest are the response ids, end-of-turn included.
      const promptLen = encodePrompt(
        t,
        tok,
        msgs.slice(0, msgs.findIndex((m) => m.role === "user") + 1),
      ).length;
      const end = tok.tokenToId(name === "llama3" ? "<|eot_id|>" : "<|im_end|>")!;
      assert(enc.labels.slice(0, promptLen).every((l) => l === IGNORE_INDEX), "prompt masked");
      assert(enc.labels[promptLen] !== IGNORE_INDEX, "first response token trained");
      assert(enc.labels.includes(end), "end-of-turn token in the labels");
      const trained = enc.labels.filter((l) => l !== IGNORE_INDEX).length;
      const runs = enc.labels.reduce(
        (n, l, i) => n + (l !== IGNORE_INDEX && (i === 0 || enc.labels[i - 1] === IGNORE_INDEX) ? 1 : 0),
        0,
      );
      assertEquals(
        runs,
        msgs.filter((m) => m.role === "assistant").length,
        "one trained run per assistant turn",
      );
      assert(trained < enc.inputIds.length);
      enc.labels.forEach((l, i) =>
        assert(l === IGNORE_INDEX || l === enc.inputIds[i], "labels are the input ids")
      );
      assertEquals(
        encodeConversation(t, tok, msgs, { trainOnPrompt: true }).labels,
        enc.inputIds,
        "train_on_prompt",
      );
    }
    assert(stopTokenIds(t, tok).includes(tok.tokenToId(name === "llama3" ? "<|eot_id|>" : "<|im_end|>")!));
  });
}

Deno.test("templates: ids equal real HF transformers apply_chat_template (golden from the GPU machine)", async () => {
  const golden = JSON.parse(
    await Deno.readTextFile(new URL("../train/fixtures/hf_golden.json", import.meta.url)),
  );
  const models = { chatml: CHATML, qwen: QWEN25, llama3: null } as const;
  for (const [name, jinja] of Object.entries(models)) {
    const tok = await tokenizer(jinja, name !== "llama3");
    const rows = golden.chats[name] as { messages: ChatMessage[]; ids: number[]; prompt_ids: number[] }[];
    assertEquals(rows.map((r) => r.messages), CHATS, "the golden file was made from these chats");
    for (const r of rows) {
      assertEquals(
        encodeConversation(getTemplate(name), tok, r.messages).inputIds,
        r.ids,
        `${name} vs transformers`,
      );
      assertEquals(
        encodePrompt(getTemplate(name), tok, r.messages.slice(0, -1)),
        r.prompt_ids,
        `${name} prompt`,
      );
    }
  }
});

Deno.test("templates: a model template that differs is detected (the comparison can fail)", async () => {
  const tok = await tokenizer(QWEN25, true);
  const msgs = CHATS[0];
  // chatml has no default system prompt; Qwen2.5's template adds one.
  assert(renderText(getTemplate("chatml"), msgs) !== tok.applyChatTemplate(msgs));
  assert(
    JSON.stringify(encodeConversation(getTemplate("chatml"), tok, msgs).inputIds) !==
      JSON.stringify(tok.encodeChat(msgs)),
  );
});

Deno.test("templates: medical_inquiry builds the seed's prompt from record fields; EOS trained", async () => {
  const tok = await tokenizer(null, false);
  const t = getTemplate("medical_inquiry");
  const rec = {
    patient_info: "65岁男性,有高血压史",
    symptoms: "胸痛持续2小时,放射至左臂",
    test_results: "ECG显示ST段抬高,心肌酶升高",
    diagnosis: "急性心肌梗死。",
  };
  const prompt = inquiryPrompt("zh", rec);
  const text = renderText(t, [{ role: "user", content: prompt }, {
    role: "assistant",
    content: rec.diagnosis,
  }], {
    bosToken: "<s>",
    eosToken: "</s>",
  });
  assertEquals(text, `<s>${prompt}${rec.diagnosis}</s>`);
  const enc = encodeConversation(t, tok, rec);
  assertEquals(enc.inputIds[0], tok.bosTokenId);
  assertEquals(enc.inputIds.at(-1), tok.eosTokenIds[0]);
  assertEquals(enc.labels.at(-1), tok.eosTokenIds[0], "EOS in the labels");
  const nPrompt = 1 + tok.encode(prompt, { addSpecialTokens: false }).length;
  assertEquals(enc.labels.slice(0, nPrompt).filter((l) => l !== IGNORE_INDEX).length, 0);
  assertEquals(enc.labels.slice(nPrompt, -1), tok.encode(rec.diagnosis, { addSpecialTokens: false }));
  // The bundled dataset's alpaca view (instruction = the rendered prompt) encodes to the same ids.
  const alpaca = { instruction: prompt, input: "", output: rec.diagnosis };
  assertEquals(encodeConversation(t, tok, alpaca), enc);
  assertThrows(
    () => encodeConversation(t, tok, { ...rec, symptoms: undefined }),
    /field "symptoms" is missing/,
  );
});

Deno.test("templates: llama2 / mistral put the system prompt inside the first user turn; alpaca default system", () => {
  const msgs: ChatMessage[] = [
    { role: "system", content: "S" },
    { role: "user", content: "Q1" },
    { role: "assistant", content: "A1" },
    { role: "user", content: "Q2" },
    { role: "assistant", content: "A2" },
  ];
  const o = { bosToken: "<s>", eosToken: "</s>" };
  assertEquals(
    renderText(getTemplate("llama2"), msgs, o),
    "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nQ1 [/INST]A1</s><s>[INST] Q2 [/INST]A2</s>",
  );
  assertEquals(
    renderText(getTemplate("mistral"), msgs, o),
    "<s>[INST] S\n\nQ1[/INST]A1</s>[INST] Q2[/INST]A2</s>",
  );
  assertEquals(
    renderText(getTemplate("alpaca"), msgs.slice(1, 3), o),
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n" +
      "### Instruction:\nQ1\n\n### Response:\nA1</s>",
  );
  assertEquals(renderText(getTemplate("default"), msgs.slice(1, 3), o), "Human: Q1\nAssistant:A1</s>");
  // Content is never interpreted: no $-patterns, no {{…}} markers.
  const odd = "$& $1 {{eos_token}} {{content}}";
  assertEquals(
    renderText(getTemplate("llama2"), [{ role: "system", content: odd }, { role: "user", content: odd }, {
      role: "assistant",
      content: odd,
    }], o),
    `<s>[INST] <<SYS>>\n${odd}\n<</SYS>>\n\n${odd} [/INST]${odd}</s>`,
  );
  for (const n of ["default", "alpaca", "chatml", "qwen", "llama3", "llama2", "mistral", "medical_inquiry"]) {
    assert(templateNames().includes(n), n);
  }
  assertThrows(
    () => renderText(getTemplate("chatml"), msgs.slice(0, 2)),
    /alternating user\/assistant turns ending with assistant/,
  );
});

Deno.test("templates: cutoff follows LLaMA-Factory's infer_seqlen", async () => {
  assertEquals(inferSeqlen(10, 3, 8), [5, 3]); // short target kept whole
  assertEquals(inferSeqlen(3, 10, 8), [3, 5]); // short source kept whole
  assertEquals(inferSeqlen(10, 10, 8), [4, 4]); // both cut in proportion
  assertEquals(inferSeqlen(2, 2, 8), [2, 2]);
  const tok = await tokenizer(null, false);
  const t = getTemplate("llama3");
  const full = encodeConversation(t, tok, CHATS[1]);
  for (const cutoff of [1, 7, 20, full.inputIds.length - 1]) {
    const cut = encodeConversation(t, tok, CHATS[1], { cutoffLen: cutoff });
    assert(cut.inputIds.length <= cutoff, `cutoff ${cutoff}`);
    assertEquals(cut.inputIds.length, cut.labels.length);
  }
  assertEquals(encodeConversation(t, tok, CHATS[1], { cutoffLen: full.inputIds.length }), full);
});

Deno.test("templates: registerTemplate and template files (JSON, YAML, the seed's prompt_format)", () => {
  assertThrows(
    () => registerTemplate({ name: "bad", user: "no slot", assistant: "{{content}}" }),
    /template "bad": user: must contain \{\{content\}\}/,
  );
  const t = registerTemplateFile(
    [
      "name: medical_seed",
      "prompt_format: |",
      "    患者信息:{patient_info}",
      "    症状描述:{symptoms}",
      "    检查结果:{test_results}",
      "",
      "    诊断建议:",
      "response_key: diagnosis",
    ].join("\n"),
    "templates/medical_seed.yaml",
  );
  assertEquals(t.fields, getTemplate("medical_inquiry").fields);
  assertThrows(
    () => registerTemplateFile('{"name": "x", "user": "{{content}}"}', "x.json"),
    /^x\.json: template "x": assistant:/,
  );
  assertThrows(() => getTemplate("nope"), /unknown template "nope" \(known: default, alpaca/);
});
