/// <reference lib="dom" />
/**
 * The demo page: reads the demo config from the server, starts the worker (web/worker.ts) that hosts
 * the engine, shows the adapter, load progress, model and LoRA adapter, and streams the answer to the
 * case form with its speed. All GPU work is in the worker; this thread only updates the DOM.
 *
 * URL parameters: `?lang=en`, `?model=NAME&adapter=NAME` (folders under /models/), `?subgroups=0`.
 * The finished answer's token ids are in `#answer[data-token-ids]` (the browser test reads them).
 */
import * as Comlink from "comlink";
import type { DemoWorkerApi } from "./worker.ts";
import type { CaseFields, DiagnoseResult, DiagnoseUpdate, LoadProgress } from "./session.ts";
import { clearModelCache } from "./cached_fs.ts";
import { EXAMPLES, formatBytes, type Lang, strings } from "./i18n.ts";
import type { DemoConfig } from "../src/engine/demo_config.ts";

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
let lang: Lang = (params.get("lang") ?? localStorage.getItem("webtune-lang")) === "en" ? "en" : "zh";
let t = strings(lang);

/** Counts timer ticks: proof the page thread stays free while the worker loads and generates. */
const heartbeat = { ticks: 0 };
setInterval(() => heartbeat.ticks++, 20);
(globalThis as { webtuneDemo?: unknown }).webtuneDemo = heartbeat;

/** Texts that depend on the language: re-rendered when it changes. */
const live = new Map<string, () => string>();

/** Sets element `id`'s text from `render` now and again after each language switch. */
function say(id: string, render: () => string): void {
  live.set(id, render);
  $(id).textContent = render();
}

function applyLang(): void {
  t = strings(lang);
  document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
  document.title = `webtune · ${t.title}`;
  for (const el of document.querySelectorAll<HTMLElement>("[data-i18n]")) {
    const v = t[el.dataset.i18n as keyof typeof t];
    if (typeof v === "string") el.textContent = v;
  }
  $("lang").textContent = t.toggle;
  for (const [id, render] of live) $(id).textContent = render();
}

function showError(where: "loadFailed" | "failed" | null, e: unknown): void {
  say("error", () => (where ? t[where] : "") + (e instanceof Error ? e.message : String(e)));
  $("error").hidden = false;
}

function progress(p: LoadProgress): void {
  const bar = $<HTMLProgressElement>("progress");
  const label = $("progress-label");
  if (p.phase === "download") {
    const file = p.path.split("/").pop() ?? p.path;
    if (p.fromCache) say(label.id, () => t.fromCache(file, formatBytes(p.total)));
    else say(label.id, () => t.downloading(file, formatBytes(p.loaded), formatBytes(p.total)));
    if (p.total) bar.value = p.loaded / p.total;
    else bar.removeAttribute("value");
  } else if (p.phase === "upload") {
    say(label.id, () => t.uploading(p.done, p.total));
    bar.value = p.done / p.total;
  } else {
    say(label.id, () => t.warmup);
    bar.removeAttribute("value");
  }
}

function fields(): CaseFields {
  const v = (id: string) => $<HTMLInputElement | HTMLTextAreaElement>(id).value;
  return { patient_info: v("patient_info"), symptoms: v("symptoms"), test_results: v("test_results") };
}

