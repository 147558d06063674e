/**
 * Attention workbench cases: flash forward and backward at a Llama-3-8B layer shape (T 1024, H 32,
 * D 128; Hkv 8 = GQA and Hkv 32 = MHA), and split-K decode against 1024- and 4096-token caches at
 * batch 1 and 16.
 *
 * Counting (what the bar is measured in):
 * - forward: 4·B·H·T·T·D / 2 flops (two T×T×D matmuls, half of the causal square).
 * - backward: 2.5 × forward — the FlashAttention convention (five matmuls). Our kernels run seven (S
 *   and dP are recomputed in both grad_kv and grad_q because WGSL has no float atomics), so the TFLOP/s
 *   printed is "useful" throughput, as for the peers.
 * - decode: bytes = the K and V cache rows read, 2·B·Hkv·S·D·(2 for f16, 4 for f32); q, partials and
 *   output are < 2 % on top and are not counted.
 */
import type { BenchCase } from "../harness.ts";
import { Rng, Tensor } from "../../src/tensor/mod.ts";
import { noGrad } from "../../src/autograd/mod.ts";
import type { Gpu } from "../../src/gpu/mod.ts";
import { attentionForward } from "../../src/ops/attention.ts";
import { attentionBackward } from "../../src/ops/attention_backward.ts";
import { attentionDecode, KvCache } from "../../src/ops/attention_decode.ts";

function random(gpu: Gpu, shape: number[], rng: Rng): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.from(gpu, rng.uniformArray(n, -1, 1), shape, "f32", { persistent: true });
}

function prefillCases(small: boolean): BenchCase[] {
  const [B, T, H, D] = small ? [1, 128, 4, 128] : [1, 1024, 32, 128];
  const out: BenchCase[] = [];
  for (const Hkv of small ? [1, 4] : [8, 32]) {
    const fwdFlops = 4 * B * H * T * T * D / 2;
    const io = 4 * (2 * B * T * H * D + 2 * B * T * Hkv * D); // q, out, k, v
    const size = `B${B} T${T} H${H}/${Hkv} D${D} causal`;
    const inputs = (gpu: Gpu) => {
      const rng = new Rng(7);
      return {
        q: random(gpu, [B, T, H, D], rng),
        k: random(gpu, [B, T, Hkv, D], rng),
        v: random(gpu, [B, T, Hkv, D], rng),
      };
    };
    out.push({
      name: "attention forward f32",
      size,
      flops: fwdFlops,
      bytes: io,
      setup(gpu) {
        const { q, k, v } = inputs(gpu);
        return {
          run: () => {
            const r = attentionForward(q, k, v);
            r.out.dispose();
            r.lse.dispose();
          },
          dispose: () => [q, k, v].forEach((t) => t.dispose()),
        };
      },
    });
    out.push({
      name: "attention backward f32",
      size,
      flops: 2.5 * fwdFlops,
      bytes: 2 * io, // reads q, k, v, out, dOut; writes dq, dk, dv
      setup(gpu) {
        const { q, k, v } = inputs(gpu);
        const { out, lse } = attentionForward(q, k, v);
        const g = random(gpu, [B, T, H, D], new Rng(8));
        return {
          run: () => noGrad(() => attentionBackward(q, k, v, out, lse, g).forEach((t) => t?.dispose())),
          dispose: () => [q, k, v, out, lse, g].forEach((t) => t.dispose()),
        };
      },
    });
  }
  return out;
}

function decodeCases(small: boolean): BenchCase[] {
  const [H, Hkv, D] = small ? [4, 2, 128] : [32, 8, 128];
  const out: BenchCase[] = [];
  for (const dtype of ["f16", "f32"] as const) {
    for (const S of small ? [256] : [1024, 4096]) {
      for (const B of small ? [1, 4] : [1, 16]) {
        const bytesPer = dtype === "f16" ? 2 : 4;
        out.push({
          name: `attention decode ${dtype} cache`,
          size: `B${B} S${S} H${H}/${Hkv} D${D}`,
          flops: 4 * B * H * S * D,
          bytes: 2 * B * Hkv * S * D * bytesPer,
          setup(gpu) {
            const rng = new Rng(9);
            const cache = new KvCache(gpu, B, Hkv, S, D, dtype);
            // Random cache contents (not zeros: the exp/max path must see real values).
            const fill = (t: Tensor) => t.write(rng.uniformArray(t.size, -1, 1));
            fill(cache.k);
            fill(cache.v);
            const q = random(gpu, [B, 1, H, D], rng);
            const lengths = Tensor.from(gpu, new Array(B).fill(S), [B], "u32", { persistent: true });
            return {
              run: () => attentionDecode(q, cache, lengths).dispose(),
              dispose: () => {
                cache.dispose();
                q.dispose();
                lengths.dispose();
              },
            };
          },
        });
      }
    }
  }
  return out;
}

/** Cases for `deno task bench kernels --filter attention`. */
export function cases(small: boolean): BenchCase[] {
  return [...prefillCases(small), ...decodeCases(small)];
}
