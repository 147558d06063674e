/** Diagnosis extraction and accuracy on varied zh/en phrasings (src/eval/diagnosis.ts). */
import {
  buildAliasIndex,
  BUILTIN_ALIASES,
  diagnosisAccuracy,
  diagnosisCorrect,
  extractDiagnoses,
  generatedDiagnosisAccuracy,
  normalizeDiagnosis,
  resolveDiagnosis,
} from "../../src/eval/diagnosis.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../assert.ts";
import type { GenerateRequest } from "../../src/engine/types.ts";
import { medicalAliasTable } from "../../src/data/kg_bundled.ts";

const index = buildAliasIndex(BUILTIN_ALIASES);

/** [answer text, canonical id of its first stated diagnosis]. */
const FIRST: [string, string][] = [
  ["诊断：肌萎缩侧索硬化。", "als"],
  ["诊断:渐冻症", "als"],
  ["初步诊断：系统性红斑狼疮（SLE），建议查抗核抗体。", "sle"],
  ["最可能的诊断是法布雷病。建议行α-半乳糖苷酶A活性检测。", "fabry"],
  ["最可能的诊断为戈谢病，其次考虑尼曼-匹克病。", "gaucher"],
  ["考虑庞贝病，需查GAA酶活性。", "pompe"],
  ["考虑为重症肌无力，建议新斯的明试验。", "mg"],
  ["首先考虑多发性硬化，其次为视神经脊髓炎。", "ms"],
  ["根据患者进行性肌无力和肌束颤动，考虑诊断为肌萎缩侧索硬化可能性大。", "als"],
  ["患者症状符合亨廷顿舞蹈病的表现。", "huntington"],
  ["疑似肝豆状核变性，建议查铜蓝蛋白。", "wilson"],
  ["结合病史，诊断为吉兰-巴雷综合征。", "gbs"],
  ["该患儿诊断是脊髓性肌萎缩症（SMA）。", "sma"],
  ["新生儿筛查阳性，诊断：苯丙酮尿症。", "pku"],
  ["渐冻症", "als"],
  ["Diagnosis: amyotrophic lateral sclerosis.", "als"],
  ["Final diagnosis: Systemic Lupus Erythematosus", "sle"],
  ["The most likely diagnosis is Fabry disease. Confirm with enzyme assay.", "fabry"],
  ["Most likely Gaucher disease type 1; check glucocerebrosidase.", "gaucher"],
  ["These findings are consistent with Pompe disease.", "pompe"],
  ["The picture is most consistent with myasthenia gravis, given fatigable ptosis.", "mg"],
  ["MRI lesions are suggestive of multiple sclerosis.", "ms"],
  ["The patient was diagnosed with neuromyelitis optica last year.", "nmosd"],
  ["I suspect Huntington's disease given the chorea and family history.", "huntington"],
  ["Probable Wilson's disease: low ceruloplasmin, Kayser-Fleischer rings.", "wilson"],
  ["Likely Guillain-Barre syndrome after the infection.", "gbs"],
  ["Diagnosis - spinal muscular atrophy", "sma"],
  ["ALS", "als"],
  ["Lou Gehrig's disease.", "als"],
  ["The diagnosis is PKU (phenylketonuria).", "pku"],
  ["诊断：ALS（amyotrophic lateral sclerosis），即渐冻症。", "als"],
  ["Most likely 戈谢病 type 1.", "gaucher"],
  ["考虑 Fabry disease（法布雷病），建议 GLA 基因检测。", "fabry"],
  ["患者诊断为SLE（systemic lupus erythematosus）。", "sle"],
  ["Dx: ALS", "als"],
  ["The patient likely has early ALS, per El Escorial criteria.", "als"],
  ["鉴别诊断包括：多发性硬化、视神经脊髓炎", "ms"],
  ["ALS is unlikely; the diagnosis is myasthenia gravis.", "mg"],
  ["不考虑渐冻症，诊断为重症肌无力。", "mg"],
  ["症状不符合多发性硬化，考虑视神经脊髓炎。", "nmosd"],
  ["Suspected Fabry disease in a 30-year-old man.", "fabry"],
  ["**诊断**：渐冻症（ALS）\n**依据**：进行性肌无力。", "als"],
  ["### Diagnosis\n**Most likely:** Gaucher disease", "gaucher"],
  ["Impression: the presentation is most likely to be Pompe disease with respiratory weakness.", "pompe"],
];

