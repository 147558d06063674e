/**
 * PubMed efetch XML (PubmedArticleSet, DTD pubmed_250101) → plain records. Parsed with fast-xml-parser
 * in preserveOrder mode so that mixed content (`<i>`, `<sup>`, `<sub>`, MathML inside AbstractText)
 * keeps its order and flattens to clean text. Entities are decoded here in one pass (the parser's own
 * entity handling leaves numeric references such as `&#x3b1;` alone).
 */
import { XMLParser, XMLValidator } from "fast-xml-parser";

/** One abstract section in document order; unlabelled abstracts have one section without a label. */
export interface AbstractSection {
  label?: string;
  /** NLM's normalised category: BACKGROUND, OBJECTIVE, METHODS, RESULTS, CONCLUSIONS, UNASSIGNED. */
  category?: string;
  text: string;
}

/** A PubMed article or book chapter, as written to the JSONL output (one per line). */
export interface PubmedRecord {
  pmid: string;
  kind: "article" | "book";
  title: string;
  abstract: AbstractSection[];
  authors: string[];
  /** Journal title (articles) or book title (books). */
  journal: string;
  year: number | null;
  mesh: string[];
  keywords: string[];
  doi: string | null;
  language: string | null;
}

/** What one efetch page held. */
export interface ParsedPage {
  records: PubmedRecord[];
  /** PMIDs of articles without an abstract (counted and skipped). */
  noAbstract: string[];
  /** Number of PubmedArticle + PubmedBookArticle elements seen. */
  seen: number;
}

type XNode = Record<string, unknown>;

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: "",
  trimValues: false,
  parseTagValue: false,
  parseAttributeValue: false,
  processEntities: false,
  ignoreDeclaration: true,
});

const NAMED: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: " " };

/** Decodes XML named and numeric character references in one pass (so `&amp;#945;` stays literal). */
export function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e: string) => {
    if (e[0] === "#") {
      const cp = e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
    }
    return NAMED[e.toLowerCase()] ?? m;
  });
}

function tagOf(n: XNode): string | undefined {
  for (const k of Object.keys(n)) if (k !== ":@") return k;
  return undefined;
}
function kids(n: XNode): XNode[] {
  const t = tagOf(n);
  return t && Array.isArray(n[t]) ? n[t] as XNode[] : [];
}
function attr(n: XNode, name: string): string | undefined {
  const a = n[":@"] as Record<string, string> | undefined;
  return a?.[name] === undefined ? undefined : decodeEntities(a[name]);
}
function all(n: XNode | undefined, tag: string): XNode[] {
  return n ? kids(n).filter((c) => tagOf(c) === tag) : [];
}
function one(n: XNode | undefined, ...path: string[]): XNode | undefined {
  let cur = n;
  for (const p of path) cur = all(cur, p)[0];
  return cur;
}

/** Markup that reads as a word boundary when flattened (MathML rows keep tokens apart). */
const SPACED = new Set(["mml:mrow", "mml:mtd", "mml:mtr", "AbstractText", "p", "br"]);

function rawText(n: XNode | undefined): string {
  if (!n) return "";
  if ("#text" in n) return String(n["#text"]);
  const t = tagOf(n)!;
  const inner = kids(n).map(rawText).join("");
  return SPACED.has(t) ? ` ${inner} ` : inner;
}

/** Deep text of an element: inline markup dropped, entities decoded, whitespace collapsed. */
export function textOf(n: XNode | undefined): string {
  return decodeEntities(rawText(n)).replace(/\s+/g, " ").replace(/ ([,.;:)\]])/g, "$1").trim();
}

function yearOf(pubDate: XNode | undefined): number | null {
  const y = textOf(one(pubDate, "Year")) || textOf(one(pubDate, "MedlineDate"));
  const m = /(1[89]|20)\d\d/.exec(y);
  return m ? Number(m[0]) : null;
}

function authorsOf(list: XNode | undefined): string[] {
  return all(list, "Author").map((a) => {
    const collective = textOf(one(a, "CollectiveName"));
    if (collective) return collective;
    return [textOf(one(a, "ForeName")) || textOf(one(a, "Initials")), textOf(one(a, "LastName"))]
      .filter(Boolean).join(" ");
  }).filter(Boolean);
}

