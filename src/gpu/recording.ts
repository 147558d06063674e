/**
 * What Gpu.record keeps of each dispatch, so Gpu.replay can record it again without the code that made
 * it (see there for when that is safe).
 */
import type { Binding, Pipe } from "./spec.ts";

/** One dispatch as Gpu.record saw it. */
export interface Recorded {
  pipe: Pipe;
  buffers: Binding[] | Record<number, Binding>;
  x: number;
  y: number;
  z: number;
  /** Uniform words (null: no uniform block), their padded size and the arena slot they had. */
  words: number[] | null;
  /** The words as the arena's slot key (joined once, not per replay). */
  key: string;
  size: number;
  offset: number;
  group: GPUBindGroup;
}

/** Dispatches recorded by Gpu.record, for Gpu.replay. */
export class Recording {
  readonly dispatches: Recorded[] = [];
  /** False when anything but dispatches was recorded (copy, clear, write, read): replay refuses. */
  replayable = true;
}
