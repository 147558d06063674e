// gemv — the skinny matmul of decoding: C = alpha·A·Bᵀ + beta·C + bias for few rows of A (M small),
// B in the nn.Linear weight layout [N, K] (f16 weights in serving). Bandwidth-bound: every weight is
// read once per 4 rows of A, 8 bytes (vec4 of f16) per lane per load, 4 loads in flight per lane.
//
// Bindings (group 0): 0 uniform Params (below)
//   1 A: array<vec4<TA>> read [batch, M, K/4]     2 B: array<vec4<TB>> read [batch|1, N, K/4]
//   3 C: array<f32> read_write [batch, M, N]      4 bias: array<TBIAS> read [N] (any buffer if hasBias 0)
// strideA/strideB are batch strides in vec4 units (strideB 0 = one B shared by the batch).
// Types: TA, TB (f32 or f16 storage), TBIAS; aliases prepended by the runtime.
// Assumes K % 4 == 0 (the launcher takes the tiled kernel otherwise).
// gemv_t_h8: the same for f16 B with K % 8 == 0, reading B as vec4<u32> (8 halves, 16 bytes per lane).
// Workgroup 256 = (256 / LANES) groups of LANES lanes; a group owns one output column n and up to 4
// rows of A; lanes stride over K, then a shared-memory tree sums the lanes.
// Grid: (ceil(N / (256 / LANES)), ceil(M / 4), batch).

// gemv_n4 / gemv_swiglu (decode, one row of A per workgroup row: grid z = row m): each group of LANES
// lanes owns 4 consecutive output columns, so every A value a lane loads feeds 4 weight rows; lanes
// stride over K in units of one 16-byte weight load (8 f16 or 4 f32), two units per trip (8 loads,
// 128 bytes in flight per lane). Weights are `array<vec4<TW>>`: TW = u32 with W16 = true for f16
// weights (unpacked with unpack2x16float, so no shader-f16 needed), TW = f32 with W16 = false.
//   gemv_n4:     C[m, n] = alpha·Σ_k A[m, k]·W(n)[k] + beta·C[m, n] + bias(n), where column n is row n of
//                W0 (n < N0), row n − N0 of W1 (n < N0 + N1), else row n − N0 − N1 of W2 — q, k and v
//                projections in one launch without copying the weights. N0 % 4 == N1 % 4 == 0.
//   gemv_swiglu: C[m, n] = silu(g)·u, g = Σ_k A[m, k]·W0[n, k] + bias[n], u = the same with W1, bias1.
// Bindings: 0 uniform Multi (below)   1 A (as above, TA = f32) [M, K]   3 C [M, N]
//   5 W0, 6 W1, 7 W2: array<vec4<TW>> read [Ni, K / 4 or K / 8]   4 bias, 8 bias1, 9 bias2: array<TBIAS>
//   (any buffer when hasBias = 0). Unused weight/bias slots may repeat another buffer.
// Workgroup WG (≤ 256) = WG / LANES groups; grid (ceil(N / (4·WG / LANES)), 1, M). Needs K % 8 == 0
// (W16) or K % 4 == 0.
// NORM (override; decode's RMSNorm folded into the GEMV that consumes it): row m of A is the residual
// stream x, and the product uses y = nw ⊙ (x · rinv), rinv = 1 / sqrt(Σ x² / K + eps), exactly as
// kernels/rmsnorm.wgsl computes it (f32, normalise first, then the weight). Each workgroup reduces
// Σ x² itself (x is K floats, read from L2) and stages y in workgroup memory xa (XN = K / 4 vec4s),
// so the separate rmsNorm launch disappears. Binding 10 nw: array<u32> read, the norm weight as raw
// words ([K] f16 when NW16, 2 per word; else f32). Uniform field eps.
// gemv_rows / gemv_rows_swiglu (decode of several sequences): the same products for R rows of A per
// workgroup (override R ≤ 8), so each weight unit a lane loads feeds 4 columns × R rows; the R rows'
// A values come from global memory (L1-resident: every group of the workgroup walks the same k).
// Grid (ceil(M / R), ceil(N / (4·WG / LANES)), 1): the row chunks of one column tile are neighbours
// in launch order, so M > R reads each weight from DRAM about once (the other chunks hit L2).
// Rows past M are clamped to M − 1 (computed, never written).

struct Params {
  M: u32,
  N: u32,
  K: u32,
  strideA: u32,
  strideB: u32,
  alpha: f32,
  beta: f32,
  hasBias: u32,
}

override LANES: u32 = 32u; // power of two, ≤ 256

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> A: array<vec4<TA>>;
@group(0) @binding(2) var<storage, read> B: array<vec4<TB>>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<TBIAS>;

