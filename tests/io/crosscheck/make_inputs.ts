/**
 * Writes files with OUR writers for hf_crosscheck.py to open with the Hugging Face libraries on the GPU
 * machine (run from the repo root): deno run -A tests/io/crosscheck/make_inputs.ts
 *   ours/model.safetensors   F32 / F16 / BF16 tensors; ours/values.json holds the values they must read as
 *   ours/sharded/            the same tensors as shards + model.safetensors.index.json
 *   ours/adapter/            a PEFT adapter for the tiny Llama of hf_crosscheck.py (q_proj, v_proj; r 4, alpha 8)
 */
import { denoFs } from "../../../platform/deno_fs.ts";
import { writeSafetensors } from "../../../src/io/safetensors.ts";
import { savePeftAdapter } from "../../../src/io/peft.ts";
import { bf16ToF32, f32ToBf16 } from "../../../src/io/dtypes.ts";

const OUT = new URL("ours", import.meta.url).pathname;
/** Deterministic non-zero values: sin(i·0.7 + k)·scale. */
const seq = (n: number, k: number, scale: number) =>
  Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + k) * scale);

const f32 = seq(15, 0, 3), f16 = seq(7, 1, 1000), bf16 = seq(24, 2, 100);
const tensors = [
  { name: "f32", dtype: "F32" as const, shape: [3, 5], data: f32 },
  { name: "f16", dtype: "F16" as const, shape: [7], data: f16 },
  { name: "bf16", dtype: "BF16" as const, shape: [2, 3, 4], data: bf16 },
];
await denoFs.mkdir(OUT);
await writeSafetensors(denoFs, `${OUT}/model.safetensors`, tensors, { format: "pt", writer: "webtune" });
await writeSafetensors(denoFs, `${OUT}/sharded`, tensors, { format: "pt" }, { maxShardBytes: 64 });
const values = {
  f32: [...f32],
  f16: [...new Float32Array(new Float16Array(f16))],
  bf16: [...bf16ToF32(f32ToBf16(bf16))],
};
await Deno.writeTextFile(`${OUT}/values.json`, JSON.stringify(values));

// Tiny Llama: hidden 16, 2 heads of 8, 1 kv head → q_proj 16→16, v_proj 16→8.
const mods = new Map<string, { A: Float32Array; B: Float32Array; r: number; in: number; out: number }>();
let k = 0;
for (let l = 0; l < 2; l++) {
  for (const [m, out] of [["q_proj", 16], ["v_proj", 8]] as const) {
    mods.set(`model.layers.${l}.self_attn.${m}`, {
      A: seq(4 * 16, k++, 0.1),
      B: seq(out * 4, k++, 0.1),
      r: 4,
      in: 16,
      out,
    });
  }
}
await savePeftAdapter(denoFs, `${OUT}/adapter`, {
  r: 4,
  loraAlpha: 8,
  loraDropout: 0,
  targetModules: ["q_proj", "v_proj"],
  useRslora: false,
  bias: "none",
  taskType: "CAUSAL_LM",
  scale: 2,
}, mods);
console.log(`wrote ${OUT}`);
