/**
 * Flag readers of `deno task data` (cli/data.ts and its qa subcommand in cli/data_qa.ts): parsed flags
 * as a record, `--name` values with fallbacks, and a progress bar on a terminal. A missing or malformed
 * flag is a {@link UsageError} (the entry point prints it as one line and exits 2).
 *
 * @example
 * const { values: f } = parse(args, { max: { type: "string" } });
 * const max = num(f, "max", 100);
 */
import cliProgress from "cli-progress";
import { parseFlags, UsageError } from "./args.ts";

/** Parsed flags: name → value(s). */
export type Flags = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** `--name` as a non-empty string, else `fallback`, else a UsageError "missing --name". */
export function str(f: Flags, name: string, fallback?: string): string {
  const v = f[name];
  if (typeof v === "string" && v !== "") return v;
  if (fallback !== undefined) return fallback;
  throw new UsageError(`missing --${name}`);
}

/** `--name` as a finite number, else `fallback` when absent; a non-number is a UsageError. */
export function num(f: Flags, name: string, fallback?: number): number {
  const v = f[name];
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw new UsageError(`missing --${name}`);
  }
  const n = Number(v);
  if (typeof v !== "string" || v.trim() === "" || !Number.isFinite(n)) {
    throw new UsageError(`--${name}: expected a number, got "${v}"`);
  }
  return n;
}

/** Strict parse with positionals allowed; parseArgs' hint about "--" is left out of the message. */
export function parse(
  args: string[],
  options: Record<string, { type: "string" | "boolean"; multiple?: boolean }>,
) {
  try {
    return parseFlags({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional.*$/s, ""));
  }
}

/** A cli-progress bar on stderr when `enabled` and stderr is a terminal; else null. */
export function progressBar(enabled: boolean, label: string) {
  if (!enabled || !Deno.stderr.isTerminal()) return null;
  return new cliProgress.SingleBar(
    { format: `${label} [{bar}] {value}/{total} {extra}`, stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
}
