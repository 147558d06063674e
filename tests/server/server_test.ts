/**
 * The real thing: the engine in its Worker (Comlink), the app on Deno.serve at 127.0.0.1 (port 0), clients
 * over TCP. 32 concurrent clients all get answers equal to the single-request greedy answers; a streaming
 * client that disconnects frees its slot; `deno task serve` and `deno serve --parallel` start as a user
 * runs them, and without a model the CLI says what to do.
 */
import { assert, assertEquals } from "../assert.ts";
import { createApp } from "../../server/app.ts";
import { startWorkerBackend } from "../../server/worker_client.ts";
import { TESTDATA } from "../model/golden.ts";
import { readSse } from "./sse.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const H = { "content-type": "application/json", authorization: "Bearer test-key" };

function bodies(): { path: string; body: Record<string, unknown> }[] {
  const out: { path: string; body: Record<string, unknown> }[] = [];
  for (let i = 0; i < 4; i++) {
    out.push({
      path: "/v1/chat/completions",
      body: {
        messages: [{ role: "user", content: `Case ${i}: fever, rash, joint pain.` }],
        max_tokens: 6 + 3 * i,
      },
    });
    out.push({
      path: "/diagnose",
      body: {
        patient_info: `患者${i}号,女`,
        symptoms: "乏力".repeat(i + 1),
        test_results: "血小板减少",
        max_tokens: 8 + i,
      },
    });
  }
  return out;
}

const answer = (j: { diagnosis?: string; choices?: { message: { content: string } }[] }) =>
  j.diagnosis ?? j.choices![0].message.content;

Deno.test("real server: 32 concurrent clients equal single requests; streaming; disconnect frees the slot", async () => {
  const backend = await startWorkerBackend({
    model: `${TESTDATA}/llama`,
    dtype: "f32",
    name: "tiny",
    scheduler: { slots: 8, chunkSize: 4, maxQueue: 32 },
  });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    createApp(backend, { apiKeys: ["test-key"] }).fetch,
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  const call = async (path: string, body: unknown, signal?: AbortSignal) =>
    await fetch(base + path, { method: "POST", headers: H, body: JSON.stringify(body), signal });
  try {
    const reqs = bodies();
    const single: string[] = [];
    for (const r of reqs) {
      const res = await call(r.path, r.body);
      assertEquals(res.status, 200);
      single.push(answer(await res.json()));
    }
    const all = await Promise.all(Array.from({ length: 32 }, async (_, i) => {
      const res = await call(reqs[i % reqs.length].path, reqs[i % reqs.length].body);
      assertEquals(res.status, 200, `client ${i}`);
      assert(res.headers.get("x-request-id"));
      return answer(await res.json());
    }));
    all.forEach((a, i) => assertEquals(a, single[i % reqs.length], `client ${i} under load`));
    const metrics = await (await fetch(`${base}/metrics`, { headers: H })).text();
    assert(metrics.includes('webtune_http_requests_total{route="/diagnose",status="200"} 20'), metrics);
    // The worker's batch decode replays each chunk's first step for the others.
    const gauge = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(metrics)?.[1]);
    const [steps, replayed] = [gauge("webtune_engine_decode_steps"), gauge("webtune_engine_replayed_steps")];
    assert(steps > 0 && replayed > 0 && replayed < steps, `replayed ${replayed} of ${steps} decode steps`);
    // Streaming over TCP, parsed like an OpenAI client.
    const s = await readSse(await call(reqs[0].path, { ...reqs[0].body, stream: true }));
    assertEquals(s.done, true);
    const text = (s.events as { choices: { delta: { content?: string } }[] }[])
      .map((e) => e.choices[0]?.delta.content ?? "").join("");
    assertEquals(text, single[0]);
    // A streaming client that goes away mid-answer: its slot is free again.
    const ac = new AbortController();
    const res = await call(
      "/v1/chat/completions",
      { ...reqs[0].body, max_tokens: 200, stream: true },
      ac.signal,
    );
    const reader = res.body!.getReader();
    await reader.read();
    const active = async () =>
      Number(
        /webtune_active_sequences (\d+)/.exec(
          await (await fetch(`${base}/metrics`, { headers: H })).text(),
        )![1],
      );
    assertEquals(await active(), 1);
    ac.abort();
    await reader.cancel().catch(() => {});
    let n = 1;
    for (let i = 0; i < 100 && (n = await active()) > 0; i++) await new Promise((r) => setTimeout(r, 50));
    assertEquals(n, 0, "slot freed after disconnect");
  } finally {
    await server.shutdown();
    await backend.close();
  }
});

