/**
 * Launchers of kernels/sampling.wgsl: the next token chosen on the GPU (greedy, or seeded temperature /
 * top-k / top-p sampling, with HF's repetition penalty), prompt marking for the penalty, and the
 * per-step position advance — the pieces that let decode run K steps per submit without a readback.
 */
import { Uniforms } from "../gpu/mod.ts";
import { Tensor } from "../tensor/mod.ts";
import { grid1d } from "../autograd/mod.ts";
import type { DecodeState } from "../model/llama.ts";

/** How the next token is chosen (HF generation_config names in comments). */
export interface SamplingParams {
  /** `temperature`; ≤ 0 means greedy. */
  temperature: number;
  /** `top_k`; 0 = off. */
  topK: number;
  /** `top_p`; ≥ 1 = off. */
  topP: number;
  /** `repetition_penalty`; 1 = off. */
  repetitionPenalty: number;
  /** Seed of the draws (u32). */
  seed: number;
  /** `do_sample`; false = greedy whatever the temperature. */
  doSample: boolean;
}

/** Greedy decoding (HF's default when do_sample is false). */
export const GREEDY: SamplingParams = {
  temperature: 1,
  topK: 0,
  topP: 1,
  repetitionPenalty: 1,
  seed: 0,
  doSample: false,
};

/** GPU buffers the sampler writes: the next input token per row and a chunk of emitted tokens. */
export interface SamplerBuffers {
  /** i32 [B, 1]: the token each row feeds to the next step. */
  tokens: Tensor;
  /** u32 [B, K]: the tokens of this chunk (read back once per chunk). */
  out: Tensor;
  /** u32 [B, V]: tokens seen (prompt + generated), only when the penalty is on. */
  seen: Tensor | null;
  /**
   * u32 [1]: steps since the chunk began, added on the GPU to the column and the draw's step, and
   * moved by advance(). With it every decode step of a chunk records identical commands (Gpu.replay).
   * Absent: 0.
   */
  step?: Tensor | null;
}

function base(B: number, V: number): Uniforms {
  return new Uniforms().u32(B).u32(V);
}

/**
 * Chooses one token per row of logits [B, V] f32 and writes it to `buf.tokens[b]` and
 * `buf.out[b, col + step]`, where step is `buf.step`'s value on the GPU (0 without it). `rngStep + step`
 * must differ between steps (the draw is rand(seed, rngStep + step, b)).
 *
 * @example
 * sampleTokens(logits, buffers, step % K, step, { ...GREEDY, temperature: 0.7, topP: 0.9, doSample: true });
 */
