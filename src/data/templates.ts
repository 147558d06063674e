/**
 * Chat templates for SFT and generation, in LLaMA-Factory's model: a template is a few text slots
 * (system / user / assistant, each with `{{content}}`), an optional BOS prefix and EOS suffix, stop
 * words and a default system prompt. `{{bos_token}}` / `{{eos_token}}` in a slot stand for the
 * tokenizer's own BOS / EOS ids (inserted as ids, never re-tokenised from text). A conversation is
 * encoded turn by turn as (prompt, response) pairs, so the loss mask is exact: labels are −100 on
 * prompt tokens (unless trainOnPrompt) and the response's end-of-turn token is in the labels.
 *
 * Templates with `fields` (medical_inquiry) build the user turn from named record fields, as the seed's
 * `register_template(prompt_format=…, response_key="diagnosis")`.
 */
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import defaultT from "./template_files/default.json" with { type: "json" };
import alpacaT from "./template_files/alpaca.json" with { type: "json" };
import chatmlT from "./template_files/chatml.json" with { type: "json" };
import qwenT from "./template_files/qwen.json" with { type: "json" };
import llama3T from "./template_files/llama3.json" with { type: "json" };
import llama2T from "./template_files/llama2.json" with { type: "json" };
import mistralT from "./template_files/mistral.json" with { type: "json" };
import medicalT from "./template_files/medical_inquiry.json" with { type: "json" };

/** One chat turn (same shape as src/io's ChatMessage). */
export interface Message {
  role: "system" | "user" | "assistant";
  content: string;
}

/** What encoding needs from a tokenizer; src/io's HfTokenizer fits it. */
export interface TemplateTokenizer {
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  readonly bosTokenId?: number;
  readonly eosTokenIds: number[];
  tokenToId(token: string): number | undefined;
}

const slot = z.string();
const withContent = slot.refine((s) => s.includes("{{content}}"), "must contain {{content}}");

/** The user-facing template description (also the shape of a template file). */
export const TemplateSpec = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, "letters, digits, _ . - only"),
  /** Rendered once before the first user turn (or inside it when `systemInline`). */
  system: withContent.optional(),
  /** Put the rendered system text at the start of the first user content (llama2, mistral). */
  systemInline: z.boolean().default(false),
  /** The prompt side of a turn; ends with the assistant header where the format has one. */
  user: withContent,
  /** The response side of a turn, including any end-of-turn marker (`<|im_end|>`). */
  assistant: withContent,
  /** Text before the first turn, e.g. "<|begin_of_text|>" or "{{bos_token}}". */
  bos: slot.optional(),
  /** Appended to every assistant turn (and trained on), e.g. "{{eos_token}}". */
  eos: slot.optional(),
  /** Strings that end generation besides the tokenizer's EOS. */
  stopWords: z.array(z.string()).default([]),
  defaultSystem: z.string().optional(),
  /** Record fields → the user turn: `prompt` with `{{field}}` placeholders; `response` a field name. */
  fields: z.strictObject({ prompt: z.string(), response: z.string() }).optional(),
});
/** A registered template. */
export type Template = z.output<typeof TemplateSpec>;
export type TemplateInput = z.input<typeof TemplateSpec>;

type Part = string | { special: "bos" | "eos" };
const registry = new Map<string, Template>();

/**
 * Registers (or replaces) a template; returns the validated template.
 *
 * @example
 * registerTemplate({ name: "medical_inquiry", user: "{{content}}", assistant: "{{content}}", eos: "{{eos_token}}",
 *   fields: { prompt: "患者信息:{{patient_info}}\n症状描述:{{symptoms}}\n检查结果:{{test_results}}\n\n诊断建议:", response: "diagnosis" } });
 */
