/**
 * Instruction-dataset formats (LLaMA-Factory's alpaca and sharegpt, OpenAI chat messages): reading
 * JSON arrays or JSONL, detecting the format, and validating every record. A bad record is reported
 * with where it is (`line 7` for JSONL, `index 3` for a JSON array) and the field that is wrong.
 */
import { z } from "zod";

/** Supported record formats. */
export type Format = "alpaca" | "sharegpt" | "openai";
export const FORMATS: readonly Format[] = ["alpaca", "sharegpt", "openai"];

const nonEmpty = z.string().refine((s) => s.trim() !== "", "must be a non-empty string");

const Alpaca = z.looseObject({
  instruction: nonEmpty,
  input: z.string().optional(),
  output: nonEmpty,
  system: z.string().optional(),
  history: z.array(z.tuple([z.string(), z.string()])).optional(),
});

const ShareGpt = z.looseObject({
  conversations: z.array(z.object({
    from: z.enum(["human", "gpt", "system", "function_call", "observation"]),
    value: nonEmpty,
  })).min(2, "needs at least one human and one gpt turn"),
  system: z.string().optional(),
  tools: z.string().optional(),
});

const Content = z.union([
  nonEmpty,
  z.array(z.looseObject({ type: z.string(), text: z.string().optional() })).min(1),
]);
const OpenAi = z.looseObject({
  messages: z.array(z.object({ role: z.enum(["system", "user", "assistant", "tool"]), content: Content }))
    .min(2, "needs at least a user and an assistant message"),
});

/** One located record as read from a file. */
export interface Located {
  value: unknown;
  /** "line 7" (JSONL) or "index 3" (JSON array). */
  where: string;
}

/** A problem with one record. */
export interface RecordError {
  where: string;
  /** Field path, e.g. `conversations[2].from`; "(record)" when the record itself is wrong. */
  field: string;
  message: string;
}

function fieldPath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => typeof p === "number" ? `[${p}]` : `${i ? "." : ""}${String(p)}`).join("") ||
    "(record)";
}

/**
 * Offset of the first syntax error in JSON text (-1 when none): V8's "Unexpected token" messages do
 * not say where, and a user needs the line.
 */
