/** Bootstrap confidence intervals (src/eval/metrics/bootstrap.ts) on data with a known answer. */
import {
  bootstrapMean,
  bootstrapStatistic,
  mulberry32,
  quantileSorted,
} from "../../src/eval/metrics/bootstrap.ts";
import { assert, assertEquals, assertThrows } from "../assert.ts";

Deno.test("bootstrap: Bernoulli(0.7), n = 400 gives the normal-theory interval ±1.96·sqrt(p(1-p)/n)", () => {
  const rand = mulberry32(123);
  const values = Array.from({ length: 400 }, () => (rand() < 0.7 ? 1 : 0));
  const mean = values.reduce((a: number, b) => a + b, 0) / values.length;
  const ci = bootstrapMean(values, { seed: 1, resamples: 2000 });
  assertEquals(ci.value, mean);
  const half = 1.96 * Math.sqrt((mean * (1 - mean)) / values.length); // ≈ 0.045
  assert(Math.abs(ci.low - (mean - half)) < 0.01, `low ${ci.low} vs ${mean - half}`);
  assert(Math.abs(ci.high - (mean + half)) < 0.01, `high ${ci.high} vs ${mean + half}`);
});

Deno.test("bootstrap: 95% intervals cover the true mean about 95% of the time", () => {
  // 300 data sets of 60 uniform(0,1) values (true mean 0.5); percentile-bootstrap coverage is a
  // little under nominal at this n, so accept 0.88–0.99 (a broken interval lands far outside).
  const rand = mulberry32(99);
  let covered = 0;
  const sets = 300;
  for (let s = 0; s < sets; s++) {
    const values = Array.from({ length: 60 }, () => rand());
    const ci = bootstrapMean(values, { seed: s, resamples: 400 });
    if (ci.low <= 0.5 && 0.5 <= ci.high) covered++;
  }
  const rate = covered / sets;
  assert(rate >= 0.88 && rate <= 0.99, `coverage ${rate}`);
});

Deno.test("bootstrap: seeded and deterministic; level and statistic respected", () => {
  const values = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5];
  assertEquals(bootstrapMean(values, { seed: 5 }), bootstrapMean(values, { seed: 5 }));
  const a = bootstrapMean(values, { seed: 5 });
  // Continuous data, so that two seeds cannot land on the same order statistics by chance.
  const rand = mulberry32(3);
  const cont = Array.from({ length: 30 }, () => rand());
  const c5 = bootstrapMean(cont, { seed: 5 }), c6 = bootstrapMean(cont, { seed: 6 });
  assert(c5.low !== c6.low && c5.high !== c6.high, "another seed must give another interval");
  const narrow = bootstrapMean(values, { seed: 5, level: 0.5 });
  assert(narrow.low > a.low && narrow.high < a.high, "a 50% interval is inside the 95% one");
  // A corpus-level statistic: the max over the resampled indices can never exceed the data max.
  const mx = bootstrapStatistic(values.length, (idx) => Math.max(...idx.map((i) => values[i])), { seed: 2 });
  assertEquals(mx.value, 9);
  assert(mx.high <= 9 && mx.low >= 1);
  const constant = bootstrapMean([0.25, 0.25, 0.25]);
  assertEquals([constant.low, constant.high], [0.25, 0.25]);
  assertThrows(() => bootstrapMean([]), /no samples/);
  assertThrows(() => bootstrapMean([1], { level: 1 }), /level/);
});

Deno.test("bootstrap: quantiles interpolate like numpy", () => {
  assertEquals(quantileSorted([1, 2, 3, 4], 0.5), 2.5);
  assertEquals(quantileSorted([10, 20, 30, 40, 50], 0.025), 11);
  assertEquals(quantileSorted([7], 0.975), 7);
});
