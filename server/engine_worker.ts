/// <reference lib="deno.window" />
/**
 * The Worker that owns the GPU (DESIGN.md, "Deno WebGPU facts" 2: a pending readback blocks its thread's
 * event loop, so the HTTP thread must never hold the device). It exposes, through Comlink, `init()`
 * (open the model folder and start a ModelServer) and then the {@link ServeBackend} methods; event
 * callbacks are Comlink proxies, released after each request's last event.
 */
import * as Comlink from "comlink";
import { createGpu, type Gpu } from "../src/gpu/mod.ts";
import { openModel } from "../src/engine/open.ts";
import { ModelServer, servedModel, type ServeEvent, type ServeRequest } from "../src/engine/serving.ts";
import { denoFs } from "../platform/deno_fs.ts";
import type { WorkerInit } from "./worker_client.ts";
import { syntheticModel } from "./synthetic.ts";

let server: ModelServer | null = null;
let device: Gpu | null = null;

function ready(): ModelServer {
  if (!server) throw new Error("engine worker: init() first");
  return server;
}

const api = {
  async init(o: WorkerInit) {
    const gpu = device = await createGpu();
    const dtype = o.dtype ?? undefined;
    if (o.shape) {
      server = new ModelServer(syntheticModel(gpu, o.shape, dtype), {
        ...o.scheduler,
        name: o.name,
        ignoreEos: true,
      });
    } else {
      const m = await openModel(gpu, denoFs, o.model, {
        adapter: o.adapter ?? undefined,
        mergeAdapter: o.mergeAdapter ?? false,
        dtype,
      });
      server = new ModelServer(servedModel(m), { ...o.scheduler, name: o.name });
    }
    return await server.info();
  },
  /**
   * Releases the device before the Worker is terminated (terminating with a live device can crash):
   * waits for submitted work first, then destroys it.
   */
  async shutdown() {
    const d = device;
    device = null;
    server = null;
    if (!d) return;
    await d.sync().catch(() => {});
    d.destroy();
  },
  info: () => ready().info(),
  stats: () => ready().stats(),
  cancel: (id: number) => ready().cancel(id),
  submit(req: ServeRequest, onEvent: ((e: ServeEvent) => void) & Comlink.ProxyMarked) {
    const remote = onEvent as unknown as Comlink.Remote<(e: ServeEvent) => void>;
    return ready().submit(req, (e) => {
      // Fire and forget: the HTTP side's answer must never stall the decode loop.
      remote(e).catch(() => {});
      if (e.type !== "delta") remote[Comlink.releaseProxy]();
    }).then((r) => {
      if ("error" in r) remote[Comlink.releaseProxy]();
      return r;
    });
  },
};

/** The worker's Comlink surface (the client wraps this type). */
export type EngineWorkerApi = typeof api;

Comlink.expose(api);
