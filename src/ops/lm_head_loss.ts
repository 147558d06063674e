/**
 * Fused LM head + cross-entropy, chunked over rows: logits = hidden·Wᵀ are produced `chunkRows` rows
 * at a time, turned into per-row losses and — when training — into dlogits in place, multiplied back
 * into dhidden (and dW for full fine-tuning), then dropped. The V × N logits matrix (2048 × 128256 × 4
 * bytes = 1 GiB for Llama 3) never exists in full, and no second pass over the vocabulary is needed
 * in backward: the gradients are computed during the forward pass, for a loss gradient of 1, and
 * scaled by the incoming gradient in backward (a GPU scalar, e.g. 1/gradient_accumulation_steps).
 *
 * Labels are already shifted (labels[t] is the token after position t); −100 (ignoreIndex) rows do not
 * count. The loss is the mean over counted rows, as torch's cross_entropy(reduction="mean").
 */
import { Tensor, tidy } from "../tensor/mod.ts";
import { isGradEnabled, noGrad, record } from "../autograd/mod.ts";
import { matmul, matmulInto } from "./matmul.ts";
import { countValid, crossEntropyRows, gradScaleOf, lossMean } from "./cross_entropy.ts";
import { mulScalar } from "./elementwise.ts";

export interface LmHeadLossOptions {
  ignoreIndex?: number;
  /** Rows per chunk; default keeps one chunk's logits under 256 MiB. */
  chunkRows?: number;
}

/** Copies rows [start, start + count) of a row-major f32 matrix into a new tensor. */
function sliceRows(t: Tensor, start: number, count: number): Tensor {
  const width = t.shape[1];
  const out = Tensor.empty(t.gpu, [count, width], t.dtype);
  t.gpu.copy(t.buffer, start * width * 4, out.buffer, 0, count * width * 4);
  return out;
}

/**
 * Mean cross-entropy of hidden [N, C] f32 through the LM head weight [V, C] (f32 or f16) against
 * labels i32 [N]. Returns a [1] tensor; recorded for autograd (dhidden; dweight only if it requires grad).
 *
 * @example
 * const loss = lmHeadCrossEntropy(finalNorm.reshape([B * T, C]), lmHead.weight, shiftedLabels);
 */
export function lmHeadCrossEntropy(
  hidden: Tensor,
  weight: Tensor,
  labels: Tensor,
  opts: LmHeadLossOptions = {},
): Tensor {
  const [n, c] = hidden.shape;
  const [v, cw] = weight.shape;
  if (hidden.shape.length !== 2 || cw !== c || labels.size !== n || labels.dtype !== "i32") {
    throw new Error(
      `lmHeadCrossEntropy: hidden [${hidden.shape}], weight [${weight.shape}], labels [${labels.shape}] ${labels.dtype} do not fit`,
    );
  }
  const ignoreIndex = opts.ignoreIndex ?? -100;
  const rows = Math.max(1, Math.min(n, opts.chunkRows ?? Math.floor((256 << 20) / (v * 4))));
  const needH = isGradEnabled() && hidden.requiresGrad;
  const needW = isGradEnabled() && weight.requiresGrad;
  const gpu = hidden.gpu;

  const { loss, dh, dw } = noGrad(() => {
    const count = countValid(labels, ignoreIndex);
    const gradScale = needH || needW ? gradScaleOf(count) : undefined;
    const rowLoss = Tensor.empty(gpu, [n]);
    const dh = needH ? Tensor.empty(gpu, [n, c]) : null;
    const dw = needW ? Tensor.zeros(gpu, [v, c]) : null;
    for (let start = 0; start < n; start += rows) {
      const count = Math.min(rows, n - start);
      tidy(() => {
        const h = n === count ? hidden : sliceRows(hidden, start, count);
        const logits = matmul(h, weight, { transB: true }); // [count, V]
        crossEntropyRows(logits, labels, rowLoss, { ignoreIndex, gradScale, rowOffset: start });
        // With gradScale the logits now hold dlogits = (softmax − onehot) / count.
        if (dh) {
          const d = matmul(logits, weight); // [count, C]
          gpu.copy(d.buffer, 0, dh.buffer, start * c * 4, count * c * 4);
        }
        if (dw) matmulInto(dw, logits, h, { transA: true, beta: 1 });
      });
    }
    return { loss: lossMean(rowLoss, count), dh, dw };
  });
  return record(loss, "lm_head_cross_entropy", [hidden, weight], (g, needs) => [
    needs[0] && dh ? mulScalar(dh, g) : null,
    needs[1] && dw ? mulScalar(dw, g) : null,
  ]);
}
