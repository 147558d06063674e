import { assert, assertEquals, assertRejects } from "../assert.ts";
import {
  type Batch,
  hashParts,
  readIndex,
  ShardLoader,
  SplitReader,
  writeIndex,
  writeShards,
} from "../../src/data/shards.ts";
import { prepareSft, type PrepareSftOptions, type Row, tokenizerFingerprint } from "../../src/data/sft.ts";
import { parseConfig, sftDataOptions } from "../../src/train/config.ts";
import { denoFs } from "../../platform/deno_fs.ts";
import { getTemplate } from "../../src/data/templates.ts";
import { type FileSystem, memoryFs } from "../../src/io/fs.ts";
import { HfTokenizer } from "../../src/io/tokenizer.ts";

const fixtureDir = new URL("../io/fixtures/bytelevel_bpe/", import.meta.url);
const tokFiles = async () => ({
  "t/tokenizer.json": await Deno.readTextFile(new URL("tokenizer.json", fixtureDir)),
  "t/tokenizer_config.json": await Deno.readTextFile(new URL("tokenizer_config.json", fixtureDir)),
});

/** Rows whose ids say which row and offset they are (row r, token i → 1000·r + i). */
function rows(n: number, seed = 1): Row[] {
  return Array.from({ length: n }, (_, r) => {
    const len = 1 + ((r * 7 + seed * 3) % 11);
    const cut = Math.min(len, 2);
    return {
      inputIds: Int32Array.from({ length: len }, (_, i) => 1000 * r + i),
      labels: Int32Array.from({ length: len }, (_, i) => i < cut - 1 ? -100 : 1000 * r + i),
      segments: len > 4 ? [2, len - 2] : [len],
    };
  });
}

/** Counts writes, so a reuse can be seen to write nothing. */
function counting(fs: FileSystem): FileSystem & { writes: string[] } {
  const writes: string[] = [];
  return { ...fs, writes, writeFile: (p, d) => (writes.push(p), fs.writeFile(p, d)) };
}

async function openSplit(fs: FileSystem, data: Row[], shardTokens: number): Promise<SplitReader> {
  const shards = await writeShards(fs, "s", "train", data, shardTokens);
  await writeIndex(fs, "s", {
    version: 1,
    hash: "h",
    meta: {},
    splits: { train: { rows: data.length, tokens: 0, shards } },
  });
  return await SplitReader.open(fs, "s", "train");
}

Deno.test("shards: rows round-trip through several shard files", async () => {
  const fs = memoryFs(), data = rows(37);
  const reader = await openSplit(fs, data, 40);
  assert([...fs.files.keys()].filter((k) => k.endsWith(".bin")).length > 3, "several shards");
  assertEquals(reader.rows, 37);
  for (const i of [0, 1, 5, 17, 36, 20, 3]) {
    const r = await reader.row(i);
    assertEquals([...r.inputIds], [...data[i].inputIds], `row ${i}`);
    assertEquals([...r.labels], [...data[i].labels]);
    assertEquals(r.segments, data[i].segments);
  }
  await assertRejects(() => reader.row(37), /row 37 out of range \(37 rows\)/);
});

Deno.test("shards: the loader visits every row once per epoch, seeded, and resumes exactly", async () => {
  const fs = memoryFs(), data = rows(23);
  const reader = await openSplit(fs, data, 50);
  const opts = { batchSize: 4, seed: 42, padId: 7 };
  const a = new ShardLoader(reader, opts);
  const firstRow = (b: Batch, k: number) => Math.floor(b.inputIds[k * b.seqLen] / 1000);
  const epoch = async (l: ShardLoader) => {
    const seen: number[] = [];
    for (;;) {
      const b = await l.next();
      for (let k = 0; k < b.rows; k++) seen.push(firstRow(b, k));
      if (b.lastInEpoch) return { seen, last: b };
    }
  };
  const e0 = await epoch(a), e1 = await epoch(a);
  assertEquals([...e0.seen].sort((x, y) => x - y), data.map((_, i) => i), "epoch 0 is a permutation");
  assertEquals([...e1.seen].sort((x, y) => x - y), data.map((_, i) => i), "epoch 1 is a permutation");
  assert(JSON.stringify(e0.seen) !== JSON.stringify(e1.seen), "epochs are reshuffled");
  assert(JSON.stringify(e0.seen) !== JSON.stringify(data.map((_, i) => i)), "shuffled");
  assertEquals(e0.last.rows, 3, "23 = 5·4 + 3: the last batch is short (drop_last=False)");
  assertEquals(e1.last.position, { epoch: 1, index: 20 });
  const again = await epoch(new ShardLoader(reader, opts));
  assertEquals(again.seen, e0.seen, "same seed, same order");
  const other = await epoch(new ShardLoader(reader, { ...opts, seed: 43 }));
  assert(JSON.stringify(other.seen) !== JSON.stringify(e0.seen), "another seed, another order");

  // Resume: a fresh loader seeked to the position of batch k yields the same batches from there on.
  const ref = new ShardLoader(reader, opts), batches: Batch[] = [];
  for (let i = 0; i < 14; i++) batches.push(await ref.next());
  for (const k of [0, 3, 5, 6, 9]) {
    const l = new ShardLoader(reader, opts);
    l.seek(batches[k].position);
    for (let i = k; i < 14; i++) {
      const b = await l.next();
      assertEquals([...b.inputIds], [...batches[i].inputIds], `resume at batch ${k}, batch ${i}`);
      assertEquals(b.position, batches[i].position);
    }
  }
  const end = new ShardLoader(reader, opts);
  end.seek(batches[5].position);
  assertEquals(end.position, batches[5].position);
});

