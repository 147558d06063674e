/// <reference lib="dom" />
/**
 * What the demo's Web Worker hosts: the GPU, one opened model (+ adapter) and diagnosis requests on the
 * shared engine (src/engine), with the same prompt the `/diagnose` API builds (the medical_inquiry
 * template). Nothing here touches the DOM, so Deno tests drive it directly; web/worker.ts exposes one
 * instance to the page through Comlink.
 *
 * @example
 * const s = new DemoSession();
 * const gpu = await s.init();
 * await s.load({ modelsUrl: "http://127.0.0.1:8000/models/", model: "llama" }, (p) => console.log(p));
 * const r = await s.diagnose({ patient_info: "男,45岁", symptoms: "发热", test_results: "白细胞升高" },
 *   { maxNewTokens: 64 }, (u) => console.log(u.text));
 */
import { createGpu, type Gpu } from "../src/gpu/mod.ts";
import { type GenerationStats, type OpenedModel, openModel } from "../src/engine/mod.ts";
import { encodePrompt, fillFields, getTemplate } from "../src/data/templates.ts";
import { cachedHttpFs, type DownloadProgress } from "./cached_fs.ts";

/** The three fields of a case (the names of the `/diagnose` request body). */
export interface CaseFields {
  patient_info: string;
  symptoms: string;
  test_results: string;
}

/** The adapter the page reports. */
export interface GpuReport {
  adapter: string;
  vendor: string;
  f16: boolean;
  subgroups: boolean;
  fallback: boolean;
}

/** Which model to open: folders under `modelsUrl` (`/models/<name>/…`). */
export interface LoadSpec {
  /** Absolute URL of the models root, ending in "/". */
  modelsUrl: string;
  model: string;
  adapter?: string | null;
  /** Per-folder fingerprints from the server (cache keys change when a folder's files change). */
  versions?: Record<string, string>;
  /** Cache API bucket (default "webtune-models"); tests use their own. */
  cacheName?: string;
  /** Use no Cache API (files kept in memory for this load). */
  noCache?: boolean;
}

/** Load progress: file bytes while downloading, tensors while uploading to the GPU. */
export type LoadProgress =
  | ({ phase: "download" } & DownloadProgress)
  | { phase: "upload"; done: number; total: number }
  | { phase: "warmup" };

/** The opened model, as the page shows it. */
export interface LoadedInfo {
  model: string;
  adapter: string | null;
  modelType: string;
  layers: number;
  hidden: number;
  vocab: number;
  dtype: string;
  networkBytes: number;
  cachedBytes: number;
  downloaded: string[];
  loadMs: number;
}

/** Options of one diagnosis. */
export interface DiagnoseOptions {
  maxNewTokens: number;
}

/** Sent after each decoded chunk: the new text and the running speed. */
export interface DiagnoseUpdate {
  text: string;
  tokens: number;
  tokensPerSecond: number;
}

/** The finished answer. `finishReason` "cancelled" when stop() ended it. */
export interface DiagnoseResult {
  text: string;
  promptText: string;
  promptIds: number[];
  tokenIds: number[];
  finishReason: "eos" | "stop" | "length" | "cancelled";
  /** Decode speed (tokens after the first / decode time); null when cancelled. */
  tokensPerSecond: number | null;
  stats: GenerationStats | null;
}

/** The user turn of a case, as the medical_inquiry template (and so the `/diagnose` API) writes it. */
export function diagnosisPrompt(fields: CaseFields): string {
  const t = getTemplate("medical_inquiry");
  return fillFields(t.fields!.prompt, fields as unknown as Record<string, unknown>);
}

class Cancelled extends Error {}

/** One GPU, at most one model, one generation at a time. */
export class DemoSession {
  #gpu: Gpu | null = null;
  #opened: OpenedModel | null = null;
  #busy = false;
  #cancel = false;

