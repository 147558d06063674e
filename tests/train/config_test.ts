import { assert, assertEquals, assertRejects, assertThrows } from "../assert.ts";
import {
  configToYaml,
  loadConfig,
  parseConfig,
  saveResolvedConfig,
  sftDataOptions,
} from "../../src/train/config.ts";
import { memoryFs } from "../../src/io/fs.ts";

const read = (p: string) => Deno.readTextFile(new URL(`../../${p}`, import.meta.url));

Deno.test("config: the seed's sectioned layout normalises to flat keys", async () => {
  const c = parseConfig(await read("config/medical_lora.yaml"), "config/medical_lora.yaml");
  assertEquals(c.model_name_or_path, "models/Mistral-7B-Instruct-v0.1");
  assertEquals(c.lora_rank, 64);
  assertEquals(c.lora_alpha, 128);
  assertEquals(c.lora_target, ["q_proj", "v_proj", "k_proj", "o_proj"]);
  assertEquals(c.dataset, ["medical_dataset_merged"]);
  assertEquals(c.template, "medical_inquiry");
  assertEquals(c.cutoff_len, 2048);
  assertEquals(c.learning_rate, 2e-4);
  assertEquals(c.num_train_epochs, 5);
  assertEquals(c.gradient_accumulation_steps, 4);
  assertEquals(c.fp16, true);
  assertEquals(c.eval_steps, 500);
  assertEquals(c.metric_for_best_model, "accuracy");
  // HF / LLaMA-Factory defaults for what the file leaves out.
  assertEquals(c.lr_scheduler_type, "linear");
  assertEquals(c.per_device_train_batch_size, 8);
  assertEquals(c.max_grad_norm, 1);
  assertEquals(c.seed, 42);
});

Deno.test("config: LLaMA-Factory flat keys (comma lists, 'all', null resume)", async () => {
  const c = parseConfig(await read("config/llamafactory_flat.yaml"), "config/llamafactory_flat.yaml");
  assertEquals(c.lora_target, "all");
  assertEquals(c.lr_scheduler_type, "cosine");
  assertEquals(c.warmup_ratio, 0.1);
  assertEquals(c.bf16, true);
  assertEquals(c.resume_from_checkpoint, undefined);
  assertEquals(c.val_size, 0.1);
  assertEquals(c.save_total_limit, 3);
  const d = parseConfig(
    "model_name_or_path: m\noutput_dir: o\ndataset: a, b ,c\nlora_target: q_proj,v_proj\n",
    "x.yaml",
  );
  assertEquals(d.dataset, ["a", "b", "c"]);
  assertEquals(d.lora_target, ["q_proj", "v_proj"]);
  assertEquals(d.lora_alpha, 16, "default alpha is 2 × rank");
  assertEquals(d.eval_steps, d.logging_steps, "eval_steps defaults to logging_steps");
  const o = sftDataOptions(c);
  assertEquals([o.datasetDir, o.datasets, o.cutoffLen, o.valSize, o.seed], [
    "data",
    ["medical_default"],
    1024,
    0.1,
    42,
  ]);
  assertEquals(o.cacheDir, "output/qwen_medical_lora/sft_cache");
});

