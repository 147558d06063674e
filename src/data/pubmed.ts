/**
 * NCBI E-utilities client: esearch on the history server (WebEnv + query_key), then efetch of the
 * XML in batches, appended to a JSONL file one {@link PubmedRecord} per line. Rate limited to NCBI's
 * 3 requests/s (10 with an API key), retried on 429 / 5xx / network errors / truncated bodies, and
 * resumable: a rerun skips the PMIDs already in the output and appends the rest.
 */
import type { DataFs } from "./fs.ts";
import { fetchWithRetry, RateLimiter, RetryableError, type RetryOptions } from "./http.ts";
import { parsePubmedXml, type PubmedRecord } from "./pubmed_xml.ts";

/** NCBI's production endpoint; tests point `baseUrl` at a local server. */
export const EUTILS_BASE = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/";

/** esearch caps retstart + retmax at 10,000 for PubMed. */
export const ESEARCH_MAX = 10_000;

/** Options of {@link fetchPubmed}. */
export interface PubmedOptions {
  query: string;
  /** How many of the matching PMIDs (in PubMed's order) to fetch. */
  max: number;
  /** Output JSONL path (read for resume, appended to). */
  out: string;
  fs: DataFs;
  apiKey?: string;
  /** NCBI asks every client to identify itself with tool + email. */
  email?: string;
  tool?: string;
  baseUrl?: string;
  /** Records per efetch (default 200). */
  batchSize?: number;
  /** Default 3, or 10 with an API key (NCBI's limits); lower it, never raise it against NCBI. */
  requestsPerSecond?: number;
  retry?: Pick<RetryOptions, "retries" | "baseDelayMs" | "maxDelayMs">;
  /** esearch response format (default json). */
  searchFormat?: "json" | "xml";
  signal?: AbortSignal;
  fetch?: typeof fetch;
  onProgress?: (p: PubmedProgress) => void;
  onLog?: (message: string) => void;
}

/** Progress after each batch (and once after esearch). */
export interface PubmedProgress {
  /** PMIDs handled so far (written, already present, or without abstract). */
  done: number;
  total: number;
  written: number;
  noAbstract: number;
}

/** Summary of a run. */
export interface PubmedResult {
  /** Hits for the query. */
  count: number;
  /** PMIDs considered: min(max, count). */
  total: number;
  written: number;
  /** Found in the output from an earlier run and skipped. */
  alreadyPresent: number;
  noAbstract: number;
  batchesFetched: number;
  batchesSkipped: number;
}

interface SearchResult {
  count: number;
  webEnv: string;
  queryKey: string;
  ids: string[];
}

/**
 * Reads the PMIDs of an existing output. A partial last line (the run was killed mid-write) is cut
 * off; any other unreadable line is an error naming it, so a user's file is never silently rewritten.
 */
export async function readDonePmids(
  fs: DataFs,
  out: string,
  log?: (m: string) => void,
): Promise<Set<string>> {
  const done = new Set<string>();
  if (!(await fs.exists(out))) return done;
  const text = await fs.readText(out);
  const lines = text.split("\n");
  const complete = text.endsWith("\n") || text === "" ? lines.slice(0, -1) : lines;
  let keep = 0;
  for (let i = 0; i < complete.length; i++) {
    if (complete[i].trim() === "") {
      keep += complete[i].length + 1;
      continue;
    }
    let rec: { pmid?: unknown };
    try {
      rec = JSON.parse(complete[i]);
    } catch {
      if (i === complete.length - 1) break; // torn final line
      throw new Error(`${out}:${i + 1}: not a JSON line; cannot resume into this file (move it aside)`);
    }
    if (typeof rec.pmid !== "string") throw new Error(`${out}:${i + 1}: record has no string "pmid"`);
    done.add(rec.pmid);
    keep += complete[i].length + 1;
  }
  if (keep < text.length) {
    log?.(`${out}: dropping a partial last line left by an interrupted run`);
    await fs.writeText(out, text.slice(0, keep));
  }
  return done;
}

function params(o: PubmedOptions, extra: Record<string, string | number>): string {
  const p = new URLSearchParams({ db: "pubmed" });
  for (const [k, v] of Object.entries(extra)) p.set(k, String(v));
  p.set("tool", o.tool ?? "webtune");
  if (o.email) p.set("email", o.email);
  if (o.apiKey) p.set("api_key", o.apiKey);
  return p.toString();
}

function parseSearchJson(text: string): SearchResult {
  let j: { esearchresult?: Record<string, unknown> };
  try {
    j = JSON.parse(text);
  } catch {
    throw new RetryableError(`esearch: response is not complete JSON (${text.length} bytes)`);
  }
  const r = j.esearchresult;
  if (!r) throw new Error(`esearch: unexpected response: ${text.slice(0, 200)}`);
  if (r.ERROR) throw new Error(`esearch: NCBI error: ${r.ERROR}`);
  return {
    count: Number(r.count),
    webEnv: String(r.webenv ?? ""),
    queryKey: String(r.querykey ?? ""),
    ids: (r.idlist as string[] | undefined) ?? [],
  };
}

