/**
 * The inference engine the CLI, the server and the browser worker share: prefill, then decode with the
 * loop on the GPU.
 *
 * Decode never reads back per token (DESIGN.md, "Deno WebGPU facts"): a chunk of K steps — decode
 * forward, sampling kernel writing the token the next step's embedding reads, position advance — is
 * recorded and submitted at once, and the K tokens of every sequence come back in one readback. Stop
 * conditions (EOS, stop strings, max tokens) are checked per chunk; tokens after a stop are discarded.
 * The next chunk is already on the GPU while a chunk's readback is awaited, so the GPU never waits for
 * the host's readback latency.
 *
 * Batches mix prompt lengths by right padding: with causal attention a real token never sees the pads
 * after it, each sequence's first logits are gathered at its own last prompt token, and decode then
 * runs at per-sequence positions (cache rows past a sequence's length are never attended).
 */
import { Tensor, tidy } from "../tensor/mod.ts";
import { noGrad } from "../autograd/mod.ts";
import { embedding } from "../ops/mod.ts";
import type { LlamaModel } from "../model/llama.ts";
import { recordDecodeSteps } from "./steps.ts";
import {
  advance,
  GREEDY,
  markSeen,
  type SamplerBuffers,
  sampleTokens,
  type SamplingParams,
} from "./sampling.ts";
import type { TokenDecoder } from "./stop.ts";
import { SequenceText } from "./sequence_text.ts";
import type {
  Engine,
  FinishReason,
  GenerateRequest,
  GenerationChunk,
  GenerationStats,
  SequenceResult,
} from "./types.ts";

export type { Engine, FinishReason, GenerateRequest, GenerationChunk, GenerationStats, SequenceResult };

/** Options of LocalEngine. */
export interface EngineOptions {
  /** Text decoding for stop strings, `text` and streaming (HfTokenizer fits). */
  decoder?: TokenDecoder;
  /** Default EOS ids (generation_config.json, else config.json). */
  eosTokenIds?: number[];
}

/** Engine over a model on this thread's GPU. */
export class LocalEngine implements Engine {
  readonly model: LlamaModel;
  readonly #decoder?: TokenDecoder;
  readonly #eos: number[];

  constructor(model: LlamaModel, opts: EngineOptions = {}) {
    this.model = model;
    this.#decoder = opts.decoder;
    this.#eos = opts.eosTokenIds ?? model.config.eosTokenId;
  }

