/**
 * Tensor: a shape, a dtype and a GPU buffer from the pool. Row-major and contiguous always; ops that
 * need another layout say so in their kernels (transposed matmul variants) instead of making views.
 *
 * Lifetime is deterministic, not left to the GC: every tensor created inside `tidy()` is released when
 * the scope ends unless it is returned or `keep()`-ed. Training steps and decode chunks run in a
 * scope, so the pool's size stays flat over thousands of steps.
 */
import { type DType, dtypeBytes, type Gpu, type HostArray, viewAs } from "../gpu/mod.ts";

/** Slot the autograd layer fills; opaque here so this layer does not depend on autograd. */
export interface GradNode {
  readonly name: string;
}

let nextId = 1;
const scopes: Set<Tensor>[] = [];

export class Tensor {
  readonly id = nextId++;
  readonly gpu: Gpu;
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** Number of elements. */
  readonly size: number;
  #buffer: GPUBuffer | null;
  /** True for leaves whose gradient the user wants (parameters) and for results computed from them. */
  requiresGrad = false;
  /** Gradient of a leaf, accumulated by backward() (`+=`). Persistent: not owned by any scope. */
  grad: Tensor | null = null;
  /** The operation that produced this tensor, when autograd recorded one. */
  node: GradNode | null = null;
  /** Human-readable name (parameter path for weights). */
  name = "";

