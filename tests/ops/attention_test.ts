import { assertClose, finiteDiff, poisoned, randomData, storageTypes, testGpu, tolFor } from "../util.ts";
import { assert, assertEquals, assertThrows } from "../assert.ts";
import { Rng, Tensor, tidy } from "../../src/tensor/mod.ts";
import { fill } from "../../src/ops/elementwise.ts";
import { backward, noGrad } from "../../src/autograd/mod.ts";
import type { Gpu } from "../../src/gpu/mod.ts";
import { attention, attentionForward, type AttentionOptions } from "../../src/ops/attention.ts";
import { setAttentionBackwardTuning } from "../../src/ops/attention_backward.ts";
import { attentionDecode, KvCache, kvCacheWrite } from "../../src/ops/attention_decode.ts";
import {
  attentionBackwardRef,
  attentionDecodeRef,
  attentionRef,
  type AttentionRefDims,
} from "../../src/reference/attention.ts";

type Case = AttentionRefDims & { opts: AttentionOptions };

// Awkward T/S (1, 7, 33, 70), D (8, 24, 64, 128), GQA (Hkv = H, H/2, 1), windows, T ≠ S, non-causal.
const FORWARD: Case[] = [
  { B: 1, T: 7, S: 7, H: 4, Hkv: 2, D: 8, opts: {} },
  { B: 2, T: 33, S: 70, H: 4, Hkv: 1, D: 24, opts: {} },
  { B: 1, T: 70, S: 70, H: 2, Hkv: 2, D: 64, opts: { window: 20 } },
  { B: 1, T: 1, S: 33, H: 4, Hkv: 2, D: 64, opts: { window: 9 } },
  { B: 1, T: 33, S: 7, H: 2, Hkv: 1, D: 8, opts: { causal: false, scale: 0.7 } },
  { B: 1, T: 70, S: 70, H: 2, Hkv: 1, D: 128, opts: {} },
];
const BACKWARD: Case[] = [
  { B: 1, T: 7, S: 33, H: 4, Hkv: 2, D: 24, opts: {} },
  { B: 2, T: 70, S: 70, H: 2, Hkv: 1, D: 8, opts: { window: 20 } },
  { B: 1, T: 33, S: 70, H: 4, Hkv: 1, D: 64, opts: { causal: false } },
  { B: 1, T: 1, S: 7, H: 2, Hkv: 2, D: 8, opts: {} },
  { B: 1, T: 33, S: 40, H: 2, Hkv: 1, D: 128, opts: {} },
];

const qSize = (c: Case) => c.B * c.T * c.H * c.D;
const kSize = (c: Case) => c.B * c.S * c.Hkv * c.D;
const label = (c: Case) => `B${c.B} T${c.T} S${c.S} H${c.H}/${c.Hkv} D${c.D} ${JSON.stringify(c.opts)}`;

/** Fills the pool's next buffers of these sizes with NaN so outputs an op allocates start poisoned. */
function poisonPool(gpu: Gpu, sizes: number[]): void {
  const ts = sizes.map((n) => fill(Tensor.empty(gpu, [n], "f32"), NaN));
  for (const t of ts) t.dispose();
}

function inputs(rng: Rng, c: Case) {
  return { q: randomData(rng, qSize(c)), k: randomData(rng, kSize(c)), v: randomData(rng, kSize(c)) };
}

Deno.test("reference backward matches finite differences of the reference forward", () => {
  const rng = new Rng(11);
  const tiny: Case[] = [
    { B: 1, T: 3, S: 5, H: 2, Hkv: 1, D: 4, opts: {} },
    { B: 1, T: 4, S: 4, H: 2, Hkv: 2, D: 3, opts: { window: 2, scale: 0.9 } },
    { B: 2, T: 3, S: 2, H: 1, Hkv: 1, D: 2, opts: { causal: false } },
  ];
  for (const c of tiny) {
    const { q, k, v } = inputs(rng, c);
    const g = randomData(rng, qSize(c));
    const [q64, k64, v64] = [Float64Array.from(q), Float64Array.from(k), Float64Array.from(v)];
    const loss = () => attentionRef(q64, k64, v64, c, c.opts).out.reduce((s, o, i) => s + o * g[i], 0);
    const want = attentionBackwardRef(q64, k64, v64, g, c, c.opts);
    assertClose(want.dq, finiteDiff(() => loss(), q64), 1e-6, `dq ${label(c)}`);
    assertClose(want.dk, finiteDiff(() => loss(), k64), 1e-6, `dk ${label(c)}`);
    assertClose(want.dv, finiteDiff(() => loss(), v64), 1e-6, `dv ${label(c)}`);
  }
});

