/**
 * The HTTP API: POST /diagnose (the seed's diagnosis endpoint, medical_inquiry template), the
 * OpenAI-compatible POST /v1/chat/completions and GET /v1/models, GET /health and GET /metrics. Handlers
 * parse (zod), hand the request to the engine backend (a Worker in production, see worker_client.ts)
 * and answer; they never touch the GPU. Every response carries X-Request-Id; every error is
 * `{ error: { message, type, param } }`. Request bodies (patient data) are never logged unless
 * `logBodies` is set.
 */
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";
import type { ServeBackend, ServeError, ServeRequest } from "../src/engine/serving.ts";
import { DiagnoseBody, firstIssue } from "./schemas.ts";
import { apiError, bearerKeys, jsonOnly, rateLimit } from "./security.ts";
import { Metrics } from "./metrics.ts";
import { finish, type Running, sse, start } from "./generation.ts";
import { chatCompletions } from "./openai.ts";

/** Options of {@link createApp}. */
export interface AppOptions {
  /** When non-empty, every route but /health needs `Authorization: Bearer <one of these>`. */
  apiKeys?: string[];
  /** Largest accepted request body in bytes (413 beyond). Default 64 KiB. */
  maxBodyBytes?: number;
  /** Allowed CORS origins ("*" for any); CORS is off when unset or empty. */
  corsOrigins?: string[];
  /** Log request bodies too (they hold patient data: off by default). */
  logBodies?: boolean;
  /** Where access-log lines go (default: nowhere). */
  log?: (line: string) => void;
  /** A request not finished after this many ms fails with 503 (default 120 000). */
  requestTimeoutMs?: number;
  /** Retry-After seconds on 503 (default 2). */
  retryAfterSeconds?: number;
  /** Requests per minute per client (API key or remote address); 429 beyond. Off when unset. */
  rateLimitPerMinute?: number;
  /**
   * Routes served before authentication, rate limiting and the JSON-only rule: the browser demo's page
   * and model files (server/demo_routes.ts), which are public GETs.
   */
  publicRoutes?: Hono;
}

/** Shown with every diagnosis. */
export const DISCLAIMER = "AI-generated decision support for clinicians, not a medical diagnosis. " +
  "Verify against the clinical picture and consult a qualified physician. / 本结果由AI生成,仅供临床参考,不能替代医生诊断。";

const ROUTES = new Set(["/diagnose", "/v1/chat/completions", "/v1/models", "/health", "/metrics"]);

/**
 * The Hono app over `backend`.
 *
 * @example
 * const app = createApp(await startWorkerBackend({ model: "output/default", name: "default" }), { apiKeys: ["k"] });
 * Deno.serve({ port: 8000 }, app.fetch);
 */
