/**
 * Request guards: JSON error bodies, Bearer API keys compared in constant time, a per-client request
 * rate limit, and the JSON-only content type rule.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** `{ error: { message, type, param } }` with `status` (OpenAI's error shape). */
export function apiError(
  c: Context,
  status: ContentfulStatusCode,
  message: string,
  type: string,
  param: string | null = null,
  headers: Record<string, string> = {},
): Response {
  for (const [k, v] of Object.entries(headers)) c.header(k, v);
  return c.json({ error: { message, type, param } }, status);
}

async function sha256(s: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)));
}

/** Equal-length byte arrays compared without an early exit. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length && i < b.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/**
 * Requires `Authorization: Bearer <key>` with one of `keys`. Keys and the presented token are hashed
 * (SHA-256) first, so the comparison time depends on neither the key length nor where they differ, and
 * every key is compared (no early exit). `open` paths (e.g. /health) pass without a key.
 *
 * @example
 * app.use("*", bearerKeys(["sk-local-1"], ["/health"]));
 */
export function bearerKeys(keys: string[], open: string[] = []): MiddlewareHandler {
  const hashed = Promise.all(keys.map(sha256));
  return async (c, next) => {
    if (c.req.method === "OPTIONS" || open.includes(c.req.path)) return await next();
    const m = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "");
    if (!m) {
      return apiError(
        c,
        401,
        "missing API key: send Authorization: Bearer <key>",
        "authentication_error",
        null,
        {
          "WWW-Authenticate": 'Bearer realm="webtune"',
        },
      );
    }
    const got = await sha256(m[1]);
    let ok = false;
    for (const k of await hashed) ok = sameBytes(k, got) || ok;
    if (!ok) return apiError(c, 401, "invalid API key", "authentication_error");
    c.set("client" as never, `key:${Array.from(got.slice(0, 8), (b) => b.toString(16)).join("")}` as never);
    return await next();
  };
}

/**
 * At most `perMinute` requests per client per minute (client = API key when keys are on, else the
 * remote address); more get 429 with Retry-After.
 */
export function rateLimit(perMinute: number, open: string[] = []): MiddlewareHandler {
  const windows = new Map<string, { start: number; n: number }>();
  return async (c, next) => {
    if (c.req.method === "OPTIONS" || open.includes(c.req.path)) return await next();
    const info = c.env as { remoteAddr?: { hostname?: string } } | undefined;
    const client = (c.get("client" as never) as string | undefined) ?? info?.remoteAddr?.hostname ??
      "anonymous";
    const now = Date.now();
    let w = windows.get(client);
    if (!w || now - w.start >= 60_000) windows.set(client, w = { start: now, n: 0 });
    if (windows.size > 10_000) {
      for (const [k, v] of windows) if (now - v.start >= 60_000) windows.delete(k);
    }
    if (++w.n > perMinute) {
      const wait = Math.max(1, Math.ceil((w.start + 60_000 - now) / 1000));
      return apiError(c, 429, `rate limit: ${perMinute} requests per minute`, "rate_limit_error", null, {
        "Retry-After": String(wait),
      });
    }
    return await next();
  };
}

/** POST bodies must be `application/json` (415 otherwise). */
export function jsonOnly(): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.method === "POST") {
      const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
      if (type !== "application/json") {
        return apiError(
          c,
          415,
          `content type must be application/json, got ${type || "none"}`,
          "invalid_request_error",
          null,
        );
      }
    }
    return await next();
  };
}
