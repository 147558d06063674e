/**
 * Continuous batching for serving: one model, S KV-cache slots, a FIFO queue. A running decode batch
 * always spans all S slots; between chunks (one readback each) finished or cancelled sequences free
 * their slot and queued requests join: each is prefilled alone into a one-slot staging cache, its k/v
 * rows are copied into its slot, and its first token is sampled into the batch's token buffer, so the
 * next chunk decodes it with everyone else. Host-side counters give every slot its position, so the
 * position buffers are rewritten per chunk (idle slots decode a dummy token at position 0).
 *
 * Why the batch is always S rows: matmul picks kernels by M (a GEMV for tiny M), so a batch of 3 and a
 * batch of 1 may sum in different orders. With M fixed, a sequence's arithmetic never depends on who
 * else is running: greedy answers under load equal the answers of a request served alone. The price is
 * decode work for idle slots (small next to the weight reads that dominate decode on a GPU).
 *
 * Sampling parameters are per batch (one uniform block in kernels/sampling.wgsl): a request joins only
 * a batch with the same parameters; a request with other parameters waits at the head of the queue
 * until the batch drains (FIFO, nothing starves). Sampled streams are drawn per (slot, step), so a
 * `seed` does not reproduce a sampled answer under load; greedy answers are exact.
 */
import type { LlamaModel } from "../model/llama.ts";
import { GREEDY, type SamplingParams } from "./sampling.ts";
import type { TokenDecoder } from "./stop.ts";
import type { FinishReason } from "./types.ts";
import { SlotBatch } from "./slot_batch.ts";
import { SequenceText } from "./sequence_text.ts";

/** Options of {@link Scheduler}. */
export interface SchedulerOptions {
  /** Concurrent sequences (KV-cache slots). Default 8. */
  slots?: number;
  /** Tokens per slot (prompt + generated). Default: max_position_embeddings, at most 4096. */
  contextLength?: number;
  /** Decode steps per chunk (one readback each). Default 16. */
  chunkSize?: number;
  /** Requests allowed to wait for a slot; more are refused (QueueFullError). Default 64. */
  maxQueue?: number;
  decoder?: TokenDecoder;
  /** Default EOS ids. */
  eosTokenIds?: number[];
}

/** One request to the scheduler. */
export interface ScheduledRequest {
  promptIds: number[];
  maxNewTokens: number;
  sampling?: Partial<SamplingParams>;
  stopStrings?: string[];
  eosTokenIds?: number[];
  ignoreEos?: boolean;
  /** Give up (event "error", code "timeout") when not finished this many ms after submit. */
  timeoutMs?: number;
}

/** What a request hears: text/token deltas, then exactly one "done" or "error". */
export type SchedulerEvent =
  | { type: "delta"; tokenIds: number[]; text: string }
  | { type: "done"; finishReason: FinishReason; tokenIds: number[]; text: string; promptTokens: number }
  | { type: "error"; code: "timeout" | "cancelled" | "internal"; message: string };

/** Live numbers for /metrics. */
export interface SchedulerStats {
  slots: number;
  activeSlots: number;
  queued: number;
  generatedTokens: number;
  completed: number;
  gpuBytesInUse: number;
  /** Batch decode steps recorded, and how many of them as replays of a chunk's first (SlotBatch.decode). */
  decodeSteps: number;
  replayedSteps: number;
}

/** Thrown by submit() when the queue is full (the server answers 503 + Retry-After). */
export class QueueFullError extends Error {}

interface Job {
  id: number;
  req: ScheduledRequest;
  s: SamplingParams;
  key: string;
  eos: Set<number>;
  deadline: number;
  onEvent: (e: SchedulerEvent) => void;
  text: SequenceText;
  tokens: number[];
  cancelled: boolean;
}

/** Continuous-batching scheduler over one model (one per process / worker). */
export class Scheduler {
  readonly model: LlamaModel;
  readonly slots: number;
  readonly contextLength: number;
  readonly chunkSize: number;
  readonly maxQueue: number;
  readonly #decoder?: TokenDecoder;
  readonly #eos: number[];
  readonly #batch: SlotBatch;
  /** Slots changed since the seen matrix was marked. */
  #seenStale = true;
  readonly #queue: Job[] = [];
  readonly #running: (Job | null)[];
  #nextId = 1;
  #rngStep = 0;
  #loop: Promise<void> | null = null;
  #stats = { generatedTokens: 0, completed: 0, decodeSteps: 0, replayedSteps: 0 };

