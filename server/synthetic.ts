/**
 * Random-weight models of public shapes for `deno task bench serve --shape NAME`: speed and memory of
 * serving a 7B-class architecture without a checkpoint. The weights are random (src/model/random.ts),
 * so the text is meaningless: a stand-in tokenizer maps characters to ids and ids to short words, and
 * EOS is ignored so every request generates exactly max_tokens (comparable timings).
 */
import type { Gpu } from "../src/gpu/mod.ts";
import { randomModel, SHAPES } from "../src/model/random.ts";
import { GREEDY } from "../src/engine/sampling.ts";
import type { ServedModel, ServeTokenizer } from "../src/engine/serving.ts";
import type { ChatMessage } from "../src/io/tokenizer.ts";

/** Characters → ids above the EOS ids; ids → "w<id> ". Enough for prompts of a given length. */
function standInTokenizer(vocab: number, eos: number[]): ServeTokenizer {
  const first = Math.max(0, ...eos) + 1;
  const encode = (text: string) => Array.from(text, (ch) => first + (ch.codePointAt(0)! % (vocab - first)));
  return {
    hasChatTemplate: true,
    eosTokenIds: eos,
    encode,
    decode: (ids) => ids.map((i) => `w${i} `).join(""),
    tokenToId: () => undefined,
    encodeChat: (messages: ChatMessage[]) =>
      encode(messages.map((m) => `${m.role}: ${m.content}\n`).join("") + "assistant: "),
  };
}

/**
 * A random model of `shape` with the stand-in tokenizer.
 *
 * @example
 * const served = syntheticModel(gpu, "mistral-7b", "f16");
 */
export function syntheticModel(gpu: Gpu, shape: string, dtype?: "f16" | "f32"): ServedModel {
  const config = SHAPES[shape];
  if (!config) throw new Error(`--shape ${shape}: unknown (known: ${Object.keys(SHAPES).join(", ")})`);
  const model = randomModel(gpu, config, 1, dtype);
  return {
    model,
    tokenizer: standInTokenizer(config.vocabSize, config.eosTokenId),
    eosTokenIds: config.eosTokenId,
    defaults: GREEDY,
    adapterName: null,
  };
}
