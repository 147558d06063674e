/**
 * The path of GPUs without shader-f16 (SwiftShader in browsers, many laptops): a device created with
 * f16 disabled loads f32 weights by default, keeps an f32 KV cache, samples with f32 kernels only,
 * and still reproduces HF's greedy tokens.
 */
import { assertEquals } from "../assert.ts";
import { createGpu } from "../../src/gpu/mod.ts";
import { LocalEngine } from "../../src/engine/engine.ts";
import { type GenCase, golden, TESTDATA } from "../model/golden.ts";
import { loadModel } from "../../src/model/load.ts";
import { randomModel, SHAPES } from "../../src/model/random.ts";
import { denoFs } from "../../platform/deno_fs.ts";

Deno.test("no shader-f16: default f32 weights, greedy equals HF, sampling and random models work", async () => {
  const gpu = await createGpu({ disableF16: true });
  try {
    assertEquals(gpu.info.f16, false);
    const model = await loadModel(gpu, denoFs, `${TESTDATA}/qwen2`);
    assertEquals(model.dtype, "f32");
    const engine = new LocalEngine(model);
    const g = golden.qwen2.generations[2] as GenCase;
    const { sequences } = await engine.generate({
      prompts: [g.prompt_ids],
      maxNewTokens: 24,
      ignoreEos: true,
    });
    assertEquals(sequences[0].tokenIds, g.greedy_no_eos.slice(0, 24));
    const sampled = await engine.generate({
      prompts: [g.prompt_ids],
      maxNewTokens: 4,
      sampling: { doSample: true, temperature: 0.8, topP: 0.9, repetitionPenalty: 1.2, seed: 5 },
    });
    assertEquals(sampled.sequences[0].tokenIds.length > 0, true);
    model.dispose();
    const r = randomModel(gpu, SHAPES.tiny, 2);
    assertEquals(r.embed.dtype, "f32");
    r.dispose();
  } finally {
    gpu.destroy();
  }
});
