import { fetchPubmed } from "../../src/data/pubmed.ts";
import { decodeEntities, parsePubmedXml } from "../../src/data/pubmed_xml.ts";
import { memoryFs } from "../../src/data/fs.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../assert.ts";
import { type Hit, splitArticles, startEutils, syntheticArticle } from "./eutils_server.ts";

const EDGE = Deno.readTextFileSync(new URL("./fixtures/pubmed_edge.xml", import.meta.url));

Deno.test("PubMed XML: structured abstract, inline markup, MathML, entities, unicode", () => {
  const page = parsePubmedXml(EDGE);
  assertEquals(page.seen, 5);
  assertEquals(page.noAbstract, ["30000002"]);
  const r = page.records.find((x) => x.pmid === "30000001")!;
  assertEquals(
    r.title,
    "Metformin plus SGLT2 inhibition lowers HbA1c in type 2 diabetes: a randomised trial.",
  );
  assertEquals(r.abstract.map((s) => [s.label, s.category]), [
    ["BACKGROUND", "BACKGROUND"],
    ["OBJECTIVE", "OBJECTIVE"],
    ["METHODS", "METHODS"],
    ["RESULTS", "RESULTS"],
    ["CONCLUSIONS", "CONCLUSIONS"],
  ]);
  assertEquals(
    r.abstract[0].text,
    "Glycaemic control often deteriorates on metformin alone – about 40% of patients need a second agent within 3 years.",
  );
  assertEquals(
    r.abstract[2].text,
    "We randomised 412 adults (HbA1c 7.5–10.0%) to metformin 1000 mg twice daily plus placebo or plus the inhibitor 10 mg daily for 24 weeks.",
  );
  assertEquals(
    r.abstract[3].text,
    "HbA1c fell by 1.1% versus 0.5% (difference −0.6%; 95% CI −0.8 to −0.4; P < 0.001). Body weight fell by 2.3 kg; the effect size was d=0.45. Genital infections occurred in 4.9% vs 1.0% (α = 0.05).",
  );
  assertEquals(r.authors, ["Anna-Lena Müller", "Wei Zhang", "SGLT2-ADD Study Group"]);
  assertEquals(r.journal, "Journal of Invented Endocrinology & Metabolism");
  assertEquals([r.year, r.doi, r.language, r.kind], [2021, "10.1000/jiem.2021.0001", "eng", "article"]);
  assertEquals(r.mesh, ["Diabetes Mellitus, Type 2", "Metformin", "Glycated Hemoglobin"]);
  assertEquals(r.keywords, ["HbA1c", "SGLT2 inhibitor"]);
  assert(!JSON.stringify(r).includes("<") || r.abstract[3].text.includes("P < 0.001"), "no markup left");
  assert(!/&#|&amp;|mml:/.test(JSON.stringify(r)), "entities or MathML tags left in the record");
});

Deno.test("PubMed XML: unlabelled abstract, MedlineDate, DOI from ArticleIdList, book chapter", () => {
  const page = parsePubmedXml(EDGE);
  const u = page.records.find((x) => x.pmid === "30000003")!;
  assertEquals(u.abstract.length, 1);
  assertEquals(u.abstract[0].label, undefined);
  assert(u.abstract[0].text.includes("41.2 ± 9.6 years") && u.abstract[0].text.includes("r = −0.63"));
  assertEquals([u.year, u.doi, u.language], [2019, "10.3760/invented.2019.06.003", "chi"]);
  const b = page.records.find((x) => x.pmid === "20301482")!;
  assertEquals(b.kind, "book");
  assertEquals(b.title, "Huntington Disease");
  assertEquals(b.journal, "GeneReviews® (invented excerpt)");
  assertEquals(b.year, 1993);
  assertEquals(b.abstract.map((s) => s.label), [
    "CLINICAL CHARACTERISTICS",
    "DIAGNOSIS/TESTING",
    "MANAGEMENT",
  ]);
  assertEquals(b.abstract[1].text, "The diagnosis rests on an expansion of 36 or more CAG repeats in HTT.");
  assertEquals(b.authors, ["Nicholas S Caron", "Margaret P Adam"]);
});

Deno.test("PubMed XML: truncated body and wrong root are errors; entities decode once", () => {
  assertThrows(() => parsePubmedXml(EDGE.slice(0, EDGE.length / 2)), /malformed PubMed XML at line \d+/);
  assertThrows(
    () => parsePubmedXml("<eFetchResult><ERROR>bad</ERROR></eFetchResult>"),
    /no <PubmedArticleSet>/,
  );
  assertEquals(decodeEntities("&amp;#945; &#945; &#x3B1; &lt;b&gt; &bogus;"), "&#945; α α <b> &bogus;");
});

function synthetic(n: number, noAbstractEvery = 0): string[] {
  return Array.from(
    { length: n },
    (_, i) => syntheticArticle(40000000 + i, !(noAbstractEvery && i % noAbstractEvery === 3)),
  );
}

/** Smallest span covering `k + 1` consecutive arrivals: must be ≥ 1 s for a limit of k per second. */
function minWindow(hits: Hit[], k: number): number {
  let min = Infinity;
  for (let i = 0; i + k < hits.length; i++) min = Math.min(min, hits[i + k].t - hits[i].t);
  return min;
}

Deno.test("PubMed client: esearch history + efetch paging, tool/email, 3 requests/s held", async () => {
  const srv = startEutils(synthetic(25, 10));
  try {
    const fs = memoryFs();
    const t0 = performance.now();
    const r = await fetchPubmed({
      query: "diabetes treatment",
      max: 25,
      out: "o.jsonl",
      fs,
      baseUrl: srv.base,
      batchSize: 5,
      email: "a@b.org",
    });
    const wall = performance.now() - t0;
    assertEquals(srv.hits.map((h) => h.path), ["esearch", ...Array(5).fill("efetch")]);
    assertEquals(srv.hits[0].params.usehistory, "y");
    assertEquals(srv.hits.slice(1).map((h) => h.params.retstart), ["0", "5", "10", "15", "20"]);
    for (const h of srv.hits) {
      assertEquals([h.params.tool, h.params.email, h.params.api_key], ["webtune", "a@b.org", undefined]);
    }
    assertEquals([r.written, r.noAbstract, r.total, r.count], [22, 3, 25, 25]); // i % 10 === 3: 3, 13, 23
    const lines = fs.files.get("o.jsonl")!.trim().split("\n").map((l) => JSON.parse(l));
    assertEquals(new Set(lines.map((l) => l.pmid)).size, 22);
    const w = minWindow(srv.hits, 3);
    assert(w >= 1000, `4 requests within ${w.toFixed(0)} ms: more than 3/s`);
    assert(wall < 4000, `6 requests at 3/s should take ~1 s, took ${wall.toFixed(0)} ms`);
  } finally {
    await srv.close();
  }
});

Deno.test("PubMed client: with an API key, 10 requests/s held (and used)", async () => {
  const srv = startEutils(synthetic(55));
  try {
    const fs = memoryFs();
    const t0 = performance.now();
    const r = await fetchPubmed({
      query: "q",
      max: 55,
      out: "o.jsonl",
      fs,
      baseUrl: srv.base,
      batchSize: 5,
      apiKey: "K",
    });
    const wall = performance.now() - t0;
    assertEquals([srv.hits.length, r.written], [12, 55]);
    assert(srv.hits.every((h) => h.params.api_key === "K"));
    const w = minWindow(srv.hits, 10);
    assert(w >= 1000, `11 requests within ${w.toFixed(0)} ms: more than 10/s`);
    // The key really raises the limit: some second holds more than 3 requests (robust under CPU load).
    const w3 = minWindow(srv.hits, 3);
    assert(w3 < 1000, `no second held more than 3 requests (min span of 4: ${w3.toFixed(0)} ms)`);
    assert(wall < 3000, `12 requests at 10/s should take ~1.1 s, took ${wall.toFixed(0)} ms (3/s: ~3.7 s)`);
  } finally {
    await srv.close();
  }
});

Deno.test("PubMed client: 429 + Retry-After honoured, 500 and truncated body retried, XML esearch", async () => {
  const srv = startEutils(splitArticles(EDGE).map((a) => a.xml).concat(synthetic(6)), [
    { path: "esearch", nth: 0, kind: "429", retryAfter: "1" },
    { path: "efetch", nth: 0, kind: "500" },
    { path: "efetch", nth: 1, kind: "truncate" },
    { path: "efetch", nth: 3, kind: "429" },
  ]);
  try {
    const fs = memoryFs();
    const logs: string[] = [];
    const r = await fetchPubmed({
      query: "q",
      max: 11,
      out: "o.jsonl",
      fs,
      baseUrl: srv.base,
      batchSize: 4,
      searchFormat: "xml",
      requestsPerSecond: 50,
      retry: { baseDelayMs: 40 },
      onLog: (m) => logs.push(m),
    });
    const gap = srv.hits[1].t - srv.hits[0].t;
    assert(gap >= 1000, `Retry-After: 1 not honoured (retried after ${gap.toFixed(0)} ms)`);
    assertEquals(srv.hits.map((h) => `${h.path}:${h.status}:${h.params.retstart ?? ""}`), [
      "esearch:429:",
      "esearch:200:",
      "efetch:500:0",
      "efetch:200:0",
      "efetch:200:0",
      "efetch:429:4",
      "efetch:200:4",
      "efetch:200:8",
    ]);
    // Exponential backoff: 40 ms after the 500, 80 ms after the truncated body (second retry of batch 0).
    assert(srv.hits[3].t - srv.hits[2].t >= 38 && srv.hits[4].t - srv.hits[3].t >= 78, "backoff too short");
    assert(logs.some((l) => /malformed PubMed XML/.test(l)), "the truncated body was not the retry reason");
    assertEquals([r.written, r.noAbstract], [10, 1]);
    const pmids = fs.files.get("o.jsonl")!.trim().split("\n").map((l) => JSON.parse(l).pmid);
    assertEquals(pmids.length, new Set(pmids).size);
  } finally {
    await srv.close();
  }
});

Deno.test("PubMed client: network errors retried, then a clear failure", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close(); // nothing listens there now
  await assertRejects(
    () =>
      fetchPubmed({
        query: "q",
        max: 5,
        out: "o",
        fs: memoryFs(),
        baseUrl: `http://127.0.0.1:${port}/`,
        retry: { retries: 2, baseDelayMs: 10 },
        requestsPerSecond: 100,
      }),
    /esearch\.fcgi.*gave up after 3 attempts \(network error/,
  );
});

Deno.test("PubMed CLI: killed mid-run, the rerun skips done batches and appends the rest", async () => {
  const srv = startEutils(synthetic(20), [{ path: "efetch", nth: 2, kind: "stall" }]);
  const dir = await Deno.makeTempDir();
  const out = `${dir}/abs.jsonl`;
  try {
    const cli = new URL("../../cli/data.ts", import.meta.url).pathname;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        cli,
        "pubmed",
        "--query",
        "q",
        "--max",
        "20",
        "--out",
        out,
        "--base-url",
        srv.base,
        "--batch-size",
        "5",
        "--rate",
        "50",
        "--no-progress",
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    await srv.stalled;
    child.kill("SIGKILL");
    await child.status;
    const partial = (await Deno.readTextFile(out)).trim().split("\n");
    assertEquals(partial.length, 10);
    await Deno.writeTextFile(out, '{"pmid":"400000', { append: true }); // a write torn by the kill
    const before = srv.hits.length;
    const { denoFs } = await import("../../platform/deno_fs.ts");
    const r = await fetchPubmed({
      query: "q",
      max: 20,
      out,
      fs: denoFs,
      baseUrl: srv.base,
      batchSize: 5,
      requestsPerSecond: 50,
    });
    assertEquals(srv.hits.slice(before).filter((h) => h.path === "efetch").map((h) => h.params.retstart), [
      "10",
      "15",
    ]);
    assertEquals([r.written, r.alreadyPresent, r.batchesSkipped], [10, 10, 2]);
    const pmids = (await Deno.readTextFile(out)).trim().split("\n").map((l) => JSON.parse(l).pmid);
    assertEquals(pmids, Array.from({ length: 20 }, (_, i) => String(40000000 + i)));
  } finally {
    await srv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PubMed client: refuses to resume into a damaged file and rejects impossible requests", async () => {
  const { readDonePmids } = await import("../../src/data/pubmed.ts");
  const fs = memoryFs({
    "o.jsonl": '{"pmid":"1"}\nGARBAGE\n{"pmid":"3"}\n',
    "t.jsonl": '{"pmid":"1"}\n{"pmid":"2"}\n{"pm',
  });
  await assertRejects(() => readDonePmids(fs, "o.jsonl"), /o\.jsonl:2: not a JSON line; cannot resume/);
  assertEquals([...await readDonePmids(fs, "t.jsonl")], ["1", "2"]);
  assertEquals(fs.files.get("t.jsonl"), '{"pmid":"1"}\n{"pmid":"2"}\n'); // the torn tail is cut
  const base = { query: "q", out: "x", fs: memoryFs() };
  await assertRejects(() => fetchPubmed({ ...base, max: 20_000 }), /at most 10000 PMIDs per query/);
  await assertRejects(() => fetchPubmed({ ...base, max: 5, batchSize: 0 }), /--batch-size must be/);
  await assertRejects(() => fetchPubmed({ ...base, query: " ", max: 5 }), /--query is empty/);
});
