import { parseKnowledgeGraph } from "../../src/data/kg.ts";
import { aliasIndex } from "../../src/data/kg.ts";
import { displayName, inquiryPrompt, synthesizeCases } from "../../src/data/synth.ts";
import { buildDefaultDataset, DEFAULT_DATASET } from "../../src/data/default_dataset.ts";
import { memoryFs } from "../../src/data/fs.ts";
import { assert, assertEquals, assertThrows } from "../assert.ts";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const KG = parseKnowledgeGraph(JSON.parse(Deno.readTextFileSync(`${ROOT}/data/medical_kg.json`)));
const byId = new Map(KG.diseases.map((d) => [d.id, d]));

Deno.test("synth: deterministic per seed, different across seeds", () => {
  const o = { diseases: ["渐冻症", "亨廷顿舞蹈症"], numSamples: 200, lang: "zh" as const, seed: 7 };
  const a = JSON.stringify(synthesizeCases(KG, o)), b = JSON.stringify(synthesizeCases(KG, o));
  assertEquals(a, b);
  assert(a !== JSON.stringify(synthesizeCases(KG, { ...o, seed: 8 })), "seed had no effect");
});

Deno.test("synth: symptom, finding and sex frequencies match the graph within sampling error", () => {
  const n = 3000;
  for (const id of ["als", "huntington_disease", "acute_myocardial_infarction"]) {
    const d = byId.get(id)!;
    const cases = synthesizeCases(KG, { diseases: [id], numSamples: n, lang: "en", seed: 3, hardRate: 0 });
    for (const s of d.symptoms) {
      const got = cases.filter((c) => c.symptoms.includes(s.en)).length / n;
      const sd = Math.sqrt(s.freq * (1 - s.freq) / n);
      assert(
        Math.abs(got - s.freq) <= 4 * sd + 0.005,
        `${id} "${s.en}": ${got.toFixed(3)} vs graph ${s.freq}`,
      );
    }
    for (const f of d.findings) {
      const shown = [`${f.test.en}: ${f.result.en}`, `${f.test.en} – ${f.result.en}`];
      const got = cases.filter((c) => shown.some((x) => c.test_results.includes(x))).length / n;
      const sd = Math.sqrt(f.freq * (1 - f.freq) / n);
      assert(
        Math.abs(got - f.freq) <= 4 * sd + 0.005,
        `${id} finding "${f.test.en}": ${got.toFixed(3)} vs ${f.freq}`,
      );
    }
    const male = cases.filter((c) => /\b(man|male|Male|boy)\b/.test(c.patient_info)).length / n;
    const p = d.profile.maleFraction;
    assert(Math.abs(male - p) <= 4 * Math.sqrt(p * (1 - p) / n) + 0.005, `${id} male share ${male} vs ${p}`);
    const ages = cases.map((c) => Number(/(\d+)/.exec(c.patient_info)![1]));
    assert(ages.every((a) => a >= d.profile.age.min && a <= d.profile.age.max), `${id} age out of profile`);
  }
});

Deno.test("synth: records fit medical_inquiry, diagnosis comes first and maps back to the disease", () => {
  const idx = aliasIndex(KG);
  for (const lang of ["zh", "en"] as const) {
    const cases = synthesizeCases(KG, {
      diseases: KG.diseases.map((d) => d.id),
      numSamples: 430,
      lang,
      seed: 1,
    });
    for (const c of cases) {
      assert(c.patient_info && c.symptoms && c.test_results && c.diagnosis && c.rationale, JSON.stringify(c));
      assertEquals(c.instruction, inquiryPrompt(lang, c));
      assertEquals(c.output, c.diagnosis);
      const d = byId.get(c.disease_id)!;
      assert(c.diagnosis.startsWith(displayName(d, lang)), `${c.diagnosis} does not start with the name`);
      assertEquals(idx.lookup(c.diagnosis), c.disease_id, c.diagnosis);
    }
    const counts = new Map<string, number>();
    for (const c of cases) counts.set(c.disease_id, (counts.get(c.disease_id) ?? 0) + 1);
    assertEquals([...counts.values()].every((v) => v === 10), true, "even spread over diseases");
  }
});

