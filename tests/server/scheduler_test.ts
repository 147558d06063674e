/**
 * The continuous-batching scheduler on the tiny llama: greedy answers equal Hugging Face's, alone and
 * with requests joining a running batch at different times; cancellation frees the slot; a full queue
 * refuses; timeouts; stop strings and streamed deltas add up to the final text.
 */
import { assert, assertEquals, assertThrows } from "../assert.ts";
import { testGpu } from "../util.ts";
import { denoFs } from "../../platform/deno_fs.ts";
import { HfTokenizer } from "../../src/io/tokenizer.ts";
import { LocalEngine } from "../../src/engine/engine.ts";
import { QueueFullError, Scheduler, type SchedulerEvent } from "../../src/engine/scheduler.ts";
import { type GenCase, golden, loadTestModel, TESTDATA } from "../model/golden.ts";

const gpu = await testGpu();
const N = golden.gen_tokens as number;
const cases = golden.llama.generations as GenCase[];

function run(
  s: Scheduler,
  req: Parameters<Scheduler["submit"]>[0],
): { done: Promise<SchedulerEvent & { deltas: string[] }>; cancel: () => void } {
  const deltas: string[] = [];
  let cancel = () => {};
  const done = new Promise<SchedulerEvent & { deltas: string[] }>((resolve) => {
    cancel = s.submit(req, (e) => {
      if (e.type === "delta") deltas.push(e.text);
      else resolve({ ...e, deltas });
    });
  });
  return { done, cancel };
}

type TestModel = Awaited<ReturnType<typeof loadTestModel>>;

/** Loads a test model, runs `fn` on a scheduler over it, then drains and frees both. */
async function withScheduler(
  name: string,
  dtype: "f32" | "f16",
  opts: ConstructorParameters<typeof Scheduler>[1],
  fn: (s: Scheduler, model: TestModel) => Promise<void>,
): Promise<void> {
  const model = await loadTestModel(gpu, name, dtype);
  const s = new Scheduler(model, opts);
  try {
    await fn(s, model);
  } finally {
    await s.idle();
    s.dispose();
    model.dispose();
  }
}

Deno.test("scheduler: greedy equals HF alone and when requests join a running batch", async () => {
  await withScheduler("llama", "f32", { slots: 4, chunkSize: 4 }, async (s) => {
    for (const g of cases) {
      const r = await run(s, { promptIds: g.prompt_ids, maxNewTokens: N, ignoreEos: true }).done;
      assert(r.type === "done");
      assertEquals(r.tokenIds, g.greedy_no_eos);
      assertEquals(r.finishReason, "length");
    }
    // Staggered: 2 × the cases over 4 slots, later ones join mid-generation, some wait in the queue.
    const all = [];
    for (let i = 0; i < 2 * cases.length; i++) {
      const g = cases[i % cases.length];
      all.push(run(s, { promptIds: g.prompt_ids, maxNewTokens: N - i, ignoreEos: true }).done);
      await new Promise((r) => setTimeout(r, 30));
    }
    const got = await Promise.all(all);
    got.forEach((r, i) => {
      assert(r.type === "done", JSON.stringify(r));
      assertEquals(r.tokenIds, cases[i % cases.length].greedy_no_eos.slice(0, N - i), `request ${i}`);
    });
    const st = s.stats();
    assertEquals(st.activeSlots, 0);
    // All but each chunk's first step (and a re-record when a step made a buffer) are replays.
    assert(
      st.replayedSteps >= st.decodeSteps * 0.6,
      `replayed ${st.replayedSteps} of ${st.decodeSteps} steps`,
    );
  });
});

