/**
 * The HTTP app in-process (app.request()) over a ModelServer on the tiny llama: answers equal the engine
 * run directly on the same template-encoded prompt, SSE parsed the way an OpenAI client does, every
 * error status with its JSON shape, request ids, CORS, and a disconnect that frees the batch slot.
 */
import { assert, assertEquals } from "../assert.ts";
import { testGpu } from "../util.ts";
import { denoFs } from "../../platform/deno_fs.ts";
import { openModel } from "../../src/engine/open.ts";
import { ModelServer, type ServeBackend, servedModel } from "../../src/engine/serving.ts";
import { encodePrompt, fillFields, getTemplate, stopTokenIds } from "../../src/data/templates.ts";
import { createApp } from "../../server/app.ts";
import { demoRoutesFor } from "../../server/demo_routes.ts";
import { TESTDATA } from "../model/golden.ts";
import { readSse } from "./sse.ts";

const gpu = await testGpu();
const m = await openModel(gpu, denoFs, `${TESTDATA}/llama`, { dtype: "f32" });
const server = new ModelServer(servedModel(m), { name: "tiny-llama", slots: 2, chunkSize: 4, maxQueue: 1 });
const app = createApp(server, {
  apiKeys: ["sk-one", "sk-two"],
  corsOrigins: ["https://ui.example"],
  maxBodyBytes: 4096,
});
const H = { "content-type": "application/json", authorization: "Bearer sk-two" };
const post = async (path: string, body: unknown, headers: Record<string, string> = H, signal?: AbortSignal) =>
  await app.request(path, {
    method: "POST",
    headers,
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal,
  });
const CASE = { patient_info: "男,34岁", symptoms: "发热三天,皮疹", test_results: "白细胞升高" };
const CHAT = [{ role: "user" as const, content: "A patient has a fever and a rash." }];

async function errorOf(res: Response, status: number, type: string) {
  assertEquals(res.status, status, await res.clone().text());
  const j = await res.json();
  assertEquals(j.error.type, type);
  assert(typeof j.error.message === "string" && j.error.message.length > 0);
  assert("param" in j.error);
  assert(res.headers.get("x-request-id"), "request id on errors too");
  return j.error;
}

Deno.test("POST /diagnose: the medical_inquiry prompt, the engine's greedy answer, usage and disclaimer", async () => {
  const res = await post("/diagnose", { ...CASE, max_tokens: 12 });
  assertEquals(res.status, 200);
  assert(res.headers.get("x-request-id"));
  const j = await res.json();
  const t = getTemplate("medical_inquiry");
  const ids = encodePrompt(t, m.tokenizer, [{ role: "user", content: fillFields(t.fields!.prompt, CASE) }]);
  const want = await m.engine.generate({
    prompts: [ids],
    maxNewTokens: 12,
    eosTokenIds: stopTokenIds(t, m.tokenizer),
  });
  assertEquals(j.diagnosis, want.sequences[0].text.trim());
  assertEquals(j.usage, { prompt_tokens: ids.length, completion_tokens: want.sequences[0].tokenIds.length });
  assertEquals(j.model, "tiny-llama");
  assert(j.latency_ms >= 0 && j.disclaimer.includes("not a medical diagnosis"));
  // Streaming: deltas then the same final object, then [DONE].
  const s = await readSse(await post("/diagnose", { ...CASE, max_tokens: 12, stream: true }));
  assertEquals(s.done, true);
  const last = s.events.at(-1) as { diagnosis: string };
  assertEquals(last.diagnosis, j.diagnosis);
  assertEquals(s.events.slice(0, -1).map((e) => (e as { delta: string }).delta).join("").trim(), j.diagnosis);
});

