/**
 * The file-system adapter that src/data reads and writes through. `src/` never touches `Deno.*` file
 * APIs (it must bundle for the browser unchanged), so cli/ passes a Deno implementation and tests may
 * pass {@link memoryFs}.
 *
 * @example
 * const fs = memoryFs({ "a.jsonl": '{"x":1}\n' });
 * await fs.appendText("a.jsonl", '{"x":2}\n');
 */
export interface DataFs {
  /** Whole file as UTF-8; rejects when missing. */
  readText(path: string): Promise<string>;
  /** Create or replace. */
  writeText(path: string, text: string): Promise<void>;
  /** Append, creating the file when missing. */
  appendText(path: string, text: string): Promise<void>;
  /** True when the path exists. */
  exists(path: string): Promise<boolean>;
}

/** An in-memory {@link DataFs} (tests, the browser). `files` is live: inspect it after a run. */
export function memoryFs(initial: Record<string, string> = {}): DataFs & { files: Map<string, string> } {
  const files = new Map(Object.entries(initial));
  return {
    files,
    readText(path) {
      const t = files.get(path);
      return t === undefined ? Promise.reject(new Error(`${path}: no such file`)) : Promise.resolve(t);
    },
    writeText(path, text) {
      files.set(path, text);
      return Promise.resolve();
    },
    appendText(path, text) {
      files.set(path, (files.get(path) ?? "") + text);
      return Promise.resolve();
    },
    exists(path) {
      return Promise.resolve(files.has(path));
    },
  };
}