export function createApp(backend: ServeBackend, options: AppOptions = {}): Hono {
  const o = { maxBodyBytes: 64 * 1024, requestTimeoutMs: 120_000, retryAfterSeconds: 2, ...options };
  const app = new Hono();
  const metrics = new Metrics();
  const info = backend.info();
  let lastStats: Awaited<ReturnType<ServeBackend["stats"]>> | null = null;
  const log = o.log ?? (() => {});
  let nextId = 0;
  const prefix = crypto.randomUUID().slice(0, 8);

  // Request id, access log and metrics (streams are measured when their last byte is sent).
  app.use("*", async (c, next) => {
    const given = c.req.header("x-request-id");
    const id = given && /^[\w.:-]{1,128}$/.test(given) ? given : `${prefix}-${(nextId++).toString(36)}`;
    c.set("requestId" as never, id as never);
    const t0 = performance.now();
    await next();
    c.header("X-Request-Id", id);
    // Bodies hold patient data: logged only when asked (and never an oversized one).
    const body = o.logBodies && c.req.method === "POST" && c.res.status !== 413
      ? await c.req.text().catch(() => "")
      : "";
    const route = ROUTES.has(c.req.path) ? c.req.path : "other";
    const done = () => {
      const ms = performance.now() - t0;
      metrics.observe(route, c.res.status, ms / 1000);
      log(
        `${id} ${c.req.method} ${c.req.path} ${c.res.status} ${ms.toFixed(0)}ms${
          body ? ` body=${body}` : ""
        }`,
      );
    };
    if (c.res.headers.get("content-type")?.startsWith("text/event-stream")) streamEnds.set(id, done);
    else done();
  });
  const streamEnds = new Map<string, () => void>();
  const endStream = (id: string) => () => {
    // The stream may end before the middleware registered its callback (a tiny answer).
    queueMicrotask(() => {
      streamEnds.get(id)?.();
      streamEnds.delete(id);
    });
  };
  if (o.publicRoutes) app.route("/", o.publicRoutes);
  if (o.corsOrigins?.length) {
    app.use(
      "*",
      cors({ origin: o.corsOrigins.includes("*") ? "*" : o.corsOrigins, exposeHeaders: ["X-Request-Id"] }),
    );
  }
  if (o.apiKeys?.length) app.use("*", bearerKeys(o.apiKeys, ["/health"]));
  if (o.rateLimitPerMinute) app.use("*", rateLimit(o.rateLimitPerMinute, ["/health"]));
  app.use("*", jsonOnly());
  app.use(
    "*",
    bodyLimit({
      maxSize: o.maxBodyBytes,
      onError: (c) =>
        apiError(c, 413, `request body larger than ${o.maxBodyBytes} bytes`, "invalid_request_error"),
    }),
  );

  const fail = (c: Context, e: ServeError) =>
    apiError(
      c,
      e.status as ContentfulStatusCode,
      e.message,
      e.type,
      e.param,
      e.status === 503 ? { "Retry-After": String(o.retryAfterSeconds) } : {},
    );

  /** Parses the JSON body with `schema`; a Response on failure. */
  async function parse<S extends z.ZodType>(
    c: Context,
    schema: S,
  ): Promise<z.output<S> | Response> {
    let raw: unknown;
    try {
      raw = await c.req.json();
    } catch {
      return apiError(c, 400, "body is not valid JSON", "invalid_request_error");
    }
    const r = schema.safeParse(raw);
    if (!r.success) {
      const { message, param } = firstIssue(r.error);
      return apiError(c, 400, message, "invalid_request_error", param);
    }
    return r.data;
  }

  /** Starts a request; a Response when refused. */
  async function begin(c: Context, req: ServeRequest): Promise<Running | Response> {
    const r = await start(backend, { ...req, timeoutMs: o.requestTimeoutMs }, c.req.raw.signal);
    return "error" in r ? fail(c, r.error) : r;
  }

  app.post("/diagnose", async (c) => {
    const b = await parse(c, DiagnoseBody);
    if (b instanceof Response) return b;
    const t0 = performance.now();
    const { model } = await info;
    const r = await begin(c, {
      prompt: {
        kind: "diagnose",
        patient_info: b.patient_info,
        symptoms: b.symptoms,
        test_results: b.test_results,
      },
      maxTokens: b.max_tokens,
      temperature: b.temperature,
    });
    if (r instanceof Response) return r;
    const final = (text: string, usage: { prompt_tokens: number; completion_tokens: number }) => ({
      diagnosis: text.trim(),
      model,
      usage,
      latency_ms: Math.round(performance.now() - t0),
      disclaimer: DISCLAIMER,
    });
    if (b.stream) {
      const id = c.get("requestId" as never) as string;
      return sse(
        r,
        (e) => {
          if (e.type === "delta") return e.text ? [{ delta: e.text }] : [];
          if (e.type === "error") return [{ error: { ...e.error, status: undefined } }];
          metrics.tokens(e.completionTokens);
          return [final(e.text, { prompt_tokens: e.promptTokens, completion_tokens: e.completionTokens })];
        },
        { "X-Request-Id": id },
        endStream(id),
      );
    }
    const e = await finish(r);
    if (e.type === "error") return fail(c, e.error);
    metrics.tokens(e.completionTokens);
    return c.json(final(e.text, { prompt_tokens: e.promptTokens, completion_tokens: e.completionTokens }));
  });

  app.post("/v1/chat/completions", chatCompletions({ info, parse, begin, fail, metrics, endStream }));

  app.get("/v1/models", async (c) => {
    const i = await info;
    return c.json({
      object: "list",
      data: [{
        id: i.model,
        object: "model",
        created: 0,
        owned_by: "webtune",
        context_length: i.contextLength,
      }],
    });
  });

  /** Engine numbers, or the last known ones when the worker is busy past `ms`. */
  async function stats(ms: number) {
    let t: ReturnType<typeof setTimeout> | undefined;
    const timer = new Promise<null>((r) => (t = setTimeout(() => r(null), ms)));
    const s = await Promise.race([backend.stats().catch(() => null), timer]);
    clearTimeout(t);
    if (s) lastStats = s;
    return s;
  }

  app.get("/health", async (c) => {
    const i = await info;
    const s = await stats(1000);
    return c.json({
      status: "ok",
      model: i.model,
      adapter: i.adapter,
      slots: i.slots,
      engine: s ?? lastStats,
    });
  });

  app.get("/metrics", async (c) => {
    const s = await stats(2000);
    return c.text(metrics.render(s), 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
  });

  app.notFound((c) => apiError(c, 404, `no route ${c.req.method} ${c.req.path}`, "not_found_error"));
  app.onError((err, c) => {
    log(`${c.get("requestId" as never)} internal error: ${err.message}`);
    return apiError(c, 500, "internal server error", "internal_error");
  });
  return app;
}
