/**
 * Element types of the safetensors format and their conversion to the f32 / f16 arrays the GPU gets.
 * Every converter takes the tensor's raw little-endian bytes (any alignment) and returns a fresh array.
 */

/** Every dtype the safetensors format defines (safetensors/src/tensor.rs `Dtype`). */
export const SAFETENSORS_DTYPES = [
  "BOOL",
  "U8",
  "I8",
  "F8_E5M2",
  "F8_E4M3",
  "I16",
  "U16",
  "F16",
  "BF16",
  "I32",
  "U32",
  "F32",
  "F64",
  "I64",
  "U64",
] as const;

/** A safetensors element type, e.g. "BF16". */
export type SafetensorsDType = typeof SAFETENSORS_DTYPES[number];

/** Bytes per element. */
export const DTYPE_SIZE: Record<SafetensorsDType, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

/** True for a string naming a known dtype. */
export function isDType(s: unknown): s is SafetensorsDType {
  return typeof s === "string" && (SAFETENSORS_DTYPES as readonly string[]).includes(s);
}

/** Largest finite f16 value: anything beyond it would become ±Infinity. */
export const F16_MAX = 65504;

// Typed-array views need the byte offset to be a multiple of the element size; copy when it is not.
// All hosts we run on (x86, ARM, browsers) are little-endian, like the format.
function aligned(bytes: Uint8Array, size: number): ArrayBuffer {
  if (bytes.byteOffset % size === 0 && bytes.buffer instanceof ArrayBuffer) return bytes.buffer;
  return bytes.slice().buffer;
}
function view<T>(bytes: Uint8Array, size: number, make: (b: ArrayBuffer, off: number, n: number) => T): T {
  const buf = aligned(bytes, size);
  const off = buf === bytes.buffer ? bytes.byteOffset : 0;
  return make(buf, off, bytes.length / size);
}

/** Float32 bits of bfloat16 values: bf16 is the top half of an f32. */
export function bf16ToF32(bits: Uint16Array): Float32Array {
  const out = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = bits[i] << 16;
  return new Float32Array(out.buffer);
}

/** bfloat16 bits of f32 values, rounded to nearest even (NaN stays NaN). */
export function f32ToBf16(x: Float32Array): Uint16Array {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const b = u[i];
    if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) out[i] = (b >>> 16) | 0x40;
    else out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}

// The two 8-bit float formats decode through 256-entry tables built once.
function f8Table(expBits: number, bias: number, ieeeSpecials: boolean): Float32Array {
  const t = new Float32Array(256);
  const manBits = 7 - expBits;
  for (let b = 0; b < 256; b++) {
    const sign = b & 0x80 ? -1 : 1;
    const e = (b >> manBits) & ((1 << expBits) - 1);
    const m = b & ((1 << manBits) - 1);
    const emax = (1 << expBits) - 1;
    let v: number;
    if (e === 0) v = (m / (1 << manBits)) * 2 ** (1 - bias);
    else if (ieeeSpecials && e === emax) v = m === 0 ? Infinity : NaN;
    else if (!ieeeSpecials && e === emax && m === (1 << manBits) - 1) v = NaN; // e4m3fn: only S.1111.111
    else v = (1 + m / (1 << manBits)) * 2 ** (e - bias);
    t[b] = sign * v;
  }
  return t;
}
let e4m3: Float32Array | undefined, e5m2: Float32Array | undefined;
// V8 converts Float16Array ↔ Float32Array slowly (~150M values/s); 64K-entry tables run at memory speed.
let f16ToF32Table: Float32Array | undefined;
let bf16ToF16Table: Uint16Array | undefined;

/** f16 bits of every bf16 bit pattern (rounded to nearest even); out-of-range finite values map to ±Inf. */
function bf16ToF16Bits(): Uint16Array {
  if (bf16ToF16Table) return bf16ToF16Table;
  const all = new Uint16Array(65536).map((_, i) => i);
  const f16 = new Float16Array(bf16ToF32(all));
  return (bf16ToF16Table = new Uint16Array(f16.buffer));
}

/**
 * Any dtype's raw bytes as f32 values (integers convert exactly up to 2^24).
 *
 * @example
 * toF32(new Uint8Array([0, 0, 128, 63]), "F32"); // Float32Array [1]
 */
