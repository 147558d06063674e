import { aliasIndex, normaliseName, parseKnowledgeGraph } from "../../src/data/kg.ts";
import { assert, assertEquals, assertThrows } from "../assert.ts";

const RAW = JSON.parse(Deno.readTextFileSync(new URL("../../data/medical_kg.json", import.meta.url)));
const KG = parseKnowledgeGraph(RAW, "data/medical_kg.json");

Deno.test("bundled knowledge graph: valid, ≥ 40 diseases, the seed's diseases present", () => {
  assert(KG.diseases.length >= 40, `only ${KG.diseases.length} diseases`);
  const byId = new Map(KG.diseases.map((d) => [d.id, d]));
  for (
    const id of [
      "als",
      "huntington_disease",
      "acute_myocardial_infarction",
      "type2_diabetes",
      "ischemic_stroke",
      "pneumonia",
    ]
  ) {
    assert(byId.has(id), `missing ${id}`);
  }
  assert(byId.get("als")!.aliases.zh.includes("渐冻症"));
  assertEquals(byId.get("huntington_disease")!.name.zh, "亨廷顿舞蹈症");
  assertEquals(byId.get("huntington_disease")!.profile.inheritance, "autosomal_dominant");
  for (const d of KG.diseases) {
    assert(d.symptoms.length >= 3 && d.findings.length >= 2 && d.management.length >= 1, d.id);
    assert(d.aliases.zh.length + d.aliases.en.length >= 1, `${d.id} has no aliases`);
  }
});

Deno.test("knowledge graph schema: errors name the disease and field", () => {
  const bad = structuredClone(RAW);
  bad.diseases[1].symptoms[0].freq = 1.5;
  delete bad.diseases[3].name.zh;
  const m =
    assertThrows(() => parseKnowledgeGraph(bad, "kg.json"), /kg\.json: invalid knowledge graph/).message;
  assert(/diseases\[1\] \(huntington_disease\)\.symptoms\[0\]\.freq: Too big/.test(m), m);
  assert(/diseases\[3\] \(alzheimer_disease\)\.name\.zh/.test(m), m);
  // Cross-references are checked once every node has the right shape.
  const dangling = structuredClone(RAW);
  dangling.diseases[0].differentials.push("no_such_disease");
  dangling.diseases[2].aliases.en.push("ALS");
  dangling.diseases[4].id = dangling.diseases[5].id;
  const m2 = assertThrows(() => parseKnowledgeGraph(dangling, "kg.json")).message;
  assert(/diseases\[0\] \(als\)\.differentials\[3\]: unknown differential "no_such_disease"/.test(m2), m2);
  assert(/diseases\[2\] \(parkinson_disease\)\.aliases: alias "ALS" also names als/.test(m2), m2);
  assert(/diseases\[5\] \([a-z_]+\)\.id: duplicate id/.test(m2), m2);
});

Deno.test("alias index: zh/en names and aliases → canonical ids", () => {
  const idx = aliasIndex(KG);
  const cases: [string, string][] = [
    ["渐冻症", "als"],
    ["肌萎缩侧索硬化", "als"],
    ["Lou Gehrig’s disease", "als"],
    ["  amyotrophic   LATERAL sclerosis ", "als"],
    ["亨廷顿舞蹈症", "huntington_disease"],
    ["Huntington's chorea", "huntington_disease"],
    ["心梗", "acute_myocardial_infarction"],
    ["STEMI", "acute_myocardial_infarction"],
    ["Ⅱ型糖尿病", "type2_diabetes"],
    ["T2DM", "type2_diabetes"],
    ["脑梗死", "ischemic_stroke"],
    ["CAP", "pneumonia"],
  ];
  for (const [s, id] of cases) assertEquals(idx.lookup(s), id, s);
  assertEquals(idx.exact("not a disease"), null);
  assertEquals(normaliseName("Ｈｕｎｔｉｎｇｔｏｎ'ｓ"), "huntingtons");
});

Deno.test("alias index: free-text answers resolve to the disease named first", () => {
  const idx = aliasIndex(KG);
  assertEquals(idx.lookup("诊断:肌萎缩侧索硬化(渐冻症)。需与重症肌无力鉴别。"), "als");
  assertEquals(idx.lookup("考虑1型糖尿病,而非2型糖尿病"), "type1_diabetes"); // longest name at the earliest spot
  assertEquals(idx.lookup("出血性卒中可能性大"), "intracerebral_hemorrhage"); // not "卒中" inside it
  assertEquals(idx.lookup("The most likely diagnosis is ALS, also consider myasthenia gravis."), "als");
  assertEquals(idx.lookup("also a renal issue"), null); // "als" only as a word
  assertEquals(idx.lookup("Likely Graves disease."), "graves_disease");
  assertEquals(idx.find("no diagnosis here"), null);
});

Deno.test("bundled graph module: alias table for src/eval, lookup without file I/O", async () => {
  const { medicalAliasTable, lookupDiagnosis, medicalKnowledgeGraph } = await import(
    "../../src/data/kg_bundled.ts"
  );
  assertEquals(medicalKnowledgeGraph().diseases.length, KG.diseases.length);
  const t = medicalAliasTable();
  assertEquals([t.get("渐冻症"), t.get("亨廷顿舞蹈症"), t.get("Huntington's disease"), t.get("AMI")], [
    "als",
    "huntington_disease",
    "huntington_disease",
    "acute_myocardial_infarction",
  ]);
  assertEquals(lookupDiagnosis("首先考虑亨廷顿舞蹈症"), "huntington_disease");
  // Also unambiguous under the evaluation code's stricter normal form (all separators removed).
  const strict = new Map<string, string>();
  for (const [name, id] of t) {
    const k = name.normalize("NFKC").toLowerCase().replace(/['’]s\b/g, "").replace(/[^\p{L}\p{N}]/gu, "");
    assert(!strict.has(k) || strict.get(k) === id, `"${name}" collides with ${strict.get(k)}`);
    strict.set(k, id);
  }
});