Deno.test("shards: batches are padded; positions and segment ids restart per packed example", async () => {
  const fs = memoryFs(), data = rows(5);
  const reader = await openSplit(fs, data, 1000);
  const l = new ShardLoader(reader, { batchSize: 5, seed: 1, shuffle: false, padId: 9 });
  const b = await l.next();
  assertEquals(b.seqLen, Math.max(...data.map((r) => r.inputIds.length)));
  for (let k = 0; k < 5; k++) {
    const r = data[k], off = k * b.seqLen, n = r.inputIds.length;
    assertEquals([...b.inputIds.subarray(off, off + n)], [...r.inputIds]);
    assert(b.inputIds.subarray(off + n, off + b.seqLen).every((x) => x === 9), "pad id");
    assert(b.labels.subarray(off + n, off + b.seqLen).every((x) => x === -100), "pad labels");
    assert(b.segmentIds.subarray(off + n, off + b.seqLen).every((x) => x === 0), "pad segment 0");
    const pos: number[] = [], seg: number[] = [];
    r.segments.forEach((len, s) => {
      for (let p = 0; p < len; p++) (pos.push(p), seg.push(s + 1));
    });
    assertEquals([...b.positionIds.subarray(off, off + n)], pos);
    assertEquals([...b.segmentIds.subarray(off, off + n)], seg);
  }
});

Deno.test("shards: prepareSft writes once, reuses on rerun, rebuilds when an input changes", async () => {
  const files = await tokFiles();
  const data = Array.from(
    { length: 30 },
    (_, i) => ({ instruction: `Hello ${i}`, input: "", output: `world ${i % 3}` }),
  );
  const base = memoryFs({
    ...files,
    "d/dataset_info.json": JSON.stringify({ x: { file_name: "x.json" } }),
    "d/x.json": JSON.stringify(data),
  });
  const fs = counting(base);
  const tok = await HfTokenizer.load(fs, "t");
  const o: PrepareSftOptions = {
    datasetDir: "d",
    datasets: ["x"],
    template: getTemplate("llama3"),
    tokenizer: tok,
    tokenizerFingerprint: "tok-1",
    cutoffLen: 64,
    valSize: 0.2,
    seed: 3,
    cacheDir: "cache",
  };
  const first = await prepareSft(fs, o);
  assertEquals(first.reused, false);
  assertEquals(first.index.splits.train.rows, 24);
  assertEquals(first.index.splits.validation.rows, 6);
  const written = fs.writes.length;
  const second = await prepareSft(fs, o);
  assertEquals(second.reused, true);
  assertEquals(second.dir, first.dir);
  assertEquals(fs.writes.length, written, "a reuse writes nothing");
  // Rows read back are the template's encodings.
  const train = await SplitReader.open(fs, first.dir, "train");
  const r0 = await train.row(0);
  assert(r0.inputIds[0] === tok.tokenToId("<|begin_of_text|>"), "llama3 BOS first");
  assert(r0.labels.at(-1) === tok.tokenToId("<|eot_id|>"), "end of turn trained");

  const dirs = new Set([first.dir]);
  for (
    const change of [
      { template: getTemplate("chatml") },
      { cutoffLen: 63 },
      { tokenizerFingerprint: "tok-2" },
      { packing: true },
      { trainOnPrompt: true },
      { valSize: 0.1 },
      { seed: 4 },
    ] as Partial<PrepareSftOptions>[]
  ) {
    const r = await prepareSft(fs, { ...o, ...change });
    assertEquals(r.reused, false, JSON.stringify(Object.keys(change)));
    assert(!dirs.has(r.dir), "a new directory");
    dirs.add(r.dir);
  }
  // Changing one data byte changes the hash.
  await fs.writeFile(
    "d/x.json",
    new TextEncoder().encode(JSON.stringify(data).replace("world 2", "world 5")),
  );
  assertEquals((await prepareSft(fs, o)).reused, false);
  // An interrupted write (no index.json) is rebuilt, not reused.
  await fs.writeFile("d/x.json", new TextEncoder().encode(JSON.stringify(data)));
  base.files.delete(`${first.dir}/index.json`);
  assertEquals(await readIndex(fs, first.dir), null);
  const rebuilt = await prepareSft(fs, o);
  assertEquals([rebuilt.reused, rebuilt.dir], [false, first.dir]);
  assertEquals((await prepareSft(fs, { ...o, overwriteCache: true })).reused, false, "overwrite_cache");
  // Packing: fewer rows, same tokens.
  const packed = await prepareSft(fs, { ...o, packing: true });
  assert(packed.index.splits.train.rows < 24);
  assertEquals(packed.index.splits.train.tokens, first.index.splits.train.tokens);
});