function parseSearchXml(text: string): SearchResult {
  if (!/<\/eSearchResult>\s*$/.test(text)) throw new RetryableError("esearch: truncated XML response");
  const tag = (t: string) =>
    /<(\w+)>([^<]*)<\/\1>/.exec(text.match(new RegExp(`<${t}>[^<]*</${t}>`))?.[0] ?? "")
      ?.[2] ?? "";
  const err = tag("ERROR");
  if (err) throw new Error(`esearch: NCBI error: ${err}`);
  const ids = [...(text.match(/<IdList>[\s\S]*?<\/IdList>/)?.[0] ?? "").matchAll(/<Id>(\d+)<\/Id>/g)]
    .map((m) => m[1]);
  return { count: Number(tag("Count")), webEnv: tag("WebEnv"), queryKey: tag("QueryKey"), ids };
}

/**
 * Runs the query and writes the records. See {@link PubmedOptions}.
 *
 * @example
 * const r = await fetchPubmed({ query: "diabetes treatment", max: 5000, out: "abs.jsonl", fs, email: "me@x.org" });
 * console.log(`${r.written} written, ${r.noAbstract} without abstract`);
 */
export async function fetchPubmed(o: PubmedOptions): Promise<PubmedResult> {
  if (!o.query.trim()) throw new Error("--query is empty");
  if (!(o.max >= 1)) throw new Error(`--max must be ≥ 1, got ${o.max}`);
  if (o.max > ESEARCH_MAX) {
    throw new Error(
      `--max ${o.max}: PubMed's esearch returns at most ${ESEARCH_MAX} PMIDs per query; split it by date`,
    );
  }
  const base = (o.baseUrl ?? EUTILS_BASE).replace(/\/?$/, "/");
  const batch = o.batchSize ?? 200;
  if (!(Number.isInteger(batch) && batch >= 1 && batch <= ESEARCH_MAX)) {
    throw new Error(`--batch-size must be an integer in 1..${ESEARCH_MAX}, got ${batch}`);
  }
  const limiter = new RateLimiter(o.requestsPerSecond ?? (o.apiKey ? 10 : 3));
  const retry: RetryOptions = {
    ...o.retry,
    limiter,
    signal: o.signal,
    fetch: o.fetch,
    onRetry: (why, ms, n) => o.onLog?.(`retry ${n} in ${Math.round(ms)} ms: ${why}`),
  };
  const done = await readDonePmids(o.fs, o.out, o.onLog);
  const alreadyBefore = done.size;

  const format = o.searchFormat ?? "json";
  const sq = params(o, { term: o.query, usehistory: "y", retmax: o.max, retmode: format });
  const search = await fetchWithRetry(`${base}esearch.fcgi?${sq}`, {}, async (r) => {
    const text = await r.text();
    return format === "json" ? parseSearchJson(text) : parseSearchXml(text);
  }, retry);
  if (search.count > 0 && (!search.webEnv || !search.queryKey)) {
    throw new Error("esearch: the response has no WebEnv/query_key (history server not used?)");
  }
  const total = Math.min(o.max, search.count, search.ids.length || search.count);
  const res: PubmedResult = {
    count: search.count,
    total,
    written: 0,
    alreadyPresent: 0,
    noAbstract: 0,
    batchesFetched: 0,
    batchesSkipped: 0,
  };
  const progress = (handled: number) =>
    o.onProgress?.({ done: handled, total, written: res.written, noAbstract: res.noAbstract });
  progress(0);

  for (let start = 0; start < total; start += batch) {
    const n = Math.min(batch, total - start);
    const ids = search.ids.slice(start, start + n);
    const present = ids.filter((id) => done.has(id)).length;
    res.alreadyPresent += present;
    if (ids.length === n && present === n) {
      res.batchesSkipped++;
      progress(start + n);
      continue;
    }
    const fq = params(o, {
      query_key: search.queryKey,
      WebEnv: search.webEnv,
      retstart: start,
      retmax: n,
      retmode: "xml",
      rettype: "abstract",
    });
    const page = await fetchWithRetry(`${base}efetch.fcgi?${fq}`, {}, async (r) => {
      const text = await r.text();
      try {
        return parsePubmedXml(text);
      } catch (e) {
        // A cut-off body is transient; a well-formed answer without articles is not.
        if (/malformed PubMed XML at/.test((e as Error).message)) {
          throw new RetryableError((e as Error).message);
        }
        throw new Error(`efetch retstart=${start}: ${(e as Error).message}: ${text.slice(0, 200)}`);
      }
    }, retry);
    res.batchesFetched++;
    res.noAbstract += page.noAbstract.length;
    const fresh: PubmedRecord[] = page.records.filter((r) => !done.has(r.pmid));
    if (fresh.length) await o.fs.appendText(o.out, fresh.map((r) => JSON.stringify(r) + "\n").join(""));
    for (const r of fresh) done.add(r.pmid);
    res.written += fresh.length;
    progress(start + n);
  }
  o.onLog?.(
    `${res.written} written, ${res.alreadyPresent} already in ${o.out} (had ${alreadyBefore}), ` +
      `${res.noAbstract} without abstract skipped`,
  );
  return res;
}
