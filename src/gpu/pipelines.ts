/**
 * Compiled kernels: WGSL text assembled from a KernelSpec (type aliases, the kernel file, linked
 * libraries), shader modules by source and pipelines by (source, entry, types, overrides). Every
 * dispatch looks its pipeline up here, so the lookup avoids assembling the source.
 */
import { KERNEL_SOURCES } from "./kernel_sources.ts";
import type { GpuInfo, KernelSpec, Pipe } from "./spec.ts";

export class PipelineCache {
  readonly #device: GPUDevice;
  readonly #info: GpuInfo;
  /** Receives each build's error check: resolves to a message naming the kernel, or null. */
  readonly #onBuild: (check: Promise<string | null>) => void;
  readonly #modules = new Map<string, GPUShaderModule>();
  readonly #pipelines = new Map<string, Map<string, Pipe>>();
  #nextPipeId = 1;

  constructor(device: GPUDevice, info: GpuInfo, onBuild: (check: Promise<string | null>) => void) {
    this.#device = device;
    this.#info = info;
    this.#onBuild = onBuild;
  }

  /** Full WGSL text for a spec: `enable f16;` when needed, type aliases, then the kernel file. */
  sourceOf(spec: KernelSpec): string {
    const unknown = (file: string | undefined) =>
      new Error(`unknown kernel file "${file}" (known: ${Object.keys(KERNEL_SOURCES).join(", ")})`);
    let body = spec.source ?? KERNEL_SOURCES[spec.file ?? ""];
    if (body === undefined) throw unknown(spec.file);
    for (const lib of spec.libs ?? []) {
      if (KERNEL_SOURCES[lib] === undefined) throw unknown(lib);
      body += `\n${KERNEL_SOURCES[lib]}`;
    }
    const types = Object.entries(spec.types ?? {});
    if (types.some(([, t]) => t === "f16") && !this.#info.f16) {
      throw new Error(
        `kernel ${spec.file ?? "inline"}: f16 storage requested but the adapter has no shader-f16`,
      );
    }
    let head = types.some(([, t]) => t === "f16") ? "enable f16;\n" : "";
    for (const [name, t] of types) head += `alias ${name} = ${t};\n`;
    return head + body;
  }

  /** The pipeline for a spec, built on first use. */
  get(spec: KernelSpec): Pipe {
    // Hot path (every dispatch): look up by the body string (V8 caches a string's hash, and file names
    // and linked sources are reused string objects) plus a short key of entry/types/overrides. The full
    // source is only assembled on a miss.
    const base = spec.source ?? spec.file ?? "";
    let byBase = this.#pipelines.get(base);
    if (!byBase) this.#pipelines.set(base, byBase = new Map());
    const entry = spec.entry ?? "main";
    let key = entry;
    if (spec.libs) { for (const l of spec.libs) key += `|+${l}`; }
    if (spec.types) { for (const t in spec.types) key += `|${t}=${spec.types[t]}`; }
    if (spec.overrides) { for (const o in spec.overrides) key += `|${o}:${spec.overrides[o]}`; }
    let hit = byBase.get(key);
    if (!hit) byBase.set(key, hit = this.#build(spec, entry));
    return hit;
  }

  #build(spec: KernelSpec, entry: string): Pipe {
    const source = this.sourceOf(spec);
    const overrides = spec.overrides ?? {};
    // Compile errors surface asynchronously; catch them in a scope so the message names the kernel.
    this.#device.pushErrorScope("validation");
    let module = this.#modules.get(source);
    if (!module) {
      module = this.#device.createShaderModule({ code: source, label: spec.file ?? "inline" });
      this.#modules.set(source, module);
    }
    // The overrides name the variant (tile, layout) in errors and profiles.
    const variant = Object.entries(overrides).map(([k, v]) => `${k}=${v}`).join(",");
    const name = `${spec.file ?? "inline"}:${entry}${
      spec.types ? "<" + Object.values(spec.types).join(",") + ">" : ""
    }${variant ? `{${variant}}` : ""}`;
    const pipeline = this.#device.createComputePipeline({
      label: name,
      layout: "auto",
      compute: { module, entryPoint: entry, constants: overrides },
    });
    this.#onBuild(
      this.#device.popErrorScope().then((e) => e ? `kernel ${name} failed to build: ${e.message}` : null),
    );
    return { id: this.#nextPipeId++, pipeline, layout: pipeline.getBindGroupLayout(0), name };
  }
}
