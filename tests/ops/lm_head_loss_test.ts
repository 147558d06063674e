import { assertClose, randomData, storageTypes, testGpu, tolFor } from "../util.ts";
import { assertEquals } from "../assert.ts";
import { Rng, Tensor, tidy } from "../../src/tensor/mod.ts";
import { lmHeadCrossEntropy } from "../../src/ops/lm_head_loss.ts";
import { backward, noGrad } from "../../src/autograd/mod.ts";
import { matmulBackwardRef, matmulRef } from "../../src/reference/matmul.ts";
import { crossEntropyBackwardRef, crossEntropyRef } from "../../src/reference/cross_entropy.ts";

// N = 7 rows in chunks of 3 (3 + 3 + 1) so the last chunk is short; two ignored labels.
const N = 7, C = 12, V = 37;
const LABELS = [3, -100, 36, 0, 17, -100, 5];

for (const chunkRows of [3, 7]) {
  Deno.test(`lmHeadCrossEntropy (chunks of ${chunkRows}): loss, dhidden, dweight vs reference`, async () => {
    const gpu = await testGpu();
    const rng = new Rng(21);
    for (const wType of storageTypes(gpu)) {
      const h = randomData(rng, N * C), w = randomData(rng, V * C, wType);
      const spec = { batch: 1, M: N, N: V, K: C, transB: true };
      const logits = matmulRef(h, w, spec);
      const ref = crossEntropyRef(logits, LABELS, N, V);
      const g = 0.5; // incoming gradient, e.g. 1 / gradient_accumulation_steps
      const dlogits = crossEntropyBackwardRef(logits, LABELS, N, V, -100, g);
      const { dA: dh, dB: dw } = matmulBackwardRef(h, w, dlogits, spec);
      await tidy(async () => {
        const th = Tensor.from(gpu, h, [N, C]), tw = Tensor.from(gpu, w, [V, C], wType);
        const labels = Tensor.from(gpu, LABELS, [N], "i32");
        th.requiresGrad = true;
        // The frozen-head case (LoRA) and the trained-head case (full fine-tuning, f32 only).
        tw.requiresGrad = wType === "f32";
        const loss = lmHeadCrossEntropy(th, tw, labels, { chunkRows });
        const tol = tolFor(wType) * 10;
        assertClose(await loss.read(), [ref.loss], tol, `loss ${wType}`);
        backward(loss, Tensor.from(gpu, [g], [1]));
        assertClose(await th.grad!.read(), dh, tol, `dhidden ${wType}`);
        if (tw.requiresGrad) assertClose(await tw.grad!.read(), dw, tol, "dweight");
        else assertEquals(tw.grad, null, "frozen head gets no gradient");
        const evalLoss = noGrad(() => lmHeadCrossEntropy(th, tw, labels, { chunkRows }));
        assertClose(await evalLoss.read(), [ref.loss], tol, "loss under noGrad");
        th.grad!.dispose();
        tw.grad?.dispose();
      });
    }
  });
}
