/**
 * Binary SFT shards and a streaming, seeded, shuffling, resumable loader.
 *
 * A shard directory holds `index.json` (written LAST, so a directory without it is an unfinished write
 * and never reused) and per split `<split>-00000.bin`, … Each shard file is little-endian:
 *
 *   tokens  i32 × T | labels i32 × T | rowOffsets u32 × (R+1) | rowSegments u32 × (R+1) | segLens u32 × S
 *
 * `rowOffsets[r]` is the first token of row r; the row's packed examples have lengths
 * `segLens[rowSegments[r] .. rowSegments[r+1])`. The loader keeps only the small offset tables in memory
 * and reads each row's tokens with `readRange`, so datasets larger than RAM stream.
 */
import type { FileSystem } from "../io/fs.ts";
import { DataRng } from "./rng.ts";
import type { Row } from "./sft.ts";

/** Format version; bump when the layout or the tokenisation rules change (it is part of the hash). */
export const SHARD_VERSION = 1;

/** One shard file. */
export interface ShardInfo {
  file: string;
  rows: number;
  tokens: number;
  segments: number;
}

/** index.json. */
export interface ShardIndex {
  version: number;
  hash: string;
  /** What was hashed, readable (dataset names, template, cutoff, …) plus statistics. */
  meta: Record<string, unknown>;
  splits: Record<string, { rows: number; tokens: number; shards: ShardInfo[] }>;
}

if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
  throw new Error("shards: big-endian hosts are not supported");
}

/**
 * SHA-256 (hex) of a list of parts, each length-prefixed so ("ab","c") and ("a","bc") differ.
 *
 * @example
 * const key = await hashParts([datasetBytes, JSON.stringify(template), `cutoff=${cutoffLen}`]);
 */