export function toF32(bytes: Uint8Array, dtype: SafetensorsDType): Float32Array {
  switch (dtype) {
    case "F32":
      return view(bytes, 4, (b, o, n) => new Float32Array(b, o, n)).slice();
    case "F16": {
      const bits = view(bytes, 2, (b, o, n) => new Uint16Array(b, o, n));
      const t = (f16ToF32Table ??= new Float32Array(
        new Float16Array(new Uint16Array(65536).map((_, i) => i).buffer),
      ));
      const out = new Float32Array(bits.length);
      for (let i = 0; i < bits.length; i++) out[i] = t[bits[i]];
      return out;
    }
    case "BF16":
      return bf16ToF32(view(bytes, 2, (b, o, n) => new Uint16Array(b, o, n)));
    case "F64":
      return new Float32Array(view(bytes, 8, (b, o, n) => new Float64Array(b, o, n)));
    case "BOOL":
    case "U8":
      return new Float32Array(bytes);
    case "I8":
      return new Float32Array(new Int8Array(bytes.buffer, bytes.byteOffset, bytes.length));
    case "I16":
      return new Float32Array(view(bytes, 2, (b, o, n) => new Int16Array(b, o, n)));
    case "U16":
      return new Float32Array(view(bytes, 2, (b, o, n) => new Uint16Array(b, o, n)));
    case "I32":
      return new Float32Array(view(bytes, 4, (b, o, n) => new Int32Array(b, o, n)));
    case "U32":
      return new Float32Array(view(bytes, 4, (b, o, n) => new Uint32Array(b, o, n)));
    case "I64":
    case "U64": {
      const src = view(
        bytes,
        8,
        (b, o, n) => dtype === "I64" ? new BigInt64Array(b, o, n) : new BigUint64Array(b, o, n),
      );
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = Number(src[i]);
      return out;
    }
    case "F8_E4M3":
    case "F8_E5M2": {
      const t = dtype === "F8_E4M3" ? (e4m3 ??= f8Table(4, 7, false)) : (e5m2 ??= f8Table(5, 15, true));
      const out = new Float32Array(bytes.length);
      for (let i = 0; i < bytes.length; i++) out[i] = t[bytes[i]];
      return out;
    }
  }
}

/**
 * Any dtype's raw bytes as f16 values. F16 is copied as is; every other dtype goes through f32 a chunk
 * at a time (so a 500M-element embedding never exists as f32 all at once) and is rounded to nearest.
 * A finite value with |x| > 65504 throws `onOverflow(value, index)`'s error unless `clamp`, which
 * saturates it to ±65504.
 */
export function toF16(
  bytes: Uint8Array,
  dtype: SafetensorsDType,
  clamp: boolean,
  onOverflow: (value: number, index: number) => Error,
): Float16Array {
  if (dtype === "F16") return view(bytes, 2, (b, o, n) => new Float16Array(b, o, n)).slice();
  if (dtype === "BF16") {
    return bf16ToF16(view(bytes, 2, (b, o, n) => new Uint16Array(b, o, n)), clamp, onOverflow);
  }
  const size = DTYPE_SIZE[dtype];
  const n = bytes.length / size;
  const out = new Float16Array(n);
  const CHUNK = 1 << 20;
  for (let start = 0; start < n; start += CHUNK) {
    const end = Math.min(n, start + CHUNK);
    const f = toF32(bytes.subarray(start * size, end * size), dtype);
    for (let i = 0; i < f.length; i++) {
      const v = f[i];
      if (v > F16_MAX || v < -F16_MAX) {
        if (!Number.isFinite(v)) continue; // ±Infinity stays infinite; not an overflow of ours
        if (!clamp) throw onOverflow(v, start + i);
        f[i] = v > 0 ? F16_MAX : -F16_MAX;
      }
    }
    out.set(f, start);
  }
  return out;
}

/** bfloat16 bits → f16 through the 64K table; a finite bf16 beyond ±65504 overflows (see {@link toF16}). */
function bf16ToF16(
  bits: Uint16Array,
  clamp: boolean,
  onOverflow: (value: number, index: number) => Error,
): Float16Array {
  const t = bf16ToF16Bits();
  const out = new Uint16Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i], h = t[b];
    // f16 ±Inf from a bf16 that is not ±Inf/NaN (exponent bits not all ones) means |x| > 65504.
    if ((h & 0x7fff) === 0x7c00 && (b & 0x7f80) !== 0x7f80) {
      if (!clamp) throw onOverflow(bf16ToF32(new Uint16Array([b]))[0], i);
      out[i] = (h & 0x8000) | 0x7bff; // ±65504
    } else out[i] = h;
  }
  return new Float16Array(out.buffer);
}
