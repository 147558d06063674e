/**
 * safetensors writer (re-exported by safetensors.ts): an 8-byte little-endian header length, the JSON
 * header padded with spaces to a multiple of 8, then the tensors back to back, widest dtype first so every
 * tensor starts aligned to its element size without gaps (the reference library rejects gaps).
 */
import type { FileSystem } from "./fs.ts";
import { DTYPE_SIZE, f32ToBf16 } from "./dtypes.ts";

/** One tensor to write. F32 takes f32 values; F16 and BF16 take f32/f16 values or raw 16-bit bits. */
export interface TensorToWrite {
  name: string;
  dtype: "F32" | "F16" | "BF16";
  shape: number[];
  data: Float32Array | Float16Array | Uint16Array;
}

function encode(t: TensorToWrite): Uint8Array {
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (t.data.length !== n) {
    throw new Error(`tensor "${t.name}": ${t.data.length} values for shape [${t.shape}] (${n})`);
  }
  let out: Float32Array | Float16Array | Uint16Array;
  if (t.dtype === "F32") {
    if (t.data instanceof Uint16Array) {
      throw new Error(`tensor "${t.name}": F32 needs float values, got Uint16Array bits`);
    }
    out = t.data instanceof Float32Array ? t.data : new Float32Array(t.data);
  } else if (t.data instanceof Uint16Array) out = t.data; // already the dtype's bits
  else if (t.dtype === "F16") out = t.data instanceof Float16Array ? t.data : new Float16Array(t.data);
  else out = f32ToBf16(t.data instanceof Float32Array ? t.data : new Float32Array(t.data));
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Bytes of one safetensors file: header padded with spaces to 8 bytes, data sorted widest dtype first. */
function serialize(tensors: TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  // Widest first keeps every tensor aligned to its element size without gaps between tensors.
  const sorted = [...tensors].sort((a, b) =>
    DTYPE_SIZE[b.dtype] - DTYPE_SIZE[a.dtype] || (a.name < b.name ? -1 : 1)
  );
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  const blobs: Uint8Array[] = [];
  let pos = 0;
  for (const t of sorted) {
    if (t.name in header) throw new Error(`tensor "${t.name}" is given twice`);
    const b = encode(t);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [pos, pos + b.length] };
    blobs.push(b);
    pos += b.length;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = new TextEncoder().encode(JSON.stringify(header) + " ".repeat(pad));
  const out = new Uint8Array(8 + json.length + pos);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const b of blobs) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

async function writeAtomic(fs: FileSystem, path: string, data: Uint8Array): Promise<void> {
  await fs.writeFile(path + ".tmp", data);
  await fs.rename(path + ".tmp", path);
}

/**
 * Write a safetensors checkpoint. A `path` ending in `.safetensors` is one file. Any other path is a
 * directory: `model.safetensors`, or — when `opts.maxShardBytes` is set and the data exceeds it —
 * `model-0000i-of-0000n.safetensors` shards plus `model.safetensors.index.json`. Files are written to a
 * temporary name and renamed, so a crash never leaves a half-written checkpoint under the real name.
 *
 * @example
 * await writeSafetensors(fs, "out/adapter_model.safetensors",
 *   [{ name: "w", dtype: "F32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }]);
 */
export async function writeSafetensors(
  fs: FileSystem,
  path: string,
  tensors: TensorToWrite[],
  metadata?: Record<string, string>,
  opts: { maxShardBytes?: number } = {},
): Promise<void> {
  if (path.endsWith(".safetensors")) {
    if (path.includes("/")) await fs.mkdir(path.slice(0, path.lastIndexOf("/")));
    return writeAtomic(fs, path, serialize(tensors, metadata));
  }
  await fs.mkdir(path);
  const bytesOf = (t: TensorToWrite) => t.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[t.dtype];
  const total = tensors.reduce((s, t) => s + bytesOf(t), 0);
  const max = opts.maxShardBytes;
  if (max === undefined || total <= max) {
    return writeAtomic(fs, fs.join(path, "model.safetensors"), serialize(tensors, metadata));
  }
  const groups: TensorToWrite[][] = [[]];
  let used = 0;
  for (const t of tensors) {
    if (used > 0 && used + bytesOf(t) > max) {
      groups.push([]);
      used = 0;
    }
    groups[groups.length - 1].push(t);
    used += bytesOf(t);
  }
  const pad = (i: number) => String(i).padStart(5, "0");
  const weightMap: Record<string, string> = {};
  for (let i = 0; i < groups.length; i++) {
    const name = `model-${pad(i + 1)}-of-${pad(groups.length)}.safetensors`;
    await writeAtomic(fs, fs.join(path, name), serialize(groups[i], metadata));
    for (const t of groups[i]) weightMap[t.name] = name;
  }
  const index = { metadata: { ...metadata, total_size: total }, weight_map: weightMap };
  await writeAtomic(
    fs,
    fs.join(path, "model.safetensors.index.json"),
    new TextEncoder().encode(JSON.stringify(index, null, 2)),
  );
}
