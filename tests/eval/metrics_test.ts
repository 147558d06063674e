/**
 * Our metrics against values computed by the real Python libraries (tools/metric_reference.py:
 * sacrebleu, torchmetrics, NLTK, jieba, rouge-chinese) on tests/eval/fixtures/pairs.jsonl.
 * Every reference section must be present: a missing one fails instead of silently passing.
 */
import {
  bleu4Char,
  bleu4CharSample,
  nltkSentenceBleu,
  sacreBleuCorpus,
  sacreBleuSentence,
} from "../../src/eval/metrics/bleu.ts";
import { tokenize13a, tokenizeZh } from "../../src/eval/metrics/sacrebleu_tokenizers.ts";
import { rouge, rougeSample } from "../../src/eval/metrics/rouge.ts";
import { jiebaCut } from "../../src/eval/metrics/segment.ts";
import { f1Tokens, tokenF1, tokenF1Sample } from "../../src/eval/metrics/f1.ts";
import { fsum, pyRound } from "../../src/eval/metrics/text.ts";
import { assert, assertEquals } from "../assert.ts";

const TOL = 1e-6;
const dir = new URL("./fixtures/", import.meta.url);
const pairs: { prediction: string; reference: string }[] = Deno.readTextFileSync(new URL("pairs.jsonl", dir))
  .split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
const ref = JSON.parse(Deno.readTextFileSync(new URL("reference_values.json", dir)));
const P = pairs.map((p) => p.prediction), R = pairs.map((p) => p.reference);

function section(name: string) {
  assert(
    ref[name] !== undefined,
    `reference_values.json lacks "${name}" (missing: ${JSON.stringify(ref.missing)})`,
  );
  return ref[name];
}

/** Largest absolute difference; throws naming the worst sample when over the tolerance. */
function assertAllClose(got: number[], want: number[], what: string, tol = TOL): number {
  assertEquals(got.length, want.length, `${what}: length`);
  let worst = 0, at = -1;
  got.forEach((g, i) => {
    const d = Math.abs(g - want[i]);
    if (!(d <= worst)) worst = d, at = i;
  });
  assert(worst <= tol, `${what}: sample ${at} differs by ${worst} (ours ${got[at]}, reference ${want[at]})`);
  return worst;
}

Deno.test("fixtures: at least 50 pairs with zh, en and mixed text", () => {
  assert(pairs.length >= 50, `only ${pairs.length} pairs`);
  assertEquals(ref.pairs, pairs.length, "reference was computed on another pairs file");
  assert(P.some((p) => p === ""), "an empty prediction is part of the fixtures");
  assert(pairs.some((p) => p.prediction === p.reference && p.prediction !== ""), "an identical pair too");
});

Deno.test("BLEU-4 (LLaMA-Factory: NLTK method3 on characters) matches NLTK per sample and in mean", () => {
  assertAllClose(
    P.map((p, i) => nltkSentenceBleu([...R[i]], [...p])),
    section("nltk_char_bleu"),
    "nltk char bleu",
  );
  const lf = section("llamafactory");
  const ours = bleu4Char(P, R);
  assertAllClose(ours.perSample, lf.per_sample["bleu-4"], "bleu-4 rounded per sample", 0);
  assertAllClose([ours.score], [lf.mean["bleu-4"]], "bleu-4 mean");
});

Deno.test("ROUGE-1/2/L (LLaMA-Factory: jieba + rouge-chinese) match per sample and in mean", () => {
  const lf = section("llamafactory");
  const ours = rouge(P, R);
  for (const k of ["rouge-1", "rouge-2", "rouge-l"] as const) {
    assertAllClose(ours.perSample.map((s) => s[k]), lf.per_sample[k], `${k} rounded per sample`, 0);
    assertAllClose([ours[k]], [lf.mean[k]], `${k} mean`);
  }
});

Deno.test("jieba segmentation equals Python jieba on the fixtures and 400 generated mixed strings", () => {
  const j = section("jieba");
  P.forEach((p, i) => assertEquals(jiebaCut(p), j.pred[i], `prediction ${i}`));
  R.forEach((r, i) => assertEquals(jiebaCut(r), j.ref[i], `reference ${i}`));
  const fuzz = section("jieba_fuzz");
  assert(fuzz.texts.length >= 400);
  fuzz.texts.forEach((t: string, i: number) =>
    assertEquals(jiebaCut(t), fuzz.tokens[i], `generated ${JSON.stringify(t)}`)
  );
});