Deno.test("config: errors name file, line and key", () => {
  const text = [
    "model:",
    "  name_or_path: m",
    "data:",
    "  dataset: d",
    "train:",
    "  output_dir: o",
    "  learning_rate: fast",
  ].join("\n");
  assertThrows(
    () => parseConfig(text, "config/x.yaml"),
    /^config\/x\.yaml:7: train\.learning_rate: expected a number, got "fast"$/,
  );
  assertThrows(
    () => parseConfig("model_name_or_path: m\ndataset: d\noutput_dir: o\nlerning_rate: 1e-4\n", "f.yaml"),
    /^f\.yaml:4: lerning_rate: unknown key \(did you mean learning_rate\?\)$/,
  );
  assertThrows(
    () => parseConfig("model:\n  name_or_path: m\n  rank: 8\n", "f.yaml"),
    /^f\.yaml:3: model\.rank: unknown key in model:/,
  );
  assertThrows(
    () =>
      parseConfig(
        "model_name_or_path: m\ndataset: d\noutput_dir: o\nlr_scheduler_type: cosine_restarts\n",
        "f.yaml",
      ),
    /^f\.yaml:4: lr_scheduler_type: expected one of linear, cosine, constant, constant_with_warmup/,
  );
  assertThrows(
    () => parseConfig("model_name_or_path: m\ndataset: d\noutput_dir: o\nlora_rank: 0\n", "f.yaml"),
    /^f\.yaml:4: lora_rank: must be ≥ 1$/,
  );
  assertThrows(
    () => parseConfig("model_name_or_path: m\ndataset: d\noutput_dir: o\nlora_rank: 2.5\n", "f.yaml"),
    /^f\.yaml:4: lora_rank: expected an integer, got 2\.5$/,
  );
  assertThrows(
    () => parseConfig("model_name_or_path: m\ndataset: d\noutput_dir: o\nfp16: yes please\n", "f.yaml"),
    /^f\.yaml:4: fp16: expected true or false, got "yes please"$/,
  );
  assertThrows(
    () => parseConfig("model_name_or_path: m\ndataset: d\noutput_dir: o\nfp16: true\nbf16: true\n", "f.yaml"),
    /^f\.yaml:5: bf16: fp16 and bf16 cannot both be true$/,
  );
  assertThrows(
    () => parseConfig("model:\n  name_or_path: m\nmodel_name_or_path: n\n", "f.yaml"),
    /^f\.yaml:3: model_name_or_path: set twice \(also as model\.name_or_path at f\.yaml:2\)$/,
  );
  assertThrows(
    () => parseConfig("model_name_or_path: m\ndataset: d\noutput_dir: o\n\ntemplate: qwen3\n", "f.yaml"),
    /^f\.yaml:5: template: unknown template "qwen3" \(known: default, alpaca/,
  );
  assertThrows(
    () => parseConfig("dataset: d\noutput_dir: o\n", "f.yaml"),
    /^f\.yaml: model_name_or_path.*required key is missing$/,
  );
  assertThrows(() => parseConfig("model:\n  a: [1, 2\n", "f.yaml"), /^f\.yaml:\d+: not valid YAML/);
  assertThrows(() => parseConfig("- a\n- b\n", "f.yaml"), /^f\.yaml:1: expected a mapping of keys$/);
  assertThrows(
    () => parseConfig("modle:\n  x: 1\n", "f.yaml"),
    /^f\.yaml:1: modle: unknown key \(did you mean model\?\)$/,
  );
});

Deno.test("config: key=value overrides after the file (dotted and flat)", () => {
  const text =
    "model:\n  name_or_path: m\ndata:\n  dataset: d\ntrain:\n  output_dir: o\n  learning_rate: 1e-4\n";
  const c = parseConfig(text, "f.yaml", [
    "train.learning_rate=3e-4",
    "num_train_epochs=2",
    "data.dataset=[a, b]",
    "fp16=true",
  ]);
  assertEquals(c.learning_rate, 3e-4);
  assertEquals(c.num_train_epochs, 2);
  assertEquals(c.dataset, ["a", "b"]);
  assertEquals(c.fp16, true);
  assertThrows(
    () => parseConfig(text, "f.yaml", ["train.learning_rate=fast"]),
    /^override 'train\.learning_rate=fast': train\.learning_rate: expected a number, got "fast"$/,
  );
  assertThrows(
    () => parseConfig(text, "f.yaml", ["learning_rate"]),
    /^override 'learning_rate': expected key=value$/,
  );
  assertThrows(
    () => parseConfig(text, "f.yaml", ["train.bogus=1"]),
    /^override 'train\.bogus=1': train\.bogus: unknown key in train:/,
  );
  // A quoted number is still a number; resume accepts true or a path.
  assertEquals(parseConfig(text + '  warmup_ratio: "0.05"\n', "f.yaml").warmup_ratio, 0.05);
  assertEquals(parseConfig(text, "f.yaml", ["resume_from_checkpoint=true"]).resume_from_checkpoint, true);
  assertEquals(
    parseConfig(text, "f.yaml", ["resume_from_checkpoint=o/checkpoint-5"]).resume_from_checkpoint,
    "o/checkpoint-5",
  );
});

Deno.test("config: the resolved config is saved and reads back the same", async () => {
  const fs = memoryFs({ "c.yaml": await read("config/medical_lora.yaml") });
  const c = await loadConfig(fs, "c.yaml", ["train.output_dir=out/run1"]);
  const path = await saveResolvedConfig(fs, c);
  assertEquals(path, "out/run1/training_args.yaml");
  const again = parseConfig(await fs.readText(path), path);
  assertEquals(again, c);
  assert(configToYaml(c).includes("lora_target:\n  - q_proj"), "flat LLaMA-Factory keys");
  await assertRejects(() => loadConfig(fs, "missing.yaml"), /^missing\.yaml: cannot read the config file/);
});

Deno.test("config: every flat key the issue lists is accepted", async () => {
  const { CONFIG_KEYS } = await import("../../src/train/config.ts");
  const issueKeys = (
    "model_name_or_path finetuning_type lora_rank lora_alpha lora_dropout lora_target dataset dataset_dir template " +
    "cutoff_len learning_rate num_train_epochs max_steps per_device_train_batch_size gradient_accumulation_steps " +
    "lr_scheduler_type warmup_ratio warmup_steps weight_decay max_grad_norm fp16 bf16 logging_steps eval_steps " +
    "save_steps save_total_limit output_dir overwrite_output_dir resume_from_checkpoint seed val_size use_rslora " +
    "train_on_prompt"
  ).split(" ");
  for (const k of issueKeys) assert(CONFIG_KEYS.includes(k), k);
  // The seed's section names for them.
  const c = parseConfig(
    "model:\n  name_or_path: m\n  target_modules: q_proj\n  use_rslora: true\ndata:\n  dataset: d\n  max_length: 64\n" +
      "train:\n  output_dir: o\n  lr_scheduler_type: cosine\n  warmup_steps: 3\n  save_total_limit: 2\n" +
      "evaluation:\n  eval_steps: 7\n  metric_for_best_model: eval_loss\n",
    "s.yaml",
  );
  assertEquals([
    c.lora_target,
    c.use_rslora,
    c.cutoff_len,
    c.lr_scheduler_type,
    c.warmup_steps,
    c.save_total_limit,
  ], [
    ["q_proj"],
    true,
    64,
    "cosine",
    3,
    2,
  ]);
  assertEquals([c.eval_steps, c.metric_for_best_model], [7, "eval_loss"]);
});
