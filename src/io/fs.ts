/**
 * The file-system adapter that src/io reads model folders through. `src/` never touches `Deno.*` file
 * APIs (it must bundle for the browser unchanged): cli/ and server/ pass `denoFs` (platform/deno_fs.ts), tests and the
 * browser pass {@link memoryFs}.
 *
 * @example
 * const fs = memoryFs({ "m/config.json": '{"model_type":"llama"}' });
 * const text = await fs.readText(fs.join("m", "config.json"));
 */
export interface FileSystem {
  /** Whole file; rejects when missing. */
  readFile(path: string): Promise<Uint8Array>;
  /** `length` bytes from byte `offset` (used to stream one tensor at a time); rejects past EOF. */
  readRange(path: string, offset: number, length: number): Promise<Uint8Array>;
  /** Whole file as UTF-8; rejects when missing. */
  readText(path: string): Promise<string>;
  /** True when the path exists (file or directory). */
  exists(path: string): Promise<boolean>;
  /** Size in bytes; rejects when missing. */
  size(path: string): Promise<number>;
  /** Create or replace. Writers in src/io write `path.tmp` and then rename it over `path`. */
  writeFile(path: string, data: Uint8Array): Promise<void>;
  /** Move a file, replacing `to`. */
  rename(from: string, to: string): Promise<void>;
  /** Create a directory and its parents; no error when it exists. */
  mkdir(path: string): Promise<void>;
  /** Join path parts with "/" (no "." / ".." resolution). */
  join(...parts: string[]): string;
}

/** POSIX-style join shared by the adapters: drops empty parts and duplicate slashes (URLs keep "://"). */
export function joinPath(...parts: string[]): string {
  const kept = parts.filter((p) => p !== "");
  if (kept.length === 0) return "";
  const joined = kept.join("/");
  // Keep a URL's "scheme://" intact; collapse every other run of slashes.
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(joined)?.[0] ?? "";
  const rest = joined.slice(scheme.length).replace(/\/{2,}/g, "/");
  if (scheme) return scheme + rest;
  return rest.length > 1 ? rest.replace(/\/$/, "") : rest;
}

/** Strip a trailing slash and any leading "./" so "m/", "./m" and "m" name the same memory entry. */
function norm(path: string): string {
  let p = path.replace(/\/{2,}/g, "/");
  while (p.startsWith("./")) p = p.slice(2);
  return p.length > 1 ? p.replace(/\/$/, "") : p;
}

/**
 * An in-memory {@link FileSystem} for tests and the browser. Strings are stored as UTF-8. `files` is
 * live: inspect or change it after a run. Directories exist implicitly (any file below them) or through
 * `mkdir`.
 *
 * @example
 * const fs = memoryFs({ "a/b.bin": new Uint8Array([1, 2, 3]) });
 * await fs.readRange("a/b.bin", 1, 2); // Uint8Array [2, 3]
 */
export function memoryFs(
  initial: Record<string, Uint8Array | string> = {},
): FileSystem & { files: Map<string, Uint8Array> } {
  const enc = new TextEncoder();
  const files = new Map<string, Uint8Array>();
  const dirs = new Set<string>();
  for (const [k, v] of Object.entries(initial)) files.set(norm(k), typeof v === "string" ? enc.encode(v) : v);
  const get = (path: string): Uint8Array => {
    const f = files.get(norm(path));
    if (f === undefined) throw new Error(`${path}: no such file`);
    return f;
  };
  const isDir = (path: string): boolean => {
    const p = norm(path);
    if (dirs.has(p)) return true;
    for (const k of files.keys()) if (k.startsWith(p + "/")) return true;
    return false;
  };
  // Run `fn` inside a promise so a missing file is a rejection, as with the Deno adapter.
  const later = <T>(fn: () => T): Promise<T> => new Promise((resolve) => resolve(fn()));
  return {
    files,
    readFile: (path) => later(() => get(path).slice()),
    readRange: (path, offset, length) =>
      later(() => {
        const f = get(path);
        if (offset < 0 || length < 0 || offset + length > f.length) {
          throw new Error(`${path}: cannot read ${length} bytes at ${offset}, the file has ${f.length}`);
        }
        return f.slice(offset, offset + length);
      }),
    readText: (path) => later(() => new TextDecoder().decode(get(path))),
    exists: (path) => later(() => files.has(norm(path)) || isDir(path)),
    size: (path) => later(() => get(path).length),
    writeFile: (path, data) => later(() => void files.set(norm(path), data.slice())),
    rename: (from, to) =>
      later(() => {
        const f = get(from);
        files.delete(norm(from));
        files.set(norm(to), f);
      }),
    mkdir: (path) =>
      later(() => {
        const parts = norm(path).split("/");
        for (let i = 1; i <= parts.length; i++) dirs.add(parts.slice(0, i).join("/"));
      }),
    join: joinPath,
  };
}
