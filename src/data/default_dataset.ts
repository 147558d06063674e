/**
 * The embedded default dataset (data/default/): small enough for a tiny model to learn on CI in
 * minutes — 12 diseases × 60 Chinese cases, split 48/6/6 per disease — and registered in
 * data/dataset_info.json as medical_default (+ _validation, _test). `deno task data default`
 * regenerates it byte for byte from these constants.
 */
import type { DataFs } from "./fs.ts";
import { parseKnowledgeGraph } from "./kg.ts";
import { type CaseRecord, synthesizeCases } from "./synth.ts";
import { stratifiedSplit } from "./split.ts";
import { entryFor, registerDatasets } from "./dataset_info.ts";

/** The recipe; changing it changes the committed files (regenerate and commit them together). */
export const DEFAULT_DATASET = {
  diseases: [
    "als",
    "huntington_disease",
    "acute_myocardial_infarction",
    "type2_diabetes",
    "ischemic_stroke",
    "pneumonia",
    "parkinson_disease",
    "myasthenia_gravis",
    "heart_failure",
    "tuberculosis",
    "acute_appendicitis",
    "graves_disease",
  ],
  perDisease: 60,
  lang: "zh" as const,
  seed: 20261129,
  hardRate: 0.2,
  split: [0.8, 0.1, 0.1] as const,
  /** Cases keep at most this many symptoms / findings, so prompts stay short for a tiny model. */
  maxSymptoms: 4,
  maxFindings: 2,
  name: "medical_default",
};

/** Fields kept in the committed files (the rationale is dropped to keep them small). */
function compact(c: CaseRecord) {
  return {
    instruction: c.instruction,
    input: c.input,
    output: c.output,
    patient_info: c.patient_info,
    symptoms: c.symptoms,
    test_results: c.test_results,
    diagnosis: c.diagnosis,
    disease_id: c.disease_id,
    hard: c.hard,
  };
}

/**
 * Writes data/default/{train,validation,test}.json and registers them. Paths are relative to `root`
 * (the repository root).
 */
export async function buildDefaultDataset(fs: DataFs, root = "."): Promise<Record<string, number>> {
  const d = DEFAULT_DATASET;
  const kgPath = `${root}/data/medical_kg.json`;
  const kg = parseKnowledgeGraph(JSON.parse(await fs.readText(kgPath)), kgPath);
  const cases = synthesizeCases(kg, {
    diseases: d.diseases,
    numSamples: d.diseases.length * d.perDisease,
    lang: d.lang,
    seed: d.seed,
    hardRate: d.hardRate,
    maxSymptoms: d.maxSymptoms,
    maxFindings: d.maxFindings,
  });
  const parts = stratifiedSplit(cases.map(compact), (c) => c.disease_id, d.split, d.seed);
  const counts: Record<string, number> = {};
  const entries: Record<string, ReturnType<typeof entryFor>> = {};
  for (const p of ["train", "validation", "test"] as const) {
    await fs.writeText(`${root}/data/default/${p}.json`, JSON.stringify(parts[p], null, 2) + "\n");
    const name = p === "train" ? d.name : `${d.name}_${p}`;
    entries[name] = entryFor(`default/${p}.json`, "alpaca");
    counts[name] = parts[p].length;
  }
  await registerDatasets(fs, `${root}/data/dataset_info.json`, entries);
  return counts;
}
