/**
 * Early release of activations in LlamaModel.forward (tensors no backward rule reads are freed while
 * the forward goes on; each layer's saved tensors once backward is below it): the loss and every
 * trainable gradient equal those of the path that keeps everything (keepActivations), bit for bit,
 * with every free pool buffer filled with NaN between forward and backward — so no rule reads
 * memory that was handed back. Also with some layers checkpointed, and for full fine-tuning (where
 * frozen-weight releases must not happen).
 */
import { assert, assertEquals } from "../assert.ts";
import { assertClose, randomData, testGpu } from "../util.ts";
import { Rng, Tensor, tidy } from "../../src/tensor/mod.ts";
import { backward } from "../../src/autograd/mod.ts";
import { lmHeadCrossEntropy, reshape, rmsNorm } from "../../src/ops/mod.ts";
import { randomModel, SHAPES } from "../../src/model/random.ts";
import { attachLora, trainAll } from "../../src/train/lora_setup.ts";
import type { Gpu } from "../../src/gpu/mod.ts";

const gpu = await testGpu();
const config = { ...SHAPES.tiny, numLayers: 3 };

/** Fills every buffer the pool keeps for reuse with NaN: a rule reading released memory sees NaN. */
function poisonFreeBuffers(g: Gpu): number {
  const bufs = g.pool.freeBuffers();
  for (const b of bufs) g.write(b, new Float32Array(b.size / 4).fill(NaN));
  return bufs.length;
}

type Mode = { keep: boolean; checkpoint?: boolean | number; poison?: boolean };

function setup(kind: "qkvo" | "all" | "full") {
  const model = randomModel(gpu, config, 5, "f32");
  const rng = new Rng(17);
  const params = kind === "full" ? trainAll(model).params : attachLora(model, {
    rank: 4,
    alpha: 8,
    dropout: 0.1,
    target: kind === "all" ? "all" : ["q_proj", "k_proj", "v_proj", "o_proj"],
    rslora: false,
  }, rng).params;
  // PEFT starts B at zero (A's gradient would be zero): give B values so both are checked.
  for (const [name, p] of params) {
    if (name.endsWith("lora_B.weight")) p.write(randomData(rng, p.size, "f32", -0.2, 0.2));
  }
  const [B, T, V, C] = [2, 9, config.vocabSize, config.hiddenSize];
  const ids = Array.from({ length: B * T }, () => rng.int(V));
  const labels = ids.map((_, i) => (i % T === T - 1 ? -100 : ids[(i + 1) % ids.length]));
  const run = (m: Mode) =>
    tidy(async () => {
      // Relative to the start: parameter gradients from an earlier run stay allocated.
      const start = gpu.pool.stats.bytesInUse;
      const hidden = model.forward(
        Tensor.from(gpu, ids, [B, T], "i32"),
        Tensor.from(gpu, ids.map((_, i) => i % T), [B, T], "i32"),
        { seed: 3, checkpoint: m.checkpoint, keepActivations: m.keep },
      );
      const normed = reshape(rmsNorm(hidden, model.norm, config.rmsNormEps), [B * T, C]);
      const loss = lmHeadCrossEntropy(normed, model.lmHead, Tensor.from(gpu, labels, [B * T], "i32"));
      const inUse = gpu.pool.stats.bytesInUse - start;
      const poisoned = m.poison ? poisonFreeBuffers(gpu) : 0;
      backward(loss);
      const grads = await Promise.all([...params.values()].map(async (p) => [...await p.grad!.read()]));
      for (const p of params.values()) gpu.clear(p.grad!.buffer);
      return { loss: (await loss.read())[0], grads, inUse, poisoned };
    });
  const dispose = () => {
    for (const p of params.values()) p.grad?.dispose();
    model.dispose();
  };
  return { run, dispose, names: [...params.keys()] };
}

for (const kind of ["qkvo", "all", "full"] as const) {
  Deno.test(`forward releases activations (${kind}): gradients bit-identical to keeping them, pool poisoned`, async () => {
    const s = setup(kind);
    try {
      const want = await s.run({ keep: true });
      const modes: Mode[] = [{ keep: false, poison: true }, { keep: false, poison: true, checkpoint: 1 }];
      for (const m of modes) {
        const got = await s.run(m);
        assert(got.poisoned > 0, "the forward handed buffers back to poison");
        assertEquals(got.loss, want.loss, `loss (${JSON.stringify(m)})`);
        got.grads.forEach((g, i) => {
          assert(g.some((v) => v !== 0), `${s.names[i]}: gradient is zero`);
          assertClose(g, want.grads[i], 0, `${s.names[i]} (${JSON.stringify(m)})`);
        });
        assert(got.inUse < want.inUse, `bytes in use after forward ${got.inUse} vs ${want.inUse} kept`);
      }
    } finally {
      s.dispose();
    }
  });
}
