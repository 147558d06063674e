/**
 * The Llama-family forward pass against Hugging Face transformers (tests/testdata/golden.json, made by
 * tools/make_golden.py): logits of every prompt for the tiny Llama (llama3 rope_scaling), Mistral
 * (sliding window 6, shorter than the prompts) and Qwen2 (q/k/v bias, tied embeddings), with f32
 * weights (rel L2 ≤ 1e-5; HF values carry 7 digits) and f16 weights (loose); the BF16 checkpoint through the f16 path.
 */
import { assert, assertEquals } from "../assert.ts";
import { assertClose, testGpu } from "../util.ts";
import { Tensor, tidy } from "../../src/tensor/mod.ts";
import { noGrad } from "../../src/autograd/mod.ts";
import type { LlamaModel } from "../../src/model/llama.ts";
import { golden, loadTestModel, type LogitsCase, TESTDATA } from "./golden.ts";
import { loadAdapter, mergeAdapters, removeAdapters } from "../../src/model/adapter.ts";
import { denoFs } from "../../platform/deno_fs.ts";

const gpu = await testGpu();

/** Logits [T, V] of one prompt (batch 1, from position 0). */
async function logitsOf(model: LlamaModel, ids: number[]): Promise<Float32Array> {
  const out = noGrad(() =>
    tidy(() => {
      const T = ids.length;
      const idT = Tensor.from(gpu, ids, [1, T], "i32");
      const pos = Tensor.from(gpu, ids.map((_, i) => i), [1, T], "i32");
      return model.logits(model.forward(idT, pos));
    })
  );
  const data = (await out.read()) as Float32Array;
  out.dispose();
  return data;
}

async function checkLogits(model: LlamaModel, cases: LogitsCase[], tol: number, what: string) {
  const V = model.config.vocabSize;
  for (const [n, c] of cases.entries()) {
    const got = await logitsOf(model, c.prompt_ids);
    const T = c.prompt_ids.length;
    assertClose(got.subarray((T - 1) * V, T * V), c.last, tol, `${what} prompt ${n} last row`);
    const firsts = Array.from({ length: T }, (_, t) => Array.from(got.subarray(t * V, t * V + 32))).flat();
    assertClose(firsts, c.rows_first32.flat(), tol, `${what} prompt ${n} every row, first 32 logits`);
  }
}

for (const name of ["llama", "mistral", "qwen2"]) {
  Deno.test(`${name}: f32 logits equal HF's`, async () => {
    const model = await loadTestModel(gpu, name, "f32");
    try {
      await checkLogits(model, golden[name].logits, 1e-5, `${name} f32`);
    } finally {
      model.dispose();
    }
  });
}

Deno.test({
  name: "f16 weights: logits within f16 tolerance of HF's (llama, qwen2)",
  ignore: !gpu.info.f16,
  fn: async () => {
    for (const name of ["llama", "qwen2"]) {
      const model = await loadTestModel(gpu, name, "f16");
      try {
        assert(model.embed.dtype === "f16", "matrices stored as f16");
        await checkLogits(model, golden[name].logits, 5e-3, `${name} f16`);
      } finally {
        model.dispose();
      }
    }
  },
});

Deno.test({
  name: "BF16 checkpoint through the f16 path equals HF on the bf16 weights",
  ignore: !gpu.info.f16,
  fn: async () => {
    const model = await loadTestModel(gpu, "llama_bf16", "f16");
    try {
      await checkLogits(model, golden.llama_bf16.logits, 1e-3, "llama bf16→f16");
    } finally {
      model.dispose();
    }
  },
});

Deno.test("mistral: the window matters (full attention would give other logits)", async () => {
  // Guards the sliding-window test against a window too large to change anything.
  const model = await loadTestModel(gpu, "mistral", "f32");
  try {
    const c: LogitsCase = golden.mistral.logits[2];
    (model.config as { slidingWindow: number | null }).slidingWindow = null;
    const got = await logitsOf(model, c.prompt_ids);
    const V = model.config.vocabSize, T = c.prompt_ids.length;
    let diff = 0;
    for (let i = 0; i < V; i++) diff = Math.max(diff, Math.abs(got[(T - 1) * V + i] - c.last[i]));
    assert(diff > 1e-2, `full attention matched the windowed golden (max diff ${diff})`);
  } finally {
    model.dispose();
  }
});

for (const [name, base] of [["llama_lora", "llama"], ["qwen2_rslora", "qwen2"]]) {
  Deno.test(`${name}: PEFT adapter (non-zero B) logits equal HF+PEFT's`, async () => {
    const model = await loadTestModel(gpu, base, "f32");
    try {
      const info = await loadAdapter(model, denoFs, `${TESTDATA}/${name}`);
      assert(info.modules.length > 0 && info.name === name, "adapter attached");
      await checkLogits(model, golden[name].logits, 1e-5, `${name} f32`);
      removeAdapters(model);
      await checkLogits(model, golden[base].logits, 1e-5, `${base} after removing the adapter`);
    } finally {
      model.dispose();
    }
  });
}

Deno.test("merged adapters (W + scale·B·A) give HF+PEFT's logits without the adapter matmuls", async () => {
  for (const [dtype, tol] of [["f32", 1e-5], ["f16", 5e-3]] as const) {
    if (dtype === "f16" && !gpu.info.f16) continue;
    const model = await loadTestModel(gpu, "llama", dtype);
    try {
      await loadAdapter(model, denoFs, `${TESTDATA}/llama_lora`);
      assertEquals(mergeAdapters(model), 14);
      assert([...model.linears().values()].every((l) => l.lora === null), "adapters detached");
      assert(model.params.get("model.layers.0.self_attn.q_proj.weight") === model.layers[0].q.weight);
      await checkLogits(model, golden.llama_lora.logits, tol, `llama_lora merged ${dtype}`);
    } finally {
      model.dispose();
    }
  }
});
