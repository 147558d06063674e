/**
 * kernels/sampling.wgsl against src/reference/sampling.ts: greedy with ties and repetition penalty,
 * seeded draws inside the filtered set and equal to the reference's draw for the same uniform, the
 * empirical distribution of many draws, prompt marking and the position advance.
 */
import { assert, assertEquals } from "../assert.ts";
import { randomData, testGpu } from "../util.ts";
import { Rng, Tensor } from "../../src/tensor/mod.ts";
import { fill } from "../../src/ops/mod.ts";
import { advance, GREEDY, markSeen, sampleTokens, type SamplingParams } from "../../src/engine/sampling.ts";
import { argmax, drawIndex, filteredProbs, penalise, rand } from "../../src/reference/sampling.ts";

const gpu = await testGpu();

async function run(
  logits: Float32Array,
  B: number,
  V: number,
  s: SamplingParams,
  step = 0,
  seen?: number[][],
) {
  const lt = Tensor.from(gpu, logits, [B, V]);
  const tokens = Tensor.empty(gpu, [B, 1], "i32");
  const out = Tensor.empty(gpu, [B, 3], "u32");
  fill(out, 0);
  let seenT: Tensor | null = null;
  if (seen) {
    const T = Math.max(...seen.map((r) => r.length));
    const ids = seen.flatMap((r) => [...r, ...Array(T - r.length).fill(-1)]);
    seenT = Tensor.empty(gpu, [B, V], "u32");
    const idT = Tensor.from(gpu, ids, [B, T], "i32");
    markSeen(seenT, idT);
    idT.dispose();
  }
  sampleTokens(lt, { tokens, out, seen: seenT }, 1, step, s);
  const [tok, o] = await Promise.all([tokens.read(), out.read()]);
  const seenData = seenT ? await seenT.read() : null;
  for (const t of [lt, tokens, out, seenT]) t?.dispose();
  for (let b = 0; b < B; b++) assertEquals(o[b * 3 + 1], tok[b], `out[b, col] = tokens[b] (row ${b})`);
  return { tok: Array.from(tok), seen: seenData };
}

Deno.test("greedy: argmax per row (awkward V, several slices), lowest index on ties", async () => {
  const rng = new Rng(1);
  for (const V of [1, 7, 257, 1031, 9001]) {
    const B = 3;
    const x = randomData(rng, B * V, "f32", -4, 4) as Float32Array;
    if (V > 7) {
      x[V + 5] = 9;
      x[V + 200] = 9; // tie in row 1: index 5 wins
    }
    const { tok } = await run(x, B, V, GREEDY);
    for (let b = 0; b < B; b++) {
      assertEquals(tok[b], argmax(x.subarray(b * V, (b + 1) * V)), `V=${V} row ${b}`);
    }
    if (V > 7) assertEquals(tok[1], 5);
  }
});

Deno.test("greedy with repetition penalty: HF's divide/multiply rule, prompt tokens marked", async () => {
  const V = 300, B = 2;
  const x = new Float32Array(B * V).fill(-1);
  x[10] = 3; // row 0: seen, 3 / 2 = 1.5 < 2 → token 11 wins
  x[11] = 2;
  x[V + 20] = -0.5; // row 1: seen, −0.5 · 2 = −1 ties the rest → lowest index 0 wins
  const seen = [[10, 7], [20]];
  const s = { ...GREEDY, repetitionPenalty: 2 };
  const { tok, seen: marks } = await run(x, B, V, s, 0, seen);
  for (let b = 0; b < B; b++) {
    const ref = argmax(penalise(x.subarray(b * V, (b + 1) * V), new Set(seen[b]), 2));
    assertEquals(tok[b], ref, `row ${b}`);
  }
  assertEquals(tok, [11, 0]);
  // The emitted token is marked too.
  assert(marks![11] === 1 && marks![10] === 1 && marks![7] === 1 && marks![V + 20] === 1 && marks![V] === 1);
  assertEquals(Array.from(marks!).reduce((a, v) => a + v, 0), 5);
});

