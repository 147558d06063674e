/**
 * Knowledge-graph case synthesiser: samples patient cases (patient_info, symptoms, test_results →
 * diagnosis, rationale) for the medical_inquiry template. Each symptom, finding and risk factor is
 * drawn independently with its graph frequency, so the corpus reproduces the graph's distributions;
 * a share of "hard" cases also carries a feature of a differential diagnosis, and their rationale says
 * why the differential is less likely. Deterministic for a seed; wording varies through templates.
 */
import { aliasIndex, type Disease, type KnowledgeGraph } from "./kg.ts";
import { DataRng } from "./rng.ts";

/** Output language. */
export type Lang = "zh" | "en";

/** One synthetic case: alpaca fields plus the medical_inquiry fields and labels. */
export interface CaseRecord {
  /** The medical_inquiry prompt rendered as plain text (so plain alpaca readers can use the record). */
  instruction: string;
  input: string;
  /** Same as `diagnosis`: the response. */
  output: string;
  patient_info: string;
  symptoms: string;
  test_results: string;
  /** Starts with the disease name, then the short reason. */
  diagnosis: string;
  rationale: string;
  disease_id: string;
  lang: Lang;
  hard: boolean;
  /** For hard cases: the differential whose feature was mixed in. */
  differential?: string;
  source: string;
}

/** Options of {@link synthesizeCases}. */
export interface SynthOptions {
  /** Disease ids or any name/alias (zh or en). */
  diseases: string[];
  numSamples: number;
  lang: Lang;
  seed: number;
  /** Share of hard cases (default 0.2). */
  hardRate?: number;
  /**
   * Caps on symptoms / findings per case, for short prompts (the default dataset). Capping changes the
   * frequencies, so leave them unset when the distribution matters.
   */
  maxSymptoms?: number;
  maxFindings?: number;
}

const UNIT = {
  zh: { hours: "小时", days: "天", weeks: "周", months: "个月", years: "年" },
  en: { hours: "hour", days: "day", weeks: "week", months: "month", years: "year" },
} as const;

/** The medical_inquiry prompt (seed §4.1) as plain text. */
export function inquiryPrompt(
  lang: Lang,
  f: { patient_info: string; symptoms: string; test_results: string },
): string {
  return lang === "zh"
    ? `患者信息:${f.patient_info}\n症状描述:${f.symptoms}\n检查结果:${f.test_results}\n\n诊断建议:`
    : `Patient information: ${f.patient_info}\nSymptoms: ${f.symptoms}\nTest results: ${f.test_results}\n\nDiagnosis:`;
}

/** Display name: rare diseases also carry their best-known alias, e.g. 肌萎缩侧索硬化(渐冻症). */
export function displayName(d: Disease, lang: Lang): string {
  if (lang === "zh") return d.rare && d.aliases.zh[0] ? `${d.name.zh}(${d.aliases.zh[0]})` : d.name.zh;
  const en = capital(d.name.en);
  return d.rare && d.aliases.en[0] && d.aliases.en[0].length <= 5 ? `${en} (${d.aliases.en[0]})` : en;
}

function joinList(rng: DataRng, xs: string[], lang: Lang): string {
  if (xs.length === 1) return xs[0];
  if (lang === "zh") {
    const head = xs.slice(0, -1).join("、"), last = xs[xs.length - 1];
    return rng.pick([`${head},伴${last}`, `${head}、${last}`, `${head},并有${last}`]);
  }
  // Items that contain commas themselves are separated by semicolons.
  const sep = xs.some((x) => x.includes(",")) ? "; " : ", ";
  return `${xs.slice(0, -1).join(sep)}${rng.chance(0.5) ? sep.trim() : ""} and ${xs[xs.length - 1]}`;
}

function capital(s: string): string {
  return s[0].toUpperCase() + s.slice(1);
}

