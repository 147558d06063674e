/**
 * Model benchmark: prefill time, time to first token, decode tokens/s and peak GPU memory for a model
 * folder (`--model DIR [--adapter DIR]`) or a random-weight architecture (`--shape NAME`, built on the
 * GPU). With neither: output/default (the embedded default, after `deno task train`), else `tiny`. Called by `deno task bench --model … | --shape … --seq-len N --batch-size B
 * [--gen G] [--chunk K] [--json]` (bench/main.ts).
 *
 * What is timed (wall clock, Deno, readbacks included — the numbers a user sees):
 * - prefill: forward over [B, seq-len] + LM head on the last rows; `prefill_ms` is the mean of
 *   `reps` prefills recorded in one submit (the ≥ 10 ms readback amortised), `prefill_single_ms` one
 *   prefill + its readback;
 * - generation through the engine (greedy, EOS ignored): `ttft_ms` = prefill + first token sampled +
 *   read; `decode_tok_s` = tokens after the first / time after the first (per sequence × batch), the
 *   median of three generations (ttft and decode_ms from that same run).
 * A warm-up generation compiles every pipeline before anything is timed.
 */
import type { Gpu, KernelTime } from "../src/gpu/mod.ts";
import { profileTable } from "./harness.ts";
import { Rng, Tensor, tidy } from "../src/tensor/mod.ts";
import { noGrad } from "../src/autograd/mod.ts";
import { embedding } from "../src/ops/mod.ts";
import type { LlamaModel } from "../src/model/llama.ts";
import { randomModel, SHAPES } from "../src/model/random.ts";
import { openModel } from "../src/engine/open.ts";
import { type GenerationStats, LocalEngine } from "../src/engine/engine.ts";
import { denoFs } from "../platform/deno_fs.ts";

/** Options of runModelBench (flags of `deno task bench`). */
export interface ModelBenchOptions {
  model?: string;
  adapter?: string;
  /** Fold the adapter into the base weights first. */
  mergeAdapter?: boolean;
  shape?: string;
  seqLen: number;
  batchSize: number;
  gen: number;
  chunk: number;
  /** Engine submit mode (see GenerateRequest.submit). */
  submit?: "step" | "chunk";
  /** Replay each chunk's first decode step (GenerateRequest.replay; default true). */
  replay?: boolean;
  reps: number;
  dtype?: "f16" | "f32";
  /** After the timed runs, 16 decode steps with every kernel timed on its own (Gpu.profile). */
  profile?: boolean;
  /** Progress lines (stderr). */
  log: (line: string) => void;
}

/** One benchmark result (JSON field names). */
export interface ModelBenchResult {
  model: string;
  adapter: string | null;
  device: string;
  weights: string;
  params: number;
  seq_len: number;
  batch_size: number;
  gen: number;
  /** Steps of the first chunk; later chunks double up to 4× (LocalEngine). */
  chunk: number;
  /** Readbacks the timed generation took. */
  readbacks: number;
  submit: string;
  replay: boolean;
  prefill_ms: number;
  prefill_single_ms: number;
  prefill_tok_s: number;
  ttft_ms: number;
  decode_ms: number;
  /** Median of three generations; all three in decode_tok_s_runs (in run order). */
  decode_tok_s: number;
  decode_tok_s_runs: number[];
  /** Of the median run: host ms recording decode steps, and waiting for readbacks after the first. */
  decode_record_ms: number;
  decode_wait_ms: number;
  /** `--profile`: GPU ms per kernel over a prefill and PROFILED_STEPS decode steps; else null. */
  profile: KernelTime[] | null;
  peak_gpu_bytes: number;
}

/** Decode steps of a profiled generation. */
export const PROFILED_STEPS = 16;

function prefill(model: LlamaModel, ids: Tensor, pos: Tensor, last: Tensor): Tensor {
  return noGrad(() =>
    tidy(() => {
      const [B, T] = ids.shape;
      const h = model.forward(ids, pos).reshape([B * T, model.config.hiddenSize]);
      return model.logits(embedding(last, h));
    })
  );
}

