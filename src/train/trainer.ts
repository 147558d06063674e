/**
 * The SFT trainer: one step function ({@link Trainer.trainStep}) and one loop ({@link Trainer.train}).
 *
 * A step takes gradient_accumulation_steps micro-batches; its math is src/train/step.ts (losses weighted
 * by token share, so accumulating 2 × 1 rows equals one 2-row batch; AdamW with clipping); the schedule
 * gives the learning rate of each update. Nothing is read back per step: every micro-batch loss
 * and every step's gradient norm² is copied into a GPU log buffer, read back every logging_steps in one
 * readMany (DESIGN.md: each readback costs ≥ 10 ms in Deno).
 *
 * Checkpoints (src/train/checkpoint.ts, atomic) hold the trainable weights, AdamW moments, scheduler
 * step, the dropout RNG state and the loader position, so a resumed run computes the same losses as an
 * uninterrupted one.
 */
import { type Rng, Tensor } from "../tensor/mod.ts";
import type { DType, Gpu } from "../gpu/mod.ts";
import type { LlamaModel } from "../model/llama.ts";
import type { HfTokenizer } from "../io/tokenizer.ts";
import { getTemplate, stopTokenIds } from "../data/templates.ts";
import type { Batch, ShardLoader, SplitReader } from "../data/shards.ts";
import { checkpointOption, type TrainConfig } from "./config.ts";
import type { Schedule } from "./schedule.ts";
import type { AdamW } from "./optimizer.ts";
import { type RunParts, setupRun } from "./trainer_setup.ts";
import {
  type CheckpointFs,
  isBetter,
  readCheckpointState,
  saveCheckpoint,
  type TrainerState,
} from "./checkpoint.ts";
import type { Trainable } from "./lora_setup.ts";
import { type EvalResult, evaluate } from "./evaluate.ts";
import { optimizerStep } from "./step.ts";
import {
  clock,
  copyModelFiles,
  type LogEntry,
  readTrainable,
  writeLog,
  writeTrainable,
} from "./trainer_io.ts";
import { matmulFlopsPerToken, round, unsupported } from "./trainer_stats.ts";

/** What the trainer needs from its host (the CLI, a test). */
export interface TrainerHost {
  fs: CheckpointFs;
  /** Human-readable lines (resume messages, eval results). */
  info?: (line: string) => void;
  /** After every recorded step (host side; the GPU may still be behind). */
  onStep?: (step: number, total: number) => void;
  /** After every log read-back. */
  onLog?: (e: LogEntry) => void;
  /** The GPU's fp32 FMA peak in TFLOP/s: the log then shows the fraction of it reached. */
  peakTflops?: number;
  /** Renders the loss curve PNG (src/train/loss_plot.ts); skipped when absent. */
  plot?: (history: LogEntry[]) => Promise<Uint8Array>;
}

/** Per-step values read back from the GPU. */
export interface StepRecord {
  step: number;
  loss: number;
  gradNorm: number;
  lr: number;
}

/** One step's host-side bookkeeping until its losses are read back. */
interface Pending {
  step: number;
  lr: number;
  weights: number[];
  tokens: number;
  epoch: number;
}

export class Trainer {
  readonly steps: StepRecord[] = [];
  readonly history: LogEntry[] = [];
  state: TrainerState = {
    global_step: 0,
    epoch: 0,
    scheduler_step: 0,
    rng_state: {},
    data_position: { epoch: 0, index: 0 },
    best_metric: null,
    best_model_checkpoint: null,
    log_history: [],
  };
  #pending: Pending[] = [];
  #lossLog: Tensor;
  #normLog: Tensor;
  #t0 = performance.now();
  #stepsAtStart = 0;

  readonly baseDir: string;
  readonly model: LlamaModel;
  readonly tokenizer: HfTokenizer;
  readonly trainable: Trainable;
  readonly opt: AdamW;
  readonly schedule: Schedule;
  readonly loader: ShardLoader;
  readonly validation: SplitReader | null;
  readonly rng: Rng;
  #flopsPerToken: number;

  private constructor(readonly cfg: TrainConfig, readonly host: TrainerHost, p: RunParts) {
    ({
      baseDir: this.baseDir,
      model: this.model,
      tokenizer: this.tokenizer,
      trainable: this.trainable,
      opt: this.opt,
      schedule: this.schedule,
      loader: this.loader,
      validation: this.validation,
      rng: this.rng,
    } = p);
    const ga = cfg.gradient_accumulation_steps, gpu = p.model.gpu;
    this.#lossLog = Tensor.zeros(gpu, [cfg.logging_steps * ga], "f32", { persistent: true });
    this.#normLog = Tensor.zeros(gpu, [cfg.logging_steps], "f32", { persistent: true });
    this.#flopsPerToken = matmulFlopsPerToken(p.model, p.trainable);
  }

