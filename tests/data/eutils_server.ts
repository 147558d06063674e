/**
 * A local stand-in for NCBI E-utilities (esearch with the history server, efetch XML paging) on
 * 127.0.0.1, built with Hono. It serves the fixture articles, logs every request with its arrival
 * time, and plays scripted faults (429 + Retry-After, 500, a truncated body, a stalled response).
 */
import { Hono } from "hono";

const HEAD = `<?xml version="1.0" ?>
<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" "https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">
<PubmedArticleSet>
`;

/** A request as the server saw it. */
export interface Hit {
  path: "esearch" | "efetch";
  t: number;
  params: Record<string, string>;
  status: number;
}

/** A scripted fault for the n-th request (0-based, counted over all requests) to a path. */
export interface Fault {
  path: "esearch" | "efetch";
  /** Index among requests to that path. */
  nth: number;
  kind: "429" | "500" | "truncate" | "stall";
  retryAfter?: string;
}

/** Splits a fixture PubmedArticleSet into its article elements (the unit the server pages over). */
export function splitArticles(xml: string): { pmid: string; xml: string }[] {
  return [...xml.matchAll(/<(PubmedArticle|PubmedBookArticle)>[\s\S]*?<\/\1>/g)].map((m) => ({
    pmid: /<PMID[^>]*>(\d+)<\/PMID>/.exec(m[0])![1],
    xml: m[0],
  }));
}

/** A minimal valid structured article, for paging tests. */
export function syntheticArticle(pmid: number, withAbstract = true): string {
  const abs = withAbstract
    ? `<Abstract><AbstractText Label="OBJECTIVE" NlmCategory="OBJECTIVE">To test record ${pmid}.</AbstractText>` +
      `<AbstractText Label="RESULTS" NlmCategory="RESULTS">Value ${
        pmid % 97
      } mg/dL.</AbstractText></Abstract>`
    : "";
  return `<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">${pmid}</PMID>` +
    `<Article PubModel="Print"><Journal><JournalIssue CitedMedium="Print"><PubDate><Year>2020</Year></PubDate>` +
    `</JournalIssue><Title>Synthetic Journal</Title></Journal><ArticleTitle>Synthetic article ${pmid}.</ArticleTitle>` +
    `${abs}<Language>eng</Language></Article></MedlineCitation><PubmedData><ArticleIdList>` +
    `<ArticleId IdType="pubmed">${pmid}</ArticleId></ArticleIdList></PubmedData></PubmedArticle>`;
}

/** Handle on a running server. */
export interface EutilsServer {
  base: string;
  hits: Hit[];
  faults: Fault[];
  /** Resolved when a stalled request arrives (tests kill the client then). */
  stalled: Promise<void>;
  close(): Promise<void>;
}

/** Starts the server on a free port. `articles` are PubmedArticle / PubmedBookArticle element strings. */
export function startEutils(articles: string[], faults: Fault[] = []): EutilsServer {
  const ids = articles.map((a) => /<PMID[^>]*>(\d+)<\/PMID>/.exec(a)![1]);
  const hits: Hit[] = [];
  const counts = { esearch: 0, efetch: 0 };
  let onStall = () => {};
  const stalled = new Promise<void>((r) => (onStall = r));
  const app = new Hono();
  const hold = new Set<(v: void) => void>();

  const fault = (path: "esearch" | "efetch") => {
    const n = counts[path]++;
    return faults.find((f) => f.path === path && f.nth === n);
  };
  const log = (path: Hit["path"], q: Record<string, string>, status: number) =>
    hits.push({ path, t: performance.now(), params: q, status });

  app.get("/esearch.fcgi", (c) => {
    const q = c.req.query();
    const f = fault("esearch");
    if (f?.kind === "429") {
      log("esearch", q, 429);
      return c.text("Too Many Requests", 429, f.retryAfter ? { "Retry-After": f.retryAfter } : {});
    }
    if (f?.kind === "500") return log("esearch", q, 500), c.text("boom", 500);
    log("esearch", q, 200);
    if (q.db !== "pubmed" || q.usehistory !== "y") return c.text("expected db=pubmed&usehistory=y", 400);
    const retmax = Number(q.retmax ?? 20);
    const list = ids.slice(0, retmax);
    if (q.retmode === "xml") {
      return c.body(
        `<?xml version="1.0" encoding="UTF-8" ?>\n<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch 20060628//EN" ` +
          `"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">\n<eSearchResult><Count>${ids.length}</Count>` +
          `<RetMax>${list.length}</RetMax><RetStart>0</RetStart><QueryKey>1</QueryKey><WebEnv>MCID_test</WebEnv>` +
          `<IdList>${
            list.map((i) => `<Id>${i}</Id>`).join("")
          }</IdList><QueryTranslation>${q.term}</QueryTranslation>` +
          `</eSearchResult>\n`,
        200,
        { "Content-Type": "text/xml; charset=UTF-8" },
      );
    }
    return c.json({
      header: { type: "esearch", version: "0.3" },
      esearchresult: {
        count: String(ids.length),
        retmax: String(list.length),
        retstart: "0",
        querykey: "1",
        webenv: "MCID_test",
        idlist: list,
      },
    });
  });

  app.get("/efetch.fcgi", async (c) => {
    const q = c.req.query();
    const f = fault("efetch");
    if (f?.kind === "429") {
      log("efetch", q, 429);
      return c.text("Too Many Requests", 429, f.retryAfter ? { "Retry-After": f.retryAfter } : {});
    }
    if (f?.kind === "500") return log("efetch", q, 500), c.text("Internal Server Error", 500);
    if (f?.kind === "stall") {
      log("efetch", q, 0);
      onStall();
      await new Promise((r) => hold.add(r));
      return c.text("stalled", 503);
    }
    log("efetch", q, 200);
    if (q.WebEnv !== "MCID_test" || q.query_key !== "1") return c.text("unknown WebEnv/query_key", 400);
    const start = Number(q.retstart ?? 0), n = Number(q.retmax ?? 20);
    const body = HEAD + articles.slice(start, start + n).join("\n") + "\n</PubmedArticleSet>\n";
    const out = f?.kind === "truncate" ? body.slice(0, Math.floor(body.length * 0.6)) : body;
    return c.body(out, 200, { "Content-Type": "text/xml; charset=UTF-8" });
  });

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  return {
    base: `http://127.0.0.1:${server.addr.port}/`,
    hits,
    faults,
    stalled,
    async close() {
      for (const r of hold) r();
      await server.shutdown();
    },
  };
}
