/// <reference lib="dom" />
/**
 * A read-only {@link FileSystem} over HTTP that keeps every file it reads in the browser's Cache API,
 * so a page reload opens the model without downloading it again.
 *
 * Why whole files and not `Range` requests (as src/io/http_fs.ts does): the Cache API cannot store a
 * partial (206) response, and the model has to be downloaded whole anyway. A file is fetched once,
 * streamed straight into the cache (never held twice in memory), and then read back as a Blob whose
 * `slice()` serves each tensor's byte range — Chromium keeps large cached blobs on disk.
 *
 * Cache keys carry a version (`?v=` + the server's fingerprint of the model folder): a retrained
 * adapter under the same name gets a new version, its stale entries are dropped when the new ones land.
 * Where the Cache API is missing (an insecure origin) the files are kept in memory for the session.
 *
 * @example
 * const fs = cachedHttpFs(new URL("/models/", location.href).href, { version: { llama: "3f2a" } });
 * const m = await openModel(gpu, fs, "llama");
 */
import { type FileSystem, joinPath } from "../src/io/fs.ts";
import { type Fetch, httpFs } from "../src/io/http_fs.ts";

/** Progress of one file: from the network, or found in the cache (then loaded = total at once). */
export interface DownloadProgress {
  path: string;
  loaded: number;
  /** From Content-Length; null when the server sent none. */
  total: number | null;
  fromCache: boolean;
}

/** Options of {@link cachedHttpFs}. */
export interface CachedFsOptions {
  /** Cache API bucket (default "webtune-models"). */
  cacheName?: string;
  /** Version per top-level folder (the first path segment); part of every cache key below it. */
  version?: Record<string, string>;
  /** Called as bytes arrive (throttled to about 200 calls per file) and once per cache hit. */
  onDownload?: (p: DownloadProgress) => void;
  fetchImpl?: Fetch;
  /** The CacheStorage to use; null keeps files in memory only. Default: `globalThis.caches`. */
  caches?: CacheStorage | null;
}

/** Bytes that came from the network vs the cache since the file system was made. */
export interface CacheStats {
  networkBytes: number;
  cachedBytes: number;
  /** Paths downloaded (not found in the cache). */
  downloaded: string[];
}

/** The default Cache API bucket of the demo. */
export const MODEL_CACHE = "webtune-models";

/**
 * Files under `base` (an absolute URL ending in "/"), cached. Writes reject.
 */
export function cachedHttpFs(
  base: string,
  opts: CachedFsOptions = {},
): FileSystem & { stats: CacheStats } {
  const fetchImpl = opts.fetchImpl ?? ((u: string, i?: RequestInit) => fetch(u, i));
  const net = httpFs(base, fetchImpl);
  const root = base.endsWith("/") ? base : base + "/";
  const url = (path: string) => new URL(path.replace(/^\/+/, ""), root).href;
  const key = (path: string) => {
    const v = opts.version?.[path.replace(/^\/+/, "").split("/")[0]];
    return v ? `${url(path)}?v=${encodeURIComponent(v)}` : url(path);
  };
  const storage = opts.caches === undefined ? (globalThis.caches ?? null) : opts.caches;
  let cache: Promise<Cache | null> | null = null;
  // A cache that cannot be opened (private mode, quota, insecure origin) means memory only, not failure.
  const openCache = () =>
    cache ??= storage ? storage.open(opts.cacheName ?? MODEL_CACHE).catch(() => null) : Promise.resolve(null);
  const blobs = new Map<string, Promise<Blob>>();
  const stats: CacheStats = { networkBytes: 0, cachedBytes: 0, downloaded: [] };

  async function download(path: string, c: Cache | null): Promise<Blob> {
    const res = await fetchImpl(url(path));
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      throw new Error(`${path}: HTTP ${res.status} ${res.statusText} from ${url(path)}`);
    }
    const header = res.headers.get("content-length");
    const total = header === null ? null : Number(header);
    let loaded = 0, reported = 0;
    const step = Math.max(1 << 18, (total ?? 0) / 200);
    const counted = res.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, ctl) {
          loaded += chunk.byteLength;
          if (loaded - reported >= step) {
            reported = loaded;
            opts.onDownload?.({ path, loaded, total, fromCache: false });
          }
          ctl.enqueue(chunk);
        },
      }),
    );
    const headers = { "content-type": res.headers.get("content-type") ?? "application/octet-stream" };
    let blob: Blob;
    if (c) {
      try {
        await c.put(key(path), new Response(counted, { headers }));
      } catch (e) {
        // Quota exceeded (a 7B model is many GB) or a cut connection: this session gets the file
        // without caching it, from a fresh request.
        console.warn(`webtune: not caching ${path}: ${(e as Error).message}`);
        return await download(path, null);
      }
      const stored = await c.match(key(path));
      if (!stored) throw new Error(`${path}: the browser cache dropped the file right after storing it`);
      blob = await stored.blob();
      await dropOtherVersions(c, url(path), key(path));
    } else blob = await new Response(counted).blob();
    if (total !== null && blob.size !== total) {
      await c?.delete(key(path));
      throw new Error(`${path}: download cut short (${blob.size} of ${total} bytes); reload to retry`);
    }
    opts.onDownload?.({ path, loaded: blob.size, total: blob.size, fromCache: false });
    stats.networkBytes += blob.size;
    stats.downloaded.push(path);
    return blob;
  }

  const file = (path: string): Promise<Blob> => {
    const k = key(path);
    let p = blobs.get(k);
    if (!p) {
      p = (async () => {
        const c = await openCache();
        const hit = await c?.match(k);
        if (hit) {
          const blob = await hit.blob();
          stats.cachedBytes += blob.size;
          opts.onDownload?.({ path, loaded: blob.size, total: blob.size, fromCache: true });
          return blob;
        }
        return await download(path, c);
      })();
      // A failed download is not remembered: the next read tries again.
      p.catch(() => blobs.delete(k));
      blobs.set(k, p);
    }
    return p;
  };
  const known = async (path: string): Promise<boolean> =>
    blobs.has(key(path)) || !!(await (await openCache())?.match(key(path)));

  const readOnly = (what: string) => () => Promise.reject(new Error(`${what}: the model cache is read-only`));
  return {
    stats,
    readFile: async (p) => new Uint8Array(await (await file(p)).arrayBuffer()),
    readText: async (p) => await (await file(p)).text(),
    async readRange(p, offset, length) {
      const blob = await file(p);
      if (offset < 0 || length < 0 || offset + length > blob.size) {
        throw new Error(`${p}: cannot read ${length} bytes at ${offset}, the file has ${blob.size}`);
      }
      return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    },
    // A cached file exists and has its cached size; anything else asks the server (HEAD, no body).
    exists: async (p) => (await known(p)) || await net.exists(p),
    size: async (p) => (await known(p)) ? (await file(p)).size : await net.size(p),
    writeFile: readOnly("writeFile"),
    rename: readOnly("rename"),
    mkdir: readOnly("mkdir"),
    join: joinPath,
  };
}

/** Deletes the cache entries of `fileUrl` under any version other than `keep`. */
async function dropOtherVersions(c: Cache, fileUrl: string, keep: string): Promise<void> {
  for (const req of await c.keys()) {
    const u = new URL(req.url);
    if (req.url !== keep && u.origin + u.pathname === fileUrl) await c.delete(req);
  }
}

/** Removes every cached model file (the page's "clear cache" button). */
export async function clearModelCache(cacheName = MODEL_CACHE): Promise<boolean> {
  return globalThis.caches ? await globalThis.caches.delete(cacheName) : false;
}
