/**
 * The evaluator (src/eval/evaluator.ts, records.ts): records → prompts/labels, seeded sampling, scoring
 * with per-disease breakdown, evaluateDiagnosisAccuracy with a scripted engine (exact accuracy) and
 * with the tiny llama through our engine (the predictions equal a direct greedy generate()).
 */
import { assert, assertEquals, assertRejects, assertThrows } from "../assert.ts";
import { testGpu } from "../util.ts";
import { TESTDATA } from "../model/golden.ts";
import { denoFs } from "../../platform/deno_fs.ts";
import { openModel } from "../../src/engine/open.ts";
import type { Engine, GenerateRequest } from "../../src/engine/types.ts";
import { encodePrompt, getTemplate } from "../../src/data/templates.ts";
import {
  enginePredictor,
  evaluateDiagnosisAccuracy,
  generatePredictions,
  scoreRows,
} from "../../src/eval/evaluator.ts";
import { diagnosisAliases, loadTestRecords, sampleRecords, toEvalRecords } from "../../src/eval/records.ts";
import { memoryFs } from "../../src/io/fs.ts";

const TEST = JSON.parse(Deno.readTextFileSync(new URL("../../data/default/test.json", import.meta.url)));
const medical = getTemplate("medical_inquiry");

/** An engine that answers from a script, keyed by the decoded prompt ids (tokenizer = char codes). */
function scriptedEngine(answer: (promptIds: number[]) => string): Engine & { calls: GenerateRequest[] } {
  const calls: GenerateRequest[] = [];
  return {
    calls,
    generate(req) {
      calls.push(req);
      const sequences = req.prompts.map((p) => ({
        promptIds: p,
        tokenIds: [1, 2, 3],
        text: answer(p),
        finishReason: "eos" as const,
      }));
      return Promise.resolve({
        sequences,
        stats: {
          timeToFirstTokenMs: 1,
          decodeMs: 1,
          decodeTokens: 2,
          chunks: 1,
          recordMs: 0,
          waitMs: 0,
          replayedSteps: 0,
        },
      });
    },
    stream: () => {
      throw new Error("not used");
    },
  };
}
const charTokenizer = {
  encode: (s: string) => [...s].map((c) => c.codePointAt(0)!),
  eosTokenIds: [0],
  tokenToId: () => undefined,
};
const text = (ids: number[]) => String.fromCodePoint(...ids);
const right = (reference: string) => reference.split("。")[0] + "。";

Deno.test("records: medical_inquiry fields → prompt, reference, disease_id label; sampling is seeded", () => {
  const recs = toEvalRecords(medical, TEST);
  assertEquals(recs.length, TEST.length);
  assert(recs[0].prompt.startsWith("患者信息:"), recs[0].prompt);
  assert(recs[0].prompt.endsWith("诊断建议:"), "generation prompt ends at the answer slot");
  assertEquals(recs[0].reference, TEST[0].diagnosis);
  assertEquals(recs[0].label, TEST[0].disease_id);
  // Without disease_id the label is the reference's first diagnosis.
  const [alpaca] = toEvalRecords(getTemplate("default"), [{
    instruction: "q",
    output: "诊断：渐冻症。因为……",
  }]);
  assertEquals(alpaca.label, "渐冻症");
  const a = sampleRecords(recs, 10, 7).map((r) => r.index),
    b = sampleRecords(recs, 10, 7).map((r) => r.index);
  assertEquals(a, b);
  assert(a.join() !== sampleRecords(recs, 10, 8).map((r) => r.index).join(), "seed changes the choice");
  assertEquals(new Set(a).size, 10);
  assertThrows(() => toEvalRecords(medical, [{ instruction: "q" }]), /record 0/);
  // Every disease id resolves to itself next to the knowledge graph's names.
  const t = diagnosisAliases();
  for (const r of recs) assertEquals(t.get(r.diseaseId), r.diseaseId);
});

