/**
 * The decode path of LlamaModel (model.decodeStep calls decodeStep here): one token per sequence at
 * per-sequence positions held in GPU buffers, attention over the KV cache, nothing read back — so many
 * steps can be recorded in one submit. Kept apart from llama.ts, which holds the module structure and
 * forward() (training, prefill), because decode is a different computation schedule of the same layers:
 * fused launches (q|k|v in one GEMV, RoPE + cache write, one-launch attention, residual adds as GEMV
 * epilogues, the RMSNorm folded into the GEMVs) instead of the recorded op-by-op graph.
 *
 * Letters as in llama.ts: B batch, C hidden size, H query heads, Hkv kv heads, D head dim, V vocabulary.
 */
import type { Tensor } from "../tensor/mod.ts";
import type { Linear } from "../nn/linear.ts";
import {
  add,
  addRmsNorm,
  attentionDecode,
  canFuseGateUp,
  canFuseLinears,
  embedding,
  fusedLinear,
  gateUpSwiglu,
  type KvCache,
  kvCacheWrite,
  matmul,
  matmulInto,
  rmsNorm,
  rope,
  ropeKvWrite,
  swiglu,
} from "../ops/mod.ts";
import type { LlamaLayer, LlamaModel } from "./llama.ts";

/** Per-sequence positions of a decode step, all on the GPU (the engine advances them there). */
export interface DecodeState {
  /** i32 [B, 1]: RoPE position of the new token. */
  positions: Tensor;
  /** u32 [B]: cache row the new token's k/v go to (= positions). */
  rows: Tensor;
  /** u32 [B]: keys visible after the write (= positions + 1). */
  lengths: Tensor;
}

/**
 * Decode choices (bench/workbench/decode_ab.ts flips them). foldNorm: the RMSNorm before q|k|v and
 * before gate|up runs inside those GEMVs (every workgroup reduces the row itself) instead of as its own
 * launch — only up to foldNormMaxK hidden size, where saving a launch beats each workgroup's extra
 * reduction. H200, 128 tokens after 1024: Qwen2.5-0.5B shape (C 896) 378–399 tok/s folded vs 289–345
 * not; Mistral-7B shape (C 4096) 131 folded vs 152–155 not.
 */
export const decodeTuning = { foldNorm: true, foldNormMaxK: 2048 };

/** The residual stream of a fused step: x [B, C], and a residual add still pending (a LoRA output). */
interface Stream {
  x: Tensor;
  pending: Tensor | null;
}

/**
 * One decode step: tokens i32 [B, 1] at `state` positions, k/v appended to `caches` → logits [B, V].
 * Not recorded for autograd (inference only). `fused: false` takes the plain op-by-op path (17
 * launches per layer; kept for comparison and benches); the default fuses where it can (6 per layer
 * without adapters at batch 1, 8 for more sequences): see decodeLayer.
 *
 * @example
 * const logits = decodeStep(model, tokens, state, caches); // = model.decodeStep(tokens, state, caches)
 */
export function decodeStep(
  model: LlamaModel,
  tokens: Tensor,
  state: DecodeState,
  caches: KvCache[],
  opts: { fused?: boolean } = {},
): Tensor {
  const c = model.config;
  const B = tokens.shape[0];
  if (opts.fused === false) return decodeStepPlain(model, tokens, state, caches);
  const s: Stream = { x: embedding(tokens, model.embed).reshape([B, c.hiddenSize]), pending: null };
  model.layers.forEach((l, i) => decodeLayer(model, l, s, state, caches[i]));
  const h = norm(model, s, model.norm);
  return matmul(h, model.lmHead, { transB: true });
}

/** Sliding-window option of the config for attentionDecode. */
function attnOpts(model: LlamaModel): { window?: number } {
  return model.config.slidingWindow ? { window: model.config.slidingWindow } : {};
}

/**
 * RMSNorm of the residual stream s.x with the residual add still pending (a LoRA projection's output)
 * folded in: one launch either way.
 */
function norm(model: LlamaModel, s: Stream, w: Tensor): Tensor {
  if (!s.pending) return rmsNorm(s.x, w, model.config.rmsNormEps);
  const r = addRmsNorm(s.x, s.pending, w, model.config.rmsNormEps);
  s.x = r.sum;
  s.pending = null;
  return r.y;
}

/**
 * x ← x + lin(inp): without an adapter as the GEMV's epilogue (C = A·Wᵀ + 1·C, in place on the
 * residual stream, which decode owns); with one, left pending for the next norm.
 */
function residual(s: Stream, lin: Linear, inp: Tensor): void {
  if (lin.lora) s.pending = lin.forward(inp);
  else matmulInto(s.x, inp, lin.weight, { transB: true, beta: 1, bias: lin.bias ?? undefined });
}