Deno.test("scheduler: cancel frees the slot, full queue refuses, timeout, stop strings", async () => {
  const tok = await HfTokenizer.load(denoFs, `${TESTDATA}/llama`);
  const p = cases[0].prompt_ids;
  await withScheduler("llama", "f32", { slots: 1, chunkSize: 2, maxQueue: 1, decoder: tok }, async (s) => {
    const a = run(s, { promptIds: p, maxNewTokens: 200, ignoreEos: true });
    const b = run(s, { promptIds: p, maxNewTokens: 3, ignoreEos: true });
    const full0 = assertThrows(() => s.submit({ promptIds: p, maxNewTokens: 3 }, () => {}), /queue full/);
    assert(full0 instanceof QueueFullError);
    await new Promise((r) => setTimeout(r, 100));
    assertEquals(s.stats().activeSlots, 1);
    a.cancel();
    const ra = await a.done;
    assertEquals(ra.type === "error" && ra.code, "cancelled");
    const rb = await b.done; // got the freed slot
    assert(rb.type === "done");
    assertEquals(rb.tokenIds, cases[0].greedy_no_eos.slice(0, 3));
    const t = await run(s, { promptIds: p, maxNewTokens: 200, ignoreEos: true, timeoutMs: 1 }).done;
    assertEquals(t.type === "error" && t.code, "timeout");
    // A stop string: the full text's first few characters end the answer; deltas add up to the text.
    const full = tok.decode(cases[0].greedy_no_eos, { skipSpecialTokens: true });
    const stop = full.slice(6, 9);
    const r = await run(s, { promptIds: p, maxNewTokens: N, ignoreEos: true, stopStrings: [stop] }).done;
    assert(r.type === "done");
    assertEquals(r.finishReason, "stop");
    assertEquals(r.text, full.slice(0, full.indexOf(stop)));
    assertEquals(r.deltas.join(""), r.text);
    assertThrows(() => s.submit({ promptIds: p, maxNewTokens: 1000 }, () => {}), /context length/);
  });
});

Deno.test("scheduler: repetition penalty (greedy) equals the engine's, with a second request joining", async () => {
  await withScheduler("llama", "f32", { slots: 2, chunkSize: 3 }, async (s, model) => {
    const sampling = { repetitionPenalty: 1.5 };
    const want: number[][] = [];
    for (const g of cases.slice(0, 2)) {
      const r = await new LocalEngine(model).generate({
        prompts: [g.prompt_ids],
        maxNewTokens: 20,
        ignoreEos: true,
        sampling,
      });
      want.push(r.sequences[0].tokenIds);
    }
    assert(want[0].join() !== cases[0].greedy_no_eos.slice(0, 20).join(), "the penalty changes the answer");
    const first =
      run(s, { promptIds: cases[0].prompt_ids, maxNewTokens: 20, ignoreEos: true, sampling }).done;
    await new Promise((r) => setTimeout(r, 40));
    const second =
      run(s, { promptIds: cases[1].prompt_ids, maxNewTokens: 20, ignoreEos: true, sampling }).done;
    const got = await Promise.all([first, second]);
    got.forEach((r, i) => {
      assert(r.type === "done");
      assertEquals(r.tokenIds, want[i], `request ${i}`);
    });
  });
});

// Needs shader-f16 (reported as ignored without it); the f32 tests above cover the rest.
Deno.test({
  name: "scheduler: f16 storage, three families, concurrent requests equal the engine run alone",
  ignore: !gpu.info.f16,
}, async () => {
  for (const name of ["llama", "mistral", "qwen2"]) {
    await withScheduler(name, "f16", { slots: 3, chunkSize: 4 }, async (s, model) => {
      const gens = golden[name].generations as GenCase[];
      const want: number[][] = [];
      for (const g of gens) {
        const r = await new LocalEngine(model).generate({
          prompts: [g.prompt_ids],
          maxNewTokens: 24,
          ignoreEos: true,
        });
        want.push(r.sequences[0].tokenIds);
      }
      const got = await Promise.all(
        gens.map((g) => run(s, { promptIds: g.prompt_ids, maxNewTokens: 24, ignoreEos: true }).done),
      );
      got.forEach((r, i) => assertEquals(r.type === "done" && r.tokenIds, want[i], `${name} request ${i}`));
    });
  }
});
