/**
 * `deno task eval compare` end to end as a user runs it (a subprocess): two local models (the tiny
 * llama without and with its LoRA adapter) and one endpoint that is a real HTTP server on loopback
 * speaking OpenAI chat-completions (Hono, in this test). Checks: same samples for every model, the
 * endpoint's answers scored exactly, comparison.png exists with the size of the rendered spec, and the
 * spec's numbers equal every model's metrics.json. Plus the OpenAI client's retries and errors, and the
 * client against our own server (server/app.ts) on loopback: its answers equal our engine's.
 */
import { Hono } from "hono";
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { TESTDATA } from "../model/golden.ts";
import { openaiPredictor } from "../../src/eval/openai_client.ts";
import { modelSources, parseModelList, resolveLocal } from "../../src/eval/compare.ts";
import { memoryFs } from "../../src/io/fs.ts";
import { comparisonSpec, initPlotRenderer, pngSize, renderPlot } from "../../src/eval/plot.ts";
import { testGpu } from "../util.ts";
import { denoFs } from "../../platform/deno_fs.ts";
import { openModel } from "../../src/engine/open.ts";
import { ModelServer, servedModel } from "../../src/engine/serving.ts";
import { createApp } from "../../server/app.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const TEST = JSON.parse(Deno.readTextFileSync(`${ROOT}data/default/test.json`)) as Record<string, string>[];

interface Seen {
  auth: string | null;
  model: string;
  prompts: string[];
}

