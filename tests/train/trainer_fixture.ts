/**
 * Shared set-up of the trainer tests: an in-memory checkpoint file system holding the tiny HF Llama of
 * tests/testdata (2 layers, hidden 64, vocab 500, byte-level BPE) and a toy alpaca dataset, plus a
 * config builder. Everything stays in memory, so tests leave no files behind.
 */
import { type CheckpointFs, memoryCheckpointFs } from "../../src/train/checkpoint.ts";
import { parseConfig, type TrainConfig } from "../../src/train/config.ts";
import { noGrad } from "../../src/autograd/mod.ts";
import { Tensor } from "../../src/tensor/mod.ts";
import type { LlamaModel } from "../../src/model/llama.ts";

const MODEL_FILES = ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json"];

/** Eight short records with distinct answers (the loss can fall fast) and two for validation. */
export const TOY = [
  ["Say hi", "hi there"],
  ["Name a colour", "red"],
  ["Count to three", "one two three"],
  ["Opposite of up", "down"],
  ["A farm animal", "a cow"],
  ["Two plus two", "four"],
  ["Capital of France", "Paris"],
  ["Say bye", "bye now"],
].map(([instruction, output]) => ({ instruction, input: "", output }));

/** The fixture's file system (a fresh copy per call). */
export async function toyFs(): Promise<CheckpointFs & { files: Map<string, Uint8Array> }> {
  const init: Record<string, Uint8Array | string> = {};
  for (const f of MODEL_FILES) {
    init[`model/${f}`] = await Deno.readFile(new URL(`../testdata/llama/${f}`, import.meta.url));
  }
  init["model/tokenizer_config.json"] = JSON.stringify({
    tokenizer_class: "PreTrainedTokenizerFast",
    bos_token: "<|begin_of_text|>",
    eos_token: "<|end_of_text|>",
    pad_token: "<|pad|>",
  });
  const columns = { prompt: "instruction", query: "input", response: "output" };
  init["data/dataset_info.json"] = JSON.stringify({
    toy: { file_name: "toy.json", formatting: "alpaca", columns },
    toy_val: { file_name: "toy_val.json", formatting: "alpaca", columns },
  });
  init["data/toy.json"] = JSON.stringify(TOY);
  init["data/toy_val.json"] = JSON.stringify(TOY.slice(0, 2));
  return memoryCheckpointFs(init);
}

/** A LoRA config over the fixture (flat keys; `extra` lines override). */
export function toyConfig(extra: Record<string, unknown> = {}): TrainConfig {
  const base: Record<string, unknown> = {
    model_name_or_path: "model",
    finetuning_type: "lora",
    lora_rank: 4,
    lora_alpha: 8,
    lora_target: "q_proj,v_proj",
    dataset: "toy",
    dataset_dir: "data",
    template: "default",
    cutoff_len: 64,
    learning_rate: 0.01,
    lr_scheduler_type: "constant",
    max_steps: 6,
    per_device_train_batch_size: 2,
    logging_steps: 1,
    save_steps: 1000,
    output_dir: "out",
    seed: 3,
    do_eval: false,
    ...extra,
  };
  const text = Object.entries(base).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join("\n");
  return parseConfig(text, "toy.yaml");
}

/** Logits [T, V] of one sequence through `model` (on the model's GPU), read back. */
export async function logitsOf(model: LlamaModel, ids: number[]): Promise<Float32Array> {
  const gpu = model.gpu;
  const t = Tensor.from(gpu, ids, [1, ids.length], "i32");
  const p = Tensor.from(gpu, ids.map((_, i) => i), [1, ids.length], "i32");
  const out = noGrad(() => model.logits(model.forward(t, p)));
  const v = Float32Array.from(await out.read());
  for (const x of [t, p, out]) x.dispose();
  return v;
}
