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