Deno.test("sacreBLEU corpus and sentence BLEU (13a and zh) match sacrebleu; tokens identical", () => {
  const sb = section("sacrebleu");
  for (const t of ["13a", "zh"] as const) {
    const tok = t === "zh" ? tokenizeZh : tokenize13a;
    P.forEach((p, i) =>
      assertEquals(tok(p.trimEnd()), sb[t].tokens_pred[i], `${t} tokens of prediction ${i}`)
    );
    R.forEach((r, i) => assertEquals(tok(r.trimEnd()), sb[t].tokens_ref[i], `${t} tokens of reference ${i}`));
    const c = sacreBleuCorpus(P, R, t);
    assertEquals(c.correct, sb[t].corpus.counts, `${t} counts`);
    assertEquals(c.total, sb[t].corpus.totals, `${t} totals`);
    assertEquals([c.sysLen, c.refLen], [sb[t].corpus.sys_len, sb[t].corpus.ref_len], `${t} lengths`);
    assertAllClose([c.score, c.bp, ...c.precisions], [
      sb[t].corpus.score,
      sb[t].corpus.bp,
      ...sb[t].corpus.precisions,
    ], `${t} corpus`);
    assertAllClose(P.map((p, i) => sacreBleuSentence(p, R[i], t)), sb[t].sentence, `${t} sentence BLEU`);
  }
});

Deno.test("corpus BLEU also agrees with torchmetrics' SacreBLEUScore", () => {
  const tm = section("torchmetrics");
  // torchmetrics computes in float32 tensors: agreement to 1e-4 on the 0–100 scale is all it can give.
  assertAllClose([sacreBleuCorpus(P, R, "13a").score], [tm.sacrebleu_13a], "torchmetrics 13a", 1e-4);
  assertAllClose([sacreBleuCorpus(P, R, "zh").score], [tm.sacrebleu_zh], "torchmetrics zh", 1e-4);
});

Deno.test("token F1 matches the independent Python implementation", () => {
  const f = section("token_f1");
  const ours = tokenF1(P, R);
  assertAllClose(ours.perSample, f.per_sample, "token F1 per sample", 1e-12);
  assertAllClose([ours.score], [f.mean], "token F1 mean", 1e-12);
});

Deno.test("edge cases: empty prediction, identical strings, whitespace only", () => {
  assertEquals(bleu4CharSample("", "诊断：戈谢病。"), 0);
  assertEquals(bleu4CharSample("诊断：庞贝病。", "诊断：庞贝病。"), 100);
  assertEquals(rougeSample("", "诊断：戈谢病。"), { "rouge-1": 0, "rouge-2": 0, "rouge-l": 0 });
  assertEquals(rougeSample("   ", "ALS"), { "rouge-1": 0, "rouge-2": 0, "rouge-l": 0 });
  // rouge-chinese's F has +1e-8 in the denominator, so identical texts score 99.9999999…, rounded to 100.
  assertEquals(rougeSample("Myasthenia gravis", "Myasthenia gravis"), {
    "rouge-1": 100,
    "rouge-2": 100,
    "rouge-l": 100,
  });
  assertEquals(tokenF1Sample("", ""), 1);
  assertEquals(tokenF1Sample("", "ALS"), 0);
  assertEquals(tokenF1Sample("。。。", "..."), 1, "punctuation only: both sides have no tokens");
  assertEquals(tokenF1Sample("渐冻症 ALS", "ALS 渐冻症"), 1);
  // exp(4·log(100) / 4) is 100.00000000000004 in sacrebleu too.
  assertAllClose(
    [sacreBleuCorpus(["the cat sat on the mat"], ["the cat sat on the mat"]).score],
    [100],
    "identical",
    1e-9,
  );
  assertEquals(sacreBleuCorpus([""], ["the cat"]).score, 0);
  assertEquals(sacreBleuCorpus([], []).score, 0);
  assertEquals(bleu4Char([], []).score, 0);
});

Deno.test("tokenisation and Python-compatible helpers", () => {
  assertEquals(f1Tokens("诊断：ＡＬＳ（渐冻症），COVID-19 3.5mg"), [
    "诊",
    "断",
    "als",
    "渐",
    "冻",
    "症",
    "covid",
    "19",
    "3",
    "5mg",
  ]);
  assertEquals(
    tokenize13a("Hello, world. It's 3.5 mg/kg (max 20) & 4-6h."),
    "Hello , world . It's 3.5 mg / kg ( max 20 ) & 4 - 6h .",
  );
  // sacreBLEU's zh ranges include U+2001..U+2A6D through a quirk of its source: ℃ and “ are split.
  assertEquals(tokenizeZh("体温39.5℃，“好”"), "体 温 39.5 ℃ ， “ 好 ”");
  assertEquals(pyRound(0.03125, 4), 0.0312, "a true tie rounds to even");
  assertEquals(pyRound(0.03135, 4), 0.0314, "0.03135 is just above the tie in binary (Python: 0.0314)");
  assertEquals(pyRound(0.00015, 4), 0.0001, "0.00015 is just below the tie in binary (Python: 0.0001)");
  assertEquals(pyRound(2.675, 2), 2.67);
  assertEquals(pyRound(99.99999999, 4), 100);
  assertEquals(fsum([1e100, 1, -1e100, 1e-100]), 1);
  // Python's math.fsum value (the exact sum of the four doubles); naive summation gives 1.1e-16.
  assertEquals(fsum([0.1, 0.2, 0.3, -0.6]), 2.7755575615628914e-17);
});
