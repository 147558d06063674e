// gemv_rows / gemv_rows_swiglu — decode of several sequences: the products of kernels/gemv_n4.wgsl
// (gemv_n4: up to three weights side by side; gemv_swiglu: silu(A·W0ᵀ + bias)·(A·W1ᵀ + bias1)) for R
// rows of A per workgroup (override R ≤ 8), so each weight unit a lane loads feeds 4 columns × R rows;
// the R rows' A values come from global memory (L1-resident: every group of the workgroup walks the
// same k). Linked with kernels/gemv_multi.wgsl (bindings 0, 1, 3 … 9, weight layout, lane groups). No
// NORM here: several rows take rmsNorm first.
// Workgroup WG (≤ 256) = WG / LANES groups of 4 columns. Grid (ceil(M / R), ceil(N / (4·WG / LANES)), 1):
// the row chunks of one column tile are neighbours in launch order, so M > R reads each weight from
// DRAM about once (the other chunks hit L2). Rows past M are clamped to M − 1 (computed, never written).
// Override UNROLL2: two K trips (8 weight loads) per loop iteration. Needs K % 8 == 0 (W16) or K % 4 == 0.

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
  let src = columns(n0);
  var c: Rows;
  if (n0 < mp.N) { c = rows_dot(src.mat, m0, src.r, src.rows - 1u, lane); }
  for (var i = 0u; i < R; i++) {
    let s = lane_sum(tid, lane, row_of(c, i));
    workgroupBarrier(); // red is reused by the next row
    let m = m0 + i;
    if (lane == 0u && m < mp.M) { store4(m, n0, s, src); }
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
    if (lane == 0u && m < mp.M) { store4_swiglu(m, n0, gs, us); }
  }
}
