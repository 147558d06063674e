/**
 * SwiGLU, the Llama MLP's gating: silu(gate) ⊙ up, f32 activations. Kernels: kernels/swiglu.wgsl.
 * Backward: one kernel writes both dgate and dup (they share σ(gate)); a gradient nobody needs is
 * dropped right away.
 */
import { Uniforms } from "../gpu/mod.ts";
import { Tensor } from "../tensor/mod.ts";
import { grid1d, record } from "../autograd/mod.ts";

function launch(entry: string, n: number, bindings: Record<number, Tensor>): void {
  const vec = n % 4 === 0;
  const gpu = Object.values(bindings)[0].gpu;
  const buffers: Record<number, GPUBuffer> = {};
  // Scalar entries use bindings 1…6, vec4 entries 11…16 (see the kernel header).
  for (const [k, t] of Object.entries(bindings)) buffers[Number(k) + (vec ? 10 : 0)] = t.buffer;
  const units = vec ? n / 4 : n;
  gpu.dispatch(
    { file: "swiglu", entry: vec ? `${entry}4` : entry },
    buffers,
    grid1d(units, 256, gpu.device.limits.maxComputeWorkgroupsPerDimension),
    new Uniforms().u32(units),
  );
}

/**
 * silu(gate) ⊙ up for two f32 tensors of one shape ([..., F]).
 *
 * @example
 * const h = swiglu(matmul(x, gateProj), matmul(x, upProj)); // [B, T, F]
 */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  if (gate.dtype !== "f32" || up.dtype !== "f32" || gate.shape.join() !== up.shape.join()) {
    throw new Error(
      `swiglu: gate [${gate.shape}] ${gate.dtype} and up [${up.shape}] ${up.dtype} must be f32 of one shape`,
    );
  }
  const out = Tensor.empty(gate.gpu, gate.shape, "f32");
  if (out.size === 0) return out;
  launch("forward", out.size, { 1: gate, 2: up, 3: out });
  return record(out, "swiglu", [gate, up], (g, needs) => {
    const dgate = Tensor.empty(gate.gpu, gate.shape, "f32");
    const dup = Tensor.empty(gate.gpu, gate.shape, "f32");
    launch("backward", out.size, { 1: gate, 2: up, 4: g, 5: dgate, 6: dup });
    if (!needs[0]) dgate.dispose();
    if (!needs[1]) dup.dispose();
    return [needs[0] ? dgate : null, needs[1] ? dup : null];
  });
}
