import { assertClose, poisoned, randomData, storageTypes, testGpu, tolFor } from "../util.ts";
import { assertThrows } from "../assert.ts";
import { Rng, Tensor, tidy } from "../../src/tensor/mod.ts";
import { KvCache, ropeKvWrite } from "../../src/ops/attention_decode.ts";
import { kvCacheWrite } from "../../src/ops/attention_decode.ts";
import { rope, ropeInvFreq } from "../../src/ops/rope.ts";
import { ropeKvWriteRef } from "../../src/reference/decode.ts";

// [B, H, Hkv, D, maxT]: GQA, MQA, MHA; D = 8 (one vec4 per half head) up to 40; a row past maxT.
const CASES = [[1, 4, 2, 16, 9], [3, 6, 1, 8, 5], [2, 3, 3, 40, 33]];

Deno.test("ropeKvWrite: rotated q and the cache rows equal the reference (f32/f16 caches, per-row positions)", async () => {
  const gpu = await testGpu();
  const rng = new Rng(31);
  for (const [B, H, Hkv, D, maxT] of CASES) {
    for (const ct of storageTypes(gpu)) {
      await tidy(async () => {
        const qkv = randomData(rng, B * (H + 2 * Hkv) * D, "f32", -2, 2);
        // Large positions exercise the angle reduction; the last sequence's row is past maxT (dropped).
        const pos = Array.from({ length: B }, (_, b) => b === B - 1 && B > 1 ? maxT + 3 : 1000 + 777 * b);
        const rows = pos.map((p, b) => b === B - 1 && B > 1 ? p : b % maxT);
        const inv = ropeInvFreq(D, 10000);
        const cache = new KvCache(gpu, B, Hkv, maxT, D, ct);
        const k0 = randomData(rng, cache.k.size, ct), v0 = randomData(rng, cache.v.size, ct);
        cache.k.write(k0);
        cache.v.write(v0);
        poisoned(gpu, [B, 1, H, D]).dispose(); // the output reuses this NaN-filled buffer
        const q = ropeKvWrite(
          Tensor.from(gpu, qkv, [B, (H + 2 * Hkv) * D]),
          H,
          cache,
          Tensor.from(gpu, pos, [B, 1], "i32"),
          Tensor.from(gpu, rows, [B], "u32"),
          Tensor.from(gpu, inv, [D / 2]),
        );
        const want = ropeKvWriteRef(qkv, pos, rows, inv, { B, H, Hkv, D, maxT }, k0, v0);
        const what = `ropeKvWrite B${B} H${H}/${Hkv} D${D} ${ct}`;
        assertClose(await q.read(), want.q, 1e-5, `${what} q`);
        assertClose(await cache.k.read(), want.k, tolFor(ct, true), `${what} k cache`);
        assertClose(await cache.v.read(), want.v, tolFor(ct, true), `${what} v cache`);
        cache.dispose();
      });
    }
  }
});

Deno.test("ropeKvWrite equals rope + rope + kvCacheWrite (the unfused decode path) exactly", async () => {
  const gpu = await testGpu();
  const rng = new Rng(32);
  const [B, H, Hkv, D, maxT] = [2, 8, 2, 32, 16];
  await tidy(async () => {
    const qkv = randomData(rng, B * (H + 2 * Hkv) * D, "f32", -2, 2);
    const part = (from: number, n: number, heads: number) => {
      const out = new Float32Array(B * n);
      for (let b = 0; b < B; b++) {
        out.set(qkv.subarray(b * (H + 2 * Hkv) * D + from, b * (H + 2 * Hkv) * D + from + n), b * n);
      }
      return Tensor.from(gpu, out, [B, 1, heads, D]);
    };
    const pos = Tensor.from(gpu, [5000, 3], [B, 1], "i32"), rows = Tensor.from(gpu, [7, 3], [B], "u32");
    const inv = Tensor.from(gpu, ropeInvFreq(D, 500000), [D / 2]);
    const fused = new KvCache(gpu, B, Hkv, maxT, D, "f32"), plain = new KvCache(gpu, B, Hkv, maxT, D, "f32");
    const q1 = ropeKvWrite(Tensor.from(gpu, qkv, [B, (H + 2 * Hkv) * D]), H, fused, pos, rows, inv);
    const q2 = rope(part(0, H * D, H), pos, inv);
    kvCacheWrite(plain, rope(part(H * D, Hkv * D, Hkv), pos, inv), part((H + Hkv) * D, Hkv * D, Hkv), rows);
    assertClose(await q1.read(), await q2.read(), 0, "q");
    assertClose(await fused.k.read(), await plain.k.read(), 0, "k cache");
    assertClose(await fused.v.read(), await plain.v.read(), 0, "v cache");
    fused.dispose();
    plain.dispose();
  });
});

Deno.test("ropeKvWrite rejects shapes it cannot run", async () => {
  const gpu = await testGpu();
  await tidy(() => {
    const cache = new KvCache(gpu, 1, 2, 4, 12, "f32"); // D = 12: not a multiple of 8
    const pos = Tensor.from(gpu, [0], [1, 1], "i32"), rows = Tensor.from(gpu, [0], [1], "u32");
    const inv = Tensor.from(gpu, new Float32Array(6), [6]);
    assertThrows(
      () => ropeKvWrite(Tensor.zeros(gpu, [1, 6 * 12]), 2, cache, pos, rows, inv),
      /multiple of 8/,
    );
    assertThrows(() => ropeKvWrite(Tensor.zeros(gpu, [1, 5 * 12]), 2, cache, pos, rows, inv), /must be f32/);
    cache.dispose();
  });
});
