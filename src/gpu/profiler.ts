/**
 * Per-kernel GPU time (benches only): while a profile runs, Gpu gives every dispatch its own compute
 * pass whose beginning and end write timestamps into query sets here; at the end the sets are
 * resolved, read back once, and the durations summed by kernel name. A pass per dispatch costs a few
 * µs of GPU time each, so a profiled run is slower than a plain one; the shares are what it is for.
 */

/** GPU time of one kernel (pipeline name: file:entry<types>) over a profiled run. */
export interface KernelTime {
  name: string;
  /** Dispatches. */
  count: number;
  /** Summed GPU milliseconds (pass begin to end). */
  ms: number;
}

/** WebGPU caps a query set at 4096 queries: two per dispatch. */
const PAIRS_PER_SET = 2048;

export class KernelProfiler {
  readonly #device: GPUDevice;
  readonly #sets: GPUQuerySet[] = [];
  readonly #names: string[] = [];

  constructor(device: GPUDevice) {
    this.#device = device;
  }

  /** Pass descriptor timing the next dispatch, recorded under `name`. */
  pass(name: string): GPUComputePassDescriptor {
    const i = this.#names.length;
    if (i % PAIRS_PER_SET === 0) {
      this.#sets.push(this.#device.createQuerySet({ type: "timestamp", count: 2 * PAIRS_PER_SET }));
    }
    this.#names.push(name);
    const at = 2 * (i % PAIRS_PER_SET);
    return {
      timestampWrites: {
        querySet: this.#sets[this.#sets.length - 1],
        beginningOfPassWriteIndex: at,
        endOfPassWriteIndex: at + 1,
      },
    };
  }

  /**
   * Resolves every query into one buffer (recorded on `encoder`); after the caller has submitted and
   * mapped it, `summarise` turns its bytes into per-kernel times.
   */
  resolve(encoder: GPUCommandEncoder): { buffer: GPUBuffer; size: number } {
    const size = Math.max(16, 16 * this.#names.length);
    const buffer = this.#device.createBuffer({
      size,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    this.#sets.forEach((set, s) => {
      const pairs = Math.min(PAIRS_PER_SET, this.#names.length - s * PAIRS_PER_SET);
      encoder.resolveQuerySet(set, 0, 2 * pairs, buffer, s * PAIRS_PER_SET * 16);
    });
    return { buffer, size };
  }

  /** Per-kernel sums, largest first, from the resolved timestamps. Destroys the query sets. */
  summarise(bytes: ArrayBuffer): KernelTime[] {
    const t = new BigUint64Array(bytes);
    const by = new Map<string, KernelTime>();
    this.#names.forEach((name, i) => {
      const k = by.get(name) ?? { name, count: 0, ms: 0 };
      // A pass whose end precedes its start (a clock reset, seen on some drivers) counts as zero.
      k.ms += t[2 * i + 1] > t[2 * i] ? Number(t[2 * i + 1] - t[2 * i]) / 1e6 : 0;
      k.count++;
      by.set(name, k);
    });
    for (const s of this.#sets) s.destroy();
    return [...by.values()].sort((a, b) => b.ms - a.ms);
  }
}
