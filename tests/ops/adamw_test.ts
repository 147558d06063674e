import { assertClose, testGpu } from "../util.ts";
import { Rng, Tensor, tidy } from "../../src/tensor/mod.ts";
import { adamwUpdate } from "../../src/ops/adamw.ts";
import { type AdamWHyper, adamwStepRef } from "../../src/reference/adamw.ts";

const SIZES = [1, 7, 257, 3001];

for (const maxGradNorm of [0, 0.5]) {
  Deno.test(`adamw: 4 steps on awkward sizes match torch's arithmetic (max_grad_norm ${maxGradNorm})`, async () => {
    const gpu = await testGpu();
    const rng = new Rng(7);
    const h: AdamWHyper = { lr: 0.05, beta1: 0.9, beta2: 0.95, eps: 0.05, weightDecay: 0.1, maxGradNorm };
    const p64 = SIZES.map((n) => Float64Array.from(rng.uniformArray(n)));
    const m64 = SIZES.map((n) => new Float64Array(n));
    const v64 = SIZES.map((n) => new Float64Array(n));
    const params = p64.map((p) => Tensor.from(gpu, p, [p.length], "f32", { persistent: true }));
    const ms = SIZES.map((n) => Tensor.zeros(gpu, [n], "f32", { persistent: true }));
    const vs = SIZES.map((n) => Tensor.zeros(gpu, [n], "f32", { persistent: true }));
    for (let step = 1; step <= 4; step++) {
      // eps is large so the clip factor changes the update (Adam alone is nearly scale-invariant).
      // Gradients are rounded to f32 first so both sides see the same values.
      const g32 = SIZES.map((n) => rng.uniformArray(n, -2, 2));
      const g64 = g32.map((g) => Float64Array.from(g));
      let normSq = 0;
      for (const g of g64) for (const x of g) normSq += x * x;
      tidy(() => {
        const ns = Tensor.from(gpu, [normSq], [1]);
        params.forEach((p, k) => {
          adamwUpdate(p, Tensor.from(gpu, g32[k], [g32[k].length]), ms[k], vs[k], ns, step, h);
        });
      });
      adamwStepRef(p64, g64, m64, v64, step, h);
    }
    for (let k = 0; k < SIZES.length; k++) {
      assertClose(await params[k].read(), p64[k], 1e-6, `param n=${SIZES[k]}`);
      assertClose(await ms[k].read(), m64[k], 1e-5, `m n=${SIZES[k]}`);
      assertClose(await vs[k].read(), v64[k], 1e-5, `v n=${SIZES[k]}`);
    }
    [...params, ...ms, ...vs].forEach((t) => t.dispose());
  });
}