Deno.test("synth: hard cases carry a differential's feature and explain it; wording varies", () => {
  const cases = synthesizeCases(KG, {
    diseases: ["als", "acute_myocardial_infarction"],
    numSamples: 300,
    lang: "zh",
    seed: 5,
    hardRate: 1,
  });
  for (const c of cases) {
    assert(c.hard && c.differential, "hardRate 1 gave an easy case");
    const d = byId.get(c.disease_id)!, x = byId.get(c.differential!)!;
    assert(d.differentials.includes(x.id));
    const foreign = x.symptoms.filter((s) => !d.symptoms.some((o) => o.en === s.en));
    assert(foreign.some((s) => c.symptoms.includes(s.zh)), `no ${x.id} symptom in: ${c.symptoms}`);
    assert(c.rationale.includes(x.name.zh), "rationale does not name the differential");
    const top = d.findings.reduce((a, b) => (b.freq > a.freq ? b : a));
    assert(c.test_results.includes(top.result.zh), "the deciding finding is missing");
  }
  const shapes = new Set(
    cases.map((c) => c.patient_info.replace(/\d+/g, "N").replace(/[男女]/g, "S").slice(0, 6)),
  );
  const openings = new Set(cases.map((c) => c.symptoms.replace(/\d+/g, "N").slice(0, 2)));
  assert(shapes.size >= 3 && openings.size >= 5, `little variety: ${[...shapes]} / ${openings.size}`);
  assertEquals(new Set(cases.map((c) => c.instruction)).size, cases.length);
  const easy = synthesizeCases(KG, { diseases: ["als"], numSamples: 1000, lang: "zh", seed: 5 });
  const share = easy.filter((c) => c.hard).length / 1000;
  assert(Math.abs(share - 0.2) < 0.05, `default hard share ${share}`);
});

Deno.test("synth: unknown disease and bad sizes are clear errors", () => {
  assertThrows(
    () => synthesizeCases(KG, { diseases: ["渐冻症", "龙病"], numSamples: 5, lang: "zh", seed: 1 }),
    /unknown disease\(s\): 龙病/,
  );
  assertThrows(
    () => synthesizeCases(KG, { diseases: ["als"], numSamples: 0, lang: "zh", seed: 1 }),
    /num-samples/,
  );
});

Deno.test("default dataset: the committed files are what `deno task data default` produces", async () => {
  const fs = memoryFs({
    "r/data/medical_kg.json": Deno.readTextFileSync(`${ROOT}/data/medical_kg.json`),
    "r/data/dataset_info.json": Deno.readTextFileSync(`${ROOT}/data/dataset_info.json`),
  });
  const counts = await buildDefaultDataset(fs, "r");
  assertEquals(counts, { medical_default: 576, medical_default_validation: 72, medical_default_test: 72 });
  for (const p of ["train", "validation", "test"]) {
    assert(
      fs.files.get(`r/data/default/${p}.json`) === Deno.readTextFileSync(`${ROOT}/data/default/${p}.json`),
      `data/default/${p}.json is stale`,
    );
    const recs = JSON.parse(fs.files.get(`r/data/default/${p}.json`)!) as { disease_id: string }[];
    const per = new Map<string, number>();
    for (const r of recs) per.set(r.disease_id, (per.get(r.disease_id) ?? 0) + 1);
    assertEquals(per.size, DEFAULT_DATASET.diseases.length);
    assertEquals(new Set(per.values()).size, 1, `${p} not stratified: ${[...per.values()]}`);
  }
  assertEquals(
    fs.files.get("r/data/dataset_info.json"),
    Deno.readTextFileSync(`${ROOT}/data/dataset_info.json`),
  );
});
