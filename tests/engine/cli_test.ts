/**
 * `deno task generate` and `deno task tokenize` as a user runs them (subprocesses): --json output
 * equal to HF's goldens (raw prompt with BOS; chat messages through the template; an adapter), and
 * one-line errors for bad flags and folders.
 */
import { assert, assertEquals } from "../assert.ts";
import { type GenCase, golden, TESTDATA } from "../model/golden.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

async function cli(script: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}cli/${script}.ts`, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { XDG_RUNTIME_DIR: "/tmp" },
  });
  const r = await p.output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

Deno.test("generate --prompt --json: HF's prompt ids and greedy tokens (f32)", async () => {
  const r = await cli("generate", [
    "--model",
    `${TESTDATA}/mistral`,
    "--prompt",
    "Rare diseases affect fewer than 1 in 2000 people. A patient presents with fever 😀 and",
    "--max-new-tokens",
    "32",
    "--dtype",
    "f32",
    "--json",
  ]);
  assertEquals(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  const g = golden.mistral.generations[2] as GenCase;
  assertEquals(j.prompt_ids, g.prompt_ids);
  assertEquals(j.token_ids, g.generate);
  assert(typeof j.text === "string" && j.text.length > 0);
});

Deno.test("generate --adapter --messages: chat template ids as transformers', adapter applied", async () => {
  const file = await Deno.makeTempFile({ suffix: ".json" });
  await Deno.writeTextFile(file, JSON.stringify(golden.chat.messages));
  const args = ["--model", `${TESTDATA}/llama`, "--messages", file, "--max-new-tokens", "5", "--json"];
  const base = await cli("generate", [...args, "--dtype", "f32"]);
  const lora = await cli("generate", [...args, "--dtype", "f32", "--adapter", `${TESTDATA}/llama_lora`]);
  assertEquals(base.code, 0, base.err);
  assertEquals(lora.code, 0, lora.err);
  const b = JSON.parse(base.out), l = JSON.parse(lora.out);
  assertEquals(b.prompt_ids, golden.chat.ids);
  assertEquals(b.token_ids.length, 5);
  assert(JSON.stringify(b.token_ids) !== JSON.stringify(l.token_ids), "the adapter changes the output");
  const merged = await cli("generate", [
    ...args,
    "--dtype",
    "f32",
    "--adapter",
    `${TESTDATA}/llama_lora`,
    "--merge-adapter",
  ]);
  assertEquals(JSON.parse(merged.out).token_ids, l.token_ids, "merged adapter, same tokens");
  await Deno.remove(file);
});

Deno.test("tokenize --json: HF's ids without special tokens", async () => {
  const c = golden.tok_sentencepiece.cases[3];
  const r = await cli("tokenize", ["--model", `${TESTDATA}/tok_sentencepiece`, "--text", c.text, "--json"]);
  assertEquals(r.code, 0, r.err);
  assertEquals(JSON.parse(r.out).ids, c.ids);
});

Deno.test("bad flags and folders: exit 1 with one line on stderr, no stack trace", async () => {
  const cases: [string, string[], RegExp][] = [
    ["generate", ["--prompt", "hi"], /--model DIR is required/],
    ["generate", ["--model", `${TESTDATA}/llama`], /exactly one of --prompt or --messages/],
    [
      "generate",
      ["--model", "/nonexistent/m", "--prompt", "hi"],
      /model folder \/nonexistent\/m does not exist/,
    ],
    ["generate", ["--model", `${TESTDATA}/llama`, "--prompt", "hi", "--top-p", "2"], /--top-p 2: want/],
    ["generate", ["--model", `${TESTDATA}/llama`, "--messages", "/nonexistent.json"], /file not found/],
    ["generate", ["--model", `${TESTDATA}/llama`, "--prompt", "x", "--bogus"], /bogus/],
    [
      "generate",
      ["--model", `${TESTDATA}/llama`, "--prompt", "x", "--adapter", `${TESTDATA}/llama`],
      /adapter_config\.json/,
    ],
    ["tokenize", ["--model", `${TESTDATA}/llama`], /--text TEXT are required/],
    ["tokenize", ["--model", "/nonexistent/m", "--text", "a"], /does not exist/],
  ];
  for (const [script, args, want] of cases) {
    const r = await cli(script, args);
    assertEquals(r.code, 1, `${script} ${args.join(" ")}`);
    const first = r.err.trim().split("\n")[0];
    assert(first.startsWith("error: ") && want.test(first), `${script} ${args.join(" ")}: ${r.err}`);
    assert(!/\n\s+at /.test(r.err), `stack trace: ${r.err}`);
  }
});
