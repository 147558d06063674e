/**
 * The engine against Hugging Face (tests/testdata/golden.json): greedy generations token for token
 * (32 tokens, several chunk sizes), EOS from generation_config, adapters, batches of different prompt
 * lengths equal to single runs; then seeded sampling, repetition penalty, stop strings, streaming and
 * request errors.
 */
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { testGpu } from "../util.ts";
import { denoFs } from "../../platform/deno_fs.ts";
import { loadAdapter } from "../../src/model/adapter.ts";
import { LocalEngine } from "../../src/engine/engine.ts";
import { HfTokenizer } from "../../src/io/tokenizer.ts";
import { loadGenerationConfig } from "../../src/io/config.ts";
import { type GenCase, golden, loadTestModel, TESTDATA } from "../model/golden.ts";

const gpu = await testGpu();
const N = golden.gen_tokens as number;

// Readbacks for N = 32 tokens: the first token after prefill, then chunks that double up to the cap:
// llama 8, 16, 7 → 4; mistral a fixed 5 (cap 5) → 1 + 7 = 8; qwen2 one chunk of 31 → 2.
const CHUNKS = [["llama", 8, 32, 4], ["mistral", 5, 5, 8], ["qwen2", 32, 128, 2]] as const;
for (const [name, chunk, maxChunk, readbacks] of CHUNKS) {
  Deno.test(`${name}: greedy ${N} tokens equal HF's (chunks from ${chunk} up to ${maxChunk})`, async () => {
    const model = await loadTestModel(gpu, name, "f32");
    try {
      const engine = new LocalEngine(model);
      for (const g of golden[name].generations as GenCase[]) {
        const { sequences, stats } = await engine.generate({
          prompts: [g.prompt_ids],
          maxNewTokens: N,
          ignoreEos: true,
          chunkSize: chunk,
          maxChunkSize: maxChunk,
        });
        assertEquals(sequences[0].tokenIds, g.greedy_no_eos);
        assertEquals(N, 32, "the readback counts above assume 32 tokens");
        assertEquals(stats.chunks, readbacks, "one readback per chunk");
        // Every decode step but each chunk's first is a replay of that first step (Gpu.replay); on a
        // model's first decode step lazily made buffers are cleared (not replayable), so the next records.
        const most = N - readbacks;
        assert(
          stats.replayedSteps === most || stats.replayedSteps === most - 1,
          `replayed ${stats.replayedSteps}`,
        );
      }
    } finally {
      model.dispose();
    }
  });
}

Deno.test("adapters: greedy with EOS from generation_config equals HF+PEFT generate", async () => {
  for (const [name, base] of [["llama_lora", "llama"], ["qwen2_rslora", "qwen2"]]) {
    const model = await loadTestModel(gpu, base, "f32");
    try {
      await loadAdapter(model, denoFs, `${TESTDATA}/${name}`);
      const gen = await loadGenerationConfig(denoFs, `${TESTDATA}/${base}`);
      const engine = new LocalEngine(model, { eosTokenIds: gen.eosTokenId });
      for (const g of golden[name].generations as GenCase[]) {
        const { sequences } = await engine.generate({
          prompts: [g.prompt_ids],
          maxNewTokens: N,
          chunkSize: 7,
        });
        assertEquals(sequences[0].tokenIds, g.generate, `${name}`);
        const stopped = g.generate.length < N;
        assertEquals(sequences[0].finishReason, stopped ? "eos" : "length");
      }
    } finally {
      model.dispose();
    }
  }
  assert(
    (golden.qwen2_rslora.generations as GenCase[]).some((g) => g.generate.length < N),
    "a golden hits EOS",
  );
});

Deno.test("batch of different prompt lengths equals single runs and HF (llama, mistral)", async () => {
  for (const name of ["llama", "mistral"]) {
    const model = await loadTestModel(gpu, name, "f32");
    try {
      const engine = new LocalEngine(model);
      const gens = golden[name].generations as GenCase[];
      const prompts = [gens[2].prompt_ids, gens[0].prompt_ids, gens[1].prompt_ids];
      const { sequences } = await engine.generate({
        prompts,
        maxNewTokens: N,
        ignoreEos: true,
        chunkSize: 6,
      });
      assertEquals(sequences.map((s) => s.tokenIds), [gens[2], gens[0], gens[1]].map((g) => g.greedy_no_eos));
      assertEquals(sequences.map((s) => s.promptIds), prompts);
      const once = await engine.generate({
        prompts,
        maxNewTokens: 9,
        ignoreEos: true,
        chunkSize: 4,
        submit: "chunk",
      });
      assertEquals(
        once.sequences.map((s) => s.tokenIds),
        sequences.map((s) => s.tokenIds.slice(0, 9)),
        "submit per chunk",
      );
    } finally {
      model.dispose();
    }
  }
});