Deno.test("reference: GQA equals full attention over repeated kv heads; the mask matters", () => {
  const rng = new Rng(12);
  const c: Case = { B: 1, T: 5, S: 6, H: 4, Hkv: 2, D: 4, opts: {} };
  const { q, k, v } = inputs(rng, c);
  const rep = (x: Float32Array) => {
    const y = new Float32Array(c.S * c.H * c.D);
    for (let s = 0; s < c.S; s++) {
      for (let h = 0; h < c.H; h++) {
        y.set(x.subarray((s * 2 + (h >> 1)) * 4, (s * 2 + (h >> 1)) * 4 + 4), (s * 4 + h) * 4);
      }
    }
    return y;
  };
  const gqa = attentionRef(q, k, v, c).out;
  assertClose(gqa, attentionRef(q, rep(k), rep(v), { ...c, Hkv: 4 }).out, 1e-12, "GQA");
  const full = attentionRef(q, k, v, c, { causal: false }).out;
  assert(Math.abs(full[0] - gqa[0]) > 1e-6, "causal mask changed nothing");
});

Deno.test("attention forward and log-sum-exp match the reference", async () => {
  const gpu = await testGpu();
  const rng = new Rng(1);
  for (const c of FORWARD) {
    await tidy(async () => {
      const x = inputs(rng, c);
      poisonPool(gpu, [qSize(c), c.B * c.H * c.T]);
      const [q, k, v] = [
        Tensor.from(gpu, x.q, [c.B, c.T, c.H, c.D]),
        Tensor.from(gpu, x.k, [c.B, c.S, c.Hkv, c.D]),
        Tensor.from(gpu, x.v, [c.B, c.S, c.Hkv, c.D]),
      ];
      const { out, lse } = attentionForward(q, k, v, c.opts);
      const want = attentionRef(x.q, x.k, x.v, c, c.opts);
      assertClose(await out.read(), want.out, tolFor("f32"), `out ${label(c)}`);
      assertClose(await lse.read(), want.lse, tolFor("f32"), `lse ${label(c)}`);
      // The autograd entry point gives the same output.
      assertClose(
        await noGrad(() => attention(q, k, v, c.opts)).read(),
        want.out,
        tolFor("f32"),
        `attention() ${label(c)}`,
      );
    });
  }
});

Deno.test("attention backward (autograd) matches the reference dq, dk, dv", async () => {
  const gpu = await testGpu();
  const rng = new Rng(2);
  for (const c of BACKWARD) {
    await tidy(async () => {
      const x = inputs(rng, c);
      const g = randomData(rng, qSize(c));
      const q = Tensor.from(gpu, x.q, [c.B, c.T, c.H, c.D]);
      const k = Tensor.from(gpu, x.k, [c.B, c.S, c.Hkv, c.D]);
      const v = Tensor.from(gpu, x.v, [c.B, c.S, c.Hkv, c.D]);
      for (const t of [q, k, v]) t.requiresGrad = true;
      const out = attention(q, k, v, c.opts);
      poisonPool(gpu, [qSize(c), kSize(c), kSize(c), c.B * c.H * c.T]);
      backward(out, Tensor.from(gpu, g, out.shape));
      const want = attentionBackwardRef(x.q, x.k, x.v, g, c, c.opts);
      assertClose(await q.grad!.read(), want.dq, tolFor("f32"), `dq ${label(c)}`);
      assertClose(await k.grad!.read(), want.dk, tolFor("f32"), `dk ${label(c)}`);
      assertClose(await v.grad!.read(), want.dv, tolFor("f32"), `dv ${label(c)}`);
      for (const t of [q, k, v]) t.grad!.dispose();
    });
  }
});

