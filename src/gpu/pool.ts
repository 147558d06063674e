/**
 * Size-bucketed GPU buffer pool. Transient tensors (activations, gradients of activations) come and go
 * every step; creating and destroying GPUBuffers for each costs far more than reusing them.
 *
 * Buckets grow in steps of 2^(1/4) (≤ 19% waste) up to 16 MiB and in steps of 2^(1/16) (≤ 4.4%) above:
 * a training step's big activations (a 2048 × 14336 f32 MLP activation is 112 MiB, which a 2^(1/4)
 * bucket rounds to 128 MiB) cost their size, not the next quarter-octave. So that slightly different
 * big sizes (sequence lengths vary between batches) still share buffers, a big request with no free
 * buffer in its own bucket takes the smallest free one of the next three buckets (≤ 14% larger).
 * Buffers that live for the whole run (weights,
 * optimizer state) should be allocated with `exact: true`: they bypass the buckets and are destroyed on
 * release instead of being kept.
 *
 * Reuse is safe without fences: WebGPU orders all queue work, so a buffer released while a pending
 * dispatch still reads it is only ever written by work recorded after that dispatch. The one hazard,
 * `queue.writeBuffer` overtaking unsubmitted commands, is handled by Gpu.write flushing first.
 */
export interface PoolStats {
  /** Buffers handed out and not yet released. */
  buffersInUse: number;
  /** Bytes of the buffers handed out (bucket size, not requested size). */
  bytesInUse: number;
  /** Buffers kept for reuse. */
  buffersFree: number;
  /** Bytes kept for reuse. */
  bytesFree: number;
  /** Largest bytesInUse seen since creation or the last resetPeak(). */
  peakBytesInUse: number;
}

const STORAGE_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Sizes above this get the fine buckets. */
export const FINE_BUCKETS_ABOVE = 16 << 20;
/** Fine buckets a big request may go up to take a free buffer instead of creating one. */
const REUSE_STEPS = 3;

/** Rounds a byte size up to its bucket: 256 B minimum, steps of 2^(1/4), above 16 MiB of 2^(1/16). */
export function bucketSize(bytes: number): number {
  if (bytes <= 256) return 256;
  const steps = bytes > FINE_BUCKETS_ABOVE ? 16 : 4;
  const exp = Math.ceil(Math.log2(bytes) * steps) / steps;
  // Round up to a multiple of 256 so every bucket is a valid binding size and offset stride.
  return Math.ceil(Math.pow(2, exp) / 256) * 256;
}

export class BufferPool {
  #device: GPUDevice;
  #free = new Map<number, GPUBuffer[]>();
  #live = new Map<GPUBuffer, { size: number; exact: boolean }>();
  #doomed: GPUBuffer[] = [];
  #stats: PoolStats = { buffersInUse: 0, bytesInUse: 0, buffersFree: 0, bytesFree: 0, peakBytesInUse: 0 };

  constructor(device: GPUDevice) {
    this.#device = device;
  }

  /** A storage buffer of at least `bytes` bytes (contents undefined). */
  acquire(bytes: number, opts: { exact?: boolean; label?: string } = {}): GPUBuffer {
    const exact = opts.exact ?? false;
    let size = exact ? Math.max(4, Math.ceil(bytes / 4) * 4) : bucketSize(bytes);
    let buffer = exact ? undefined : this.#free.get(size)?.pop();
    if (!buffer && !exact && size > FINE_BUCKETS_ABOVE) {
      // The next fine buckets up: bucketSize of a size just past a bucket is the following bucket.
      for (let k = 1, s = size; k <= REUSE_STEPS && !buffer; k++) {
        s = bucketSize(s + 1);
        buffer = this.#free.get(s)?.pop();
        if (buffer) size = s;
      }
    }
    if (buffer) {
      this.#stats.buffersFree--;
      this.#stats.bytesFree -= size;
    } else {
      buffer = this.#device.createBuffer({ size, usage: STORAGE_USAGE, label: opts.label });
    }
    this.#live.set(buffer, { size, exact });
    this.#stats.buffersInUse++;
    this.#stats.bytesInUse += size;
    this.#stats.peakBytesInUse = Math.max(this.#stats.peakBytesInUse, this.#stats.bytesInUse);
    return buffer;
  }

  /** Returns a buffer obtained from acquire(). Releasing twice or a foreign buffer throws. */
  release(buffer: GPUBuffer): void {
    const info = this.#live.get(buffer);
    if (!info) throw new Error("BufferPool.release: buffer is not live in this pool (released twice?)");
    this.#live.delete(buffer);
    this.#stats.buffersInUse--;
    this.#stats.bytesInUse -= info.size;
    if (info.exact) {
      // Recorded-but-unsubmitted commands may still use it; destroying now would fail their submit.
      this.#doomed.push(buffer);
      return;
    }
    let list = this.#free.get(info.size);
    if (!list) this.#free.set(info.size, list = []);
    list.push(buffer);
    this.#stats.buffersFree++;
    this.#stats.bytesFree += info.size;
  }

  /** Destroys released exact-size buffers. Gpu.flush() calls it right after a submit. */
  collect(): void {
    for (const b of this.#doomed) b.destroy();
    this.#doomed = [];
  }

  /**
   * Destroys every free buffer (e.g. after loading a model, or when memory is tight). Call it through
   * Gpu.trim(), which submits pending work first.
   */
  trim(): void {
    this.collect();
    for (const list of this.#free.values()) for (const b of list) b.destroy();
    this.#free.clear();
    this.#stats.buffersFree = 0;
    this.#stats.bytesFree = 0;
  }

  /** The buffers kept for reuse (tests fill them with NaN to show that nothing reads released memory). */
  freeBuffers(): GPUBuffer[] {
    return [...this.#free.values()].flat();
  }

  resetPeak(): void {
    this.#stats.peakBytesInUse = this.#stats.bytesInUse;
  }

  get stats(): Readonly<PoolStats> {
    return { ...this.#stats };
  }
}
