/**
 * The Llama family — Llama 2/3, Mistral (sliding window) and Qwen2 (q/k/v bias, tied embeddings) — as
 * one decoder driven by ModelConfig. Parameters carry the Hugging Face checkpoint names.
 *
 * Letters: B batch, T tokens per sequence, C hidden size, H query heads, Hkv kv heads, D head dim,
 * F intermediate (MLP) size, V vocabulary, R LoRA rank.
 *
 * Two ways through the layers, both the HF computation (pre-norm, RoPE rotate_half, GQA, SwiGLU):
 * - forward(): a [B, T] block from position 0 (training, logits, prefill); with caches it also writes
 *   every layer's k/v into the KV cache (rows 0 .. T−1).
 * - decodeStep(): one token per sequence at per-sequence positions held in GPU buffers, attention over
 *   the cache — nothing is read back, so many steps can be recorded in one submit. Its fused launches
 *   live in llama_decode.ts; the method here is a thin entry point.
 */
import type { Tensor } from "../tensor/mod.ts";
import type { ModelConfig } from "../io/config.ts";
import { Linear } from "../nn/linear.ts";
import { checkpoint, isGradEnabled, releasingBelow } from "../autograd/mod.ts";
import {
  add,
  attention,
  embedding,
  KvCache,
  kvCacheWrite,
  matmul,
  reshape,
  rmsNorm,
  rope,
  swiglu,
} from "../ops/mod.ts";
import type { DType, Gpu } from "../gpu/mod.ts";
import * as decode from "./llama_decode.ts";

export type { DecodeState } from "./llama_decode.ts";

/** One decoder layer's parameters. */
export interface LlamaLayer {
  inputNorm: Tensor;
  postNorm: Tensor;
  q: Linear;
  k: Linear;
  v: Linear;
  o: Linear;
  gate: Linear;
  up: Linear;
  down: Linear;
}

export class LlamaModel {
  readonly gpu: Gpu;
  readonly config: ModelConfig;
  /** Storage type of the matrices (f16 when the adapter has shader-f16, else f32). */
  readonly dtype: DType;
  /** Every parameter by checkpoint name (tied models list the embedding once). */
  readonly params: ReadonlyMap<string, Tensor>;
  readonly embed: Tensor;
  readonly norm: Tensor;
  /** [V, C]; the embedding itself when tie_word_embeddings. */
  readonly lmHead: Tensor;
  readonly layers: LlamaLayer[];
  /** f32 [D / 2] inverse frequencies with the config's rope_scaling. */
  readonly invFreq: Tensor;

  /** Builds the modules from a complete, checked parameter map (see weights.ts checkParams). */
  constructor(gpu: Gpu, config: ModelConfig, params: Map<string, Tensor>, invFreq: Tensor, dtype: DType) {
    this.gpu = gpu;
    this.config = config;
    this.params = params;
    this.dtype = dtype;
    this.invFreq = invFreq;
    const get = (name: string) => {
      const t = params.get(name);
      if (!t) throw new Error(`LlamaModel: parameter ${name} missing`);
      return t;
    };
    const opt = (name: string) => params.get(name) ?? null;
    const lin = (path: string) => new Linear(path, get(`${path}.weight`), opt(`${path}.bias`));
    this.embed = get("model.embed_tokens.weight");
    this.norm = get("model.norm.weight");
    this.lmHead = config.tieWordEmbeddings ? this.embed : get("lm_head.weight");
    this.layers = [];
    for (let i = 0; i < config.numLayers; i++) {
      const p = `model.layers.${i}`;
      this.layers.push({
        inputNorm: get(`${p}.input_layernorm.weight`),
        postNorm: get(`${p}.post_attention_layernorm.weight`),
        q: lin(`${p}.self_attn.q_proj`),
        k: lin(`${p}.self_attn.k_proj`),
        v: lin(`${p}.self_attn.v_proj`),
        o: lin(`${p}.self_attn.o_proj`),
        gate: lin(`${p}.mlp.gate_proj`),
        up: lin(`${p}.mlp.up_proj`),
        down: lin(`${p}.mlp.down_proj`),
      });
    }
  }

  /** Swaps one parameter's tensor (adapter merging); the caller updates the module that uses it. */
  replaceParam(name: string, t: Tensor): void {
    const map = this.params as Map<string, Tensor>;
    if (!map.has(name)) throw new Error(`replaceParam: no parameter ${name}`);
    if (map.get(name)!.shape.join() !== t.shape.join()) {
      throw new Error(`replaceParam: ${name} changes shape`);
    }
    map.set(name, t);
  }

