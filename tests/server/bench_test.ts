/** `deno task bench serve` end to end on a tiny random shape: every request counted, numbers sane. */
import { assert, assertEquals } from "../assert.ts";
import { runServeBench, serveTable } from "../../bench/serve.ts";

Deno.test("bench serve: levels, latency quantiles and tokens (random tiny shape, EOS ignored)", async () => {
  const r = await runServeBench({
    shape: "tiny",
    clients: [1, 3],
    requests: 2,
    gen: 5,
    slots: 3,
    chunk: 4,
    endpoint: "chat",
    log: () => {},
  });
  assertEquals(r.levels.map((l) => [l.clients, l.requests, l.tokens]), [[1, 2, 10], [3, 6, 30]]);
  for (const l of r.levels) assert(l.p50_ms > 0 && l.p95_ms >= l.p50_ms && l.tok_s > 0, JSON.stringify(l));
  assertEquals(r.levels[0].speedup, 1);
  assert(serveTable(r).includes("tok/s"));
});
