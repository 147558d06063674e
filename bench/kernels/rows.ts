/**
 * Row-kernel cases (softmax, cross-entropy) and reductions for `deno task bench kernels --filter …`.
 * All are memory-bound; `bytes` is the minimum traffic named per case. The row kernels actually read
 * each row twice (online max/sum pass, then the write pass); a row of 128256 f32 (501 KiB) is mostly
 * re-read from L2, so the ceiling fraction shows how much of that second read costs.
 */
import type { BenchCase } from "../harness.ts";
import type { Gpu } from "../../src/gpu/mod.ts";
import { Rng, Tensor } from "../../src/tensor/mod.ts";
import { type Node, noGrad } from "../../src/autograd/mod.ts";
import { countValid, crossEntropyRows, gradScaleOf } from "../../src/ops/cross_entropy.ts";
import { softmax } from "../../src/ops/softmax.ts";
import { sumSquares } from "../../src/ops/reduce.ts";

const persistent = { persistent: true };

/** Random f32 values in [lo, hi): a 1 Mi-element random block tiled, so 1 GiB inputs upload quickly. */
function random(gpu: Gpu, shape: number[], lo = -1, hi = 1): Tensor {
  const n = shape.reduce((a, b) => a * b);
  const block = new Rng(7).uniformArray(Math.min(n, 1 << 20), lo, hi);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i += block.length) data.set(block.subarray(0, Math.min(block.length, n - i)), i);
  return Tensor.from(gpu, data, shape, "f32", persistent);
}

/** Labels in [0, v) with every 8th row ignored (−100), like a prompt-masked batch. */
function labels(gpu: Gpu, rows: number, v: number): Tensor {
  const rng = new Rng(8);
  const l = Int32Array.from({ length: rows }, (_, r) => r % 8 === 7 ? -100 : rng.int(v));
  return Tensor.from(gpu, l, [rows], "i32", persistent);
}

function dispose(...ts: Tensor[]): () => void {
  return () => ts.forEach((t) => t.dispose());
}

function crossEntropyCase(rows: number, v: number, train: boolean, model: string): BenchCase {
  const bytes = rows * v * 4;
  return {
    name: `crossEntropyRows f32 ${train ? "loss + in-place dlogits + argmax" : "loss only"} (${model})`,
    size: `${rows}x${v}`,
    flops: 0,
    bytes: train ? 2 * bytes : bytes, // read logits (+ write dlogits)
    setup(gpu) {
      const logits = random(gpu, [rows, v], -8, 8);
      const l = labels(gpu, rows, v);
      const loss = Tensor.empty(gpu, [rows], "f32", persistent);
      const correct = Tensor.empty(gpu, [rows], "u32", persistent);
      const count = countValid(l);
      const scale = gradScaleOf(count);
      // In place: after the first run the logits hold gradients; the kernel's work is the same.
      const opts = train ? { gradScale: scale, correctOut: correct } : {};
      return {
        run: () => crossEntropyRows(logits, l, loss, opts),
        dispose: dispose(logits, l, loss, correct, count, scale),
      };
    },
  };
}

export function cases(small: boolean): BenchCase[] {
  const [ceRows, llamaV, qwenV] = small ? [64, 1000, 1001] : [2048, 128256, 151936];
  const [smRows, smV] = small ? [256, 1024] : [32 * 1024, 1024];
  const sqN = small ? 70_001 : 16 << 20;
  return [
    crossEntropyCase(ceRows, llamaV, true, small ? "vec4 path" : "Llama 3 V"),
    crossEntropyCase(ceRows, llamaV, false, small ? "vec4 path" : "Llama 3 V"),
    crossEntropyCase(ceRows, qwenV, true, small ? "scalar path" : "Qwen2 V"),
    {
      name: "softmax f32",
      size: `${smRows}x${smV}`,
      flops: 0,
      bytes: 2 * smRows * smV * 4,
      setup(gpu) {
        const x = random(gpu, [smRows, smV], -4, 4);
        return { run: () => noGrad(() => softmax(x).dispose()), dispose: dispose(x) };
      },
    },
    {
      name: "softmax backward f32",
      size: `${smRows}x${smV}`,
      flops: 0,
      bytes: 3 * smRows * smV * 4, // read y and g, write dx
      setup(gpu) {
        const x = random(gpu, [smRows, smV], -4, 4);
        x.requiresGrad = true;
        const y = softmax(x);
        const g = random(gpu, [smRows, smV]);
        const rule = (y.node as Node).backward!;
        return {
          run: () => rule(g, [true]).forEach((t) => t?.dispose()),
          dispose: dispose(x, y, g),
        };
      },
    },
    {
      name: "sumSquares f32 4 tensors",
      size: `4x${sqN}`,
      flops: 0,
      bytes: 4 * sqN * 4,
      setup(gpu) {
        const ts = [0, 1, 2, 3].map(() => random(gpu, [sqN]));
        return { run: () => sumSquares(ts).dispose(), dispose: dispose(...ts) };
      },
    },
  ];
}