var<workgroup> red: array<vec4<f32>, 256>;

var<private> acc: vec4<f32>; // one partial sum per row of A (up to 4)
var<private> aRow: u32; // vec4 index of A[b, m0, 0]
var<private> rows: u32; // rows of A this workgroup handles (1..4)

fn accumulate(k4: u32, w: vec4<f32>) {
  let K4 = p.K / 4u;
  acc.x += dot(vec4<f32>(A[aRow + k4]), w);
  if (rows > 1u) { acc.y += dot(vec4<f32>(A[aRow + K4 + k4]), w); }
  if (rows > 2u) { acc.z += dot(vec4<f32>(A[aRow + 2u * K4 + k4]), w); }
  if (rows > 3u) { acc.w += dot(vec4<f32>(A[aRow + 3u * K4 + k4]), w); }
}

// Sums the lanes of each group (shared-memory tree) and writes the epilogue for up to 4 rows.
fn finish(tid: u32, lane: u32, n: u32, m0: u32, z: u32) {
  red[tid] = acc;
  workgroupBarrier();
  for (var s = LANES / 2u; s > 0u; s /= 2u) {
    if (lane < s) { red[tid] += red[tid + s]; }
    workgroupBarrier();
  }
  if (lane == 0u && n < p.N) {
    let sum = red[tid];
    for (var j = 0u; j < rows; j++) {
      let idx = (z * p.M + m0 + j) * p.N + n;
      var v = p.alpha * sum[j];
      // beta = 0 must not read C: it may hold garbage (NaN · 0 = NaN).
      if (p.beta != 0.0) { v += p.beta * C[idx]; }
      if (p.hasBias != 0u) { v += f32(bias[n]); }
      C[idx] = v;
    }
  }
}

@compute @workgroup_size(256)
fn gemv_t(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let K4 = p.K / 4u;
  let group = tid / LANES;
  let lane = tid % LANES;
  let n = wg.x * (256u / LANES) + group;
  let m0 = wg.y * 4u;
  rows = min(4u, p.M - m0);
  aRow = wg.z * p.strideA + m0 * K4;
  acc = vec4(0.0);
  if (n < p.N) {
    let bRow = wg.z * p.strideB + n * K4;
    var k = lane;
    // Four independent loads per trip keep enough bytes in flight to saturate memory.
    for (; k + 3u * LANES < K4; k += 4u * LANES) {
      let w0 = vec4<f32>(B[bRow + k]);
      let w1 = vec4<f32>(B[bRow + k + LANES]);
      let w2 = vec4<f32>(B[bRow + k + 2u * LANES]);
      let w3 = vec4<f32>(B[bRow + k + 3u * LANES]);
      accumulate(k, w0);
      accumulate(k + LANES, w1);
      accumulate(k + 2u * LANES, w2);
      accumulate(k + 3u * LANES, w3);
    }
    for (; k < K4; k += LANES) { accumulate(k, vec4<f32>(B[bRow + k])); }
  }
  finish(tid, lane, n, m0, wg.z);
}

@group(0) @binding(2) var<storage, read> Bh: array<vec4<u32>>; // f16 B, 8 halves per element

fn accumulate8(k8: u32, w: vec4<u32>) {
  accumulate(2u * k8, vec4(unpack2x16float(w.x), unpack2x16float(w.y)));
  accumulate(2u * k8 + 1u, vec4(unpack2x16float(w.z), unpack2x16float(w.w)));
}

@compute @workgroup_size(256)
fn gemv_t_h8(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let K4 = p.K / 4u;
  let K8 = p.K / 8u;
  let group = tid / LANES;
  let lane = tid % LANES;
  let n = wg.x * (256u / LANES) + group;
  let m0 = wg.y * 4u;
  rows = min(4u, p.M - m0);
  aRow = wg.z * p.strideA + m0 * K4;
  acc = vec4(0.0);
  if (n < p.N) {
    let bRow = (wg.z * p.strideB + n * K4) / 2u;
    var k = lane;
    for (; k + 3u * LANES < K8; k += 4u * LANES) {
      let w0 = Bh[bRow + k];
      let w1 = Bh[bRow + k + LANES];
      let w2 = Bh[bRow + k + 2u * LANES];
      let w3 = Bh[bRow + k + 3u * LANES];
      accumulate8(k, w0);
      accumulate8(k + LANES, w1);
      accumulate8(k + 2u * LANES, w2);
      accumulate8(k + 3u * LANES, w3);
    }
    for (; k < K8; k += LANES) { accumulate8(k, Bh[bRow + k]); }
  }
  finish(tid, lane, n, m0, wg.z);
}

