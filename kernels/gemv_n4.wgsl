// gemv_n4 / gemv_swiglu — decode's one-row GEMVs (one row of A per workgroup row: grid z = row m),
// linked with kernels/gemv_multi.wgsl (bindings, weight layout, lane groups: see there). Each group of
// LANES lanes owns 4 consecutive output columns, so every A value a lane loads feeds 4 weight rows;
// lanes stride over K in units of one 16-byte weight load (8 f16 or 4 f32), two units per trip (8
// loads, 128 bytes in flight per lane).
//   gemv_n4:     C[m, n] = alpha·Σ_k A[m, k]·W(n)[k] + beta·C[m, n] + bias(n), where column n is row n of
//                W0 (n < N0), row n − N0 of W1 (n < N0 + N1), else row n − N0 − N1 of W2 — q, k and v
//                projections in one launch without copying the weights. N0 % 4 == N1 % 4 == 0.
//   gemv_swiglu: C[m, n] = silu(g)·u, g = Σ_k A[m, k]·W0[n, k] + bias[n], u = the same with W1, bias1.
// Bindings: 0 uniform Multi   1 A (TA = f32) [M, K]   3 C [M, N]
//   5 W0, 6 W1, 7 W2: array<vec4<TW>> read [Ni, K / 4 or K / 8]   4 bias, 8 bias1, 9 bias2: array<TBIAS>
//   (any buffer when hasBias = 0). Unused weight/bias slots may repeat another buffer.
//   10 nw: array<u32> read (NORM only; any buffer otherwise).
// Workgroup WG (≤ 256) = WG / LANES groups; grid (ceil(N / (4·WG / LANES)), 1, M). Needs K % 8 == 0
// (W16) or K % 4 == 0.
// NORM (override; decode's RMSNorm folded into the GEMV that consumes it): row m of A is the residual
// stream x, and the product uses y = nw ⊙ (x · rinv), rinv = 1 / sqrt(Σ x² / K + eps), exactly as
// kernels/rmsnorm.wgsl computes it (f32, normalise first, then the weight). Each workgroup reduces
// Σ x² itself (x is K floats, read from L2) and stages y in workgroup memory xa (XN = K / 4 vec4s),
// so the separate rmsNorm launch disappears. Binding 10 nw: array<u32> read, the norm weight as raw
// words ([K] f16 when NW16, 2 per word; else f32). Uniform field eps.

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

@compute @workgroup_size(WG)
fn gemv_n4(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let group = tid / LANES;
  let lane = tid % LANES;
  let n0 = (wg.x * (WG / LANES) + group) * 4u;
  let m = wg.z;
  if (NORM) { stage_norm(tid, m); }
  let src = columns(n0);
  var acc = vec4<f32>(0.0);
  if (n0 < mp.N) { acc = dot4(src.mat, m, src.r, src.rows - 1u, lane); }
  let s = lane_sum(tid, lane, acc);
  if (lane == 0u) { store4(m, n0, s, src); }
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
  if (lane == 0u) { store4_swiglu(m, n0, gs, us); }
}
