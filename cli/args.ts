/**
 * What every `deno task` entry point in cli/ does with its flags: parse them strictly, check numbers,
 * and end a user's mistake in one line (`error: …`, exit 1) instead of a stack trace.
 *
 * @example
 * const { values: a } = parseFlags({ args: Deno.args, options: { n: { type: "string" } } }, USAGE);
 * const n = intFlag("n", a.n, 1) ?? 8;
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

/** A mistake the user can fix (a bad flag or value): printed as one line, never as a stack trace. */
export class UsageError extends Error {}

/**
 * Prints `error: MSG` and exits 1. `newlineFirst` ends an open progress line (one drawn with "\r")
 * first, so the message starts at the left margin.
 */
export function fail(msg: string, newlineFirst = false): never {
  console.error(`${newlineFirst ? "\n" : ""}error: ${msg}`);
  Deno.exit(1);
}

/**
 * node:util's parseArgs; an unknown flag, a missing value or a stray argument becomes a
 * {@link UsageError} whose message is parseArgs' own, followed by `usage` when given.
 */
export function parseFlags<T extends ParseArgsConfig>(
  config: T,
  usage?: string,
): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (e) {
    throw new UsageError(`${(e as Error).message}${usage ? `\n${usage}` : ""}`);
  }
}

/**
 * A numeric flag: undefined when absent, else the number, which `check` must accept; otherwise a
 * {@link UsageError} `--FLAG VALUE: want WANT`.
 * @example numberFlag("top-p", "2", (x) => x > 0 && x <= 1, "a number in (0, 1]") // throws
 */
export function numberFlag(
  flag: string,
  value: string | undefined,
  check: (x: number) => boolean,
  want: string,
): number | undefined {
  if (value === undefined) return undefined;
  const x = Number(value);
  if (value.trim() === "" || !Number.isFinite(x) || !check(x)) {
    throw new UsageError(`--${flag} ${value}: want ${want}`);
  }
  return x;
}

/**
 * An integer flag ≥ `min` (undefined when absent).
 * @example intFlag("batch-size", "0", 1) // throws "--batch-size 0: want an integer ≥ 1"
 */
export function intFlag(flag: string, value: string | undefined, min: number): number | undefined {
  return numberFlag(flag, value, (x) => Number.isInteger(x) && x >= min, `an integer ≥ ${min}`);
}
