/**
 * Rule-based question/answer pairs from structured PubMed abstracts: the objective (or background)
 * becomes the instruction, the results and conclusions the answer, copied verbatim so numbers and
 * units survive; the methods go in `input` as context. GeneReviews-style book chapters give "how is
 * X diagnosed / managed" pairs. Every pair carries the pmid.
 */
import type { AbstractSection, PubmedRecord } from "./pubmed_xml.ts";

/** An alpaca record with its provenance. */
export interface QaRecord {
  instruction: string;
  input: string;
  output: string;
  pmid: string;
  source: string;
  /** Which rule made it. */
  rule: "objective" | "results" | "book-section" | "model";
}

/** Counts of what was skipped and why (reported, never silent). */
export interface QaRuleStats {
  records: number;
  pairs: number;
  unstructured: number;
  noQuestion: number;
  noAnswer: number;
}

type Role = "background" | "objective" | "methods" | "results" | "conclusions" | "other";

const BY_CATEGORY: Record<string, Role> = {
  BACKGROUND: "background",
  OBJECTIVE: "objective",
  METHODS: "methods",
  RESULTS: "results",
  CONCLUSIONS: "conclusions",
};
const BY_LABEL: [RegExp, Role][] = [
  [/aim|objective|purpose|goal|question/i, "objective"],
  [/background|introduction|context|rationale/i, "background"],
  [/method|design|setting|participant|patients|intervention/i, "methods"],
  [/result|finding|outcome/i, "results"],
  [/conclusion|interpretation|implication|significance/i, "conclusions"],
];

/** The role of a section: NlmCategory first, then its label. */
export function sectionRole(s: AbstractSection): Role {
  if (s.category && BY_CATEGORY[s.category]) return BY_CATEGORY[s.category];
  for (const [re, role] of BY_LABEL) if (s.label && re.test(s.label)) return role;
  return "other";
}

const AIM = new RegExp(
  "^(?:to|we (?:aimed|sought|wanted) to|(?:this|the present|our) (?:study|trial|review) (?:aimed|sought) to|" +
    "the (?:aim|objective|purpose|goal) of (?:this|the present|our) (?:study|trial|work) (?:was|is) to|" +
    "(?:our|the) (?:aim|objective|purpose) (?:was|is) to)\\s+" +
    "(assess|evaluate|determine|investigate|examine|compare|explore|estimate|describe|identify|test|" +
    "characteri[sz]e|analy[sz]e|quantify|measure|establish|clarify|review)\\b\\s*(.*)$",
  "i",
);

/**
 * Objective sentence → instruction. "To evaluate whether X …" becomes "Evaluate whether X …"; other
 * wordings are kept as the question to answer.
 */
export function objectiveToInstruction(objective: string, title: string): string {
  const m = AIM.exec(objective.trim());
  if (m) {
    const body = `${m[1][0].toUpperCase()}${m[1].slice(1).toLowerCase()} ${m[2]}`.trim();
    return /[.?!]$/.test(body) ? body : `${body}.`;
  }
  return `The study "${title}" addressed the following: ${objective.trim()} What did it find?`;
}

function lastSentence(text: string): string {
  const parts = text.match(/[^.!?]+[.!?]+(?=\s|$)/g) ?? [text];
  return parts[parts.length - 1].trim();
}

function join(secs: AbstractSection[]): string {
  return secs.map((s) => s.text).join(" ");
}

/**
 * QA pairs for one record (0–2 for articles, one per recognised section for books).
 *
 * @example
 * const { pairs } = rulePairs(record); // pairs[0].instruction === "Evaluate whether …"
 */
export function rulePairs(
  r: PubmedRecord,
): { pairs: QaRecord[]; skipped?: keyof Omit<QaRuleStats, "records" | "pairs"> } {
  const base = { pmid: r.pmid, source: "pubmed-rules" };
  if (r.kind === "book") {
    const topic = r.title.replace(/\.$/, "");
    const pairs: QaRecord[] = [];
    for (const s of r.abstract) {
      const l = s.label ?? "";
      const q = /diagnos/i.test(l)
        ? `How is ${topic} diagnosed?`
        : /management|treatment|therapy/i.test(l)
        ? `How is ${topic} managed?`
        : /clinical|characteristic|presentation/i.test(l)
        ? `What are the clinical characteristics of ${topic}?`
        : /genetic counsel/i.test(l)
        ? `What genetic counselling applies to ${topic}?`
        : null;
      if (q) pairs.push({ ...base, instruction: q, input: "", output: s.text, rule: "book-section" });
    }
    return pairs.length ? { pairs } : { pairs, skipped: "noQuestion" };
  }
  const roles = new Map<Role, AbstractSection[]>();
  for (const s of r.abstract) {
    const role = sectionRole(s);
    roles.set(role, [...(roles.get(role) ?? []), s]);
  }
  if (r.abstract.length < 2 || (roles.size === 1 && roles.has("other"))) {
    return { pairs: [], skipped: "unstructured" };
  }
  const objective = roles.get("objective"), background = roles.get("background");
  const results = roles.get("results") ?? [], conclusions = roles.get("conclusions") ?? [];
  if (!results.length && !conclusions.length) return { pairs: [], skipped: "noAnswer" };
  const question = objective ? join(objective) : background ? lastSentence(join(background)) : null;
  if (!question) return { pairs: [], skipped: "noQuestion" };
  const methods = roles.get("methods");
  const input = methods ? `Study design: ${join(methods)}` : "";
  const answer = [
    results.length ? `Results: ${join(results)}` : "",
    conclusions.length ? `Conclusion: ${join(conclusions)}` : "",
  ].filter(Boolean).join("\n");
  const pairs: QaRecord[] = [
    {
      ...base,
      instruction: objectiveToInstruction(question, r.title),
      input,
      output: answer,
      rule: "objective",
    },
  ];
  // A second pair asks for the numbers alone when the results hold any.
  if (results.length && /\d/.test(join(results))) {
    pairs.push({
      ...base,
      instruction: `What were the main quantitative results of the study "${r.title.replace(/\.$/, "")}"?`,
      input,
      output: join(results),
      rule: "results",
    });
  }
  return { pairs };
}

/** Rule-based pairs for many records, with counts of what was skipped. */
export function ruleQa(records: PubmedRecord[]): { items: QaRecord[]; stats: QaRuleStats } {
  const stats: QaRuleStats = {
    records: records.length,
    pairs: 0,
    unstructured: 0,
    noQuestion: 0,
    noAnswer: 0,
  };
  const items: QaRecord[] = [];
  for (const r of records) {
    const { pairs, skipped } = rulePairs(r);
    if (skipped) stats[skipped]++;
    items.push(...pairs);
  }
  stats.pairs = items.length;
  return { items, stats };
}
