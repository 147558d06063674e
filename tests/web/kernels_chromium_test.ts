/**
 * Every WGSL module the engine and the trainer build in Deno (naga) must also compile in Chromium
 * (Tint), which is stricter: uniformity analysis for barriers, no NaN/Inf in constant expressions,
 * `enable subgroups;`. The modules are captured in Deno (with Chromium's adapter limits, which size
 * some workgroups) while the tiny Llama + LoRA adapter generates (greedy and sampled) and while one LoRA
 * training step runs — f32 weights as browsers without shader-f16 use, with and without subgroups — and
 * compiled in headless Chromium; failures are listed by kernel. Pipeline creation (override and limit
 * checks) is left to demo_test.ts, which runs inference for real. Skipped only when /usr/bin/chromium is
 * missing.
 */
import { chromium } from "playwright-core";
import { assert } from "../assert.ts";
import { createGpu, type Gpu } from "../../src/gpu/mod.ts";
import { openModel } from "../../src/engine/mod.ts";
import { loadModel } from "../../src/model/mod.ts";
import { Rng, Tensor, tidy } from "../../src/tensor/mod.ts";
import { backward } from "../../src/autograd/mod.ts";
import { initLora, lmHeadCrossEntropy, reshape, rmsNorm } from "../../src/ops/mod.ts";
import { AdamW } from "../../src/train/optimizer.ts";
import { denoFs } from "../../platform/deno_fs.ts";
import { withSubgroupsDirective } from "../../web/session.ts";
import { CHROMIUM, chromiumArgs } from "./chromium.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
// CI (.ci/run) sets WEBTUNE_REQUIRE_CHROMIUM=1: there a missing browser fails the test instead of skipping it.
const haveChromium = Deno.env.get("WEBTUNE_REQUIRE_CHROMIUM") === "1" ||
  await Deno.stat(CHROMIUM).then(() => true, () => false);
if (!haveChromium) {
  console.warn(
    `tests/web/kernels_chromium_test.ts skipped: ${CHROMIUM} is missing (apt-get install -y chromium)`,
  );
}

/** One WGSL module as Deno built it, named by the first pipeline that used it. */
interface Captured {
  label: string;
  code: string;
  subgroups: boolean;
}

/** Records every module `gpu` builds pipelines from; its device limits are lowered to Chromium's `limits`. */
function recorder(gpu: Gpu, limits: Record<string, number>): Map<string, Captured> {
  const dev = gpu.device;
  const own = dev.limits as unknown as Record<string, number>;
  const lowered: Record<string, number> = {};
  for (const k in own) lowered[k] = k in limits ? Math.min(own[k], limits[k]) : own[k];
  // Launchers size workgroups from the limits: capture what they would pick on Chromium's adapter.
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
    if (!seen.has(code)) seen.set(code, { label: d.label ?? "?", code, subgroups: gpu.info.subgroups });
    return createPipeline(d);
  };
  return seen;
}

async function openGpu(subgroups: boolean): Promise<Gpu> {
  const gpu = await createGpu({ disableF16: true });
  if (!subgroups) (gpu.info as { subgroups: boolean }).subgroups = false;
  return gpu;
}

const PROMPT = "患者信息:男,45岁\n症状描述:发热\n检查结果:正常\n\n诊断建议:";

/** Inference: greedy and sampled generate (f32 weights, as browsers without shader-f16 run them). */
async function captureInference(subgroups: boolean, limits: Record<string, number>): Promise<Captured[]> {
  const gpu = await openGpu(subgroups);
  const seen = recorder(gpu, limits);
  const m = await openModel(gpu, denoFs, `${ROOT}tests/testdata/llama`, {
    adapter: `${ROOT}tests/testdata/llama_lora`,
    dtype: "f32",
  });
  try {
    const prompts = [m.tokenizer.encode(PROMPT)];
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
    gpu.device.destroy();
  }
  return [...seen.values()];
}

/** Training: one LoRA step as src/train/step.ts takes it (forward, fused LM-head loss, backward, AdamW). */
async function captureTraining(subgroups: boolean, limits: Record<string, number>): Promise<Captured[]> {
  const gpu = await openGpu(subgroups);
  const seen = recorder(gpu, limits);
  const model = await loadModel(gpu, denoFs, `${ROOT}tests/testdata/llama`, { dtype: "f32" });
  try {
    const rng = new Rng(3);
    const params: Tensor[] = [];
    for (const [path, l] of model.linears()) {
      if (!/(q|v)_proj$/.test(path)) continue;
      const { A, B } = initLora(gpu, l.inFeatures, l.outFeatures, 4, rng);
      l.setLora({ A, B, scale: 2 });
      params.push(A, B);
    }
    const ids = Array.from({ length: 40 }, (_, i) => (i * 37 + 11) % model.config.vocabSize);
    const T = ids.length - 1, C = model.config.hiddenSize;
    const opt = new AdamW(params, {
      lr: 1e-3,
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      weightDecay: 0.01,
      maxGradNorm: 1,
    });
    tidy(() => {
      const idT = Tensor.from(gpu, ids.slice(0, T), [1, T], "i32");
      const pos = Tensor.from(gpu, ids.slice(0, T).map((_, i) => i), [1, T], "i32");
      const labels = Tensor.from(gpu, [...ids.slice(1, T), -100], [T], "i32");
      const normed = rmsNorm(reshape(model.forward(idT, pos), [T, C]), model.norm, model.config.rmsNormEps);
      backward(lmHeadCrossEntropy(normed, model.lmHead, labels));
    });
    opt.step();
    await gpu.sync();
  } finally {
    model.dispose();
    gpu.device.destroy();
  }
  return [...seen.values()];
}

Deno.test({
  name: "kernels: every WGSL module that generate and a LoRA step build in Deno also compiles in Chromium",
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
      const modules: Captured[] = [];
      for (const subgroups of [true, false]) {
        modules.push(
          ...await captureInference(subgroups, limits),
          ...await captureTraining(subgroups, limits),
        );
      }
      assert(modules.length > 10, `captured ${modules.length} modules`);
      const items = modules.map((p) => ({
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
        // Tint's parse and validation of every module (milliseconds each). Pipelines are not created
        // here: SwiftShader compiles one in about a second; demo_test.ts builds the inference ones for real.
        const out: string[] = [];
        for (const it of items) {
          const module = device.createShaderModule({ code: it.code, label: it.label });
          const errors = (await module.getCompilationInfo()).messages.filter((m) => m.type === "error");
          if (errors.length) {
            const where = `${it.label}${it.subgroups ? " [subgroups]" : ""}`;
            out.push(`${where}: ${errors.map((e) => `line ${e.lineNum}: ${e.message}`).join("; ")}`);
          }
        }
        device.destroy();
        return out;
      }, items);
      const unique = [...new Set(failures)];
      assert(
        unique.length === 0,
        `${unique.length} of ${items.length} WGSL modules do not compile in Chromium (Tint):\n${
          unique.join("\n")
        }`,
      );
    } finally {
      await browser.close();
      await server.shutdown();
    }
  },
});
