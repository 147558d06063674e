import { assertClose, finiteDiff, poisoned, randomData, testGpu } from "../util.ts";
import { assert, assertEquals, assertThrows } from "../assert.ts";
import { Rng, Tensor, tidy } from "../../src/tensor/mod.ts";
import { backward } from "../../src/autograd/mod.ts";
import { rope, ropeInvFreq, type RopeScaling } from "../../src/ops/rope.ts";
import { ropeRef } from "../../src/reference/rope.ts";

// Elementwise f32 (one product, a range reduction, cos/sin): close to the float64 reference.
const TOL = 1e-5;
const LLAMA31: RopeScaling = {
  rope_type: "llama3",
  factor: 8,
  low_freq_factor: 1,
  high_freq_factor: 4,
  original_max_position_embeddings: 8192,
};

/** Positions that differ per batch row: row b starts at an offset, some in the tens of thousands. */
function positions(rng: Rng, B: number, T: number): Int32Array {
  const p = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const start = [0, 37, 70000, 4093][b % 4] + rng.int(5);
    for (let t = 0; t < T; t++) p[b * T + t] = start + t;
  }
  return p;
}

// [B, T, H, D]: half = D/2 of 1, 3, 5 take the scalar path, 8 and 64 the vec4 one.
const SHAPES = [[1, 1, 1, 2], [2, 3, 5, 6], [3, 5, 2, 10], [2, 7, 3, 16], [4, 3, 2, 128]];

Deno.test("rope forward matches the reference (per-row positions, large angles)", async () => {
  const gpu = await testGpu();
  const rng = new Rng(31);
  for (const shape of SHAPES) {
    const [B, T, H, D] = shape;
    for (const scaling of [null, LLAMA31]) {
      poisoned(gpu, shape).dispose(); // the output reuses this NaN-filled buffer
      await tidy(async () => {
        const xs = randomData(rng, B * T * H * D, "f32", -2, 2);
        const pos = positions(rng, B, T);
        const inv = ropeInvFreq(D, 10000, scaling);
        const out = rope(
          Tensor.from(gpu, xs, shape),
          Tensor.from(gpu, pos, [B, T], "i32"),
          Tensor.from(gpu, inv, [D / 2]),
        );
        assertEquals([...out.shape], shape);
        assertClose(
          await out.read(),
          ropeRef(xs, pos, inv, shape),
          TOL,
          `rope [${shape}] ${scaling?.rope_type}`,
        );
      });
    }
  }
});

Deno.test("rope rotates the (d, d + D/2) pairs, not adjacent ones (hand-checked)", async () => {
  const gpu = await testGpu();
  // D = 4: pairs (0, 2) and (1, 3); invFreq [1, 0.5]; position 1 → angles 1 and 0.5 rad.
  const x = [1, 2, 3, 4];
  const want = [
    1 * Math.cos(1) - 3 * Math.sin(1),
    2 * Math.cos(0.5) - 4 * Math.sin(0.5),
    3 * Math.cos(1) + 1 * Math.sin(1),
    4 * Math.cos(0.5) + 2 * Math.sin(0.5),
  ];
  await tidy(async () => {
    const out = rope(
      Tensor.from(gpu, x, [1, 1, 1, 4]),
      Tensor.from(gpu, [1], [1, 1], "i32"),
      Tensor.from(gpu, [1, 0.5], [2]),
    );
    assertClose(await out.read(), want, 1e-6, "hand-checked rotation");
  });
});

Deno.test("rope reference backward (rotation by −angle) matches float64 finite differences", () => {
  const rng = new Rng(32);
  const shape = [2, 2, 1, 6];
  const n = 24;
  const x = Float64Array.from(randomData(rng, n));
  const g = Float64Array.from(randomData(rng, n));
  const pos = [3, 4, 900, 901];
  const inv = ropeInvFreq(6, 10000);
  const loss = (v: Float64Array) => ropeRef(v, pos, inv, shape).reduce((s, y, i) => s + y * g[i], 0);
  assertClose(ropeRef(g, pos, inv, shape, -1), finiteDiff(loss, x), 1e-7, "dx vs finite differences");
});

Deno.test("rope GPU backward (autograd) matches the reference", async () => {
  const gpu = await testGpu();
  const rng = new Rng(33);
  for (const shape of [[2, 3, 5, 6], [2, 7, 3, 16]]) {
    const [B, T, H, D] = shape;
    const n = B * T * H * D;
    const xs = randomData(rng, n), gs = randomData(rng, n);
    const pos = positions(rng, B, T);
    const inv = ropeInvFreq(D, 500000, LLAMA31);
    const x = Tensor.from(gpu, xs, shape, "f32", { persistent: true });
    x.requiresGrad = true;
    tidy(() => {
      const out = rope(x, Tensor.from(gpu, pos, [B, T], "i32"), Tensor.from(gpu, inv, [D / 2]));
      backward(out, Tensor.from(gpu, gs, shape));
    });
    assertClose(await x.grad!.read(), ropeRef(gs, pos, inv, shape, -1), TOL, `dx [${shape}]`);
    x.grad!.dispose();
    x.dispose();
  }
});

Deno.test("ropeInvFreq: default, linear and llama3 against the formula and hand-checked values", () => {
  // Independent float64 evaluation of the llama3 rule, written per band from the config.
  const D = 128, theta = 500000;
  const got = ropeInvFreq(D, theta, LLAMA31);
  assertEquals(got.length, 64);
  const bands = [0, 0, 0];
  for (let d = 0; d < D / 2; d++) {
    const f = Math.pow(theta, -(2 * d) / D);
    const wavelen = 2 * Math.PI / f;
    let want: number;
    if (wavelen < 8192 / 4) [want, bands[0]] = [f, bands[0] + 1];
    else if (wavelen > 8192 / 1) [want, bands[2]] = [f / 8, bands[2] + 1];
    else {
      const smooth = (8192 / wavelen - 1) / (4 - 1);
      want = f * ((1 - smooth) / 8 + smooth);
      bands[1]++;
    }
    assert(Math.abs(got[d] - want) <= 1e-7 * want, `llama3 d=${d}: ${got[d]} vs ${want}`);
  }
  assertEquals(bands, [29, 6, 29], "every band is exercised");
  // Hand-checked (Llama 3.1 8B): d = 0 → 1 (high band); d = 32 → 1/√500000 = 0.00141421 is in the
  // middle band (wavelength 4442.9): smooth = (8192/4442.9 − 1)/3 = 0.281285, so
  // 0.00141421·(0.718715/8 + 0.281285) = 0.000524846; d = 40 → 500000^−0.625 / 8 = 3.42810e-5.
  assertClose([got[0], got[32], got[40]], [1, 0.000524846, 3.42810e-5], 2e-6, "hand-checked llama3");

  // Default (Llama 2): 10000^(−2d/128); d = 1 → e^(−ln(10000)/64) = 0.865964.
  const def = ropeInvFreq(128, 10000);
  assertClose([def[0], def[1]], [1, 0.865964], 1e-6, "default d = 0, 1");
  assertEquals(ropeInvFreq(128, 10000, { rope_type: "default" }), def);
  const lin = ropeInvFreq(128, 10000, { rope_type: "linear", factor: 4 });
  assertClose(lin, Float64Array.from(def, (v) => v / 4), 1e-7, "linear divides by factor");
  assertThrows(() => ropeInvFreq(128, 10000, { rope_type: "llama3", factor: 8 }), /low_freq_factor/);
  assertThrows(() => ropeInvFreq(7, 10000), /even/);
});
