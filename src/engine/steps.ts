/**
 * The decode loop's host side, shared by LocalEngine and SlotBatch: n steps recorded back to back, the
 * first through the model code under Gpu.record, the others as Gpu.replay of it. That is possible
 * because a step's commands do not change from one step to the next: positions, lengths and the
 * sampler's column and draw all live in GPU buffers that the step itself advances (sampling.ts,
 * `step` counter). The host then spends three pass calls per launch on a replayed step instead of
 * the op code's bookkeeping — on the H200 decode of a 0.5B model was bound by that host time.
 */
import { type Tensor, tidy } from "../tensor/mod.ts";
import { noGrad } from "../autograd/mod.ts";
import type { Gpu, Recording } from "../gpu/mod.ts";

/** How recordDecodeSteps records. */
export interface StepOptions {
  /** Replay the first step for the others (else run `step` every time). */
  replay: boolean;
  /** Submit after every step, so the GPU runs step j while the host records j + 1 (else the caller's). */
  submitEach: boolean;
}

/**
 * Records `n` decode steps. `step` records one step (model, sampler, advance) and must record the same
 * commands every time it runs; `counter` (u32 [1], the sampler's step counter) is set to 0 first, queue-
 * ordered after whatever was submitted before. Each step runs in its own scope, so every step records
 * on the same pooled buffers (and cached bind groups); those buffers stay unclaimed while the step is
 * replayed, since nothing else runs in between. A step whose recording is not replayable (a copy or a
 * clear among its commands, e.g. a buffer made on first use) is run again through `step`.
 * Returns the steps replayed.
 */
export function recordDecodeSteps(
  gpu: Gpu,
  n: number,
  counter: Tensor,
  opts: StepOptions,
  step: () => void,
): number {
  gpu.write(counter.buffer, new Uint32Array([0]));
  let recording: Recording | null = null;
  let replayed = 0;
  noGrad(() => {
    for (let j = 0; j < n; j++) {
      if (recording) {
        gpu.replay(recording);
        replayed++;
      } else {
        const r = gpu.record(() => tidy(step));
        if (opts.replay && r.recording.replayable) recording = r.recording;
      }
      if (opts.submitEach) gpu.flush();
    }
  });
  return replayed;
}
