/** scoreAll (src/eval/metrics/summary.ts): every metric with intervals, equal to the single metrics. */
import { scoreAll } from "../../src/eval/metrics/summary.ts";
import { bleu4Char, sacreBleuCorpus } from "../../src/eval/metrics/bleu.ts";
import { rouge } from "../../src/eval/metrics/rouge.ts";
import { tokenF1 } from "../../src/eval/metrics/f1.ts";
import { BUILTIN_ALIASES } from "../../src/eval/diagnosis.ts";
import { assert, assertEquals, assertThrows } from "../assert.ts";

const pairs: { prediction: string; reference: string }[] = Deno.readTextFileSync(
  new URL("./fixtures/pairs.jsonl", import.meta.url),
).split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
const P = pairs.map((p) => p.prediction), R = pairs.map((p) => p.reference);

Deno.test("scoreAll: values equal the single metrics, intervals contain them, seeded", () => {
  const s = scoreAll(P, R, { sacreTokenizer: "zh", bootstrap: { seed: 3, resamples: 300 } });
  assertEquals(s["bleu-4"].value, bleu4Char(P, R).score);
  assertEquals(s.f1.value, tokenF1(P, R).score);
  assertEquals(s.sacrebleu.value, sacreBleuCorpus(P, R, "zh").score);
  const r = rouge(P, R);
  for (const k of ["rouge-1", "rouge-2", "rouge-l"] as const) assertEquals(s[k].value, r[k]);
  for (const [name, ci] of Object.entries(s)) {
    assert(ci.low <= ci.value && ci.value <= ci.high && ci.low < ci.high, `${name}: ${JSON.stringify(ci)}`);
  }
  assertEquals(
    scoreAll(P, R, { metrics: ["sacrebleu"], bootstrap: { seed: 3, resamples: 300 } }).sacrebleu.low,
    scoreAll(P, R, { metrics: ["sacrebleu"], bootstrap: { seed: 3, resamples: 300 } }).sacrebleu.low,
  );
});

Deno.test("scoreAll: accuracy needs labels and aliases; unknown metrics are named", () => {
  const acc = scoreAll(["诊断：渐冻症。", "Diagnosis: lupus."], ["", ""], {
    metrics: ["accuracy"],
    labels: ["ALS", "Pompe disease"],
    aliases: BUILTIN_ALIASES,
  });
  assertEquals(acc.accuracy.value, 0.5);
  assertThrows(() => scoreAll(["a"], ["b"], { metrics: ["accuracy"] }), /needs labels and aliases/);
  assertThrows(() => scoreAll(["a"], ["b"], { metrics: ["meteor" as "f1"] }), /unknown metric "meteor"/);
  assertThrows(() => scoreAll([], []), /no predictions/);
});
