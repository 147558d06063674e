/**
 * Builder for a kernel's uniform block. Fields are 4 bytes each, written in the order of the WGSL
 * struct; every field in our kernels is u32, i32 or f32, so std140-style padding never arises as long
 * as vec types are avoided in uniform structs (a rule the kernel headers follow).
 *
 * @example
 * const u = new Uniforms().u32(rows).u32(cols).f32(eps); // struct { rows: u32, cols: u32, eps: f32 }
 * gpu.dispatch(spec, [buf], [groups], u);
 */
export class Uniforms {
  #data = new ArrayBuffer(64);
  #view = new DataView(this.#data);
  #n = 0;

  #grow(): void {
    if ((this.#n + 1) * 4 <= this.#data.byteLength) return;
    const next = new ArrayBuffer(this.#data.byteLength * 2);
    new Uint8Array(next).set(new Uint8Array(this.#data));
    this.#data = next;
    this.#view = new DataView(next);
  }

  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
      throw new RangeError(`Uniforms.u32: ${v} is not a u32`);
    }
    this.#grow();
    this.#view.setUint32(this.#n++ * 4, v, true);
    return this;
  }

  i32(v: number): this {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) {
      throw new RangeError(`Uniforms.i32: ${v} is not an i32`);
    }
    this.#grow();
    this.#view.setInt32(this.#n++ * 4, v, true);
    return this;
  }

  f32(v: number): this {
    this.#grow();
    this.#view.setFloat32(this.#n++ * 4, v, true);
    return this;
  }

  /** The bytes written so far, padded to 16 bytes (WGSL uniform structs are 16-byte aligned). */
  bytes(): Uint8Array {
    const len = Math.max(16, Math.ceil(this.#n * 4 / 16) * 16);
    const out = new Uint8Array(len);
    out.set(new Uint8Array(this.#data, 0, this.#n * 4));
    return out;
  }
}
