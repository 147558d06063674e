/**
 * Reading LLaMA-Factory datasets: a `dataset_info.json` entry (file_name, formatting alpaca|sharegpt,
 * columns, tags) → its records → conversations (template messages), and the seeded validation split.
 * Tokenisation, packing and shards are in sft.ts.
 */
import { checkRecord, type Format, readRecords } from "./formats.ts";
import type { Message, Template } from "./templates.ts";
import { DataRng } from "./rng.ts";

/** What reading datasets needs from a file system (src/io's FileSystem and src/data's DataFs fit). */
export interface TextFs {
  readText(path: string): Promise<string>;
  exists(path: string): Promise<boolean>;
}

/** One dataset_info.json entry as LLaMA-Factory reads it (the parts we support). */
export interface DatasetEntry {
  name: string;
  /** Path of the data file (dataset_dir joined with file_name). */
  path: string;
  formatting: "alpaca" | "sharegpt";
  columns: Record<string, string>;
  tags: Record<string, string>;
  /** The entry as written (hashed into the shard key). */
  raw: Record<string, unknown>;
}

const ALPACA_COLUMNS = {
  prompt: "instruction",
  query: "input",
  response: "output",
  system: "system",
  history: "history",
};
const SHAREGPT_COLUMNS = { messages: "conversations", system: "system", tools: "tools" };
const SHAREGPT_TAGS = {
  role_tag: "from",
  content_tag: "value",
  user_tag: "human",
  assistant_tag: "gpt",
  observation_tag: "observation",
  function_tag: "function_call",
  system_tag: "system",
};

/**
 * Reads the entry `name` of `<datasetDir>/dataset_info.json`. Hub / script datasets are refused with a
 * clear message (there is no network access to a hub here): download the file and point file_name at it.
 */
export async function readDatasetEntry(fs: TextFs, datasetDir: string, name: string): Promise<DatasetEntry> {
  const infoPath = `${datasetDir}/dataset_info.json`;
  if (!(await fs.exists(infoPath))) {
    throw new Error(`${infoPath}: not found (dataset_dir is "${datasetDir}")`);
  }
  let info: Record<string, unknown>;
  try {
    info = JSON.parse(await fs.readText(infoPath));
  } catch (e) {
    throw new Error(`${infoPath}: not valid JSON (${(e as Error).message})`);
  }
  const e = info?.[name] as Record<string, unknown> | undefined;
  if (!e || typeof e !== "object") {
    throw new Error(`${infoPath}: no dataset "${name}" (known: ${Object.keys(info ?? {}).join(", ")})`);
  }
  for (const k of ["hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name"]) {
    if (k in e && !e.file_name) {
      throw new Error(`${infoPath}: ${name}: ${k} datasets are not supported; use file_name`);
    }
  }
  if (typeof e.file_name !== "string" || !e.file_name) {
    throw new Error(`${infoPath}: ${name}: file_name: expected a string`);
  }
  const formatting = (e.formatting ?? "alpaca") as string;
  if (formatting !== "alpaca" && formatting !== "sharegpt") {
    throw new Error(
      `${infoPath}: ${name}: formatting: expected alpaca or sharegpt, got ${JSON.stringify(formatting)}`,
    );
  }
  if (e.ranking) throw new Error(`${infoPath}: ${name}: ranking (preference) datasets are not SFT data`);
  const columns = { ...(formatting === "alpaca" ? ALPACA_COLUMNS : SHAREGPT_COLUMNS), ...(e.columns ?? {}) };
  const tags = { ...SHAREGPT_TAGS, ...(e.tags ?? {}) };
  return { name, path: `${datasetDir}/${e.file_name}`, formatting, columns, tags, raw: e };
}

/** openai-style content may be a list of parts; the text parts are joined. */
function text(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (Array.isArray(v)) return v.map((p) => (p as { text?: string })?.text ?? "").join("");
  return undefined;
}

