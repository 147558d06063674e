/** randomModel: weights made on the GPU have the right names, shapes, dtypes and value ranges. */
import { assert, assertEquals, assertThrows } from "../assert.ts";
import { testGpu } from "../util.ts";
import { randomModel, SHAPES } from "../../src/model/random.ts";
import { checkBindingLimits, expectedShapes } from "../../src/model/weights.ts";
import { LocalEngine } from "../../src/engine/engine.ts";

const gpu = await testGpu();

Deno.test("randomModel(tiny): HF names and shapes, uniform ranges, runs the engine", async () => {
  const cfg = SHAPES.tiny;
  const model = randomModel(gpu, cfg, 3, "f32");
  try {
    const want = expectedShapes(cfg);
    assertEquals([...model.params.keys()].sort(), [...want.keys()].sort());
    for (const [name, t] of model.params) assertEquals([...t.shape], want.get(name));
    const q = (await model.params.get("model.layers.0.self_attn.q_proj.weight")!.read()) as Float32Array;
    const a = Math.sqrt(3 / cfg.hiddenSize);
    assert(q.every((x) => Math.abs(x) < a), "matrix values inside ±√(3/in)");
    const mean = q.reduce((s, x) => s + x, 0) / q.length;
    const std = Math.sqrt(q.reduce((s, x) => s + x * x, 0) / q.length);
    assert(Math.abs(mean) < 0.01 && Math.abs(std - 1 / Math.sqrt(cfg.hiddenSize)) < 0.01, `std ${std}`);
    const norm = (await model.norm.read()) as Float32Array;
    assert(norm.every((x) => x >= 0.9 && x < 1.1), "norms ≈ 1");
    const k = (await model.params.get("model.layers.0.self_attn.k_proj.weight")!.read()) as Float32Array;
    assert(k[0] !== q[0] && k[1] !== q[1], "tensors get different seeds");
    const { sequences } = await new LocalEngine(model).generate({
      prompts: [[5, 6, 7]],
      maxNewTokens: 4,
      ignoreEos: true,
    });
    assertEquals(sequences[0].tokenIds.length, 4);
  } finally {
    model.dispose();
  }
});

Deno.test({
  name: "randomModel: f16 matrices where the GPU has shader-f16",
  ignore: !gpu.info.f16,
  fn: async () => {
    const model = randomModel(gpu, SHAPES.tiny, 4);
    try {
      assertEquals(model.embed.dtype, "f16");
      assertEquals(model.norm.dtype, "f32");
      const e = await model.embed.read();
      assert(e.every((x) => Number.isFinite(x) && Math.abs(x) < 0.3) && e.some((x) => x !== 0));
    } finally {
      model.dispose();
    }
  },
});

Deno.test("real shapes: parameter counts match the published models", () => {
  const count = (name: string) =>
    [...expectedShapes(SHAPES[name]).values()].reduce((s, sh) => s + sh.reduce((a, b) => a * b, 1), 0);
  assertEquals(Math.round(count("qwen2.5-0.5b") / 1e6), 494); // Qwen2.5-0.5B: 494M
  assertEquals(Math.round(count("llama-3.2-1b") / 1e6), 1236); // Llama-3.2-1B: 1.24B
  assertEquals(Math.round(count("mistral-7b") / 1e6), 7242); // Mistral-7B: 7.24B
});

Deno.test("a weight above the device's largest binding fails early, naming the tensor", () => {
  const limit = gpu.device.limits.maxStorageBufferBindingSize;
  const cfg = { ...SHAPES.tiny, vocabSize: Math.ceil(limit / (64 * 4)) + 1 };
  assertThrows(
    () => checkBindingLimits(gpu, cfg, "f32", "m"),
    /m: model\.embed_tokens\.weight .*maxStorageBufferBindingSize/,
  );
  checkBindingLimits(gpu, SHAPES.tiny, "f32", "m");
});