/** Keeps Bernoulli draws with the graph frequencies; redraws an empty set (rare; keeps cases sensible). */
function draw<T extends { freq: number }>(rng: DataRng, xs: T[], atLeast: number): T[] {
  for (;;) {
    const got = xs.filter((x) => rng.chance(x.freq));
    if (got.length >= atLeast) return got;
  }
}

function patientInfo(
  rng: DataRng,
  d: Disease,
  lang: Lang,
  age: number,
  male: boolean,
  history: string[],
): string {
  if (lang === "zh") {
    const who = rng.pick([
      `${age}岁${male ? "男" : "女"}性`,
      `患者${male ? "男" : "女"},${age}岁`,
      `${male ? "男" : "女"},${age}岁`,
    ]);
    if (!history.length) return who + rng.pick(["", ",既往体健", ",无特殊病史"]);
    return who + rng.pick([",", "。", "。既往史:"]) + history.join("、");
  }
  const person = d.profile.age.max < 16 ? (male ? "boy" : "girl") : (male ? "man" : "woman");
  const who = rng.pick([`A ${age}-year-old ${person}`, `${male ? "Male" : "Female"}, ${age} years old`]);
  if (!history.length) return who + rng.pick(["", ", previously well", ", no past medical history"]);
  return who + rng.pick(["; ", ". Background: ", ". History: "]) + history.join(", ");
}

function durationText(rng: DataRng, d: Disease, lang: Lang): string {
  const n = rng.int(d.duration.min, d.duration.max), u = UNIT[lang][d.duration.unit];
  return lang === "zh" ? `${n}${u}` : `${n} ${u}${n > 1 ? "s" : ""}`;
}

function symptomText(rng: DataRng, lang: Lang, list: string, dur: string): string {
  if (lang === "zh") {
    return rng.pick([`${list},持续${dur}`, `近${dur}出现${list}`, `${dur}来${list}`, `${list}${dur}`]);
  }
  return rng.pick([`${dur} of ${list}`, `${list} for ${dur}`, `presents with ${list} over the past ${dur}`]);
}

function testText(rng: DataRng, lang: Lang, fs: Disease["findings"]): string {
  const style = rng.int(0, 2);
  const parts = fs.map((f) => {
    const t = f.test[lang], r = f.result[lang];
    if (lang === "zh") return style === 0 ? `${t}:${r}` : style === 1 ? `${t}示${r}` : `${t}提示${r}`;
    return style === 1 ? `${t} – ${r}` : `${t}: ${r}`;
  });
  return parts.join(lang === "zh" ? (style === 0 ? ";" : ",") : "; ") + (lang === "zh" ? "。" : ".");
}

