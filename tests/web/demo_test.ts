/**
 * The browser demo end to end: headless Debian chromium (WebGPU through SwiftShader: no shader-f16, so
 * the f32 path) opens /demo served by demoRoutes with the tiny test Llama + LoRA adapter, submits a case,
 * and the streamed answer must equal `deno task generate`'s greedy output for the same prompt and model
 * (same kernels → same tokens). A second page load must open the model from the browser cache (no model
 * file downloaded again) and, without subgroups, give the same tokens; a browser without WebGPU must get
 * the clear message. Screenshots go to out/web/. Skipped, with a message, only when /usr/bin/chromium is
 * missing (`apt-get install -y chromium`).
 */
import { Hono } from "hono";
import { type Browser, chromium, type Page } from "playwright-core";
import { assert, assertEquals } from "../assert.ts";
import { buildWeb } from "../../web/build.ts";
import { demoRoutes } from "../../server/demo_routes.ts";
import { createApp } from "../../server/app.ts";
import { createGpu } from "../../src/gpu/mod.ts";
import { openModel } from "../../src/engine/open.ts";
import { ModelServer, servedModel } from "../../src/engine/serving.ts";
import { denoFs } from "../../platform/deno_fs.ts";
import { diagnosisPrompt } from "../../web/session.ts";
import { CHROMIUM, chromiumArgs } from "./chromium.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const MODEL = `${ROOT}tests/testdata/llama`;
const ADAPTER = `${ROOT}tests/testdata/llama_lora`;
const OUT = `${ROOT}out/web`;
const CASE = {
  patient_info: "患者男,45岁",
  symptoms: "发热三天,咳嗽,胸痛",
  test_results: "白细胞升高,胸片示右下肺斑片影。",
};
// More than two decode chunks (16 steps each), so the answer streams in several pieces.
const MAX_NEW = 34;

// CI (.ci/run) sets WEBTUNE_REQUIRE_CHROMIUM=1: there a missing browser fails the test instead of skipping it.
const haveChromium = Deno.env.get("WEBTUNE_REQUIRE_CHROMIUM") === "1" ||
  await Deno.stat(CHROMIUM).then(() => true, () => false);
if (!haveChromium) {
  console.warn(`tests/web/demo_test.ts skipped: ${CHROMIUM} is missing (apt-get install -y chromium)`);
}

/** `deno task generate --json` on the same prompt, f32 weights (the browser has no shader-f16). */
async function generateReference(): Promise<{ prompt_ids: number[]; token_ids: number[]; text: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}cli/generate.ts`,
      "--model",
      MODEL,
      "--adapter",
      ADAPTER,
      "--prompt",
      diagnosisPrompt(CASE),
      "--dtype",
      "f32",
      "--max-new-tokens",
      String(MAX_NEW),
      "--json",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  assert(out.success, `generate failed: ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(stdout.trim().split("\n").pop()!);
}

/**
 * The API server's app (server/app.ts, API keys on) on 127.0.0.1 with the demo mounted the way
 * `deno task serve` mounts it, over its own build; counts GET requests for model files.
 */
async function startHost(distDir: string) {
  const gets: string[] = [];
  const gpu = await createGpu();
  const opened = await openModel(gpu, denoFs, MODEL, { adapter: ADAPTER, dtype: "f32" });
  const backend = new ModelServer(servedModel(opened), { name: "tiny-llama", slots: 1, chunkSize: 8 });
  const demo = demoRoutes({
    models: { llama: MODEL, llama_lora: ADAPTER },
    model: "llama",
    adapter: "llama_lora",
    distDir,
  });
  const app = new Hono();
  app.use("/models/*", async (c, next) => {
    if (c.req.method === "GET") gets.push(c.req.path);
    await next();
  });
  app.route("/", createApp(backend, { apiKeys: ["sk-test"], publicRoutes: demo }));
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  const close = async () => {
    await server.shutdown();
    opened.dispose();
    gpu.destroy();
  };
  return { url: `http://127.0.0.1:${server.addr.port}`, gets, close };
}

