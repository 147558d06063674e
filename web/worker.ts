/// <reference lib="dom" />
/**
 * The demo's Web Worker: hosts one {@link DemoSession} (GPU, model, engine) and exposes it to the page
 * through Comlink, so model loading and decoding never run on the page's thread (the page stays
 * responsive; DESIGN.md, "Deno WebGPU facts" 2 — the server uses the same shape).
 *
 * @example
 * // page side (web/page.ts)
 * const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
 * const api = Comlink.wrap<DemoWorkerApi>(worker);
 * const gpu = await api.init();
 */
import * as Comlink from "comlink";
import { DemoSession } from "./session.ts";

/** What the page can call (each method returns a promise on the page side). */
export type DemoWorkerApi = DemoSession;

Comlink.expose(new DemoSession());
