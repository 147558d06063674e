/**
 * The GPU side of continuous batching: S KV-cache slots decoded together, with per-slot positions.
 * A sequence enters a slot by `prefill` (alone, into a one-slot staging cache whose k/v rows are then
 * copied into its slot; its first token is sampled into the batch's token buffer and into `firsts`).
 * `decode(n)` records n steps of all S rows — decode forward, sampling on the GPU, position advance —
 * and `read()` brings the chunk's tokens and the first tokens back in one readback. Positions come from
 * the host (`setPositions`) between chunks, so slots of different ages and idle slots share a batch.
 */
import { Tensor, tidy } from "../tensor/mod.ts";
import { noGrad } from "../autograd/mod.ts";
import { embedding, type KvCache } from "../ops/mod.ts";
import type { LlamaModel } from "../model/llama.ts";
import { advance, markSeen, type SamplerBuffers, sampleTokens, type SamplingParams } from "./sampling.ts";
import { recordDecodeSteps } from "./steps.ts";

/** S slots of `rows` cache rows each over one model. */
export class SlotBatch {
  readonly model: LlamaModel;
  readonly slots: number;
  readonly chunkSize: number;
  readonly #caches: KvCache[];
  readonly #stage: KvCache[];
  readonly #state;
  readonly #buf: SamplerBuffers;
  readonly #firsts: Tensor;
  #seen: Tensor | null = null;

  constructor(model: LlamaModel, slots: number, rows: number, chunkSize: number) {
    this.model = model;
    this.slots = slots;
    this.chunkSize = chunkSize;
    this.#caches = model.createCaches(slots, rows);
    this.#stage = model.createCaches(1, rows);
    const gpu = model.gpu;
    const p = { persistent: true };
    this.#state = {
      positions: Tensor.zeros(gpu, [slots, 1], "i32", p),
      rows: Tensor.zeros(gpu, [slots], "u32", p),
      lengths: Tensor.zeros(gpu, [slots], "u32", p),
    };
    // Zeros: an idle slot feeds token 0, never an out-of-range id.
    this.#buf = {
      tokens: Tensor.zeros(gpu, [slots, 1], "i32", p),
      out: Tensor.zeros(gpu, [slots, chunkSize], "u32", p),
      seen: null,
      step: Tensor.zeros(gpu, [1], "u32", p), // the sampler's step counter
    };
    this.#firsts = Tensor.zeros(gpu, [slots], "u32", p);
  }

  /**
   * Prefills `ids` alone into slot b and samples its first token (kept on the GPU until read()).
   *
   * @example
   * batch.prefill(3, promptIds, GREEDY, rngStep);
   */
  prefill(b: number, ids: number[], s: SamplingParams, rngStep: number): void {
    const { model } = this;
    const gpu = model.gpu;
    const T = ids.length;
    noGrad(() =>
      tidy(() => {
        const hidden = model.forward(
          Tensor.from(gpu, ids, [1, T], "i32"),
          Tensor.from(gpu, ids.map((_, i) => i), [1, T], "i32"),
          { caches: this.#stage, cacheRows: Tensor.from(gpu, [0], [1], "u32") },
        );
        const last = Tensor.from(gpu, [T - 1], [1], "i32");
        const h = embedding(last, hidden.reshape([T, model.config.hiddenSize]));
        const one: SamplerBuffers = {
          tokens: Tensor.empty(gpu, [1, 1], "i32"),
          out: Tensor.empty(gpu, [1, 1], "u32"),
          seen: null,
        };
        if (s.repetitionPenalty !== 1) {
          one.seen = Tensor.empty(gpu, [1, model.config.vocabSize], "u32");
          markSeen(one.seen, Tensor.from(gpu, ids, [1, T], "i32"));
        }
        sampleTokens(model.logits(h), one, 0, rngStep, s);
        // Cache layout [B, Hkv, rows, D]: one slot is one contiguous block.
        for (const [i, c] of this.#stage.entries()) {
          const bytes = c.k.size * (c.dtype === "f16" ? 2 : 4);
          gpu.copy(c.k.buffer, 0, this.#caches[i].k.buffer, b * bytes, bytes);
          gpu.copy(c.v.buffer, 0, this.#caches[i].v.buffer, b * bytes, bytes);
        }
        gpu.copy(one.tokens.buffer, 0, this.#buf.tokens.buffer, 4 * b, 4);
        gpu.copy(one.out.buffer, 0, this.#firsts.buffer, 4 * b, 4);
        gpu.flush();
      })
    );
  }

  /** The position of each slot's next input token (idle slots: 0). */
  setPositions(pos: number[]): void {
    const gpu = this.model.gpu;
    gpu.write(this.#state.positions.buffer, new Int32Array(pos));
    gpu.write(this.#state.rows.buffer, new Uint32Array(pos));
    gpu.write(this.#state.lengths.buffer, new Uint32Array(pos.map((p) => p + 1)));
  }

  /** Marks each slot's tokens (prompt + generated) as seen for the repetition penalty. */
  markSeen(rows: number[][]): void {
    const gpu = this.model.gpu;
    this.#seen ??= Tensor.empty(gpu, [this.slots, this.model.config.vocabSize], "u32", { persistent: true });
    const T = Math.max(1, ...rows.map((r) => r.length));
    const marks = rows.flatMap((r) => [...r, ...new Array(T - r.length).fill(-1)]);
    tidy(() => markSeen(this.#seen!, Tensor.from(gpu, marks, [this.slots, T], "i32")));
  }

  /**
   * Records n ≤ chunkSize decode steps of every slot (the seen matrix is used when `s` penalises): the
   * first through the model code, the others as replays of it (recordDecodeSteps). Returns the steps
   * replayed.
   */
  decode(n: number, s: SamplingParams, rngStep: number, opts = { replay: true }): number {
    const buf = this.#buf;
    buf.seen = s.repetitionPenalty !== 1 ? this.#seen : null;
    const counter = buf.step!;
    return recordDecodeSteps(this.model.gpu, n, counter, { replay: opts.replay, submitEach: true }, () => {
      const logits = this.model.decodeStep(buf.tokens, this.#state, this.#caches);
      sampleTokens(logits, buf, 0, rngStep, s); // column and draw: + the GPU step counter
      advance(this.#state, counter);
    });
  }

  /** One readback: out[b · chunkSize + j] = step j's token of slot b; firsts[b] = slot b's prefill token. */
  async read(): Promise<{ out: Uint32Array; firsts: Uint32Array }> {
    const [out, firsts] = await this.model.gpu.readMany([
      { buffer: this.#buf.out.buffer, size: this.slots * this.chunkSize * 4 },
      { buffer: this.#firsts.buffer, size: this.slots * 4 },
    ]);
    return { out: new Uint32Array(out), firsts: new Uint32Array(firsts) };
  }

  /** GPU memory of the caches and buffers. */
  dispose(): void {
    for (const c of [...this.#caches, ...this.#stage]) c.dispose();
    const s = this.#state;
    for (
      const t of [
        s.positions,
        s.rows,
        s.lengths,
        this.#buf.tokens,
        this.#buf.out,
        this.#buf.step,
        this.#firsts,
        this.#seen,
      ]
    ) {
      t?.dispose();
    }
  }
}
