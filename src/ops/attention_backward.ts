/**
 * Backward of attention() (kernels/attention_backward.wgsl): a delta pass (rowsum of out · dout), then
 * dk/dv per key tile and dq per query tile.
 */
import type { Binding } from "../gpu/mod.ts";
import { Tensor } from "../tensor/mod.ts";
import { grid1d } from "../autograd/mod.ts";
import { type AttentionOptions, dimsOf, params } from "./attention_common.ts";

/**
 * Backward of attention() given its output and log-sum-exp (a tensor, or a buffer range): returns
 * [dq, dk, dv], null where `needs` is false. attention() records this; exported for benches.
 *
 * @example
 * const { out, lse } = attentionForward(q, k, v);
 * const [dq, dk, dv] = attentionBackward(q, k, v, out, lse, gradOut);
 */
export function attentionBackward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  lse: Tensor | Binding,
  g: Tensor,
  opts: AttentionOptions = {},
  needs: boolean[] = [true, true, true],
): (Tensor | null)[] {
  const d = dimsOf(q, k, v, opts);
  const gpu = q.gpu;
  const u = () => params(d, opts).f32(opts.scale ?? 1 / Math.sqrt(d.D));
  const spec = (entry: string) => ({ file: "attention_backward", entry, overrides: { D: d.D } });
  const delta = Tensor.empty(gpu, [d.B, d.H, d.T], "f32");
  const grid = grid1d(d.B * d.T * d.H, 256, gpu.device.limits.maxComputeWorkgroupsPerDimension);
  gpu.dispatch(spec("delta"), { 4: out.buffer, 6: g.buffer, 7: delta.buffer }, grid, u().u32(grid[0]));
  const lseBinding = lse instanceof Tensor ? lse.buffer : lse;
  const common = { 1: q.buffer, 2: k.buffer, 3: v.buffer, 5: lseBinding, 6: g.buffer, 7: delta.buffer };
  let dq: Tensor | null = null, dk: Tensor | null = null, dv: Tensor | null = null;
  if (needs[1] || needs[2]) {
    dk = Tensor.empty(gpu, k.shape, "f32");
    dv = Tensor.empty(gpu, v.shape, "f32");
    const grid = [Math.ceil(d.S / 64), d.Hkv, d.B];
    gpu.dispatch(spec("grad_kv"), { ...common, 9: dk.buffer, 10: dv.buffer }, grid, u().u32(0));
    // grad_kv computes both; hand back only what was asked for (frozen inputs get nothing).
    if (!needs[1]) dk = (dk.dispose(), null);
    if (!needs[2]) dv = (dv.dispose(), null);
  }
  if (needs[0]) {
    dq = Tensor.empty(gpu, q.shape, "f32");
    const grid = [Math.ceil(d.T / 64), d.H, d.B];
    gpu.dispatch(spec("grad_q"), { ...common, 8: dq.buffer }, grid, u().u32(0));
  }
  delta.dispose(); // safe: reuse of its buffer is recorded after these dispatches
  return [dq, dk, dv];
}
