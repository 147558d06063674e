/**
 * The text side of serving, on top of the {@link Scheduler}: chat messages through the model's chat
 * template, /diagnose fields through the medical_inquiry template, request defaults and validation,
 * and errors as data (status, type, param) so they cross a Worker boundary (Comlink keeps only an
 * Error's message) and the HTTP layer maps them without guessing.
 *
 * `ModelServer` implements {@link ServeBackend}; server/worker_client.ts implements the same interface
 * over a Worker that hosts a ModelServer, so the HTTP app runs against either.
 */
import type { ChatMessage, ChatTemplateOptions } from "../io/tokenizer.ts";
import {
  encodePrompt,
  fillFields,
  getTemplate,
  stopTokenIds,
  type TemplateTokenizer,
} from "../data/templates.ts";
import type { LlamaModel } from "../model/llama.ts";
import type { OpenedModel } from "./open.ts";
import type { TokenDecoder } from "./stop.ts";
import {
  QueueFullError,
  Scheduler,
  type SchedulerEvent,
  type SchedulerOptions,
  type SchedulerStats,
} from "./scheduler.ts";
import type { SamplingParams } from "./sampling.ts";

/** What to generate from. */
export type ServePrompt =
  | { kind: "chat"; messages: ChatMessage[] }
  | { kind: "diagnose"; patient_info: string; symptoms: string; test_results: string };

/** A generation request in HTTP terms (already validated for shape by the app's zod schemas). */
export interface ServeRequest {
  prompt: ServePrompt;
  /** Default: min(defaultMaxTokens, room left in the context). */
  maxTokens?: number;
  /** 0 = greedy; default: generation_config.json. */
  temperature?: number;
  topP?: number;
  seed?: number;
  stop?: string[];
  timeoutMs?: number;
}

/** An error with its HTTP meaning. */
export interface ServeError {
  status: 400 | 404 | 429 | 500 | 503;
  type: string;
  message: string;
  param: string | null;
}

/** Events of one request: deltas, then one done or error. */
export type ServeEvent =
  | { type: "delta"; text: string; tokens: number }
  | {
    type: "done";
    text: string;
    finishReason: "stop" | "length";
    promptTokens: number;
    completionTokens: number;
  }
  | { type: "error"; error: ServeError };

/** Model facts for /v1/models and /health. */
export interface BackendInfo {
  model: string;
  contextLength: number;
  slots: number;
  chatTemplate: boolean;
  adapter: string | null;
}

/** Live numbers for /metrics: the scheduler's. */
export type BackendStats = SchedulerStats;

/** What the HTTP app needs from an engine, wherever it runs. */
export interface ServeBackend {
  info(): Promise<BackendInfo>;
  /** Starts a request; `{ error }` when it is refused up front (bad prompt, queue full). */
  submit(
    req: ServeRequest,
    onEvent: (e: ServeEvent) => void,
  ): Promise<{ id: number } | { error: ServeError }>;
  /** Stops a request and frees its slot (a no-op when it has finished). */
  cancel(id: number): Promise<void>;
  stats(): Promise<BackendStats>;
}

/** What serving needs from a tokenizer (HfTokenizer fits; benches use a stand-in for random models). */
export interface ServeTokenizer extends TemplateTokenizer, TokenDecoder {
  readonly hasChatTemplate: boolean;
  encodeChat(messages: ChatMessage[], opts?: ChatTemplateOptions): number[];
}

/** A model ready to serve: weights, tokenizer, EOS ids and sampling defaults. */
export interface ServedModel {
  model: LlamaModel;
  tokenizer: ServeTokenizer;
  eosTokenIds: number[];
  defaults: SamplingParams;
  adapterName: string | null;
}

/** The ServedModel of an {@link OpenedModel} (EOS from generation_config.json, else config.json). */
export function servedModel(m: OpenedModel): ServedModel {
  const g = m.generationConfig.eosTokenId;
  return {
    model: m.model,
    tokenizer: m.tokenizer,
    eosTokenIds: g.length ? g : m.model.config.eosTokenId,
    defaults: m.defaults,
    adapterName: m.adapter?.name ?? null,
  };
}

/** Options of {@link ModelServer}. */
export interface ModelServerOptions extends SchedulerOptions {
  /** Model id reported to clients. */
  name: string;
  /** max_tokens when a request gives none. Default 512. */
  defaultMaxTokens?: number;
  /** Generate max_tokens even past EOS (benches with random weights). */
  ignoreEos?: boolean;
}

/** A Scheduler plus tokenizer and templates: a {@link ServeBackend} on this thread's GPU. */
export class ModelServer implements ServeBackend {
  readonly scheduler: Scheduler;
  readonly #m: ServedModel;
  readonly #tok: ServeTokenizer;
  readonly #name: string;
  readonly #defaultMax: number;
  readonly #ignoreEos: boolean;
  readonly #cancels = new Map<number, () => void>();
  #nextId = 1;

