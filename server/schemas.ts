/**
 * Request bodies (zod). /diagnose is strict (unknown fields are errors: a typo in `symptoms` must not
 * silently drop patient data); /v1/chat/completions accepts OpenAI's other fields so stock clients work,
 * but rejects the ones it cannot honour (n > 1, tools, non-zero penalties) instead of ignoring them.
 */
import { z } from "zod";

/** Longest accepted text field (characters); the body limit caps the whole request as well. */
export const MAX_FIELD_CHARS = 8000;

const field = (name: string) =>
  z.string({ error: `${name} must be a string` }).trim().min(1, `${name} must not be empty`).max(
    MAX_FIELD_CHARS,
    `${name} is longer than ${MAX_FIELD_CHARS} characters`,
  );

const maxTokens = z.number().int().min(1).max(1 << 20);
const temperature = z.number().min(0).max(2);

/** POST /diagnose. */
export const DiagnoseBody = z.strictObject({
  patient_info: field("patient_info"),
  symptoms: field("symptoms"),
  test_results: field("test_results"),
  max_tokens: maxTokens.optional(),
  temperature: temperature.optional(),
  stream: z.boolean().optional(),
});
export type DiagnoseBody = z.infer<typeof DiagnoseBody>;

const textPart = z.object({ type: z.literal("text"), text: z.string() });

const message = z.object({
  role: z.enum(["system", "user", "assistant", "developer"]),
  content: z.union([z.string(), z.array(textPart).min(1)]),
  name: z.string().optional(),
});

const zeroOnly = (name: string) =>
  z.number().refine((x) => x === 0, `${name} is not supported (only 0)`).optional().nullable();

/** POST /v1/chat/completions (the subset webtune honours). */
export const ChatBody = z.object({
  model: z.string().optional(),
  messages: z.array(message).min(1, "messages must not be empty"),
  max_tokens: maxTokens.optional().nullable(),
  max_completion_tokens: maxTokens.optional().nullable(),
  temperature: temperature.optional().nullable(),
  top_p: z.number().gt(0).max(1).optional().nullable(),
  seed: z.number().int().optional().nullable(),
  stop: z.union([z.string().min(1), z.array(z.string().min(1)).max(4)]).optional().nullable(),
  stream: z.boolean().optional().nullable(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).optional().nullable(),
  n: z.literal(1, "only n = 1 is supported").optional().nullable(),
  frequency_penalty: zeroOnly("frequency_penalty"),
  presence_penalty: zeroOnly("presence_penalty"),
  tools: z.array(z.unknown()).max(0, "tools are not supported").optional().nullable(),
  logprobs: z.literal(false, "logprobs are not supported").optional().nullable(),
  user: z.string().optional(),
});
export type ChatBody = z.infer<typeof ChatBody>;

/** The first issue of a failed parse as (message, param) — param is the JSON path, e.g. "messages.0.role". */
export function firstIssue(e: z.ZodError): { message: string; param: string | null } {
  const i = e.issues[0];
  const param = i?.path.length ? i.path.join(".") : null;
  return { message: param ? `${param}: ${i.message}` : i?.message ?? "invalid body", param };
}
