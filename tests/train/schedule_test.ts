import { assert, assertEquals, assertThrows } from "../assert.ts";
import {
  lrLambda,
  makeSchedule,
  type SchedulerType,
  totalTrainingSteps,
  warmupSteps,
} from "../../src/train/schedule.ts";

interface Golden {
  transformers: string;
  schedules: {
    type: SchedulerType;
    total: number;
    warmup_steps: number;
    warmup_ratio: number;
    warmup: number;
    base_lr: number;
    lr: number[];
  }[];
}
const golden: Golden = JSON.parse(
  await Deno.readTextFile(new URL("fixtures/hf_golden.json", import.meta.url)),
);

Deno.test("schedule: every optimizer step's lr equals transformers' get_scheduler (golden from HF)", () => {
  assert(golden.schedules.length >= 12);
  for (const g of golden.schedules) {
    const what = `${g.type} total=${g.total} warmup_steps=${g.warmup_steps} ratio=${g.warmup_ratio}`;
    assertEquals(
      warmupSteps({ warmupSteps: g.warmup_steps, warmupRatio: g.warmup_ratio }, g.total),
      g.warmup,
      what,
    );
    const s = makeSchedule({
      type: g.type,
      baseLr: g.base_lr,
      totalSteps: g.total,
      warmupSteps: g.warmup_steps,
      warmupRatio: g.warmup_ratio,
    });
    g.lr.forEach((want, step) => {
      const got = s.lr(step);
      assert(Math.abs(got - want) <= 1e-12 * g.base_lr, `${what} step ${step}: got ${got}, HF ${want}`);
    });
  }
});

Deno.test("schedule: hand-checked values and shapes", () => {
  const o = { warmup: 10, total: 110 };
  assertEquals(lrLambda("linear", 0, o), 0, "warmup starts at 0 (first update has lr 0, as in HF)");
  assertEquals(lrLambda("linear", 5, o), 0.5);
  assertEquals(lrLambda("linear", 10, o), 1);
  assertEquals(lrLambda("linear", 60, o), 0.5);
  assertEquals(lrLambda("linear", 200, o), 0, "clamped at 0 past the end");
  assertEquals(lrLambda("cosine", 60, o), 0.5);
  assert(Math.abs(lrLambda("cosine", 35, o) - (0.5 + 0.5 * Math.cos(Math.PI / 4))) < 1e-15);
  assertEquals(lrLambda("constant", 0, o), 1);
  assertEquals(lrLambda("constant_with_warmup", 3, o), 0.3);
  assertEquals(lrLambda("constant_with_warmup", 50, o), 1);
  assertEquals(warmupSteps({ warmupRatio: 0.1 }, 95), 10, "ceil");
  assertEquals(warmupSteps({ warmupSteps: 7, warmupRatio: 0.5 }, 95), 7, "warmup_steps wins");
  assertThrows(() => makeSchedule({ type: "linear", baseLr: 1, totalSteps: 0 }), /total steps must be > 0/);
});

Deno.test("schedule: total steps as HF Trainer counts them", () => {
  // 100 batches, accumulation 4 → 25 updates per epoch; 3 epochs → 75.
  assertEquals(totalTrainingSteps({ epochs: 3, batchesPerEpoch: 100, gradientAccumulationSteps: 4 }), 75);
  // 10 batches, accumulation 4 → floor → 2 per epoch; 2.5 epochs → ceil(5) = 5.
  assertEquals(totalTrainingSteps({ epochs: 2.5, batchesPerEpoch: 10, gradientAccumulationSteps: 4 }), 5);
  assertEquals(
    totalTrainingSteps({ epochs: 1, batchesPerEpoch: 2, gradientAccumulationSteps: 8 }),
    1,
    "at least 1 per epoch",
  );
  assertEquals(
    totalTrainingSteps({ maxSteps: 17, epochs: 3, batchesPerEpoch: 100, gradientAccumulationSteps: 1 }),
    17,
  );
});