Deno.test("sampling: seeded and reproducible, seeds differ; repetition penalty breaks repeats", async () => {
  const model = await loadTestModel(gpu, "qwen2", "f32");
  try {
    const engine = new LocalEngine(model);
    const prompts = [golden.qwen2.generations[0].prompt_ids, golden.qwen2.generations[1].prompt_ids];
    const run = async (seed: number, replay = true) =>
      (await engine.generate({
        prompts,
        maxNewTokens: 20,
        ignoreEos: true,
        chunkSize: 4,
        sampling: { doSample: true, temperature: 1.5, topK: 50, topP: 0.95, seed },
        replay,
      })).sequences.map((s) => s.tokenIds);
    const a = await run(1), b = await run(1), c = await run(2);
    assertEquals(a, b, "same seed, same tokens");
    // Replayed steps draw exactly what steps recorded through the model code draw.
    assertEquals(await run(1, false), a, "replay changes no draw");
    assert(JSON.stringify(a) !== JSON.stringify(c), "another seed gives other tokens");
    assert(a.flat().every((t) => t >= 0 && t < model.config.vocabSize), "ids in range");
    // The golden greedy run of this prompt repeats one token; a penalty of 3 forbids immediate repeats.
    const greedy = golden.qwen2.generations[0].greedy_no_eos as number[];
    assert(greedy[0] === greedy[1], "golden repeats");
    const { sequences, stats } = await engine.generate({
      prompts: [prompts[0]],
      maxNewTokens: 12,
      ignoreEos: true,
      sampling: { repetitionPenalty: 3 },
    });
    assert(stats.replayedSteps > 0, "penalised steps replay too");
    assertEquals(
      new Set(sequences[0].tokenIds).size,
      12,
      `penalised greedy repeats: ${sequences[0].tokenIds}`,
    );
  } finally {
    model.dispose();
  }
});

Deno.test("stop strings cut tokens and text; streaming chunks add up to the result", async () => {
  const model = await loadTestModel(gpu, "llama", "f32");
  const tok = await HfTokenizer.load(denoFs, `${TESTDATA}/llama`);
  try {
    const engine = new LocalEngine(model, { decoder: tok });
    const g = golden.llama.generations[2] as GenCase;
    const full = tok.decode(g.greedy_no_eos, { skipSpecialTokens: true });
    // A stop string that starts in the text of token 10 and ends two characters later.
    const start = tok.decode(g.greedy_no_eos.slice(0, 10), { skipSpecialTokens: true }).length;
    const stop = full.slice(start, start + 3);
    assert(stop.length === 3 && full.indexOf(stop) === start, `stop "${stop}" is unique enough`);
    const chunks: { tokenIds: number[]; text: string; done: boolean }[] = [];
    const { sequences } = await engine.generate(
      { prompts: [g.prompt_ids], maxNewTokens: N, ignoreEos: true, stopStrings: [stop], chunkSize: 4 },
      (c) => void chunks.push(c),
    );
    const s = sequences[0];
    assertEquals(s.finishReason, "stop");
    assertEquals(s.text, full.slice(0, start));
    assert(s.tokenIds.length > 10 && s.tokenIds.length <= 13, `kept ${s.tokenIds.length} tokens`);
    assertEquals(s.tokenIds, g.greedy_no_eos.slice(0, s.tokenIds.length));
    assertEquals(chunks.map((c) => c.text).join(""), s.text, "streamed text never shows the stop string");
    assertEquals(chunks.flatMap((c) => c.tokenIds), s.tokenIds);
    assert(chunks.length > 2 && chunks.at(-1)!.done && chunks.slice(0, -1).every((c) => !c.done));
    // The async iterator form yields the same chunks.
    const streamed: string[] = [];
    for await (const c of engine.stream({ prompts: [g.prompt_ids], maxNewTokens: 6, ignoreEos: true })) {
      streamed.push(c.text);
    }
    assertEquals(streamed.join(""), tok.decode(g.greedy_no_eos.slice(0, 6), { skipSpecialTokens: true }));
  } finally {
    model.dispose();
  }
});

Deno.test("bad requests fail with one clear message", async () => {
  const model = await loadTestModel(gpu, "qwen2", "f32");
  try {
    const engine = new LocalEngine(model);
    await assertRejects(() => engine.generate({ prompts: [[]], maxNewTokens: 4 }), /prompt 0 is empty/);
    await assertRejects(() => engine.generate({ prompts: [[1, 99999]], maxNewTokens: 4 }), /token id 99999/);
    await assertRejects(() => engine.generate({ prompts: [[1]], maxNewTokens: 0 }), /maxNewTokens/);
    await assertRejects(
      () => engine.generate({ prompts: [[1]], maxNewTokens: 2, stopStrings: ["x"] }),
      /tokenizer/,
    );
  } finally {
    model.dispose();
  }
});