export function registerTemplate(spec: TemplateInput, source = "registerTemplate"): Template {
  const r = TemplateSpec.safeParse(spec);
  const name = typeof (spec as { name?: unknown })?.name === "string" ? ` "${spec.name}"` : "";
  if (!r.success) {
    const iss = r.error.issues[0];
    throw new Error(`${source}: template${name}: ${iss.path.join(".") || "(template)"}: ${iss.message}`);
  }
  if (r.data.systemInline && /\{\{(bos|eos)_token\}\}/.test(r.data.system ?? "")) {
    throw new Error(
      `${source}: template${name}: system: an inline system slot cannot hold {{bos_token}}/{{eos_token}}`,
    );
  }
  registry.set(r.data.name, r.data);
  return r.data;
}

/** The registered template of that name; an unknown name lists the known ones. */
export function getTemplate(name: string): Template {
  const t = registry.get(name);
  if (!t) throw new Error(`unknown template "${name}" (known: ${[...registry.keys()].join(", ")})`);
  return t;
}

/** Names of the registered templates. */
export function templateNames(): string[] {
  return [...registry.keys()];
}

/**
 * Parses a template file (JSON or YAML) in the {@link TemplateSpec} shape, or in the seed's shape
 * (`prompt_format` with `{field}` placeholders, `response_key`), and registers it.
 */
