/**
 * The HTTP side's handle on the engine Worker: a {@link ServeBackend} whose calls go through Comlink.
 * One Worker (one GPU device, one model copy, one KV cache) per HTTP process; under
 * `deno serve --parallel` every serve worker starts its own (see server/README.md on memory).
 */
import * as Comlink from "comlink";
import type {
  BackendInfo,
  BackendStats,
  ServeBackend,
  ServeEvent,
  ServeRequest,
} from "../src/engine/serving.ts";
import type { SchedulerOptions } from "../src/engine/scheduler.ts";
import type { EngineWorkerApi } from "./engine_worker.ts";

/** What the worker loads. */
export interface WorkerInit {
  model: string;
  /** Instead of `model`: a random-weight model of this public shape (benches; see synthetic.ts). */
  shape?: string;
  adapter?: string | null;
  mergeAdapter?: boolean;
  dtype?: "f16" | "f32" | null;
  /** Model id reported to clients. */
  name: string;
  scheduler?: Omit<SchedulerOptions, "decoder" | "eosTokenIds">;
}

/** A ServeBackend running in its own Worker; `close()` terminates it. */
export interface WorkerBackend extends ServeBackend {
  close(): Promise<void>;
}

/**
 * Starts the engine Worker and loads the model in it (rejects with the loader's message on a bad folder).
 *
 * @example
 * const backend = await startWorkerBackend({ model: "output/default", name: "default" });
 * const app = createApp(backend);
 */
export async function startWorkerBackend(init: WorkerInit): Promise<WorkerBackend> {
  const worker = new Worker(new URL("./engine_worker.ts", import.meta.url), { type: "module" });
  const api = Comlink.wrap<EngineWorkerApi>(worker);
  try {
    const info = await api.init(init);
    return {
      info: () => Promise.resolve(info as BackendInfo),
      stats: () => api.stats() as Promise<BackendStats>,
      cancel: (id) => api.cancel(id),
      submit: (req: ServeRequest, onEvent: (e: ServeEvent) => void) =>
        api.submit(req, Comlink.proxy(onEvent)),
      close: async () => {
        // The device is released inside the Worker first; a wedged Worker is terminated anyway. The
        // grace period is generous: terminating mid-destroy crashed the process on the H200 (7B model).
        let t: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([api.shutdown().catch(() => {}), new Promise((r) => (t = setTimeout(r, 20_000)))]);
        clearTimeout(t);
        api[Comlink.releaseProxy]();
        worker.terminate();
        // terminate() returns before the Worker's thread has dropped its WebGPU instance. A process
        // that exits meanwhile races NVIDIA's Vulkan driver teardown (gfx-rs/wgpu#8365: segfaults at
        // exit when one thread drops a device while another exits); the 7B serve bench crashed that way
        // on the H200 after printing its figures. Give the thread a moment to finish.
        await new Promise((r) => setTimeout(r, 1000));
      },
    };
  } catch (e) {
    worker.terminate();
    throw new Error((e as Error).message);
  }
}
