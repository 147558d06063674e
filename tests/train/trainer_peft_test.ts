/**
 * The PEFT oracle. Our trainer runs 20 LoRA steps on the tiny Llama (f32 base, r 4, q/v, AdamW, clipping,
 * constant lr). `deno test -A tests/train/trainer_peft_test.ts -- --write-inputs` writes what
 * tools/peft_reference.py needs into tests/train/fixtures/: the step-0 adapter (PEFT folder), the exact
 * token batches, the hyper-parameters, our per-step losses and the trained adapter with logits of a probe.
 * On the GPU machine the script trains the same adapter with HF PEFT on the same batches and writes
 * trainer_peft_reference.json (PEFT's losses; the logits PEFT gets from OUR trained adapter).
 *
 * Here: our losses must equal the committed ones (a regression check, 1e-5), PEFT's losses within 1e-3
 * relative, and PEFT's logits of our adapter within 1e-4 rel L2 (on the H200 they agreed to 4e-6 and
 * 5e-7). Rerun the script whenever --write-inputs rewrites the inputs.
 */
import { assert } from "../assert.ts";
import { relL2, testGpu } from "../util.ts";
import { Trainer } from "../../src/train/trainer.ts";
import { readParams, saveTrainable } from "../../src/train/lora_setup.ts";
import { ShardLoader } from "../../src/data/shards.ts";
import { denoFs } from "../../platform/deno_fs.ts";
import { noGrad } from "../../src/autograd/mod.ts";
import { Tensor } from "../../src/tensor/mod.ts";
import { toyConfig, toyFs } from "./trainer_fixture.ts";

const gpu = await testGpu();
const FIX = new URL("./fixtures/", import.meta.url).pathname;
const INPUTS = `${FIX}trainer_peft_inputs.json`, REFERENCE = `${FIX}trainer_peft_reference.json`;
const HYPER = {
  max_steps: 20,
  lora_rank: 4,
  lora_alpha: 8,
  lora_target: "q_proj,v_proj",
  learning_rate: 5e-3,
  lr_scheduler_type: "constant",
  per_device_train_batch_size: 2,
  max_grad_norm: 1.0,
  weight_decay: 0.0,
};
const PROBE = [0, 40, 71, 99, 12, 300, 45, 7, 250, 3];

// trainer_peft_reference.json came from tools/peft_reference.py on the H200 (torch 2.11, transformers 5.17,
// peft 0.21): PEFT trained the same step-0 adapter on the same batches, and loaded our trained adapter.
Deno.test("trainer: 20 LoRA steps give HF PEFT's losses; PEFT loads our adapter and gets our logits", async () => {
  const fs = await toyFs();
  const cfg = toyConfig(HYPER);
  const trainer = await Trainer.create(gpu, cfg, { fs }, { baseDtype: "f32" });
  try {
    const init = await readParams(trainer.trainable.params);
    const replay = new ShardLoader(trainer.loader.reader, trainer.loader.o);
    const batches = [];
    for (let i = 0; i < HYPER.max_steps; i++) {
      const b = await replay.next();
      const rows = (a: Int32Array) =>
        Array.from({ length: b.rows }, (_, r) => [...a.subarray(r * b.seqLen, (r + 1) * b.seqLen)]);
      batches.push({ input_ids: rows(b.inputIds), labels: rows(b.labels) });
    }
    const losses = (await trainer.train()).steps.map((s) => s.loss);
    const ids = Tensor.from(gpu, PROBE, [1, PROBE.length], "i32");
    const pos = Tensor.from(gpu, PROBE.map((_, i) => i), [1, PROBE.length], "i32");
    const logits = noGrad(() => trainer.model.logits(trainer.model.forward(ids, pos)));
    const ours = Float32Array.from(await logits.read());
    [ids, pos, logits].forEach((t) => t.dispose());

    if (Deno.args.includes("--write-inputs")) {
      const o = { baseModel: "tests/testdata/llama", model: trainer.model };
      await saveTrainable(denoFs, `${FIX}trainer_peft_init`, trainer.trainable, init, o);
      await saveTrainable(
        denoFs,
        `${FIX}trainer_peft_trained`,
        trainer.trainable,
        await readParams(trainer.trainable.params),
        o,
      );
      const inputs = {
        base_model: "tests/testdata/llama",
        hyper: { ...HYPER, adam_beta1: 0.9, adam_beta2: 0.999, adam_epsilon: 1e-8 },
        loss_normalisation:
          "per step: sum of token losses / number of trained tokens (labels shifted, -100 ignored)",
        batches,
        our_losses: losses,
        probe_ids: PROBE,
        our_probe_logits: [...ours],
      };
      await Deno.writeTextFile(INPUTS, JSON.stringify(inputs) + "\n");
      console.log(`wrote ${INPUTS} and the adapter folders; run tools/peft_reference.py on the GPU machine`);
      return;
    }
    const committed = JSON.parse(await Deno.readTextFile(INPUTS));
    committed.our_losses.forEach((l: number, i: number) =>
      assert(Math.abs(losses[i] - l) <= 1e-5 * Math.abs(l), `step ${i + 1}: ${losses[i]} vs committed ${l}`)
    );
    assert(losses[19] < 0.8 * losses[0], "the oracle run learns something");
    const ref = JSON.parse(await Deno.readTextFile(REFERENCE));
    ref.peft_losses.forEach((l: number, i: number) =>
      assert(Math.abs(losses[i] - l) <= 1e-3 * Math.abs(l), `step ${i + 1}: ours ${losses[i]}, PEFT ${l}`)
    );
    const e = relL2(ours, ref.peft_probe_logits_of_our_adapter);
    assert(e < 1e-4, `PEFT's logits of our adapter: rel L2 ${e}`);
  } finally {
    trainer.dispose();
  }
});
