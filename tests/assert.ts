/** Minimal assertions (jsr:@std/assert is not reachable from our machines). */
export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

export function assertEquals<T>(got: T, want: T, msg = ""): void {
  const g = JSON.stringify(got), w = JSON.stringify(want);
  if (g !== w) throw new Error(`${msg ? msg + ": " : ""}expected ${w}, got ${g}`);
}

export async function assertRejects(fn: () => Promise<unknown>, match?: RegExp): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    const err = e as Error;
    if (match && !match.test(err.message)) throw new Error(`error "${err.message}" does not match ${match}`);
    return err;
  }
  throw new Error("expected a rejection");
}

export function assertThrows(fn: () => unknown, match?: RegExp): Error {
  try {
    fn();
  } catch (e) {
    const err = e as Error;
    if (match && !match.test(err.message)) throw new Error(`error "${err.message}" does not match ${match}`);
    return err;
  }
  throw new Error("expected a throw");
}