/**
 * One decoder layer of a decode step. Launches without adapters, one sequence (6): input norm +
 * q|k|v GEMV (three weights, one launch; up to decodeTuning.foldNormMaxK the GEMV normalises its row
 * itself, else the norm is one more launch), RoPE + cache write,
 * attention (one launch: attention_decode_one.wgsl), o-proj + residual, post norm + gate|up GEMV +
 * SwiGLU, down-proj + residual. Several sequences (8): the norms run as their own launches and up
 * to 16 sequences the GEMVs read each weight once for all rows (gemv_rows). With adapters the
 * projections run one by one.
 */
function decodeLayer(model: LlamaModel, l: LlamaLayer, s: Stream, st: DecodeState, cache: KvCache): void {
  const c = model.config;
  const B = s.x.shape[0];
  const foldNorm = decodeTuning.foldNorm && c.hiddenSize <= decodeTuning.foldNormMaxK;
  const qkvW = [l.q.weight, l.k.weight, l.v.weight];
  let q: Tensor;
  if (!l.q.lora && !l.k.lora && !l.v.lora && c.headDim % 8 === 0 && canFuseLinears(s.x, qkvW)) {
    const bias = l.q.bias && l.k.bias && l.v.bias ? [l.q.bias, l.k.bias, l.v.bias] : null;
    if (!bias && (l.q.bias || l.k.bias || l.v.bias)) {
      throw new Error("decodeStep: q/k/v biases must come together");
    }
    // The input norm folds into the GEMV unless a LoRA residual add is still pending.
    const qkv = s.pending || !foldNorm
      ? fusedLinear(norm(model, s, l.inputNorm), qkvW, bias)
      : fusedLinear(s.x, qkvW, bias, { weight: l.inputNorm, eps: c.rmsNormEps });
    q = ropeKvWrite(qkv, c.numHeads, cache, st.positions, st.rows, model.invFreq);
  } else {
    const h = norm(model, s, l.inputNorm);
    q = rope(l.q.forward(h).reshape([B, 1, c.numHeads, c.headDim]), st.positions, model.invFreq);
    const k = rope(l.k.forward(h).reshape([B, 1, c.numKvHeads, c.headDim]), st.positions, model.invFreq);
    kvCacheWrite(cache, k, l.v.forward(h).reshape([B, 1, c.numKvHeads, c.headDim]), st.rows);
  }
  const o = attentionDecode(q, cache, st.lengths, attnOpts(model));
  residual(s, l.o, o.reshape([B, c.numHeads * c.headDim]));
  let a: Tensor;
  if (
    !l.gate.lora && !l.up.lora && !!l.gate.bias === !!l.up.bias &&
    canFuseGateUp(s.x, l.gate.weight, l.up.weight)
  ) {
    const bias: [Tensor, Tensor] | null = l.gate.bias ? [l.gate.bias, l.up.bias!] : null;
    a = s.pending || !foldNorm
      ? gateUpSwiglu(norm(model, s, l.postNorm), l.gate.weight, l.up.weight, bias)
      : gateUpSwiglu(s.x, l.gate.weight, l.up.weight, bias, { weight: l.postNorm, eps: c.rmsNormEps });
  } else {
    const m = norm(model, s, l.postNorm);
    a = swiglu(l.gate.forward(m), l.up.forward(m));
  }
  residual(s, l.down, a);
}

/** decodeStep op by op (the path before fusion): 17 launches per layer. */
function decodeStepPlain(model: LlamaModel, tokens: Tensor, state: DecodeState, caches: KvCache[]): Tensor {
  const c = model.config;
  const B = tokens.shape[0];
  let x = embedding(tokens, model.embed);
  model.layers.forEach((l, i) => {
    const h = rmsNorm(x, l.inputNorm, c.rmsNormEps);
    const q = rope(l.q.forward(h).reshape([B, 1, c.numHeads, c.headDim]), state.positions, model.invFreq);
    const k = rope(l.k.forward(h).reshape([B, 1, c.numKvHeads, c.headDim]), state.positions, model.invFreq);
    const v = l.v.forward(h).reshape([B, 1, c.numKvHeads, c.headDim]);
    kvCacheWrite(caches[i], k, v, state.rows);
    const o = attentionDecode(q, caches[i], state.lengths, attnOpts(model));
    x = add(x, l.o.forward(o.reshape([B, 1, c.numHeads * c.headDim])));
    x = mlp(model, l, x, 0);
  });
  return model.logits(x.reshape([B, c.hiddenSize]));
}

/** Post-attention norm and SwiGLU MLP with the residual add, op by op (as forward()'s layer). */
function mlp(model: LlamaModel, l: LlamaLayer, x: Tensor, seed: number): Tensor {
  const h = rmsNorm(x, l.postNorm, model.config.rmsNormEps);
  return add(x, l.down.forward(swiglu(l.gate.forward(h, seed), l.up.forward(h, seed + 1)), seed + 2));
}
