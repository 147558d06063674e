/**
 * The parts of `deno task data` that need a model: QA generation by a local model through our GPU
 * engine (`qa --generator model`), and token counts for the merge report (`merge --tokenizer DIR`).
 * Kept apart from cli/data.ts so the pure data commands never open the GPU.
 */
import { createGpu } from "../src/gpu/mod.ts";
import { openModel } from "../src/engine/open.ts";
import { HfTokenizer } from "../src/io/tokenizer.ts";
import type { ChatFn } from "../src/data/qa_openai.ts";
import { denoFs } from "../platform/deno_fs.ts";

/**
 * A chat function backed by a local model folder (and optional PEFT adapter): applies the model's
 * chat template, generates greedily (generation_config defaults) and returns the reply text.
 */
export async function localChat(
  dir: string,
  opts: { adapter?: string; maxNewTokens?: number },
): Promise<{ chat: ChatFn; dispose: () => void }> {
  const gpu = await createGpu();
  const m = await openModel(gpu, denoFs, dir, { adapter: opts.adapter });
  if (!m.tokenizer.hasChatTemplate) {
    m.dispose();
    gpu.destroy();
    throw new Error(`${dir} has no chat template: --generator model needs an instruct (chat) model`);
  }
  const chat: ChatFn = async (messages) => {
    const prompt = m.tokenizer.encodeChat(messages, { addGenerationPrompt: true });
    const { sequences } = await m.engine.generate({
      prompts: [prompt],
      maxNewTokens: opts.maxNewTokens ?? 512,
      sampling: m.defaults,
    });
    return sequences[0].text;
  };
  return {
    chat,
    dispose: () => {
      m.dispose();
      gpu.destroy();
    },
  };
}

/** Token counter for the merge report's length histogram (no special tokens added). */
export async function tokenCounter(dir: string): Promise<(text: string) => number> {
  const tok = await HfTokenizer.load(denoFs, dir);
  return (text) => tok.encode(text, { addSpecialTokens: false }).length;
}
