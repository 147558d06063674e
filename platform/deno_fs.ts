/**
 * The Deno implementation of the file-system adapters src/ takes (src/ never calls Deno's file APIs):
 * src/io's {@link FileSystem}, src/data's text-oriented {@link DataFs} and src/train's
 * {@link CheckpointFs} (directory listing, recursive removal), in one object.
 *
 * It lives in platform/, beside src/ rather than inside it, because it is the one piece that is
 * Deno-only: cli/ and server/ (which must not import each other), tests and benches all pass it in.
 *
 * @example
 * import { denoFs } from "../platform/deno_fs.ts";
 * const weights = await openSafetensors(denoFs, "models/qwen2.5-0.5b");
 */
import { type FileSystem, joinPath } from "../src/io/fs.ts";
import type { DataFs } from "../src/data/fs.ts";
import type { CheckpointFs } from "../src/train/checkpoint.ts";

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

async function parentDir(p: string): Promise<void> {
  const i = p.lastIndexOf("/");
  if (i > 0) await Deno.mkdir(p.slice(0, i), { recursive: true });
}

/** Both adapters over Deno's file APIs; text writes create missing parent directories. */
export const denoFs: FileSystem & DataFs & CheckpointFs = {
  readFile: (p) => Deno.readFile(p),
  readRange,
  readText: (p) => Deno.readTextFile(p),
  exists: (p) => Deno.stat(p).then(() => true, () => false),
  size: (p) => Deno.stat(p).then((s) => s.size),
  writeFile: (p, d) => Deno.writeFile(p, d),
  rename: (a, b) => Deno.rename(a, b),
  mkdir: (p) => Deno.mkdir(p, { recursive: true }),
  join: joinPath,
  writeText: async (p, t) => {
    await parentDir(p);
    await Deno.writeTextFile(p, t);
  },
  appendText: async (p, t) => {
    await parentDir(p);
    await Deno.writeTextFile(p, t, { append: true });
  },
  readDir: async (d) => {
    try {
      return await Array.fromAsync(Deno.readDir(d), (e) => e.name);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return [];
      throw e;
    }
  },
  remove: (p) => Deno.remove(p, { recursive: true }).catch(() => {}),
};