// ---- gemv_n4 / gemv_swiglu ----

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

override W16: bool = true;
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> mp: Multi;
@group(0) @binding(5) var<storage, read> W0: array<vec4<TW>>;
@group(0) @binding(6) var<storage, read> W1: array<vec4<TW>>;
@group(0) @binding(7) var<storage, read> W2: array<vec4<TW>>;
@group(0) @binding(8) var<storage, read> bias1: array<TBIAS>;
@group(0) @binding(9) var<storage, read> bias2: array<TBIAS>;
@group(0) @binding(10) var<storage, read> nw: array<u32>;

override NORM: bool = false;
override NW16: bool = false;
override XN: u32 = 1u; // vec4s of xa: K / 4 with NORM

var<workgroup> xa: array<vec4<f32>, XN>; // NORM: the normalised row of A

// vec4 c of the RMSNorm weight as f32.
fn nweight(c: u32) -> vec4<f32> {
  if (NW16) { return vec4<f32>(unpack2x16float(nw[2u * c]), unpack2x16float(nw[2u * c + 1u])); }
  return bitcast<vec4<f32>>(vec4<u32>(nw[4u * c], nw[4u * c + 1u], nw[4u * c + 2u], nw[4u * c + 3u]));
}

// NORM prologue (all WG invocations): xa = nw ⊙ (A[m] · rinv) as rmsnorm.wgsl's forward4.
fn stage_norm(tid: u32, m: u32) {
  let K4 = mp.K / 4u;
  var ss = 0.0;
  for (var c = tid; c < K4; c += WG) {
    let v = vec4<f32>(A[m * K4 + c]);
    ss += dot(v, v);
  }
  red[tid] = vec4<f32>(ss, 0.0, 0.0, 0.0);
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s /= 2u) {
    if (tid < s) { red[tid].x += red[tid + s].x; }
    workgroupBarrier();
  }
  let r = inverseSqrt(red[0].x / f32(mp.K) + mp.eps);
  for (var c = tid; c < K4; c += WG) { xa[c] = nweight(c) * (vec4<f32>(A[m * K4 + c]) * r); }
  workgroupBarrier(); // xa complete; every thread has read red[0] before lane_sum reuses red
}

// vec4 i of row m of A (a = m · K / 4), or of the staged normalised row.
fn aload(a: u32, i: u32) -> vec4<f32> {
  if (NORM) { return xa[i]; }
  return vec4<f32>(A[a + i]);
}

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

