import { assert, assertEquals, assertRejects } from "../assert.ts";
import { denoFs } from "../../platform/deno_fs.ts";
import { memoryFs } from "../../src/io/fs.ts";
import { loadGenerationConfig, loadModelConfig } from "../../src/io/config.ts";

const FIX = new URL("fixtures", import.meta.url).pathname;

Deno.test("config: Llama 3.2 with llama3 rope_scaling, head_dim, tied embeddings", async () => {
  const c = await loadModelConfig(denoFs, `${FIX}/llama3`);
  assertEquals(c, {
    modelType: "llama",
    vocabSize: 128256,
    hiddenSize: 2048,
    intermediateSize: 8192,
    numLayers: 16,
    numHeads: 32,
    numKvHeads: 8,
    headDim: 64,
    rmsNormEps: 1e-5,
    ropeTheta: 500000,
    ropeScaling: {
      rope_type: "llama3",
      factor: 32,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 8192,
    },
    maxPositionEmbeddings: 131072,
    tieWordEmbeddings: true,
    slidingWindow: null,
    attentionBias: false,
    mlpBias: false,
    bosTokenId: 128000,
    eosTokenId: [128001],
    torchDtype: "bfloat16",
  });
});

Deno.test("config: Llama 2 defaults (no kv heads, no head_dim, no rope_theta)", async () => {
  const c = await loadModelConfig(denoFs, `${FIX}/llama2`);
  assertEquals([c.numKvHeads, c.headDim, c.ropeTheta, c.ropeScaling, c.torchDtype], [
    32,
    128,
    10000,
    null,
    "float16",
  ]);
});

Deno.test("config: Mistral sliding_window, Qwen2 tied embeddings + q/k/v bias, window only when used", async () => {
  const m = await loadModelConfig(denoFs, `${FIX}/mistral`);
  assertEquals(
    [m.modelType, m.slidingWindow, m.numKvHeads, m.headDim, m.attentionBias, m.tieWordEmbeddings],
    [
      "mistral",
      4096,
      8,
      128,
      false,
      false,
    ],
  );
  const q = await loadModelConfig(denoFs, `${FIX}/qwen2`);
  assertEquals(
    [
      q.modelType,
      q.tieWordEmbeddings,
      q.attentionBias,
      q.slidingWindow,
      q.headDim,
      q.numKvHeads,
      q.rmsNormEps,
    ],
    ["qwen2", true, true, null, 64, 2, 1e-6],
  );
  const raw = JSON.parse(await Deno.readTextFile(`${FIX}/qwen2/config.json`));
  const fs = memoryFs({
    "q/config.json": JSON.stringify({ ...raw, use_sliding_window: false, sliding_window: 128 }),
  });
  assertEquals((await loadModelConfig(fs, "q")).slidingWindow, null, "window unused");
  const win = async (extra: Record<string, unknown>) =>
    (await loadModelConfig(memoryFs({ "q/config.json": JSON.stringify({ ...raw, ...extra }) }), "q"))
      .slidingWindow;
  assertEquals(await win({ use_sliding_window: true, sliding_window: 128, max_window_layers: 0 }), 128);
  assertEquals(await win({ use_sliding_window: true, sliding_window: 128, max_window_layers: 24 }), null);
  assertEquals(await win({ layer_types: Array(24).fill("sliding_attention"), sliding_window: 64 }), 64);
  assertEquals(await win({ layer_types: Array(24).fill("full_attention"), use_sliding_window: true }), null);
  await assertRejects(
    () => win({ use_sliding_window: true, sliding_window: 128, max_window_layers: 21 }),
    /^q\/config\.json: some layers use a sliding window and some do not/,
  );
});

