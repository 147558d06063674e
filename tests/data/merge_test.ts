import { jaccard, NearDuplicateIndex, shingles } from "../../src/data/minhash.ts";
import { parseRatios, stratifiedSplit, stratumCounts } from "../../src/data/split.ts";
import { mergeDatasets } from "../../src/data/merge.ts";
import { memoryFs } from "../../src/data/fs.ts";
import { relativeTo } from "../../src/data/dataset_info.ts";
import { DataRng } from "../../src/data/rng.ts";
import { assert, assertEquals, assertRejects } from "../assert.ts";

const WORDS =
  "patient presented with fever cough dyspnoea chest pain troponin ecg elevation glucose insulin metformin renal"
    .split(" ");
function paragraph(rng: DataRng, n: number): string {
  return Array.from({ length: n }, () => rng.pick(WORDS)).join(" ");
}

Deno.test("MinHash: estimates track exact Jaccard; near duplicates found, distinct texts kept", () => {
  const rng = new DataRng(1);
  const idx = new NearDuplicateIndex({ threshold: 0.8 });
  const base = paragraph(rng, 80);
  const probe = new NearDuplicateIndex();
  for (let k = 0; k < 20; k++) {
    const a = paragraph(rng, 60), words = a.split(" ");
    for (let j = 0; j < k; j++) words[rng.int(0, words.length - 1)] = rng.pick(WORDS);
    const b = words.join(" ");
    const est = NearDuplicateIndex.estimate(probe.signature(a), probe.signature(b));
    const exact = jaccard(shingles(a), shingles(b));
    assert(Math.abs(est - exact) < 0.15, `estimate ${est} vs exact ${exact}`); // 128 perms: sd ≤ 0.045
  }
  assertEquals(idx.add(base, 0), null);
  const edited = base.replace(/^(\S+ \S+ \S+)/, "$1 additionally") + "!!";
  const hit = idx.add(edited.toUpperCase(), 1);
  assert(
    hit && hit.duplicateOf === 0 && hit.similarity >= 0.8,
    `edited copy not caught: ${JSON.stringify(hit)}`,
  );
  assertEquals(idx.add(paragraph(rng, 80), 2), null);
  assertEquals(idx.add("肌萎缩侧索硬化患者出现手部无力和肌束颤动,肌电图示广泛神经源性损害", 3), null);
  assertEquals(
    idx.add("肌萎缩侧索硬化患者出现手部无力和肌束颤动。肌电图示广泛神经源性损害!", 4)?.duplicateOf,
    3,
  );
  assertEquals(idx.add("亨廷顿舞蹈症患者出现舞蹈样动作和认知下降,基因检测CAG重复扩增", 5), null);
});

Deno.test("stratified split: every stratum in proportion, disjoint, deterministic", () => {
  const rng = new DataRng(2);
  const items = Array.from({ length: 1000 }, (_, i) => ({ i, k: `s${Math.floor(rng.next() ** 2 * 9)}` }));
  const r = parseRatios("80,10,10");
  const a = stratifiedSplit(items, (x) => x.k, r, 9), b = stratifiedSplit(items, (x) => x.k, r, 9);
  assertEquals(a, b);
  const ids = [...a.train, ...a.validation, ...a.test].map((x) => x.i).sort((x, y) => x - y);
  assertEquals(ids, items.map((x) => x.i));
  for (const k of new Set(items.map((x) => x.k))) {
    const n = items.filter((x) => x.k === k).length;
    const got = (["train", "validation", "test"] as const).map((p) => a[p].filter((x) => x.k === k).length);
    assertEquals(got, stratumCounts(n, r), `stratum ${k}`);
    assert(Math.abs(got[1] - n * 0.1) <= 1 && Math.abs(got[2] - n * 0.1) <= 1, `${k}: ${got} of ${n}`);
  }
  assertEquals(stratumCounts(3, r), [1, 1, 1]);
  assertEquals(stratumCounts(2, r), [2, 0, 0]);
  const c = stratifiedSplit(items, (x) => x.k, r, 10);
  assert(JSON.stringify(c) !== JSON.stringify(a), "seed had no effect");
});

