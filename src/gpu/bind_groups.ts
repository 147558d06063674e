/**
 * Bind groups cached by (pipeline, uniform slot, buffers). Creating a bind group is about half of a
 * dispatch's host cost (12.8 of 24.5 µs measured on the CPU box), and a decode or training step records
 * the same kernels on the same pooled buffers at the same uniform-arena slots step after step. A
 * destroyed buffer is never handed out again, so a stale entry can never be hit; the cache is simply
 * dropped when it grows past its bound.
 */
import type { Binding, Pipe } from "./gpu.ts";

const MAX_ENTRIES = 8192;

export class BindGroupCache {
  #device: GPUDevice;
  #groups = new Map<string, GPUBindGroup>();
  #ids = new WeakMap<GPUBuffer, number>();
  #nextId = 1;

  constructor(device: GPUDevice) {
    this.#device = device;
  }

  /**
   * The bind group for `pipe` with the uniform range at binding 0 (when given) and storage buffers at
   * bindings 1, 2, … (an array) or at the bindings a record names.
   */
  get(
    pipe: Pipe,
    buffers: Binding[] | Record<number, Binding>,
    uniform: { buffer: GPUBuffer; offset: number; size: number } | null,
  ): GPUBindGroup {
    const list: [number, Binding][] = Array.isArray(buffers)
      ? buffers.map((b, i) => [i + 1, b])
      : Object.entries(buffers).map(([k, b]) => [Number(k), b]);
    let key = `${pipe.id}|${uniform ? `${uniform.offset}:${uniform.size}` : "-"}`;
    for (const [binding, b] of list) {
      const r = b instanceof GPUBuffer ? { buffer: b } : b;
      key += `|${binding}=${this.#id(r.buffer)}:${r.offset ?? 0}:${r.size ?? ""}`;
    }
    let group = this.#groups.get(key);
    if (group) return group;
    const entries: GPUBindGroupEntry[] = [];
    if (uniform) entries.push({ binding: 0, resource: uniform });
    for (const [binding, b] of list) {
      entries.push({ binding, resource: b instanceof GPUBuffer ? { buffer: b } : b });
    }
    group = this.#device.createBindGroup({ layout: pipe.layout, entries, label: pipe.name });
    if (this.#groups.size >= MAX_ENTRIES) this.#groups.clear();
    this.#groups.set(key, group);
    return group;
  }

  #id(b: GPUBuffer): number {
    let id = this.#ids.get(b);
    if (id === undefined) this.#ids.set(b, id = this.#nextId++);
    return id;
  }
}
