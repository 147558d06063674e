/**
 * The engine's request/response types, shared by the CLI, the server and the browser worker (which
 * import them without pulling in the GPU implementation).
 */
import type { SamplingParams } from "./sampling.ts";

/** One generation call over a batch of prompts. */
export interface GenerateRequest {
  /** Token ids per sequence (each non-empty); the batch size is their number. */
  prompts: number[][];
  maxNewTokens: number;
  /** Defaults: greedy. */
  sampling?: Partial<SamplingParams>;
  /** Stop when the text contains one of these (needs a decoder). */
  stopStrings?: string[];
  /** Default: the engine's (generation_config.json / config.json eos_token_id). */
  eosTokenIds?: number[];
  /** Generate maxNewTokens even past EOS (benches, tests). */
  ignoreEos?: boolean;
  /**
   * Decode steps of the first readback (default 16). Each readback costs ≥ 10 ms in Deno whatever its
   * size, so later chunks double, up to maxChunkSize: early tokens stream soon, long generations pay
   * few readbacks.
   */
  chunkSize?: number;
  /** Largest chunk (default: 4 × chunkSize). Equal to chunkSize for a fixed chunk. */
  maxChunkSize?: number;
  /**
   * "step" (default): submit each decode step as soon as it is recorded, so the GPU works while the
   * host records the next step; "chunk": one submit per chunk. Either way one readback per chunk.
   */
  submit?: "step" | "chunk";
  /**
   * Replay the first recorded decode step of each chunk for the others (default true; Gpu.replay):
   * the host then spends three pass calls per launch instead of running the model code per step.
   * false: record every step through the model code (A/B benches, debugging).
   */
  replay?: boolean;
}

export type FinishReason = "eos" | "stop" | "length";

/** What one sequence produced. */
export interface SequenceResult {
  promptIds: number[];
  /** Generated ids; includes the EOS id that ended it (as HF's generate), not tokens after a stop. */
  tokenIds: number[];
  /** Decoded text of tokenIds without special tokens, cut before a stop string (when a decoder is set). */
  text: string;
  finishReason: FinishReason;
}

/** Streamed progress: the new tokens (and text) of one sequence after a chunk. */
export interface GenerationChunk {
  sequence: number;
  tokenIds: number[];
  text: string;
  done: boolean;
}

/** Timings of one call (milliseconds, wall clock, readbacks included). */
export interface GenerationStats {
  /** Prefill + first token sampled + its readback. */
  timeToFirstTokenMs: number;
  /** From the first token to the end. */
  decodeMs: number;
  /** Tokens generated after the first, summed over the batch (decode tokens/s = this / decodeMs). */
  decodeTokens: number;
  /** Submits with a readback (chunks). */
  chunks: number;
  /**
   * Host time spent recording and submitting decode steps. Near decodeMs, the host, not the GPU, sets
   * the pace (dispatch recording cost, DESIGN.md "Deno WebGPU facts").
   */
  recordMs: number;
  /** Host time spent waiting for readbacks (the GPU working on, or the runtime noticing, a chunk). */
  waitMs: number;
  /** Decode steps recorded by replaying a chunk's first step (GenerateRequest.replay). */
  replayedSteps: number;
}

/** The interface the CLI, server and browser worker program against. */
export interface Engine {
  generate(
    req: GenerateRequest,
    onChunk?: (c: GenerationChunk) => void | Promise<void>,
  ): Promise<{ sequences: SequenceResult[]; stats: GenerationStats }>;
  /** The same as an async iterator of chunks (the final results are in the last chunk's `done`). */
  stream(req: GenerateRequest): AsyncGenerator<GenerationChunk>;
}