Deno.test("evaluateDiagnosisAccuracy + scoreRows: exact accuracy, per disease, batches", async () => {
  const recs = TEST.slice(0, 10);
  // Right for even records (the reference's first sentence: the diagnosis), wrong for odd ones.
  const byPrompt = new Map<string, number>();
  toEvalRecords(medical, recs).forEach((r, i) =>
    byPrompt.set(encodePrompt(medical, charTokenizer, r.messages).join(), i)
  );
  const engine = scriptedEngine((p) => {
    const i = byPrompt.get(p.join())!;
    return i % 2 === 0 ? right(recs[i].diagnosis) : "诊断：感冒。";
  });
  const r = await evaluateDiagnosisAccuracy(engine, charTokenizer, medical, recs, { batchSize: 4 });
  assertEquals(r, {
    accuracy: 0.5,
    correct: 5,
    total: 10,
    predictions: recs.map((x: { diagnosis: string }, i: number) =>
      i % 2 === 0 ? right(x.diagnosis) : "诊断：感冒。"
    ),
  });
  assertEquals(engine.calls.map((c) => c.prompts.length), [4, 4, 2]);
  assertEquals(engine.calls[0].eosTokenIds, [0]);
  assert(text(engine.calls[0].prompts[0]).startsWith("患者信息"), "template rendered");

  const rows = await generatePredictions(
    enginePredictor(engine, charTokenizer, medical),
    toEvalRecords(medical, recs),
  );
  const s = scoreRows(rows, { bootstrap: { resamples: 200 } });
  assertEquals(s.metrics.accuracy.value, 0.5);
  assertEquals(rows.map((x) => x.correct), recs.map((_: unknown, i: number) => i % 2 === 0 ? 1 : 0));
  for (const k of ["f1", "bleu-4", "rouge-1", "rouge-2", "rouge-l"]) assert(k in s.metrics, k);
  const ids = [...new Set(recs.map((x: { disease_id: string }) => x.disease_id))].sort();
  assertEquals(Object.keys(s.per_disease), ids);
  const n = Object.values(s.per_disease).reduce((a, d) => a + d.samples, 0);
  assertEquals(n, 10);
  for (const [id, d] of Object.entries(s.per_disease)) {
    const want = rows.filter((x) => x.disease_id === id);
    assertEquals(d.metrics.accuracy.value, want.reduce((a, x) => a + x.correct!, 0) / want.length);
  }
});

Deno.test("evaluateDiagnosisAccuracy on the tiny llama: predictions equal a direct greedy generate", async () => {
  const gpu = await testGpu();
  const m = await openModel(gpu, denoFs, `${TESTDATA}/llama`, { dtype: "f32" });
  try {
    const recs = [
      { instruction: "Patient with weakness", output: "Diagnosis: ALS." },
      { instruction: "Fever and cough, 3 days", output: "Diagnosis: pneumonia." },
      { instruction: "Tremor", output: "Diagnosis: Parkinson disease." },
    ];
    const t = getTemplate("default");
    const r = await evaluateDiagnosisAccuracy(m.engine, m.tokenizer, t, recs, {
      batchSize: 2,
      maxNewTokens: 6,
    });
    assertEquals(r.total, 3);
    const direct = await m.engine.generate({
      prompts: toEvalRecords(t, recs).map((x) => encodePrompt(t, m.tokenizer, x.messages)),
      maxNewTokens: 6,
    });
    assertEquals(r.predictions, direct.sequences.map((s) => s.text.trim()));
    assert(r.accuracy >= 0 && r.accuracy <= 1);
  } finally {
    m.dispose();
  }
});

