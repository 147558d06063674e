/**
 * DemoSession — what the browser worker hosts — driven from Deno over HTTP (demoRoutes + Cache API):
 * load progress phases, the second load reads the cache, the prompt is the medical_inquiry template's,
 * the streamed pieces add up to the answer, stop() cancels (keeping the greedy prefix), bad input is
 * refused. (Equality with `deno task generate` in a real browser: tests/web/demo_test.ts.)
 */
import { Hono } from "hono";
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { demoRoutes } from "../../server/demo_routes.ts";
import {
  DemoSession,
  diagnosisPrompt,
  type LoadProgress,
  withSubgroupsDirective,
} from "../../web/session.ts";
import { encodePrompt, getTemplate } from "../../src/data/templates.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const CASE = { patient_info: "患者女,30岁", symptoms: "乏力两周", test_results: "血红蛋白降低" };

Deno.test({
  name: "DemoSession: load over HTTP (then from the cache), stream, stop, validation",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const app = new Hono().route(
      "/",
      demoRoutes({
        models: { llama: `${ROOT}tests/testdata/llama`, llama_lora: `${ROOT}tests/testdata/llama_lora` },
        model: "llama",
        adapter: "llama_lora",
      }),
    );
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
    const modelsUrl = `http://127.0.0.1:${server.addr.port}/models/`;
    const versions = { llama: "1", llama_lora: "1" };
    const cacheName = `webtune-test-${crypto.randomUUID()}`;
    const s = new DemoSession();
    try {
      const gpu = await s.init();
      assert(gpu.adapter.length > 0, "adapter name");
      await assertRejects(() => s.diagnose(CASE, { maxNewTokens: 4 }), /no model is loaded/);

      const phases: LoadProgress["phase"][] = [];
      const info = await s.load(
        { modelsUrl, model: "llama", adapter: "llama_lora", versions, cacheName },
        (p) => {
          if (phases.at(-1) !== p.phase) phases.push(p.phase);
        },
      );
      assertEquals(info.adapter, "llama_lora");
      assertEquals(info.layers, 2);
      assert(info.downloaded.includes("llama/model.safetensors"), info.downloaded.join());
      assert(info.networkBytes > 0 && info.cachedBytes === 0, `${info.networkBytes} / ${info.cachedBytes}`);
      assertEquals(phases.filter((p) => p !== "download").join(","), "upload,warmup");

      const again = await s.load({ modelsUrl, model: "llama", adapter: "llama_lora", versions, cacheName });
      assertEquals(again.downloaded, [], "the second load reads the Cache API");
      assertEquals(again.cachedBytes, info.networkBytes);

      const pieces: string[] = [];
      let lastCount = 0;
      const r = await s.diagnose(CASE, { maxNewTokens: 36 }, (u) => {
        pieces.push(u.text);
        assert(u.tokens >= lastCount, "token count grows");
        lastCount = u.tokens;
      });
      assertEquals(
        r.promptText,
        "患者信息:患者女,30岁\n症状描述:乏力两周\n检查结果:血红蛋白降低\n\n诊断建议:",
      );
      assertEquals(r.promptText, diagnosisPrompt(CASE));
      assert(r.promptIds[0] === 0, "llama's BOS first (the template's bos slot)");
      assert(pieces.length >= 3, `streamed in ${pieces.length} pieces`);
      assertEquals(pieces.join(""), r.text);
      assertEquals(lastCount, r.tokenIds.length);
      assert(r.finishReason === "length" || r.finishReason === "eos", r.finishReason);
      assert(r.tokensPerSecond !== null && r.tokensPerSecond > 0, "decode speed");

      let n = 0;
      const stopped = await s.diagnose(CASE, { maxNewTokens: 100 }, () => {
        if (++n === 1) s.stop();
      });
      assertEquals(stopped.finishReason, "cancelled");
      assert(stopped.tokenIds.length < 100, `stopped after ${stopped.tokenIds.length} tokens`);
      assertEquals(stopped.tokenIds, r.tokenIds.slice(0, stopped.tokenIds.length), "greedy: same prefix");

      await assertRejects(
        () => s.diagnose({ ...CASE, symptoms: "  " }, { maxNewTokens: 4 }),
        /symptoms is empty/,
      );
      await assertRejects(() => s.diagnose(CASE, { maxNewTokens: 0 }), /positive integer/);
      await assertRejects(
        () => s.load({ modelsUrl, model: "missing", versions, cacheName }),
        /missing does not exist/,
      );
    } finally {
      s.dispose();
      await server.shutdown();
      await caches.delete(cacheName);
    }
  },
});

Deno.test("the prompt is the medical_inquiry template's, ids as encodePrompt", () => {
  const t = getTemplate("medical_inquiry");
  const tok = {
    encode: (s: string) => [...s].map((c) => c.charCodeAt(0)),
    bosTokenId: 7,
    eosTokenIds: [8],
    tokenToId: () => undefined,
  };
  const ids = encodePrompt(t, tok, [{ role: "user", content: diagnosisPrompt(CASE) }]);
  assertEquals(ids[0], 7);
  assertEquals(String.fromCharCode(...ids.slice(1)), diagnosisPrompt(CASE));
});

Deno.test("withSubgroupsDirective: only modules that use subgroup builtins, once", () => {
  assertEquals(withSubgroupsDirective("fn f() { let x = 1; }"), "fn f() { let x = 1; }");
  assertEquals(
    withSubgroupsDirective("let s = subgroupAdd(x);"),
    "enable subgroups;\nlet s = subgroupAdd(x);",
  );
  const has = "enable f16;\nenable subgroups;\nlet s = subgroupMax(x);";
  assertEquals(withSubgroupsDirective(has), has);
  assert(withSubgroupsDirective("@builtin(subgroup_size) n: u32").startsWith("enable subgroups;"));
});
