/** Shared helpers of the golden tests: the HF outputs made by tools/make_golden.py and model loading. */
import { denoFs } from "../../platform/deno_fs.ts";
import type { DType, Gpu } from "../../src/gpu/mod.ts";
import { loadModel } from "../../src/model/load.ts";
import type { LlamaModel } from "../../src/model/llama.ts";

export const TESTDATA = new URL("../testdata/", import.meta.url).pathname.replace(/\/$/, "");

export interface LogitsCase {
  prompt_ids: number[];
  last: number[];
  rows_first32: number[][];
  argmax: number[];
}
export interface GenCase {
  prompt_ids: number[];
  greedy_no_eos: number[];
  generate: number[];
}
export interface ModelGolden {
  dir: string;
  pad: number;
  base?: string;
  logits: LogitsCase[];
  generations: GenCase[];
  batch: { prompts: number[][]; generate: number[][] };
}
// deno-lint-ignore no-explicit-any
export const golden: Record<string, any> = JSON.parse(await Deno.readTextFile(`${TESTDATA}/golden.json`));

/** Loads tests/testdata/<name> with the given weight storage. */
export function loadTestModel(gpu: Gpu, name: string, dtype: DType): Promise<LlamaModel> {
  return loadModel(gpu, denoFs, `${TESTDATA}/${name}`, { dtype });
}