Deno.test("POST /v1/chat/completions: chat template, stop/length, SSE as an OpenAI client reads it", async () => {
  const ids = m.tokenizer.encodeChat(CHAT, { addGenerationPrompt: true });
  const want = await m.engine.generate({ prompts: [ids], maxNewTokens: 10 });
  const res = await post("/v1/chat/completions", {
    model: "tiny-llama",
    messages: CHAT,
    max_tokens: 10,
    temperature: 0,
  });
  assertEquals(res.status, 200);
  const j = await res.json();
  assertEquals(j.object, "chat.completion");
  assertEquals(j.choices[0].message, { role: "assistant", content: want.sequences[0].text });
  assertEquals(j.choices[0].finish_reason, want.sequences[0].finishReason === "length" ? "length" : "stop");
  assertEquals(j.usage.prompt_tokens, ids.length);
  // OpenAI client loop: concatenate delta.content until finish_reason, then [DONE].
  const s = await readSse(
    await post("/v1/chat/completions", {
      messages: CHAT,
      max_tokens: 10,
      stream: true,
      stream_options: { include_usage: true },
    }),
  );
  assertEquals(s.done, true);
  let text = "", finish = null, role = null, usage = null;
  for (
    const e of s.events as {
      choices: { delta: { role?: string; content?: string }; finish_reason: string | null }[];
      usage?: unknown;
    }[]
  ) {
    if (e.usage) usage = e.usage;
    for (const ch of e.choices) {
      role ??= ch.delta.role ?? null;
      text += ch.delta.content ?? "";
      finish ??= ch.finish_reason;
    }
  }
  assertEquals([role, text, finish], ["assistant", j.choices[0].message.content, j.choices[0].finish_reason]);
  assertEquals(usage, j.usage);
  // A stop string taken from the answer ends it early with finish_reason "stop".
  const stop = j.choices[0].message.content.slice(3, 5);
  const r2 = await (await post("/v1/chat/completions", { messages: CHAT, max_tokens: 10, stop })).json();
  assertEquals(r2.choices[0].finish_reason, "stop");
  assertEquals(
    r2.choices[0].message.content,
    j.choices[0].message.content.slice(0, j.choices[0].message.content.indexOf(stop)),
  );
});

Deno.test("GET /v1/models, /health, /metrics", async () => {
  const auth = { authorization: "Bearer sk-one" };
  const models = await (await app.request("/v1/models", { headers: auth })).json();
  assertEquals(models.data[0].id, "tiny-llama");
  const health = await app.request("/health"); // no key needed
  assertEquals(health.status, 200);
  assertEquals((await health.json()).status, "ok");
  const text = await (await app.request("/metrics", { headers: auth })).text();
  for (
    const k of [
      "webtune_http_requests_total{",
      "webtune_http_request_duration_seconds_bucket{",
      "webtune_tokens_per_second",
      "webtune_queue_depth 0",
      "webtune_gpu_memory_bytes",
    ]
  ) {
    assert(text.includes(k), `metrics lack ${k}`);
  }
  assert(/webtune_gpu_memory_bytes [1-9]\d*/.test(text));
});

Deno.test("errors: 400 401 404 413 415 429 503 500 as JSON, CORS", async () => {
  await errorOf(await post("/diagnose", { ...CASE, symptoms: "" }), 400, "invalid_request_error");
  const e = await errorOf(await post("/diagnose", { ...CASE, extra: 1 }), 400, "invalid_request_error");
  assert(e.message.includes("extra") || e.param === null || e.param === "extra");
  assertEquals(
    (await errorOf(
      await post("/diagnose", { patient_info: "x", symptoms: "y" }),
      400,
      "invalid_request_error",
    )).param,
    "test_results",
  );
  await errorOf(await post("/diagnose", "{not json"), 400, "invalid_request_error");
  assertEquals(
    (await errorOf(
      await post("/v1/chat/completions", { messages: CHAT, n: 2 }),
      400,
      "invalid_request_error",
    )).param,
    "n",
  );
  const long = await post("/v1/chat/completions", { messages: CHAT, max_tokens: 5000 });
  assertEquals((await errorOf(long, 400, "invalid_request_error")).param, "max_tokens");
  await errorOf(
    await post("/diagnose", CASE, { "content-type": "application/json" }),
    401,
    "authentication_error",
  );
  await errorOf(
    await post("/diagnose", CASE, { ...H, authorization: "Bearer sk-on" }),
    401,
    "authentication_error",
  );
  await errorOf(await app.request("/nope", { headers: H }), 404, "not_found_error");
  assertEquals(
    (await errorOf(
      await post("/v1/chat/completions", { model: "gpt-4", messages: CHAT }),
      404,
      "model_not_found",
    )).param,
    "model",
  );
  await errorOf(
    await post("/diagnose", { ...CASE, symptoms: "x".repeat(5000) }),
    413,
    "invalid_request_error",
  );
  await errorOf(
    await post("/diagnose", CASE, { ...H, "content-type": "text/plain" }),
    415,
    "invalid_request_error",
  );
  // CORS preflight and headers for the configured origin only.
  const pre = await app.request("/diagnose", {
    method: "OPTIONS",
    headers: { origin: "https://ui.example", "access-control-request-method": "POST" },
  });
  assertEquals(pre.headers.get("access-control-allow-origin"), "https://ui.example");
  const other = await app.request("/health", { headers: { origin: "https://evil.example" } });
  assert(other.headers.get("access-control-allow-origin") !== "https://evil.example");
  // 429: a rate-limited app over the same engine.
  const limited = createApp(server, { rateLimitPerMinute: 2 });
  for (let i = 0; i < 2; i++) assertEquals((await limited.request("/v1/models")).status, 200);
  const r429 = await limited.request("/v1/models");
  await errorOf(r429, 429, "rate_limit_error");
  assert(Number(r429.headers.get("retry-after")) >= 1);
  // 503: 2 slots busy + 1 queued fill the engine; one more is refused with Retry-After.
  const four = await Promise.all(
    [0, 1, 2, 3].map(() => post("/v1/chat/completions", { messages: CHAT, max_tokens: 40 })),
  );
  assertEquals(four.map((r) => r.status).sort().join(), "200,200,200,503");
  const r503 = four.find((r) => r.status === 503)!;
  await errorOf(r503, 503, "overloaded_error");
  assertEquals(r503.headers.get("retry-after"), "2");
  // 500: an engine failure reaches the client as JSON (fake backend: the GPU cannot be made to fail).
  const broken: ServeBackend = {
    ...server,
    info: () => server.info(),
    stats: () => server.stats(),
    cancel: () => Promise.resolve(),
    submit: (_req, onEvent) => {
      setTimeout(
        () =>
          onEvent({
            type: "error",
            error: { status: 500, type: "internal_error", message: "device lost", param: null },
          }),
        1,
      );
      return Promise.resolve({ id: 1 });
    },
  };
  await errorOf(
    await createApp(broken).request("/diagnose", { method: "POST", headers: H, body: JSON.stringify(CASE) }),
    500,
    "internal_error",
  );
});