const ROOT = new URL("../../", import.meta.url).pathname;
async function evalCli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}cli/eval.ts`, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { XDG_RUNTIME_DIR: "/tmp" },
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

Deno.test("deno task eval --config: model, adapter (output_dir), eval_dataset, template from a training YAML", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const outDir = `${dir}/run`;
    await Deno.mkdir(outDir);
    for (const f of ["adapter_config.json", "adapter_model.safetensors"]) {
      await Deno.copyFile(`${TESTDATA}/llama_lora/${f}`, `${outDir}/${f}`);
    }
    await Deno.writeTextFile(
      `${dir}/train.yaml`,
      [
        "model:",
        `  name_or_path: ${TESTDATA}/llama`,
        "data:",
        "  dataset: medical_default",
        "  eval_dataset: medical_default_test",
        `  dataset_dir: ${ROOT}data`,
        "  template: medical_inquiry",
        "  max_samples: 4",
        "train:",
        `  output_dir: ${outDir}`,
        "  per_device_eval_batch_size: 2",
        "evaluation:",
        "  metric_for_best_model: accuracy",
      ].join("\n"),
    );
    const r = await evalCli([
      "--config",
      `${dir}/train.yaml`,
      "--metrics",
      "f1,bleu",
      "--max-new-tokens",
      "4",
    ]);
    assertEquals(r.code, 0, r.err);
    const metrics = JSON.parse(await Deno.readTextFile(`${outDir}/eval/metrics.json`));
    assertEquals(metrics.adapter, outDir);
    assertEquals(metrics.samples, 4);
    assertEquals(metrics.total, 72);
    assertEquals(
      Object.keys(metrics.metrics).sort(),
      ["accuracy", "bleu-4", "f1"],
      "metric_for_best_model added",
    );
    assert(metrics.reference_accuracy > 0 && metrics.reference_accuracy <= 1);
    const rows = (await Deno.readTextFile(`${outDir}/eval/generated_predictions.jsonl`)).trim().split("\n")
      .map((l) => JSON.parse(l));
    assertEquals(rows.length, 4);
    for (const k of ["prompt", "predict", "label", "latency_ms", "disease_id"]) assert(k in rows[0], k);
    const per = JSON.parse(await Deno.readTextFile(`${outDir}/eval/per_disease.json`));
    assertEquals(Object.values(per).reduce((a: number, d) => a + (d as { samples: number }).samples, 0), 4);
    assert((await Deno.readTextFile(`${outDir}/eval/report.md`)).includes("## Per disease"));
    // User errors: one line, no stack.
    const bad = await evalCli([
      "--model",
      `${TESTDATA}/llama`,
      "--test",
      "nope.json",
      "--template",
      "medical_inquiry",
    ]);
    assertEquals(bad.code, 1);
    assert(/^error: --test nope\.json: no such file/.test(bad.err), bad.err);
    const badMetric = await evalCli([
      "--model",
      "x",
      "--test",
      "y",
      "--template",
      "default",
      "--metrics",
      "acc",
    ]);
    assert(badMetric.err.includes('unknown "acc"'), badMetric.err);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadTestRecords: a file (JSON or JSONL) or a dataset_info.json name; errors name the line", async () => {
  const fs = memoryFs({
    "d/dataset_info.json": JSON.stringify({ t: { file_name: "sub/t.jsonl" } }),
    "d/sub/t.jsonl": '{"instruction":"a","output":"b"}\n\n{"instruction":"c","output":"d"}\n',
    "x.json": '[{"instruction":"a","output":"b"}]',
    "bad.jsonl": '{"instruction":"a","output":"b"}\n{oops\n',
  });
  assertEquals(await loadTestRecords(fs, "t", "d"), {
    path: "d/sub/t.jsonl",
    records: [{ instruction: "a", output: "b" }, { instruction: "c", output: "d" }],
  });
  assertEquals((await loadTestRecords(fs, "x.json", "d")).records.length, 1);
  await assertRejects(() => loadTestRecords(fs, "bad.jsonl", "d"), /bad\.jsonl: line 2: not valid JSON/);
  await assertRejects(
    () => loadTestRecords(fs, "nope", "d"),
    /no dataset of that name in d\/dataset_info\.json/,
  );
});
