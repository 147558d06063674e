/**
 * Shared test helpers: one GPU per test module, seeded random data that is never all zero, poisoned
 * outputs, error norms, and float64 finite differences for backward checks.
 */
import { assert } from "./assert.ts";
import { createGpu, type DType, Gpu } from "../src/gpu/mod.ts";
import { Rng, Tensor } from "../src/tensor/mod.ts";
import { fill } from "../src/ops/elementwise.ts";

let shared: Promise<Gpu> | null = null;

/** The GPU for this test module (lavapipe on CI). Set WEBTUNE_GPU_DEBUG=1 to name failing kernels. */
export function testGpu(): Promise<Gpu> {
  if (!shared) {
    shared = createGpu({ debug: Deno.env.get("WEBTUNE_GPU_DEBUG") === "1" });
    // Release the device when this module's tests are done rather than in process teardown, where
    // many modules' devices (deno test --parallel) are dropped at once: on lavapipe that teardown
    // occasionally corrupted the heap and aborted an all-green run.
    let opened: Gpu | null = null;
    shared.then((g) => opened = g, () => {});
    globalThis.addEventListener("unload", () => opened?.device.destroy());
  }
  return shared;
}

/** Relative L2 error ‖got − want‖ / ‖want‖ (want must not be all zero). */
export function relL2(got: ArrayLike<number>, want: ArrayLike<number>): number {
  assert(got.length === want.length, `length ${got.length} vs ${want.length}`);
  let num = 0, den = 0;
  for (let i = 0; i < want.length; i++) {
    const d = got[i] - want[i];
    num += d * d;
    den += want[i] * want[i];
  }
  assert(den > 0, "reference is all zero: the test would prove nothing");
  return Number.isNaN(num) ? Infinity : Math.sqrt(num / den);
}

/** Asserts relative L2 error ≤ tol and no NaN (poisoned, unwritten outputs are NaN). */
export function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what = "") {
  for (let i = 0; i < got.length; i++) {
    if (!Number.isFinite(got[i]) && Number.isFinite(want[i])) {
      throw new Error(`${what}: element ${i} is ${got[i]} (want ${want[i]}): unwritten or overflowed`);
    }
  }
  const e = relL2(got, want);
  if (!(e <= tol)) throw new Error(`${what}: relative L2 error ${e.toExponential(3)} > ${tol}`);
}

/** Tolerance by storage type (DESIGN.md): f32 reordered sums 1e-4, f16 storage 5e-3. */
export function tolFor(dtype: DType, sameOrder = false): number {
  return dtype === "f16" ? 5e-3 : sameOrder ? 1e-5 : 1e-4;
}

/** A tensor whose every element is NaN (floats) or 0x7fffffff (ints), so unwritten outputs show. */
export function poisoned(gpu: Gpu, shape: number[], dtype: DType = "f32"): Tensor {
  const t = Tensor.empty(gpu, shape, dtype);
  if (dtype === "f32" || dtype === "f16") return fill(t, NaN);
  t.write(new Array(t.size).fill(dtype === "i32" ? 0x7fffffff : 0xdeadbeef));
  return t;
}

/** Random values in [lo, hi), rounded to f16 when the storage is f16 so the reference sees the same input. */
export function randomData(rng: Rng, n: number, dtype: DType = "f32", lo = -1, hi = 1): Float32Array {
  const a = rng.uniformArray(n, lo, hi);
  if (dtype === "f16") { for (let i = 0; i < n; i++) a[i] = Math.f16round(a[i]); }
  return a;
}

/** Central finite differences of a scalar function in float64. */
export function finiteDiff(f: (x: Float64Array) => number, x: Float64Array, eps = 1e-6): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const old = x[i];
    x[i] = old + eps;
    const up = f(x);
    x[i] = old - eps;
    const down = f(x);
    x[i] = old;
    g[i] = (up - down) / (2 * eps);
  }
  return g;
}

/** Which storage dtypes this adapter can test ("f16" only with shader-f16). */
export function storageTypes(gpu: Gpu): DType[] {
  return gpu.info.f16 ? ["f32", "f16"] : ["f32"];
}

let withoutSubgroups: Gpu | null = null;

/**
 * The test GPU, plus the same device seen without subgroups, so kernels linked with a block-reduction
 * library (src/ops/reduce.ts rowSpec) run both their subgroup and their workgroup-memory version.
 */
export async function reductionGpus(): Promise<[string, Gpu][]> {
  const gpu = await testGpu();
  if (!gpu.info.subgroups) return [["workgroup", gpu]];
  withoutSubgroups ??= new Gpu(gpu.device, { ...gpu.info, subgroups: false });
  return [["subgroup", gpu], ["workgroup", withoutSubgroups]];
}

/**
 * Ops allocate their outputs from the pool, which hands back the most recently released buffer of a
 * size bucket: releasing a NaN-filled one just before the op makes any unwritten output element NaN.
 */
export function poisonPool(gpu: Gpu, shape: number[]): void {
  poisoned(gpu, shape).dispose();
}
