/**
 * HTTP plumbing shared by the PubMed client and the OpenAI-compatible QA generator: a sliding-window
 * rate limiter and a fetch wrapper that retries 429 / 5xx / network errors with exponential backoff,
 * honouring `Retry-After`.
 */

/** Sleep that an AbortSignal can cut short (it then rejects with the signal's reason). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, Math.max(0, ms));
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * At most `perSecond` request starts in any window of `windowMs` (+ a small margin so that the server,
 * which sees arrivals a little later and with jitter, never counts one too many).
 *
 * @example
 * const limit = new RateLimiter(3);
 * await limit.acquire(); // then send
 */
export class RateLimiter {
  #starts: number[] = [];
  #chain: Promise<void> = Promise.resolve();

  constructor(readonly perSecond: number, readonly windowMs = 1000, readonly marginMs = 15) {
    if (!(perSecond > 0)) throw new Error(`rate limit must be > 0 requests/s, got ${perSecond}`);
  }

  /** Resolves when one more request may start; callers are served in order. */
  acquire(signal?: AbortSignal): Promise<void> {
    const next = this.#chain.then(async () => {
      const n = Math.ceil(this.perSecond);
      while (this.#starts.length >= n) {
        const wait = this.#starts[this.#starts.length - n] + this.windowMs + this.marginMs -
          performance.now();
        if (wait <= 0) break;
        await sleep(wait, signal);
      }
      this.#starts.push(performance.now());
      if (this.#starts.length > 64) this.#starts.splice(0, this.#starts.length - 64);
    });
    this.#chain = next.catch(() => {});
    return next;
  }
}

/** Retry policy for {@link fetchWithRetry}. */
export interface RetryOptions {
  /** Attempts after the first (default 5). */
  retries?: number;
  /** First backoff; doubles each attempt (default 500 ms). */
  baseDelayMs?: number;
  /** Cap for one backoff or Retry-After wait (default 60 s). */
  maxDelayMs?: number;
  limiter?: RateLimiter;
  signal?: AbortSignal;
  fetch?: typeof fetch;
  /** Called before each retry with the reason and the wait (for logs). */
  onRetry?: (reason: string, waitMs: number, attempt: number) => void;
}

/** A failure worth retrying (5xx, 429, network, truncated body). */
export class RetryableError extends Error {
  constructor(message: string, readonly retryAfterMs?: number) {
    super(message);
  }
}

/** Parses Retry-After: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(value)) return Number(value) * 1000;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/**
 * Fetches `url` and hands the response to `read`, retrying on 429, 5xx, network errors and any
 * {@link RetryableError} that `read` throws. Each attempt waits for the rate limiter. Other HTTP errors
 * (4xx) fail at once with the status and the start of the body.
 *
 * @example
 * const text = await fetchWithRetry("http://x/api", {}, (r) => r.text(), { retries: 3 });
 */
export async function fetchWithRetry<T>(
  url: string,
  init: RequestInit,
  read: (res: Response) => Promise<T>,
  opts: RetryOptions = {},
): Promise<T> {
  const retries = opts.retries ?? 5, base = opts.baseDelayMs ?? 500, cap = opts.maxDelayMs ?? 60_000;
  const doFetch = opts.fetch ?? fetch;
  for (let attempt = 0;; attempt++) {
    await opts.limiter?.acquire(opts.signal);
    let reason: string, retryAfter: number | undefined;
    try {
      const res = await doFetch(url, { ...init, signal: opts.signal });
      if (res.status === 429 || res.status >= 500) {
        retryAfter = parseRetryAfter(res.headers.get("retry-after"));
        reason = `HTTP ${res.status}`;
        await res.body?.cancel();
      } else if (!res.ok) {
        const body = (await res.text()).slice(0, 300);
        throw new Error(`${init.method ?? "GET"} ${redact(url)}: HTTP ${res.status}: ${body}`);
      } else {
        try {
          return await read(res);
        } catch (e) {
          if (!(e instanceof RetryableError || e instanceof TypeError)) throw e;
          reason = (e as Error).message;
          retryAfter = e instanceof RetryableError ? e.retryAfterMs : undefined;
        }
      }
    } catch (e) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      // fetch rejects with TypeError on connection errors; anything else is ours and final.
      if (!(e instanceof TypeError)) throw e;
      reason = `network error: ${e.message}`;
    }
    if (attempt >= retries) {
      throw new Error(
        `${init.method ?? "GET"} ${redact(url)}: gave up after ${attempt + 1} attempts (${reason})`,
      );
    }
    const wait = Math.min(cap, retryAfter ?? base * 2 ** attempt);
    opts.onRetry?.(reason, wait, attempt + 1);
    await sleep(wait, opts.signal);
  }
}

/** Hides api keys in URLs that end up in error messages. */
export function redact(url: string): string {
  return url.replace(/(api_key|key)=[^&]*/gi, "$1=***");
}
