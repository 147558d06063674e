/**
 * The bundled medical knowledge graph (data/medical_kg.json): its zod schema, loading with errors that
 * name the disease and field, and the alias index that maps a diagnosis written in Chinese or English
 * to a canonical disease id (the evaluation code scores answers with it).
 */
import { z } from "zod";

const Text = z.object({ zh: z.string().min(1), en: z.string().min(1) });
const Freq = z.number().gt(0).lte(1);

/** A symptom, risk factor or history item with how often it is present in the disease (0..1]. */
export const WeightedText = Text.extend({ freq: Freq });

/** An examination or test and its typical result in the disease. */
export const Finding = z.object({ test: Text, result: Text, freq: Freq });

/** One disease node. Differentials are ids of other diseases in the graph (edges). */
export const Disease = z.object({
  id: z.string().regex(/^[a-z][a-z0-9_]*$/, "ids are snake_case"),
  name: Text,
  aliases: z.object({ zh: z.array(z.string().min(1)), en: z.array(z.string().min(1)) }),
  category: z.enum([
    "neurology",
    "cardiology",
    "respiratory",
    "endocrine",
    "gastroenterology",
    "nephrology",
    "hematology",
    "rheumatology",
    "infectious",
    "oncology",
  ]),
  rare: z.boolean(),
  profile: z.object({
    /** Typical age at presentation (years). */
    age: z.object({ min: z.int().min(0), max: z.int().max(100), mean: z.number() })
      .refine((a) => a.min <= a.mean && a.mean <= a.max, "age needs min ≤ mean ≤ max"),
    /** Share of patients who are male. */
    maleFraction: z.number().min(0).max(1),
    inheritance: z.enum([
      "none",
      "mostly_sporadic",
      "multifactorial",
      "autosomal_dominant",
      "autosomal_recessive",
      "x_linked_recessive",
    ]),
  }),
  /** How long symptoms have usually lasted when the patient presents. */
  duration: z.object({
    unit: z.enum(["hours", "days", "weeks", "months", "years"]),
    min: z.int().min(1),
    max: z.int(),
  })
    .refine((d) => d.min <= d.max, "duration needs min ≤ max"),
  riskFactors: z.array(WeightedText),
  symptoms: z.array(WeightedText).min(3),
  findings: z.array(Finding).min(2),
  /** The feature that best separates it from its differentials (used in rationales). */
  keyFeature: Text,
  differentials: z.array(z.string()).min(1),
  /** First-line management, most important first. */
  management: z.array(Text).min(1),
});

/** The whole graph. */
export const KnowledgeGraph = z.object({
  version: z.literal(1),
  note: z.string(),
  diseases: z.array(Disease).min(1),
}).superRefine((kg, ctx) => {
  const ids = new Set<string>();
  kg.diseases.forEach((d, i) => {
    if (ids.has(d.id)) {
      ctx.addIssue({ code: "custom", path: ["diseases", i, "id"], message: `duplicate id ${d.id}` });
    }
    ids.add(d.id);
  });
  const owner = new Map<string, string>();
  kg.diseases.forEach((d, i) => {
    d.differentials.forEach((x, j) => {
      if (!ids.has(x) || x === d.id) {
        ctx.addIssue({
          code: "custom",
          path: ["diseases", i, "differentials", j],
          message: `unknown differential "${x}"`,
        });
      }
    });
    for (const a of namesOf(d)) {
      const k = normaliseName(a), prev = owner.get(k);
      if (prev && prev !== d.id) {
        ctx.addIssue({
          code: "custom",
          path: ["diseases", i, "aliases"],
          message: `alias "${a}" also names ${prev}`,
        });
      }
      owner.set(k, d.id);
    }
  });
});

/** A disease node (typed). */
export type Disease = z.infer<typeof Disease>;
/** The graph (typed). */
export type KnowledgeGraph = z.infer<typeof KnowledgeGraph>;

/**
 * Validates parsed JSON as a knowledge graph; the error lists every problem as
 * `diseases[3] (als).symptoms[2].freq: …`.
 *
 * @example
 * const kg = parseKnowledgeGraph(JSON.parse(await fs.readText("data/medical_kg.json")), "data/medical_kg.json");
 */
