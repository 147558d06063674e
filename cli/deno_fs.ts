/**
 * The Deno implementation of src/io's {@link FileSystem}, handed to src/io by cli/ entry points.
 *
 * @example
 * import { denoFs } from "./deno_fs.ts";
 * const weights = await openSafetensors(denoFs, "models/qwen2.5-0.5b");
 */
import { type FileSystem, joinPath } from "../src/io/fs.ts";

/** Reads exactly `length` bytes at `offset`: `read` may return fewer bytes than asked for. */
async function readRange(path: string, offset: number, length: number): Promise<Uint8Array> {
  const file = await Deno.open(path, { read: true });
  try {
    await file.seek(offset, Deno.SeekMode.Start);
    const out = new Uint8Array(length);
    let got = 0;
    while (got < length) {
      const n = await file.read(out.subarray(got));
      if (n === null) throw new Error(`${path}: cannot read ${length} bytes at ${offset}: end of file`);
      got += n;
    }
    return out;
  } finally {
    file.close();
  }
}

/** {@link FileSystem} over Deno's file APIs. */
export const denoFs: FileSystem = {
  readFile: (p) => Deno.readFile(p),
  readRange,
  readText: (p) => Deno.readTextFile(p),
  exists: (p) => Deno.stat(p).then(() => true, () => false),
  size: (p) => Deno.stat(p).then((s) => s.size),
  writeFile: (p, d) => Deno.writeFile(p, d),
  rename: (a, b) => Deno.rename(a, b),
  mkdir: (p) => Deno.mkdir(p, { recursive: true }),
  join: joinPath,
};
