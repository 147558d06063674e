/**
 * src/io's HfTokenizer against HF tokenizers (golden.json): ids with and without special tokens, and
 * decoding, for a Llama-3-style byte-level BPE and a Llama-2/Mistral-style BPE with byte fallback, on
 * mixed English / Chinese / emoji / whitespace text; and the chat template against transformers'.
 */
import { assertEquals } from "../assert.ts";
import { denoFs } from "../../platform/deno_fs.ts";
import { HfTokenizer } from "../../src/io/tokenizer.ts";
import { golden, TESTDATA } from "./golden.ts";

interface TokCase {
  text: string;
  ids: number[];
  ids_special: number[];
  decoded: string;
}

for (const name of ["tok_bytelevel", "tok_sentencepiece"]) {
  Deno.test(`${name}: ids and decoding identical to HF tokenizers`, async () => {
    const tok = await HfTokenizer.load(denoFs, `${TESTDATA}/${name}`);
    for (const c of golden[name].cases as TokCase[]) {
      const what = `${name} ${JSON.stringify(c.text)}`;
      assertEquals(tok.encode(c.text, { addSpecialTokens: false }), c.ids, what);
      assertEquals(
        tok.encode(c.text, { addSpecialTokens: true }),
        c.ids_special,
        `${what} with special tokens`,
      );
      assertEquals(tok.decode(c.ids, { skipSpecialTokens: true }), c.decoded, `${what} decoded`);
    }
  });
}

Deno.test("chat template: same text and ids as transformers' apply_chat_template", async () => {
  const tok = await HfTokenizer.load(denoFs, `${TESTDATA}/llama`);
  const text = tok.applyChatTemplate(golden.chat.messages, { addGenerationPrompt: true });
  assertEquals(text, golden.chat.text);
  assertEquals(tok.encode(text, { addSpecialTokens: false }), golden.chat.ids);
});