export async function hashParts(parts: (string | Uint8Array)[]): Promise<string> {
  const enc = new TextEncoder();
  const bytes = parts.map((p) => typeof p === "string" ? enc.encode(p) : p);
  const all = new Uint8Array(bytes.reduce((n, b) => n + 8 + b.length, 0));
  let at = 0;
  for (const b of bytes) {
    new DataView(all.buffer).setFloat64(at, b.length, true);
    all.set(b, at + 8);
    at += 8 + b.length;
  }
  const digest = await crypto.subtle.digest("SHA-256", all);
  return [...new Uint8Array(digest)].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** Writes one split's rows as shard files of about `shardTokens` tokens each; returns their infos. */
export async function writeShards(
  fs: FileSystem,
  dir: string,
  split: string,
  rows: Row[],
  shardTokens = 8 << 20,
): Promise<ShardInfo[]> {
  await fs.mkdir(dir);
  const infos: ShardInfo[] = [];
  for (let start = 0; start < rows.length;) {
    let end = start, tokens = 0, segs = 0;
    while (end < rows.length && (end === start || tokens + rows[end].inputIds.length <= shardTokens)) {
      tokens += rows[end].inputIds.length;
      segs += rows[end].segments.length;
      end++;
    }
    const n = end - start;
    const buf = new ArrayBuffer(4 * (2 * tokens + 2 * (n + 1) + segs));
    const ids = new Int32Array(buf, 0, tokens), labels = new Int32Array(buf, 4 * tokens, tokens);
    const rowOff = new Uint32Array(buf, 8 * tokens, n + 1),
      rowSeg = new Uint32Array(buf, 4 * (2 * tokens + n + 1), n + 1);
    const segLens = new Uint32Array(buf, 4 * (2 * tokens + 2 * (n + 1)), segs);
    let t = 0, s = 0;
    for (let r = 0; r < n; r++) {
      const row = rows[start + r];
      if (
        row.segments.reduce((a, b) => a + b, 0) !== row.inputIds.length ||
        row.labels.length !== row.inputIds.length
      ) {
        throw new Error(
          `shards: row ${start + r}: segments/labels do not match ${row.inputIds.length} tokens`,
        );
      }
      rowOff[r] = t, rowSeg[r] = s;
      ids.set(row.inputIds, t), labels.set(row.labels, t);
      t += row.inputIds.length;
      for (const len of row.segments) segLens[s++] = len;
    }
    rowOff[n] = t, rowSeg[n] = s;
    const file = `${split}-${String(infos.length).padStart(5, "0")}.bin`;
    await fs.writeFile(fs.join(dir, file), new Uint8Array(buf));
    infos.push({ file, rows: n, tokens, segments: segs });
    start = end;
  }
  return infos;
}

/** Writes index.json last: after this the directory counts as complete. */
export async function writeIndex(fs: FileSystem, dir: string, index: ShardIndex): Promise<void> {
  const tmp = fs.join(dir, "index.json.tmp");
  await fs.writeFile(tmp, new TextEncoder().encode(JSON.stringify(index, null, 1)));
  await fs.rename(tmp, fs.join(dir, "index.json"));
}

/** The complete index of `dir`, or null when there is none (never written or interrupted). */
export async function readIndex(fs: FileSystem, dir: string): Promise<ShardIndex | null> {
  const p = fs.join(dir, "index.json");
  if (!(await fs.exists(p))) return null;
  try {
    return JSON.parse(await fs.readText(p)) as ShardIndex;
  } catch (e) {
    throw new Error(`${p}: not valid JSON (${(e as Error).message}); delete the directory to rebuild it`);
  }
}

function words(b: Uint8Array): ArrayBuffer {
  return b.byteOffset % 4 === 0 && b.byteLength === b.buffer.byteLength
    ? b.buffer as ArrayBuffer
    : b.slice().buffer;
}

/** Random access to one split's rows. */
export class SplitReader {
  readonly rows: number;
  readonly tokens: number;
  #starts: number[] = [];
  #tables = new Map<number, Promise<{ rowOff: Uint32Array; rowSeg: Uint32Array; segLens: Uint32Array }>>();

  private constructor(private fs: FileSystem, private dir: string, private shards: ShardInfo[]) {
    let n = 0;
    for (const s of shards) (this.#starts.push(n), n += s.rows);
    this.rows = n;
    this.tokens = shards.reduce((a, s) => a + s.tokens, 0);
  }

  /**
   * @example
   * const train = await SplitReader.open(fs, "output/.cache/sft/3fa2…", "train");
   */
  static async open(fs: FileSystem, dir: string, split: string): Promise<SplitReader> {
    const index = await readIndex(fs, dir);
    if (!index) throw new Error(`${dir}: no index.json (the shards were never finished)`);
    const s = index.splits[split];
    if (!s) throw new Error(`${dir}: no split "${split}" (has ${Object.keys(index.splits).join(", ")})`);
    return new SplitReader(fs, dir, s.shards);
  }

  #table(k: number) {
    let t = this.#tables.get(k);
    if (!t) {
      const s = this.shards[k], path = this.fs.join(this.dir, s.file);
      t = this.fs.readRange(path, 8 * s.tokens, 4 * (2 * (s.rows + 1) + s.segments)).then((b) => {
        const buf = words(b);
        return {
          rowOff: new Uint32Array(buf, 0, s.rows + 1),
          rowSeg: new Uint32Array(buf, 4 * (s.rows + 1), s.rows + 1),
          segLens: new Uint32Array(buf, 8 * (s.rows + 1), s.segments),
        };
      });
      this.#tables.set(k, t);
    }
    return t;
  }

  /** Row `i` (0-based over the whole split). */
  async row(i: number): Promise<Row> {
    if (!(i >= 0 && i < this.rows)) throw new Error(`row ${i} out of range (${this.rows} rows)`);
    let lo = 0, hi = this.shards.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#starts[mid] <= i) lo = mid;
      else hi = mid - 1;
    }
    const s = this.shards[lo], r = i - this.#starts[lo], path = this.fs.join(this.dir, s.file);
    const { rowOff, rowSeg, segLens } = await this.#table(lo);
    const [a, n] = [rowOff[r], rowOff[r + 1] - rowOff[r]];
    const [ids, labels] = await Promise.all([
      this.fs.readRange(path, 4 * a, 4 * n),
      this.fs.readRange(path, 4 * (s.tokens + a), 4 * n),
    ]);
    return {
      inputIds: new Int32Array(words(ids), 0, n),
      labels: new Int32Array(words(labels), 0, n),
      segments: [...segLens.subarray(rowSeg[r], rowSeg[r + 1])],
    };
  }
}

/** Where a loader is: epoch and rows already consumed in that epoch (saved in checkpoints). */
export interface LoaderPosition {
  epoch: number;
  index: number;
}

/** A padded batch, row-major [rows, seqLen]. Padding: token `padId`, label −100, position 0, segment 0. */
export interface Batch {
  rows: number;
  seqLen: number;
  inputIds: Int32Array;
  labels: Int32Array;
  positionIds: Int32Array;
  /** 1, 2, … per packed example within a row; 0 on padding (attend only within equal ids). */
  segmentIds: Int32Array;
  /** Position before this batch (resume here to get it again). */
  position: LoaderPosition;
  /** True when this batch ends its epoch (the last one may be short: HF's drop_last=False). */
  lastInEpoch: boolean;
}

