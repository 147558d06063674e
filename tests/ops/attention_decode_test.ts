import { assertClose, poisoned, poisonPool, randomData, storageTypes, testGpu, tolFor } from "../util.ts";
import { assertThrows } from "../assert.ts";
import { Rng, Tensor, tidy } from "../../src/tensor/mod.ts";
import {
  attentionDecode,
  decodeAttentionTuning,
  KvCache,
  kvCacheWrite,
  ropeKvWrite,
} from "../../src/ops/attention_decode.ts";
import { rope, ropeInvFreq } from "../../src/ops/rope.ts";
import { ropeKvWriteRef } from "../../src/reference/decode.ts";
import { attentionDecodeRef } from "../../src/reference/attention.ts";

interface DecodeCase {
  B: number;
  H: number;
  Hkv: number;
  D: number;
  maxT: number;
  lengths: number[];
  window?: number;
  /** decodeAttentionTuning for this case (targetGroups 1: one split, flash writes out directly). */
  tuning?: Partial<typeof decodeAttentionTuning>;
}

// Awkward shapes: D 24 (a block of 85 keys, not a power of two), Qwen's 7 query heads per kv head,
// MQA with 16 (two workgroups per kv head), D 128; lengths 1 and maxT; windows shorter than a split
// and than the cache; one split per head (direct write, several blocks per workgroup), one key per
// split (minKeys 1).
const DECODE_CASES: DecodeCase[] = [
  { B: 3, H: 4, Hkv: 2, D: 24, maxT: 150, lengths: [5, 150, 70] },
  { B: 3, H: 4, Hkv: 2, D: 24, maxT: 150, lengths: [5, 150, 70], window: 40 },
  { B: 2, H: 14, Hkv: 2, D: 64, maxT: 300, lengths: [300, 129] },
  { B: 2, H: 16, Hkv: 1, D: 32, maxT: 200, lengths: [1, 200], window: 7 },
  { B: 1, H: 4, Hkv: 1, D: 128, maxT: 100, lengths: [77], window: 30 },
  { B: 3, H: 4, Hkv: 2, D: 64, maxT: 140, lengths: [140, 33, 1], tuning: { targetGroups: 1 } },
  { B: 2, H: 6, Hkv: 3, D: 16, maxT: 40, lengths: [40, 9], tuning: { minKeys: 1, targetGroups: 4096 } },
  // flash1 only: 2 blocks per split (maxT / 64 > KB), a window starting past a split's first block,
  // 4 blocks per split (minKeys), Qwen's shape at ~1100 keys with 7 heads per workgroup.
  {
    B: 3,
    H: 4,
    Hkv: 2,
    D: 64,
    maxT: 2200,
    lengths: [2200, 97, 1500],
    window: 100,
    tuning: { entry: "flash1" },
  },
  {
    B: 2,
    H: 8,
    Hkv: 2,
    D: 32,
    maxT: 300,
    lengths: [300, 170],
    window: 150,
    tuning: { entry: "flash1", minKeys: 200 },
  },
  { B: 1, H: 14, Hkv: 2, D: 64, maxT: 1152, lengths: [1100], tuning: { entry: "flash1" } },
];

Deno.test("attentionDecode (flash1; flash + merge) matches the reference: GQA/MQA, lengths, windows, split plans", async () => {
  const gpu = await testGpu();
  const rng = new Rng(33);
  const saved = { ...decodeAttentionTuning };
  // Cases without an entry run through both the one-launch kernel and flash + merge.
  const runs = DECODE_CASES.flatMap((c) =>
    c.tuning?.entry
      ? [c]
      : (["flash1", "flash"] as const).map((entry) => ({ ...c, tuning: { ...c.tuning, entry } }))
  );
  try {
    for (const c of runs) {
      for (const dtype of storageTypes(gpu) as ("f32" | "f16")[]) {
        Object.assign(decodeAttentionTuning, saved, c.tuning ?? {});
        await tidy(async () => {
          const { B, H, Hkv, D, maxT } = c;
          const cache = new KvCache(gpu, B, Hkv, maxT, D, dtype);
          const kc = randomData(rng, cache.k.size, dtype), vc = randomData(rng, cache.v.size, dtype);
          cache.k.write(kc);
          cache.v.write(vc);
          const q = randomData(rng, B * H * D, "f32", -3, 3); // larger scores: a sharper softmax
          poisonPool(gpu, [B, 1, H, D]);
          const win = c.window ? { window: c.window } : {};
          const qt = Tensor.from(gpu, q, [B, 1, H, D]), lens = Tensor.from(gpu, c.lengths, [B], "u32");
          // Twice in one submit: flash1's split counters must be back at zero for the second launch.
          const out = attentionDecode(qt, cache, lens, win);
          const again = attentionDecode(qt, cache, lens, win);
          const want = attentionDecodeRef(q, kc, vc, c.lengths, { B, H, Hkv, D, maxT }, win);
          const what = `decode ${dtype} B${B} H${H}/${Hkv} D${D} len ${c.lengths} window ${c.window ?? 0} ` +
            JSON.stringify(c.tuning ?? {});
          assertClose(await out.read(), want, tolFor("f32"), what);
          assertClose(await again.read(), want, tolFor("f32"), `${what} (second launch)`);
          cache.dispose();
        });
      }
    }
  } finally {
    Object.assign(decodeAttentionTuning, saved);
  }
});

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
