/**
 * Decode A/B on real shapes (one device call): tokens/s of LocalEngine.generate (128 tokens after a
 * 1024-token prompt, batch 1, f16 random weights) with the decode attention kernel (flash1: one launch,
 * flash: split + merge) and the RMSNorm folded into the GEMVs or not.
 *
 *   deno run -A bench/workbench/decode_ab.ts [--small]
 */
import { createGpu } from "../../src/gpu/mod.ts";
import { Rng } from "../../src/tensor/mod.ts";
import { decodeTuning, randomModel, SHAPES } from "../../src/model/mod.ts";
import { LocalEngine } from "../../src/engine/mod.ts";
import { decodeAttentionTuning } from "../../src/ops/attention_decode.ts";

const small = Deno.args.includes("--small");
const gpu = await createGpu();
const shapes = small ? ["tiny"] : ["qwen2.5-0.5b", "mistral-7b"];
const T = small ? 16 : 1024, GEN = small ? 16 : 128;
for (const shape of shapes) {
  const model = randomModel(gpu, SHAPES[shape], 1, gpu.info.f16 ? "f16" : "f32");
  const engine = new LocalEngine(model);
  const rng = new Rng(7);
  const prompts = [Array.from({ length: T }, () => rng.int(model.config.vocabSize))];
  const run = () => engine.generate({ prompts, maxNewTokens: GEN, ignoreEos: true, chunkSize: 16 });
  await run(); // warm-up: pipelines
  for (const entry of ["flash1", "flash"] as const) {
    for (const foldNorm of [true, false]) {
      decodeAttentionTuning.entry = entry;
      decodeTuning.foldNorm = foldNorm;
      const rates: number[] = [];
      for (let r = 0; r < 2; r++) {
        const { stats } = await run();
        rates.push(stats.decodeTokens / (stats.decodeMs / 1000));
      }
      console.log(
        `${shape} ${entry} foldNorm=${foldNorm}: ${rates.map((x) => x.toFixed(1)).join(", ")} tok/s`,
      );
    }
  }
  decodeAttentionTuning.entry = "flash1";
  decodeTuning.foldNorm = true;
  model.dispose();
}
gpu.destroy();
