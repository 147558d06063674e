/** src/data: dataset formats, the PubMed client, QA generation, the knowledge graph and case synthesis. */
export * from "./fs.ts";
export * from "./http.ts";
export * from "./pubmed_xml.ts";
export * from "./pubmed.ts";
export * from "./qa_rules.ts";
export * from "./qa_openai.ts";
export * from "./kg.ts";
export * from "./kg_bundled.ts";
export * from "./rng.ts";
export * from "./synth.ts";
export * from "./formats.ts";
export * from "./minhash.ts";
export * from "./split.ts";
export * from "./dataset_info.ts";
export * from "./merge.ts";
export * from "./default_dataset.ts";