async function main(): Promise<void> {
  applyLang();
  $("lang").addEventListener("click", () => {
    lang = lang === "en" ? "zh" : "en";
    localStorage.setItem("webtune-lang", lang);
    applyLang();
  });
  $("example").addEventListener("click", () => {
    for (const [k, v] of Object.entries(EXAMPLES[lang])) $<HTMLInputElement>(k).value = v;
  });
  $("clear-cache").addEventListener("click", async () => {
    await clearModelCache();
    say("progress-label", () => t.cacheCleared);
  });

  const config: DemoConfig = await (await fetch("config.json")).json();
  const model = params.get("model") ?? config.model;
  const adapter = params.has("adapter") ? params.get("adapter") || null : config.adapter;
  $("model").textContent = model;
  say("adapter", () => adapter ?? t.none);

  // Ask the browser not to evict the cached model under storage pressure (it may say no; that is fine).
  void navigator.storage?.persist?.().catch(() => false);

  const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
  // A worker that fails to start (script missing, syntax error) would leave every call pending forever.
  worker.addEventListener("error", (e) => {
    showError(null, new Error(`the engine worker failed: ${e.message || "could not load worker.js"}`));
    document.body.dataset.state = "worker-failed";
  });
  const api = Comlink.wrap<DemoWorkerApi>(worker);
  say("gpu", () => t.starting);
  try {
    const g = await api.init({ subgroups: params.get("subgroups") !== "0" });
    say(
      "gpu",
      () =>
        [
          g.adapter,
          g.f16 ? t.weightsF16 : t.weightsF32,
          g.subgroups ? t.subgroups : "",
          g.fallback ? t.fallback : "",
        ]
          .filter((x) => x).join(" · "),
    );
  } catch (e) {
    say("gpu", () => "—");
    // Error names survive Comlink: word the two "no WebGPU" cases for a browser user.
    const name = (e as Error)?.name;
    const message = e instanceof Error ? e.message : String(e);
    say("nogpu", () => name === "NoWebGpu" ? t.noWebGpu : name === "NoAdapterError" ? t.noAdapter : message);
    $("nogpu").hidden = false;
    document.body.dataset.state = "no-webgpu";
    return;
  }

  try {
    const info = await api.load(
      { modelsUrl: new URL(config.modelsUrl, location.href).href, model, adapter, versions: config.versions },
      Comlink.proxy(progress),
    );
    const shape = `${info.modelType}, ${info.layers} × ${info.hidden}, ${info.dtype}, vocab ${info.vocab}`;
    $("model").textContent = `${info.model} (${shape})`;
    say("adapter", () => info.adapter ?? t.none);
    $<HTMLProgressElement>("progress").value = 1;
    say(
      "progress-label",
      () => t.ready(info.loadMs, formatBytes(info.networkBytes), formatBytes(info.cachedBytes)),
    );
    document.body.dataset.downloaded = JSON.stringify(info.downloaded);
  } catch (e) {
    showError("loadFailed", e);
    say("progress-label", () => t.loadFailed.replace(/[::]\s*$/, ""));
    document.body.dataset.state = "load-failed";
    return;
  }

  const submit = $<HTMLButtonElement>("submit"), stop = $<HTMLButtonElement>("stop");
  submit.disabled = false;
  document.body.dataset.state = "ready";
  stop.addEventListener("click", () => void api.stop());
  $<HTMLFormElement>("case").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const answer = $("answer"), speed = $("speed");
    answer.textContent = "";
    answer.dataset.state = "running";
    delete answer.dataset.tokenIds;
    $("error").hidden = true;
    say(speed.id, () => t.generating);
    submit.disabled = true;
    stop.disabled = false;
    try {
      const max = Number($<HTMLInputElement>("max_tokens").value) || config.maxNewTokens;
      const r: DiagnoseResult = await api.diagnose(
        fields(),
        { maxNewTokens: max },
        Comlink.proxy((u: DiagnoseUpdate) => {
          answer.textContent += u.text;
          say(speed.id, () => `${t.generating} ${t.speed(u.tokensPerSecond, u.tokens)}`);
        }),
      );
      answer.textContent = r.text;
      answer.dataset.tokenIds = JSON.stringify(r.tokenIds);
      answer.dataset.promptIds = JSON.stringify(r.promptIds);
      answer.dataset.finish = r.finishReason;
      const tps = r.tokensPerSecond ?? 0;
      const ttft = r.stats ? ` · TTFT ${r.stats.timeToFirstTokenMs.toFixed(0)} ms` : "";
      say(speed.id, () => `${t.speed(tps, r.tokenIds.length)} · ${t.finish[r.finishReason]}${ttft}`);
      answer.dataset.state = "done";
    } catch (e) {
      showError("failed", e);
      answer.dataset.state = "failed";
    } finally {
      submit.disabled = false;
      stop.disabled = true;
    }
  });
}

main().catch((e) => showError(null, e));