Deno.test("diagnosis: first stated diagnosis from 44 zh/en/mixed phrasings", () => {
  const wrong: string[] = [];
  for (const [text, id] of FIRST) {
    const got = extractDiagnoses(text, 1).map((c) => resolveDiagnosis(c, index));
    if (got[0] !== id) wrong.push(`${JSON.stringify(text)} → ${JSON.stringify(got)} (want ${id})`);
  }
  assert(wrong.length === 0, `misread ${wrong.length}:\n${wrong.join("\n")}`);
});

Deno.test("diagnosis: the first stated wins over later mentions", () => {
  assertEquals(
    resolveDiagnosis(extractDiagnoses("需与多发性硬化鉴别。诊断：视神经脊髓炎。")[0], index),
    "nmosd",
  );
  // The differential comes after the main statement and must not replace it.
  assert(!diagnosisCorrect("最可能的诊断是肌萎缩侧索硬化，需与重症肌无力鉴别。", "重症肌无力", index, 1));
  assert(diagnosisCorrect("最可能的诊断是肌萎缩侧索硬化，需与重症肌无力鉴别。", "ALS", index, 1));
});

Deno.test("diagnosis: top-k lists in several list styles", () => {
  assertEquals(extractDiagnoses("最可能的诊断是肌萎缩侧索硬化，其次为多发性硬化。"), [
    "肌萎缩侧索硬化",
    "多发性硬化",
  ]);
  assertEquals(
    extractDiagnoses("Differential diagnosis includes: (1) CIDP, (2) Guillain-Barre syndrome, (3) MMN."),
    ["CIDP", "Guillain-Barre syndrome", "MMN"],
  );
  assertEquals(extractDiagnoses("考虑：①戈谢病 ②庞贝病 ③法布雷病"), ["戈谢病", "庞贝病", "法布雷病"]);
  assertEquals(extractDiagnoses("Most likely multiple sclerosis or neuromyelitis optica."), [
    "multiple sclerosis",
    "neuromyelitis optica",
  ]);
  assertEquals(extractDiagnoses("诊断：戈谢病、庞贝病或法布雷病", 2), ["戈谢病", "庞贝病"]);
  const text = "Diagnosis: 1) CIDP 2) Guillain-Barré syndrome 3) multifocal motor neuropathy";
  assert(!diagnosisCorrect(text, "GBS", index, 1), "GBS is second, top-1 must miss it");
  assert(diagnosisCorrect(text, "GBS", index, 2), "GBS is second, top-2 must find it");
  assert(diagnosisCorrect(text, "吉兰-巴雷综合征", index, 3));
});

Deno.test("diagnosis: aliases, normalisation and non-matches", () => {
  assertEquals(normalizeDiagnosis("  Lou Gehrig's Disease. "), "lougehrigdisease");
  assertEquals(normalizeDiagnosis("Guillain-Barré syndrome"), normalizeDiagnosis("guillain barre SYNDROME"));
  assertEquals(normalizeDiagnosis("ＡＬＳ"), "als");
  assertEquals(resolveDiagnosis("渐冻症", index), resolveDiagnosis("Amyotrophic Lateral Sclerosis", index));
  // Word boundaries for Latin aliases: "false" must not resolve to ALS.
  assertEquals(resolveDiagnosis("false alarm", index), "falsealarm");
  // An unknown disease stays its own normalised text and still matches itself exactly.
  assert(diagnosisCorrect("诊断：尼曼-匹克病。", "尼曼匹克病", index));
  assert(!diagnosisCorrect("诊断：尼曼-匹克病。", "戈谢病", index));
  assert(!diagnosisCorrect("I am not sure.", "Pompe disease", index));
  assert(!diagnosisCorrect("", "ALS", index));
  assertThrows(() => buildAliasIndex(new Map([["ALS", "a"], ["als", "b"]])), /claimed by both/);
});