  /**
   * @example
   * const server = new ModelServer(servedModel(await openModel(gpu, denoFs, dir)), { name: "qwen", slots: 8 });
   */
  constructor(m: ServedModel, opts: ModelServerOptions) {
    this.#m = m;
    this.#tok = m.tokenizer;
    this.#name = opts.name;
    this.#defaultMax = opts.defaultMaxTokens ?? 512;
    this.#ignoreEos = opts.ignoreEos ?? false;
    this.scheduler = new Scheduler(m.model, { ...opts, decoder: m.tokenizer, eosTokenIds: m.eosTokenIds });
  }

  info(): Promise<BackendInfo> {
    return Promise.resolve({
      model: this.#name,
      contextLength: this.scheduler.contextLength,
      slots: this.scheduler.slots,
      chatTemplate: this.#tok.hasChatTemplate,
      adapter: this.#m.adapterName,
    });
  }

  stats(): Promise<BackendStats> {
    return Promise.resolve(this.scheduler.stats());
  }

  cancel(id: number): Promise<void> {
    this.#cancels.get(id)?.();
    return Promise.resolve();
  }

  submit(
    req: ServeRequest,
    onEvent: (e: ServeEvent) => void,
  ): Promise<{ id: number } | { error: ServeError }> {
    try {
      return Promise.resolve(this.#submit(req, onEvent));
    } catch (e) {
      return Promise.resolve({ error: internal(e) });
    }
  }

  #submit(req: ServeRequest, onEvent: (e: ServeEvent) => void): { id: number } | { error: ServeError } {
    const bad = (message: string, param: string | null = null) => ({
      error: { status: 400 as const, type: "invalid_request_error", message, param },
    });
    let ids: number[], eos: number[] | undefined;
    const p = req.prompt;
    if (p.kind === "chat") {
      if (!this.#tok.hasChatTemplate) return bad(`model ${this.#name} has no chat template`, "messages");
      try {
        ids = this.#tok.encodeChat(p.messages, { addGenerationPrompt: true });
      } catch (e) {
        return bad((e as Error).message, "messages");
      }
    } else {
      const t = getTemplate("medical_inquiry");
      const content = fillFields(t.fields!.prompt, p);
      ids = encodePrompt(t, this.#tok, [{ role: "user", content }]);
      eos = stopTokenIds(t, this.#tok);
    }
    const ctx = this.scheduler.contextLength;
    if (ids.length >= ctx) {
      return bad(
        `the prompt is ${ids.length} tokens; this model's context is ${ctx}`,
        p.kind === "chat" ? "messages" : null,
      );
    }
    const maxTokens = req.maxTokens ?? Math.min(this.#defaultMax, ctx - ids.length);
    if (ids.length + maxTokens > ctx) {
      return bad(
        `the prompt (${ids.length} tokens) plus max_tokens (${maxTokens}) exceed the context length ${ctx}`,
        "max_tokens",
      );
    }
    const sampling: Partial<SamplingParams> = { ...this.#m.defaults };
    if (req.temperature !== undefined) {
      Object.assign(sampling, { temperature: req.temperature, doSample: req.temperature > 0 });
    }
    if (req.topP !== undefined) sampling.topP = req.topP;
    if (req.seed !== undefined) sampling.seed = req.seed >>> 0;
    const id = this.#nextId++;
    const forward = (e: SchedulerEvent) => {
      if (e.type === "delta") onEvent({ type: "delta", text: e.text, tokens: e.tokenIds.length });
      else {
        this.#cancels.delete(id);
        if (e.type === "done") {
          onEvent({
            type: "done",
            text: e.text,
            finishReason: e.finishReason === "length" ? "length" : "stop",
            promptTokens: e.promptTokens,
            completionTokens: e.tokenIds.length,
          });
        } else if (e.code === "timeout") {
          onEvent({
            type: "error",
            error: { status: 503, type: "timeout_error", message: e.message, param: null },
          });
        } else if (e.code === "cancelled") {
          onEvent({
            type: "error",
            error: { status: 400, type: "cancelled", message: e.message, param: null },
          });
        } else onEvent({ type: "error", error: internal(e.message) });
      }
    };
    try {
      const cancel = this.scheduler.submit({
        promptIds: ids,
        maxNewTokens: maxTokens,
        sampling,
        stopStrings: req.stop,
        eosTokenIds: eos,
        ignoreEos: this.#ignoreEos,
        timeoutMs: req.timeoutMs,
      }, forward);
      this.#cancels.set(id, cancel);
    } catch (e) {
      if (e instanceof QueueFullError) {
        return { error: { status: 503, type: "overloaded_error", message: e.message, param: null } };
      }
      return bad((e as Error).message);
    }
    return { id };
  }
}

function internal(e: unknown): ServeError {
  const message = e instanceof Error ? e.message : String(e);
  return { status: 500, type: "internal_error", message, param: null };
}
