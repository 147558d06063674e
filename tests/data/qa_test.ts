import { Hono } from "hono";
import { parsePubmedXml } from "../../src/data/pubmed_xml.ts";
import { objectiveToInstruction, ruleQa, sectionRole } from "../../src/data/qa_rules.ts";
import { chatQa, openAiQa, parsePairs } from "../../src/data/qa_openai.ts";
import { assert, assertEquals, assertThrows } from "../assert.ts";

const EDGE = Deno.readTextFileSync(new URL("./fixtures/pubmed_edge.xml", import.meta.url));
const RECORDS = parsePubmedXml(EDGE).records;

Deno.test("rule QA: objective → instruction, results + conclusions → answer with numbers and units", () => {
  const { items, stats } = ruleQa(RECORDS);
  assertEquals(stats, { records: 4, pairs: items.length, unstructured: 1, noQuestion: 0, noAnswer: 0 });
  const a = items.filter((x) => x.pmid === "30000001");
  assertEquals(a.map((x) => x.rule), ["objective", "results"]);
  assertEquals(
    a[0].instruction,
    "Evaluate whether adding an SGLT2 inhibitor to metformin lowers HbA1c more than metformin alone in adults with type 2 diabetes.",
  );
  assert(a[0].input.startsWith("Study design: We randomised 412 adults"), a[0].input);
  for (const s of ["−0.6%", "95% CI −0.8 to −0.4", "P < 0.001", "2.3 kg", "24 weeks"]) {
    assert(a[0].output.includes(s), `answer lost "${s}"`);
  }
  assert(
    a[0].output.startsWith("Results: HbA1c fell by 1.1%") &&
      a[0].output.includes("\nConclusion: Adding an SGLT2"),
  );
  assertEquals(a[1].output.startsWith("HbA1c fell by 1.1% versus 0.5%"), true);
  // Non-standard labels (AIMS / FINDINGS / INTERPRETATION) resolve through NlmCategory.
  const b = items.filter((x) => x.pmid === "30000005");
  assertEquals(
    b[0].instruction,
    "Determine whether riluzole 50 mg twice daily prolongs survival in patients with ALS treated in routine care.",
  );
  assert(b[0].output.includes("31.4 months") && b[0].output.includes("HR 0.72; 95% CI 0.60–0.86"));
  // Book chapter sections become how/what questions.
  const c = items.filter((x) => x.pmid === "20301482");
  assertEquals(c.map((x) => x.instruction), [
    "What are the clinical characteristics of Huntington Disease?",
    "How is Huntington Disease diagnosed?",
    "How is Huntington Disease managed?",
  ]);
  assert(c[1].output.includes("36 or more CAG repeats"));
  assert(items.every((x) => x.pmid && x.source === "pubmed-rules" && x.instruction && x.output));
  assert(!items.some((x) => x.pmid === "30000003"), "the unstructured abstract should be skipped");
});

Deno.test("rule QA: section roles and objective wording", () => {
  assertEquals(sectionRole({ label: "PURPOSE", text: "x" }), "objective");
  assertEquals(sectionRole({ label: "MAIN OUTCOME MEASURES", category: "METHODS", text: "x" }), "methods");
  assertEquals(sectionRole({ label: "Conclusions and relevance", text: "x" }), "conclusions");
  assertEquals(objectiveToInstruction("We aimed to compare A with B", "T"), "Compare A with B.");
  assertEquals(objectiveToInstruction("The aim of this study was to assess X in Y.", "T"), "Assess X in Y.");
  assertEquals(
    objectiveToInstruction("Little is known about X.", "Study T."),
    'The study "Study T." addressed the following: Little is known about X. What did it find?',
  );
});

Deno.test("openai QA: reply parsing tolerates fences, rejects wrong shapes", () => {
  assertEquals(parsePairs('Sure!\n```json\n[{"question":"Q?","answer":"A"}]\n```'), [{
    question: "Q?",
    answer: "A",
  }]);
  assertThrows(() => parsePairs("no json here"), /no JSON array/);
  assertThrows(() => parsePairs('[{"q":"x"}]'), /wrong shape/);
});

Deno.test("openai QA: bounded concurrency, retries, pmids, failures reported", async () => {
  let inFlight = 0, maxInFlight = 0, calls = 0;
  const seen: { auth: string | undefined; model: string; user: string }[] = [];
  const app = new Hono();
  app.post("/v1/chat/completions", async (c) => {
    const n = calls++;
    const body = await c.req.json();
    seen.push({ auth: c.req.header("authorization"), model: body.model, user: body.messages[1].content });
    if (n === 0) return c.json({ error: { message: "rate limited" } }, 429, { "Retry-After": "0" });
    if (n === 1) return c.text("upstream error", 502);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await new Promise((r) => setTimeout(r, 40));
    inFlight--;
    const pmid = /PMID: (\d+)/.exec(body.messages[1].content)![1];
    const content = pmid === "30000003" ? "I cannot help with that." : "```json\n" +
      JSON.stringify([{ question: `What did ${pmid} find?`, answer: `Finding of ${pmid}.` }]) + "\n```";
    return c.json({
      id: "x",
      object: "chat.completion",
      choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
    });
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  try {
    const many = [
      ...RECORDS,
      ...RECORDS.map((r) => ({ ...r, pmid: `9${r.pmid}` })),
      ...RECORDS.map((r) => ({ ...r, pmid: `8${r.pmid}` })),
    ];
    const { items, failed } = await openAiQa(many, {
      baseUrl: `http://127.0.0.1:${server.addr.port}/v1/`,
      model: "local-test",
      apiKey: "sk-test",
      concurrency: 3,
      retry: { baseDelayMs: 10 },
    });
    assertEquals(maxInFlight, 3);
    assertEquals(failed.map((f) => f.pmid), ["30000003"]);
    assert(/no JSON array/.test(failed[0].error));
    assertEquals(items.length, many.length - 1);
    assertEquals(items.map((x) => x.pmid), many.map((r) => r.pmid).filter((p) => p !== "30000003"));
    assert(items.every((x) => x.output === `Finding of ${x.pmid}.` && x.source === "openai:local-test"));
    assert(seen.every((s) => s.auth === "Bearer sk-test" && s.model === "local-test"));
    assert(seen.some((s) => s.user.includes("HbA1c fell by 1.1%")), "the abstract was not in the prompt");
    assertEquals(calls, many.length + 2); // two retried failures
  } finally {
    await server.shutdown();
  }
});

Deno.test("chatQa: any chat function; bad replies are listed with their pmid, order kept", async () => {
  const recs = RECORDS.slice(0, 3);
  const replies = [
    '```json\n[{"question":"Q1?","answer":"A1 (5 mg)"}]\n```',
    "I cannot help with that.",
    '[{"question":"Q3?","answer":"A3"},{"question":"Q4?","answer":"A4"}]',
  ];
  let call = 0;
  const { items, failed } = await chatQa(recs, () => Promise.resolve(replies[call++]), {
    source: "model:test",
    concurrency: 1,
  });
  assertEquals(items.map((i) => [i.instruction, i.pmid, i.source]), [
    ["Q1?", recs[0].pmid, "model:test"],
    ["Q3?", recs[2].pmid, "model:test"],
    ["Q4?", recs[2].pmid, "model:test"],
  ]);
  assertEquals(failed, [{ pmid: recs[1].pmid, error: "reply holds no JSON array" }]);
});