// The 4 dot products of row m of A with rows r .. r + 3 of matrix `mat` (clamped to row `last`: the
// extra columns of a ragged edge repeat a real row and are never written), this lane's share of K.
fn dot4(mat: u32, m: u32, r: u32, last: u32, lane: u32) -> vec4<f32> {
  let KU = select(mp.K / 4u, mp.K / 8u, W16);
  let a = m * (mp.K / 4u);
  let w = vec4<u32>(min(r, last), min(r + 1u, last), min(r + 2u, last), min(r + 3u, last)) * KU;
  let au = select(1u, 2u, W16); // vec4s of A per weight unit
  var acc = vec4<f32>(0.0);
  var k = lane;
  for (; k + LANES < KU; k += 2u * LANES) {
    let k1 = k + LANES;
    let b0 = wload(mat, w.x + k);
    let b1 = wload(mat, w.y + k);
    let b2 = wload(mat, w.z + k);
    let b3 = wload(mat, w.w + k);
    let c0 = wload(mat, w.x + k1);
    let c1 = wload(mat, w.y + k1);
    let c2 = wload(mat, w.z + k1);
    let c3 = wload(mat, w.w + k1);
    let a0 = aload(a, au * k);
    let a1 = select(vec4<f32>(0.0), aload(a, au * k + 1u), W16);
    let e0 = aload(a, au * k1);
    let e1 = select(vec4<f32>(0.0), aload(a, au * k1 + 1u), W16);
    acc += vec4<f32>(wdot(a0, a1, b0), wdot(a0, a1, b1), wdot(a0, a1, b2), wdot(a0, a1, b3));
    acc += vec4<f32>(wdot(e0, e1, c0), wdot(e0, e1, c1), wdot(e0, e1, c2), wdot(e0, e1, c3));
  }
  if (k < KU) {
    let a0 = aload(a, au * k);
    let a1 = select(vec4<f32>(0.0), aload(a, au * k + 1u), W16);
    acc += vec4<f32>(
      wdot(a0, a1, wload(mat, w.x + k)),
      wdot(a0, a1, wload(mat, w.y + k)),
      wdot(a0, a1, wload(mat, w.z + k)),
      wdot(a0, a1, wload(mat, w.w + k)),
    );
  }
  return acc;
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

@compute @workgroup_size(WG)
fn gemv_n4(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let group = tid / LANES;
  let lane = tid % LANES;
  let n0 = (wg.x * (WG / LANES) + group) * 4u;
  let m = wg.z;
  if (NORM) { stage_norm(tid, m); }
  // Which matrix the group's 4 columns come from (uniform per group) and their first row in it.
  var mat = 2u;
  var r = n0 - mp.N0 - mp.N1;
  var rows = mp.N - mp.N0 - mp.N1;
  if (n0 < mp.N0) {
    mat = 0u;
    r = n0;
    rows = mp.N0;
  } else if (n0 < mp.N0 + mp.N1) {
    mat = 1u;
    r = n0 - mp.N0;
    rows = mp.N1;
  }
  var acc = vec4<f32>(0.0);
  if (n0 < mp.N) { acc = dot4(mat, m, r, rows - 1u, lane); }
  let s = lane_sum(tid, lane, acc);
  if (lane == 0u) {
    for (var c = 0u; c < 4u; c++) {
      if (n0 + c < mp.N) {
        let idx = m * mp.N + n0 + c;
        var v = mp.alpha * s[c];
        // beta = 0 must not read C: it may hold garbage (NaN · 0 = NaN).
        if (mp.beta != 0.0) { v += mp.beta * C[idx]; }
        if (mp.hasBias != 0u) { v += bias_of(mat, r + c); }
        C[idx] = v;
      }
    }
  }
}

@compute @workgroup_size(WG)
fn gemv_swiglu(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let group = tid / LANES;
  let lane = tid % LANES;
  let n0 = (wg.x * (WG / LANES) + group) * 4u;
  let m = wg.z;
  if (NORM) { stage_norm(tid, m); }
  var g = vec4<f32>(0.0);
  var u = vec4<f32>(0.0);
  if (n0 < mp.N) {
    g = dot4(0u, m, n0, mp.N - 1u, lane);
    u = dot4(1u, m, n0, mp.N - 1u, lane);
  }
  let gs = lane_sum(tid, lane, g);
  let us = lane_sum(tid, lane, u);
  if (lane == 0u) {
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
}

// ---- gemv_rows / gemv_rows_swiglu ----

override R: u32 = 1u; // rows of A per workgroup, 1 ..= 8
override UNROLL2: bool = true; // two K trips per loop iteration

// Row i of the workgroup's chunk, clamped into A.
fn arow(m0: u32, i: u32) -> u32 {
  return min(m0 + i, mp.M - 1u);
}

// Row m of A against one weight unit (k) of 4 columns.
fn rdot(m: u32, k: u32, b0: vec4<u32>, b1: vec4<u32>, b2: vec4<u32>, b3: vec4<u32>) -> vec4<f32> {
  let au = select(1u, 2u, W16);
  let at = m * (mp.K / 4u) + au * k;
  let a0 = vec4<f32>(A[at]);
  let a1 = select(vec4<f32>(0.0), vec4<f32>(A[at + 1u]), W16);
  return vec4<f32>(wdot(a0, a1, b0), wdot(a0, a1, b1), wdot(a0, a1, b2), wdot(a0, a1, b3));
}

// R rows' accumulators (fields past R stay zero; constant conditions, so no private array).
struct Rows {
  r0: vec4<f32>,
  r1: vec4<f32>,
  r2: vec4<f32>,
  r3: vec4<f32>,
  r4: vec4<f32>,
  r5: vec4<f32>,
  r6: vec4<f32>,
  r7: vec4<f32>,
}

// Σ over this lane's share of K of rows m0 .. m0 + R − 1 against rows r .. r + 3 of matrix `mat`.
fn rows_dot(mat: u32, m0: u32, r: u32, last: u32, lane: u32) -> Rows {
  let KU = select(mp.K / 4u, mp.K / 8u, W16);
  let w = vec4<u32>(min(r, last), min(r + 1u, last), min(r + 2u, last), min(r + 3u, last)) * KU;
  var c: Rows;
  var k = lane;
  // Two trips per iteration (8 weight loads, 128 bytes in flight per lane) when UNROLL2.
  if (UNROLL2) {
    for (; k + LANES < KU; k += 2u * LANES) {
      let k1 = k + LANES;
      let b0 = wload(mat, w.x + k);
      let b1 = wload(mat, w.y + k);
      let b2 = wload(mat, w.z + k);
      let b3 = wload(mat, w.w + k);
      let e0 = wload(mat, w.x + k1);
      let e1 = wload(mat, w.y + k1);
      let e2 = wload(mat, w.z + k1);
      let e3 = wload(mat, w.w + k1);
      c = rows_add(c, m0, k, b0, b1, b2, b3);
      c = rows_add(c, m0, k1, e0, e1, e2, e3);
    }
  }
  for (; k < KU; k += LANES) {
    c = rows_add(c, m0, k, wload(mat, w.x + k), wload(mat, w.y + k), wload(mat, w.z + k), wload(mat, w.w + k));
  }
  return c;
}

fn rows_add(c0: Rows, m0: u32, k: u32, b0: vec4<u32>, b1: vec4<u32>, b2: vec4<u32>, b3: vec4<u32>) -> Rows {
  var c = c0;
  c.r0 += rdot(arow(m0, 0u), k, b0, b1, b2, b3);
  if (R > 1u) { c.r1 += rdot(arow(m0, 1u), k, b0, b1, b2, b3); }
  if (R > 2u) { c.r2 += rdot(arow(m0, 2u), k, b0, b1, b2, b3); }
  if (R > 3u) { c.r3 += rdot(arow(m0, 3u), k, b0, b1, b2, b3); }
  if (R > 4u) { c.r4 += rdot(arow(m0, 4u), k, b0, b1, b2, b3); }
  if (R > 5u) { c.r5 += rdot(arow(m0, 5u), k, b0, b1, b2, b3); }
  if (R > 6u) { c.r6 += rdot(arow(m0, 6u), k, b0, b1, b2, b3); }
  if (R > 7u) { c.r7 += rdot(arow(m0, 7u), k, b0, b1, b2, b3); }
  return c;
}

fn row_of(c: Rows, i: u32) -> vec4<f32> {
  switch i {
    case 0u: { return c.r0; }
    case 1u: { return c.r1; }
    case 2u: { return c.r2; }
    case 3u: { return c.r3; }
    case 4u: { return c.r4; }
    case 5u: { return c.r5; }
    case 6u: { return c.r6; }
    default: { return c.r7; }
  }
}

@compute @workgroup_size(WG)
fn gemv_rows(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let group = tid / LANES;
  let lane = tid % LANES;
  let m0 = wg.x * R;
  let n0 = (wg.y * (WG / LANES) + group) * 4u;
  var mat = 2u;
  var r = n0 - mp.N0 - mp.N1;
  var rows = mp.N - mp.N0 - mp.N1;
  if (n0 < mp.N0) {
    mat = 0u;
    r = n0;
    rows = mp.N0;
  } else if (n0 < mp.N0 + mp.N1) {
    mat = 1u;
    r = n0 - mp.N0;
    rows = mp.N1;
  }
  var c: Rows;
  if (n0 < mp.N) { c = rows_dot(mat, m0, r, rows - 1u, lane); }
  for (var i = 0u; i < R; i++) {
    let s = lane_sum(tid, lane, row_of(c, i));
    workgroupBarrier(); // red is reused by the next row
    let m = m0 + i;
    if (lane == 0u && m < mp.M) {
      for (var j = 0u; j < 4u; j++) {
        if (n0 + j < mp.N) {
          let idx = m * mp.N + n0 + j;
          var v = mp.alpha * s[j];
          if (mp.beta != 0.0) { v += mp.beta * C[idx]; }
          if (mp.hasBias != 0u) { v += bias_of(mat, r + j); }
          C[idx] = v;
        }
      }
    }
  }
}

@compute @workgroup_size(WG)
fn gemv_rows_swiglu(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let group = tid / LANES;
  let lane = tid % LANES;
  let m0 = wg.x * R;
  let n0 = (wg.y * (WG / LANES) + group) * 4u;
  var g: Rows;
  var u: Rows;
  if (n0 < mp.N) {
    g = rows_dot(0u, m0, n0, mp.N - 1u, lane);
    u = rows_dot(1u, m0, n0, mp.N - 1u, lane);
  }
  for (var i = 0u; i < R; i++) {
    let gs = lane_sum(tid, lane, row_of(g, i));
    workgroupBarrier();
    let us = lane_sum(tid, lane, row_of(u, i));
    workgroupBarrier();
    let m = m0 + i;
    if (lane == 0u && m < mp.M) {
      for (var j = 0u; j < 4u; j++) {
        let n = n0 + j;
        if (n < mp.N) {
          var z = gs[j];
          var up = us[j];
          if (mp.hasBias != 0u) {
            z += f32(bias[n]);
            up += f32(bias1[n]);
          }
          C[m * mp.N + n] = z * (1.0 / (1.0 + exp(-z))) * up;
        }
      }
    }
  }
}
