/**
 * safetensors reader (the writer is safetensors_writer.ts, re-exported here). A file is an 8-byte
 * little-endian header length N, N bytes of JSON (`{name: {dtype, shape, data_offsets: [begin, end]},
 * "__metadata__": {k: v}}`, offsets relative to the byte after the header), then the data. A model folder holds `model.safetensors`, or shards named
 * by `model.safetensors.index.json` (`{metadata, weight_map: {tensor: shard file}}`).
 *
 * Opening reads only the headers; `read()` fetches one tensor with `readRange`, so a 14 GB checkpoint is
 * streamed to the GPU tensor by tensor and never sits in host memory whole.
 */
import type { FileSystem } from "./fs.ts";
import { DTYPE_SIZE, isDType, SAFETENSORS_DTYPES, type SafetensorsDType, toF16, toF32 } from "./dtypes.ts";

export { DTYPE_SIZE, SAFETENSORS_DTYPES, type SafetensorsDType } from "./dtypes.ts";
export { type TensorToWrite, writeSafetensors } from "./safetensors_writer.ts";

/** Where one tensor's bytes live: `offset` is absolute in `file` (header included). */
export interface TensorInfo {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  file: string;
  offset: number;
  byteLength: number;
}

/** The tensors of one checkpoint (one file or all shards), read one at a time. */
export interface WeightSource {
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  readonly metadata: Record<string, string>;
  /**
   * One tensor's values converted to f32 or f16, read with readRange so only that tensor is in memory.
   * Converting to f16 throws a clear error naming the tensor when a value is outside f16 range
   * (|x| > 65504) unless `clamp` (saturate to ±65504).
   *
   * @example
   * const w = await src.read("model.embed_tokens.weight", "f16");
   */
  read(name: string, as: "f32" | "f16", opts?: { clamp?: boolean }): Promise<Float32Array | Float16Array>;
  /** The tensor's stored bytes, unconverted (little-endian, its own dtype). */
  readBytes(name: string): Promise<Uint8Array>;
}

/** A header larger than this is certainly not a safetensors file (the reference library's limit). */
const MAX_HEADER = 100_000_000;

/** Parse and validate one file's header. Every failure is one line naming the file (and tensor). */
async function readHeader(
  fs: FileSystem,
  file: string,
): Promise<{ tensors: TensorInfo[]; metadata: Record<string, string> }> {
  const size = await fs.size(file).catch(() => {
    throw new Error(`${file}: no such file`);
  });
  if (size < 8) throw new Error(`${file}: truncated: ${size} bytes, shorter than the 8-byte header length`);
  const lenBytes = await fs.readRange(file, 0, 8);
  const n64 = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER)) {
    throw new Error(`${file}: header length ${n64} is not plausible (not a safetensors file?)`);
  }
  const n = Number(n64);
  if (8 + n > size) {
    throw new Error(
      `${file}: header length ${n} runs past the end of the file (${size} bytes): truncated or not safetensors`,
    );
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(await fs.readRange(file, 8, n)));
  } catch (e) {
    throw new Error(`${file}: header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new Error(`${file}: header is not a JSON object`);
  }
  const dataStart = 8 + n, dataLen = size - dataStart;
  const metadata: Record<string, string> = {};
  const tensors: TensorInfo[] = [];
  const spans: [number, number, string][] = [];
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof v !== "object" || v === null) throw new Error(`${file}: __metadata__ is not an object`);
      for (const [k, s] of Object.entries(v)) {
        if (typeof s !== "string") throw new Error(`${file}: __metadata__.${k} is not a string`);
        metadata[k] = s;
      }
      continue;
    }
    const where = `${file}: tensor "${name}"`;
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== "object" || e === null) throw new Error(`${where}: entry is not an object`);
    if (!isDType(e.dtype)) {
      throw new Error(
        `${where}: unknown dtype ${JSON.stringify(e.dtype)} (known: ${SAFETENSORS_DTYPES.join(", ")})`,
      );
    }
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`${where}: data_offsets ${JSON.stringify(off)} is not [begin, end]`);
    }
    const [begin, end] = off as [number, number];
    if (begin > end) throw new Error(`${where}: data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataLen) {
      throw new Error(
        `${where}: data_offsets [${begin}, ${end}] run past the end of the data (${dataLen} bytes): truncated file?`,
      );
    }
    const want = (shape as number[]).reduce((a, b) => a * b, 1) * DTYPE_SIZE[e.dtype];
    if (end - begin !== want) {
      throw new Error(
        `${where}: data_offsets [${begin}, ${end}] hold ${
          end - begin
        } bytes but ${e.dtype}[${shape}] needs ${want}`,
      );
    }
    tensors.push({
      name,
      dtype: e.dtype,
      shape: shape as number[],
      file,
      offset: dataStart + begin,
      byteLength: want,
    });
    if (want > 0) spans.push([begin, end, name]);
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i][0] < spans[i - 1][1]) {
      throw new Error(
        `${file}: tensor "${spans[i][2]}" [${spans[i][0]}, ${spans[i][1]}] overlaps tensor "${
          spans[i - 1][2]
        }" [${spans[i - 1][0]}, ${spans[i - 1][1]}]`,
      );
    }
  }
  return { tensors, metadata };
}

