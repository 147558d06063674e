/**
 * The GPU runtime: one device, a pipeline cache, a buffer pool, and a command recorder that batches
 * every dispatch into one open compute pass until something needs the results.
 *
 * Why batching (DESIGN.md, "Deno WebGPU facts"): each readback costs ≥ 10 ms in Deno and blocks the
 * event loop, and each compute pass has a cost, so launches are recorded, not submitted, and the queue
 * is flushed only by read(), write(), sync() or flush(). Uniform blocks go through one arena
 * (arena.ts); record()/replay() repeat a run of dispatches without the code that made them (decode
 * steps, recording.ts); profile() times every dispatch (benches, profiler.ts); kernels are compiled
 * and cached in pipelines.ts.
 */
import { BufferPool } from "./pool.ts";
import { BindGroupCache } from "./bind_groups.ts";
import { PipelineCache } from "./pipelines.ts";
import type { Uniforms } from "./uniforms.ts";
import { KernelProfiler, type KernelTime } from "./profiler.ts";
import { UniformArena, type UniformSlot } from "./arena.ts";
import { Recording } from "./recording.ts";
import type { Binding, GpuInfo, KernelSpec, Pipe } from "./spec.ts";

export type { Binding, GpuInfo, KernelSpec, Pipe } from "./spec.ts";
export type { KernelTime } from "./profiler.ts";
export { Recording } from "./recording.ts";

export class Gpu {
  readonly device: GPUDevice;
  readonly info: GpuInfo;
  readonly pool: BufferPool;
  /** Wrap each launch in error scopes and name the failing kernel (slow: one submit per launch). */
  readonly debug: boolean;

  #pipes: PipelineCache;
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #arena: UniformArena;
  #maxGroups: number;
  #lastKernel = "(none)";
  #errors: string[] = [];
  #pendingScopes: Promise<void>[] = [];
  #dispatches = 0;
  #groups: BindGroupCache;
  #timed: { querySet: GPUQuerySet; passes: number } | null = null;
  #querySet: GPUQuerySet | null = null;
  #queryResolve: GPUBuffer | null = null;
  #profiler: KernelProfiler | null = null;
  #recording: Recording | null = null;

