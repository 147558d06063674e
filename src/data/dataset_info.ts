/**
 * Registration of dataset files in LLaMA-Factory's `dataset_info.json`: one entry per name with
 * `file_name` (relative to the file's directory), `formatting` and the column / tag mapping.
 */
import type { DataFs } from "./fs.ts";
import type { Format } from "./formats.ts";

/** One dataset_info.json entry (the fields we write; others in an existing file are kept). */
export interface DatasetInfoEntry {
  file_name: string;
  formatting: "alpaca" | "sharegpt";
  columns: Record<string, string>;
  tags?: Record<string, string>;
  [extra: string]: unknown;
}

/** The entry LLaMA-Factory needs to read a file of the given format. */
export function entryFor(
  fileName: string,
  format: Format,
  o: { system?: boolean; history?: boolean } = {},
): DatasetInfoEntry {
  if (format === "alpaca") {
    const columns: Record<string, string> = { prompt: "instruction", query: "input", response: "output" };
    if (o.system) columns.system = "system";
    if (o.history) columns.history = "history";
    return { file_name: fileName, formatting: "alpaca", columns };
  }
  if (format === "sharegpt") {
    const columns: Record<string, string> = { messages: "conversations" };
    if (o.system) columns.system = "system";
    return { file_name: fileName, formatting: "sharegpt", columns };
  }
  // OpenAI messages are sharegpt with role/content tags (LLaMA-Factory's documented mapping).
  return {
    file_name: fileName,
    formatting: "sharegpt",
    columns: { messages: "messages" },
    tags: {
      role_tag: "role",
      content_tag: "content",
      user_tag: "user",
      assistant_tag: "assistant",
      system_tag: "system",
    },
  };
}

/** `to` relative to the directory of `infoPath` (both relative to the same root, "/" separated). */
export function relativeTo(infoPath: string, to: string): string {
  const dir = infoPath.includes("/") ? infoPath.slice(0, infoPath.lastIndexOf("/")).split("/") : [];
  const parts = to.split("/");
  let i = 0;
  while (i < dir.length && i < parts.length - 1 && dir[i] === parts[i]) i++;
  return [...Array(dir.length - i).fill(".."), ...parts.slice(i)].join("/");
}

/**
 * Adds or replaces entries in a dataset_info.json (created when missing), keeping every other entry.
 *
 * @example
 * await registerDatasets(fs, "data/dataset_info.json", { medical_default: entryFor("default/train.json", "alpaca") });
 */
export async function registerDatasets(
  fs: DataFs,
  infoPath: string,
  entries: Record<string, DatasetInfoEntry>,
): Promise<void> {
  let info: Record<string, unknown> = {};
  if (await fs.exists(infoPath)) {
    try {
      info = JSON.parse(await fs.readText(infoPath));
    } catch (e) {
      throw new Error(`${infoPath}: not valid JSON (${(e as Error).message}); fix or remove it`);
    }
    if (!info || typeof info !== "object" || Array.isArray(info)) {
      throw new Error(`${infoPath}: expected a JSON object`);
    }
  }
  Object.assign(info, entries);
  await fs.writeText(infoPath, JSON.stringify(info, null, 2) + "\n");
}