Deno.test("diagnosis: corpus accuracy, top-k and bootstrap CI", () => {
  const preds = ["诊断：渐冻症。", "Diagnosis: lupus.", "考虑多发性硬化。", "Most likely CIDP or GBS."];
  const labels = ["ALS", "系统性红斑狼疮", "视神经脊髓炎", "Guillain-Barré syndrome"];
  const top1 = diagnosisAccuracy(preds, labels, BUILTIN_ALIASES, { bootstrap: { seed: 7, resamples: 500 } });
  assertEquals(top1.perSample, [1, 1, 0, 0]);
  assertEquals(top1.accuracy, 0.5);
  assert(top1.ci !== undefined && top1.ci.low <= 0.5 && top1.ci.high >= 0.5 && top1.ci.low < top1.ci.high);
  const top2 = diagnosisAccuracy(preds, labels, BUILTIN_ALIASES, { k: 2 });
  assertEquals(top2.perSample, [1, 1, 0, 1]);
  assertThrows(() => diagnosisAccuracy(["a"], [], BUILTIN_ALIASES), /1 predictions but 0 labels/);
});

Deno.test("diagnosis: reasons ('诊断依据') and differentials ('鉴别诊断') are not the diagnosis", () => {
  assertEquals(extractDiagnoses("慢性心力衰竭。诊断依据：劳力性呼吸困难、水肿。", 1), ["慢性心力衰竭"]);
  assertEquals(extractDiagnoses("鉴别诊断：多发性硬化。最可能的诊断是肌萎缩侧索硬化。", 1), [
    "肌萎缩侧索硬化",
  ]);
  assertEquals(extractDiagnoses("诊断：帕金森病。诊断标准：运动迟缓伴静止性震颤。", 1), ["帕金森病"]);
});

Deno.test("diagnosis: every reference answer of the embedded default dataset is correct against its label", () => {
  const kgIndex = buildAliasIndex(medicalAliasTable());
  for (const split of ["train", "validation", "test"]) {
    const recs = JSON.parse(
      Deno.readTextFileSync(new URL(`../../data/default/${split}.json`, import.meta.url)),
    ) as { output: string; disease_id: string }[];
    const wrong = recs.filter((r) => !diagnosisCorrect(r.output, r.disease_id, kgIndex));
    assertEquals(wrong.map((r) => r.output.slice(0, 30)), [], `${split}: references scored wrong`);
  }
});

Deno.test("generatedDiagnosisAccuracy: batches, request fields passed on, answers trimmed, top-k, counts", async () => {
  // Prompt [i] gets answers[i]; the engine records every request it sees.
  const answers = [
    "  诊断：渐冻症。\n",
    "Diagnosis: lupus.",
    "诊断：感冒。",
    "考虑多发性硬化或视神经脊髓炎。",
    "诊断：PKU",
  ];
  const labels = ["ALS", "SLE", "fabry", "NMOSD", "苯丙酮尿症"];
  const calls: GenerateRequest[] = [];
  const engine = {
    generate(req: GenerateRequest) {
      calls.push(req);
      const sequences = req.prompts.map((p) => ({
        promptIds: p,
        tokenIds: [1],
        text: answers[p[0]],
        finishReason: "eos" as const,
      }));
      return Promise.resolve({
        sequences,
        stats: {
          timeToFirstTokenMs: 0,
          decodeMs: 0,
          decodeTokens: 0,
          chunks: 1,
          recordMs: 0,
          waitMs: 0,
          replayedSteps: 0,
        },
      });
    },
  };
  const prompts = answers.map((_, i) => [i, 99]);
  const request = { maxNewTokens: 7, eosTokenIds: [3], chunkSize: 4 };
  const top1 = await generatedDiagnosisAccuracy(engine, prompts, labels, { batchSize: 2, request, index });
  assertEquals(calls.map((c) => c.prompts.length), [2, 2, 1]);
  for (const c of calls) assertEquals({ ...c, prompts: [] }, { ...request, prompts: [] });
  assertEquals(top1.predictions[0], "诊断：渐冻症。");
  // Right: 0 (alias), 1, 4; wrong: 2 (another disease), 3 (NMOSD is the second item).
  assertEquals({ ...top1, predictions: [] }, { accuracy: 0.6, correct: 3, total: 5, predictions: [] });
  const top2 = await generatedDiagnosisAccuracy(engine, prompts, labels, {
    batchSize: 8,
    request,
    index,
    k: 2,
  });
  assertEquals(top2.correct, 4);
  await assertRejects(
    () => generatedDiagnosisAccuracy(engine, prompts, labels.slice(1), { batchSize: 2, request, index }),
    /5 prompts but 4 labels/,
  );
  const none = await generatedDiagnosisAccuracy(engine, [], [], { batchSize: 2, request, index });
  assertEquals(none.accuracy, 0);
});
