/**
 * A {@link Predictor} over an OpenAI-compatible chat-completions endpoint (OpenAI, a vLLM or llama.cpp
 * server, our own server): `POST {baseUrl}/chat/completions` with `{ model, messages, temperature: 0,
 * max_tokens }`, bearer key. Requests run `concurrency` at a time; starts are spaced to stay under
 * `requestsPerMinute`; 429, 5xx, timeouts and network errors are retried with exponential backoff
 * (honouring `Retry-After`); other 4xx fail at once with the server's message. A prediction's latency
 * is its successful HTTP call (rate-limit waits and failed attempts left out).
 * @module
 */
import type { Message } from "../data/templates.ts";
import type { Prediction, Predictor } from "./evaluator.ts";

/** Options of {@link openaiPredictor}. */
export interface OpenAIPredictorOptions {
  /** e.g. "https://api.openai.com/v1" or "http://127.0.0.1:8000/v1" (no trailing /chat/completions). */
  baseUrl: string;
  /** Bearer key; left out of the request when empty. */
  apiKey?: string;
  /** The `model` field of the request, e.g. "gpt-4o". */
  model: string;
  /** Name in tables and plots (default the model). */
  name?: string;
  /** Requests in flight at once (default 4). */
  concurrency?: number;
  /** Start at most this many requests per minute (default unlimited). */
  requestsPerMinute?: number;
  /** Retries after the first attempt (default 5). */
  maxRetries?: number;
  /** First backoff in ms, doubled per retry (default 1000). */
  backoffMs?: number;
  /** Per-attempt timeout (default 120 s). */
  timeoutMs?: number;
  /** `max_tokens` (default 256). */
  maxTokens?: number;
  /** Default 0 (greedy, as our engine). */
  temperature?: number;
  /** Injected fetch (tests). */
  fetch?: typeof fetch;
}

/** An HTTP failure that is not worth retrying (4xx other than 408/409/429). */
class FatalHttpError extends Error {}

/**
 * @example
 * const gpt = openaiPredictor({ baseUrl: "https://api.openai.com/v1", apiKey: Deno.env.get("OPENAI_API_KEY"), model: "gpt-4o" });
 * const [p] = await gpt.predict([[{ role: "user", content: "Hi" }]]);
 */
export function openaiPredictor(opts: OpenAIPredictorOptions): Predictor {
  const url = opts.baseUrl.replace(/\/+$/, "") + "/chat/completions";
  const doFetch = opts.fetch ?? fetch;
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? 4));
  const gapMs = opts.requestsPerMinute ? 60_000 / opts.requestsPerMinute : 0;
  let nextStart = 0;
  /** Waits for this request's slot under the rate limit (slots are handed out in call order). */
  const slot = async () => {
    if (!gapMs) return;
    const now = performance.now();
    const at = Math.max(now, nextStart);
    nextStart = at + gapMs;
    if (at > now) await sleep(at - now);
  };

  async function attempt(messages: Message[]): Promise<{ text: string; tokens?: number; ms: number }> {
    await slot();
    const t0 = performance.now(); // after the rate-limit wait: latency is the server's, as seen here
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (opts.apiKey) headers.authorization = `Bearer ${opts.apiKey}`;
    const res = await doFetch(url, {
      method: "POST",
      headers,
      body: JSON.stringify({
        model: opts.model,
        messages,
        temperature: opts.temperature ?? 0,
        max_tokens: opts.maxTokens ?? 256,
      }),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 120_000),
    });
    const body = await res.text();
    if (!res.ok) {
      const msg = `${url}: HTTP ${res.status}: ${body.slice(0, 300)}`;
      const retryable = res.status === 408 || res.status === 409 || res.status === 429 || res.status >= 500;
      const err = retryable ? new Error(msg) : new FatalHttpError(msg);
      (err as { retryAfterMs?: number }).retryAfterMs = retryAfter(res.headers.get("retry-after"));
      throw err;
    }
    let json: { choices?: { message?: { content?: unknown } }[]; usage?: { completion_tokens?: number } };
    try {
      json = JSON.parse(body);
    } catch {
      throw new FatalHttpError(`${url}: the response is not JSON: ${body.slice(0, 200)}`);
    }
    const content = json.choices?.[0]?.message?.content;
    if (typeof content !== "string") {
      throw new FatalHttpError(
        `${url}: no choices[0].message.content in the response: ${body.slice(0, 200)}`,
      );
    }
    return { text: content.trim(), tokens: json.usage?.completion_tokens, ms: performance.now() - t0 };
  }

  async function one(messages: Message[]): Promise<Prediction> {
    const retries = opts.maxRetries ?? 5;
    for (let i = 0;; i++) {
      try {
        const r = await attempt(messages);
        const p: Prediction = { text: r.text, latencyMs: r.ms };
        if (r.tokens !== undefined) p.tokens = r.tokens;
        return p;
      } catch (e) {
        if (e instanceof FatalHttpError || i >= retries) {
          throw new Error(
            `${opts.name ?? opts.model}: ${(e as Error).message}` + (i ? ` (after ${i + 1} attempts)` : ""),
          );
        }
        const backoff = (opts.backoffMs ?? 1000) * 2 ** i;
        await sleep(Math.max(backoff, (e as { retryAfterMs?: number }).retryAfterMs ?? 0));
      }
    }
  }

  return {
    name: opts.name ?? opts.model,
    batchSize: concurrency,
    predict: (batch) => Promise.all(batch.map(one)),
  };
}

/** Retry-After in ms (seconds or an HTTP date), or undefined. */
function retryAfter(v: string | null): number | undefined {
  if (!v) return undefined;
  const s = Number(v);
  if (Number.isFinite(s)) return Math.max(0, s * 1000);
  const t = Date.parse(v);
  return Number.isFinite(t) ? Math.max(0, t - Date.now()) : undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