  constructor(device: GPUDevice, info: GpuInfo, opts: { debug?: boolean } = {}) {
    this.device = device;
    this.info = info;
    this.debug = opts.debug ?? false;
    this.pool = new BufferPool(device);
    this.#groups = new BindGroupCache(device);
    // Compile errors surface asynchronously: they are collected with the other errors (#raiseErrors).
    this.#pipes = new PipelineCache(device, info, (check) =>
      this.#pendingScopes.push(check.then((e) => {
        if (e) this.#errors.push(e);
      })));
    // Read once: a `device.limits` access crosses into the runtime (~0.1 µs) and dispatch is hot.
    this.#maxGroups = device.limits.maxComputeWorkgroupsPerDimension;
    this.#arena = new UniformArena(device);
    device.addEventListener("uncapturederror", (e) => {
      const err = (e as GPUUncapturedErrorEvent).error;
      this.#errors.push(`${err.message} (last kernel recorded: ${this.#lastKernel}; rerun with --gpu-debug)`);
    });
  }

  /** Number of dispatches recorded since creation (for tests and benches). */
  get dispatchCount(): number {
    return this.#dispatches;
  }

  /** Full WGSL text for a spec: `enable f16;` when needed, type aliases, then the kernel file. */
  sourceOf(spec: KernelSpec): string {
    return this.#pipes.sourceOf(spec);
  }

  #ensurePass(): GPUComputePassEncoder {
    if (!this.#encoder) this.#encoder = this.device.createCommandEncoder();
    if (!this.#pass) {
      const t = this.#timed;
      if (t) t.passes++;
      this.#pass = this.#encoder.beginComputePass(
        t
          ? {
            timestampWrites: { querySet: t.querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 },
          }
          : {},
      );
    }
    return this.#pass;
  }

  /**
   * GPU time in milliseconds of the dispatches `fn` records, from timestamp queries around one compute
   * pass. Null when the adapter has no timestamp-query or the work did not fit one pass (a copy, a
   * read or a full uniform arena split it): then time with wall clock instead. Benches only.
   */
  async timePass(fn: () => void): Promise<number | null> {
    if (!this.info.timestampQuery) return null;
    this.flush();
    this.#querySet ??= this.device.createQuerySet({ type: "timestamp", count: 2 });
    this.#queryResolve ??= this.device.createBuffer({
      size: 16,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    const timed = { querySet: this.#querySet, passes: 0 };
    this.#timed = timed;
    try {
      fn();
    } finally {
      this.#timed = null;
    }
    const encoder = this.#endPass();
    encoder.resolveQuerySet(this.#querySet, 0, 2, this.#queryResolve, 0);
    const [bytes] = await this.readMany([{ buffer: this.#queryResolve, size: 16 }]);
    if (timed.passes !== 1) return null;
    const [t0, t1] = new BigUint64Array(bytes);
    return Number(t1 - t0) / 1e6;
  }

  /**
   * Runs `fn` with every dispatch timed on its own (a compute pass each, timestamps at its ends) and
   * returns GPU milliseconds per kernel, largest first. Null times when the adapter has no
   * timestamp-query. Benches only: passes add GPU time, so compare shares, not totals.
   */
  async profile<T>(fn: () => T | Promise<T>): Promise<{ result: T; kernels: KernelTime[] | null }> {
    if (!this.info.timestampQuery) return { result: await fn(), kernels: null };
    if (this.#profiler) throw new Error("gpu.profile: already profiling");
    this.flush();
    const profiler = new KernelProfiler(this.device);
    this.#profiler = profiler;
    let result: T;
    try {
      result = await fn();
    } finally {
      this.#profiler = null;
    }
    const { buffer, size } = profiler.resolve(this.#endPass());
    const [bytes] = await this.readMany([{ buffer, size }]);
    buffer.destroy();
    return { result, kernels: profiler.summarise(bytes) };
  }

  #endPass(): GPUCommandEncoder {
    if (!this.#encoder) this.#encoder = this.device.createCommandEncoder();
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
    return this.#encoder;
  }

  /**
   * Records one dispatch. Binding 0 is the uniform block when `uniforms` is given; storage buffers
   * take bindings 1, 2, … in the order of `buffers`, or the binding numbers given as keys of a record
   * (kernels whose entry points share one binding table).
   *
   * @example
   * gpu.dispatch({ file: "elementwise", entry: "add", types: { ST: "f32" } }, [a, b, out], [groups], u);
   */
  dispatch(
    spec: KernelSpec,
    buffers: Binding[] | Record<number, Binding>,
    grid: number[],
    uniforms?: Uniforms,
  ): void {
    const pipe = this.#pipes.get(spec);
    const { name } = pipe;
    const maxDim = this.#maxGroups;
    const x = grid[0], y = grid[1] ?? 1, z = grid[2] ?? 1;
    if (!(x >= 1 && y >= 1 && z >= 1 && x <= maxDim && y <= maxDim && z <= maxDim)) {
      throw new Error(`kernel ${name}: dispatch grid [${grid}] outside 1..${maxDim} per dimension`);
    }
    if (this.debug) {
      this.flush();
      this.device.pushErrorScope("validation");
      this.device.pushErrorScope("out-of-memory");
    }
    const uniform = uniforms ? this.#stageUniforms(uniforms.words, uniforms.byteLength) : null;
    const group = this.#groups.get(pipe, buffers, uniform);
    this.#encode(pipe, group, x, y, z);
    this.#recording?.dispatches.push({
      pipe,
      buffers,
      x,
      y,
      z,
      words: uniforms ? uniforms.words.slice() : null,
      key: uniforms ? uniforms.words.join() : "",
      size: uniforms?.byteLength ?? 0,
      offset: uniform?.offset ?? 0,
      group,
    });
    if (this.debug) {
      this.flush();
      const check = (e: GPUError | null) => {
        if (e) this.#errors.push(`kernel ${name} grid [${grid}]: ${e.message}`);
      };
      this.#pendingScopes.push(
        this.device.popErrorScope().then(check),
        this.device.popErrorScope().then(check),
      );
    }
  }

  /** Records one launch into the open pass (its own timed pass while profiling). */
  #encode(pipe: Pipe, group: GPUBindGroup, x: number, y: number, z: number): void {
    if (this.#profiler) { // a pass of its own, timed (see profile)
      this.#endPass();
      this.#pass = this.#encoder!.beginComputePass(this.#profiler.pass(pipe.name));
    }
    const pass = this.#ensurePass();
    pass.setPipeline(pipe.pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(x, y, z);
    if (this.#profiler) this.#endPass();
    this.#lastKernel = pipe.name;
    this.#dispatches++;
  }

  /**
   * Runs `fn` and returns, besides its result, the dispatches it recorded, which replay() records
   * again without running `fn`: no op code, tensor bookkeeping or pipeline and bind-group lookups, only
   * the uniforms restaged and three pass calls per launch — what a decode step costs the host once its
   * commands repeat (on the H200 the host's recording limited small-model decode: bench/RESULTS.md).
   * The recording refers to the buffers `fn` used: the caller keeps them unchanged in place and
   * unclaimed (e.g. pooled buffers no other code acquires) while it replays.
   */
  record<T>(fn: () => T): { result: T; recording: Recording } {
    if (this.#recording) throw new Error("gpu.record: already recording");
    const recording = new Recording();
    this.#recording = recording;
    try {
      return { result: fn(), recording };
    } finally {
      this.#recording = null;
      if (this.debug) recording.replayable = false; // replay has no per-launch error scopes
    }
  }

  /** Records a recording's dispatches again, in order (see record). */
  replay(rec: Recording): void {
    if (!rec.replayable) {
      throw new Error("gpu.replay: the recording holds more than dispatches (a copy, clear, write or read)");
    }
    for (const d of rec.dispatches) {
      let group = d.group;
      if (d.words) {
        // Usually the same arena slot as when recorded (same blocks, same order since the last submit);
        // otherwise the bind group for the new slot, from the cache.
        const uniform = this.#stageUniforms(d.words, d.size, d.key);
        if (uniform.offset !== d.offset) group = this.#groups.get(d.pipe, d.buffers, uniform);
      }
      this.#encode(d.pipe, group, d.x, d.y, d.z);
    }
  }

  /** The block's arena slot; a full arena is submitted first (see UniformArena). */
  #stageUniforms(words: number[], size: number, key = words.join()): UniformSlot {
    const slot = this.#arena.stage(words, size, key);
    if (slot) return slot;
    this.flush();
    return this.#arena.stage(words, size, key)!;
  }

  /** Records a buffer-to-buffer copy (ends the open compute pass). Offsets and size multiples of 4. */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): void {
    this.#notDispatch();
    this.#endPass().copyBufferToBuffer(src, srcOffset, dst, dstOffset, size);
  }

  /** Records a zero-fill of a buffer range (ends the open compute pass). */
  clear(buffer: GPUBuffer, offset = 0, size?: number): void {
    this.#notDispatch();
    this.#endPass().clearBuffer(buffer, offset, size);
  }

  /** A command replay() cannot repeat: the recording in progress, if any, is not replayable. */
  #notDispatch(): void {
    if (this.#recording) this.#recording.replayable = false;
  }

  /** Submits everything recorded so far. Does not wait. */
  flush(): void {
    if (!this.#encoder) return;
    const encoder = this.#endPass();
    this.#encoder = null;
    this.#arena.upload(this.device.queue);
    this.device.queue.submit([encoder.finish()]);
    this.pool.collect();
  }

  /** Submits pending work, then frees every pooled buffer not in use. */
  trim(): void {
    this.flush();
    this.pool.trim();
  }

  /**
   * Copies host data into a buffer. Flushes first: a queue write would otherwise overtake dispatches
   * that are recorded but not yet submitted and still read the old contents.
   */
  write(buffer: GPUBuffer, data: ArrayBufferView, offset = 0): void {
    this.#notDispatch();
    this.flush();
    const bytes = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
    const whole = bytes.byteLength - (bytes.byteLength % 4);
    if (whole > 0) this.device.queue.writeBuffer(buffer, offset, bytes, 0, whole);
    if (whole < bytes.byteLength) {
      // writeBuffer needs sizes in multiples of 4: pad the tail (the pool rounds buffers up anyway).
      const tail = new Uint8Array(4);
      tail.set(bytes.subarray(whole));
      this.device.queue.writeBuffer(buffer, offset + whole, tail);
    }
  }

  /** Reads several buffer ranges back with one map (each map costs ≥ 10 ms in Deno). */
  async readMany(ranges: { buffer: GPUBuffer; offset?: number; size: number }[]): Promise<ArrayBuffer[]> {
    this.#notDispatch();
    const offsets: number[] = [];
    let total = 0;
    for (const r of ranges) {
      offsets.push(total);
      total += Math.ceil(r.size / 4) * 4;
    }
    const staging = this.device.createBuffer({
      size: Math.max(4, total),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const encoder = this.#endPass();
    ranges.forEach((r, i) => {
      encoder.copyBufferToBuffer(r.buffer, r.offset ?? 0, staging, offsets[i], Math.ceil(r.size / 4) * 4);
    });
    this.flush();
    await staging.mapAsync(GPUMapMode.READ);
    const all = staging.getMappedRange().slice(0);
    staging.unmap();
    staging.destroy();
    await this.#raiseErrors();
    return ranges.map((r, i) => all.slice(offsets[i], offsets[i] + r.size));
  }

  /** Reads one buffer range back. */
  async read(buffer: GPUBuffer, size: number, offset = 0): Promise<ArrayBuffer> {
    return (await this.readMany([{ buffer, offset, size }]))[0];
  }

  /** Flushes and waits until the GPU has finished everything submitted. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await this.#raiseErrors();
  }

  async #raiseErrors(): Promise<void> {
    if (this.#pendingScopes.length) {
      const scopes = this.#pendingScopes;
      this.#pendingScopes = [];
      await Promise.all(scopes);
    }
    if (this.#errors.length) {
      const errs = this.#errors;
      this.#errors = [];
      throw new Error(`WebGPU error: ${errs.join("\n")}`);
    }
  }

  /** Releases the device. The Gpu must not be used afterwards. */
  destroy(): void {
    this.trim();
    this.#arena.destroy();
    this.device.destroy();
  }
}