/** One record → a conversation, through the entry's columns and tags (LLaMA-Factory's converters). */
export function recordToMessages(entry: DatasetEntry, rec: Record<string, unknown>): Message[] {
  const c = entry.columns,
    need = (col: string): string => {
      const v = text(rec[col]);
      if (v === undefined) throw new Error(`${col}: expected a string`);
      return v;
    };
  const msgs: Message[] = [];
  const system = c.system && typeof rec[c.system] === "string" ? rec[c.system] as string : "";
  if (entry.formatting === "alpaca") {
    if (system) msgs.push({ role: "system", content: system });
    const history = c.history ? rec[c.history] : undefined;
    if (Array.isArray(history)) {
      for (const [i, h] of history.entries()) {
        if (!Array.isArray(h) || typeof h[0] !== "string" || typeof h[1] !== "string") {
          throw new Error(`${c.history}[${i}]: expected a [query, response] pair of strings`);
        }
        msgs.push({ role: "user", content: h[0] }, { role: "assistant", content: h[1] });
      }
    }
    const parts = [need(c.prompt), c.query && typeof rec[c.query] === "string" ? rec[c.query] as string : ""];
    msgs.push({ role: "user", content: parts.filter((p) => p !== "").join("\n") });
    msgs.push({ role: "assistant", content: need(c.response) });
    return msgs;
  }
  const turns = rec[c.messages];
  if (!Array.isArray(turns)) throw new Error(`${c.messages}: expected a list of turns`);
  const t = entry.tags;
  const roles: Record<string, Message["role"]> = {
    [t.user_tag]: "user",
    [t.observation_tag]: "user",
    [t.assistant_tag]: "assistant",
    [t.function_tag]: "assistant",
    [t.system_tag]: "system",
  };
  if (system) msgs.push({ role: "system", content: system });
  for (const [i, turn] of turns.entries()) {
    const tag = (turn as Record<string, unknown>)?.[t.role_tag];
    const role = roles[String(tag)];
    if (!role || (role === "system" && (i > 0 || system))) {
      throw new Error(`${c.messages}[${i}].${t.role_tag}: unexpected role ${JSON.stringify(tag)}`);
    }
    const content = text((turn as Record<string, unknown>)[t.content_tag]);
    if (content === undefined) throw new Error(`${c.messages}[${i}].${t.content_tag}: expected a string`);
    msgs.push({ role, content });
  }
  return msgs;
}

/** The default column layout of a format, where src/data's validator knows the rules. */
function defaultFormat(e: DatasetEntry): Format | null {
  const same = (a: Record<string, string>, b: Record<string, string>) =>
    Object.entries(b).every(([k, v]) => a[k] === v);
  if (e.formatting === "alpaca" && same(e.columns, ALPACA_COLUMNS)) return "alpaca";
  if (e.formatting === "sharegpt" && e.columns.messages === "conversations" && same(e.tags, SHAREGPT_TAGS)) {
    return "sharegpt";
  }
  if (e.formatting === "sharegpt" && e.columns.messages === "messages" && e.tags.role_tag === "role") {
    return "openai";
  }
  return null;
}

/** One conversation (or a record that the template reads by field) with where it came from. */
export interface Conversation {
  input: Message[] | Record<string, unknown>;
  /** "data/x.json index 3" — for error messages. */
  where: string;
}

/**
 * Reads one dataset's conversations. A record that is not valid is an error naming the file, the record
 * and the field. Records carrying every field of a `fields` template stay records (the template builds
 * the prompt from them).
 */
export async function readConversations(
  fs: TextFs,
  entry: DatasetEntry,
  template: Template,
  maxSamples?: number,
): Promise<Conversation[]> {
  if (!(await fs.exists(entry.path))) throw new Error(`${entry.path}: not found (dataset "${entry.name}")`);
  let parsed;
  try {
    parsed = readRecords(await fs.readText(entry.path));
  } catch (e) {
    throw new Error(`${entry.path}: ${(e as Error).message}`);
  }
  if (parsed.broken.length) {
    const b = parsed.broken[0];
    throw new Error(`${entry.path}: ${b.where}: ${b.message}`);
  }
  const format = defaultFormat(entry);
  const fieldNames = template.fields
    ? [...template.fields.prompt.matchAll(/\{\{(\w+)\}\}/g)].map((m) => m[1])
    : [];
  const out: Conversation[] = [];
  for (const { value, where } of parsed.records.slice(0, maxSamples ?? Infinity)) {
    const at = `${entry.path}: ${where}`;
    if (format) {
      const errs = checkRecord(value, format);
      if (errs.length) throw new Error(`${at}: ${errs[0].field}: ${errs[0].message}`);
    }
    const rec = value as Record<string, unknown>;
    if (
      template.fields && [template.fields.response, ...fieldNames].every((k) => typeof rec[k] === "string")
    ) {
      out.push({ input: rec, where: at });
      continue;
    }
    try {
      out.push({ input: recordToMessages(entry, rec), where: at });
    } catch (e) {
      throw new Error(`${at}: ${(e as Error).message}`);
    }
  }
  return out;
}

/**
 * Train / validation split of LLaMA-Factory's val_size: a fraction (< 1) or a number of examples (≥ 1),
 * drawn by a seeded shuffle; order within each part follows the shuffle.
 */
export function splitValidation<T>(
  items: T[],
  valSize: number,
  seed: number,
): { train: T[]; validation: T[] } {
  if (!valSize) return { train: items, validation: [] };
  const n = valSize < 1 ? Math.round(items.length * valSize) : Math.trunc(valSize);
  if (n >= items.length) {
    throw new Error(`val_size ${valSize} leaves no training examples (${items.length} in all)`);
  }
  const shuffled = new DataRng(seed).shuffle(items);
  return { train: shuffled.slice(n), validation: shuffled.slice(0, n) };
}

/** One training row: token ids, labels, and the lengths of the examples packed into it. */
