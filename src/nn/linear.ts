/**
 * Linear layer with an optional LoRA adapter: y = x·Wᵀ (+ bias) (+ scale·(x·Aᵀ)·Bᵀ).
 *
 * The weight keeps the Hugging Face layout [out, in] and its checkpoint name, so a model is a set of
 * these addressed by path (`model.layers.0.self_attn.q_proj`). The adapter slot is the hook both the
 * engine (frozen adapters loaded from a PEFT folder) and the trainer (trainable adapters from
 * initLora) use: `setLora` attaches any `LoraAdapter`, whatever its tensors' requiresGrad says.
 */
import type { Tensor } from "../tensor/mod.ts";
import { type LoraAdapter, loraLinear, matmul } from "../ops/mod.ts";

export class Linear {
  /** Module path as in the checkpoint, without `.weight` (e.g. `model.layers.0.mlp.down_proj`). */
  readonly path: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** [out, in], f32 or f16 storage, frozen. */
  weight: Tensor;
  /** [out] or null. */
  bias: Tensor | null;
  /** Optional adapter: frozen (inference) or trainable (fine-tuning). */
  lora: LoraAdapter | null = null;

  constructor(path: string, weight: Tensor, bias: Tensor | null = null) {
    if (weight.shape.length !== 2) throw new Error(`${path}.weight: want [out, in], got [${weight.shape}]`);
    this.path = path;
    [this.outFeatures, this.inFeatures] = weight.shape;
    if (bias && bias.size !== this.outFeatures) {
      throw new Error(`${path}.bias: want [${this.outFeatures}], got [${bias.shape}]`);
    }
    this.weight = weight;
    this.bias = bias;
  }

  /**
   * Attaches (or with null removes) a LoRA adapter; A must be [r, in] and B [out, r].
   *
   * @example
   * layer.setLora({ A, B, scale: alpha / r }); // PEFT lora_A.weight / lora_B.weight
   */
  setLora(lora: LoraAdapter | null): void {
    if (lora) {
      const r = lora.A.shape[0];
      if (
        lora.A.shape.join() !== [r, this.inFeatures].join() ||
        lora.B.shape.join() !== [this.outFeatures, r].join()
      ) {
        throw new Error(
          `${this.path}: LoRA A [${lora.A.shape}] / B [${lora.B.shape}] do not fit weight [${this.outFeatures}, ${this.inFeatures}] (want A [r, ${this.inFeatures}], B [${this.outFeatures}, r])`,
        );
      }
    }
    this.lora = lora;
  }

  /**
   * x [..., in] f32 → [..., out] f32.
   *
   * @example
   * const q = qProj.forward(h); // [B, T, H·D]
   */
  forward(x: Tensor, seed = 0): Tensor {
    if (this.lora) return loraLinear(x, this.weight, this.bias, this.lora, seed);
    return matmul(x, this.weight, { transB: true, bias: this.bias ?? undefined });
  }

  /** Releases the weight, bias and adapter tensors. */
  dispose(): void {
    this.weight.dispose();
    this.bias?.dispose();
    this.lora?.A.dispose();
    this.lora?.B.dispose();
  }
}
