/**
 * Rotary position embedding, Hugging Face "rotate_half" convention, and the inverse frequencies with
 * HF's rope_scaling rules. Kernels: kernels/rope.wgsl.
 *
 * The backward is the rotation by −angle (a rotation's transpose is its inverse); positions and
 * inverse frequencies are constants and get no gradient.
 */
import { Uniforms } from "../gpu/mod.ts";
import { Tensor } from "../tensor/mod.ts";
import { grid1d, record } from "../autograd/mod.ts";

/** HF `config.json` `rope_scaling` (the types webtune supports). */
export interface RopeScaling {
  rope_type: "llama3" | "default" | "linear";
  factor?: number;
  low_freq_factor?: number;
  high_freq_factor?: number;
  original_max_position_embeddings?: number;
}

/**
 * Inverse frequencies [headDim / 2] as HF transformers computes them: invFreq[d] = 1 / theta^(2d / D),
 * then the scaling rule — "linear" divides by `factor`; "llama3" (Llama 3.1/3.2) divides the low
 * frequencies (wavelength 2π/invFreq above orig/low_freq_factor) by `factor`, keeps the high ones
 * (wavelength below orig/high_freq_factor) and blends in between with
 * smooth = (orig/wavelength − low_freq_factor) / (high_freq_factor − low_freq_factor):
 * (1 − smooth)·invFreq/factor + smooth·invFreq.
 *
 * Computed in float64 and rounded once to f32. HF builds the same values with float32 arithmetic, so
 * entries can differ from HF's buffer in the last bit or two of the f32 (≤ ~2⁻²³ relative).
 *
 * @example
 * const inv = ropeInvFreq(128, 500000, { rope_type: "llama3", factor: 8, low_freq_factor: 1,
 *   high_freq_factor: 4, original_max_position_embeddings: 8192 }); // Llama 3.1 8B
 */
export function ropeInvFreq(headDim: number, theta: number, scaling?: RopeScaling | null): Float32Array {
  if (!Number.isInteger(headDim) || headDim < 2 || headDim % 2 !== 0) {
    throw new Error(`ropeInvFreq: head dim must be a positive even integer, got ${headDim}`);
  }
  if (!(theta > 0)) throw new Error(`ropeInvFreq: rope_theta must be > 0, got ${theta}`);
  const base = Array.from({ length: headDim / 2 }, (_, d) => 1 / Math.pow(theta, (2 * d) / headDim));
  const type = scaling?.rope_type ?? "default";
  if (!scaling || type === "default") return Float32Array.from(base);
  const factor = need(scaling, "factor");
  if (type === "linear") return Float32Array.from(base, (f) => f / factor);
  if (type !== "llama3") throw new Error(`ropeInvFreq: unsupported rope_scaling.rope_type "${type}"`);
  const low = need(scaling, "low_freq_factor");
  const high = need(scaling, "high_freq_factor");
  const orig = need(scaling, "original_max_position_embeddings");
  if (!(high > low)) {
    throw new Error(`ropeInvFreq: rope_scaling needs high_freq_factor (${high}) > low_freq_factor (${low})`);
  }
  const lowFreqWavelen = orig / low, highFreqWavelen = orig / high;
  return Float32Array.from(base, (f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highFreqWavelen) return f;
    if (wavelen > lowFreqWavelen) return f / factor;
    const smooth = (orig / wavelen - low) / (high - low);
    return (1 - smooth) * f / factor + smooth * f;
  });
}

function need(s: RopeScaling, key: Exclude<keyof RopeScaling, "rope_type">): number {
  const v = s[key];
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
    throw new Error(`ropeInvFreq: rope_scaling "${s.rope_type}" needs a positive number "${key}", got ${v}`);
  }
  return v;
}

function launch(
  [B, T, H, D]: readonly number[],
  x: Tensor,
  positions: Tensor,
  invFreq: Tensor,
  out: Tensor,
  sign: 1 | -1,
): void {
  const half = D / 2;
  const vec = half % 4 === 0;
  const n = B * T * H * (vec ? half / 4 : half);
  if (n === 0) return;
  const gpu = x.gpu;
  // Scalar entry: bindings 1…4; vec4 entry: 11, 13, 14 (see the kernel header), positions at 2.
  const k = vec ? 10 : 0;
  gpu.dispatch(
    { file: "rope", entry: vec ? "main4" : "main" },
    { [1 + k]: x.buffer, 2: positions.buffer, [3 + k]: invFreq.buffer, [4 + k]: out.buffer },
    grid1d(n, 256, gpu.device.limits.maxComputeWorkgroupsPerDimension),
    new Uniforms().u32(B * T).u32(H).u32(half).f32(sign).u32(n),
  );
}

/**
 * Rotates x [B, T, H, D] (f32) by angle = positions[b, t] · invFreq[d] on the pairs (d, d + D/2).
 * Positions are i32 [B, T] and may differ per batch row (packed or left-padded batches).
 *
 * @example
 * const q = rope(qProj.reshape([B, T, H, D]), positions, invFreq); // invFreq from ropeInvFreq()
 */
export function rope(x: Tensor, positions: Tensor, invFreq: Tensor): Tensor {
  const [B, T, , D] = x.shape;
  if (x.shape.length !== 4 || x.dtype !== "f32" || D % 2 !== 0) {
    throw new Error(`rope: x must be f32 [B, T, H, D] with D even, got [${x.shape}] ${x.dtype}`);
  }
  if (positions.dtype !== "i32" || positions.shape.join() !== [B, T].join()) {
    throw new Error(`rope: positions must be i32 [${B}, ${T}], got [${positions.shape}] ${positions.dtype}`);
  }
  if (invFreq.dtype !== "f32" || invFreq.size !== D / 2) {
    throw new Error(`rope: invFreq must be f32 [${D / 2}], got [${invFreq.shape}] ${invFreq.dtype}`);
  }
  const out = Tensor.empty(x.gpu, x.shape, "f32");
  launch(x.shape, x, positions, invFreq, out, 1);
  return record(out, "rope", [x], (g) => {
    const dx = Tensor.empty(x.gpu, x.shape, "f32");
    launch(x.shape, g, positions, invFreq, dx, -1);
    return [dx];
  });
}
