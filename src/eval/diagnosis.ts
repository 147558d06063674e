/**
 * Diagnosis accuracy: pull the first stated diagnosis (or the first k of a list) out of a model's
 * free-text answer, map it to a canonical disease id through an alias table, and compare it with
 * the label mapped the same way.
 *
 * Extraction ({@link extractDiagnoses}): the earliest trigger phrase in the text wins —
 * zh "诊断：/诊断为/诊断是/初步诊断/最可能的诊断是/考虑(为)/首先考虑/疑似/符合…", en "Diagnosis:",
 * "the diagnosis is", "most likely (diagnosis is)", "consistent with", "suggestive of",
 * "diagnosed with", "probable"… (see ZH_TRIGGERS, EN_TRIGGERS; English ones on word boundaries,
 * negated Chinese ones such as "不考虑" ignored). The span after it runs to the end of the sentence
 * (。；;!?！？ or ". " or a line break), is cut where an explanation starts (":", " given ",
 * " because ", "的表现", "，因为"…), and is split into list items at 、,，/ "或" "or" "and" "与" "及"
 * "其次为" and list markers "(1)", "1)", "1.", "①". With no trigger, the first line is the span.
 *
 * Resolution ({@link resolveDiagnosis}): a candidate that equals an alias after
 * {@link normalizeDiagnosis} maps to that alias's id; otherwise the longest alias contained in it
 * (Latin-script aliases only on word boundaries) does, so "早期肌萎缩侧索硬化可能性大" still resolves;
 * otherwise the candidate stays its own normalised text. Correct = same id, exact.
 * @module
 */
import { bootstrapMean, type BootstrapOptions, type ConfidenceInterval } from "./metrics/bootstrap.ts";
import type { Engine, GenerateRequest } from "../engine/types.ts";

/** Alias → canonical disease id (the knowledge graph provides the full table). */
export type AliasTable = Map<string, string>;

/** A small built-in table for tests and examples. */
export const BUILTIN_ALIASES: AliasTable = new Map([
  ...aliases("als", [
    "肌萎缩侧索硬化",
    "肌萎缩性侧索硬化",
    "渐冻症",
    "渐冻人症",
    "ALS",
    "amyotrophic lateral sclerosis",
    "Lou Gehrig's disease",
  ]),
  ...aliases("sle", ["系统性红斑狼疮", "红斑狼疮", "SLE", "systemic lupus erythematosus", "lupus"]),
  ...aliases("fabry", ["法布雷病", "法布里病", "Fabry disease", "Anderson-Fabry disease"]),
  ...aliases("gaucher", ["戈谢病", "高雪氏病", "Gaucher disease"]),
  ...aliases("pompe", ["庞贝病", "糖原贮积病II型", "Pompe disease", "glycogen storage disease type II"]),
  ...aliases("mg", ["重症肌无力", "myasthenia gravis"]),
  ...aliases("ms", ["多发性硬化", "多发性硬化症", "multiple sclerosis"]),
  ...aliases("nmosd", ["视神经脊髓炎", "视神经脊髓炎谱系疾病", "NMOSD", "neuromyelitis optica"]),
  ...aliases("huntington", ["亨廷顿病", "亨廷顿舞蹈病", "Huntington disease", "Huntington's disease"]),
  ...aliases("wilson", ["肝豆状核变性", "Wilson病", "Wilson disease", "Wilson's disease"]),
  ...aliases("gbs", ["吉兰-巴雷综合征", "格林-巴利综合征", "Guillain-Barré syndrome", "GBS"]),
  ...aliases("sma", ["脊髓性肌萎缩症", "SMA", "spinal muscular atrophy"]),
  ...aliases("pku", ["苯丙酮尿症", "PKU", "phenylketonuria"]),
]);

function aliases(id: string, names: string[]): [string, string][] {
  return names.map((n) => [n, id]);
}

/**
 * Normalised form for comparing disease names: NFKC, lower case, accents removed, a leading
 * article (a/an/the) and connective (为/是) dropped, trailing hedges ("可能", "可能性大", "的可能")
 * dropped, possessive "'s" dropped, every non-letter/digit removed.
 * @example normalizeDiagnosis("Lou Gehrig's Disease.") // "lougehrigdisease"
 */
