/**
 * The LoRA hook as the trainer will use it: trainable adapters on the golden Llama's q/v projections,
 * loss through model.forward + LM head + cross-entropy, backward() — adapter gradients match float64
 * finite differences of the same GPU loss, and frozen base weights get no gradient.
 */
import { assert } from "../assert.ts";
import { testGpu } from "../util.ts";
import { Rng, Tensor, tidy } from "../../src/tensor/mod.ts";
import { backward, noGrad } from "../../src/autograd/mod.ts";
import { crossEntropy, initLora, reshape } from "../../src/ops/mod.ts";
import { golden, loadTestModel } from "./golden.ts";
import type { LlamaModel } from "../../src/model/llama.ts";

const gpu = await testGpu();

Deno.test("trainable LoRA through the model: gradients equal finite differences, base frozen", async () => {
  const model = await loadTestModel(gpu, "llama", "f32");
  try {
    const rng = new Rng(9);
    const lin = model.linears();
    const targets = ["model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.v_proj"];
    for (const path of targets) {
      const l = lin.get(path)!;
      const { A, B } = initLora(gpu, l.inFeatures, l.outFeatures, 4, rng);
      B.write(Array.from({ length: B.size }, () => rng.uniform(-0.2, 0.2)));
      l.setLora({ A, B, scale: 2 });
    }
    const ids = golden.llama.logits[1].prompt_ids as number[];
    const T = ids.length - 1, V = model.config.vocabSize;
    const idT = Tensor.from(gpu, ids.slice(0, T), [1, T], "i32");
    const pos = Tensor.from(gpu, ids.slice(0, T).map((_, i) => i), [1, T], "i32");
    const labels = Tensor.from(gpu, ids.slice(1), [T], "i32");
    const lossOf = (m: LlamaModel) => crossEntropy(reshape(m.logits(m.forward(idT, pos)), [T, V]), labels);
    tidy(() => backward(lossOf(model)));
    for (const [path, l] of lin) {
      assert(l.weight.grad === null, `${path}: frozen weight got a gradient`);
      if (targets.includes(path)) assert(l.lora!.A.grad && l.lora!.B.grad, `${path}: adapter gradients`);
    }
    const loss = async () => {
      const t = noGrad(() => lossOf(model));
      const v = (await t.read())[0];
      t.dispose();
      return v;
    };
    for (const path of targets) {
      for (const which of ["A", "B"] as const) {
        const p = lin.get(path)!.lora![which];
        const data = Float32Array.from(await p.read());
        const grad = await p.grad!.read();
        for (const k of [0, 5, data.length - 1]) {
          const eps = 1e-2, orig = data[k];
          data[k] = orig + eps;
          p.write(data);
          const up = await loss();
          data[k] = orig - eps;
          p.write(data);
          const down = await loss();
          data[k] = orig;
          p.write(data);
          const fd = (up - down) / (2 * eps);
          assert(
            Math.abs(fd - grad[k]) <= 0.03 * Math.abs(fd) + 2e-4,
            `${path} ${which}[${k}]: ${grad[k]} vs fd ${fd}`,
          );
        }
      }
    }
    for (const t of [idT, pos, labels]) t.dispose();
  } finally {
    model.dispose();
  }
});