  async generate(
    req: GenerateRequest,
    onChunk?: (c: GenerationChunk) => void | Promise<void>,
  ): Promise<{ sequences: SequenceResult[]; stats: GenerationStats }> {
    const { model } = this;
    const gpu = model.gpu;
    const B = req.prompts.length;
    const V = model.config.vocabSize;
    validate(req, V);
    const s: SamplingParams = { ...GREEDY, ...req.sampling };
    const K0 = Math.max(1, Math.floor(req.chunkSize ?? 16));
    const K = Math.max(K0, Math.floor(req.maxChunkSize ?? 4 * K0)); // columns of buf.out
    const lens = req.prompts.map((p) => p.length);
    const T = Math.max(...lens);
    const eos = new Set(req.ignoreEos ? [] : req.eosTokenIds ?? this.#eos);
    const stops = (req.stopStrings ?? []).filter((x) => x.length > 0);
    if (stops.length && !this.#decoder) throw new Error("generate: stop strings need a tokenizer (decoder)");
    const t0 = performance.now();
    const caches = model.createCaches(B, T + req.maxNewTokens);
    const persistent = { persistent: true };
    const state = {
      positions: Tensor.from(gpu, lens, [B, 1], "i32", persistent),
      rows: Tensor.from(gpu, lens, [B], "u32", persistent),
      lengths: Tensor.from(gpu, lens.map((l) => l + 1), [B], "u32", persistent),
    };
    const buf: SamplerBuffers = {
      tokens: Tensor.empty(gpu, [B, 1], "i32", persistent),
      out: Tensor.empty(gpu, [B, K], "u32", persistent),
      seen: s.repetitionPenalty !== 1 ? Tensor.empty(gpu, [B, V], "u32", persistent) : null,
      step: Tensor.zeros(gpu, [1], "u32", persistent), // the sampler's step counter
    };
    const counter = buf.step!;
    const rows: Row[] = req.prompts.map((p) => ({
      promptIds: p,
      tokenIds: [],
      text: new SequenceText(this.#decoder, stops),
      sentTokens: 0,
      closed: false,
    }));
    const finished: (FinishReason | null)[] = new Array(B).fill(null);
    const stats: GenerationStats = {
      timeToFirstTokenMs: 0,
      decodeMs: 0,
      decodeTokens: 0,
      chunks: 0,
      recordMs: 0,
      waitMs: 0,
      replayedSteps: 0,
    };
    try {
      // Chunk 0: prefill + the first token (alone, so the first token arrives as early as possible).
      noGrad(() =>
        tidy(() => {
          const ids = Tensor.from(gpu, req.prompts.flatMap((p) => [...p, ...Array(T - p.length).fill(0)]), [
            B,
            T,
          ], "i32");
          const pos = Tensor.from(gpu, Array.from({ length: B * T }, (_, i) => i % T), [B, T], "i32");
          const zeros = Tensor.from(gpu, new Array(B).fill(0), [B], "u32");
          if (buf.seen) {
            const marks = req.prompts.flatMap((p) => [...p, ...Array(T - p.length).fill(-1)]);
            markSeen(buf.seen, Tensor.from(gpu, marks, [B, T], "i32"));
          }
          const hidden = model.forward(ids, pos, { caches, cacheRows: zeros });
          const last = Tensor.from(gpu, lens.map((l, b) => b * T + l - 1), [B], "i32");
          const h = embedding(last, hidden.reshape([B * T, model.config.hiddenSize])); // gather [B, C]
          sampleTokens(model.logits(h), buf, 0, 0, s);
        })
      );
      // One chunk ahead: chunk c + 1 is recorded and submitted before chunk c's tokens are awaited, so
      // the GPU decodes while a readback (≥ 10 ms in Deno) is in flight instead of idling through it.
      // The readback's copy is queued before the next chunk's steps, which then reuse `buf.out`. The
      // cost: when every sequence stops early, up to one chunk of speculative steps is thrown away.
      const readOut = () => gpu.read(buf.out.buffer, B * K * 4); // encodes and submits the copy now
      let pending = { out: readOut(), n: 1 }; // chunk 0: the first token
      let submitted = 1; // tokens per sequence whose steps are on the GPU
      let step = 0; // tokens per sequence read back so far
      let chunk = K0; // steps of the next chunk: doubles up to K
      while (true) {
        let ahead = 0;
        if (submitted < req.maxNewTokens) {
          ahead = Math.min(chunk, req.maxNewTokens - submitted);
          chunk = Math.min(K, 2 * chunk);
          const r0 = performance.now();
          const first = submitted;
          const opts = { replay: req.replay ?? true, submitEach: req.submit !== "chunk" };
          stats.replayedSteps += recordDecodeSteps(gpu, ahead, counter, opts, () => {
            const logits = model.decodeStep(buf.tokens, state, caches);
            sampleTokens(logits, buf, 0, first, s); // column and draw: + the GPU step counter
            advance(state, counter);
          });
          stats.recordMs += performance.now() - r0;
          submitted += ahead;
        }
        const w0 = performance.now();
        const out = new Uint32Array(await pending.out);
        if (step > 0) stats.waitMs += performance.now() - w0;
        stats.chunks++;
        if (step === 0) stats.timeToFirstTokenMs = performance.now() - t0;
        take(out, K, pending.n, step, rows, finished, eos, req.maxNewTokens);
        step += pending.n;
        if (onChunk) await emit(rows, finished, onChunk);
        if (finished.every((f) => f) || step >= req.maxNewTokens) break;
        pending = { out: readOut(), n: ahead }; // ahead > 0: step < maxNewTokens = submitted
      }
      stats.decodeMs = performance.now() - t0 - stats.timeToFirstTokenMs;
      stats.decodeTokens = rows.reduce((a, r) => a + Math.max(0, r.tokenIds.length - 1), 0);
    } finally {
      for (const c of caches) c.dispose();
      for (const t of [state.positions, state.rows, state.lengths, buf.tokens, buf.out, buf.seen, buf.step]) {
        t?.dispose();
      }
    }
    const sequences = rows.map((r, b) => ({
      promptIds: r.promptIds,
      tokenIds: r.tokenIds,
      text: r.text.text,
      finishReason: finished[b] ?? "length",
    }));
    return { sequences, stats };
  }

  async *stream(req: GenerateRequest): AsyncGenerator<GenerationChunk> {
    const queue: GenerationChunk[] = [];
    let wake: (() => void) | null = null;
    let done = false;
    let error: unknown = null;
    const run = this.generate(req, (c) => {
      queue.push(c);
      wake?.();
    }).then(
      () => {
        done = true;
        wake?.();
      },
      (e) => {
        error = e;
        done = true;
        wake?.();
      },
    );
    while (true) {
      if (queue.length) {
        yield queue.shift()!;
        continue;
      }
      if (done) break;
      await new Promise<void>((r) => (wake = r));
      wake = null;
    }
    await run;
    if (error) throw error;
  }
}

/** Per-sequence progress inside generate(). */
interface Row {
  promptIds: number[];
  tokenIds: number[];
  /** Decoded text, stop strings, and what of it is safe to stream (shared with the scheduler). */
  text: SequenceText;
  /** Tokens already streamed. */
  sentTokens: number;
  closed: boolean;
}

/** Appends a chunk's n tokens (step … step + n − 1) to the unfinished rows and checks their stops. */
function take(
  out: Uint32Array,
  K: number,
  n: number,
  step: number,
  rows: Row[],
  finished: (FinishReason | null)[],
  eos: Set<number>,
  maxNewTokens: number,
): void {
  for (const [b, r] of rows.entries()) {
    if (finished[b]) continue;
    for (let j = 0; j < n && !finished[b]; j++) {
      const tok = out[b * K + j];
      r.tokenIds.push(tok);
      if (eos.has(tok)) finished[b] = "eos";
      else if (step + j + 1 >= maxNewTokens) finished[b] = "length";
    }
    const cut = r.text.update(r.tokenIds);
    if (cut !== null) {
      r.tokenIds.length = cut;
      finished[b] = "stop";
    }
  }
}

/** Streams each row's new tokens and stable text (the rest once it is finished). */
async function emit(
  rows: Row[],
  finished: (FinishReason | null)[],
  onChunk: (c: GenerationChunk) => void | Promise<void>,
): Promise<void> {
  for (const [b, r] of rows.entries()) {
    if (r.closed || (r.sentTokens >= r.tokenIds.length && !finished[b])) continue;
    const text = r.text.delta(!!finished[b]);
    const tokenIds = r.tokenIds.slice(r.sentTokens);
    r.sentTokens = r.tokenIds.length;
    r.closed = !!finished[b];
    await onChunk({ sequence: b, tokenIds, text, done: r.closed });
  }
}

function validate(req: GenerateRequest, V: number): void {
  if (req.prompts.length === 0) throw new Error("generate: no prompts");
  for (const [b, p] of req.prompts.entries()) {
    if (p.length === 0) throw new Error(`generate: prompt ${b} is empty`);
    const bad = p.find((t) => !Number.isInteger(t) || t < 0 || t >= V);
    if (bad !== undefined) throw new Error(`generate: prompt ${b} has token id ${bad} outside [0, ${V})`);
  }
  if (!Number.isInteger(req.maxNewTokens) || req.maxNewTokens < 1) {
    throw new Error(`generate: maxNewTokens must be a positive integer, got ${req.maxNewTokens}`);
  }
}
