/**
 * A read-only {@link FileSystem} over HTTP, for the browser: a model folder served by any static file
 * server (or the Hugging Face Hub's `resolve/main/` URLs) opens with the same src/io calls as on disk.
 * `readRange` sends a `Range` request, so safetensors still stream tensor by tensor.
 *
 * @example
 * const fs = httpFs("https://example.org/models/");
 * const src = await openSafetensors(fs, "qwen2.5-0.5b"); // fetches only the headers
 */
import { type FileSystem, joinPath } from "./fs.ts";

/** `fetch` as the adapter uses it (pass a wrapper to add auth headers or retries). */
export type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

/**
 * Files under `base` (an absolute URL; paths are resolved against it, so "m/config.json" is
 * `${base}m/config.json`). Writes reject: the browser saves adapters through another adapter.
 */
export function httpFs(base: string, fetchImpl: Fetch = (u, i) => fetch(u, i)): FileSystem {
  const root = base.endsWith("/") ? base : base + "/";
  const url = (path: string) => new URL(path.replace(/^\/+/, ""), root).href;
  const get = async (path: string, init?: RequestInit): Promise<Response> => {
    const res = await fetchImpl(url(path), init);
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`${path}: HTTP ${res.status} ${res.statusText} from ${url(path)}`);
    }
    return res;
  };
  const readOnly = (what: string) => () =>
    Promise.reject(new Error(`${what}: the HTTP file system is read-only`));
  return {
    readFile: async (p) => new Uint8Array(await (await get(p)).arrayBuffer()),
    readText: async (p) => await (await get(p)).text(),
    async readRange(p, offset, length) {
      if (length === 0) return new Uint8Array(0);
      const res = await get(p, { headers: { Range: `bytes=${offset}-${offset + length - 1}` } });
      const body = new Uint8Array(await res.arrayBuffer());
      // A server that ignores Range answers 200 with the whole file: cut the range out of it.
      const bytes = res.status === 206 ? body : body.subarray(offset, offset + length);
      if (bytes.length !== length) {
        throw new Error(
          `${p}: asked for ${length} bytes at ${offset}, got ${bytes.length}: file shorter than expected`,
        );
      }
      return bytes;
    },
    async exists(p) {
      const res = await fetchImpl(url(p), { method: "HEAD" });
      return res.ok;
    },
    async size(p) {
      const res = await get(p, { method: "HEAD" });
      const n = Number(res.headers.get("content-length"));
      if (!res.headers.has("content-length") || !Number.isSafeInteger(n)) {
        throw new Error(`${p}: the server sent no Content-Length for ${url(p)}`);
      }
      return n;
    },
    writeFile: readOnly("writeFile"),
    rename: readOnly("rename"),
    mkdir: readOnly("mkdir"),
    join: joinPath,
  };
}