Deno.test("attention backward: frozen inputs get no gradient; the output survives its scope", async () => {
  const gpu = await testGpu();
  const rng = new Rng(3);
  const c: Case = { B: 1, T: 33, S: 33, H: 2, Hkv: 1, D: 8, opts: {} };
  const x = inputs(rng, c);
  const g = randomData(rng, qSize(c));
  const q = Tensor.from(gpu, x.q, [c.B, c.T, c.H, c.D]);
  const k = Tensor.from(gpu, x.k, [c.B, c.S, c.Hkv, c.D]);
  const v = Tensor.from(gpu, x.v, [c.B, c.S, c.Hkv, c.D]);
  k.requiresGrad = true;
  // The forward runs in a scope that returns only the output; the saved log-sum-exp must survive too.
  const out = tidy(() => attention(q, k, v));
  poisonPool(gpu, [c.B * c.H * c.T * 4]);
  backward(out, Tensor.from(gpu, g, out.shape));
  assertEquals(q.grad, null);
  assertEquals(v.grad, null);
  assertClose(await k.grad!.read(), attentionBackwardRef(x.q, x.k, x.v, g, c).dk, tolFor("f32"), "dk");
  for (const t of [q, k, v, out, k.grad!]) t.dispose();
});

Deno.test("attention backward: each subset of dq/dk/dv, with grad_kv per query head and per kv head", async () => {
  const gpu = await testGpu();
  const rng = new Rng(5);
  // T ≠ S, a window, GQA with 2 query heads per kv head, D not a multiple of 16.
  const c: Case = { B: 1, T: 37, S: 70, H: 4, Hkv: 2, D: 24, opts: { window: 9 } };
  const x = inputs(rng, c);
  const g = randomData(rng, qSize(c));
  const want = attentionBackwardRef(x.q, x.k, x.v, g, c, c.opts);
  const subsets = [[true, false, false], [false, true, false], [false, false, true], [true, true, true]];
  for (const hpw of [1, 2]) { // 1: one workgroup per query head + the sum pass; 2: all heads of a kv head
    const old = setAttentionBackwardTuning({ hpw });
    try {
      for (const needs of subsets) {
        await tidy(async () => {
          const q = Tensor.from(gpu, x.q, [c.B, c.T, c.H, c.D]);
          const k = Tensor.from(gpu, x.k, [c.B, c.S, c.Hkv, c.D]);
          const v = Tensor.from(gpu, x.v, [c.B, c.S, c.Hkv, c.D]);
          [q, k, v].forEach((t, i) => t.requiresGrad = needs[i]);
          const out = attention(q, k, v, c.opts);
          poisonPool(gpu, [qSize(c), kSize(c), kSize(c), c.B * c.H * c.T]);
          backward(out, Tensor.from(gpu, g, out.shape));
          const what = `hpw ${hpw}, needs ${needs}`;
          for (const [t, w, name] of [[q, want.dq, "dq"], [k, want.dk, "dk"], [v, want.dv, "dv"]] as const) {
            if (!t.requiresGrad) assertEquals(t.grad, null, `${name} not wanted (${what})`);
            else assertClose(await t.grad!.read(), w, tolFor("f32"), `${name} (${what})`);
            t.grad?.dispose();
          }
        });
      }
    } finally {
      setAttentionBackwardTuning(old);
    }
  }
});

Deno.test("attention rejects shapes it cannot run", async () => {
  const gpu = await testGpu();
  tidy(() => {
    const q = Tensor.zeros(gpu, [1, 4, 2, 8]), k = Tensor.zeros(gpu, [1, 3, 2, 8]);
    assertThrows(() => attention(q, k, k), /S ≥ T/);
    assertThrows(
      () => attention(q, Tensor.zeros(gpu, [1, 4, 3, 8]), Tensor.zeros(gpu, [1, 4, 3, 8])),
      /multiple/,
    );
    const q6 = Tensor.zeros(gpu, [1, 4, 2, 6]);
    assertThrows(() => attention(q6, q6, q6), /head dim/);
  });
});

