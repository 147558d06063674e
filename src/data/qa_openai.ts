/**
 * QA generation through any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, llama.cpp
 * server, …): one request per abstract, a bounded number in flight, retries on 429 / 5xx / network
 * errors. The model answers with a JSON array of {question, answer}; anything else is counted as a
 * failure with its pmid and reason.
 */
import { z } from "zod";
import { fetchWithRetry, type RetryOptions } from "./http.ts";
import type { PubmedRecord } from "./pubmed_xml.ts";
import type { QaRecord } from "./qa_rules.ts";

/** Options of {@link openAiQa}. */
export interface OpenAiQaOptions {
  /** e.g. https://api.openai.com/v1 (the path /chat/completions is appended). */
  baseUrl: string;
  model: string;
  apiKey?: string;
  /** Requests in flight at once (default 4). */
  concurrency?: number;
  /** Pairs asked for per abstract (default 3). */
  pairsPerAbstract?: number;
  temperature?: number;
  retry?: Pick<RetryOptions, "retries" | "baseDelayMs" | "maxDelayMs">;
  fetch?: typeof fetch;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

const Pairs = z.array(z.object({ question: z.string().min(1), answer: z.string().min(1) })).min(1);

/** The prompt sent for one abstract. */
export function qaMessages(r: PubmedRecord, pairs: number): { role: "system" | "user"; content: string }[] {
  const body = r.abstract.map((s) => (s.label ? `${s.label}: ${s.text}` : s.text)).join("\n");
  return [
    {
      role: "system",
      content:
        `You write question-answer pairs for training a medical assistant. Reply with only a JSON array of ` +
        `at most ${pairs} objects {"question": string, "answer": string}. Answer only from the abstract and keep ` +
        `numbers and units exactly as written.`,
    },
    { role: "user", content: `Title: ${r.title}\nPMID: ${r.pmid}\n\n${body}` },
  ];
}

/** Pulls the JSON array out of a reply (tolerates ```json fences and text around it). */
export function parsePairs(content: string): { question: string; answer: string }[] {
  const fenced = /```(?:json)?\s*([\s\S]*?)```/.exec(content)?.[1] ?? content;
  const start = fenced.indexOf("["), end = fenced.lastIndexOf("]");
  if (start < 0 || end < start) throw new Error("reply holds no JSON array");
  let json: unknown;
  try {
    json = JSON.parse(fenced.slice(start, end + 1));
  } catch (e) {
    throw new Error(`reply is not valid JSON: ${(e as Error).message}`);
  }
  const r = Pairs.safeParse(json);
  if (!r.success) {
    throw new Error(
      `reply has the wrong shape: ${r.error.issues[0].message} at ${r.error.issues[0].path.join(".")}`,
    );
  }
  return r.data;
}

/** A chat model as QA generation needs it: messages in, reply text out. */
export type ChatFn = (messages: { role: "system" | "user"; content: string }[]) => Promise<string>;

/** Options of {@link chatQa}. */
export interface ChatQaOptions {
  /** Calls in flight at once (default 4; a local GPU engine wants 1). */
  concurrency?: number;
  /** Pairs asked for per abstract (default 3). */
  pairsPerAbstract?: number;
  /** Recorded as each item's `source`, e.g. "openai:gpt-4o" or "model:out/medical". */
  source: string;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Generates pairs for every record with any chat model, keeping input order; a reply that is not a
 * JSON array of pairs is listed in `failed` with its pmid, never dropped silently.
 *
 * @example
 * const { items } = await chatQa(records, (m) => engineReply(m), { source: "model:out/medical", concurrency: 1 });
 */
export async function chatQa(
  records: PubmedRecord[],
  chat: ChatFn,
  o: ChatQaOptions,
): Promise<{ items: QaRecord[]; failed: { pmid: string; error: string }[] }> {
  const n = Math.max(1, Math.floor(o.concurrency ?? 4));
  const perRecord: QaRecord[][] = records.map(() => []);
  const failed: { pmid: string; error: string }[] = [];
  let next = 0, done = 0;

  const one = async (i: number) => {
    const r = records[i];
    try {
      const content = await chat(qaMessages(r, o.pairsPerAbstract ?? 3));
      perRecord[i] = parsePairs(content).map((p) => ({
        instruction: p.question,
        input: "",
        output: p.answer,
        pmid: r.pmid,
        source: o.source,
        rule: "model" as const,
      }));
    } catch (e) {
      if (o.signal?.aborted) throw e;
      failed.push({ pmid: r.pmid, error: (e as Error).message });
    }
    o.onProgress?.(++done, records.length);
  };
  const worker = async () => {
    while (next < records.length) await one(next++);
  };
  await Promise.all(Array.from({ length: Math.min(n, records.length) }, worker));
  return { items: perRecord.flat(), failed };
}

/**
 * Generates pairs for every record through an OpenAI-compatible endpoint, keeping input order.
 *
 * @example
 * const { items, failed } = await openAiQa(records, { baseUrl: "http://127.0.0.1:8000/v1", model: "qwen2.5-7b" });
 */
export function openAiQa(
  records: PubmedRecord[],
  o: OpenAiQaOptions,
): Promise<{ items: QaRecord[]; failed: { pmid: string; error: string }[] }> {
  const url = `${o.baseUrl.replace(/\/+$/, "")}/chat/completions`;
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (o.apiKey) headers.Authorization = `Bearer ${o.apiKey}`;
  const chat: ChatFn = (messages) =>
    fetchWithRetry(url, {
      method: "POST",
      headers,
      body: JSON.stringify({ model: o.model, temperature: o.temperature ?? 0.2, messages }),
    }, async (res) => {
      const j = await res.json() as { choices?: { message?: { content?: string } }[] };
      const c = j.choices?.[0]?.message?.content;
      if (typeof c !== "string") throw new Error("response has no choices[0].message.content");
      return c;
    }, { ...o.retry, fetch: o.fetch, signal: o.signal });
  return chatQa(records, chat, {
    concurrency: o.concurrency,
    pairsPerAbstract: o.pairsPerAbstract,
    source: `openai:${o.model}`,
    signal: o.signal,
    onProgress: o.onProgress,
  });
}