Deno.test("config: transformers 5 rope_parameters (theta inside, llama3 scaling inside), dtype key", async () => {
  const raw = JSON.parse(await Deno.readTextFile(`${FIX}/llama3/config.json`));
  const { rope_theta: _t, rope_scaling, torch_dtype: _d, ...rest } = raw;
  const v5 = { ...rest, dtype: "bfloat16", rope_parameters: { ...rope_scaling, rope_theta: 500000 } };
  const c = await loadModelConfig(memoryFs({ "m/config.json": JSON.stringify(v5) }), "m");
  assertEquals([
    c.ropeTheta,
    c.ropeScaling?.factor,
    c.ropeScaling?.original_max_position_embeddings,
    c.torchDtype,
  ], [
    500000,
    32,
    8192,
    "bfloat16",
  ]);
  const q = JSON.parse(await Deno.readTextFile(`${FIX}/qwen2/config.json`));
  delete q.rope_theta;
  q.rope_parameters = { rope_theta: 1000000, rope_type: "default" };
  const cq = await loadModelConfig(memoryFs({ "q/config.json": JSON.stringify(q) }), "q");
  assertEquals([cq.ropeTheta, cq.ropeScaling], [1000000, null]);
  q.rope_parameters = { rope_theta: 1000000, rope_type: "yarn", factor: 4 };
  await assertRejects(
    () => loadModelConfig(memoryFs({ "q/config.json": JSON.stringify(q) }), "q"),
    /^q\/config\.json: rope_parameters\.rope_type "yarn" is not supported \(llama3, default\)$/,
  );
  q.rope_parameters = { rope_theta: 1000000, rope_type: "default", partial_rotary_factor: 0.5 };
  await assertRejects(
    () => loadModelConfig(memoryFs({ "q/config.json": JSON.stringify(q) }), "q"),
    /rope_parameters\.partial_rotary_factor 0\.5 is not supported/,
  );
});

Deno.test("config: bad configs fail in one line naming file and key", async () => {
  const raw = JSON.parse(await Deno.readTextFile(`${FIX}/llama2/config.json`));
  const cases: [Record<string, unknown>, RegExp][] = [
    [
      { ...raw, model_type: "gpt2" },
      /^m\/config\.json: model_type "gpt2" is not supported \(llama, mistral, qwen2\)$/,
    ],
    [{ ...raw, hidden_size: undefined }, /^m\/config\.json: missing key "hidden_size"$/],
    [
      { ...raw, hidden_size: "4096" },
      /^m\/config\.json: key "hidden_size": expected number, received string \(got "4096"\)$/,
    ],
    [{ ...raw, num_hidden_layers: 1.5 }, /^m\/config\.json: key "num_hidden_layers": .*\(got 1\.5\)$/],
    [
      { ...raw, rope_scaling: { rope_type: "yarn", factor: 4 } },
      /m\/config\.json: rope_scaling\.rope_type "yarn" is not supported/,
    ],
    [
      { ...raw, rope_scaling: { rope_type: "llama3", factor: 8 } },
      /m\/config\.json: missing key "rope_scaling\.low_freq_factor"/,
    ],
    [
      { ...raw, rope_scaling: { rope_type: "llama3", factor: "8" } },
      /m\/config\.json: key "rope_scaling\.factor"/,
    ],
    [{ ...raw, hidden_act: "gelu" }, /m\/config\.json: hidden_act "gelu" is not supported \(silu\)/],
    [{ ...raw, num_key_value_heads: 5 }, /num_attention_heads 32 is not a multiple of num_key_value_heads 5/],
    [{ ...raw, hidden_size: 4001 }, /hidden_size 4001 is not divisible by num_attention_heads 32/],
  ];
  for (const [cfg, re] of cases) {
    const err = await assertRejects(
      () => loadModelConfig(memoryFs({ "m/config.json": JSON.stringify(cfg) }), "m"),
      re,
    );
    assert(!err.message.includes("\n"), err.message);
  }
  await assertRejects(
    () => loadModelConfig(memoryFs(), "m"),
    /^m\/config\.json: not found \(is m a Hugging Face model folder\?\)$/,
  );
  await assertRejects(
    () => loadModelConfig(memoryFs({ "m/config.json": "{" }), "m"),
    /^m\/config\.json: not valid JSON/,
  );
});

Deno.test("generation_config: fields, eos list, fallback to config.json ids when absent", async () => {
  assertEquals(await loadGenerationConfig(denoFs, `${FIX}/llama3`), {
    eosTokenId: [128001, 128008, 128009],
    bosTokenId: 128000,
    temperature: 0.6,
    topP: 0.9,
    doSample: true,
  });
  assertEquals(await loadGenerationConfig(denoFs, `${FIX}/qwen2`), {
    eosTokenId: [151645],
    bosTokenId: 151643,
  });
  assertEquals(await loadGenerationConfig(memoryFs(), "none"), { eosTokenId: [] });
  await assertRejects(
    () => loadGenerationConfig(memoryFs({ "g/generation_config.json": '{"top_p": 2}' }), "g"),
    /^g\/generation_config\.json: key "top_p": .*\(got 2\)$/,
  );
});
