/**
 * Learning-rate schedules with the exact formulas of Hugging Face transformers' `get_scheduler`
 * (optimization.py), so a run configured like a LLaMA-Factory run sees the same learning rate at
 * every optimizer step:
 *
 * - warmup (all but `constant`): `step / max(1, warmup)` while `step < warmup`;
 * - linear: `max(0, (total - step) / max(1, total - warmup))`;
 * - cosine (num_cycles 0.5): `max(0, 0.5 · (1 + cos(π · 2 · cycles · progress)))`,
 *   `progress = (step - warmup) / max(1, total - warmup)`;
 * - constant: 1; constant_with_warmup: 1 after the warmup.
 *
 * `step` is the number of optimizer steps already taken (HF's LambdaLR `last_epoch`): the first update
 * uses step 0, so with warmup the first update has learning rate 0, exactly as in transformers.
 */

/** Schedules we implement (the `lr_scheduler_type` values of HF / LLaMA-Factory). */
export type SchedulerType = "linear" | "cosine" | "constant" | "constant_with_warmup";
export const SCHEDULER_TYPES: readonly SchedulerType[] = [
  "linear",
  "cosine",
  "constant",
  "constant_with_warmup",
];

/**
 * Warmup length as HF's `TrainingArguments.get_warmup_steps`: `warmup_steps` when > 0, else
 * `ceil(total · warmup_ratio)`.
 *
 * @example
 * warmupSteps({ warmupSteps: 0, warmupRatio: 0.1 }, 95); // 10
 */
export function warmupSteps(o: { warmupSteps?: number; warmupRatio?: number }, totalSteps: number): number {
  const steps = o.warmupSteps ?? 0;
  if (steps > 0) return steps;
  return Math.ceil(totalSteps * (o.warmupRatio ?? 0));
}

/**
 * The multiplier of the base learning rate after `step` optimizer steps.
 *
 * @example
 * lrLambda("cosine", 10, { warmup: 10, total: 100 }); // 1
 */
export function lrLambda(
  type: SchedulerType,
  step: number,
  o: { warmup: number; total: number; numCycles?: number },
): number {
  const { warmup, total } = o;
  if (type === "constant") return 1;
  if (step < warmup) return step / Math.max(1, warmup);
  switch (type) {
    case "constant_with_warmup":
      return 1;
    case "linear":
      return Math.max(0, (total - step) / Math.max(1, total - warmup));
    case "cosine": {
      const cycles = o.numCycles ?? 0.5;
      const progress = (step - warmup) / Math.max(1, total - warmup);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * progress)));
    }
  }
}

/** A schedule bound to its base learning rate and lengths; `lr(step)` is the rate of update `step`. */
export interface Schedule {
  readonly type: SchedulerType;
  readonly baseLr: number;
  readonly warmup: number;
  readonly total: number;
  lr(step: number): number;
}

/**
 * @example
 * const s = makeSchedule({ type: "cosine", baseLr: 2e-4, totalSteps: 500, warmupRatio: 0.03 });
 * opt.step(s.lr(opt.stepCount));
 */
export function makeSchedule(o: {
  type: SchedulerType;
  baseLr: number;
  totalSteps: number;
  warmupSteps?: number;
  warmupRatio?: number;
}): Schedule {
  if (!(o.totalSteps > 0)) throw new Error(`schedule: total steps must be > 0, got ${o.totalSteps}`);
  const warmup = warmupSteps(o, o.totalSteps);
  return {
    type: o.type,
    baseLr: o.baseLr,
    warmup,
    total: o.totalSteps,
    lr: (step) => o.baseLr * lrLambda(o.type, step, { warmup, total: o.totalSteps }),
  };
}

/**
 * Optimizer steps of a run, as HF Trainer counts them: `max_steps` when > 0, else
 * `epochs · ceil(batchesPerEpoch / gradAccum)` (rounded up for fractional epochs).
 */
export function totalTrainingSteps(o: {
  maxSteps?: number;
  epochs: number;
  batchesPerEpoch: number;
  gradientAccumulationSteps: number;
}): number {
  if (o.maxSteps && o.maxSteps > 0) return o.maxSteps;
  const perEpoch = Math.max(1, Math.floor(o.batchesPerEpoch / o.gradientAccumulationSteps));
  return Math.ceil(o.epochs * perEpoch);
}
