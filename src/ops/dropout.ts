/**
 * Inverted dropout with a mask derived from (seed, index), so backward regenerates it rather than
 * keeping a mask tensor alive. Callers pass a fresh seed per step (the trainer derives it from its RNG).
 */
import { Uniforms } from "../gpu/mod.ts";
import { Tensor } from "../tensor/mod.ts";
import { grid1d, record } from "../autograd/mod.ts";

function launch(x: Tensor, p: number, seed: number): Tensor {
  const out = Tensor.empty(x.gpu, x.shape, "f32");
  x.gpu.dispatch(
    { file: "dropout" },
    [x.buffer, out.buffer],
    grid1d(x.size, 256, x.gpu.device.limits.maxComputeWorkgroupsPerDimension),
    new Uniforms().u32(x.size).u32(seed >>> 0).f32(p),
  );
  return out;
}

/**
 * Zeroes each element with probability `p` and scales survivors by 1/(1−p). p = 0 returns `x` itself.
 *
 * @example
 * const h = dropout(x, 0.05, stepSeed);
 */
export function dropout(x: Tensor, p: number, seed: number): Tensor {
  if (!(p >= 0 && p < 1)) throw new Error(`dropout: p must be in [0, 1), got ${p}`);
  if (x.dtype !== "f32") throw new Error(`dropout: f32 input expected, got ${x.dtype}`);
  if (p === 0) return x;
  return record(launch(x, p, seed), "dropout", [x], (g) => [launch(g, p, seed)]);
}
