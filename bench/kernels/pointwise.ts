/**
 * Norm / RoPE / SwiGLU / embedding cases for `deno task bench kernels --filter <name>`. All are
 * memory-bound: `bytes` is the minimum traffic (each input read once, each output written once).
 * Backward cases call the op's recorded backward rule directly, so they time exactly its kernels
 * (no leaf-gradient accumulation).
 */
import type { BenchCase } from "../harness.ts";
import type { DType, Gpu } from "../../src/gpu/mod.ts";
import { Rng, Tensor } from "../../src/tensor/mod.ts";
import { type Node, noGrad } from "../../src/autograd/mod.ts";
import { rmsNorm } from "../../src/ops/rmsnorm.ts";
import { rope, ropeInvFreq } from "../../src/ops/rope.ts";
import { swiglu } from "../../src/ops/swiglu.ts";
import { embedding } from "../../src/ops/embedding.ts";

const rng = new Rng(5);
const persistent = { persistent: true };

function random(gpu: Gpu, shape: number[], dtype: DType = "f32"): Tensor {
  const n = shape.reduce((a, b) => a * b);
  return Tensor.from(gpu, rng.uniformArray(n, -1, 1), shape, dtype, persistent);
}

/** Runs `forward` once with gradients on, then times its recorded backward rule on `grad`. */
function backwardOf(out: Tensor, grad: Tensor): () => void {
  const node = out.node as Node;
  const rule = node.backward!;
  const needs = node.inputs.map((t) => t.requiresGrad);
  return () => rule(grad, needs).forEach((t) => t?.dispose());
}

function dispose(...ts: Tensor[]): () => void {
  return () => ts.forEach((t) => t.dispose());
}

export function cases(small: boolean): BenchCase[] {
  const rows = small ? 64 : 4096, C = small ? 256 : 4096;
  const [T, H, D] = small ? [64, 4, 128] : [4096, 32, 128];
  const F = small ? 512 : 14336;
  const V = small ? 1000 : 32000;
  const eps = 1e-5;
  return [
    {
      name: "rmsnorm f32",
      size: `${rows}x${C}`,
      flops: 0,
      bytes: 2 * rows * C * 4 + C * 4,
      setup(gpu) {
        const x = random(gpu, [rows, C]), w = random(gpu, [C]);
        return { run: () => noGrad(() => rmsNorm(x, w, eps).dispose()), dispose: dispose(x, w) };
      },
    },
    {
      name: "rmsnorm f16-weight",
      size: `${rows}x${C}`,
      flops: 0,
      bytes: 2 * rows * C * 4 + C * 2,
      setup(gpu) {
        const x = random(gpu, [rows, C]), w = random(gpu, [C], "f16");
        return { run: () => noGrad(() => rmsNorm(x, w, eps).dispose()), dispose: dispose(x, w) };
      },
    },
    {
      name: "rmsnorm backward f32 (dx + dweight)",
      size: `${rows}x${C}`,
      flops: 0,
      bytes: 3 * rows * C * 4 + 2 * C * 4, // read x, g, w; write dx, dw
      setup(gpu) {
        const x = random(gpu, [rows, C]), w = random(gpu, [C]), g = random(gpu, [rows, C]);
        x.requiresGrad = w.requiresGrad = true;
        const y = rmsNorm(x, w, eps);
        return { run: backwardOf(y, g), dispose: dispose(x, w, g, y) };
      },
    },
    {
      name: "rope f32",
      size: `1x${T}x${H}x${D}`,
      flops: 0,
      bytes: 2 * T * H * D * 4 + T * 4 + (D / 2) * 4,
      setup(gpu) {
        const x = random(gpu, [1, T, H, D]);
        const pos = Tensor.from(gpu, Int32Array.from({ length: T }, (_, t) => t), [1, T], "i32", persistent);
        const inv = Tensor.from(gpu, ropeInvFreq(D, 500000), [D / 2], "f32", persistent);
        return { run: () => noGrad(() => rope(x, pos, inv).dispose()), dispose: dispose(x, pos, inv) };
      },
    },
    {
      name: "swiglu f32",
      size: `${rows}x${F}`,
      flops: 0,
      bytes: 3 * rows * F * 4,
      setup(gpu) {
        const gate = Tensor.zeros(gpu, [rows, F], "f32", persistent);
        const up = Tensor.zeros(gpu, [rows, F], "f32", persistent);
        return { run: () => noGrad(() => swiglu(gate, up).dispose()), dispose: dispose(gate, up) };
      },
    },
    {
      name: "swiglu backward f32",
      size: `${rows}x${F}`,
      flops: 0,
      bytes: 5 * rows * F * 4, // read gate, up, g; write dgate, dup
      setup(gpu) {
        const gate = Tensor.zeros(gpu, [rows, F], "f32", persistent);
        const up = Tensor.zeros(gpu, [rows, F], "f32", persistent);
        const g = Tensor.zeros(gpu, [rows, F], "f32", persistent);
        gate.requiresGrad = up.requiresGrad = true;
        const y = swiglu(gate, up);
        return { run: backwardOf(y, g), dispose: dispose(gate, up, g, y) };
      },
    },
    {
      name: "embedding gather f16-table",
      size: `${rows} ids, ${V}x${C}`,
      flops: 0,
      bytes: rows * 4 + rows * C * 2 + rows * C * 4,
      setup(gpu) {
        const table = Tensor.zeros(gpu, [V, C], "f16", persistent);
        const ids = Tensor.from(
          gpu,
          Int32Array.from({ length: rows }, () => rng.int(V)),
          [rows],
          "i32",
          persistent,
        );
        return { run: () => noGrad(() => embedding(ids, table).dispose()), dispose: dispose(table, ids) };
      },
    },
    {
      name: "embedding backward f32-table (full fine-tuning)",
      size: `${rows} ids, ${V}x${C}`,
      flops: 0,
      bytes: V * C * 4 + rows * 4 + 2 * rows * C * 4, // zero dw; read ids, g; write the hit rows
      setup(gpu) {
        const table = Tensor.zeros(gpu, [V, C], "f32", persistent);
        table.requiresGrad = true;
        const ids = Tensor.from(
          gpu,
          Int32Array.from({ length: rows }, () => rng.int(V)),
          [rows],
          "i32",
          persistent,
        );
        const g = random(gpu, [rows, C]);
        const y = embedding(ids, table);
        return { run: backwardOf(y, g), dispose: dispose(table, ids, g, y) };
      },
    },
  ];
}
