/**
 * Matmul cases for `deno task bench kernels --filter matmul`: 4096³ f32 in the three layouts the
 * backward needs, f16-B storage, the decode GEMV (f16 weights [14336, 4096]) and LoRA-rank products.
 */
import type { BenchCase } from "../harness.ts";
import { Rng, Tensor } from "../../src/tensor/mod.ts";
import { matmulInto } from "../../src/ops/matmul.ts";
import type { DType, Gpu } from "../../src/gpu/mod.ts";

/** One matmul case: op(A) [M, K] · op(B) [K, N] into a preallocated f32 C. */
export function matmulCase(
  name: string,
  M: number,
  N: number,
  K: number,
  o: { transA?: boolean; transB?: boolean; ta?: DType; tb?: DType; batch?: number; prepare?: () => void } =
    {},
): BenchCase {
  const batch = o.batch ?? 1;
  const ta = o.ta ?? "f32", tb = o.tb ?? "f32";
  const bytesOf = (t: DType) => t === "f16" ? 2 : 4;
  return {
    name,
    size: `${batch > 1 ? batch + "x" : ""}${M}x${N}x${K}`,
    flops: 2 * batch * M * N * K,
    bytes: batch * (M * K * bytesOf(ta) + M * N * 4) + K * N * bytesOf(tb),
    setup(gpu: Gpu) {
      o.prepare?.();
      const rng = new Rng(7);
      const rand = (n: number) => rng.uniformArray(n, -1, 1);
      const aShape = o.transA ? [K, M] : [M, K];
      const bShape = o.transB ? [N, K] : [K, N];
      const a = Tensor.from(gpu, rand(batch * M * K), batch > 1 ? [batch, ...aShape] : aShape, ta, {
        persistent: true,
      });
      const b = Tensor.from(gpu, rand(K * N), bShape, tb, { persistent: true });
      const c = Tensor.empty(gpu, batch > 1 ? [batch, M, N] : [M, N], "f32", { persistent: true });
      return {
        run: () => matmulInto(c, a, b, { transA: o.transA, transB: o.transB }),
        dispose: () => [a, b, c].forEach((t) => t.dispose()),
      };
    },
  };
}

export function cases(small: boolean): BenchCase[] {
  const n = small ? 256 : 4096;
  const ffn = small ? 512 : 14336;
  const t = small ? 128 : 2048;
  const r = 64;
  return [
    matmulCase("matmul f32 A·B", n, n, n),
    matmulCase("matmul f32 A·Bᵀ", n, n, n, { transB: true }),
    matmulCase("matmul f32 Aᵀ·B", n, n, n, { transA: true }),
    matmulCase("matmul f16-B A·B", n, n, n, { tb: "f16" }),
    matmulCase("matmul f16-B A·Bᵀ", n, n, n, { tb: "f16", transB: true }),
    matmulCase("matmul gemv f16-B A·Bᵀ (decode)", 1, ffn, n, { tb: "f16", transB: true }),
    matmulCase("matmul gemv f16-B A·Bᵀ (4 tokens)", 4, ffn, n, { tb: "f16", transB: true }),
    matmulCase("matmul lora x·Aᵀ", t, r, n, { transB: true }),
    matmulCase("matmul lora h·Bᵀ", t, n, r, { transB: true }),
    matmulCase("matmul lora dB=dCᵀ·h", n, r, t, { transA: true }),
  ];
}
