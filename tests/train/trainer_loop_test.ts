/**
 * The training loop end to end on the tiny Llama: the loss falls, the outputs are written (PEFT
 * adapter, tokenizer, log, resolved config), evaluation logs loss and token accuracy, and the saved
 * adapter loaded onto a fresh copy of the base model through the engine's loader gives the trained
 * model's logits.
 */
import { assert, assertEquals } from "../assert.ts";
import { relL2, testGpu } from "../util.ts";
import { Trainer } from "../../src/train/trainer.ts";
import { loadModel } from "../../src/model/load.ts";
import { loadAdapter } from "../../src/model/adapter.ts";
import type { LlamaModel } from "../../src/model/llama.ts";
import { logitsOf, toyConfig, toyFs } from "./trainer_fixture.ts";

const gpu = await testGpu();

Deno.test("trainer: loss falls, outputs written, eval logged, best checkpoint, saved adapter reproduces the logits", async () => {
  const fs = await toyFs();
  const cfg = toyConfig({
    max_steps: 16,
    do_eval: true,
    eval_dataset: "toy_val",
    eval_steps: 8,
    logging_steps: 4,
    save_steps: 8,
    metric_for_best_model: "loss",
  });
  const trainer = await Trainer.create(gpu, cfg, { fs });
  let fresh: LlamaModel | null = null;
  try {
    const { steps } = await trainer.train();
    assertEquals(steps.map((s) => s.step), Array.from({ length: 16 }, (_, i) => i + 1));
    const first = (steps[0].loss + steps[1].loss) / 2, last = (steps[14].loss + steps[15].loss) / 2;
    assert(last < 0.5 * first, `loss did not fall: ${first} → ${last}`);
    assert(steps.every((s) => Number.isFinite(s.gradNorm) && s.gradNorm > 0), "grad norms logged");
    for (
      const f of ["adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "training_args.yaml"]
    ) {
      assert(await fs.exists(`out/${f}`), `out/${f} written`);
    }
    const log = (await fs.readText("out/trainer_log.jsonl")).trim().split("\n").map((l) => JSON.parse(l));
    const train = log.filter((e) => e.loss !== undefined),
      evals = log.filter((e) => e.eval_loss !== undefined);
    assertEquals(train.map((e) => e.current_steps), [4, 8, 12, 16]);
    assertEquals(evals.map((e) => e.current_steps), [8, 16]);
    assert(evals[1].eval_loss < evals[0].eval_loss, "eval loss falls");
    assert(
      evals[1].eval_token_accuracy > 0 && !("eval_accuracy" in evals[1]),
      "token accuracy; no diagnoses",
    );
    const state = JSON.parse(await fs.readText("out/checkpoint-16/trainer_state.json"));
    assertEquals(state.best_model_checkpoint, "out/checkpoint-16");
    assert(Math.abs(state.best_metric - evals[1].eval_loss) < 1e-5, "best metric = last eval loss");
    assertEquals(state.data_position, { epoch: 3, index: 8 }, "8 rows, batch 2: the end of epoch 4 of 4");
    const adapterCfg = JSON.parse(await fs.readText("out/adapter_config.json"));
    assertEquals(
      [adapterCfg.peft_type, adapterCfg.r, adapterCfg.lora_alpha, adapterCfg.target_modules],
      ["LORA", 4, 8, ["q_proj", "v_proj"]],
    );
    const ids = [0, 40, 71, 99, 12, 300, 45, 7];
    const want = await logitsOf(trainer.model, ids);
    fresh = await loadModel(gpu, fs, "model");
    const base = await logitsOf(fresh, ids);
    await loadAdapter(fresh, fs, "out");
    const got = await logitsOf(fresh, ids);
    assert(relL2(base, want) > 1e-3, "training changed the logits");
    assert(relL2(got, want) < 1e-6, `reloaded adapter: rel L2 ${relL2(got, want)}`);
  } finally {
    trainer.dispose();
    fresh?.dispose();
  }
});

Deno.test("trainer: load_best_model_at_end writes the best checkpoint's adapter", async () => {
  const fs = await toyFs();
  // greater_is_better on a falling loss: the first evaluation (step 4) stays the best.
  const cfg = toyConfig({
    max_steps: 8,
    do_eval: true,
    eval_dataset: "toy_val",
    eval_steps: 4,
    save_steps: 4,
    metric_for_best_model: "eval_loss",
    greater_is_better: true,
    load_best_model_at_end: true,
  });
  const trainer = await Trainer.create(gpu, cfg, { fs });
  try {
    await trainer.train();
  } finally {
    trainer.dispose();
  }
  const bytes = (p: string) => fs.readFile(p);
  const [out, best, last] = await Promise.all(
    ["out", "out/checkpoint-4", "out/checkpoint-8"].map((d) => bytes(`${d}/adapter_model.safetensors`)),
  );
  assertEquals(out, best);
  assert(out.some((b, i) => b !== last[i]), "the last checkpoint differs from the best");
});