function oneCase(kg: Map<string, Disease>, d: Disease, rng: DataRng, o: SynthOptions): CaseRecord {
  const lang = o.lang;
  const a = d.profile.age;
  const age = Math.round(Math.min(a.max, Math.max(a.min, a.mean + rng.normal() * (a.max - a.min) / 4)));
  const male = rng.chance(d.profile.maleFraction);
  const history = d.riskFactors.filter((r) => rng.chance(r.freq)).map((r) => r[lang]);
  const symptoms = draw(rng, d.symptoms, 1).slice(0, o.maxSymptoms).map((s) => s[lang]);
  let findings = draw(rng, d.findings, 1).slice(0, o.maxFindings);
  let differential: Disease | undefined, overlap: string | undefined;
  if (rng.chance(o.hardRate ?? 0.2)) {
    differential = kg.get(rng.pick(d.differentials))!;
    const own = new Set(d.symptoms.map((s) => s.en));
    const foreign = differential.symptoms.filter((s) => !own.has(s.en)).sort((x, y) => y.freq - x.freq);
    if (foreign.length) {
      overlap = rng.pick(foreign.slice(0, 2))[lang];
      symptoms.splice(rng.int(0, symptoms.length), 0, overlap);
      // The deciding test must be there, or the case would not be answerable.
      const top = d.findings.reduce((x, y) => (y.freq > x.freq ? y : x));
      if (!findings.includes(top)) findings = [top, ...findings].slice(0, o.maxFindings);
    } else differential = undefined;
  }
  const ordered = rng.shuffle(symptoms);
  const f = {
    patient_info: patientInfo(rng, d, lang, age, male, history),
    symptoms: symptomText(rng, lang, joinList(rng, ordered, lang), durationText(rng, d, lang)),
    test_results: testText(rng, lang, rng.shuffle(findings)),
  };
  const name = displayName(d, lang), key = d.keyFeature[lang];
  const diagnosis = lang === "zh"
    ? `${name}。${rng.pick(["依据:", "诊断依据:", "理由:"])}${key}。`
    : `${name}. ${rng.pick(["Basis: ", "Reason: ", "Supported by "])}${key}.`;
  const diffNames = d.differentials.map((x) => kg.get(x)!.name[lang]);
  const evidence = findings.slice(0, 2).map((x) =>
    `${x.test[lang]}${lang === "zh" ? "示" : ": "}${x.result[lang]}`
  );
  let rationale = lang === "zh"
    ? `${evidence.join(",")},符合${key}。`
    : `${capital(evidence.join("; "))}; in keeping with ${key}.`;
  if (differential && overlap) {
    rationale += lang === "zh"
      ? `${overlap}也可见于${differential.name.zh},但${differential.name.zh}的特点是${differential.keyFeature.zh},与本例不符。`
      : ` ${
        capital(overlap)
      } can occur in ${differential.name.en}, but that is marked by ${differential.keyFeature.en}, which this case lacks.`;
  }
  rationale += lang === "zh"
    ? `需与${diffNames.join("、")}鉴别。首选处理:${d.management[0].zh}。`
    : ` Differentials: ${diffNames.join(", ")}. First step: ${d.management[0].en}.`;
  return {
    instruction: inquiryPrompt(lang, f),
    input: "",
    output: diagnosis,
    ...f,
    diagnosis,
    rationale,
    disease_id: d.id,
    lang,
    hard: differential !== undefined,
    ...(differential ? { differential: differential.id } : {}),
    source: "synth",
  };
}

/** Resolves names/aliases/ids to diseases; the error lists what it could not find. */
export function resolveDiseases(kg: KnowledgeGraph, names: string[]): Disease[] {
  const idx = aliasIndex(kg), byId = new Map(kg.diseases.map((d) => [d.id, d]));
  const bad: string[] = [];
  const out = names.map((n) => {
    const id = byId.has(n) ? n : idx.exact(n);
    if (!id) bad.push(n);
    return byId.get(id ?? "")!;
  });
  if (bad.length) {
    throw new Error(`unknown disease(s): ${bad.join(", ")} (use an id or a name from data/medical_kg.json)`);
  }
  return out;
}

/**
 * Samples `numSamples` cases spread evenly over the diseases (the first ones get the remainder), in a
 * seeded random order.
 *
 * @example
 * const cases = synthesizeCases(kg, { diseases: ["渐冻症", "亨廷顿舞蹈症"], numSamples: 1000, lang: "zh", seed: 7 });
 */
export function synthesizeCases(kg: KnowledgeGraph, o: SynthOptions): CaseRecord[] {
  if (!(Number.isInteger(o.numSamples) && o.numSamples >= 1)) {
    throw new Error(`num-samples must be a positive integer, got ${o.numSamples}`);
  }
  if (o.lang !== "zh" && o.lang !== "en") throw new Error(`lang must be zh or en, got "${o.lang}"`);
  const diseases = resolveDiseases(kg, o.diseases);
  if (!diseases.length) throw new Error("no diseases given");
  const byId = new Map(kg.diseases.map((d) => [d.id, d]));
  const rng = new DataRng(o.seed);
  const out: CaseRecord[] = [];
  for (let i = 0; i < o.numSamples; i++) {
    out.push(oneCase(byId, diseases[i % diseases.length], rng, o));
  }
  return rng.shuffle(out);
}
