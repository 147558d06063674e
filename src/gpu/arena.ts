/**
 * The uniform arena: every dispatch's uniform block is staged in one host array and copied to one GPU
 * buffer per submit, instead of a buffer (or a queue write) per dispatch. Identical blocks share one
 * slot until the next submit, so a bind group (keyed by the slot) repeats whenever a kernel sees the
 * same buffers and the same uniforms — as in every step of a decode chunk; fresh slots per dispatch
 * would make every key new.
 */

const ARENA_BYTES = 1 << 20;

/** A staged block: the arena buffer, its offset there and its size (a bind-group buffer binding). */
export interface UniformSlot {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

export class UniformArena {
  readonly buffer: GPUBuffer;
  readonly #host = new Uint32Array(ARENA_BYTES / 4);
  readonly #align: number;
  #used = 0;
  /** Offset of each distinct block staged since the last upload, by its words joined. */
  readonly #slots = new Map<string, number>();

  constructor(device: GPUDevice) {
    this.#align = device.limits.minUniformBufferOffsetAlignment;
    this.buffer = device.createBuffer({
      size: ARENA_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      label: "uniform-arena",
    });
  }

  /**
   * The slot of a block of `size` bytes (words zero-padded), or null when the arena is full: the
   * caller submits (which uploads and empties it) and stages again. `key` is `words.join()`.
   */
  stage(words: number[], size: number, key: string): UniformSlot | null {
    const hit = this.#slots.get(key);
    if (hit !== undefined) return { buffer: this.buffer, offset: hit, size };
    const offset = Math.ceil(this.#used / this.#align) * this.#align;
    if (offset + size > ARENA_BYTES) return null;
    const host = this.#host, at = offset / 4;
    for (let i = 0; i < size / 4; i++) host[at + i] = i < words.length ? words[i] : 0;
    this.#used = offset + size;
    this.#slots.set(key, offset);
    return { buffer: this.buffer, offset, size };
  }

  /**
   * Copies the staged blocks to the GPU and starts over. Call right before a submit: queue writes land
   * before the submit that follows them and after every earlier one, so one buffer serves every batch.
   */
  upload(queue: GPUQueue): void {
    if (this.#used === 0) return;
    // (typed-array offset and size count elements: u32 words)
    queue.writeBuffer(this.buffer, 0, this.#host, 0, Math.ceil(this.#used / 4));
    this.#used = 0;
    this.#slots.clear();
  }

  destroy(): void {
    this.buffer.destroy();
  }
}
