/**
 * Setting up a run from its config: where it starts (a checkpoint to resume or a fresh output_dir), the
 * base model (a seed-initialised folder is first written out as a real HF folder), tokenizer and
 * template, the data shards (prepared once, reused), the trainable side (LoRA or full), AdamW, the
 * learning-rate schedule over HF's step count, and the loaders.
 */
import type { DType, Gpu } from "../gpu/mod.ts";
import type { LlamaModel } from "../model/llama.ts";
import { loadModel } from "../model/load.ts";
import { HfTokenizer } from "../io/tokenizer.ts";
import { getTemplate } from "../data/templates.ts";
import { prepareSft, tokenizerFingerprint } from "../data/sft.ts";
import { ShardLoader, SplitReader } from "../data/shards.ts";
import { Rng } from "../tensor/mod.ts";
import { saveResolvedConfig, sftDataOptions, type TrainConfig } from "./config.ts";
import { makeSchedule, type Schedule, totalTrainingSteps } from "./schedule.ts";
import { AdamW } from "./optimizer.ts";
import { type CheckpointFs, startingCheckpoint } from "./checkpoint.ts";
import { attachLora, type Trainable, trainAll } from "./lora_setup.ts";
import { isSeedModel, materializeModel } from "./default_model.ts";

/** Everything a Trainer is built from. */
export interface RunParts {
  /** The model folder actually loaded (output_dir/base_model for a seed-initialised model). */
  baseDir: string;
  model: LlamaModel;
  tokenizer: HfTokenizer;
  trainable: Trainable;
  opt: AdamW;
  schedule: Schedule;
  loader: ShardLoader;
  validation: SplitReader | null;
  /** Dropout seeds (and the LoRA A init, drawn first). */
  rng: Rng;
  /** The checkpoint to resume, or null for a fresh start. */
  checkpoint: string | null;
}

/**
 * Builds the parts of a run; `host.info` gets the resume and seed-model messages.
 *
 * @example
 * const parts = await setupRun(gpu, cfg, { fs: denoFs }); // platform/deno_fs.ts
 */
export async function setupRun(
  gpu: Gpu,
  cfg: TrainConfig,
  host: { fs: CheckpointFs; info?: (line: string) => void },
  o: { baseDtype?: DType } = {},
): Promise<RunParts> {
  const fs = host.fs;
  // Nothing is written into output_dir before the model folder is known to exist.
  let baseDir = cfg.model_name_or_path;
  if (!(await fs.exists(baseDir))) throw new Error(`model_name_or_path: ${baseDir} does not exist`);
  const start = await startingCheckpoint(fs, cfg.output_dir, cfg);
  if (start.message) host.info?.(start.message);
  if ((await isSeedModel(fs, baseDir)) && !(await fs.exists(fs.join(baseDir, "model.safetensors")))) {
    baseDir = await materializeModel(fs, baseDir, fs.join(cfg.output_dir, "base_model"));
    host.info?.(`weights of ${cfg.model_name_or_path} drawn from its seed into ${baseDir}`);
  }
  const tokenizer = await HfTokenizer.load(fs, baseDir);
  const template = getTemplate(cfg.template);
  const data = await prepareSft(fs, {
    ...sftDataOptions(cfg),
    template,
    tokenizer,
    tokenizerFingerprint: await tokenizerFingerprint(fs, baseDir),
  });
  await saveResolvedConfig(fs, cfg);
  const full = cfg.finetuning_type === "full";
  // Frozen base: f16 where the GPU has shader-f16 (loadModel's default); full fine-tuning needs f32.
  const model = await loadModel(gpu, fs, baseDir, { dtype: full ? "f32" : o.baseDtype });
  const rng = new Rng(cfg.seed);
  const trainable = full ? trainAll(model) : attachLora(model, {
    rank: cfg.lora_rank,
    alpha: cfg.lora_alpha,
    dropout: cfg.lora_dropout,
    target: cfg.lora_target,
    rslora: cfg.use_rslora,
  }, rng);
  const opt = new AdamW([...trainable.params.values()], {
    lr: cfg.learning_rate,
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    weightDecay: cfg.weight_decay,
    maxGradNorm: cfg.max_grad_norm,
  });
  const train = await SplitReader.open(fs, data.dir, "train");
  const pad = tokenizer.specialTokens.get("<|pad|>") ?? tokenizer.eosTokenIds[0] ?? 0;
  const loader = new ShardLoader(train, {
    batchSize: cfg.per_device_train_batch_size,
    seed: cfg.seed,
    padId: pad,
  });
  const total = totalTrainingSteps({
    maxSteps: cfg.max_steps,
    epochs: cfg.num_train_epochs,
    batchesPerEpoch: Math.ceil(train.rows / cfg.per_device_train_batch_size),
    gradientAccumulationSteps: cfg.gradient_accumulation_steps,
  });
  const schedule = makeSchedule({
    type: cfg.lr_scheduler_type,
    baseLr: cfg.learning_rate,
    totalSteps: total,
    warmupSteps: cfg.warmup_steps,
    warmupRatio: cfg.warmup_ratio,
  });
  const validation = data.index.splits.validation ? await SplitReader.open(fs, data.dir, "validation") : null;
  return {
    baseDir,
    model,
    tokenizer,
    trainable,
    opt,
    schedule,
    loader,
    validation,
    rng,
    checkpoint: start.checkpoint,
  };
}