/** An OpenAI-compatible server: the right diagnosis for even test records, a wrong one otherwise. */
function fakeOpenAI(opts: { failFirst?: number } = {}) {
  const seen: Seen = { auth: null, model: "", prompts: [] };
  let failures = opts.failFirst ?? 0;
  const byPrompt = new Map(TEST.map((r, i) => [r.instruction, i]));
  const app = new Hono();
  app.post("/v1/chat/completions", async (c) => {
    if (failures > 0) {
      failures--;
      return c.json({ error: { message: "rate limited" } }, 429, { "retry-after": "0" });
    }
    const body = await c.req.json();
    seen.auth = c.req.header("authorization") ?? null;
    seen.model = body.model;
    const user = body.messages.at(-1).content as string;
    seen.prompts.push(user);
    const i = byPrompt.get(user);
    if (i === undefined) return c.json({ error: { message: `unknown prompt ${user}` } }, 400);
    const content = i % 2 === 0 ? TEST[i].output.split("。")[0] + "。" : "诊断：感冒。";
    return c.json({
      id: "x",
      object: "chat.completion",
      model: body.model,
      choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
      usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
    });
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
  return { seen, server, baseUrl: `http://127.0.0.1:${server.addr.port}/v1` };
}

Deno.test({
  name: "eval compare: two local models + a loopback OpenAI server → table, metrics, comparison.png",
  sanitizeResources: false,
  fn: async () => {
    const api = fakeOpenAI({ failFirst: 1 });
    const out = await Deno.makeTempDir();
    try {
      const args = [
        "run",
        "-A",
        `${ROOT}cli/eval.ts`,
        "compare",
        "--models",
        `base=${TESTDATA}/llama,lora=${TESTDATA}/llama+${TESTDATA}/llama_lora,gpt=openai:gpt-test`,
        "--test",
        `${ROOT}data/default/test.json`,
        "--template",
        "medical_inquiry",
        "--num-samples",
        "6",
        "--seed",
        "3",
        "--max-new-tokens",
        "6",
        "--batch-size",
        "3",
        "--bootstrap",
        "200",
        "--openai-base-url",
        api.baseUrl,
        "--openai-api-key",
        "sk-test",
        "--font",
        FONT,
        "--font-family",
        "DejaVu Sans",
        "--out",
        out,
      ]; // prettier-ignore
      const r = await new Deno.Command(Deno.execPath(), {
        args,
        stdout: "piped",
        stderr: "piped",
        env: { XDG_RUNTIME_DIR: "/tmp" },
      }).output();
      const err = new TextDecoder().decode(r.stderr), stdout = new TextDecoder().decode(r.stdout);
      assertEquals(r.code, 0, err);
      assert(stdout.includes("| model |") && stdout.includes("| gpt |"), stdout);
      assertEquals(api.seen.auth, "Bearer sk-test");
      assertEquals(api.seen.model, "gpt-test");

      const rows = (name: string) =>
        Deno.readTextFileSync(`${out}/${name}/generated_predictions.jsonl`).trim().split("\n").map((l) =>
          JSON.parse(l)
        );
      const [base, lora, gpt] = ["base", "lora", "gpt"].map(rows);
      // Same samples, in the same order, for every model.
      for (const m of [lora, gpt]) assertEquals(m.map((x) => x.index), base.map((x) => x.index));
      assertEquals(base.length, 6);
      assertEquals(api.seen.prompts.sort(), base.map((x) => TEST[x.index].instruction).sort());
      assert(base.some((x, i) => x.predict !== lora[i].predict), "the adapter changes the answers");
      // The endpoint's answers are scored exactly: right on even records only.
      const gptMetrics = JSON.parse(Deno.readTextFileSync(`${out}/gpt/metrics.json`));
      const want = gpt.filter((x) => x.index % 2 === 0).length / gpt.length;
      assertEquals(gptMetrics.metrics.accuracy.value, want);
      assertEquals(gpt.map((x) => x.correct), gpt.map((x) => (x.index % 2 === 0 ? 1 : 0)));

      // The figure: the spec's numbers equal metrics.json, and the PNG is that spec rendered.
      const cmp = JSON.parse(Deno.readTextFileSync(`${out}/comparison.json`));
      const scores = cmp.spec.hconcat[0].data.values, latency = cmp.spec.hconcat[1].data.values;
      for (const name of ["base", "lora", "gpt"]) {
        const m = JSON.parse(Deno.readTextFileSync(`${out}/${name}/metrics.json`));
        const mine = scores.filter((d: { model: string }) => d.model === name);
        assertEquals(mine.map((d: { metric: string }) => d.metric), Object.keys(m.metrics));
        for (const d of mine) {
          assertEquals([d.value, d.low, d.high], [
            m.metrics[d.metric].value,
            m.metrics[d.metric].low,
            m.metrics[d.metric].high,
          ]);
        }
        const l = latency.find((d: { model: string }) => d.model === name);
        assertEquals([l.value, l.low, l.high], [m.latency_ms.value, m.latency_ms.low, m.latency_ms.high]);
      }
      const png = Deno.readFileSync(`${out}/comparison.png`);
      await initPlotRenderer(
        Deno.readFileSync(new URL(import.meta.resolve("@resvg/resvg-wasm/index_bg.wasm"))),
      );
      const again = await renderPlot(cmp.spec, {
        fonts: [Deno.readFileSync(FONT)],
        fontFamily: "DejaVu Sans",
      });
      assertEquals(pngSize(png), { width: 1200, height: again.height });
      assertEquals(comparisonSpec(cmp.models, { title: cmp.spec.title }), cmp.spec);
      const md = Deno.readTextFileSync(`${out}/comparison.md`);
      assert(md.includes("comparison.png") && md.includes("Accuracy per disease"), md);
    } finally {
      await api.server.shutdown();
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test("openai client: retries 429/5xx, fails at once on 400, spaces requests by rpm", async () => {
  const api = fakeOpenAI({ failFirst: 2 });
  try {
    const msgs = [{ role: "user" as const, content: TEST[0].instruction }];
    const p = openaiPredictor({ baseUrl: api.baseUrl, model: "m", backoffMs: 1, maxRetries: 2 });
    const [r] = await p.predict([msgs]);
    assertEquals(r.text, TEST[0].output.split("。")[0] + "。");
    assertEquals(r.tokens, 5);
    assertEquals(api.seen.auth, null, "no key, no header");
    const few = openaiPredictor({ baseUrl: api.baseUrl, model: "m", backoffMs: 1, maxRetries: 3 });
    const e = await assertRejects(
      () => few.predict([[{ role: "user", content: "??" }]]),
      /HTTP 400.*unknown prompt/,
    );
    assert(!e.message.includes("attempts"), `a 400 is not retried: ${e.message}`);
    const slow = openaiPredictor({
      baseUrl: api.baseUrl,
      model: "m",
      requestsPerMinute: 600,
      concurrency: 3,
    });
    const t0 = performance.now();
    await slow.predict([msgs, msgs, msgs]);
    assert(performance.now() - t0 >= 190, "3 requests at 600/min take ≥ 200 ms");
    await assertRejects(
      () =>
        openaiPredictor({ baseUrl: "http://127.0.0.1:9/v1", model: "m", maxRetries: 1, backoffMs: 1 })
          .predict([msgs]),
      /after 2 attempts/,
    );
  } finally {
    await api.server.shutdown();
  }
});

Deno.test("--models parsing", () => {
  assertEquals(parseModelList("a=m, b=m+l ,c=openai:gpt-4o"), [
    { name: "a", kind: "local", model: "m" },
    { name: "b", kind: "local", model: "m", adapter: "l" },
    { name: "c", kind: "openai", model: "gpt-4o" },
  ]);
  for (const bad of ["", "a", "=m", "a=", "a=m,a=n", "a=openai:"]) {
    let threw = false;
    try {
      parseModelList(bad);
    } catch {
      threw = true;
    }
    assert(threw, `"${bad}" should be rejected`);
  }
});

Deno.test({
  name: "openai client against our own server on loopback: answers equal the engine's greedy output",
  sanitizeResources: false,
  fn: async () => {
    const m = await openModel(await testGpu(), denoFs, `${TESTDATA}/llama`, { dtype: "f32" });
    const app = createApp(new ModelServer(servedModel(m), { name: "tiny-llama", slots: 2, chunkSize: 4 }), {
      apiKeys: ["sk-x"],
    });
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
    try {
      const chats = [
        [{ role: "user" as const, content: "A patient has a fever and a rash." }],
        [{ role: "user" as const, content: "患者男,34岁,发热三天" }],
        [{ role: "user" as const, content: "Weakness of both legs" }],
      ];
      const p = openaiPredictor({
        baseUrl: `http://127.0.0.1:${server.addr.port}/v1`,
        apiKey: "sk-x",
        model: "tiny-llama",
        maxTokens: 8,
        concurrency: 2,
      });
      const got = await p.predict(chats);
      const direct = await m.engine.generate({
        prompts: chats.map((c) => m.tokenizer.encodeChat(c, { addGenerationPrompt: true })),
        maxNewTokens: 8,
      });
      assertEquals(got.map((g) => g.text), direct.sequences.map((s) => s.text.trim()));
      assertEquals(got.map((g) => g.tokens), direct.sequences.map((s) => s.tokenIds.length));
      const wrongKey = openaiPredictor({
        baseUrl: `http://127.0.0.1:${server.addr.port}/v1`,
        apiKey: "nope",
        model: "x",
      });
      await assertRejects(() => wrongKey.predict([chats[0]]), /HTTP 401/);
    } finally {
      await server.shutdown();
      m.dispose();
    }
  },
});

Deno.test("resolveLocal: an adapter folder finds its base (config, --base), or says how to name it", async () => {
  const fs = memoryFs({
    "out/lora/adapter_config.json": JSON.stringify({ base_model_name_or_path: "models/base" }),
    "models/base/config.json": "{}",
    "models/other/config.json": "{}",
    "out/orphan/adapter_config.json": JSON.stringify({ base_model_name_or_path: "/root/gone" }),
  });
  const local = (model: string, adapter?: string) => ({
    name: "ours",
    kind: "local" as const,
    model,
    adapter,
  });
  assertEquals(await resolveLocal(fs, local("out/lora")), { model: "models/base", adapter: "out/lora" });
  assertEquals(await resolveLocal(fs, local("out/lora"), "models/other"), {
    model: "models/other",
    adapter: "out/lora",
  });
  assertEquals(await resolveLocal(fs, local("models/base")), { model: "models/base" });
  assertEquals(await resolveLocal(fs, local("models/base", "out/lora")), {
    model: "models/base",
    adapter: "out/lora",
  });
  const openLocal = () => Promise.reject(new Error("not opened here"));
  const srcs = await modelSources(fs, parseModelList("a=out/lora,g=openai:gpt-4o"), {
    openai: { baseUrl: "http://h/v1" },
    openLocal,
  });
  assertEquals(srcs.map((x) => x.source), ["models/base + out/lora", "openai:gpt-4o at http://h/v1"]);
  await assertRejects(
    () =>
      modelSources(fs, parseModelList("a=models/base,b=models/typo"), { openai: { baseUrl: "" }, openLocal }),
    /--models b: folder models\/typo does not exist/,
  );
  await assertRejects(
    () => resolveLocal(fs, local("out/orphan")),
    /ours=BASE_DIR\+out\/orphan or pass --base/,
  );
});