  /**
   * Loads the model, prepares the data shards, attaches adapters (src/train/trainer_setup.ts) and
   * restores a checkpoint when one is to be resumed.
   *
   * @example
   * const trainer = await Trainer.create(gpu, await loadConfig(denoFs, "config/default.yaml"), { fs });
   * await trainer.train();
   */
  static async create(
    gpu: Gpu,
    cfg: TrainConfig,
    host: TrainerHost,
    o: { baseDtype?: DType } = {},
  ): Promise<Trainer> {
    for (const w of unsupported(cfg)) host.info?.(`warning: ${w}`);
    const parts = await setupRun(gpu, cfg, host, o);
    const t = new Trainer(cfg, host, parts);
    if (parts.checkpoint) await t.#resume(parts.checkpoint);
    return t;
  }

  async #resume(dir: string): Promise<void> {
    const s = await readCheckpointState(this.host.fs, dir);
    await readTrainable(this.host.fs, dir, this.trainable, this.opt);
    this.opt.stepCount = s.scheduler_step;
    const rs = s.rng_state.dropout as [number, number | null] | undefined;
    if (rs) this.rng.setState(rs);
    this.loader.seek(s.data_position);
    this.state = s;
    this.history.push(...(s.log_history as unknown as LogEntry[]));
    this.#stepsAtStart = s.global_step;
  }

  /**
   * Records one optimizer step over `micro` (gradient_accumulation_steps batches) with the scheduled
   * learning rate and fresh dropout seeds (src/train/step.ts). Returns the number of tokens (non-padding)
   * processed. No readback.
   */
  trainStep(micro: Batch[]): number {
    const slot = this.#pending.length, ga = this.cfg.gradient_accumulation_steps;
    const seeds = micro.map(() => this.rng.int(2 ** 31));
    const lr = this.schedule.lr(this.opt.stepCount);
    const { weights, tokens } = optimizerStep(this.model, this.opt, micro, lr, seeds, {
      losses: this.#lossLog.buffer,
      lossOffset: slot * ga * 4,
      norm: this.#normLog.buffer,
      normOffset: slot * 4,
    }, { checkpoint: checkpointOption(this.cfg) });
    const last = micro[micro.length - 1];
    const pos = this.loader.position;
    this.#pending.push({
      step: ++this.state.global_step,
      lr,
      weights,
      tokens,
      epoch: pos.epoch + (last.lastInEpoch ? 1 : pos.index / this.loader.reader.rows),
    });
    this.state.epoch = this.#pending[this.#pending.length - 1].epoch;
    return this.#pending[slot].tokens;
  }

  /** Reads back the pending steps' losses and gradient norms (one readMany) and logs them. */
  async #flushLog(): Promise<void> {
    if (!this.#pending.length) return;
    const ga = this.cfg.gradient_accumulation_steps, n = this.#pending.length;
    const [lb, nb] = await this.model.gpu.readMany([
      { buffer: this.#lossLog.buffer, size: n * ga * 4 },
      { buffer: this.#normLog.buffer, size: n * 4 },
    ]);
    const losses = new Float32Array(lb), norms = new Float32Array(nb);
    let sum = 0, tokens = 0;
    this.#pending.forEach((p, k) => {
      const loss = p.weights.reduce((a, w, i) => a + w * losses[k * ga + i], 0);
      this.steps.push({ step: p.step, loss, gradNorm: Math.sqrt(norms[k]), lr: p.lr });
      sum += loss;
      tokens += p.tokens;
    });
    const last = this.#pending[n - 1];
    const elapsed = (performance.now() - this.#t0) / 1000;
    const done = last.step - this.#stepsAtStart, total = this.schedule.total;
    const entry: LogEntry = {
      current_steps: last.step,
      total_steps: total,
      loss: round(sum / n),
      grad_norm: round(this.steps[this.steps.length - 1].gradNorm),
      lr: last.lr,
      epoch: round(last.epoch, 4),
      percentage: round((100 * last.step) / total, 2),
      elapsed_time: clock(elapsed),
      remaining_time: clock(done > 0 ? (elapsed / done) * (total - last.step) : 0),
    };
    const tps = tokens / Math.max(1e-9, (performance.now() - this.#tLog) / 1000);
    entry.tokens_per_second = Math.round(tps);
    entry.model_tflops = round((tps * this.#flopsPerToken) / 1e12, 4);
    if (this.host.peakTflops) entry.peak_fraction = round(entry.model_tflops / this.host.peakTflops, 4);
    this.#tLog = performance.now();
    this.#pending = [];
    this.#record(entry);
  }
  #tLog = performance.now();

  #record(e: LogEntry): void {
    this.history.push(e);
    this.host.onLog?.(e);
  }

  /** Runs evaluation (dropout off) and updates the best metric; returns the metrics. */
  async evaluate(): Promise<EvalResult | null> {
    if (!this.validation || this.cfg.do_eval === false || this.cfg.eval_strategy === "no") return null;
    await this.#flushLog(); // so that evaluation time stays out of the next tokens/s window
    const saved = [...this.trainable.adapters.values()].map((a) => [a, a.dropout] as const);
    for (const [a] of saved) a.dropout = 0;
    try {
      const r = await evaluate(this.model, this.validation, {
        batchSize: this.cfg.per_device_eval_batch_size,
        decoder: this.tokenizer,
        eosTokenIds: stopTokenIds(getTemplate(this.cfg.template), this.tokenizer),
        diagnosis: "auto",
      });
      const step = this.state.global_step, total = this.schedule.total;
      const elapsed = (performance.now() - this.#t0) / 1000;
      this.#record({
        current_steps: step,
        total_steps: total,
        epoch: round(this.state.epoch, 4),
        percentage: round((100 * step) / total, 2),
        elapsed_time: clock(elapsed),
        remaining_time: "",
        ...Object.fromEntries(Object.entries(r.metrics).map(([k, v]) => [k, round(v)])),
      });
      const name = this.cfg.metric_for_best_model;
      const key = name ? (name.startsWith("eval_") ? name : `eval_${name}`) : null;
      if (
        key && key in r.metrics &&
        isBetter(key, r.metrics[key], this.state.best_metric, this.cfg.greater_is_better)
      ) {
        this.state.best_metric = r.metrics[key];
        this.state.best_model_checkpoint = this.host.fs.join(this.cfg.output_dir, `checkpoint-${step}`);
      }
      return r;
    } finally {
      for (const [a, p] of saved) a.dropout = p;
      this.#tLog = performance.now();
    }
  }

  /** Writes checkpoint-<global_step> atomically (weights, moments, RNG, data position, history). */
  async saveCheckpoint(): Promise<string> {
    await this.#flushLog();
    this.state.scheduler_step = this.opt.stepCount;
    this.state.rng_state = { dropout: this.rng.state() };
    this.state.data_position = this.loader.position;
    this.state.log_history = this.history as unknown as Record<string, unknown>[];
    const fs = this.host.fs;
    const path = await saveCheckpoint(fs, this.cfg.output_dir, {
      state: this.state,
      saveTotalLimit: this.cfg.save_total_limit,
      write: async (dir) => {
        await writeTrainable(fs, dir, this.trainable, this.#saveOpts(true));
        await copyModelFiles(fs, this.baseDir, dir, this.trainable.kind === "full");
      },
    });
    this.#tLog = performance.now(); // saving time stays out of tokens/s
    return path;
  }

  #saveOpts(withOpt: boolean) {
    return { baseModel: this.baseDir, model: this.model, opt: withOpt ? this.opt : undefined };
  }

  /**
   * The loop: steps until the schedule's total, logging / evaluating / saving on their step counts,
   * then the final adapter (or model), tokenizer files, logs and loss plot in output_dir.
   * `stopAfter` ends the loop after that global step without the final outputs (a simulated crash).
   */
  async train(o: { stopAfter?: number } = {}): Promise<{ steps: StepRecord[]; eval: EvalResult | null }> {
    const c = this.cfg, fs = this.host.fs, total = this.schedule.total;
    this.#t0 = this.#tLog = performance.now();
    let final: EvalResult | null = null;
    while (this.state.global_step < total) {
      const micro: Batch[] = [];
      for (let i = 0; i < c.gradient_accumulation_steps; i++) micro.push(await this.loader.next());
      this.trainStep(micro);
      const step = this.state.global_step;
      this.host.onStep?.(step, total);
      if (this.#pending.length >= c.logging_steps || step === total) await this.#flushLog();
      // The last step is always evaluated, before its checkpoint so that the best metric includes it.
      if (step % c.eval_steps === 0 || step === total) {
        const r = await this.evaluate();
        if (step === total) final = r;
      }
      if (step % c.save_steps === 0) await this.saveCheckpoint();
      if (o.stopAfter !== undefined && step >= o.stopAfter) {
        await this.#flushLog();
        await writeLog(fs, c.output_dir, this.history);
        return { steps: this.steps, eval: null };
      }
    }
    await this.#flushLog();
    const out = c.output_dir;
    const best = this.state.best_model_checkpoint;
    if (c.load_best_model_at_end && best && (await fs.exists(best))) {
      await readTrainable(fs, best, this.trainable); // HF: the best checkpoint's weights become the output
      this.host.info?.(
        `loaded the best checkpoint ${best} (${c.metric_for_best_model} ${this.state.best_metric})`,
      );
    }
    await writeTrainable(fs, out, this.trainable, this.#saveOpts(false));
    await copyModelFiles(fs, this.baseDir, out, this.trainable.kind === "full");
    await writeLog(fs, out, this.history);
    const seconds = (performance.now() - this.#t0) / 1000;
    const results = {
      epoch: this.state.epoch,
      global_step: this.state.global_step,
      train_loss: this.steps.length ? this.steps.reduce((a, s) => a + s.loss, 0) / this.steps.length : null,
      train_runtime: round(seconds, 3),
      ...(final?.metrics ?? {}),
    };
    await fs.writeFile(
      fs.join(out, "all_results.json"),
      new TextEncoder().encode(JSON.stringify(results, null, 2)),
    );
    if (this.host.plot && c.plot_loss) {
      await fs.writeFile(fs.join(out, "training_loss.png"), await this.host.plot(this.history));
    }
    return { steps: this.steps, eval: final };
  }

  /** Releases the model, adapters, optimizer state and log buffers. */
  dispose(): void {
    this.opt.dispose();
    this.model.dispose();
    this.#lossLog.dispose();
    this.#normLog.dispose();
  }
}
