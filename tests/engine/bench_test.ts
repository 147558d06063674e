/** bench/model.ts on lavapipe-sized inputs: every figure present and sane, adapter named. */
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { testGpu } from "../util.ts";
import { modelTable, runModelBench } from "../../bench/model.ts";
import { TESTDATA } from "../model/golden.ts";

const gpu = await testGpu();
const opts = { seqLen: 16, batchSize: 2, gen: 9, chunk: 4, reps: 2, log: () => {} };

Deno.test("model bench: random tiny shape and a folder with an adapter", async () => {
  const r = await runModelBench(gpu, { ...opts, shape: "tiny" });
  for (const k of ["prefill_ms", "prefill_single_ms", "ttft_ms", "decode_ms", "decode_tok_s"] as const) {
    assert(Number.isFinite(r[k]) && r[k] > 0, `${k} = ${r[k]}`);
  }
  assert(r.peak_gpu_bytes >= r.params * (r.weights === "f16" ? 2 : 4) * 0.9, "peak covers the weights");
  assert(modelTable(r).includes("decode"), "table");
  // Three timed generations, the median reported; the host figures of that run.
  assertEquals(r.decode_tok_s_runs.length, 3);
  assertEquals(r.decode_tok_s, [...r.decode_tok_s_runs].sort((a, b) => a - b)[1], "median");
  assert(r.decode_record_ms > 0 && r.decode_wait_ms >= 0, "host recording and waiting");
  assertEquals(r.profile, null);
  const p = await runModelBench(gpu, { ...opts, shape: "tiny", profile: true });
  const names = (p.profile ?? []).map((k) => k.name).join(" ");
  assert(/gemv|matmul/.test(names) && /sampling:sample/.test(names), `profiled kernels: ${names}`);
  assert(modelTable(p).includes("decode steps"), "table lists the kernels");
  const f = await runModelBench(gpu, {
    ...opts,
    batchSize: 1,
    model: `${TESTDATA}/llama`,
    adapter: `${TESTDATA}/llama_lora`,
  });
  assertEquals(f.adapter, "llama_lora");
  await assertRejects(() => runModelBench(gpu, { ...opts, shape: "gpt5" }), /unknown/);
  await assertRejects(() => runModelBench(gpu, { ...opts, shape: "tiny", model: "x" }), /not both/);
});