export function normalizeDiagnosis(s: string): string {
  let t = s.normalize("NFKD").replace(/\p{M}/gu, "").normalize("NFKC").toLowerCase().trim();
  t = t.replace(/^(?:a|an|the)\s+/u, "").replace(/^(?:为|是)/u, "");
  t = t.replace(/(?:的?可能性?(?:较大|大|高)?|待排|待查|可能)$/u, "");
  t = t.replace(/['’]s\b/gu, "");
  return t.replace(/[^\p{L}\p{N}]/gu, "");
}

/** Chinese phrases that introduce a diagnosis, most specific first (alternation order matters). */
const ZH_TRIGGERS = [
  "最可能的诊断(?:是|为)?",
  "最可能诊断(?:是|为)?",
  // "诊断依据/标准/要点…" (the basis or criteria of a diagnosis) introduce reasons, not a diagnosis.
  "(?:初步|最终|临床|主要)?诊断(?!依据|标准|要点|思路|过程|理由|价值|意义)(?:考虑)?(?:为|是|包括)?\\s*[:：]?",
  "(?:首先|优先|应)?考虑(?:诊断)?(?:为|是)?",
  "疑似|拟诊|符合|倾向于?",
];
/** English ones; matched on word boundaries so "unlikely" or "suspecting" do not trigger. */
const EN_TRIGGERS = [
  "(?:final |working |differential |most likely |likely |probable )?diagnos[ie]s(?: is| are| of| includes?)?\\s*:?",
  "dx\\s*:",
  "(?:is )?most (?:likely|consistent with)(?: to be)?",
  "consistent with|suggestive of|diagnosed with|compatible with|(?:I )?suspect(?:ed)?",
  "(?:likely|probably|probable)(?: has| have| to have| to be| is)?",
];
/**
 * A negated Chinese trigger ("不考虑", "不符合", "未诊断") introduces nothing, nor does "鉴别诊断"
 * (the differential diagnosis lists what the answer ruled out).
 */
const TRIGGER_RE = new RegExp(
  `(?<![不未非无])(?<!鉴别)(?:${ZH_TRIGGERS.join("|")})|(?<![\\p{L}\\p{N}])(?:${
    EN_TRIGGERS.join("|")
  })(?![\\p{L}])`,
  "giu",
);
const TRIGGER_AT_START = new RegExp(`^(?:${TRIGGER_RE.source})`, "iu");
/** End of the sentence that holds the diagnosis. */
const SPAN_END = /[。；;!?！？\n]|\.(?:\s|$)/u;
/** End of the diagnosis clause inside the sentence: an explanation or a description follows. */
const CLAUSE_END =
  /\s*[:：]|\s(?:given|because|based on|due to|since|as evidenced|per|which|with|in view of)\s|(?:的表现|的诊断|，因为|，依据|，根据)/iu;
/** List separators between several diagnoses. */
const ITEM_SPLIT =
  /\s*(?:[、,，/]|\s(?:or|and)\s|或者?|与|及|以及|其次(?:为|是)?|\(\d+\)|（\d+）|(?:^|\s)\d+[.)）]\s*|[①-⑩])\s*/giu;

/**
 * The diagnoses stated in `text`, in order, at most `maxK`, as raw spans (not normalised).
 * @example extractDiagnoses("最可能的诊断是肌萎缩侧索硬化，其次为多发性硬化。") // ["肌萎缩侧索硬化", "多发性硬化"]
 */
export function extractDiagnoses(text: string, maxK = 5): string[] {
  TRIGGER_RE.lastIndex = 0;
  let m: RegExpExecArray | null;
  // The earliest trigger that is followed by some text before the sentence ends.
  for (;;) {
    m = TRIGGER_RE.exec(text);
    if (!m) break;
    if (m[0].length === 0) {
      TRIGGER_RE.lastIndex++;
      continue;
    }
    const after = text.slice(m.index + m[0].length).replace(/^[\s:：,，\-–—*#>]+/u, ""); // also markdown ** # >
    // A heading such as "Diagnosis\n**Most likely:** X": the next trigger introduces the answer.
    if (TRIGGER_AT_START.test(after)) continue;
    const end = after.search(SPAN_END);
    const sentence = end < 0 ? after : after.slice(0, end);
    const clauseEnd = sentence.search(CLAUSE_END);
    const candidate = (clauseEnd > 0 ? sentence.slice(0, clauseEnd) : sentence).trim();
    if (/[\p{L}\p{N}]/u.test(candidate)) return splitItems(candidate, maxK);
  }
  const firstLine = text.trim().split(SPAN_END)[0] ?? "";
  return splitItems(firstLine.trim(), maxK);
}

function splitItems(span: string, maxK: number): string[] {
  return span.split(ITEM_SPLIT).map((s) => s.trim()).filter((s) => /[\p{L}\p{N}]/u.test(s)).slice(0, maxK);
}

/** Alias table prepared for lookup: exact normalised keys and aliases sorted longest first. */
export interface AliasIndex {
  exact: Map<string, string>;
  byLength: { norm: string; id: string; latin: boolean }[];
}

/** Normalises every alias once; throws when two ids claim the same normalised alias. */
export function buildAliasIndex(table: AliasTable): AliasIndex {
  const exact = new Map<string, string>();
  for (const [alias, id] of table) {
    const norm = normalizeDiagnosis(alias);
    if (!norm) continue;
    const prev = exact.get(norm);
    if (prev !== undefined && prev !== id) {
      throw new Error(
        `alias table: "${alias}" normalises to "${norm}", claimed by both "${prev}" and "${id}"`,
      );
    }
    exact.set(norm, id);
  }
  const byLength = [...exact].map(([norm, id]) => ({ norm, id, latin: /^[a-z0-9]+$/.test(norm) }))
    .sort((a, b) => b.norm.length - a.norm.length);
  return { exact, byLength };
}

/**
 * Canonical id of one candidate span (exact alias, else longest contained alias), or its
 * normalised text when no alias matches.
 */
export function resolveDiagnosis(candidate: string, index: AliasIndex): string {
  const norm = normalizeDiagnosis(candidate);
  const hit = index.exact.get(norm);
  if (hit !== undefined) return hit;
  const words = candidate.normalize("NFKD").replace(/\p{M}/gu, "").normalize("NFKC").toLowerCase()
    .replace(/['’]s\b/gu, "").split(/[^\p{L}\p{N}]+/u).filter(Boolean);
  for (const { norm: alias, id, latin } of index.byLength) {
    if (!latin) {
      if (norm.includes(alias)) return id;
    } else if (containsWordSequence(words, alias)) {
      return id;
    }
  }
  return norm;
}

/** True when consecutive whole words of `words` concatenate to `alias` (so "als" ≠ "false"). */
function containsWordSequence(words: string[], alias: string): boolean {
  for (let i = 0; i < words.length; i++) {
    let acc = "";
    for (let j = i; j < words.length && acc.length < alias.length; j++) {
      acc += words[j];
      if (acc === alias) return true;
    }
  }
  return false;
}

/**
 * Whether the label is among the first `k` diagnoses of the prediction (k = 1: the first stated one).
 * @example diagnosisCorrect("诊断：渐冻症。", "ALS", buildAliasIndex(BUILTIN_ALIASES)) // true
 */
export function diagnosisCorrect(prediction: string, label: string, index: AliasIndex, k = 1): boolean {
  const want = resolveDiagnosis(label, index);
  return extractDiagnoses(prediction, k).some((c) => resolveDiagnosis(c, index) === want);
}

/** Corpus result: accuracy in [0, 1], per-sample 0/1 values, optional bootstrap CI. */
export interface AccuracyResult {
  accuracy: number;
  perSample: number[];
  ci?: ConfidenceInterval;
}

/**
 * Top-k diagnosis accuracy over a corpus (k = 1 by default).
 * @example diagnosisAccuracy(["Diagnosis: ALS."], ["渐冻症"], BUILTIN_ALIASES).accuracy // 1
 */
export function diagnosisAccuracy(
  predictions: string[],
  labels: string[],
  table: AliasTable,
  options: { k?: number; bootstrap?: BootstrapOptions } = {},
): AccuracyResult {
  if (predictions.length !== labels.length) {
    throw new Error(`diagnosis accuracy: ${predictions.length} predictions but ${labels.length} labels`);
  }
  const index = buildAliasIndex(table);
  const perSample = predictions.map((p, i) => diagnosisCorrect(p, labels[i], index, options.k ?? 1) ? 1 : 0);
  const accuracy = perSample.length ? perSample.reduce((a: number, b) => a + b, 0) / perSample.length : 0;
  const result: AccuracyResult = { accuracy, perSample };
  if (options.bootstrap && perSample.length) result.ci = bootstrapMean(perSample, options.bootstrap);
  return result;
}

/** Options of {@link generatedDiagnosisAccuracy}. */
export interface GeneratedAccuracyOptions {
  /** Prompts per generate() call. */
  batchSize: number;
  /** The rest of each request (maxNewTokens, EOS ids, stop strings, chunk size); greedy unless it says. */
  request: Omit<GenerateRequest, "prompts">;
  index: AliasIndex;
  /** Top-k (default 1). */
  k?: number;
}

/**
 * Diagnosis accuracy of a model through its engine: generates for `prompts` in batches, then scores
 * each answer (trimmed) against `labels[i]` with {@link diagnosisCorrect}. The one implementation
 * behind the trainer's eval_accuracy (src/train/evaluate.ts) and the evaluator's
 * evaluateDiagnosisAccuracy (src/eval/evaluator.ts), which differ only in how they build the prompts.
 *
 * @example
 * const r = await generatedDiagnosisAccuracy(engine, [promptIds], ["ALS"], {
 *   batchSize: 8, request: { maxNewTokens: 64 }, index: buildAliasIndex(BUILTIN_ALIASES),
 * });
 * r.accuracy; r.predictions[0];
 */
export async function generatedDiagnosisAccuracy(
  engine: Pick<Engine, "generate">,
  prompts: number[][],
  labels: string[],
  o: GeneratedAccuracyOptions,
): Promise<{ accuracy: number; correct: number; total: number; predictions: string[] }> {
  if (prompts.length !== labels.length) {
    throw new Error(`diagnosis accuracy: ${prompts.length} prompts but ${labels.length} labels`);
  }
  const predictions: string[] = [];
  const bs = Math.max(1, Math.floor(o.batchSize));
  for (let s = 0; s < prompts.length; s += bs) {
    const { sequences } = await engine.generate({ ...o.request, prompts: prompts.slice(s, s + bs) });
    predictions.push(...sequences.map((q) => q.text.trim()));
  }
  const correct = predictions.filter((p, i) => diagnosisCorrect(p, labels[i], o.index, o.k ?? 1)).length;
  const total = predictions.length;
  return { accuracy: total ? correct / total : 0, correct, total, predictions };
}