Deno.test("a client that disconnects frees its batch slot (non-streaming and streaming)", async () => {
  const ac = new AbortController();
  const pending = post("/v1/chat/completions", { messages: CHAT, max_tokens: 200 }, H, ac.signal).catch(() =>
    null
  );
  await new Promise((r) => setTimeout(r, 150));
  assertEquals((await server.stats()).activeSlots, 1);
  ac.abort();
  await pending;
  for (let i = 0; i < 50 && (await server.stats()).activeSlots > 0; i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assertEquals((await server.stats()).activeSlots, 0);
  const before = (await server.stats()).generatedTokens;
  assert(before < 200 * 10, "the cancelled request stopped early");
  const res = await post("/v1/chat/completions", { messages: CHAT, max_tokens: 200, stream: true });
  const reader = res.body!.getReader();
  await reader.read();
  await reader.cancel();
  for (let i = 0; i < 50 && (await server.stats()).activeSlots > 0; i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assertEquals((await server.stats()).activeSlots, 0);
  assertEquals((await post("/diagnose", { ...CASE, max_tokens: 3 })).status, 200);
});

Deno.test("bodies are logged only when enabled; a request past the timeout gets 503", async () => {
  const quiet: string[] = [], loud: string[] = [];
  const body = { ...CASE, max_tokens: 2 };
  const hdr = { "content-type": "application/json" };
  await createApp(server, { log: (l) => quiet.push(l) }).request("/diagnose", {
    method: "POST",
    headers: hdr,
    body: JSON.stringify(body),
  });
  await createApp(server, { log: (l) => loud.push(l), logBodies: true })
    .request("/diagnose", { method: "POST", headers: hdr, body: JSON.stringify(body) });
  assertEquals(quiet.length, 1);
  assert(/ POST \/diagnose 200 \d+ms$/.test(quiet[0]), quiet[0]);
  assert(!quiet[0].includes("皮疹"), "patient data must not be logged by default");
  assert(loud[0].includes("皮疹"), loud[0]);
  const slow = createApp(server, { requestTimeoutMs: 1 });
  const res = await slow.request("/diagnose", {
    method: "POST",
    headers: hdr,
    body: JSON.stringify({ ...CASE, max_tokens: 100 }),
  });
  await errorOf(res, 503, "timeout_error");
  assertEquals(res.headers.get("retry-after"), "2");
});

Deno.test("the demo's page config and model files are public GETs before API-key checks", async () => {
  const demo = demoRoutesFor({ model: `${TESTDATA}/llama`, adapter: `${TESTDATA}/llama_lora` })!;
  const withDemo = createApp(server, { apiKeys: ["sk-one"], publicRoutes: demo });
  const cfg = await withDemo.request("/demo/config.json");
  assertEquals(cfg.status, 200);
  const j = await cfg.json();
  assertEquals([j.model, j.adapter], ["llama", "llama_lora"]);
  const file = await withDemo.request("/models/llama/config.json");
  assertEquals(file.status, 200);
  assertEquals((await file.json()).model_type, "llama");
  assertEquals((await withDemo.request("/v1/models")).status, 401, "the API still needs a key");
  const escape = await withDemo.request("/models/llama/..%2F..%2F..%2Fdeno.json");
  assert(escape.status === 404 || escape.status === 400, `nothing outside the folders: got ${escape.status}`);
  assertEquals(
    demoRoutesFor({ model: "", shape: "qwen2.5-0.5b" }),
    null,
    "random-weight bench models have no files",
  );
});
