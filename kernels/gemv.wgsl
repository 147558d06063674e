// gemv — the skinny matmul of decoding: C = alpha·A·Bᵀ + beta·C + bias for few rows of A (M small),
// B in the nn.Linear weight layout [N, K] (f16 weights in serving). Bandwidth-bound: every weight is
// read once per 4 rows of A, 8 bytes (vec4 of f16) per lane per load, 4 loads in flight per lane.
// (One row and 5 ..= 16 rows take kernels/gemv_n4.wgsl and kernels/gemv_rows.wgsl where they fit:
// src/ops/matmul_kernels.ts picks the path.)
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
