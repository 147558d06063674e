// gemv_multi — A LIBRARY, not a kernel: the declarations and helpers that kernels/gemv_n4.wgsl and
// kernels/gemv_rows.wgsl share; the launcher (launchMulti() in src/ops/gemv.ts) appends this file to
// either through the kernel spec's `libs`. Both compute rows of A against up to three weight matrices side
// by side, [W0; W1; W2] (q, k and v projections, or gate and up, in one launch without copying the
// weights); a group of LANES lanes owns 4 consecutive output columns, and lanes stride over K in units of
// one 16-byte weight load (8 f16 or 4 f32). Weights are `array<vec4<TW>>`: TW = u32 with W16 = true for
// f16 weights (unpacked with unpack2x16float, so no shader-f16 needed), TW = f32 with W16 = false.
//
// Bindings (group 0): 0 uniform Multi (below)   1 A: array<vec4<TA>> read [M, K / 4] (TA = f32)
//   3 C: array<f32> read_write [M, N]   5 W0, 6 W1, 7 W2: array<vec4<TW>> read [Ni, K / 4 or K / 8]
//   4 bias, 8 bias1, 9 bias2: array<TBIAS> read [Ni] (any buffer when hasBias = 0). Unused weight/bias
//   slots may repeat another buffer.
// Overrides: LANES (lanes per group), W16 (f16 weights), WG (workgroup size, ≤ 256: the size of red).
// Helpers: wdot (one weight unit against its A values), wload (unit `at` of matrix `mat`), lane_sum
// (the sum over each lane group, through red: every invocation calls it), bias_of (bias of a column),
// columns (which matrix a group's 4 columns come from), store4 / store4_swiglu (lane 0's epilogue).

struct Multi {
  N: u32, // output columns (N0 + N1 + N2; F for gemv_swiglu)
  K: u32,
  N0: u32,
  N1: u32,
  alpha: f32,
  beta: f32,
  hasBias: u32,
  M: u32, // rows of A (gemv_rows*)
  eps: f32, // RMSNorm epsilon (NORM)
}

override LANES: u32 = 32u; // power of two, ≤ 256
override W16: bool = true;
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> mp: Multi;
@group(0) @binding(1) var<storage, read> A: array<vec4<TA>>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<TBIAS>;
@group(0) @binding(5) var<storage, read> W0: array<vec4<TW>>;
@group(0) @binding(6) var<storage, read> W1: array<vec4<TW>>;
@group(0) @binding(7) var<storage, read> W2: array<vec4<TW>>;
@group(0) @binding(8) var<storage, read> bias1: array<TBIAS>;
@group(0) @binding(9) var<storage, read> bias2: array<TBIAS>;

var<workgroup> red: array<vec4<f32>, 256>;

// Σ over one 16-byte weight unit: a0 (and a1 for f16) are the matching A values.
fn wdot(a0: vec4<f32>, a1: vec4<f32>, bits: vec4<u32>) -> f32 {
  if (W16) {
    let lo = vec4<f32>(unpack2x16float(bits.x), unpack2x16float(bits.y));
    let hi = vec4<f32>(unpack2x16float(bits.z), unpack2x16float(bits.w));
    return dot(a0, lo) + dot(a1, hi);
  }
  return dot(a0, bitcast<vec4<f32>>(bits));
}

fn wload(mat: u32, at: u32) -> vec4<u32> {
  switch mat {
    case 0u: { return bitcast<vec4<u32>>(W0[at]); }
    case 1u: { return bitcast<vec4<u32>>(W1[at]); }
    default: { return bitcast<vec4<u32>>(W2[at]); }
  }
}

// Sum over the LANES lanes of each group (shared-memory tree, fixed order); valid at lane 0.
fn lane_sum(tid: u32, lane: u32, v: vec4<f32>) -> vec4<f32> {
  red[tid] = v;
  workgroupBarrier();
  for (var s = LANES / 2u; s > 0u; s /= 2u) {
    if (lane < s) { red[tid] += red[tid + s]; }
    workgroupBarrier();
  }
  return red[tid];
}

fn bias_of(mat: u32, r: u32) -> f32 {
  switch mat {
    case 0u: { return f32(bias[r]); }
    case 1u: { return f32(bias1[r]); }
    default: { return f32(bias2[r]); }
  }
}

// Where a group's 4 columns n0 .. n0 + 3 come from (uniform per group): matrix mat, their first row r
// in it, and its row count.
struct Columns {
  mat: u32,
  r: u32,
  rows: u32,
}

fn columns(n0: u32) -> Columns {
  if (n0 < mp.N0) { return Columns(0u, n0, mp.N0); }
  if (n0 < mp.N0 + mp.N1) { return Columns(1u, n0 - mp.N0, mp.N1); }
  return Columns(2u, n0 - mp.N0 - mp.N1, mp.N - mp.N0 - mp.N1);
}

// Lane 0 of a group: C[m, n0 + c] = alpha·s[c] + beta·C[m, n0 + c] + bias for the columns < N.
fn store4(m: u32, n0: u32, s: vec4<f32>, src: Columns) {
  for (var c = 0u; c < 4u; c++) {
    if (n0 + c < mp.N) {
      let idx = m * mp.N + n0 + c;
      var v = mp.alpha * s[c];
      // beta = 0 must not read C: it may hold garbage (NaN · 0 = NaN).
      if (mp.beta != 0.0) { v += mp.beta * C[idx]; }
      if (mp.hasBias != 0u) { v += bias_of(src.mat, src.r + c); }
      C[idx] = v;
    }
  }
}

// Lane 0 of a group: C[m, n] = silu(g + bias[n])·(u + bias1[n]) for n = n0 .. n0 + 3 below N.
fn store4_swiglu(m: u32, n0: u32, gs: vec4<f32>, us: vec4<f32>) {
  for (var c = 0u; c < 4u; c++) {
    let n = n0 + c;
    if (n < mp.N) {
      var z = gs[c];
      var up = us[c];
      if (mp.hasBias != 0u) {
        z += f32(bias[n]);
        up += f32(bias1[n]);
      }
      // As kernels/swiglu.wgsl: z·σ(z)·up with σ(z) = 1 / (1 + e^−z).
      C[m * mp.N + n] = z * (1.0 / (1.0 + exp(-z))) * up;
    }
  }
}
