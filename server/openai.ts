/**
 * POST /v1/chat/completions, OpenAI's shape: the model's chat template, non-streaming or SSE chunks
 * (`chat.completion.chunk`, a first chunk with the role, a last one with finish_reason, an optional usage
 * chunk, then `data: [DONE]`). The app's helpers (parse, begin, fail, metrics) come in `deps`.
 */
import type { Context } from "hono";
import type { z } from "zod";
import type { BackendInfo, ServeError, ServeRequest } from "../src/engine/serving.ts";
import { ChatBody } from "./schemas.ts";
import { apiError } from "./security.ts";
import { finish, type Running, sse } from "./generation.ts";
import type { Metrics } from "./metrics.ts";

/** What the handler needs from createApp. */
export interface ChatDeps {
  info: Promise<BackendInfo>;
  parse<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S> | Response>;
  begin(c: Context, req: ServeRequest): Promise<Running | Response>;
  fail(c: Context, e: ServeError): Response;
  metrics: Metrics;
  /** Called when a stream with this request id ends (for the access log and latency metrics). */
  endStream(id: string): () => void;
}

/**
 * The route handler.
 *
 * @example
 * app.post("/v1/chat/completions", chatCompletions({ info, parse, begin, fail, metrics, endStream }));
 */
export function chatCompletions(deps: ChatDeps): (c: Context) => Promise<Response> {
  const { info, parse, begin, fail, metrics, endStream } = deps;
  return async (c) => {
    const b = await parse(c, ChatBody);
    if (b instanceof Response) return b;
    const { model } = await info;
    if (b.model && b.model !== model) {
      return apiError(
        c,
        404,
        `model ${b.model} not found (this server has ${model})`,
        "model_not_found",
        "model",
      );
    }
    const messages = b.messages.map((m) => ({
      role: m.role === "developer" ? "system" as const : m.role,
      content: typeof m.content === "string" ? m.content : m.content.map((p) => p.text).join(""),
    }));
    const r = await begin(c, {
      prompt: { kind: "chat", messages },
      maxTokens: b.max_completion_tokens ?? b.max_tokens ?? undefined,
      temperature: b.temperature ?? undefined,
      topP: b.top_p ?? undefined,
      seed: b.seed ?? undefined,
      stop: b.stop == null ? undefined : typeof b.stop === "string" ? [b.stop] : b.stop,
    });
    if (r instanceof Response) return r;
    const id = `chatcmpl-${c.get("requestId" as never)}`;
    const created = Math.floor(Date.now() / 1000);
    const usage = (p: number, n: number) => ({ prompt_tokens: p, completion_tokens: n, total_tokens: p + n });
    if (b.stream) {
      const envelope = { id, object: "chat.completion.chunk", created, model };
      const chunk = (delta: Record<string, string>, finish: string | null) => ({
        ...envelope,
        choices: [{ index: 0, delta, finish_reason: finish }],
      });
      let first = true;
      const rid = c.get("requestId" as never) as string;
      return sse(
        r,
        (e) => {
          const out: unknown[] = [];
          if (first && e.type !== "error") out.push(chunk({ role: "assistant", content: "" }, null));
          first = false;
          if (e.type === "delta") {
            if (e.text) out.push(chunk({ content: e.text }, null));
          } else if (e.type === "error") out.push({ error: { ...e.error, status: undefined } });
          else {
            metrics.tokens(e.completionTokens);
            out.push(chunk({}, e.finishReason));
            if (b.stream_options?.include_usage) {
              out.push({ ...envelope, choices: [], usage: usage(e.promptTokens, e.completionTokens) });
            }
          }
          return out;
        },
        { "X-Request-Id": rid },
        endStream(rid),
      );
    }
    const e = await finish(r);
    if (e.type === "error") return fail(c, e.error);
    metrics.tokens(e.completionTokens);
    return c.json({
      id,
      object: "chat.completion",
      created,
      model,
      choices: [{ index: 0, message: { role: "assistant", content: e.text }, finish_reason: e.finishReason }],
      usage: usage(e.promptTokens, e.completionTokens),
    });
  };
}
