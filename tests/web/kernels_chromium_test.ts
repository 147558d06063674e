/**
 * Every compute pipeline the engine builds in Deno (naga) must also build in Chromium (Tint), which is
 * stricter: uniformity analysis for barriers, no NaN/Inf in constant expressions, `enable subgroups;`.
 * The pipelines are captured in Deno while the tiny Llama + LoRA adapter generates (f32 weights, as
 * browsers without shader-f16 run it; greedy and sampled; with and without subgroups) and compiled in
 * headless Chromium; the failures are listed by kernel. Skipped only when /usr/bin/chromium is missing.
 */
import { chromium } from "playwright-core";
import { assert } from "../assert.ts";
import { createGpu } from "../../src/gpu/mod.ts";
import { openModel } from "../../src/engine/mod.ts";
import { denoFs } from "../../cli/deno_fs.ts";
import { withSubgroupsDirective } from "../../web/session.ts";
import { CHROMIUM, chromiumArgs } from "./chromium.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const haveChromium = await Deno.stat(CHROMIUM).then(() => true, () => false);
if (!haveChromium) {
  console.warn(
    `tests/web/kernels_chromium_test.ts skipped: ${CHROMIUM} is missing (apt-get install -y chromium)`,
  );
}

/** One pipeline as Deno built it. */
interface Captured {
  label: string;
  code: string;
  entry: string;
  constants: Record<string, number>;
  subgroups: boolean;
}

/**
 * The pipelines of a few generate calls on this machine's GPU, f32 weights, with the device limits
 * lowered to `limits` (Chromium's adapter), since launchers size workgroups from the limits.
 */
async function capture(subgroups: boolean, limits: Record<string, number>): Promise<Captured[]> {
  const gpu = await createGpu({ disableF16: true });
  if (!subgroups) (gpu.info as { subgroups: boolean }).subgroups = false;
  const dev = gpu.device;
  const own = dev.limits as unknown as Record<string, number>;
  const lowered: Record<string, number> = {};
  for (const k in own) lowered[k] = k in limits ? Math.min(own[k], limits[k]) : own[k];
  Object.defineProperty(dev, "limits", { value: lowered });
  const codes = new WeakMap<GPUShaderModule, string>();
  const createModule = dev.createShaderModule.bind(dev);
  dev.createShaderModule = (d) => {
    const m = createModule(d);
    codes.set(m, d.code);
    return m;
  };
  const seen = new Map<string, Captured>();
  const createPipeline = dev.createComputePipeline.bind(dev);
  dev.createComputePipeline = (d) => {
    const code = codes.get(d.compute.module)!;
    const entry = d.compute.entryPoint ?? "main";
    const constants = (d.compute.constants ?? {}) as Record<string, number>;
    seen.set(`${code}\0${entry}\0${JSON.stringify(constants)}`, {
      label: d.label ?? entry,
      code,
      entry,
      constants,
      subgroups: gpu.info.subgroups,
    });
    return createPipeline(d);
  };
  const m = await openModel(gpu, denoFs, `${ROOT}tests/testdata/llama`, {
    adapter: `${ROOT}tests/testdata/llama_lora`,
    dtype: "f32",
  });
  try {
    const prompts = [m.tokenizer.encode("患者信息:男,45岁\n症状描述:发热\n检查结果:正常\n\n诊断建议:")];
    await m.engine.generate({ prompts, maxNewTokens: 20, ignoreEos: true });
    const sampling = {
      doSample: true,
      temperature: 0.7,
      topK: 20,
      topP: 0.9,
      repetitionPenalty: 1.1,
      seed: 1,
    };
    await m.engine.generate({ prompts: [...prompts, prompts[0].slice(0, 5)], maxNewTokens: 18, sampling });
  } finally {
    m.dispose();
    dev.destroy();
  }
  return [...seen.values()];
}

Deno.test({
  name: "kernels: every pipeline generate builds in Deno also builds in Chromium (Tint)",
  ignore: !haveChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () =>
        new Response("<!doctype html><title>kernels</title>", { headers: { "content-type": "text/html" } }),
    );
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: chromiumArgs() });
    try {
      const page = await browser.newPage();
      // WebGPU needs a secure context: http://127.0.0.1 is one, about:blank is not.
      await page.goto(`http://127.0.0.1:${server.addr.port}/`);
      const limits: Record<string, number> = await page.evaluate(async () => {
        const a = await navigator.gpu.requestAdapter();
        const out: Record<string, number> = {};
        for (const k in a?.limits) out[k] = (a!.limits as unknown as Record<string, number>)[k];
        return out;
      });
      assert(Object.keys(limits).length > 10, "Chromium has a WebGPU adapter");
      const pipelines = [...await capture(true, limits), ...await capture(false, limits)];
      assert(pipelines.length > 10, `captured ${pipelines.length} pipelines`);
      const items = pipelines.map((p) => ({
        ...p,
        code: p.subgroups ? withSubgroupsDirective(p.code) : p.code,
      }));
      const failures: string[] = await page.evaluate(async (items) => {
        const adapter = await navigator.gpu.requestAdapter();
        if (!adapter) return ["no WebGPU adapter in Chromium"];
        // As src/gpu/device.ts: the adapter's own limits.
        const limits: Record<string, number> = {};
        for (const k in adapter.limits) limits[k] = (adapter.limits as unknown as Record<string, number>)[k];
        const features = adapter.features.has("subgroups") ? ["subgroups" as GPUFeatureName] : [];
        const device = await adapter.requestDevice({ requiredFeatures: features, requiredLimits: limits });
        const out: string[] = [];
        for (const it of items) {
          const module = device.createShaderModule({ code: it.code, label: it.label });
          const errors = (await module.getCompilationInfo()).messages.filter((m) => m.type === "error");
          const where = `${it.label}${it.subgroups ? " [subgroups]" : ""}`;
          if (errors.length) {
            out.push(`${where}: ${errors.map((e) => `line ${e.lineNum}: ${e.message}`).join("; ")}`);
            continue;
          }
          try {
            await device.createComputePipelineAsync({
              layout: "auto",
              compute: { module, entryPoint: it.entry, constants: it.constants },
            });
          } catch (e) {
            out.push(`${where}: ${(e as Error).message.split("\n")[0]}`);
          }
        }
        device.destroy();
        return out;
      }, items);
      const unique = [...new Set(failures)];
      assert(
        unique.length === 0,
        `${unique.length} of ${items.length} pipelines do not build in Chromium:\n${unique.join("\n")}`,
      );
    } finally {
      await browser.close();
      await server.shutdown();
    }
  },
});
