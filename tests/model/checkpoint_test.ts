/** gradient_checkpointing through the whole model: LoRA gradients equal the plain graph's, dropout on. */
import { assertClose, randomData, testGpu } from "../util.ts";
import { Rng, Tensor, tidy } from "../../src/tensor/mod.ts";
import { backward } from "../../src/autograd/mod.ts";
import { lmHeadCrossEntropy, reshape, rmsNorm } from "../../src/ops/mod.ts";
import { openModel } from "../../src/engine/open.ts";
import { attachLora } from "../../src/train/lora_setup.ts";
import { denoFs } from "../../platform/deno_fs.ts";
import { TESTDATA } from "./golden.ts";

Deno.test("LlamaModel.forward with checkpoint: same loss and LoRA gradients, layers rebuilt in backward", async () => {
  const gpu = await testGpu();
  const rng = new Rng(3);
  const m = await openModel(gpu, denoFs, `${TESTDATA}/llama`, { dtype: "f32" });
  const model = m.model;
  const t = attachLora(model, { rank: 4, alpha: 8, dropout: 0.1, target: "all", rslora: false }, rng);
  // PEFT starts B at zero, which would make every A gradient zero: give B values so both are tested.
  for (const [name, p] of t.params) {
    if (name.endsWith("lora_B.weight")) p.write(randomData(rng, p.size, "f32", -0.2, 0.2));
  }
  const [B, T, V, C] = [2, 12, model.config.vocabSize, model.config.hiddenSize];
  const ids = Array.from({ length: B * T }, () => rng.int(V));
  const labels = ids.map((_, i) => (i % T === T - 1 ? -100 : ids[i + 1]));
  const run = (useCheckpoint: boolean) =>
    tidy(async () => {
      const hidden = model.forward(
        Tensor.from(gpu, ids, [B, T], "i32"),
        Tensor.from(gpu, ids.map((_, i) => i % T), [B, T], "i32"),
        { seed: 11, checkpoint: useCheckpoint },
      );
      const normed = reshape(rmsNorm(hidden, model.norm, model.config.rmsNormEps), [B * T, C]);
      const loss = lmHeadCrossEntropy(normed, model.lmHead, Tensor.from(gpu, labels, [B * T], "i32"));
      backward(loss);
      const grads = await Promise.all([...t.params.values()].map(async (p) => [...await p.grad!.read()]));
      for (const p of t.params.values()) gpu.clear(p.grad!.buffer);
      return { loss: (await loss.read())[0], grads };
    });
  const plain = await run(false);
  const ckpt = await run(true);
  assertClose([ckpt.loss], [plain.loss], 1e-6, "loss");
  plain.grads.forEach((g, i) => assertClose(ckpt.grads[i], g, 1e-5, `grad of ${[...t.params.keys()][i]}`));
  m.dispose();
});