export function jsonErrorOffset(t: string): number {
  let i = 0;
  const ws = () => {
    while (i < t.length && " \t\n\r".includes(t[i])) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const value = (): void => {
    ws();
    const c = t[i];
    if (c === "{" || c === "[") {
      const close = c === "{" ? "}" : "]";
      i++;
      ws();
      if (t[i] === close) return void i++;
      for (;;) {
        if (c === "{") {
          ws();
          if (t[i] !== '"') fail();
          value();
          ws();
          if (t[i++] !== ":") (i--, fail());
        }
        value();
        ws();
        if (t[i] === ",") i++;
        else if (t[i] === close) return void i++;
        else fail();
      }
    }
    if (c === '"') {
      for (i++; i < t.length && t[i] !== '"'; i++) if (t[i] === "\\") i++;
      if (i >= t.length) fail();
      return void i++;
    }
    const m = /^(?:-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(t.slice(i, i + 400));
    if (!m) fail();
    i += m![0].length;
  };
  try {
    value();
    ws();
    return i < t.length ? i : -1;
  } catch (at) {
    return at as number;
  }
}

/**
 * Reads a dataset file: a JSON array, or JSON Lines (one object per line, blank lines ignored).
 * JSONL lines that are not JSON come back in `broken` (never silently dropped); a JSON array that does
 * not parse throws, naming the line.
 */
export function readRecords(
  text: string,
): { records: Located[]; broken: RecordError[]; layout: "json" | "jsonl" } {
  const trimmed = text.trimStart();
  if (trimmed.startsWith("[")) {
    let arr: unknown;
    try {
      arr = JSON.parse(text);
    } catch (e) {
      const msg = (e as Error).message;
      const pos = /position (\d+)/.exec(msg);
      const at = pos ? Number(pos[1]) : jsonErrorOffset(text);
      const line = at >= 0 ? text.slice(0, at).split("\n").length : undefined;
      throw new Error(`${line ? `line ${line}: ` : ""}not valid JSON: ${msg}`);
    }
    if (!Array.isArray(arr)) throw new Error("not a JSON array");
    const records = (arr as unknown[]).map((value, i) => ({ value, where: `index ${i}` }));
    return { records, broken: [], layout: "json" };
  }
  const records: Located[] = [], broken: RecordError[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    try {
      records.push({ value: JSON.parse(line), where: `line ${i + 1}` });
    } catch (e) {
      broken.push({
        where: `line ${i + 1}`,
        field: "(record)",
        message: `not valid JSON: ${(e as Error).message}`,
      });
    }
  });
  return { records, broken, layout: "jsonl" };
}

/** The format a record looks like, from its keys; null when it looks like none. */
export function detectFormat(rec: unknown): Format | null {
  if (!rec || typeof rec !== "object" || Array.isArray(rec)) return null;
  if ("messages" in rec) return "openai";
  if ("conversations" in rec) return "sharegpt";
  if ("instruction" in rec || "output" in rec) return "alpaca";
  return null;
}

/** Turn-order rules that a schema cannot say: user and assistant alternate and the last turn answers. */
function checkTurns(
  roles: string[],
  user: Set<string>,
  assistant: Set<string>,
  key: string,
): Omit<RecordError, "where">[] {
  const errs: Omit<RecordError, "where">[] = [];
  let i = 0;
  if (roles[0] === "system") i = 1;
  let expectUser = true;
  for (; i < roles.length; i++) {
    const r = roles[i];
    const ok = expectUser ? user.has(r) : assistant.has(r);
    if (!ok) {
      errs.push({
        field: `${key}[${i}]`,
        message: `expected ${expectUser ? "a user" : "an assistant"} turn, got "${r}"`,
      });
      return errs;
    }
    expectUser = !expectUser;
  }
  if (!expectUser) {
    errs.push({
      field: `${key}[${roles.length - 1}]`,
      message: "the last turn must be the assistant's",
    });
  }
  return errs;
}

/** Validates one record against a format; returns [] when valid. */
export function checkRecord(rec: unknown, format: Format): Omit<RecordError, "where">[] {
  if (!rec || typeof rec !== "object" || Array.isArray(rec)) {
    return [{ field: "(record)", message: "must be a JSON object" }];
  }
  const schema = format === "alpaca" ? Alpaca : format === "sharegpt" ? ShareGpt : OpenAi;
  const r = schema.safeParse(rec);
  if (!r.success) return r.error.issues.map((iss) => ({ field: fieldPath(iss.path), message: iss.message }));
  if (format === "sharegpt") {
    const roles = (rec as z.infer<typeof ShareGpt>).conversations.map((c) => c.from);
    return checkTurns(
      roles,
      new Set(["human", "observation"]),
      new Set(["gpt", "function_call"]),
      "conversations",
    );
  }
  if (format === "openai") {
    const roles = (rec as z.infer<typeof OpenAi>).messages.map((m) => m.role);
    return checkTurns(roles, new Set(["user", "tool"]), new Set(["assistant"]), "messages");
  }
  return [];
}

/** Result of {@link validateDataset}. */
export interface Validation {
  format: Format;
  layout: "json" | "jsonl";
  total: number;
  valid: unknown[];
  errors: RecordError[];
}

/**
 * Reads and validates a whole file. The format is `format` or that of the first record. Every invalid
 * record is listed in `errors` (one entry per wrong field); callers decide whether to fail or skip.
 *
 * @example
 * const v = validateDataset(text, {});
 * for (const e of v.errors) console.error(`${path}: ${e.where}: ${e.field}: ${e.message}`);
 */
export function validateDataset(text: string, o: { format?: Format }): Validation {
  const { records, broken, layout } = readRecords(text);
  const first = records[0];
  if (!o.format && first && !detectFormat(first.value)) {
    throw new Error(
      `${first.where}: cannot tell the format: no instruction/output (alpaca), conversations (sharegpt) or ` +
        "messages (openai) field; pass --format",
    );
  }
  const format = o.format ?? (first ? detectFormat(first.value)! : "alpaca");
  const valid: unknown[] = [], errors = broken.slice();
  for (const { value, where } of records) {
    const errs = checkRecord(value, format);
    if (errs.length) { for (const e of errs) errors.push({ where, ...e }); }
    else valid.push(value);
  }
  return { format, layout, total: records.length + broken.length, valid, errors };
}