  /** Every linear layer by module path (`model.layers.3.mlp.up_proj`): where LoRA adapters attach. */
  linears(): Map<string, Linear> {
    const out = new Map<string, Linear>();
    for (const l of this.layers) {
      for (const m of [l.q, l.k, l.v, l.o, l.gate, l.up, l.down]) out.set(m.path, m);
    }
    return out;
  }

  /** A preallocated KV cache per layer for `batch` sequences of up to `maxT` tokens. */
  createCaches(batch: number, maxT: number, dtype: DType = this.dtype): KvCache[] {
    const c = this.config;
    return this.layers.map(() => new KvCache(this.gpu, batch, c.numKvHeads, maxT, c.headDim, dtype));
  }

  #attnOpts() {
    return this.config.slidingWindow ? { window: this.config.slidingWindow } : {};
  }

  /**
   * ids i32 [B, T] from position 0 → final hidden states [B, T, C] f32 (before the final norm). With
   * `caches` (one per layer, batch B) each layer's k/v are written at rows 0 .. T−1. Recorded for
   * autograd when some parameter or adapter requires grad. `seed` varies LoRA dropout per step.
   *
   * Activation memory (training): intermediates that no backward rule reads are released as soon as
   * the forward is past them (see #layer), and each layer's saved activations are released once
   * backward is done with the layer (releasingBelow). `checkpoint` (HF gradient_checkpointing)
   * recomputes layers in backward instead of keeping their activations: true for every layer, a
   * number k for the first k layers only — those are backpropagated last, when the layers above have
   * released their memory, so rebuilding them adds the least to the peak; the other layers keep
   * no-checkpoint speed. `keepActivations` turns early release off (everything lives until the
   * caller's scope ends): the reference the tests compare the released path against.
   *
   * @example
   * const h = model.forward(ids, positions); const logits = model.logits(h);
   * const h2 = model.forward(ids, positions, { checkpoint: 4 }); // recompute layers 0–3 in backward
   */
  forward(
    ids: Tensor,
    positions: Tensor,
    opts: {
      caches?: KvCache[];
      cacheRows?: Tensor;
      seed?: number;
      checkpoint?: boolean | number;
      keepActivations?: boolean;
    } = {},
  ) {
    const [B, T] = ids.shape;
    if (ids.shape.length !== 2 || ids.dtype !== "i32") {
      throw new Error(`LlamaModel.forward: ids must be i32 [B, T], got ${ids.dtype} [${ids.shape}]`);
    }
    const seed = opts.seed ?? 0;
    const L = this.layers.length;
    const ck = opts.checkpoint;
    if (typeof ck === "number" && !(Number.isInteger(ck) && ck >= 0)) {
      throw new Error(`LlamaModel.forward: checkpoint must be true, false or a layer count ≥ 0, got ${ck}`);
    }
    const recomputed = ck === true ? L : Math.min(L, typeof ck === "number" ? ck : 0);
    if (recomputed > 0 && opts.caches) {
      throw new Error("LlamaModel.forward: checkpoint is for training, not with caches");
    }
    if (opts.caches && !opts.cacheRows) {
      throw new Error("LlamaModel.forward: caches given without cacheRows (u32 [B])");
    }
    const keepAll = opts.keepActivations === true;
    let x = embedding(ids, this.embed);
    this.layers.forEach((l, i) => {
      const f = (h: Tensor) =>
        this.#layer(l, i, h, {
          B,
          T,
          positions,
          seed: seed + 8 * i,
          keepAll,
          caches: opts.caches,
          cacheRows: opts.cacheRows,
        });
      // gradient_checkpointing: keep only the layer's input; backward rebuilds the layer (same seeds).
      if (i < recomputed) x = checkpoint(f, x, layerParams(l));
      else x = keepAll ? f(x) : releasingBelow(f, x);
    });
    return x;
  }

  /**
   * One decoder layer of forward(). Each release below names the rules that could read the tensor;
   * a tensor is released only when none of them will: rope's rule reads only positions and invFreq,
   * add's and reshape's nothing, matmul's and LoRA's never their output and their input only when a
   * weight or the adapter trains (readsInput), rmsNorm's its input not its output, swiglu's and
   * attention's their inputs (and attention its output) only when they were recorded (node set).
   * The layer's input x is never released: checkpoint() rebuilds from it.
   */
  #layer(
    l: LlamaLayer,
    i: number,
    x: Tensor,
    o: {
      B: number;
      T: number;
      positions: Tensor;
      seed: number;
      keepAll: boolean;
      caches?: KvCache[];
      cacheRows?: Tensor;
    },
  ): Tensor {
    const c = this.config;
    const { B, T, positions, seed: s } = o;
    const free = (t: Tensor, unread = true) => {
      if (unread && !o.keepAll) t.releaseStorage();
    };
    const h = rmsNorm(x, l.inputNorm, c.rmsNormEps);
    // ops' reshape (not Tensor.reshape) so autograd sees the reshapes when adapters train.
    const qp = l.q.forward(h, s);
    const q = rope(reshape(qp, [B, T, c.numHeads, c.headDim]), positions, this.invFreq);
    free(qp);
    const kp = l.k.forward(h, s + 1);
    const k = rope(reshape(kp, [B, T, c.numKvHeads, c.headDim]), positions, this.invFreq);
    free(kp);
    const v = reshape(l.v.forward(h, s + 2), [B, T, c.numKvHeads, c.headDim]);
    free(h, !readsInput(l.q) && !readsInput(l.k) && !readsInput(l.v));
    if (o.caches) kvCacheWrite(o.caches[i], k, v, o.cacheRows!);
    const a = attention(q, k, v, this.#attnOpts());
    for (const t of [q, k, v]) free(t, !a.node);
    const op = l.o.forward(reshape(a, [B, T, c.numHeads * c.headDim]), s + 3);
    free(a, !a.node && !readsInput(l.o));
    const x1 = add(x, op);
    free(op);
    const h2 = rmsNorm(x1, l.postNorm, c.rmsNormEps);
    const gate = l.gate.forward(h2, s + 4), up = l.up.forward(h2, s + 5);
    free(h2, !readsInput(l.gate) && !readsInput(l.up));
    const m = swiglu(gate, up);
    free(gate, !m.node);
    free(up, !m.node);
    const d = l.down.forward(m, s + 6);
    free(m, !readsInput(l.down));
    const y = add(x1, d);
    free(d);
    free(x1, !h2.node);
    return y;
  }

  /** Final norm + LM head: hidden [..., C] → logits [..., V] f32. */
  logits(hidden: Tensor): Tensor {
    return matmul(rmsNorm(hidden, this.norm, this.config.rmsNormEps), this.lmHead, { transB: true });
  }

  /**
   * One decode step: tokens i32 [B, 1] at `state` positions, k/v appended to `caches` → logits [B, V].
   * Not recorded for autograd. Fused launches by default, `fused: false` op by op: see
   * src/model/llama_decode.ts (decodeStep, decodeTuning).
   *
   * @example
   * const logits = model.decodeStep(tokens, state, caches); // then sample on the GPU, advance state
   */
  decodeStep(
    tokens: Tensor,
    state: decode.DecodeState,
    caches: KvCache[],
    opts: { fused?: boolean } = {},
  ): Tensor {
    return decode.decodeStep(this, tokens, state, caches, opts);
  }

  /** Number of parameters (embedding counted once when tied). */
  get parameterCount(): number {
    let n = 0;
    for (const t of this.params.values()) n += t.size;
    return n;
  }

  /** Releases every parameter and adapter. */
  dispose(): void {
    for (const t of this.params.values()) t.dispose();
    for (const m of this.linears().values()) {
      m.lora?.A.dispose();
      m.lora?.B.dispose();
    }
    this.invFreq.dispose();
  }
}

/**
 * Whether a linear layer's backward rule may read its input: when its weight, bias or adapter trains
 * (conservative — matmul's and LoRA's rules read x for weight and LoRA-A gradients only).
 */
function readsInput(m: Linear): boolean {
  return isGradEnabled() && [m.weight, m.bias, m.lora?.A, m.lora?.B].some((t) => t?.requiresGrad === true);
}

/** Every tensor of a layer that may require grad: norms, linear weights and biases, LoRA A and B. */
function layerParams(l: LlamaLayer): Tensor[] {
  const out = [l.inputNorm, l.postNorm];
  for (const m of [l.q, l.k, l.v, l.o, l.gate, l.up, l.down]) {
    out.push(m.weight);
    if (m.bias) out.push(m.bias);
    if (m.lora) out.push(m.lora.A, m.lora.B);
  }
  return out;
}
