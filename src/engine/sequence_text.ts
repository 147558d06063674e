/**
 * The text side of one generated sequence for streaming: the decoded text, the first stop string (the
 * token list is cut after the token that completes it, the text before it), and the part of the text
 * that is safe to send now — a trailing U+FFFD (half of a multi-byte character) and a tail that could
 * still become a stop string are held back until the next chunk or the end.
 */
import { findStop, type TokenDecoder } from "./stop.ts";

/** Decoded text and stream position of one sequence (see the module comment). */
export class SequenceText {
  readonly #decoder?: TokenDecoder;
  readonly #stops: string[];
  /** Full text so far (cut before a stop string once one occurred). */
  text = "";
  #sent = 0;

  constructor(decoder: TokenDecoder | undefined, stops: string[]) {
    this.#decoder = decoder;
    this.#stops = stops;
  }

  /**
   * Re-decodes `ids` (all generated tokens). Returns the number of tokens to keep when a stop string
   * occurred, else null.
   *
   * @example
   * const cut = st.update(tokens); if (cut !== null) tokens.length = cut;
   */
  update(ids: number[]): number | null {
    if (!this.#decoder) return null;
    const hit = this.#stops.length ? findStop(this.#decoder, ids, this.#stops) : null;
    if (hit) {
      this.text = hit.text;
      return hit.tokens;
    }
    this.text = this.#decoder.decode(ids, { skipSpecialTokens: true });
    return null;
  }

  /** The text not sent yet that is stable (everything when `final`); marks it sent. */
  delta(final: boolean): string {
    const stable = final ? this.text : holdBack(this.text.replace(/\uFFFD+$/, ""), this.#stops);
    const out = stable.length > this.#sent ? stable.slice(this.#sent) : "";
    this.#sent = Math.max(this.#sent, stable.length);
    return out;
  }
}

/** `text` without its longest suffix that is a proper prefix of a stop string. */
export function holdBack(text: string, stops: string[]): string {
  let cut = 0;
  for (const s of stops) {
    for (let n = Math.min(s.length - 1, text.length); n > cut; n--) {
      if (text.endsWith(s.slice(0, n))) {
        cut = n;
        break;
      }
    }
  }
  return text.slice(0, text.length - cut);
}
