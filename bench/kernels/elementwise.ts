import type { BenchCase } from "../harness.ts";
import { Tensor } from "../../src/tensor/mod.ts";
import { add } from "../../src/ops/elementwise.ts";
import { noGrad } from "../../src/autograd/mod.ts";

export function cases(small: boolean): BenchCase[] {
  const n = small ? 1 << 16 : 1 << 26;
  return [{
    name: "elementwise add f32",
    size: `${n}`,
    flops: n,
    bytes: 12 * n,
    setup(gpu) {
      const a = Tensor.zeros(gpu, [n], "f32", { persistent: true });
      const b = Tensor.zeros(gpu, [n], "f32", { persistent: true });
      return {
        run: () => noGrad(() => add(a, b).dispose()),
        dispose: () => [a, b].forEach((t) => t.dispose()),
      };
    },
  }];
}
