/**
 * Serving benchmark (`deno task bench serve …`, wired in bench/main.ts): starts the real server — the
 * engine in its Worker, the app on 127.0.0.1 — or drives one at `--url`, then for each concurrency level
 * N runs N clients that each send `--requests` POST /diagnose (or /v1/chat/completions) one after the
 * other, and reports p50/p95 request latency, total completion tokens per second, and the speed-up of
 * tokens/s over the first level. Every request asks for `--gen` tokens; with `--shape` (random weights)
 * EOS is ignored so each really generates that many.
 *
 * What is timed: wall clock on the client side, HTTP and JSON included — what a caller sees.
 */
import { createApp } from "../server/app.ts";
import { startWorkerBackend } from "../server/worker_client.ts";

/** Options of {@link runServeBench}. */
export interface ServeBenchOptions {
  model?: string;
  adapter?: string;
  mergeAdapter?: boolean;
  shape?: string;
  /** A running server instead of starting one. */
  url?: string;
  /** Concurrency levels, e.g. [1, 16]. */
  clients: number[];
  /** Requests per client per level (after one warm-up request per client). */
  requests: number;
  gen: number;
  slots: number;
  chunk: number;
  endpoint: "diagnose" | "chat";
  dtype?: "f16" | "f32";
  log: (line: string) => void;
}

/** One concurrency level's numbers. */
export interface ServeLevel {
  clients: number;
  requests: number;
  p50_ms: number;
  p95_ms: number;
  tokens: number;
  wall_s: number;
  tok_s: number;
  /** tok_s / the first level's tok_s. */
  speedup: number;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/**
 * Runs the benchmark; the server it started is stopped before it returns.
 *
 * @example
 * const levels = await runServeBench({ shape: "mistral-7b", clients: [1, 16], requests: 4, gen: 128, slots: 16, chunk: 16, endpoint: "diagnose", log: console.error });
 */
export async function runServeBench(o: ServeBenchOptions): Promise<{ model: string; levels: ServeLevel[] }> {
  if (!o.url && !o.model && !o.shape) throw new Error("give --model DIR, --shape NAME or --url URL");
  let base = o.url?.replace(/\/$/, "") ?? "";
  let stop = async () => {};
  if (!o.url) {
    o.log(`starting the server (${o.shape ? `random ${o.shape}` : o.model}, ${o.slots} slots)`);
    const backend = await startWorkerBackend({
      model: o.model ?? "",
      shape: o.shape,
      adapter: o.adapter ?? null,
      mergeAdapter: o.mergeAdapter,
      dtype: o.dtype ?? null,
      name: o.shape ?? o.model!,
      scheduler: { slots: o.slots, chunkSize: o.chunk, maxQueue: 4 * Math.max(...o.clients) },
    });
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      createApp(backend, { requestTimeoutMs: 600_000 }).fetch,
    );
    base = `http://127.0.0.1:${server.addr.port}`;
    stop = async () => {
      await server.shutdown();
      await backend.close();
    };
  }
  const model = (await (await fetch(`${base}/v1/models`)).json()).data[0].id as string;
  const one = async (i: number): Promise<{ ms: number; tokens: number }> => {
    const body = o.endpoint === "diagnose"
      ? {
        patient_info: `患者${i},女,28岁`,
        symptoms: "反复发热伴皮疹两周,关节疼痛",
        test_results: "铁蛋白显著升高",
        max_tokens: o.gen,
        temperature: 0,
      }
      : {
        messages: [{ role: "user", content: `Case ${i}: fever, rash and joint pain for two weeks.` }],
        max_tokens: o.gen,
        temperature: 0,
      };
    const t0 = performance.now();
    const res = await fetch(`${base}/${o.endpoint === "diagnose" ? "diagnose" : "v1/chat/completions"}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const j = await res.json();
    if (res.status !== 200) throw new Error(`request failed: ${res.status} ${JSON.stringify(j)}`);
    return { ms: performance.now() - t0, tokens: j.usage.completion_tokens };
  };
  const levels: ServeLevel[] = [];
  try {
    await one(0); // compile every pipeline before timing
    for (const n of o.clients) {
      await Promise.all(Array.from({ length: n }, (_, c) => one(c))); // warm-up at this level
      const lat: number[] = [];
      let tokens = 0;
      const t0 = performance.now();
      await Promise.all(Array.from({ length: n }, async (_, c) => {
        for (let r = 0; r < o.requests; r++) {
          const x = await one(c * o.requests + r);
          lat.push(x.ms);
          tokens += x.tokens;
        }
      }));
      const wall = (performance.now() - t0) / 1000;
      const tokS = tokens / wall;
      levels.push({
        clients: n,
        requests: lat.length,
        p50_ms: quantile(lat, 0.5),
        p95_ms: quantile(lat, 0.95),
        tokens,
        wall_s: wall,
        tok_s: tokS,
        speedup: levels.length ? tokS / levels[0].tok_s : 1,
      });
      o.log(`${n} clients: p50 ${quantile(lat, 0.5).toFixed(0)} ms, ${tokS.toFixed(1)} tok/s`);
    }
  } finally {
    await stop();
  }
  return { model, levels };
}

/** A text table of the levels. */
export function serveTable(r: { model: string; levels: ServeLevel[] }): string {
  const head = ["clients", "requests", "p50 ms", "p95 ms", "tokens", "wall s", "tok/s", "× first"];
  const rows = r.levels.map((l) =>
    [
      l.clients,
      l.requests,
      l.p50_ms.toFixed(0),
      l.p95_ms.toFixed(0),
      l.tokens,
      l.wall_s.toFixed(2),
      l.tok_s.toFixed(1),
      l.speedup.toFixed(2),
    ].map(String)
  );
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(w[i])).join("  ");
  return [`model ${r.model}`, line(head), ...rows.map(line)].join("\n");
}