export function parseKnowledgeGraph(json: unknown, source = "knowledge graph"): KnowledgeGraph {
  const r = KnowledgeGraph.safeParse(json);
  if (r.success) return r.data;
  const diseases = (json as { diseases?: { id?: string }[] })?.diseases;
  const lines = r.error.issues.slice(0, 20).map((iss) => {
    const p = iss.path.map((s, k) => {
      if (typeof s === "number") {
        const id = k === 1 && iss.path[0] === "diseases" ? diseases?.[s]?.id : undefined;
        return `[${s}]${id ? ` (${id})` : ""}`;
      }
      return `.${String(s)}`;
    }).join("").replace(/^\./, "");
    return `  ${p || "(root)"}: ${iss.message}`;
  });
  throw new Error(`${source}: invalid knowledge graph:\n${lines.join("\n")}`);
}

/** Every name of a disease: canonical zh/en plus aliases. */
export function namesOf(d: Disease): string[] {
  return [d.name.zh, d.name.en, ...d.aliases.zh, ...d.aliases.en];
}

/**
 * Every name and alias (as written) → disease id: the `Map<alias, canonicalId>` table that the
 * evaluation code (src/eval/diagnosis.ts) takes.
 *
 * @example
 * aliasTable(kg).get("渐冻症"); // "als"
 */
export function aliasTable(kg: KnowledgeGraph): Map<string, string> {
  const t = new Map<string, string>();
  for (const d of kg.diseases) for (const n of namesOf(d)) t.set(n, d.id);
  return t;
}

/**
 * Normal form used for matching: NFKC (full-width → ASCII, Ⅱ → II), lower case, apostrophes dropped,
 * other punctuation → space, whitespace collapsed.
 */
export function normaliseName(s: string): string {
  return s.normalize("NFKC").toLowerCase().replace(/['’`]/g, "").replace(/[^\p{L}\p{N}]+/gu, " ").trim();
}

const LATIN = /^[a-z0-9 ]+$/;
const WORD = /[a-z0-9]/;

/** Maps diagnosis strings to disease ids. */
export interface AliasIndex {
  /** Id for a string that is exactly one of the names (after {@link normaliseName}), else null. */
  exact(name: string): string | null;
  /**
   * Id of the disease named earliest in free text (longest name at that position; Latin names only at
   * word boundaries), e.g. "诊断:肌萎缩侧索硬化(渐冻症)。…" → "als". Null when none is named.
   */
  find(text: string): { id: string; name: string; index: number } | null;
  /** exact() first, then find(). */
  lookup(text: string): string | null;
}

/**
 * Builds the alias index of a graph.
 *
 * @example
 * const idx = aliasIndex(kg);
 * idx.lookup("Lou Gehrig's disease"); // "als"
 * idx.lookup("考虑亨廷顿舞蹈症"); // "huntington_disease"
 */
export function aliasIndex(kg: KnowledgeGraph): AliasIndex {
  const byName = new Map<string, string>();
  for (const d of kg.diseases) for (const n of namesOf(d)) byName.set(normaliseName(n), d.id);
  const names = [...byName.keys()].sort((a, b) => b.length - a.length);
  const exact = (s: string) => byName.get(normaliseName(s)) ?? null;
  const find = (text: string) => {
    const t = normaliseName(text);
    let best: { id: string; name: string; index: number } | null = null;
    for (const n of names) {
      // Latin names match whole words only ("als" must not hit "also"); CJK has no word breaks.
      const latin = LATIN.test(n);
      for (let i = t.indexOf(n); i >= 0 && (!best || i < best.index); i = t.indexOf(n, i + 1)) {
        if (latin && (WORD.test(t[i - 1] ?? "") || WORD.test(t[i + n.length] ?? ""))) continue;
        best = { id: byName.get(n)!, name: n, index: i };
        break;
      }
    }
    return best;
  };
  return { exact, find, lookup: (s) => exact(s) ?? find(s)?.id ?? null };
}
