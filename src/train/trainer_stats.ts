/**
 * Small pure helpers of the trainer: the matmul FLOP count behind the log's model_tflops, the list of
 * accepted-but-inert config keys it warns about, and rounding for log values.
 */
import type { LlamaModel } from "../model/llama.ts";
import type { TrainConfig } from "./config.ts";
import type { Trainable } from "./lora_setup.ts";

/**
 * Matmul FLOPs per trained token (attention scores excluded): forward 2·N over the linear layers and
 * LM head, backward 2·N for input gradients, plus 2·N for weight gradients of what is trained (all of
 * N for full fine-tuning; the adapters' r·(in + out) for LoRA, 6 FLOPs per adapter weight).
 */
export function matmulFlopsPerToken(model: LlamaModel, t: Trainable): number {
  let n = model.config.vocabSize * model.config.hiddenSize;
  for (const l of model.linears().values()) n += l.inFeatures * l.outFeatures;
  if (t.kind === "full") return 6 * n;
  let a = 0;
  for (const p of t.params.values()) a += p.size;
  return 4 * n + 6 * a;
}

/** Config keys that are accepted (LLaMA-Factory configs set them) but change nothing here: said once. */
export function unsupported(c: TrainConfig): string[] {
  const out: string[] = [];
  if (c.packing) out.push("packing: packed examples attend to each other (no per-example attention mask)");
  if (c.fp16 || c.bf16) out.push("fp16/bf16: frozen weights are f16 where the GPU allows; compute stays f32");
  return out;
}

/** x with `digits` significant digits (log values). */
export function round(x: number, digits = 6): number {
  return Number(x.toPrecision(digits));
}