/** Random k/v [B, rows, Hkv, D] written at position 0 of a fresh cache; returns the cache. */
function filledCache(
  gpu: Gpu,
  rng: Rng,
  B: number,
  Hkv: number,
  rows: number,
  maxT: number,
  D: number,
  dtype: "f32" | "f16",
) {
  const cache = new KvCache(gpu, B, Hkv, maxT, D, dtype);
  const k = Tensor.from(gpu, randomData(rng, B * rows * Hkv * D, dtype), [B, rows, Hkv, D]);
  const v = Tensor.from(gpu, randomData(rng, B * rows * Hkv * D, dtype), [B, rows, Hkv, D]);
  kvCacheWrite(cache, k, v, Tensor.from(gpu, new Uint32Array(B), [B], "u32"));
  return { cache, k, v };
}

Deno.test("kvCacheWrite places rows at per-sequence positions", async () => {
  const gpu = await testGpu();
  const rng = new Rng(4);
  for (const dtype of storageTypes(gpu) as ("f32" | "f16")[]) {
    await tidy(async () => {
      const [B, T, Hkv, D, maxT] = [2, 3, 2, 8, 10];
      const cache = new KvCache(gpu, B, Hkv, maxT, D, dtype);
      const k = randomData(rng, B * T * Hkv * D, dtype), v = randomData(rng, B * T * Hkv * D, dtype);
      const pos = [1, 6];
      kvCacheWrite(
        cache,
        Tensor.from(gpu, k, [B, T, Hkv, D]),
        Tensor.from(gpu, v, [B, T, Hkv, D]),
        Tensor.from(gpu, pos, [B], "u32"),
      );
      const [kc, vc] = [await cache.k.read(), await cache.v.read()];
      const wantK = new Float32Array(B * Hkv * maxT * D), wantV = new Float32Array(wantK.length);
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < T; t++) {
          for (let g = 0; g < Hkv; g++) {
            for (let d = 0; d < D; d++) {
              wantK[((b * Hkv + g) * maxT + pos[b] + t) * D + d] = k[((b * T + t) * Hkv + g) * D + d];
              wantV[((b * Hkv + g) * maxT + pos[b] + t) * D + d] = v[((b * T + t) * Hkv + g) * D + d];
            }
          }
        }
      }
      assertEquals(Array.from(kc), Array.from(wantK), `k cache ${dtype}`);
      assertEquals(Array.from(vc), Array.from(wantV), `v cache ${dtype}`);
      cache.dispose();
    });
  }
});

Deno.test("attentionDecode matches the reference: batch 3 of different lengths, f32/f16 caches, window", async () => {
  const gpu = await testGpu();
  const rng = new Rng(5);
  const [B, H, Hkv, maxT] = [3, 4, 2, 150];
  const lengths = [5, 150, 70];
  for (const dtype of storageTypes(gpu) as ("f32" | "f16")[]) {
    for (const [D, window] of [[24, 0], [64, 0], [64, 40], [128, 0]]) {
      await tidy(async () => {
        const { cache } = filledCache(gpu, rng, B, Hkv, maxT, maxT, D, dtype);
        const q = randomData(rng, B * H * D);
        poisonPool(gpu, [B * H * D]);
        const out = attentionDecode(
          Tensor.from(gpu, q, [B, 1, H, D]),
          cache,
          Tensor.from(gpu, lengths, [B], "u32"),
          window ? { window } : {},
        );
        const want = attentionDecodeRef(q, await cache.k.read(), await cache.v.read(), lengths, {
          B,
          H,
          Hkv,
          D,
          maxT,
        }, window ? { window } : {});
        assertClose(await out.read(), want, tolFor("f32"), `decode ${dtype} D${D} window ${window}`);
        cache.dispose();
      });
    }
  }
});

