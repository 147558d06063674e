import { assert, assertEquals, assertRejects } from "../assert.ts";
import { memoryFs } from "../../src/io/fs.ts";
import { loadPeftAdapter, loraScale, type PeftConfig, savePeftAdapter } from "../../src/io/peft.ts";
import { writeSafetensors } from "../../src/io/safetensors.ts";

const seq = (n: number, k: number) =>
  Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + k) * 0.05);

const CONFIG: PeftConfig = {
  r: 4,
  loraAlpha: 8,
  loraDropout: 0.05,
  targetModules: ["q_proj", "v_proj"],
  useRslora: false,
  baseModelNameOrPath: "Qwen/Qwen2.5-0.5B-Instruct",
  bias: "none",
  taskType: "CAUSAL_LM",
  scale: 2,
};

/** Adapter config as PEFT 0.13 writes it (extra fields we ignore included). */
const PEFT_CONFIG = {
  alpha_pattern: {},
  auto_mapping: null,
  base_model_name_or_path: "meta-llama/Llama-3.2-1B",
  bias: "none",
  fan_in_fan_out: false,
  inference_mode: true,
  init_lora_weights: true,
  layer_replication: null,
  layers_pattern: null,
  layers_to_transform: null,
  loftq_config: {},
  lora_alpha: 16,
  lora_dropout: 0.1,
  megatron_config: null,
  megatron_core: "megatron.core",
  modules_to_save: null,
  peft_type: "LORA",
  r: 8,
  rank_pattern: {},
  revision: null,
  target_modules: ["k_proj", "o_proj", "q_proj", "v_proj"],
  task_type: "CAUSAL_LM",
  use_dora: false,
  use_rslora: true,
};

Deno.test("peft: save → load round trip keeps config, shapes and values; PEFT key layout", async () => {
  const fs = memoryFs();
  const mods = new Map([
    ["model.layers.0.self_attn.q_proj", { A: seq(4 * 6, 1), B: seq(5 * 4, 2), r: 4, in: 6, out: 5 }],
    ["model.layers.1.self_attn.v_proj", { A: seq(4 * 6, 3), B: seq(3 * 4, 4), r: 4, in: 6, out: 3 }],
  ]);
  await savePeftAdapter(fs, "out/lora", CONFIG, mods);
  const cfg = JSON.parse(await fs.readText("out/lora/adapter_config.json"));
  assertEquals([cfg.peft_type, cfg.task_type, cfg.bias, cfg.r, cfg.lora_alpha, cfg.use_rslora], [
    "LORA",
    "CAUSAL_LM",
    "none",
    4,
    8,
    false,
  ]);
  const { config, weights, modules } = await loadPeftAdapter(fs, "out/lora");
  assertEquals(config, CONFIG);
  assertEquals(weights.metadata, { format: "pt" });
  assertEquals([...modules.keys()].sort(), [...mods.keys()].sort());
  for (const [path, m] of mods) {
    const names = modules.get(path)!;
    assertEquals(names, {
      A: `base_model.model.${path}.lora_A.weight`,
      B: `base_model.model.${path}.lora_B.weight`,
    });
    assertEquals(weights.tensors.get(names.A)!.shape, [m.r, m.in]);
    assertEquals(weights.tensors.get(names.B)!.shape, [m.out, m.r]);
    assertEquals(weights.tensors.get(names.A)!.dtype, "F32");
    assertEquals([...(await weights.read(names.A, "f32"))], [...m.A]);
    assertEquals([...(await weights.read(names.B, "f32"))], [...m.B]);
  }
  // targets default to the module names when the config lists none
  await savePeftAdapter(fs, "out/l2", { ...CONFIG, targetModules: [] }, mods);
  assertEquals(JSON.parse(await fs.readText("out/l2/adapter_config.json")).target_modules, [
    "q_proj",
    "v_proj",
  ]);
});