class SafetensorsSource implements WeightSource {
  constructor(
    private readonly fs: FileSystem,
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    readonly metadata: Record<string, string>,
  ) {}

  private info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`no tensor "${name}" in the checkpoint (${this.tensors.size} tensors)`);
    return t;
  }

  readBytes(name: string): Promise<Uint8Array> {
    const t = this.info(name);
    return this.fs.readRange(t.file, t.offset, t.byteLength);
  }

  async read(
    name: string,
    as: "f32" | "f16",
    opts: { clamp?: boolean } = {},
  ): Promise<Float32Array | Float16Array> {
    const t = this.info(name);
    const bytes = await this.readBytes(name);
    if (as === "f32") return toF32(bytes, t.dtype);
    return toF16(bytes, t.dtype, opts.clamp ?? false, (v, i) =>
      new Error(
        `${t.file}: tensor "${name}" (${t.dtype}) holds ${v} at element ${i}, outside the f16 range ±65504; ` +
          `load it as f32, or pass clamp to saturate`,
      ));
  }
}

/**
 * Open a checkpoint: a directory holding `model.safetensors` or `model.safetensors.index.json` + shards,
 * a path to an index file, or a path to one `.safetensors` file. Validates every header (JSON, offsets
 * inside the file, no overlaps, known dtype, byteLength = prod(shape)·size) and that the index's weight
 * map agrees with the shards; errors are one line naming the file and tensor.
 *
 * @example
 * const src = await openSafetensors(denoFs, "models/tiny-llama");
 * for (const t of src.tensors.values()) console.log(t.name, t.dtype, t.shape);
 */
export async function openSafetensors(fs: FileSystem, path: string): Promise<WeightSource> {
  if (path.endsWith(".safetensors")) {
    const h = await readHeader(fs, path);
    return new SafetensorsSource(fs, new Map(h.tensors.map((t) => [t.name, t])), h.metadata);
  }
  let index = path;
  if (!path.endsWith(".json")) {
    index = fs.join(path, "model.safetensors.index.json");
    if (!(await fs.exists(index))) {
      const single = fs.join(path, "model.safetensors");
      if (await fs.exists(single)) return openSafetensors(fs, single);
      throw new Error(
        `${path}: no model.safetensors or model.safetensors.index.json (is this a model folder?)`,
      );
    }
  }
  return openSharded(fs, index);
}

async function openSharded(fs: FileSystem, index: string): Promise<WeightSource> {
  const dir = index.includes("/") ? index.slice(0, index.lastIndexOf("/")) : "";
  let parsed: { metadata?: Record<string, unknown>; weight_map?: Record<string, unknown> };
  try {
    parsed = JSON.parse(await fs.readText(index));
  } catch (e) {
    throw new Error(`${index}: ${(e as Error).message}`);
  }
  const map = parsed?.weight_map;
  if (typeof map !== "object" || map === null) throw new Error(`${index}: no "weight_map" object`);
  const shards = new Set<string>();
  for (const [name, f] of Object.entries(map)) {
    if (typeof f !== "string") throw new Error(`${index}: weight_map["${name}"] is not a file name`);
    shards.add(f);
  }
  const tensors = new Map<string, TensorInfo>();
  const metadata: Record<string, string> = {};
  for (const shard of shards) {
    const file = dir ? fs.join(dir, shard) : shard;
    if (!(await fs.exists(file))) throw new Error(`${index}: shard ${shard} is missing (${file})`);
    const h = await readHeader(fs, file);
    Object.assign(metadata, h.metadata);
    for (const t of h.tensors) {
      const prev = tensors.get(t.name);
      if (prev) throw new Error(`${file}: tensor "${t.name}" is also in ${prev.file}`);
      tensors.set(t.name, t);
    }
  }
  for (const [name, shard] of Object.entries(map)) {
    const t = tensors.get(name);
    if (!t || t.file !== (dir ? fs.join(dir, shard as string) : shard)) {
      throw new Error(`${index}: weight_map puts "${name}" in ${shard}, but that shard has no such tensor`);
    }
  }
  for (const [k, v] of Object.entries(parsed.metadata ?? {})) {
    metadata[k] = typeof v === "string" ? v : JSON.stringify(v);
  }
  return new SafetensorsSource(fs, tensors, metadata);
}
