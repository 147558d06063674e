/**
 * Element types a GPU buffer can hold. bf16 exists only at load time (src/io converts it), so it is
 * not a storage dtype here.
 */
export type DType = "f32" | "f16" | "i32" | "u32";

/** Bytes per element of a dtype. */
export function dtypeBytes(dtype: DType): number {
  return dtype === "f16" ? 2 : 4;
}

/** Typed array a dtype reads back into. f16 reads back as Float16Array. */
export type HostArray = Float32Array | Float16Array | Int32Array | Uint32Array;

/** Allocates a host array for `n` elements of `dtype`. */
export function hostArray(dtype: DType, n: number): HostArray {
  switch (dtype) {
    case "f32":
      return new Float32Array(n);
    case "f16":
      return new Float16Array(n);
    case "i32":
      return new Int32Array(n);
    case "u32":
      return new Uint32Array(n);
  }
}

/** Views raw bytes as the host array of `dtype` (no copy). */
export function viewAs(dtype: DType, bytes: ArrayBuffer, n: number): HostArray {
  switch (dtype) {
    case "f32":
      return new Float32Array(bytes, 0, n);
    case "f16":
      return new Float16Array(bytes, 0, n);
    case "i32":
      return new Int32Array(bytes, 0, n);
    case "u32":
      return new Uint32Array(bytes, 0, n);
  }
}