/** Starts a server command, waits for its listening line, runs `check(baseUrl)`, stops it. */
async function withProcess(
  args: string[],
  env: Record<string, string>,
  check: (base: string) => Promise<void>,
) {
  const p = new Deno.Command(Deno.execPath(), {
    args,
    env: { XDG_RUNTIME_DIR: "/tmp", ...env },
    stdout: "piped",
    stderr: "piped",
    cwd: ROOT,
  }).spawn();
  let log = "";
  const dec = new TextDecoder();
  const found = new Promise<string>((resolve, reject) => {
    const read = async (s: ReadableStream<Uint8Array>) => {
      for await (const b of s) {
        log += dec.decode(b);
        const m = /(?:listening on|Listening on) (http:\/\/[\d.:]+)/i.exec(log);
        if (m) resolve(m[1]);
      }
    };
    Promise.all([read(p.stdout), read(p.stderr)]).then(() =>
      reject(new Error(`exited before listening:\n${log}`))
    );
  });
  try {
    await check(await found);
  } finally {
    // deno serve drains open connections on SIGTERM; a test client's idle keep-alive one would hold it.
    p.kill("SIGTERM");
    const t = setTimeout(() => p.kill("SIGKILL"), 5000);
    const st = await p.status;
    clearTimeout(t);
    assertEquals(st.signal, null, "SIGTERM drains and exits (the engine Worker is closed on the signal)");
  }
}

Deno.test("deno task serve: starts on --port 0; without a model it says what to do", async () => {
  await withProcess(
    [
      "run",
      "-A",
      "server/serve.ts",
      "--model",
      `${TESTDATA}/llama`,
      "--port",
      "0",
      "--slots",
      "2",
      "--quiet",
    ],
    {},
    async (base) => {
      const h = await (await fetch(`${base}/health`)).json();
      assertEquals([h.status, h.model, h.slots], ["ok", "llama", 2]);
    },
  );
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}server/serve.ts`],
    env: { XDG_RUNTIME_DIR: "/tmp", WEBTUNE_MODEL: "" },
    cwd: "/tmp",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(r.code, 1);
  const err = new TextDecoder().decode(r.stderr);
  assert(/^error: no model: pass --model DIR/.test(err), err);
});

Deno.test("deno serve --parallel server/main.ts: two serve workers, each with its own engine", async () => {
  await withProcess(
    [
      "serve",
      "--parallel",
      "-A",
      "--host",
      "127.0.0.1",
      "--port",
      String(20000 + Math.floor(Math.random() * 20000)),
      "server/main.ts",
    ],
    { DENO_JOBS: "2", WEBTUNE_MODEL: `${TESTDATA}/llama`, WEBTUNE_SLOTS: "2", WEBTUNE_QUIET: "1" },
    async (base) => {
      const res = await Promise.all([0, 1, 2, 3].map(() =>
        fetch(`${base}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", connection: "close" },
          body: JSON.stringify({ messages: [{ role: "user", content: "hi" }], max_tokens: 4 }),
        })
      ));
      const texts = await Promise.all(
        res.map(async (r) => (assertEquals(r.status, 200), (await r.json()).choices[0].message.content)),
      );
      assert(texts.every((t) => t === texts[0]), "every worker gives the same greedy answer");
    },
  );
});