export function sampleTokens(
  logits: Tensor,
  buf: SamplerBuffers,
  col: number,
  rngStep: number,
  s: SamplingParams,
): void {
  const [B, V] = logits.shape;
  const K = buf.out.shape[1];
  if (
    logits.shape.length !== 2 || logits.dtype !== "f32" || buf.tokens.size !== B || buf.out.shape[0] !== B
  ) {
    throw new Error(
      `sampleTokens: logits [${logits.shape}] ${logits.dtype}, tokens [${buf.tokens.shape}], out [${buf.out.shape}] disagree`,
    );
  }
  if (!(col >= 0 && col < K)) throw new Error(`sampleTokens: column ${col} outside [0, ${K})`);
  if (buf.step && (buf.step.dtype !== "u32" || buf.step.size !== 1)) {
    throw new Error(`sampleTokens: step must be u32 [1], got ${buf.step.dtype} [${buf.step.shape}]`);
  }
  const usePenalty = s.repetitionPenalty !== 1;
  if (usePenalty && !(buf.seen && buf.seen.size === B * V)) {
    throw new Error("sampleTokens: repetition penalty needs a seen buffer u32 [B, V]");
  }
  if (usePenalty && !(s.repetitionPenalty > 0)) {
    throw new Error(`repetition_penalty must be > 0, got ${s.repetitionPenalty}`);
  }
  const greedy = !s.doSample || s.temperature <= 0;
  const gpu = logits.gpu;
  // Greedy: argmax over slices of 4096 tokens in parallel, then one workgroup per row picks the best.
  const G = Math.ceil(V / 4096);
  if (G > 256) throw new Error(`sampleTokens: vocabulary ${V} above the kernel's 256 · 4096 tokens`);
  // Every binding the entry uses statically must be bound: unused ones get a 4-byte stand-in buffer.
  const scratch = Tensor.empty(gpu, greedy ? [B, G, 2] : [3, B, V], "f32");
  const noSeen = usePenalty ? null : Tensor.empty(gpu, [1], "u32");
  const noStep = buf.step ? null : Tensor.zeros(gpu, [1], "u32");
  const u = base(B, V).u32(K).u32(col).u32(s.seed >>> 0).u32(rngStep >>> 0).f32(greedy ? 1 : s.temperature)
    .u32(s.topK > 0 ? s.topK : 0).f32(s.topP > 0 ? s.topP : 1).f32(s.repetitionPenalty).u32(+usePenalty)
    .u32(greedy ? 0 : 1).u32(0).u32(0).u32(0).f32(0).f32(0).u32(G).u32(0);
  const bind = {
    1: logits.buffer,
    2: (noSeen ?? buf.seen!).buffer,
    3: buf.tokens.buffer,
    4: buf.out.buffer,
    5: scratch.buffer,
    11: (buf.step ?? noStep!).buffer,
  };
  const lim = gpu.device.limits;
  const wg = 2 **
    Math.floor(
      Math.log2(Math.min(1024, lim.maxComputeInvocationsPerWorkgroup, lim.maxComputeWorkgroupSizeX)),
    );
  const spec = (entry: string) => ({
    file: "sampling",
    entry,
    types: { ST: "f32" as const },
    overrides: { WG: wg },
  });
  if (greedy) gpu.dispatch(spec("argmax_partial"), { 1: bind[1], 2: bind[2], 5: bind[5] }, [G, B], u);
  gpu.dispatch(spec("sample"), bind, [B], u);
  scratch.dispose();
  noSeen?.dispose();
  noStep?.dispose();
}

/** Marks ids i32 [B, T] (−1 = padding, skipped) as seen in `seen` u32 [B, V] (cleared first). */
export function markSeen(seen: Tensor, ids: Tensor): void {
  const [B, V] = seen.shape;
  const T = ids.size / B;
  const gpu = seen.gpu;
  gpu.clear(seen.buffer);
  const grid = grid1d(ids.size, 256, gpu.device.limits.maxComputeWorkgroupsPerDimension);
  gpu.dispatch(
    { file: "sampling", entry: "mark", types: { ST: "f32" } },
    { 2: seen.buffer, 6: ids.buffer },
    grid,
    base(B, V).u32(0).u32(0).u32(0).u32(0).f32(1).u32(0).f32(1).f32(1).u32(1).u32(0).u32(T).u32(ids.size)
      .u32(grid[0]).f32(0).f32(0).u32(0),
  );
}

/**
 * positions, rows and lengths += 1 for every row (the next decode step), on the GPU; also `step` += 1
 * when given (the sampler's step counter, SamplerBuffers.step).
 */
export function advance(state: DecodeState, step?: Tensor | null): void {
  const B = state.rows.size;
  const gpu = state.rows.gpu;
  const noStep = step ? null : Tensor.empty(gpu, [1], "u32"); // bound, never touched (hasStep 0)
  gpu.dispatch(
    { file: "sampling", entry: "advance", types: { ST: "f32" } },
    {
      7: state.positions.buffer,
      8: state.rows.buffer,
      9: state.lengths.buffer,
      11: (step ?? noStep!).buffer,
    },
    [Math.ceil(B / 64)],
    base(B, 0).u32(0).u32(0).u32(0).u32(0).f32(1).u32(0).f32(1).f32(1).u32(0).u32(0).u32(0).u32(0).u32(0)
      .f32(0).f32(0).u32(0).u32(step ? 1 : 0),
  );
  noStep?.dispose();
}
