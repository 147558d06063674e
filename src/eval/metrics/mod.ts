/**
 * Evaluation metrics: token F1, BLEU (LLaMA-Factory's character BLEU-4 and sacreBLEU), ROUGE-1/2/L
 * (LLaMA-Factory / rouge-chinese), and bootstrap confidence intervals. Each metric has a
 * per-sample and a corpus form; all are pure functions of strings.
 * @example
 * import { bleu4Char, rouge, sacreBleuCorpus, tokenF1 } from "./mod.ts";
 * const scores = { f1: tokenF1(preds, refs).score, bleu: bleu4Char(preds, refs).score, ...rouge(preds, refs) };
 * @module
 */
export * from "./bleu.ts";
export * from "./bootstrap.ts";
export * from "./f1.ts";
export * from "./rouge.ts";
export * from "./sacrebleu_tokenizers.ts";
export * from "./segment.ts";
export * from "./text.ts";
export * from "./summary.ts";
