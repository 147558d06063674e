import { testGpu } from "../util.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../assert.ts";
import { bucketSize, createGpu, NoAdapterError, Uniforms } from "../../src/gpu/mod.ts";
import { Tensor } from "../../src/tensor/mod.ts";
import { axpy, scale } from "../../src/ops/mod.ts";

Deno.test("pool buckets: ≥ request, multiples of 256, ≤ 19% waste above 1 KiB", () => {
  for (const n of [1, 255, 256, 257, 1000, 4097, 123_457, 10_000_000]) {
    const b = bucketSize(n);
    assert(b >= n && b % 256 === 0, `bucket ${b} for ${n}`);
    if (n > 1024) assert(b / n < 1.19 + 256 / n, `waste ${b / n} for ${n}`);
  }
});

Deno.test("pool reuses released buffers and tracks bytes in use and peak", async () => {
  const gpu = await testGpu();
  const before = gpu.pool.stats;
  const a = gpu.pool.acquire(5000);
  const mid = gpu.pool.stats;
  assertEquals(mid.buffersInUse, before.buffersInUse + 1);
  gpu.pool.release(a);
  const b = gpu.pool.acquire(4900); // same bucket → same buffer
  assert(a === b, "same-bucket buffer is reused");
  gpu.pool.release(b);
  assertThrows(() => gpu.pool.release(b), /released twice/);
  assert(gpu.pool.stats.peakBytesInUse >= mid.bytesInUse, "peak is tracked");
});

Deno.test("uniforms: u32/i32/f32 packed little-endian, padded to 16 bytes; bad u32 rejected", () => {
  const bytes = new Uniforms().u32(7).i32(-2).f32(0.5).u32(1).u32(2).bytes();
  assertEquals(bytes.byteLength, 32);
  const dv = new DataView(bytes.buffer);
  assertEquals([dv.getUint32(0, true), dv.getInt32(4, true), dv.getFloat32(8, true)], [7, -2, 0.5]);
  assertThrows(() => new Uniforms().u32(-1), /not a u32/);
});

Deno.test("write/read round-trip odd byte lengths (f16 with an odd element count), readMany in one map", async () => {
  const gpu = await testGpu();
  const dtypes = gpu.info.f16 ? ["f16", "f32", "i32"] as const : ["f32", "i32"] as const;
  const tensors = dtypes.map((d, i) => Tensor.from(gpu, [1.5, -2, 3 + i], [3], d));
  const back = await gpu.readMany(tensors.map((t) => ({ buffer: t.buffer, size: t.bytes })));
  assertEquals(back.map((b) => b.byteLength), tensors.map((t) => t.bytes));
  for (const t of tensors) {
    const v = [...await t.read()];
    assertEquals(v.slice(0, 2), t.dtype === "i32" ? [1, -2] : [1.5, -2]);
    t.dispose();
  }
});

Deno.test("a validation error names the kernel that caused it", async () => {
  for (const debug of [false, true]) {
    const gpu = await createGpu({ debug });
    const src = `@group(0) @binding(1) var<storage, read_write> o: array<f32>;
      @compute @workgroup_size(1) fn main() { o[0] = 1.0; }`;
    // Binding 2 does not exist in the shader: WebGPU rejects the bind group.
    const buf = gpu.pool.acquire(256);
    gpu.dispatch({ source: src }, { 2: buf }, [1]);
    await assertRejects(() => gpu.sync(), debug ? /kernel inline:main/ : /last kernel recorded: inline:main/);
    gpu.destroy();
  }
});

Deno.test("a WGSL compile error names the kernel", async () => {
  const gpu = await createGpu();
  const buf = gpu.pool.acquire(256);
  gpu.dispatch({ source: "@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }" }, [buf], [1]);
  await assertRejects(() => gpu.sync(), /kernel inline:main failed to build/);
  gpu.destroy();
});

Deno.test("f16 kernels are refused with a clear message when the device lacks shader-f16", async () => {
  const gpu = await createGpu({ disableF16: true });
  assertEquals(gpu.info.f16, false);
  assertThrows(() => gpu.sourceOf({ file: "elementwise", types: { ST: "f16" } }), /no shader-f16/);
  gpu.destroy();
});

Deno.test("NoAdapterError tells the user how to get an adapter", () => {
  const msg = new NoAdapterError().message;
  assert(msg.includes("mesa-vulkan-drivers") && msg.includes("--enable-unsafe-webgpu"), msg);
});

Deno.test("profile: every dispatch timed under its kernel's name; results unchanged; spans reads", async () => {
  const gpu = await testGpu();
  assert(gpu.info.timestampQuery, "the test adapter has timestamp-query");
  const n = 2100; // more dispatches than one query set holds (2048 pairs)
  const a = Tensor.from(gpu, [1, 2, 3, 4], [4], "f32");
  const acc = Tensor.zeros(gpu, [4], "f32");
  const { result, kernels } = await gpu.profile(async () => {
    for (let i = 0; i < n; i++) {
      axpy(acc, a);
      if (i === 1000) await gpu.read(acc.buffer, 16); // a readback inside the profiled run
    }
    const half = scale(acc, 0.5);
    return half;
  });
  assertEquals([...await result.read()], [1, 2, 3, 4].map((x) => x * n * 0.5), "dispatches ran in order");
  assert(kernels !== null);
  assertEquals(kernels.map((k) => k.count).sort((x, y) => x - y), [1, n]);
  assert(kernels.every((k) => k.ms >= 0 && Number.isFinite(k.ms)), "finite, non-negative times");
  assert(kernels[0].ms >= kernels[1].ms, "largest first");
  assert(kernels.find((k) => k.count === n)!.name.startsWith("elementwise:axpy"), kernels[0].name);
  assert(kernels.some((k) => k.ms > 0), "some time measured");
  // Profiling is off again: a second profile starts clean.
  const again = await gpu.profile(() => axpy(acc, a));
  assertEquals(again.kernels!.map((k) => k.count), [1]);
  for (const t of [a, acc, result]) t.dispose();
});

Deno.test("record/replay: replayed dispatches do what the recorded ones did; copies make it unreplayable", async () => {
  const gpu = await testGpu();
  const a = Tensor.from(gpu, [1, 2, 3, 4], [4], "f32");
  const acc = Tensor.zeros(gpu, [4], "f32");
  const before = gpu.dispatchCount;
  const { recording } = gpu.record(() => {
    axpy(acc, a, 2);
    axpy(acc, a, -0.5);
  });
  assert(recording.replayable && recording.dispatches.length === 2, "two dispatches recorded");
  gpu.replay(recording);
  gpu.flush(); // a new submit: the arena starts over, the same slots come back
  gpu.replay(recording);
  // Other uniforms staged first in a submit move the recording's blocks to other slots: the bind groups
  // follow.
  gpu.flush();
  axpy(acc, a, 0);
  gpu.replay(recording);
  assertEquals([...await acc.read()], [1, 2, 3, 4].map((x) => 4 * 1.5 * x));
  assertEquals(gpu.dispatchCount - before, 9);
  const other = gpu.record(() => {
    axpy(acc, a);
    gpu.clear(acc.buffer);
  });
  assert(!other.recording.replayable, "a clear is not a dispatch");
  assertThrows(() => gpu.replay(other.recording), /more than dispatches/);
  assertThrows(() => gpu.record(() => gpu.record(() => 0)), /already recording/);
  a.dispose();
  acc.dispose();
});