Deno.test("shards: hashParts is length-prefixed", async () => {
  assert((await hashParts(["ab", "c"])) !== (await hashParts(["a", "bc"])));
  assertEquals(await hashParts(["x"]), await hashParts([new TextEncoder().encode("x")]));
});

Deno.test("shards: the bundled medical dataset on disk (denoFs), from a config, packed, streamed", async () => {
  const root = new URL("../../", import.meta.url).pathname;
  const tmp = await Deno.makeTempDir();
  try {
    const cfg = parseConfig(
      `model_name_or_path: ${root}tests/io/fixtures/bytelevel_bpe\ndataset: medical_default_validation\n` +
        `dataset_dir: ${root}data\ntemplate: medical_inquiry\ncutoff_len: 1024\npacking: true\nval_size: 8\n` +
        `output_dir: ${tmp}/run\n`,
      "e2e.yaml",
    );
    const tok = await HfTokenizer.load(denoFs, cfg.model_name_or_path);
    const o = {
      ...sftDataOptions(cfg),
      template: getTemplate(cfg.template),
      tokenizer: tok,
      tokenizerFingerprint: await tokenizerFingerprint(denoFs, cfg.model_name_or_path),
    };
    const t0 = performance.now();
    const first = await prepareSft(denoFs, o);
    const second = await prepareSft(denoFs, o);
    assertEquals([first.reused, second.reused], [false, true]);
    assertEquals(first.index.meta.examples, { train: 64, validation: 8 });
    const train = await SplitReader.open(denoFs, first.dir, "train");
    assert(train.rows < 64, "packed");
    const loader = new ShardLoader(train, { batchSize: 2, seed: cfg.seed, padId: tok.eosTokenIds[0] });
    let examples = 0;
    for (;;) {
      const b = await loader.next();
      assert(b.seqLen <= 1024);
      for (let i = 0; i < b.segmentIds.length; i++) {
        if (b.positionIds[i] === 0 && b.segmentIds[i] > 0) examples++;
      }
      if (b.lastInEpoch) break;
    }
    assertEquals(examples, 64, "every example once per epoch");
    assert(performance.now() - t0 < 10_000);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("shards: the next batch is read ahead once (no double reads), and seek discards it", async () => {
  const mem = memoryFs(), data = rows(10);
  let reads = 0;
  const fs: FileSystem = { ...mem, readRange: (p, o, n) => (reads++, mem.readRange(p, o, n)) };
  const shards = await writeShards(fs, "s", "train", data, 1 << 20);
  await writeIndex(fs, "s", {
    version: 1,
    hash: "h",
    meta: {},
    splits: { train: { rows: 10, tokens: 0, shards } },
  });
  const loader = new ShardLoader(await SplitReader.open(fs, "s", "train"), { batchSize: 3, seed: 5 });
  await loader.next();
  await new Promise((r) => setTimeout(r, 0));
  assertEquals(reads, 1 + 2 * 3 + 2 * 3, "offset table, batch 1, and batch 2 read ahead");
  await loader.next();
  await new Promise((r) => setTimeout(r, 0));
  assertEquals(reads, 1 + 2 * 9, "batch 2 came from the read-ahead; batch 3 is being read");
  loader.seek({ epoch: 0, index: 0 });
  const b = await loader.next();
  assertEquals(b.position, { epoch: 0, index: 0 });
});