/**
 * Runs the benchmark and returns its figures.
 *
 * @example
 * const r = await runModelBench(gpu, { shape: "qwen2.5-0.5b", seqLen: 1024, batchSize: 1, gen: 128, chunk: 16, reps: 5, log: console.error });
 */
/** Where `deno task train` (config/default.yaml) writes the embedded default model. */
const DEFAULT_MODEL = "output/default";

export async function runModelBench(gpu: Gpu, o: ModelBenchOptions): Promise<ModelBenchResult> {
  if (o.model && o.shape) throw new Error("give --model or --shape, not both");
  // No model flag: the embedded default (what `deno task train` writes), else the random `tiny` shape.
  if (!o.model && !o.shape && await denoFs.exists(`${DEFAULT_MODEL}/config.json`)) {
    o = { ...o, model: DEFAULT_MODEL };
    o.log(`no --model/--shape: the embedded default model ${DEFAULT_MODEL}`);
  }
  const shape = o.model ? null : (o.shape ?? "tiny");
  if (shape && !SHAPES[shape]) {
    throw new Error(`--shape ${shape}: unknown (known: ${Object.keys(SHAPES).join(", ")})`);
  }
  if (shape && o.adapter) throw new Error("--adapter needs --model (random shapes have no checkpoint)");
  gpu.pool.resetPeak();
  let model: LlamaModel, engine: LocalEngine, adapter: string | null = null;
  if (o.model) {
    const m = await openModel(gpu, denoFs, o.model, {
      adapter: o.adapter,
      mergeAdapter: o.mergeAdapter,
      dtype: o.dtype,
      onProgress: (d, n) => o.log(`loading weights ${d}/${n}`),
    });
    model = m.model;
    engine = m.engine;
    adapter = m.adapter ? `${m.adapter.name}${o.mergeAdapter ? " (merged)" : ""}` : null;
  } else {
    o.log(`building random ${shape} on the GPU`);
    model = randomModel(gpu, SHAPES[shape!], 1, o.dtype);
    engine = new LocalEngine(model);
  }
  const { seqLen: T, batchSize: B } = o;
  const rng = new Rng(7);
  const V = model.config.vocabSize;
  const prompts = Array.from({ length: B }, () => Array.from({ length: T }, () => rng.int(V)));
  try {
    o.log("warm-up (pipeline compilation)");
    await engine.generate({
      prompts,
      maxNewTokens: Math.min(o.gen, o.chunk + 1),
      ignoreEos: true,
      chunkSize: o.chunk,
    });
    const ids = Tensor.from(gpu, prompts.flat(), [B, T], "i32", { persistent: true });
    const pos = Tensor.from(gpu, Array.from({ length: B * T }, (_, i) => i % T), [B, T], "i32", {
      persistent: true,
    });
    const last = Tensor.from(gpu, Array.from({ length: B }, (_, b) => b * T + T - 1), [B], "i32", {
      persistent: true,
    });
    let single = Infinity, many = Infinity;
    try {
      for (let i = 0; i < 3; i++) {
        o.log(`prefill ${i + 1}/3`);
        let t0 = performance.now();
        let l = prefill(model, ids, pos, last);
        await gpu.read(l.buffer, 4);
        single = Math.min(single, performance.now() - t0);
        l.dispose();
        t0 = performance.now();
        for (let r = 0; r < o.reps; r++) {
          l = prefill(model, ids, pos, last);
          if (r < o.reps - 1) l.dispose();
        }
        await gpu.read(l.buffer, 4);
        many = Math.min(many, (performance.now() - t0) / o.reps);
        l.dispose();
      }
    } finally {
      for (const t of [ids, pos, last]) t.dispose();
    }
    // Three timed generations, the median reported: one run moves with the host's speed (small-model
    // decode is host-bound, bench/RESULTS.md) and with where Deno's 10 ms device poll meets each readback.
    const runs: GenerationStats[] = [];
    for (let run = 0; run < 3; run++) {
      let produced = 0;
      const { stats } = await engine.generate(
        {
          prompts,
          maxNewTokens: o.gen,
          ignoreEos: true,
          chunkSize: o.chunk,
          submit: o.submit,
          replay: o.replay,
        },
        (c) => {
          if (c.sequence === 0) {
            o.log(`decode run ${run + 1}/3: ${(produced += c.tokenIds.length)}/${o.gen} tokens`);
          }
        },
      );
      runs.push(stats);
    }
    const rate = (s: GenerationStats) => s.decodeTokens / (s.decodeMs / 1000);
    const stats = [...runs].sort((a, b) => rate(a) - rate(b))[1];
    let profile: KernelTime[] | null = null;
    if (o.profile) {
      o.log("profiled decode (a compute pass per kernel)");
      const req = { prompts, maxNewTokens: PROFILED_STEPS + 1, ignoreEos: true, chunkSize: PROFILED_STEPS };
      // Prefill and the first token are profiled too: their kernels are told apart by name.
      profile = (await gpu.profile(() => engine.generate(req))).kernels;
    }
    return {
      model: o.model ?? `shape ${shape}`,
      adapter,
      device: gpu.info.description,
      weights: model.dtype,
      params: model.parameterCount,
      seq_len: T,
      batch_size: B,
      gen: o.gen,
      chunk: o.chunk,
      readbacks: stats.chunks,
      submit: o.submit ?? "step",
      replay: o.replay ?? true,
      prefill_ms: many,
      prefill_single_ms: single,
      prefill_tok_s: (B * T) / (many / 1000),
      ttft_ms: stats.timeToFirstTokenMs,
      decode_ms: stats.decodeMs,
      decode_tok_s: rate(stats),
      decode_tok_s_runs: runs.map(rate),
      decode_record_ms: stats.recordMs,
      decode_wait_ms: stats.waitMs,
      profile,
      peak_gpu_bytes: gpu.pool.stats.peakBytesInUse,
    };
  } finally {
    model.dispose();
  }
}