/**
 * Streams batches in a seeded order: epoch e visits every row once in the permutation of
 * (seed, e); `seek(position)` resumes exactly where a checkpoint left off.
 *
 * @example
 * const loader = new ShardLoader(await SplitReader.open(fs, dir, "train"), { batchSize: 4, seed: 42, padId: 0 });
 * loader.seek(state.dataPosition);
 * const batch = await loader.next();
 */
export class ShardLoader {
  #pos: LoaderPosition = { epoch: 0, index: 0 };
  #order: { epoch: number; perm: Uint32Array } | null = null;
  #ahead: { at: LoaderPosition; batch: Promise<Batch> } | null = null;

  constructor(
    readonly reader: SplitReader,
    readonly o: { batchSize: number; seed: number; shuffle?: boolean; padId?: number },
  ) {
    if (reader.rows === 0) throw new Error("ShardLoader: the split has no rows");
    if (!(o.batchSize >= 1)) throw new Error(`ShardLoader: batchSize must be ≥ 1, got ${o.batchSize}`);
  }

  /** Current position (a copy). */
  get position(): LoaderPosition {
    return { ...this.#pos };
  }

  /** Continue from a saved position. */
  seek(p: LoaderPosition): void {
    if (!(p.index >= 0 && p.index <= this.reader.rows && p.epoch >= 0)) {
      throw new Error(`ShardLoader: bad position ${JSON.stringify(p)} for ${this.reader.rows} rows`);
    }
    this.#pos = { ...p };
    this.#ahead = null;
  }

  /** The visiting order of an epoch (identity when shuffle is false). */
  order(epoch: number): Uint32Array {
    if (this.#order?.epoch === epoch) return this.#order.perm;
    const perm = new Uint32Array(this.reader.rows).map((_, i) => i);
    if (this.o.shuffle ?? true) {
      const rng = new DataRng((this.o.seed * 1_000_003 + epoch) >>> 0);
      for (let i = perm.length - 1; i > 0; i--) {
        const j = Math.floor(rng.next() * (i + 1));
        [perm[i], perm[j]] = [perm[j], perm[i]];
      }
    }
    this.#order = { epoch, perm };
    return perm;
  }

  /**
   * The next batch; rolls into the next epoch after a (possibly short) last batch. The batch after it
   * is read in the background (its disk reads overlap the caller's GPU work); `seek` discards it.
   */
  async next(): Promise<Batch> {
    let start = this.#pos;
    if (start.index >= this.reader.rows) start = { epoch: start.epoch + 1, index: 0 };
    const pending = this.#ahead?.at.epoch === start.epoch && this.#ahead.at.index === start.index
      ? this.#ahead.batch
      : this.#build(start);
    const batch = await pending;
    this.#pos = { epoch: batch.position.epoch, index: batch.position.index + batch.rows };
    const at = batch.lastInEpoch ? { epoch: batch.position.epoch + 1, index: 0 } : this.position;
    const ahead = this.#build(at);
    ahead.catch(() => {}); // a failed read-ahead surfaces when that batch is asked for
    this.#ahead = { at, batch: ahead };
    return batch;
  }

  async #build(position: LoaderPosition): Promise<Batch> {
    const perm = this.order(position.epoch);
    const end = Math.min(position.index + this.o.batchSize, this.reader.rows);
    const rows = await Promise.all([...perm.subarray(position.index, end)].map((i) => this.reader.row(i)));
    const seqLen = Math.max(...rows.map((r) => r.inputIds.length));
    const n = rows.length;
    const b: Batch = {
      rows: n,
      seqLen,
      inputIds: new Int32Array(n * seqLen).fill(this.o.padId ?? 0),
      labels: new Int32Array(n * seqLen).fill(-100),
      positionIds: new Int32Array(n * seqLen),
      segmentIds: new Int32Array(n * seqLen),
      position,
      lastInEpoch: end === this.reader.rows,
    };
    rows.forEach((r, k) => {
      b.inputIds.set(r.inputIds, k * seqLen);
      b.labels.set(r.labels, k * seqLen);
      let at = k * seqLen;
      r.segments.forEach((len, s) => {
        for (let p = 0; p < len; p++, at++) (b.positionIds[at] = p, b.segmentIds[at] = s + 1);
      });
    });
    return b;
  }
}
