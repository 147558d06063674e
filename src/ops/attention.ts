/**
 * Attention: flash-style causal / sliding-window / GQA attention with autograd (kernels/
 * attention_forward.wgsl; backward in attention_backward.ts). Decode over a KV cache: attention_decode.ts.
 *
 * Letters: B batch, T query length, S key length, H query heads, Hkv kv heads (query head h reads kv
 * head floor(h / (H / Hkv))), D head dim (multiple of 4, ≤ 128).
 */
import type { Binding } from "../gpu/mod.ts";
import { Tensor } from "../tensor/mod.ts";
import { isGradEnabled, record } from "../autograd/mod.ts";
import { type AttentionOptions, type Dims, dimsOf, params } from "./attention_common.ts";
import { attentionBackward } from "./attention_backward.ts";

export type { AttentionOptions } from "./attention_common.ts";

/**
 * Tile choices of kernels/attention_forward.wgsl: 32-column head-dim chunks (CW 8) where the device
 * has 48 KiB of workgroup memory, else 16 (CW 4, 32 KiB: lavapipe, many laptops); each workgroup runs
 * a long and a short query tile (PAIR) so under a causal mask all do about the same work. H200
 * (bench/workbench/attention_forward.ts), T 1024 H 32/8 D 128 causal: CW 4 0.63 ms, CW 8 0.58,
 * CW 4 + PAIR 0.51, CW 8 + PAIR 0.47 (18.4 TFLOP/s); non-causal: CW 8 0.86, CW 8 + PAIR 0.85.
 */
function forwardTiles(q: Tensor, d: Dims) {
  const CW = q.gpu.device.limits.maxComputeWorkgroupStorageSize >= 48 * 1024 ? 8 : 4;
  return { overrides: { D: d.D, CW, PAIR: 1 }, groupsX: Math.ceil(Math.ceil(d.T / 64) / 2) };
}

function launchForward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  d: Dims,
  opts: AttentionOptions,
  out: Binding,
  lse: Binding,
) {
  const { overrides, groupsX } = forwardTiles(q, d);
  q.gpu.dispatch(
    { file: "attention_forward", libs: ["attention_forward_tiles"], overrides },
    [q.buffer, k.buffer, v.buffer, out, lse],
    [groupsX, d.H, d.B],
    params(d, opts),
  );
}

/**
 * Forward pass that also returns the log-sum-exp [B, H, T] (natural log) of each query row: for tests
 * and benches. Not recorded for autograd; use attention() in models.
 */
export function attentionForward(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}) {
  const d = dimsOf(q, k, v, opts);
  const out = Tensor.empty(q.gpu, q.shape, "f32");
  const lse = Tensor.empty(q.gpu, [d.B, d.H, d.T], "f32");
  launchForward(q, k, v, d, opts, out.buffer, lse.buffer);
  return { out, lse };
}

/**
 * q [B, T, H, D], k/v [B, S, Hkv, D] (f32) → out [B, T, H, D] f32. Flash-style tiled online softmax: no
 * T×S matrix in memory. Recorded for autograd (dq, dk, dv; dk/dv summed over the query heads sharing a
 * kv head). The log-sum-exp the backward needs lives in the tail of the output's own buffer, so it
 * lives exactly as long as the output, whatever scope the caller keeps it in.
 *
 * @example
 * const o = attention(q, k, v, { window: 4096 }); // causal sliding-window GQA attention
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const d = dimsOf(q, k, v, opts);
  const gpu = q.gpu;
  const recording = isGradEnabled() && [q, k, v].some((t) => t.requiresGrad);
  if (!recording) {
    const out = Tensor.empty(gpu, q.shape, "f32");
    const lse = Tensor.empty(gpu, [d.B, d.H, d.T], "f32");
    launchForward(q, k, v, d, opts, out.buffer, lse.buffer);
    lse.dispose(); // safe: the pool hands it out again only to work recorded after this dispatch
    return out;
  }
  const outBytes = q.size * 4;
  const lseOffset = Math.ceil(outBytes / 256) * 256; // storage binding offsets align to 256
  const lseBytes = d.B * d.H * d.T * 4;
  const out = new Tensor(gpu, q.shape, "f32", gpu.pool.acquire(lseOffset + lseBytes));
  const lse = { buffer: out.buffer, offset: lseOffset, size: lseBytes };
  launchForward(q, k, v, d, opts, out.buffer, lse);
  return record(
    out,
    "attention",
    [q, k, v],
    (g, needs) => attentionBackward(q, k, v, out, lse, g, opts, needs),
  );
}
