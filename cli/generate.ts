/**
 * `deno task generate --model DIR [--adapter DIR [--merge-adapter]] (--prompt TEXT | --messages JSON_FILE)
 *   [--max-new-tokens N] [--temperature T] [--top-p P] [--top-k K] [--repetition-penalty R] [--seed S]
 *   [--stop STR ...] [--dtype f16|f32] [--json] [--gpu-debug]`
 *
 * --prompt is raw text (the tokenizer's own special tokens, e.g. Llama's BOS, are added; no chat
 * template); --messages is a JSON file with [{ role, content }, ...] rendered with the model's chat
 * template and the generation prompt. Text streams to stdout as it is generated; --json prints one
 * object { prompt_ids, token_ids, text, finish_reason } at the end instead. Sampling defaults come from
 * generation_config.json; --temperature > 0 turns sampling on, 0 means greedy.
 */
import { createGpu } from "../src/gpu/mod.ts";
import { openModel } from "../src/engine/open.ts";
import type { ChatMessage } from "../src/io/tokenizer.ts";
import { denoFs } from "../platform/deno_fs.ts";
import { fail as failLine, numberFlag as num, parseFlags } from "./args.ts";

const USAGE =
  "usage: deno task generate --model DIR [--adapter DIR] (--prompt TEXT | --messages JSON_FILE) " +
  "[--max-new-tokens N] [--temperature T] [--top-p P] [--top-k K] [--repetition-penalty R] [--seed S] " +
  "[--stop STR] [--dtype f16|f32] [--json] [--gpu-debug]";

let progressOpen = false;

/** `error: MSG`, exit 1, below the weight-loading progress line when one is open. */
function fail(msg: string): never {
  failLine(msg, progressOpen);
}

async function readMessages(path: string): Promise<ChatMessage[]> {
  let raw: unknown;
  try {
    raw = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    fail(
      `--messages ${path}: ${e instanceof Deno.errors.NotFound ? "file not found" : (e as Error).message}`,
    );
  }
  const list = Array.isArray(raw) ? raw : (raw as { messages?: unknown })?.messages;
  if (!Array.isArray(list) || list.length === 0) {
    fail(`--messages ${path}: want a non-empty JSON array of { role, content }`);
  }
  list.forEach((m, i) => {
    if (!["system", "user", "assistant"].includes(m?.role) || typeof m?.content !== "string") {
      fail(`--messages ${path}: message ${i} needs role system|user|assistant and a string content`);
    }
  });
  return list as ChatMessage[];
}

async function main(): Promise<void> {
  const { values: a } = parseFlags({
    args: Deno.args,
    options: {
      model: { type: "string" },
      adapter: { type: "string" },
      "merge-adapter": { type: "boolean" },
      prompt: { type: "string" },
      messages: { type: "string" },
      "max-new-tokens": { type: "string" },
      temperature: { type: "string" },
      "top-p": { type: "string" },
      "top-k": { type: "string" },
      "repetition-penalty": { type: "string" },
      seed: { type: "string" },
      stop: { type: "string", multiple: true },
      dtype: { type: "string" },
      json: { type: "boolean" },
      "gpu-debug": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  }, USAGE);
  if (a.help) return void console.log(USAGE);
  if (!a.model) fail(`--model DIR is required\n${USAGE}`);
  if ((a.prompt === undefined) === (a.messages === undefined)) {
    fail(`give exactly one of --prompt or --messages\n${USAGE}`);
  }
  if (a.dtype && a.dtype !== "f16" && a.dtype !== "f32") fail(`--dtype ${a.dtype}: want f16 or f32`);
  const maxNew = num(
    "max-new-tokens",
    a["max-new-tokens"],
    (x) => Number.isInteger(x) && x >= 1,
    "a positive integer",
  );
  const temperature = num("temperature", a.temperature, (x) => x >= 0, "a number ≥ 0");
  const topP = num("top-p", a["top-p"], (x) => x > 0 && x <= 1, "a number in (0, 1]");
  const topK = num("top-k", a["top-k"], (x) => Number.isInteger(x) && x >= 0, "an integer ≥ 0");
  const penalty = num("repetition-penalty", a["repetition-penalty"], (x) => x > 0, "a number > 0");
  const seed = num(
    "seed",
    a.seed,
    (x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32,
    "an integer in [0, 2^32)",
  );
  const messages = a.messages !== undefined ? await readMessages(a.messages) : null;

  const gpu = await createGpu({ debug: a["gpu-debug"] ?? false });
  const m = await openModel(gpu, denoFs, a.model, {
    adapter: a.adapter,
    mergeAdapter: a["merge-adapter"] ?? false,
    dtype: a.dtype as "f16" | "f32" | undefined,
    onProgress: (done, total) => {
      // A progress line only on a terminal: logs and pipes get the summary line alone.
      if (a.json || !Deno.stderr.isTerminal()) return;
      Deno.stderr.writeSync(new TextEncoder().encode(`\rloading weights ${done}/${total}`));
      progressOpen = done < total;
    },
  });
  if (!a.json && Deno.stderr.isTerminal()) console.error("");
  progressOpen = false;
  if (!a.json) {
    const c = m.model.config;
    console.error(
      `${c.modelType} ${c.numLayers} layers, hidden ${c.hiddenSize}, ${m.model.dtype} weights` +
        (m.adapter ? `, adapter ${m.adapter.name} (${m.adapter.modules.length} modules)` : ""),
    );
  }
  const promptIds = messages
    ? m.tokenizer.encode(m.tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true }), {
      addSpecialTokens: false,
    })
    : m.tokenizer.encode(a.prompt!, { addSpecialTokens: true });
  if (promptIds.length === 0) fail("the prompt encodes to no tokens");
  const sampling = { ...m.defaults };
  if (temperature !== undefined) Object.assign(sampling, { temperature, doSample: temperature > 0 });
  if (topP !== undefined) sampling.topP = topP;
  if (topK !== undefined) sampling.topK = topK;
  if (penalty !== undefined) sampling.repetitionPenalty = penalty;
  if (seed !== undefined) sampling.seed = seed;
  const out = new TextEncoder();
  const { sequences } = await m.engine.generate(
    {
      prompts: [promptIds],
      maxNewTokens: maxNew ?? m.generationConfig.maxNewTokens ?? 256,
      sampling,
      stopStrings: a.stop,
    },
    a.json ? undefined : (c) => void Deno.stdout.writeSync(out.encode(c.text)),
  );
  const s = sequences[0];
  if (a.json) {
    console.log(JSON.stringify({
      prompt_ids: promptIds,
      token_ids: s.tokenIds,
      text: s.text,
      finish_reason: s.finishReason,
    }));
  } else console.log();
  m.dispose();
}

try {
  await main();
} catch (e) {
  fail((e as Error).message);
}
