/**
 * Stop strings: the generation stops at the first token whose text completes one of them. The token
 * list keeps that token (as HF's stop_strings do); the text is cut before the stop string (as OpenAI's
 * `stop` does), so a client never sees it.
 */

/** What the engine needs from a tokenizer (HfTokenizer fits). */
export interface TokenDecoder {
  decode(ids: number[], opts?: { skipSpecialTokens?: boolean }): string;
}

/**
 * First stop in the decoded text of `ids`: how many tokens to keep and the text before the stop string;
 * null when none occurs.
 *
 * @example
 * findStop(tok, ids, ["\n\n"]); // { tokens: 7, text: "Fabry disease" }
 */
export function findStop(
  decoder: TokenDecoder,
  ids: number[],
  stops: string[],
): { tokens: number; text: string } | null {
  const earliest = (text: string) => {
    let at = -1;
    for (const s of stops) {
      const i = text.indexOf(s);
      if (i >= 0 && (at < 0 || i < at)) at = i;
    }
    return at;
  };
  const full = decoder.decode(ids, { skipSpecialTokens: true });
  const at = earliest(full);
  if (at < 0) return null;
  // The shortest prefix whose text already contains a stop string.
  for (let k = 1; k <= ids.length; k++) {
    const text = decoder.decode(ids.slice(0, k), { skipSpecialTokens: true });
    const i = earliest(text);
    if (i >= 0) return { tokens: k, text: text.slice(0, i) };
  }
  return { tokens: ids.length, text: full.slice(0, at) };
}