function abstractOf(abs: XNode | undefined): AbstractSection[] {
  return all(abs, "AbstractText").map((s) => {
    const sec: AbstractSection = { text: textOf(s) };
    const label = attr(s, "Label"), cat = attr(s, "NlmCategory");
    if (label) sec.label = label;
    if (cat) sec.category = cat;
    return sec;
  }).filter((s) => s.text !== "");
}

function doiOf(...groups: XNode[][]): string | null {
  for (const g of groups) {
    for (const c of g) {
      const type = attr(c, "EIdType") ?? attr(c, "IdType");
      if (type === "doi" && textOf(c)) return textOf(c);
    }
  }
  return null;
}

function article(node: XNode): PubmedRecord {
  const cit = one(node, "MedlineCitation");
  const art = one(cit, "Article");
  const journal = one(art, "Journal");
  return {
    pmid: textOf(one(cit, "PMID")),
    kind: "article",
    title: textOf(one(art, "ArticleTitle")) || textOf(one(art, "VernacularTitle")),
    abstract: abstractOf(one(art, "Abstract")),
    authors: authorsOf(one(art, "AuthorList")),
    journal: textOf(one(journal, "Title")) || textOf(one(journal, "ISOAbbreviation")),
    year: yearOf(one(journal, "JournalIssue", "PubDate")) ?? yearOf(one(art, "ArticleDate")),
    mesh: all(one(cit, "MeshHeadingList"), "MeshHeading").map((h) => textOf(one(h, "DescriptorName"))),
    keywords: all(one(cit, "KeywordList"), "Keyword").map(textOf).filter(Boolean),
    // ELocationID is in Article; ArticleIdList in PubmedData covers articles without one.
    doi: doiOf(all(art, "ELocationID"), all(one(node, "PubmedData", "ArticleIdList"), "ArticleId")),
    language: textOf(one(art, "Language")) || null,
  };
}

function book(node: XNode): PubmedRecord {
  const doc = one(node, "BookDocument");
  const b = one(doc, "Book");
  return {
    pmid: textOf(one(doc, "PMID")),
    kind: "book",
    title: textOf(one(doc, "ArticleTitle")) || textOf(one(b, "BookTitle")),
    abstract: abstractOf(one(doc, "Abstract")),
    authors: authorsOf(one(doc, "AuthorList")).concat(authorsOf(one(b, "AuthorList"))),
    journal: textOf(one(b, "BookTitle")),
    year: yearOf(one(b, "PubDate")),
    mesh: [],
    keywords: all(one(doc, "KeywordList"), "Keyword").map(textOf).filter(Boolean),
    doi: doiOf(
      all(one(doc, "ArticleIdList"), "ArticleId"),
      all(one(node, "PubmedBookData", "ArticleIdList"), "ArticleId"),
    ),
    language: textOf(one(doc, "Language")) || null,
  };
}

/**
 * Parses one efetch response. Throws when the XML is malformed (e.g. a truncated body) so that the
 * caller can retry; the message carries the parser's line and column.
 *
 * @example
 * const { records, noAbstract } = parsePubmedXml(await res.text());
 */
export function parsePubmedXml(xml: string): ParsedPage {
  const v = XMLValidator.validate(xml);
  if (v !== true) {
    throw new Error(`malformed PubMed XML at line ${v.err.line}, col ${v.err.col}: ${v.err.msg}`);
  }
  const doc = parser.parse(xml) as XNode[];
  const set = doc.find((n) => tagOf(n) === "PubmedArticleSet");
  if (!set) throw new Error("malformed PubMed XML: no <PubmedArticleSet> root");
  const out: ParsedPage = { records: [], noAbstract: [], seen: 0 };
  for (const n of kids(set)) {
    const t = tagOf(n);
    if (t !== "PubmedArticle" && t !== "PubmedBookArticle") continue;
    out.seen++;
    const rec = t === "PubmedArticle" ? article(n) : book(n);
    if (rec.abstract.length === 0) out.noAbstract.push(rec.pmid);
    else out.records.push(rec);
  }
  return out;
}