export function registerTemplateFile(text: string, file: string): Template {
  let v: Record<string, unknown>;
  try {
    v = parseYaml(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON/YAML: ${(e as Error).message.split("\n")[0]}`);
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error(`${file}: expected an object`);
  if ("prompt_format" in v) {
    const { prompt_format, response_key, ...rest } = v;
    if (typeof prompt_format !== "string" || typeof response_key !== "string") {
      throw new Error(`${file}: prompt_format and response_key must be strings`);
    }
    // Python's str.format fields {x} → {{x}}; the seed indents the format inside a triple-quoted string.
    const prompt = prompt_format.replace(/\{(\w+)\}/g, "{{$1}}").split("\n").map((l) => l.trim()).join("\n")
      .trim();
    v = { user: "{{content}}", assistant: "{{content}}", eos: "{{eos_token}}", ...rest };
    v.fields = { prompt, response: response_key };
  }
  return registerTemplate(v as TemplateInput, file);
}

for (const t of [defaultT, alpacaT, chatmlT, qwenT, llama3T, llama2T, mistralT, medicalT]) {
  registerTemplate(t as TemplateInput, `src/data/template_files/${t.name}.json`);
}

/** Splits a slot into text and BOS/EOS markers, with `{{content}}` filled in (content is never parsed). */
function fill(s: string | undefined, content = ""): Part[] {
  if (!s) return [];
  const out: Part[] = [];
  for (const [i, seg] of s.split("{{content}}").entries()) {
    if (i > 0) out.push(content);
    for (const [j, piece] of seg.split(/(\{\{(?:bos|eos)_token\}\})/).entries()) {
      if (j % 2 === 1) out.push({ special: piece.startsWith("{{bos") ? "bos" : "eos" });
      else out.push(piece);
    }
  }
  return merge(out);
}

/** Joins neighbouring strings so text is tokenised in one piece, as a whole rendered string would be. */
function merge(parts: Part[]): Part[] {
  const out: Part[] = [];
  for (const p of parts) {
    if (p === "") continue;
    if (typeof p === "string" && typeof out[out.length - 1] === "string") out[out.length - 1] += p;
    else out.push(p);
  }
  return out;
}

/** Fills `{{field}}` placeholders from a record; a missing field is an error naming it. */
export function fillFields(prompt: string, record: Record<string, unknown>): string {
  return prompt.replace(/\{\{(\w+)\}\}/g, (_, k: string) => {
    const v = record[k];
    if (typeof v !== "string" && typeof v !== "number") {
      throw new Error(`field "${k}" is missing or not a string`);
    }
    return String(v);
  });
}

/**
 * The conversation of an input: messages as they are; a record with the template's fields (user turn
 * from `fields.prompt`, response from `fields.response`); or an alpaca record (instruction + input →
 * user, output → assistant, optional system and history).
 */
export function toMessages(t: Template, input: Message[] | Record<string, unknown>): Message[] {
  if (Array.isArray(input)) return input;
  if (t.fields && t.fields.response in input) {
    const msgs: Message[] = [];
    if (typeof input.system === "string" && input.system) {
      msgs.push({ role: "system", content: input.system });
    }
    msgs.push({ role: "user", content: fillFields(t.fields.prompt, input) });
    msgs.push({ role: "assistant", content: String(input[t.fields.response]) });
    return msgs;
  }
  if (Array.isArray(input.messages)) return input.messages as Message[];
  if (typeof input.instruction === "string" && typeof input.output === "string") {
    const msgs: Message[] = [];
    if (typeof input.system === "string" && input.system) {
      msgs.push({ role: "system", content: input.system });
    }
    for (const [q, a] of (input.history as [string, string][] | undefined) ?? []) {
      msgs.push({ role: "user", content: q }, { role: "assistant", content: a });
    }
    const query = typeof input.input === "string" && input.input ? `\n${input.input}` : "";
    msgs.push({ role: "user", content: input.instruction + query }, {
      role: "assistant",
      content: input.output,
    });
    return msgs;
  }
  throw new Error(
    `template ${t.name}: cannot read the record: no messages, no instruction/output${
      t.fields ? `, no ${t.fields.response}` : ""
    }`,
  );
}

/**
 * The (prompt, response) parts of every turn. With `generation`, the conversation ends with a user turn
 * and the last pair's response is empty.
 */
function turnParts(
  t: Template,
  messages: Message[],
  generation: boolean,
): { source: Part[]; target: Part[] }[] {
  let rest = messages;
  let system = t.defaultSystem ?? "";
  if (rest[0]?.role === "system") (system = rest[0].content, rest = rest.slice(1));
  const want = generation ? rest.length % 2 === 1 : rest.length % 2 === 0;
  if (rest.length === 0 || !want) {
    throw new Error(
      `template ${t.name}: expected alternating user/assistant turns ending with ${
        generation ? "user" : "assistant"
      }`,
    );
  }
  if (system && !t.system) {
    throw new Error(`template ${t.name} has no system slot, but a system prompt was given`);
  }
  const pairs: { source: Part[]; target: Part[] }[] = [];
  for (let i = 0; i < rest.length; i += 2) {
    const [u, a] = [rest[i], rest[i + 1]];
    if (u.role !== "user" || (a && a.role !== "assistant")) {
      throw new Error(
        `template ${t.name}: turn ${i + 1} should be user then assistant, got ${u.role}, ${a?.role}`,
      );
    }
    const source: Part[] = [];
    let content = u.content;
    if (i === 0) {
      source.push(...fill(t.bos));
      if (system && t.systemInline) content = t.system!.replaceAll("{{content}}", () => system) + content;
      else if (system) source.push(...fill(t.system, system));
    }
    source.push(...fill(t.user, content));
    const target = a ? [...fill(t.assistant, a.content), ...fill(t.eos)] : [];
    pairs.push({ source: merge(source), target: merge(target) });
  }
  return pairs;
}

function encodeParts(tok: TemplateTokenizer, parts: Part[]): number[] {
  const ids: number[] = [];
  for (const p of parts) {
    if (typeof p === "string") ids.push(...tok.encode(p, { addSpecialTokens: false }));
    else if (p.special === "bos") {
      // Like HF templates where bos_token is None: nothing (Qwen has no BOS).
      if (tok.bosTokenId !== undefined) ids.push(tok.bosTokenId);
    } else {
      if (!tok.eosTokenIds.length) {
        throw new Error("the tokenizer has no EOS token, but the template needs one");
      }
      ids.push(tok.eosTokenIds[0]);
    }
  }
  return ids;
}

/**
 * The conversation as text, BOS/EOS written as the given token strings (compare with a model's own
 * chat template; show prompts). With `addGenerationPrompt` the messages end with a user turn.
 */
export function renderText(
  t: Template,
  messages: Message[],
  o: { addGenerationPrompt?: boolean; bosToken?: string; eosToken?: string } = {},
): string {
  const str = (ps: Part[]) =>
    ps.map((p) => typeof p === "string" ? p : p.special === "bos" ? o.bosToken ?? "" : o.eosToken ?? "").join(
      "",
    );
  return turnParts(t, messages, !!o.addGenerationPrompt).map((p) => str(p.source) + str(p.target)).join("");
}

/**
 * LLaMA-Factory's `infer_seqlen`: how much of a (source, target) pair fits in `cutoff` tokens — a short
 * side is kept whole, otherwise both are cut in proportion.
 */
export function inferSeqlen(sourceLen: number, targetLen: number, cutoff: number): [number, number] {
  let maxTarget: number;
  if (targetLen * 2 < cutoff) maxTarget = cutoff;
  else if (sourceLen * 2 < cutoff) maxTarget = cutoff - sourceLen;
  else maxTarget = Math.floor(cutoff * (targetLen / (sourceLen + targetLen)));
  const newTarget = Math.min(maxTarget, targetLen);
  const newSource = Math.min(Math.max(cutoff - newTarget, 0), sourceLen);
  return [newSource, newTarget];
}

/** Token ids and labels of one example (labels −100 where no loss is taken). */
export interface Encoded {
  inputIds: number[];
  labels: number[];
}

/** Label value of positions without loss (PyTorch's ignore_index). */
export const IGNORE_INDEX = -100;

/**
 * Encodes a conversation (or a record, see {@link toMessages}) for SFT. Turns are cut to `cutoffLen`
 * tokens as LLaMA-Factory does (turn by turn with {@link inferSeqlen}; later turns dropped).
 *
 * @example
 * const { inputIds, labels } = encodeConversation(getTemplate("qwen"), tok, [
 *   { role: "user", content: "你好" }, { role: "assistant", content: "你好!" }]);
 */
export function encodeConversation(
  t: Template,
  tok: TemplateTokenizer,
  input: Message[] | Record<string, unknown>,
  o: { trainOnPrompt?: boolean; cutoffLen?: number } = {},
): Encoded {
  const cutoff = o.cutoffLen ?? Infinity;
  const inputIds: number[] = [], labels: number[] = [];
  for (const pair of turnParts(t, toMessages(t, input), false)) {
    if (inputIds.length >= cutoff) break;
    let source = encodeParts(tok, pair.source), target = encodeParts(tok, pair.target);
    if (inputIds.length + source.length + target.length > cutoff) {
      const [s, tl] = inferSeqlen(source.length, target.length, cutoff - inputIds.length);
      source = source.slice(0, s);
      target = target.slice(0, tl);
    }
    inputIds.push(...source, ...target);
    labels.push(...(o.trainOnPrompt ? source : source.map(() => IGNORE_INDEX)), ...target);
  }
  return { inputIds, labels };
}

/** Prompt ids for generation: the conversation (ending with a user turn) and the assistant header. */
export function encodePrompt(t: Template, tok: TemplateTokenizer, messages: Message[]): number[] {
  return turnParts(t, messages, true).flatMap((
    p,
  ) => [...encodeParts(tok, p.source), ...encodeParts(tok, p.target)]);
}

/** Ids that end generation: the tokenizer's EOS ids and every stop word that is one token. */
export function stopTokenIds(t: Template, tok: TemplateTokenizer): number[] {
  const ids = new Set(tok.eosTokenIds);
  for (const w of t.stopWords) {
    const id = tok.tokenToId(w);
    if (id !== undefined) ids.add(id);
  }
  return [...ids];
}