  /**
   * Opens WebGPU. Rejects with an error named "NoWebGpu" when the browser has no `navigator.gpu`, and
   * src/gpu's "NoAdapterError" when it gives no adapter (the page words both for browsers; the names
   * survive Comlink). `subgroups: false` keeps the kernels off subgroup builtins (for comparison).
   */
  async init(opts: { subgroups?: boolean; disableF16?: boolean } = {}): Promise<GpuReport> {
    if (!this.#gpu) {
      if (!(globalThis.navigator as Navigator & { gpu?: GPU })?.gpu) {
        const e = new Error(
          "This browser has no WebGPU (navigator.gpu is missing). Use a current Chrome or Edge, or " +
            "Safari 26 / Firefox 141 and later; Chromium on Linux needs --enable-unsafe-webgpu. The page " +
            "must come from https or localhost.",
        );
        e.name = "NoWebGpu";
        throw e;
      }
      this.#gpu = await createGpu({ disableF16: opts.disableF16 ?? false });
      enableSubgroupsDirective(this.#gpu, opts.subgroups ?? true);
    }
    const i = this.#gpu.info;
    return {
      adapter: await adapterName(i.description),
      vendor: i.vendor,
      f16: i.f16,
      subgroups: i.subgroups,
      fallback: i.isFallbackAdapter,
    };
  }

  /** Downloads (or finds in the cache) and uploads the model; replaces a model opened before. */
  async load(spec: LoadSpec, onProgress?: (p: LoadProgress) => void): Promise<LoadedInfo> {
    if (!this.#gpu) await this.init();
    if (this.#busy) throw new Error("a diagnosis is running; stop it before loading another model");
    this.#opened?.dispose();
    this.#opened = null;
    const t0 = performance.now();
    const fs = cachedHttpFs(spec.modelsUrl, {
      version: spec.versions,
      cacheName: spec.cacheName,
      caches: spec.noCache ? null : undefined,
      onDownload: (p) => onProgress?.({ phase: "download", ...p }),
    });
    const m = await openModel(this.#gpu!, fs, spec.model, {
      adapter: spec.adapter ?? undefined,
      onProgress: (done, total) => onProgress?.({ phase: "upload", done, total }),
    });
    // Build the pipelines now (one short run through prefill and a decode chunk): compiling them is
    // most of a first answer's time on a software adapter, and belongs to "loading". The prompt is longer
    // than matmul's GEMV cut-off (16 rows), so prefill compiles the tiled kernels a real case uses.
    onProgress?.({ phase: "warmup" });
    const a = m.tokenizer.encode("a", { addSpecialTokens: false })[0] ?? 0;
    const n = Math.max(1, Math.min(24, m.model.config.maxPositionEmbeddings - 3));
    const prompt = [m.tokenizer.bosTokenId ?? a, ...new Array(n - 1).fill(a)];
    await m.engine.generate({ prompts: [prompt], maxNewTokens: 3, ignoreEos: true, sampling: m.defaults });
    this.#opened = m;
    const c = m.model.config;
    return {
      model: spec.model,
      adapter: m.adapter?.name ?? null,
      modelType: c.modelType,
      layers: c.numLayers,
      hidden: c.hiddenSize,
      vocab: c.vocabSize,
      dtype: m.model.dtype,
      networkBytes: fs.stats.networkBytes,
      cachedBytes: fs.stats.cachedBytes,
      downloaded: fs.stats.downloaded,
      loadMs: performance.now() - t0,
    };
  }

  /** Greedy (the model's generation_config defaults) answer to a case, streamed through `onUpdate`. */
  async diagnose(
    fields: CaseFields,
    opts: DiagnoseOptions,
    onUpdate?: (u: DiagnoseUpdate) => void,
  ): Promise<DiagnoseResult> {
    const m = this.#opened;
    if (!m) throw new Error("no model is loaded yet");
    if (this.#busy) throw new Error("a diagnosis is already running");
    for (const k of ["patient_info", "symptoms", "test_results"] as const) {
      if (typeof fields[k] !== "string" || !fields[k].trim()) throw new Error(`${k} is empty`);
    }
    const maxNewTokens = Math.floor(opts.maxNewTokens);
    if (!(maxNewTokens >= 1)) {
      throw new Error(`maxNewTokens must be a positive integer, got ${opts.maxNewTokens}`);
    }
    const promptText = diagnosisPrompt(fields);
    const promptIds = encodePrompt(getTemplate("medical_inquiry"), m.tokenizer, [
      { role: "user", content: promptText },
    ]);
    const maxLen = m.model.config.maxPositionEmbeddings;
    const room = maxLen - promptIds.length;
    if (room < 1) {
      throw new Error(`the case is ${promptIds.length} tokens; this model takes at most ${maxLen}`);
    }
    this.#busy = true;
    this.#cancel = false;
    let text = "", tokens = 0, firstAt = 0;
    const tokenIds: number[] = [];
    try {
      const { sequences, stats } = await m.engine.generate(
        { prompts: [promptIds], maxNewTokens: Math.min(maxNewTokens, room), sampling: m.defaults },
        (c) => {
          const now = performance.now();
          if (tokens === 0) firstAt = now;
          text += c.text;
          tokens += c.tokenIds.length;
          tokenIds.push(...c.tokenIds);
          // Speed after the first token, as GenerationStats counts it (prefill is not decode).
          const rate = tokens > 1 && now > firstAt ? (tokens - 1) / ((now - firstAt) / 1000) : 0;
          onUpdate?.({ text: c.text, tokens, tokensPerSecond: rate });
          if (this.#cancel) throw new Cancelled();
        },
      );
      const s = sequences[0];
      return {
        text: s.text,
        promptText,
        promptIds,
        tokenIds: s.tokenIds,
        finishReason: s.finishReason,
        tokensPerSecond: stats.decodeMs > 0 ? stats.decodeTokens / (stats.decodeMs / 1000) : null,
        stats,
      };
    } catch (e) {
      if (!(e instanceof Cancelled)) throw e;
      return {
        text,
        promptText,
        promptIds,
        tokenIds,
        finishReason: "cancelled",
        tokensPerSecond: null,
        stats: null,
      };
    } finally {
      this.#busy = false;
    }
  }

  /** Ends the running diagnosis after its current chunk. */
  stop(): void {
    this.#cancel = true;
  }

  /** Frees the model and the GPU. */
  dispose(): void {
    this.#opened?.dispose();
    this.#opened = null;
    this.#gpu?.device.destroy();
    this.#gpu = null;
  }
}

/**
 * A readable adapter name: Chromium hides `description` (and often `device`) from pages, so fall back to
 * vendor + architecture ("google swiftshader").
 */
async function adapterName(description: string): Promise<string> {
  if (description && description !== "unknown adapter") return description;
  const info = (await navigator.gpu.requestAdapter())?.info;
  const name = [info?.vendor, info?.architecture, info?.device].filter((x) => x).join(" ");
  return name || description;
}

/**
 * Browsers' WGSL compiler (Tint) only accepts subgroup builtins after `enable subgroups;`, which Deno's
 * (naga) rejects — and src/gpu writes kernels for naga. So in a browser, on a device with subgroups,
 * every module that uses them gets the directive; with `on` false, kernels must not use them at all,
 * which src/gpu decides from `info.subgroups`.
 */
function enableSubgroupsDirective(gpu: Gpu, on: boolean): void {
  if (!gpu.info.subgroups) return;
  if (!on) {
    (gpu.info as { subgroups: boolean }).subgroups = false;
    return;
  }
  if ("Deno" in globalThis) return; // naga
  const device = gpu.device;
  const create = device.createShaderModule.bind(device);
  device.createShaderModule = (d: GPUShaderModuleDescriptor) =>
    create({ ...d, code: withSubgroupsDirective(d.code) });
}

/** `code` with `enable subgroups;` in front when it uses subgroup builtins and lacks the directive. */
export function withSubgroupsDirective(code: string): string {
  const uses = /\bsubgroup[A-Z]\w*\s*\(|@builtin\(\s*subgroup_(size|invocation_id)\s*\)/.test(code);
  return uses && !/\benable\s+subgroups\s*;/.test(code) ? `enable subgroups;\n${code}` : code;
}