Deno.test("sampling: draw equals the reference's for the same uniform; inside the top-k/top-p set", async () => {
  const rng = new Rng(2);
  const V = 203, B = 5;
  const cases: SamplingParams[] = [
    { ...GREEDY, doSample: true, temperature: 0.8, seed: 7 },
    { ...GREEDY, doSample: true, temperature: 1.3, topK: 5, seed: 8 },
    { ...GREEDY, doSample: true, temperature: 1, topP: 0.6, seed: 9 },
    { ...GREEDY, doSample: true, temperature: 0.7, topK: 40, topP: 0.9, seed: 10, repetitionPenalty: 1.3 },
  ];
  for (const [n, s] of cases.entries()) {
    for (const step of [0, 1, 17]) {
      const x = randomData(rng, B * V, "f32", -3, 3) as Float32Array;
      const seen = Array.from({ length: B }, () => [rng.int(V), rng.int(V)]);
      const { tok } = await run(x, B, V, s, step, s.repetitionPenalty !== 1 ? seen : undefined);
      for (let b = 0; b < B; b++) {
        let row: number[] = Array.from(x.subarray(b * V, (b + 1) * V));
        if (s.repetitionPenalty !== 1) row = penalise(row, new Set(seen[b]), s.repetitionPenalty);
        const probs = filteredProbs(row, s.temperature, s.topK, s.topP);
        assert(probs[tok[b]] > 0, `case ${n} step ${step} row ${b}: token ${tok[b]} outside the kept set`);
        if (s.topK) assert(probs.filter((p) => p > 0).length <= s.topK, "top-k keeps at most k");
        assertEquals(tok[b], drawIndex(probs, rand(s.seed, step, b)), `case ${n} step ${step} row ${b}`);
      }
    }
  }
});

Deno.test("sampling: candidate path (x ≥ max − 16) and its fallbacks agree with the reference", async () => {
  const rng = new Rng(3);
  const V = 701, B = 4;
  const cases: SamplingParams[] = [
    { ...GREEDY, doSample: true, temperature: 0.9, topK: 5, seed: 1 }, // 30 candidates ≥ k: candidate path
    { ...GREEDY, doSample: true, temperature: 1, topK: 100, seed: 2 }, // fewer candidates than k: all V
    { ...GREEDY, doSample: true, temperature: 1, topP: 0.7, seed: 3 }, // top-p inside the candidates
    { ...GREEDY, doSample: true, temperature: 1, topP: 0.99999, seed: 4 }, // tail could matter: all V
    { ...GREEDY, doSample: true, temperature: 1.1, topK: 20, topP: 0.8, seed: 5 },
  ];
  for (const [n, s] of cases.entries()) {
    for (const step of [0, 3]) {
      const x = new Float32Array(B * V);
      for (let i = 0; i < x.length; i++) x[i] = -40 + rng.uniform(-2, 2);
      for (let b = 0; b < B; b++) for (let j = 0; j < 30; j++) x[b * V + rng.int(V)] = rng.uniform(-3, 3);
      x[2 * V + 7] = 12; // row 2: one dominant token
      const { tok } = await run(x, B, V, s, step);
      for (let b = 0; b < B; b++) {
        const probs = filteredProbs(
          Array.from(x.subarray(b * V, (b + 1) * V)),
          s.temperature,
          s.topK,
          s.topP,
        );
        assert(probs[tok[b]] > 0, `case ${n} row ${b}: token ${tok[b]} outside the kept set`);
        assertEquals(tok[b], drawIndex(probs, rand(s.seed, step, b)), `case ${n} step ${step} row ${b}`);
      }
    }
  }
});

Deno.test("sampling: 2048 draws follow the filtered distribution", async () => {
  const V = 6, B = 2048;
  const row = [2, 1.5, 1, 0.2, -1, 0.9];
  const x = new Float32Array(B * V);
  for (let b = 0; b < B; b++) x.set(row, b * V);
  const s = { ...GREEDY, doSample: true, temperature: 0.9, topP: 0.8, seed: 123 };
  const { tok } = await run(x, B, V, s, 5);
  const probs = filteredProbs(row, s.temperature, 0, s.topP);
  const counts = new Array(V).fill(0);
  for (const t of tok) counts[t]++;
  for (let i = 0; i < V; i++) {
    const sd = Math.sqrt(B * probs[i] * (1 - probs[i])) + 1e-9;
    assert(
      Math.abs(counts[i] - B * probs[i]) < 5 * sd + 1,
      `token ${i}: ${counts[i]} draws, want ≈ ${B * probs[i]}`,
    );
  }
  assertEquals(counts[4], 0, "token outside top-p never drawn");
});

Deno.test("advance: positions, rows and lengths step on the GPU", async () => {
  const positions = Tensor.from(gpu, [3, 0, 9], [3, 1], "i32");
  const rows = Tensor.from(gpu, [3, 0, 9], [3], "u32");
  const lengths = Tensor.from(gpu, [4, 1, 10], [3], "u32");
  const state = { positions, rows, lengths };
  advance(state);
  advance(state);
  assertEquals(Array.from(await positions.read()), [5, 2, 11]);
  assertEquals(Array.from(await rows.read()), [5, 2, 11]);
  assertEquals(Array.from(await lengths.read()), [6, 3, 12]);
  for (const t of [positions, rows, lengths]) t.dispose();
});