/** Where the page's start-up ends (body[data-state]). */
const END_STATES = ["ready", "no-webgpu", "load-failed", "worker-failed"];

async function waitForState(page: Page, states: string[], timeout = 60_000): Promise<string> {
  const sel = states.map((s) => `body[data-state="${s}"]`).join(", ");
  await page.waitForSelector(sel, { timeout, state: "attached" });
  return await page.evaluate(() => document.body.dataset.state ?? "");
}

Deno.test({
  name: "demo: streamed answer equals generate's greedy output; a second load reads the cache",
  ignore: !haveChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await Deno.mkdir(OUT, { recursive: true });
    const distDir = await Deno.makeTempDir({ prefix: "webtune-dist-" });
    const [want] = await Promise.all([generateReference(), buildWeb({ outDir: distDir })]);
    const host = await startHost(distDir);
    let browser: Browser | null = null;
    const logs: string[] = [];
    try {
      browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: chromiumArgs() });
      const context = await browser.newContext({ viewport: { width: 900, height: 1100 } });
      const page = await context.newPage();
      page.on("console", (m) => logs.push(`${m.type()}: ${m.text()}`));
      page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));
      await page.goto(`${host.url}/demo`);
      const state = await waitForState(page, END_STATES);
      const why = `${await page.textContent("#error")} ${await page.textContent("#nogpu")}`.trim();
      assertEquals(
        state,
        "ready",
        `page state: ${why.split("\n")[0]}\n(console: ${logs.join("\n").slice(0, 4000)})`,
      );
      const gpuText = (await page.textContent("#gpu")) ?? "";
      assert(/f32/.test(gpuText), `SwiftShader has no shader-f16, so the f32 path: ${gpuText}`);
      assertEquals(await page.textContent("#adapter"), "llama_lora");
      assert(host.gets.some((p) => p.endsWith("/model.safetensors")), "the first load downloads the model");

      await page.fill("#patient_info", CASE.patient_info);
      await page.fill("#symptoms", CASE.symptoms);
      await page.fill("#test_results", CASE.test_results);
      await page.fill("#max_tokens", String(MAX_NEW));
      // Count how often the answer grows (streaming) and the page's timer ticks (responsiveness).
      await page.evaluate(() => {
        const w = globalThis as unknown as {
          updates: number;
          webtuneDemo: { ticks: number };
          ticks0: number;
        };
        w.updates = 0;
        w.ticks0 = w.webtuneDemo.ticks;
        new MutationObserver(() => w.updates++).observe(document.getElementById("answer")!, {
          childList: true,
          characterData: true,
          subtree: true,
        });
      });
      const t0 = performance.now();
      await page.click("#submit");
      await page.waitForSelector('#answer[data-state="done"], #answer[data-state="failed"]', {
        timeout: 60_000,
      });
      const ms = performance.now() - t0;
      const got = await page.evaluate(() => {
        const a = document.getElementById("answer")!;
        const w = globalThis as unknown as {
          updates: number;
          webtuneDemo: { ticks: number };
          ticks0: number;
        };
        return {
          state: a.dataset.state,
          text: a.textContent ?? "",
          tokenIds: JSON.parse(a.dataset.tokenIds ?? "null"),
          promptIds: JSON.parse(a.dataset.promptIds ?? "null"),
          updates: w.updates,
          ticks: w.webtuneDemo.ticks - w.ticks0,
          error: document.getElementById("error")!.textContent,
          speed: document.getElementById("speed")!.textContent ?? "",
        };
      });
      await page.screenshot({ path: `${OUT}/demo.png`, fullPage: true });
      assertEquals(got.state, "done", `generation failed: ${got.error}\n${logs.join("\n")}`);
      assertEquals(
        got.promptIds,
        want.prompt_ids,
        "prompt ids (medical_inquiry template = generate --prompt)",
      );
      assertEquals(got.tokenIds, want.token_ids, "token ids (browser vs generate)");
      assertEquals(got.text, want.text, "answer text");
      assert(got.updates >= 3, `the answer streams in pieces (${got.updates} updates)`);
      assert(/tokens\/s|词元\/秒/.test(got.speed), `speed shown: ${got.speed}`);
      // 20 ms timer: a page blocked by the GPU work would tick ~0 times during generation.
      assert(got.ticks >= Math.min(10, ms / 100), `page ticks during ${ms.toFixed(0)} ms: ${got.ticks}`);
      console.log(
        `browser: ${got.tokenIds.length} tokens in ${ms.toFixed(0)} ms (${got.speed}) on ${gpuText}`,
      );

      // A second page load, without subgroups (browsers that lack them take the workgroup reductions):
      // the model comes from the Cache API (no model file fetched again) and gives the same greedy tokens.
      const before = host.gets.length;
      await page.goto(`${host.url}/demo/?subgroups=0`);
      assertEquals(await waitForState(page, END_STATES), "ready");
      const fetched = host.gets.slice(before).filter((p) => !/\/(llama|llama_lora)$/.test(p));
      assertEquals(fetched, [], "model files downloaded again on the second load");
      assertEquals(await page.evaluate(() => document.body.dataset.downloaded), "[]");
      const label = (await page.textContent("#progress-label")) ?? "";
      assert(/缓存|cache/.test(label), `load label mentions the cache: ${label}`);
      assert(!/subgroups/.test((await page.textContent("#gpu")) ?? ""), "subgroups off");
      await page.fill("#patient_info", CASE.patient_info);
      await page.fill("#symptoms", CASE.symptoms);
      await page.fill("#test_results", CASE.test_results);
      await page.fill("#max_tokens", "17");
      await page.click("#submit");
      await page.waitForSelector('#answer[data-state="done"], #answer[data-state="failed"]', {
        timeout: 60_000,
      });
      const ids = await page.evaluate(() =>
        JSON.parse(document.getElementById("answer")!.dataset.tokenIds ?? "null")
      );
      assertEquals(ids, want.token_ids.slice(0, 17), "token ids without subgroups");

      // English toggle: labels and the status lines.
      await page.click("#lang");
      assertEquals(await page.textContent('label [data-i18n="symptoms"]'), "Symptoms");
      const english = (await page.textContent("#progress-label")) ?? "";
      assert(/^Model ready .*cached/.test(english), `status lines follow the language: ${english}`);
      assert(/tokens\/s/.test((await page.textContent("#speed")) ?? ""), "speed line in English");
      await page.screenshot({ path: `${OUT}/demo_en.png`, fullPage: true });
    } finally {
      await browser?.close();
      await host.close();
      await Deno.remove(distDir, { recursive: true });
    }
  },
});

Deno.test({
  name: "demo: a browser without WebGPU gets a clear message",
  ignore: !haveChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await Deno.mkdir(OUT, { recursive: true });
    const distDir = await Deno.makeTempDir({ prefix: "webtune-dist-" });
    await buildWeb({ outDir: distDir, check: false });
    const host = await startHost(distDir);
    let browser: Browser | null = null;
    try {
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: chromiumArgs({ webgpu: false }),
      });
      const page = await browser.newPage();
      await page.goto(`${host.url}/demo`);
      assertEquals(await waitForState(page, END_STATES), "no-webgpu");
      const msg = (await page.textContent("#nogpu")) ?? "";
      assert(/WebGPU/.test(msg) && /enable-unsafe-webgpu/.test(msg), `message: ${msg}`);
      assert(await page.isDisabled("#submit"), "the form stays disabled");
      assertEquals(host.gets.length, 0, "no model download without WebGPU");
      await page.screenshot({ path: `${OUT}/demo_no_webgpu.png`, fullPage: true });
    } finally {
      await browser?.close();
      await host.close();
      await Deno.remove(distDir, { recursive: true });
    }
  },
});