  constructor(
    gpu: Gpu,
    shape: readonly number[],
    dtype: DType,
    buffer: GPUBuffer,
    opts: { persistent?: boolean } = {},
  ) {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new Error(`Tensor: bad shape [${shape}]`);
    }
    this.gpu = gpu;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = shape.reduce((a, b) => a * b, 1);
    this.#buffer = buffer;
    if (!opts.persistent && scopes.length) scopes[scopes.length - 1].add(this);
  }

  /** Allocates an uninitialised tensor. `persistent` ones (weights, optimizer state) skip the scope. */
  static empty(
    gpu: Gpu,
    shape: readonly number[],
    dtype: DType = "f32",
    opts: { persistent?: boolean } = {},
  ) {
    const n = shape.reduce((a, b) => a * b, 1);
    const buffer = gpu.pool.acquire(Math.max(4, n * dtypeBytes(dtype)), { exact: opts.persistent });
    return new Tensor(gpu, shape, dtype, buffer, opts);
  }

  /** Uploads host data. Numbers are converted to the dtype's typed array. */
  static from(
    gpu: Gpu,
    data: ArrayLike<number>,
    shape: readonly number[],
    dtype: DType = "f32",
    opts: { persistent?: boolean } = {},
  ): Tensor {
    const t = Tensor.empty(gpu, shape, dtype, opts);
    if (data.length !== t.size) {
      t.dispose();
      throw new Error(`Tensor.from: ${data.length} values for shape [${shape}] (${t.size} elements)`);
    }
    t.write(data);
    return t;
  }

  /** A tensor of zeros. */
  static zeros(
    gpu: Gpu,
    shape: readonly number[],
    dtype: DType = "f32",
    opts: { persistent?: boolean } = {},
  ) {
    const t = Tensor.empty(gpu, shape, dtype, opts);
    gpu.clear(t.buffer);
    return t;
  }

  get buffer(): GPUBuffer {
    if (!this.#buffer) throw new Error(`tensor ${this.name || this.id} [${this.shape}] used after dispose()`);
    return this.#buffer;
  }

  get bytes(): number {
    return this.size * dtypeBytes(this.dtype);
  }

  get disposed(): boolean {
    return this.#buffer === null;
  }

  /** Overwrites the contents from host data of the same length. */
  write(data: ArrayLike<number>): void {
    if (data.length !== this.size) {
      throw new Error(`Tensor.write: ${data.length} values for ${this.size} elements`);
    }
    const host = toHost(this.dtype, data);
    this.gpu.write(this.buffer, host);
  }

  /** Reads the contents back (flushes the GPU queue; ≥ 10 ms in Deno — never per step). */
  async read(): Promise<HostArray> {
    const bytes = await this.gpu.read(this.buffer, Math.max(4, this.bytes));
    return viewAs(this.dtype, bytes, this.size);
  }

  /** Same buffer under another shape with the same element count (shares storage, same scope rules). */
  reshape(shape: readonly number[]): Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    if (n !== this.size) throw new Error(`reshape: [${this.shape}] → [${shape}] changes the element count`);
    return new ReshapedTensor(this, shape);
  }

  /** Returns the buffer to the pool and drops the autograd node. Idempotent. */
  dispose(): void {
    this.node = null;
    this.releaseStorage();
  }

  /**
   * Returns the storage to the pool now but keeps the tensor in the autograd graph (shape, node): for
   * activations that no backward rule reads, freed while the forward goes on. Every later access to
   * the data (`buffer`, also through a reshape of it) throws. On a reshape view this releases the
   * storage it shares with its base. Idempotent.
   *
   * @example
   * const q = rope(reshape(qProj, [B, T, H, D]), pos, invFreq);
   * qProj.releaseStorage(); // rope's backward reads only positions and invFreq
   */
  releaseStorage(): void {
    if (!this.#buffer) return;
    this.gpu.pool.release(this.#buffer);
    this.#buffer = null;
    for (const s of scopes) s.delete(this);
  }

  /** @internal used by ReshapedTensor to share the buffer without owning it. */
  protected detachBuffer(): void {
    this.#buffer = null;
  }
}

/**
 * A view with another shape on its base's buffer; disposing it releases nothing. The base is always a
 * tensor that owns its buffer (a reshape of a reshape points at the owner), and the data is reached
 * through it, so a view of released storage throws instead of reading a buffer the pool reused.
 */
class ReshapedTensor extends Tensor {
  readonly base: Tensor;
  #detached = false;
  constructor(base: Tensor, shape: readonly number[]) {
    const owner = base instanceof ReshapedTensor ? base.base : base;
    super(owner.gpu, shape, owner.dtype, owner.buffer);
    this.base = owner;
    // The owner's buffer is the one to use: keep no second reference that could outlive it.
    this.detachBuffer();
  }
  override get buffer(): GPUBuffer {
    if (this.#detached) {
      throw new Error(`tensor ${this.name || this.id} [${this.shape}] used after dispose()`);
    }
    return this.base.buffer;
  }
  override get disposed(): boolean {
    return this.#detached || this.base.disposed;
  }
  override dispose(): void {
    this.#detached = true;
    this.node = null;
    for (const s of scopes) s.delete(this);
  }
  override releaseStorage(): void {
    this.base.releaseStorage();
  }
}

function toHost(dtype: DType, data: ArrayLike<number>): ArrayBufferView {
  switch (dtype) {
    case "f32":
      return data instanceof Float32Array ? data : Float32Array.from(data);
    case "f16":
      return data instanceof Float16Array ? data : Float16Array.from(data);
    case "i32":
      return data instanceof Int32Array ? data : Int32Array.from(data);
    case "u32":
      return data instanceof Uint32Array ? data : Uint32Array.from(data);
  }
}

/**
 * Runs `fn` in a scope: tensors it creates are disposed when it returns, except those in the result
 * (a tensor, or an array/object of tensors) and those passed to keep(). Works with async functions;
 * do not interleave two async scopes.
 *
 * @example
 * const loss = tidy(() => crossEntropy(model.forward(x), labels)); // intermediates released
 */
export function tidy<R>(fn: () => R): R {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  const end = (result: R) => {
    const i = scopes.lastIndexOf(scope);
    if (i >= 0) scopes.splice(i, 1);
    const keepers = new Set<Tensor>();
    collect(result, keepers);
    for (const t of scope) {
      if (keepers.has(t)) {
        // Hand survivors to the enclosing scope so nesting composes.
        if (scopes.length) scopes[scopes.length - 1].add(t);
      } else t.dispose();
    }
    return result;
  };
  let result: R;
  try {
    result = fn();
  } catch (e) {
    end(undefined as R);
    throw e;
  }
  if (result instanceof Promise) {
    return result.then(end, (e) => {
      end(undefined as R);
      throw e;
    }) as R;
  }
  return end(result);
}

/** Removes tensors from every open scope so they outlive it. Returns its argument. */
export function keep<T extends Tensor | Tensor[]>(t: T): T {
  for (const x of Array.isArray(t) ? t : [t]) for (const s of scopes) s.delete(x);
  return t;
}

function collect(v: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 4 || v === null || typeof v !== "object") return;
  if (v instanceof Tensor) {
    out.add(v);
    if (v instanceof ReshapedTensor) out.add(v.base);
  } else if (Array.isArray(v)) { for (const x of v) collect(x, out, depth + 1); }
  else if (v instanceof Map) { for (const x of v.values()) collect(x, out, depth + 1); }
  else if (Object.getPrototypeOf(v) === Object.prototype) {
    for (const x of Object.values(v)) collect(x, out, depth + 1);
  }
}

/** The tensor that owns `t`'s buffer: `t` itself, or the tensor a reshape view was taken from. */
export function storageOf(t: Tensor): Tensor {
  return t instanceof ReshapedTensor ? t.base : t;
}

/** True when `a` and `b` are the same storage (reshapes of one buffer, or equal). */
export function sharesStorage(a: Tensor, b: Tensor): boolean {
  return storageOf(a) === storageOf(b);
}
