/** The buffer pool's buckets: quarter-octave steps for small sizes, 1/16-octave above 16 MiB, reuse. */
import { assert, assertEquals } from "../assert.ts";
import { testGpu } from "../util.ts";
import { bucketSize, BufferPool, FINE_BUCKETS_ABOVE } from "../../src/gpu/pool.ts";

const MiB = 2 ** 20;

Deno.test("bucketSize: ≤ 19% waste up to 16 MiB, ≤ 4.4% above; multiples of 256; monotone", () => {
  assertEquals(bucketSize(1), 256);
  assertEquals(bucketSize(256), 256);
  assertEquals(bucketSize(32 * MiB), 32 * MiB, "powers of two are buckets");
  // The MLP activation of the 7B step: 2048 × 14336 f32 = 112 MiB (was a 128 MiB bucket).
  const big = bucketSize(112 * MiB);
  assert(big >= 112 * MiB && big <= 112 * MiB * 1.005, `112 MiB → ${big / MiB} MiB`);
  let prev = 0;
  for (let b = 200; b < 600 * MiB; b = Math.ceil(b * 1.037) + 13) {
    const s = bucketSize(b);
    assert(s >= b && s % 256 === 0, `${b} → ${s}`);
    assert(
      s <= Math.max(256, b * (b > FINE_BUCKETS_ABOVE ? 2 ** (1 / 16) : 2 ** (1 / 4)) + 256),
      `${b} → ${s}`,
    );
    assert(s >= prev, "monotone");
    prev = s;
  }
  // Small sizes keep the coarse steps (shared by many slightly different tensors).
  assertEquals(bucketSize(3 * MiB), bucketSize(3.3 * MiB));
});

Deno.test("BufferPool: a big request reuses a free buffer up to three fine buckets larger, not more", async () => {
  const gpu = await testGpu();
  const pool = new BufferPool(gpu.device);
  const a = pool.acquire(20 * MiB);
  const aSize = bucketSize(20 * MiB);
  assertEquals(pool.stats.bytesInUse, aSize);
  pool.release(a);
  // 19 MiB is two fine buckets below 20 MiB: it gets a's buffer, counted at a's size.
  const b = pool.acquire(19 * MiB);
  assert(b === a, "reused the slightly larger free buffer");
  assertEquals(pool.stats.bytesInUse, aSize);
  assertEquals(pool.stats.bytesFree, 0);
  pool.release(b);
  // 16.5 MiB is more than three fine buckets below: a new buffer.
  const c = pool.acquire(16.5 * MiB);
  assert(c !== a, "no reuse across more than three fine buckets");
  assertEquals(pool.stats.buffersFree, 1);
  pool.release(c);
  // Small sizes reuse only their own bucket.
  const d = pool.acquire(1 * MiB);
  pool.release(d);
  const e = pool.acquire(0.8 * MiB); // the bucket below 1 MiB (0.84 MiB)
  assert(e !== d, "small sizes: own bucket only");
  pool.release(e);
  pool.trim();
  assertEquals(pool.stats.bytesInUse, 0);
});
