/**
 * One generation request seen from the HTTP side: submit to the backend, buffer its events (they may
 * arrive before submit's reply: Comlink uses a separate port for the callback), cancel it when the
 * client goes away, and turn the events into a JSON answer or a Server-Sent-Events stream.
 */
import type { ServeBackend, ServeError, ServeEvent, ServeRequest } from "../src/engine/serving.ts";

/** A started request: its events in order; `cancel()` frees its batch slot. */
export interface Running {
  events: AsyncIterable<ServeEvent>;
  cancel(): void;
}

/**
 * Submits `req`; returns the refusal when the backend refuses up front. An abort of `signal` (the
 * client disconnected) cancels the request.
 *
 * @example
 * const r = await start(backend, req, c.req.raw.signal); if ("error" in r) return fail(r.error);
 */
export async function start(
  backend: ServeBackend,
  req: ServeRequest,
  signal: AbortSignal,
): Promise<Running | { error: ServeError }> {
  const queue: ServeEvent[] = [];
  let wake: (() => void) | null = null;
  let ended = false;
  const r = await backend.submit(req, (e) => {
    queue.push(e);
    wake?.();
  });
  if ("error" in r) return r;
  const cancel = () => {
    if (!ended) backend.cancel(r.id).catch(() => {});
  };
  if (signal.aborted) cancel();
  signal.addEventListener("abort", cancel, { once: true });
  async function* events(): AsyncGenerator<ServeEvent> {
    try {
      while (true) {
        while (queue.length) {
          const e = queue.shift()!;
          if (e.type !== "delta") ended = true;
          yield e;
          if (ended) return;
        }
        await new Promise<void>((res) => (wake = res));
        wake = null;
      }
    } finally {
      signal.removeEventListener("abort", cancel);
      // The consumer stopped early (stream cancelled): the engine must stop too.
      cancel();
    }
  }
  return { events: events(), cancel };
}

/** The final event of a request (deltas skipped). */
export async function finish(r: Running): Promise<Extract<ServeEvent, { type: "done" | "error" }>> {
  for await (const e of r.events) if (e.type !== "delta") return e;
  return { type: "error", error: { status: 500, type: "internal_error", message: "no result", param: null } };
}

/**
 * A text/event-stream response: `frames(event)` gives the JSON objects to send for each event (none to
 * skip it); `data: [DONE]` ends the stream. A client that disconnects cancels the request.
 */
export function sse(
  r: Running,
  frames: (e: ServeEvent) => unknown[],
  headers: Record<string, string>,
  onEnd: () => void,
): Response {
  const enc = new TextEncoder();
  const it = r.events[Symbol.asyncIterator]();
  let closed = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(ctl) {
      const n = await it.next();
      if (n.done) {
        ctl.enqueue(enc.encode("data: [DONE]\n\n"));
        ctl.close();
        closed = true;
        onEnd();
        return;
      }
      for (const f of frames(n.value)) ctl.enqueue(enc.encode(`data: ${JSON.stringify(f)}\n\n`));
    },
    async cancel() {
      r.cancel();
      await it.return?.(undefined);
      if (!closed) onEnd();
      closed = true;
    },
  });
  return new Response(body, {
    headers: {
      ...headers,
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      "x-accel-buffering": "no",
    },
  });
}
