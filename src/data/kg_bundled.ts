/**
 * The bundled knowledge graph, imported as a JSON module so that it needs no file I/O (Deno and the
 * browser bundle load it the same way). Parsed and validated once, on first use.
 *
 * @example
 * import { medicalAliasTable } from "../data/kg_bundled.ts";
 * const table = medicalAliasTable(); // Map<alias, canonical id> for src/eval
 */
import raw from "../../data/medical_kg.json" with { type: "json" };
import { type AliasIndex, aliasIndex, aliasTable, type KnowledgeGraph, parseKnowledgeGraph } from "./kg.ts";

let kg: KnowledgeGraph | undefined;
let index: AliasIndex | undefined;

/** data/medical_kg.json, validated. */
export function medicalKnowledgeGraph(): KnowledgeGraph {
  return kg ??= parseKnowledgeGraph(raw, "data/medical_kg.json");
}

/** Alias → disease id over the bundled graph. */
export function medicalAliasTable(): Map<string, string> {
  return aliasTable(medicalKnowledgeGraph());
}

/** Diagnosis text (zh or en, exact name or free text) → disease id, or null. */
export function lookupDiagnosis(text: string): string | null {
  return (index ??= aliasIndex(medicalKnowledgeGraph())).lookup(text);
}
