/**
 * sacreBLEU's "13a" (mteval-v13a) and "zh" tokenizers, reproduced rule for rule from sacrebleu 2.x
 * (tokenizers/tokenizer_13a.py, tokenizer_re.py, tokenizer_zh.py) so that our corpus BLEU sees the
 * very same tokens.
 * @module
 */
import { pySplit, pyStrip } from "./text.ts";

/** The regex post-tokenizer both tokenizers end with (sacrebleu's TokenizerRegexp). */
const RE_RULES: [RegExp, string][] = [
  // Symbols and ASCII punctuation except . , - ' (the class [{-~[-` -&(-+:-@/]).
  [/([{-~\[-`\x20-&(-+:-@\/])/gu, " $1 "],
  // Period and comma unless preceded by a digit.
  [/([^0-9])([.,])/gu, "$1 $2 "],
  // Period and comma unless followed by a digit.
  [/([.,])([^0-9])/gu, " $1 $2"],
  // Dash when preceded by a digit.
  [/([0-9])(-)/gu, "$1 $2 "],
];

function postTokenize(line: string): string {
  for (const [re, repl] of RE_RULES) line = line.replace(re, repl);
  return pySplit(line).join(" ");
}

/**
 * sacreBLEU "13a": drop `<skipped>`, join `-\n` line breaks, newlines to spaces, unescape the four
 * XML entities, then the regex rules; tokens end up separated by single spaces.
 * @example tokenize13a("Hello, world.") // "Hello , world ."
 */
export function tokenize13a(line: string): string {
  line = line.replaceAll("<skipped>", "").replaceAll("-\n", "").replaceAll("\n", " ");
  if (line.includes("&")) {
    line = line.replaceAll("&quot;", '"').replaceAll("&amp;", "&").replaceAll("&lt;", "<").replaceAll(
      "&gt;",
      ">",
    );
  }
  return postTokenize(` ${line} `);
}

/**
 * The code point ranges sacreBLEU's `zh` tokenizer treats as "Chinese characters", each split off
 * as its own token. Two of sacreBLEU's table entries are written `u'\u20000'` and `u'\u2f800'` in
 * its source: Python reads those as TWO-character strings ("\u2000" + "0"), and the string
 * comparison `start <= ch <= end` then covers U+2001..U+2A6D and U+2F81..U+2FA1 (general
 * punctuation such as “ ” … ℃, arrows, maths symbols…) instead of the CJK Extension B block. We
 * reproduce what sacreBLEU actually does, not what its comment says.
 */
const ZH_RANGES: [number, number][] = [
  [0x3400, 0x4db5],
  [0x4e00, 0x9fa5],
  [0x9fa6, 0x9fbb],
  [0xf900, 0xfa2d],
  [0xfa30, 0xfa6a],
  [0xfa70, 0xfad9],
  [0x2001, 0x2a6d], // the effective range of ('\u2000' '0', '\u2a6d' '6')
  [0x2f81, 0x2fa1], // the effective range of ('\u2f80' '0', '\u2fa1' 'd')
  [0xff00, 0xffef],
  [0x2e80, 0x2eff],
  [0x3000, 0x303f],
  [0x31c0, 0x31ef],
  [0x2f00, 0x2fdf],
  [0x2ff0, 0x2fff],
  [0x3100, 0x312f],
  [0x31a0, 0x31bf],
  [0xfe10, 0xfe1f],
  [0xfe30, 0xfe4f],
  [0x2600, 0x26ff],
  [0x2700, 0x27bf],
  [0x3200, 0x32ff],
  [0x3300, 0x33ff],
];

/** True when sacreBLEU's `zh` tokenizer splits `cp` off as a Chinese character. */
export function isSacreZhChar(cp: number): boolean {
  for (const [lo, hi] of ZH_RANGES) if (cp >= lo && cp <= hi) return true;
  return false;
}

/**
 * sacreBLEU "zh": strip, put spaces around every character of {@link isSacreZhChar}, then the same
 * regex rules as 13a (without 13a's entity and newline handling).
 * @example tokenizeZh("肌萎缩, ALS.") // "肌 萎 缩 , ALS ."
 */
export function tokenizeZh(line: string): string {
  let out = "";
  for (const ch of pyStrip(line)) {
    out += isSacreZhChar(ch.codePointAt(0)!) ? ` ${ch} ` : ch;
  }
  return postTokenize(out);
}