Deno.test("peft: PEFT-written config (rsLoRA, extra fields) and BF16 weights with .default. names", async () => {
  const fs = memoryFs({ "a/adapter_config.json": JSON.stringify(PEFT_CONFIG) });
  await writeSafetensors(fs, "a/adapter_model.safetensors", [
    {
      name: "base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight",
      dtype: "BF16",
      shape: [8, 16],
      data: seq(128, 0),
    },
    {
      name: "base_model.model.model.layers.0.self_attn.q_proj.lora_B.default.weight",
      dtype: "BF16",
      shape: [16, 8],
      data: seq(128, 1),
    },
  ]);
  const { config, modules } = await loadPeftAdapter(fs, "a");
  assertEquals(config.scale, 16 / Math.sqrt(8));
  assertEquals([config.useRslora, config.loraDropout, config.baseModelNameOrPath], [
    true,
    0.1,
    "meta-llama/Llama-3.2-1B",
  ]);
  assertEquals([...modules.keys()], ["model.layers.0.self_attn.q_proj"]);
  assertEquals(loraScale(16, 32, false), 2);
});

Deno.test("peft: bad adapters fail in one line naming file and key/tensor", async () => {
  const A = {
    name: "base_model.model.m.q_proj.lora_A.weight",
    dtype: "F32" as const,
    shape: [8, 3],
    data: seq(24, 0),
  };
  const B = {
    name: "base_model.model.m.q_proj.lora_B.weight",
    dtype: "F32" as const,
    shape: [2, 8],
    data: seq(16, 0),
  };
  const make = async (cfg: unknown, tensors = [A, B]) => {
    const fs = memoryFs({ "a/adapter_config.json": JSON.stringify(cfg) });
    if (tensors.length) await writeSafetensors(fs, "a/adapter_model.safetensors", tensors);
    return fs;
  };
  const cases: [Promise<ReturnType<typeof memoryFs>>, RegExp][] = [
    [
      make({ ...PEFT_CONFIG, peft_type: "IA3" }),
      /^a\/adapter_config\.json: peft_type "IA3" is not supported \(LORA\)$/,
    ],
    [make({ ...PEFT_CONFIG, r: undefined }), /^a\/adapter_config\.json: missing key "r"$/],
    [
      make({ ...PEFT_CONFIG, lora_alpha: "16" }),
      /^a\/adapter_config\.json: key "lora_alpha": .*\(got "16"\)$/,
    ],
    [make({ ...PEFT_CONFIG, use_dora: true }), /use_dora is true: DoRA adapters are not supported/],
    [make({ ...PEFT_CONFIG, lora_bias: true }), /lora_bias is true: LoRA-B biases are not supported/],
    [make({ ...PEFT_CONFIG, rank_pattern: { q_proj: 4 } }), /rank_pattern is set/],
    [make(PEFT_CONFIG, [A]), /adapter_model\.safetensors: module m\.q_proj has lora_A but no lora_B/],
    [make({ ...PEFT_CONFIG, r: 4 }), /module m\.q_proj: lora_A \[8,3\] and lora_B \[2,8\] do not match r=4/],
    [
      make(PEFT_CONFIG, [A, B, {
        name: "base_model.model.lm_head.modules_to_save.default.weight",
        dtype: "F32",
        shape: [1],
        data: seq(1, 0),
      }]),
      /tensor "base_model\.model\.lm_head\.modules_to_save\.default\.weight" is not a LoRA weight/,
    ],
    [make(PEFT_CONFIG, []), /^a\/adapter_model\.safetensors: not found$/],
  ];
  for (const [fsP, re] of cases) {
    const err = await assertRejects(async () => loadPeftAdapter(await fsP, "a"), re);
    assert(!err.message.includes("\n"), err.message);
  }
  await assertRejects(
    () => loadPeftAdapter(memoryFs(), "x"),
    /^x\/adapter_config\.json: not found \(is x a PEFT adapter folder\?\)$/,
  );
  const bin = memoryFs({ "a/adapter_config.json": JSON.stringify(PEFT_CONFIG), "a/adapter_model.bin": "x" });
  await assertRejects(() => loadPeftAdapter(bin, "a"), /adapter_model\.bin is a pickle/);
  await assertRejects(
    () =>
      savePeftAdapter(
        memoryFs(),
        "o",
        CONFIG,
        new Map([["m", { A: seq(3, 0), B: seq(8, 0), r: 4, in: 6, out: 2 }]]),
      ),
    /module m: A has 3 values \(want r·in = 24\)/,
  );
});