/** The result as a short aligned table. */
export function modelTable(r: ModelBenchResult): string {
  const rows: [string, string][] = [
    ["model", `${r.model} (${(r.params / 1e6).toFixed(1)}M params, ${r.weights} weights)`],
    ["adapter", r.adapter ?? "none"],
    ["device", r.device],
    [
      "shape",
      `batch ${r.batch_size} × seq ${r.seq_len}, gen ${r.gen}, chunks from ${r.chunk} steps doubling (${r.readbacks} readbacks), submit per ${r.submit}${
        r.replay ? ", steps replayed" : ""
      }`,
    ],
    [
      "prefill",
      `${r.prefill_ms.toFixed(2)} ms (${Math.round(r.prefill_tok_s)} tok/s; one + readback ${
        r.prefill_single_ms.toFixed(2)
      } ms)`,
    ],
    ["time to first token", `${r.ttft_ms.toFixed(2)} ms`],
    [
      "decode",
      `${r.decode_tok_s.toFixed(1)} tok/s (${r.decode_ms.toFixed(1)} ms; median of ${
        r.decode_tok_s_runs.map((x) => x.toFixed(1)).join(", ")
      }; host recording ${r.decode_record_ms.toFixed(1)} ms, waiting ${r.decode_wait_ms.toFixed(1)} ms)`,
    ],
    ["peak GPU memory", `${(r.peak_gpu_bytes / 2 ** 20).toFixed(1)} MiB`],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  const table = rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join("\n");
  const what = `profiled prefill + ${PROFILED_STEPS} decode steps`;
  return r.profile ? `${table}\n${profileTable(what, r.profile)}` : table;
}