Deno.test("merge: concatenates, removes exact and near duplicates, splits, registers, reports", async () => {
  const rng = new DataRng(3);
  const qa = Array.from(
    { length: 30 },
    (_, i) => ({
      instruction: `Question ${i}: ${paragraph(rng, 30)}`,
      input: "",
      output: paragraph(rng, 20),
    }),
  );
  const dupExact = { ...qa[4], instruction: `  ${qa[4].instruction.toUpperCase()} ` }; // formatting-only difference
  const dupNear = { ...qa[7], output: qa[7].output + " indeed" };
  const cases = Array.from({ length: 40 }, (_, i) => ({
    instruction: `病例${i}:${paragraph(rng, 25)}`,
    input: "",
    output: `diagnosis ${i % 4}`,
    disease_id: `d${i % 4}`,
  }));
  const fs = memoryFs({
    "in/qa.json": JSON.stringify([...qa, dupExact]),
    "in/cases.jsonl": [...cases, dupNear].map((c) => JSON.stringify(c)).join("\n") + "\n",
    "in/cases_only.jsonl": cases.map((c) => JSON.stringify(c)).join("\n") + "\n",
    "data/dataset_info.json": JSON.stringify({ other: { file_name: "other.json" } }),
  });
  const rep = await mergeDatasets({
    fs,
    inputs: ["in/qa.json", "in/cases.jsonl"],
    outDir: "data/merged",
    name: "medical_dataset_merged",
    seed: 1,
  });
  assertEquals(rep.sources.qa, { records: 31, invalid: 0, exactDuplicates: 1, nearDuplicates: 0, kept: 30 });
  assertEquals(rep.sources.cases, {
    records: 41,
    invalid: 0,
    exactDuplicates: 0,
    nearDuplicates: 1,
    kept: 40,
  });
  assertEquals(rep.stratifyBy, "source"); // qa records have no disease_id
  assertEquals(rep.strata, { cases: [32, 4, 4], qa: [24, 3, 3] });
  assertEquals(rep.diseases, { "(none)": 30, d0: 10, d1: 10, d2: 10, d3: 10 });
  assertEquals(Object.keys(rep.files), [
    "medical_dataset_merged",
    "medical_dataset_merged_validation",
    "medical_dataset_merged_test",
  ]);
  const info = JSON.parse(fs.files.get("data/dataset_info.json")!);
  assertEquals(info.other, { file_name: "other.json" });
  assertEquals(info.medical_dataset_merged, {
    file_name: "merged/train.json",
    formatting: "alpaca",
    columns: { prompt: "instruction", query: "input", response: "output" },
  });
  const train = JSON.parse(fs.files.get("data/merged/train.json")!);
  assertEquals(train.length, 56);
  assert(train.every((r: { source: string }) => r.source === "qa" || r.source === "cases"));
  assert(
    rep.lengthHistogram[0].unit === "chars" &&
      rep.lengthHistogram[0].buckets.reduce((s, [, c]) => s + c, 0) === 70,
  );
  const byDisease = await mergeDatasets({
    fs,
    inputs: ["in/cases_only.jsonl"],
    outDir: "o",
    name: "c",
    datasetInfo: "o/info.json",
    nearDup: 1,
    countTokens: (t) => t.split(" ").length,
  });
  assertEquals(byDisease.stratifyBy, "disease_id");
  assertEquals(byDisease.sources.cases_only.kept, 40);
  assertEquals(byDisease.strata, { d0: [8, 1, 1], d1: [8, 1, 1], d2: [8, 1, 1], d3: [8, 1, 1] });
  assertEquals(byDisease.lengthHistogram.map((h) => h.unit), ["chars", "tokens"]);
  assertEquals(JSON.parse(fs.files.get("o/info.json")!).c.file_name, "train.json");
});

Deno.test("merge: invalid records and mixed formats are errors naming file, record and field", async () => {
  const fs = memoryFs({
    "a.jsonl": '{"instruction":"q","output":"a"}\n{"instruction":"q2"}\n',
    "b.json": JSON.stringify([{
      messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "yo" }],
    }]),
  });
  await assertRejects(
    () => mergeDatasets({ fs, inputs: ["a.jsonl"], outDir: "o", name: "n" }),
    /a\.jsonl: line 2: output: .*--skip-invalid/,
  );
  const rep = await mergeDatasets({
    fs,
    inputs: ["a.jsonl"],
    outDir: "o",
    name: "n",
    skipInvalid: true,
    datasetInfo: "o/i.json",
  });
  assertEquals(rep.sources.a.invalid, 1);
  await assertRejects(
    () => mergeDatasets({ fs, inputs: ["a.jsonl", "b.json"], outDir: "o", name: "n", skipInvalid: true }),
    /b\.json: openai records, but earlier inputs are alpaca/,
  );
  assertEquals(relativeTo("data/dataset_info.json", "out/x/train.json"), "../out/x/train.json");
});
