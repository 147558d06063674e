/**
 * Builder for a kernel's uniform block. Fields are 4 bytes each, written in the order of the WGSL
 * struct; every field in our kernels is u32, i32 or f32, so std140-style padding never arises as long
 * as vec types are avoided in uniform structs (a rule the kernel headers follow).
 *
 * One is built per dispatch, so it is kept to a plain array of 32-bit patterns (no buffer allocated):
 * the runtime copies the words straight into its uniform arena.
 *
 * @example
 * const u = new Uniforms().u32(rows).u32(cols).f32(eps); // struct { rows: u32, cols: u32, eps: f32 }
 * gpu.dispatch(spec, [buf], [groups], u);
 */
const SCRATCH = new ArrayBuffer(4);
const SCRATCH_F32 = new Float32Array(SCRATCH);
const SCRATCH_U32 = new Uint32Array(SCRATCH);

export class Uniforms {
  /** The fields as u32 bit patterns. */
  readonly words: number[] = [];

  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
      throw new RangeError(`Uniforms.u32: ${v} is not a u32`);
    }
    this.words.push(v);
    return this;
  }

  i32(v: number): this {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) {
      throw new RangeError(`Uniforms.i32: ${v} is not an i32`);
    }
    this.words.push(v >>> 0);
    return this;
  }

  f32(v: number): this {
    SCRATCH_F32[0] = v;
    this.words.push(SCRATCH_U32[0]);
    return this;
  }

  /** Size in bytes, padded to 16 (WGSL uniform structs are 16-byte aligned). */
  get byteLength(): number {
    return Math.max(16, Math.ceil(this.words.length / 4) * 16);
  }

  /** The little-endian bytes, padded to byteLength. */
  bytes(): Uint8Array {
    const out = new Uint32Array(this.byteLength / 4);
    out.set(this.words);
    return new Uint8Array(out.buffer);
  }
}
