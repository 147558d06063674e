import { parsePubmedXml } from "../../src/data/pubmed_xml.ts";
import { assert, assertEquals } from "../assert.ts";

const CLI = new URL("../../cli/data.ts", import.meta.url).pathname;
const TINY = new URL("../testdata/llama", import.meta.url).pathname;
const TOK = new URL("../testdata/tok_bytelevel", import.meta.url).pathname;
const MISTRAL = new URL("../testdata/mistral", import.meta.url).pathname;
const EDGE = Deno.readTextFileSync(new URL("./fixtures/pubmed_edge.xml", import.meta.url));

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

Deno.test("cli: qa rules → valid alpaca; --generator model runs a local model and lists failures", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const abs = `${dir}/abs.jsonl`, out = `${dir}/qa.json`;
    await Deno.writeTextFile(abs, parsePubmedXml(EDGE).records.map((r) => JSON.stringify(r) + "\n").join(""));
    const q = await run("qa", "--in", abs, "--out", out, "--generator", "rules");
    assertEquals(q.code, 0, q.err);
    assert(/4 abstracts → 7 pairs; skipped: 1 unstructured/.test(q.err), q.err);
    const items = JSON.parse(await Deno.readTextFile(out));
    assertEquals(items.length, 7);
    const v = await run("validate", out);
    assertEquals(v.code, 0, v.err);
    assert(/alpaca \(json\), 7 records, 7 valid, 0 invalid/.test(v.out), v.out);
    // A local model through the GPU engine: the tiny random test model answers gibberish, so every
    // abstract must be listed as failed (never dropped silently) and the output is an empty array.
    const m = await run(
      "qa",
      "--in",
      abs,
      "--out",
      out,
      "--generator",
      "model",
      "--model",
      TINY,
      "--max-new-tokens",
      "6",
    );
    assertEquals(m.code, 0, m.err);
    assert(/4 abstracts → 0 pairs; 4 failed/.test(m.err), m.err);
    assertEquals((m.err.match(/^pmid \S+: reply holds no JSON array/gm) ?? []).length, 4, m.err);
    assertEquals(JSON.parse(await Deno.readTextFile(out)), []);
    const noTemplate = await run("qa", "--in", abs, "--out", out, "--generator", "model", "--model", MISTRAL);
    assertEquals(noTemplate.code, 1);
    assert(
      /has no chat template: --generator model needs an instruct \(chat\) model/.test(noTemplate.err),
      noTemplate.err,
    );
    await Deno.writeTextFile(abs, '{"pmid":"1","title":"t","abstract":[]}\nnot json\n');
    const bad = await run("qa", "--in", abs, "--out", out);
    assertEquals(bad.code, 2);
    assert(bad.err.includes(`${abs}:2: not a JSON line`), bad.err);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: synth is deterministic and names bad flags", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = await run(
      "synth",
      "--diseases",
      "渐冻症,亨廷顿舞蹈症",
      "--num-samples",
      "50",
      "--lang",
      "en",
      "--seed",
      "3",
      "--out",
      `${dir}/a.json`,
    );
    const b = await run(
      "synth",
      "--diseases",
      "ALS,Huntington disease",
      "--num-samples",
      "50",
      "--lang",
      "en",
      "--seed",
      "3",
      "--out",
      `${dir}/b.json`,
    );
    assertEquals([a.code, b.code], [0, 0], a.err + b.err);
    assertEquals(await Deno.readTextFile(`${dir}/a.json`), await Deno.readTextFile(`${dir}/b.json`));
    const recs = JSON.parse(await Deno.readTextFile(`${dir}/a.json`));
    assertEquals(recs.length, 50);
    assertEquals((await run("validate", `${dir}/a.json`)).code, 0);
    const lang = await run(
      "synth",
      "--diseases",
      "als",
      "--num-samples",
      "5",
      "--lang",
      "fr",
      "--out",
      `${dir}/c.json`,
    );
    assertEquals(lang.code, 2);
    assert(/--lang: zh or en, got "fr"/.test(lang.err), lang.err);
    const unk = await run("synth", "--diseases", "als", "--num-sample", "5");
    assertEquals(unk.code, 2);
    assert(/Unknown option '--num-sample'/.test(unk.err), unk.err);
    const n = await run("synth", "--diseases", "als", "--num-samples", "many", "--out", `${dir}/c.json`);
    assert(/--num-samples: expected a number, got "many"/.test(n.err), n.err);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: validate lists bad records, --skip-invalid counts them; merge and pubmed flag errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const f = `${dir}/d.jsonl`;
    await Deno.writeTextFile(
      f,
      '{"instruction":"q","output":"a"}\n{"instruction":"q"}\n{"instruction":"q","output":"b"}\n',
    );
    const v = await run("validate", f);
    assertEquals(v.code, 1);
    assert(v.err.includes(`${f}: line 2: output: Invalid input: expected string, received undefined`), v.err);
    const s = await run("validate", f, "--skip-invalid", "--out", `${dir}/clean.jsonl`);
    assertEquals(s.code, 0);
    assert(/3 records, 2 valid, 1 invalid \(skipped\)/.test(s.out), s.out);
    assertEquals((await Deno.readTextFile(`${dir}/clean.jsonl`)).trim().split("\n").length, 2);
    const clean = `${dir}/clean.jsonl`;
    const info = `${dir}/dataset_info.json`;
    const t = await run(
      "merge",
      "--in",
      clean,
      "--out-dir",
      dir,
      "--name",
      "x",
      "--dataset-info",
      info,
      "--tokenizer",
      TOK,
    );
    assertEquals(t.code, 0, t.err);
    const units = (JSON.parse(t.out).lengthHistogram as { unit: string }[]).map((h) => h.unit);
    assert(units.includes("tokens"), `token histogram with --tokenizer: ${units}`);
    const badTok = await run("merge", "--in", clean, "--out-dir", dir, "--name", "x", "--tokenizer", dir);
    assert(badTok.code === 1 && /tokenizer\.json: not found/.test(badTok.err), badTok.err);
    const miss = await run("merge", "--in", `${dir}/nope.json`, "--out-dir", dir, "--name", "x");
    assert(miss.code === 2 && miss.err.includes(`--in ${dir}/nope.json: no such file`), miss.err);
    const q = await run("pubmed", "--max", "5", "--out", `${dir}/p.jsonl`);
    assert(q.code === 2 && /missing --query/.test(q.err), q.err);
    const r = await run("pubmed", "--query", "x", "--max", "5", "--out", `${dir}/p.jsonl`, "--rate", "20");
    assert(r.code === 2 && /NCBI allows at most 3 requests\/s without an API key/.test(r.err), r.err);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: the seed's pipeline end to end — pubmed → qa → synth → merge → validate", async () => {
  const { startEutils, splitArticles } = await import("./eutils_server.ts");
  const srv = startEutils(splitArticles(EDGE).map((a) => a.xml));
  const dir = await Deno.makeTempDir();
  try {
    const p = await run(
      "pubmed",
      "--query",
      "diabetes treatment",
      "--max",
      "5000",
      "--out",
      `${dir}/abs.jsonl`,
      "--base-url",
      srv.base,
      "--email",
      "me@example.org",
      "--no-progress",
    );
    assertEquals(p.code, 0, p.err);
    assertEquals(JSON.parse(p.out).written, 4);
    assertEquals(
      (await run(
        "qa",
        "--in",
        `${dir}/abs.jsonl`,
        "--out",
        `${dir}/medical_qa_alpaca.json`,
        "--generator",
        "rules",
      )).code,
      0,
    );
    const s = await run(
      "synth",
      "--diseases",
      "渐冻症,亨廷顿舞蹈症",
      "--num-samples",
      "40",
      "--lang",
      "zh",
      "--seed",
      "1",
      "--out",
      `${dir}/rare.json`,
    );
    assertEquals(s.code, 0, s.err);
    const m = await run(
      "merge",
      "--in",
      `${dir}/medical_qa_alpaca.json`,
      "--in",
      `${dir}/rare.json`,
      "--out-dir",
      `${dir}/merged`,
      "--name",
      "medical_dataset_merged",
      "--dataset-info",
      `${dir}/dataset_info.json`,
      "--split",
      "0.8,0.1,0.1",
    );
    assertEquals(m.code, 0, m.err);
    const rep = JSON.parse(m.out);
    assertEquals(rep.sources.medical_qa_alpaca.kept, 7);
    assert(
      rep.sources.rare.kept >= 30,
      `synthetic cases lost as near duplicates: ${JSON.stringify(rep.sources.rare)}`,
    );
    assertEquals(rep.stratifyBy, "source");
    const info = JSON.parse(await Deno.readTextFile(`${dir}/dataset_info.json`));
    assertEquals(info.medical_dataset_merged.file_name, "merged/train.json");
    for (const part of ["train", "validation", "test"]) {
      const v = await run("validate", `${dir}/merged/${part}.json`);
      assertEquals(v.code, 0, v.err + v.out);
    }
  } finally {
    await srv.close();
    await Deno.remove(dir, { recursive: true });
  }
});