  constructor(model: LlamaModel, opts: SchedulerOptions = {}) {
    this.model = model;
    this.slots = opts.slots ?? 8;
    this.contextLength = opts.contextLength ?? Math.min(model.config.maxPositionEmbeddings, 4096);
    this.chunkSize = opts.chunkSize ?? 16;
    this.maxQueue = opts.maxQueue ?? 64;
    this.#decoder = opts.decoder;
    this.#eos = opts.eosTokenIds ?? model.config.eosTokenId;
    // Slack of one chunk: a sequence that ends mid-chunk keeps decoding (discarded) to the chunk's end.
    this.#batch = new SlotBatch(model, this.slots, this.contextLength + this.chunkSize, this.chunkSize);
    this.#running = new Array(this.slots).fill(null);
  }

  /**
   * Queues a request; events arrive through `onEvent`. Returns a cancel function (frees the slot at the
   * next chunk boundary). Throws QueueFullError, or Error for a request that can never run.
   *
   * @example
   * const cancel = sched.submit({ promptIds, maxNewTokens: 64 }, (e) => e.type === "delta" && print(e.text));
   */
  submit(req: ScheduledRequest, onEvent: (e: SchedulerEvent) => void): () => void {
    const V = this.model.config.vocabSize;
    if (req.promptIds.length === 0) throw new Error("the prompt encodes to no tokens");
    if (req.promptIds.some((t) => !Number.isInteger(t) || t < 0 || t >= V)) {
      throw new Error(`prompt has token ids outside [0, ${V})`);
    }
    if (!Number.isInteger(req.maxNewTokens) || req.maxNewTokens < 1) {
      throw new Error(`max tokens must be a positive integer, got ${req.maxNewTokens}`);
    }
    if (req.promptIds.length + req.maxNewTokens > this.contextLength) {
      throw new Error(
        `prompt (${req.promptIds.length} tokens) + max tokens (${req.maxNewTokens}) exceed the context ` +
          `length ${this.contextLength}`,
      );
    }
    const stops = (req.stopStrings ?? []).filter((x) => x.length > 0);
    if (stops.length && !this.#decoder) throw new Error("stop strings need a tokenizer");
    // Free slots are taken at the next chunk boundary: requests that will get one do not count as waiting.
    const free = this.#running.filter((j) => !j).length;
    if (this.#queue.length >= this.maxQueue + free) {
      throw new QueueFullError(`queue full (${this.maxQueue} waiting for ${this.slots} slots)`);
    }
    const s: SamplingParams = { ...GREEDY, ...req.sampling };
    const greedy = !s.doSample || s.temperature <= 0;
    const key = greedy
      ? `greedy/${s.repetitionPenalty}`
      : [s.temperature, s.topK, s.topP, s.repetitionPenalty].join("/");
    const job: Job = {
      id: this.#nextId++,
      req,
      s,
      key,
      eos: new Set(req.ignoreEos ? [] : req.eosTokenIds ?? this.#eos),
      deadline: req.timeoutMs ? performance.now() + req.timeoutMs : Infinity,
      onEvent,
      text: new SequenceText(this.#decoder, stops),
      tokens: [],
      cancelled: false,
    };
    this.#queue.push(job);
    this.#loop ??= this.#run().finally(() => (this.#loop = null));
    return () => {
      if (job.cancelled) return;
      job.cancelled = true;
      const q = this.#queue.indexOf(job);
      if (q >= 0) {
        this.#queue.splice(q, 1);
        job.onEvent({ type: "error", code: "cancelled", message: "cancelled" });
      }
    };
  }

  /** Queue depth, busy slots, totals and GPU memory in use. */
  stats(): SchedulerStats {
    return {
      slots: this.slots,
      activeSlots: this.#running.filter((j) => j).length,
      queued: this.#queue.length,
      ...this.#stats,
      gpuBytesInUse: this.model.gpu.pool.stats.bytesInUse,
    };
  }

  /** Resolves when no request is queued or running. */
  async idle(): Promise<void> {
    while (this.#loop) await this.#loop;
  }

  /** Frees the caches (after idle()). */
  dispose(): void {
    this.#batch.dispose();
  }

  #finish(slot: number, e: SchedulerEvent): void {
    const job = this.#running[slot]!;
    this.#running[slot] = null;
    if (e.type === "done") this.#stats.completed++;
    job.onEvent(e);
  }

  async #run(): Promise<void> {
    try {
      while (this.#queue.length || this.#running.some((j) => j)) await this.#iteration();
    } catch (e) {
      // A GPU or kernel failure: every request in flight hears it; the next submit starts afresh.
      const message = (e as Error).message ?? String(e);
      for (let b = 0; b < this.slots; b++) {
        if (this.#running[b]) this.#finish(b, { type: "error", code: "internal", message });
      }
      for (const j of this.#queue.splice(0)) j.onEvent({ type: "error", code: "internal", message });
    }
  }

  async #iteration(): Promise<void> {
    const now = performance.now();
    for (const [b, j] of this.#running.entries()) {
      if (j?.cancelled) this.#finish(b, { type: "error", code: "cancelled", message: "cancelled" });
      else if (j && now > j.deadline) this.#finish(b, timeout(j));
    }
    for (const j of this.#queue.filter((j) => now > j.deadline)) {
      this.#queue.splice(this.#queue.indexOf(j), 1);
      j.onEvent(timeout(j));
    }
    const wasRunning = this.#running.some((j) => j);
    const key = this.#running.find((j) => j)?.key ?? this.#queue[0]?.key;
    const joined: number[] = [];
    while (this.#queue.length && this.#queue[0].key === key) {
      const b = this.#running.indexOf(null);
      if (b < 0) break;
      const job = this.#queue.shift()!;
      this.#running[b] = job;
      joined.push(b);
    }
    const active = this.#running.map((j) => j !== null);
    if (!active.some((a) => a)) return;
    const s = this.#running.find((j) => j)!.s;
    if (joined.length) this.#seenStale = true;
    const penalty = s.repetitionPenalty !== 1;
    if (penalty && !joined.length && this.#seenStale) {
      this.#seenStale = false;
      this.#batch.markSeen(this.#running.map((j) => (j ? [...j.req.promptIds, ...j.tokens] : [])));
    }
    for (const b of joined) {
      this.#batch.prefill(b, this.#running[b]!.req.promptIds, this.#running[b]!.s, this.#rngStep++);
    }
    // A slot's next input is its last token, at prompt + generated − 1 (a new slot: its first token).
    this.#batch.setPositions(
      this.#running.map((j) => (j ? j.req.promptIds.length + Math.max(j.tokens.length, 1) - 1 : 0)),
    );
    // A lone new request gets its first token at once (no decode steps): time to first token is the
    // prefill; otherwise the newcomers ride along with the running batch's next chunk. With the
    // repetition penalty a join is read back first, so the seen matrix can include the first tokens.
    const n = wasRunning && !(penalty && joined.length) ? this.chunkSize : 0;
    this.#stats.replayedSteps += this.#batch.decode(n, s, this.#rngStep);
    this.#stats.decodeSteps += n;
    this.#rngStep += n;
    const { out, firsts } = await this.#batch.read();
    for (let b = 0; b < this.slots; b++) {
      const job = this.#running[b];
      if (!job || !active[b]) continue;
      const fresh = joined.includes(b) ? [firsts[b]] : [];
      for (let j = 0; j < n; j++) fresh.push(out[b * this.chunkSize + j]);
      this.#absorb(b, job, fresh);
    }
  }

  /** Appends a chunk's tokens to a job, checks its stop conditions and emits its events. */
  #absorb(b: number, job: Job, fresh: number[]): void {
    let finish: FinishReason | null = null;
    const start = job.tokens.length;
    for (const tok of fresh) {
      job.tokens.push(tok);
      if (job.eos.has(tok)) finish = "eos";
      else if (job.tokens.length >= job.req.maxNewTokens) finish = "length";
      if (finish) break;
    }
    const cut = job.text.update(job.tokens);
    if (cut !== null) {
      job.tokens.length = cut;
      finish = "stop";
    }
    this.#stats.generatedTokens += Math.max(0, job.tokens.length - start);
    const delta = job.text.delta(finish !== null);
    const tokenIds = job.tokens.slice(Math.min(start, job.tokens.length));
    if (tokenIds.length || delta) job.onEvent({ type: "delta", tokenIds, text: delta });
    if (finish) {
      this.#finish(b, {
        type: "done",
        finishReason: finish,
        tokenIds: job.tokens,
        text: job.text.text,
        promptTokens: job.req.promptIds.length,
      });
    }
  }
}

function timeout(j: Job): SchedulerEvent {
  return { type: "error", code: "timeout", message: `request timed out after ${j.req.timeoutMs} ms` };
}