Deno.test("attentionDecode over long caches: many key splits, a length-1 sequence, MQA", async () => {
  const gpu = await testGpu();
  const rng = new Rng(7);
  const [B, H, Hkv, D, maxT] = [3, 8, 1, 32, 1100];
  const lengths = [1100, 1, 613];
  await tidy(async () => {
    const { cache } = filledCache(gpu, rng, B, Hkv, maxT, maxT, D, "f32");
    const q = randomData(rng, B * H * D, "f32", -3, 3); // larger scores: a sharper softmax
    const out = attentionDecode(
      Tensor.from(gpu, q, [B, 1, H, D]),
      cache,
      Tensor.from(gpu, lengths, [B], "u32"),
    );
    const want = attentionDecodeRef(q, await cache.k.read(), await cache.v.read(), lengths, {
      B,
      H,
      Hkv,
      D,
      maxT,
    });
    assertClose(await out.read(), want, tolFor("f32"), "long decode");
    cache.dispose();
  });
});

Deno.test("prefill into the cache then decode equals attention over the full sequence's last row", async () => {
  const gpu = await testGpu();
  const rng = new Rng(6);
  const [B, T, H, Hkv, D, maxT] = [2, 34, 4, 2, 24, 64];
  for (const dtype of storageTypes(gpu) as ("f32" | "f16")[]) {
    await tidy(async () => {
      const q = randomData(rng, B * T * H * D),
        k = randomData(rng, B * T * Hkv * D, dtype),
        v = randomData(rng, B * T * Hkv * D, dtype);
      const full = noGrad(() =>
        attention(
          Tensor.from(gpu, q, [B, T, H, D]),
          Tensor.from(gpu, k, [B, T, Hkv, D]),
          Tensor.from(gpu, v, [B, T, Hkv, D]),
        )
      );
      const cache = new KvCache(gpu, B, Hkv, maxT, D, dtype);
      // Prefill the first T − 1 tokens, then write the last token's k/v at position T − 1 and decode it.
      const rowsOf = (x: Float32Array, from: number, to: number, heads: number) => {
        const y: number[] = [];
        for (let b = 0; b < B; b++) {
          y.push(...x.subarray((b * T + from) * heads * D, (b * T + to) * heads * D));
        }
        return y;
      };
      kvCacheWrite(
        cache,
        Tensor.from(gpu, rowsOf(k, 0, T - 1, Hkv), [B, T - 1, Hkv, D]),
        Tensor.from(gpu, rowsOf(v, 0, T - 1, Hkv), [B, T - 1, Hkv, D]),
        Tensor.from(gpu, [0, 0], [B], "u32"),
      );
      kvCacheWrite(
        cache,
        Tensor.from(gpu, rowsOf(k, T - 1, T, Hkv), [B, 1, Hkv, D]),
        Tensor.from(gpu, rowsOf(v, T - 1, T, Hkv), [B, 1, Hkv, D]),
        Tensor.from(gpu, [T - 1, T - 1], [B], "u32"),
      );
      const dec = attentionDecode(
        Tensor.from(gpu, rowsOf(q, T - 1, T, H), [B, 1, H, D]),
        cache,
        Tensor.from(gpu, [T, T], [B], "u32"),
      );
      const fullRows = await full.read();
      const want: number[] = [];
      for (let b = 0; b < B; b++) {
        want.push(...fullRows.subarray(((b * T + T - 1) * H) * D, (b * T + T) * H * D));
      }
      assertClose(await dec.read(), want, tolFor("f32"), `prefill + decode ${dtype}`);
      cache.dispose();
    });
  }
});

Deno.test("poisoned buffers are really handed out again (the poisoning above is not a no-op)", async () => {
  const gpu = await testGpu();
  poisonPool(gpu, [1000]);
  const t = Tensor.empty(gpu, [1000]);
  assert((await t.read()).every(Number.isNaN), "pool did not reuse the poisoned buffer");
  t.dispose();
  poisoned(gpu, [1], "f32").dispose();
});
