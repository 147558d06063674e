// matmul — batched, register-tiled C = alpha·op(A)·op(B) + beta·C + bias, f32 accumulation.
//
//   op(A) is [M, K]: A stored [M, K] (TRANS_A false) or [K, M] (TRANS_A true), row-major.
//   op(B) is [K, N]: B stored [K, N] (TRANS_B false) or [N, K] (TRANS_B true, nn.Linear weight layout).
//   Batch z = b·S + s: b is the batch index (A at b·strideA, B at b·strideB; stride 0 = shared),
//   s the split-K slice: it sums k in [s·kChunk, min(K, (s+1)·kChunk)) and writes C at z·M·N.
//   Split-K (S > 1) writes partial sums (alpha 1, beta 0, no bias) to a scratch buffer that
//   kernels/matmul_reduce.wgsl then sums into the real output with the epilogue.
//
// Bindings (group 0): 0 uniform Params (below)
//   1 A: array<TA> read [batch|1, M, K]        2 B: array<TB> read [batch|1, K, N]   (stored layouts)
//   3 C: array<f32> read_write [batch·S, M, N]  4 bias: array<TBIAS> read [N] (any buffer if hasBias 0)
//   `main` reads the same buffers through vec4 views A4, B4, C4 (bindings 1-3), so it needs the
//   contiguous dimension of A, of B and N to be multiples of 4; `simple` takes any shape.
// Types: TA, TB (f32 or f16 storage, converted to f32 once on load), TBIAS; prepended by the runtime.
//   HALF_B: B is f16 storage bound as TB = u32 (two halves per element, unpack2x16float); `main` then
//   loads 8 halves (one vec4<u32>, 16 bytes) per thread and needs B's contiguous dimension, strideB and
//   BK to be multiples of 8. On the H200 this took f16-B A·Bᵀ 4096³ from 31.5 to 34.6 TFLOP/s (37.3
//   with B_NFAST) and A·B from 35.2 to 36.1: the vec4<f16> loads were what cost the f16 paths.
//   COLS8 (HALF_B, B not transposed): thread tx owns the 8 consecutive columns 8tx..8tx+7 instead of
//   4tx.. and BN/2+4tx.., so an octet's two vec4 go to Bs slots c and c+TX (conflict-free stores).
//
// Tiling: workgroup TX·TY threads computes a BM×BN = (8·TY)×(8·TX) tile of C; each thread an 8×8 block
// held in 16 vec4 registers: rows ty·4+i and BM/2+ty·4+i, columns tx·4+j and BN/2+tx·4+j (the two
// halves keep each warp's shared-memory reads conflict-free). K is walked in BK-deep slabs staged in
// shared memory, A transposed (As[k][m]) and B as Bs[k][n], so the inner loop reads 4 vec4 and does
// 64 FMAs per k. An operand stored K-contiguous (A, or Bᵀ) is transposed on its way into shared
// memory with scalar stores (4-byte columns of vec4 rows). Rows may be padded by PAD vec4. `main`
// double-buffers: slab t+1 is fetched into registers while slab t is multiplied, one barrier per slab,
// two slabs per loop trip so buffer offsets are literals. `simple` is single-buffered with scalar loads
// (any shape; the narrow tile for M ≤ 16).
// Grid: (ceil(N/BN), ceil(M/BM), batch·S). Every global access is bounds-checked: any M, N, K works.
// H200 figures: bench/workbench/matmul.ts and src/ops/matmul_kernels.ts.

struct Params {
  M: u32,
  N: u32,
  K: u32,
  S: u32,
  kChunk: u32,
  strideA: u32,
  strideB: u32,
  alpha: f32,
  beta: f32,
  hasBias: u32,
}

override TX: u32 = 16u;
override TY: u32 = 16u;
override BK: u32 = 16u;
override PAD: u32 = 1u;
override TRANS_A: bool = false;
override TRANS_B: bool = false;

override NT: u32 = TX * TY;
override BM: u32 = 8u * TY;
override BN: u32 = 8u * TX;
override SA: u32 = BM / 4u + PAD; // vec4 stride of one k row of As
override SB: u32 = BN / 4u + PAD;
// `main` only: each thread stages GA = BM·BK/(4·NT) vec4 of A and GB = BN·BK/(4·NT) of B per slab
// (1, 2 or 4) in explicit registers; the launcher sets them. (Declared up here with literal defaults:
// these declared after functions that use other overrides made naga 29 panic.)
override GA: u32 = 2u;
override GB: u32 = 2u;
override HALF_B: bool = false;
override B_NFAST: bool = false;
override COLS8: bool = false;
// HALF_B: 8-half groups ("octets") of B per slab; each of the first min(QB, NT) threads stages one,
// threads below QB - NT a second (QB ≤ 2·NT, checked by the launcher).
override QB: u32 = BN * BK / 8u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> A: array<TA>;
@group(0) @binding(2) var<storage, read> B: array<TB>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<TBIAS>;

var<workgroup> As: array<vec4<f32>, 2u * BK * SA>;
var<workgroup> Bs: array<vec4<f32>, 2u * BK * SB>;

var<private> c0: vec4<f32>;
var<private> c1: vec4<f32>;
var<private> c2: vec4<f32>;
var<private> c3: vec4<f32>;
var<private> c4: vec4<f32>;
var<private> c5: vec4<f32>;
var<private> c6: vec4<f32>;
var<private> c7: vec4<f32>;
var<private> c8: vec4<f32>;
var<private> c9: vec4<f32>;
var<private> c10: vec4<f32>;
var<private> c11: vec4<f32>;
var<private> c12: vec4<f32>;
var<private> c13: vec4<f32>;
var<private> c14: vec4<f32>;
var<private> c15: vec4<f32>;

// Per-workgroup origin, set once at entry.
var<private> m0: u32;
var<private> n0: u32;
var<private> aBase: u32;
var<private> bBase: u32;
var<private> kEnd: u32;

// Slab element e of A (e < BM·BK): which (m, k) it is. The memory-contiguous index varies fastest
// so consecutive threads read consecutive addresses.
fn aCoord(e: u32) -> vec2<u32> {
  if (TRANS_A) { return vec2(e % BM, e / BM); }
  return vec2(e / BK, e % BK);
}

fn bCoord(e: u32) -> vec2<u32> {
  if (TRANS_B) { return vec2(e / BK, e % BK); }
  return vec2(e % BN, e / BN);
}

fn loadA(e: u32, k0: u32) -> f32 {
  let mk = aCoord(e);
  let row = m0 + mk.x;
  let k = k0 + mk.y;
  if (row >= p.M || k >= kEnd) { return 0.0; }
  if (TRANS_A) { return f32(A[aBase + k * p.M + row]); }
  return f32(A[aBase + row * p.K + k]);
}

fn loadB(e: u32, k0: u32) -> f32 {
  let nk = bCoord(e);
  let col = n0 + nk.x;
  let k = k0 + nk.y;
  if (col >= p.N || k >= kEnd) { return 0.0; }
  var i = bBase + k * p.N + col;
  if (TRANS_B) { i = bBase + col * p.K + k; }
  // u32(..) is the identity for HALF_B's TB = u32 and only type-checks the branch for f32/f16.
  if (HALF_B) { return unpack2x16float(u32(B[i / 2u]))[i % 2u]; }
  return f32(B[i]);
}

fn storeA(buf: u32, e: u32, v: f32) {
  let mk = aCoord(e);
  As[(buf * BK + mk.y) * SA + mk.x / 4u][mk.x % 4u] = v;
}

fn storeB(buf: u32, e: u32, v: f32) {
  let nk = bCoord(e);
  Bs[(buf * BK + nk.y) * SB + nk.x / 4u][nk.x % 4u] = v;
}

// One k step of the 8×8 register block from slab `buf`.
fn fmaStep(buf: u32, kk: u32, tx: u32, ty: u32) {
  let ra = (buf * BK + kk) * SA + ty;
  let rb = (buf * BK + kk) * SB + tx;
  let a0 = As[ra];
  let a1 = As[ra + TY];
  let b0 = Bs[rb];
  let b1 = Bs[rb + TX];
  c0 = fma(vec4(a0.x), b0, c0);
  c1 = fma(vec4(a0.x), b1, c1);
  c2 = fma(vec4(a0.y), b0, c2);
  c3 = fma(vec4(a0.y), b1, c3);
  c4 = fma(vec4(a0.z), b0, c4);
  c5 = fma(vec4(a0.z), b1, c5);
  c6 = fma(vec4(a0.w), b0, c6);
  c7 = fma(vec4(a0.w), b1, c7);
  c8 = fma(vec4(a1.x), b0, c8);
  c9 = fma(vec4(a1.x), b1, c9);
  c10 = fma(vec4(a1.y), b0, c10);
  c11 = fma(vec4(a1.y), b1, c11);
  c12 = fma(vec4(a1.z), b0, c12);
  c13 = fma(vec4(a1.z), b1, c13);
  c14 = fma(vec4(a1.w), b0, c14);
  c15 = fma(vec4(a1.w), b1, c15);
}

fn epilogueValue(idx: u32, col: u32, acc: f32) -> f32 {
  var v = p.alpha * acc;
  // beta = 0 must not read C: it may hold garbage (NaN · 0 = NaN).
  if (p.beta != 0.0) { v += p.beta * C[idx]; }
  if (p.hasBias != 0u) { v += f32(bias[col]); }
  return v;
}

fn store4(cBase: u32, row: u32, col: u32, v: vec4<f32>) {
  if (row >= p.M) { return; }
  let base = cBase + row * p.N;
  for (var j = 0u; j < 4u; j++) {
    if (col + j < p.N) { C[base + col + j] = epilogueValue(base + col + j, col + j, v[j]); }
  }
}

fn writeBlock(z: u32, tx: u32, ty: u32) {
  let cBase = z * p.M * p.N;
  let r0 = m0 + ty * 4u;
  let r1 = m0 + BM / 2u + ty * 4u;
  let q0 = n0 + tx * 4u;
  let q1 = n0 + BN / 2u + tx * 4u;
  store4(cBase, r0, q0, c0);
  store4(cBase, r0, q1, c1);
  store4(cBase, r0 + 1u, q0, c2);
  store4(cBase, r0 + 1u, q1, c3);
  store4(cBase, r0 + 2u, q0, c4);
  store4(cBase, r0 + 2u, q1, c5);
  store4(cBase, r0 + 3u, q0, c6);
  store4(cBase, r0 + 3u, q1, c7);
  store4(cBase, r1, q0, c8);
  store4(cBase, r1, q1, c9);
  store4(cBase, r1 + 1u, q0, c10);
  store4(cBase, r1 + 1u, q1, c11);
  store4(cBase, r1 + 2u, q0, c12);
  store4(cBase, r1 + 2u, q1, c13);
  store4(cBase, r1 + 3u, q0, c14);
  store4(cBase, r1 + 3u, q1, c15);
}

// Sets the workgroup origin; returns the first k of this split-K slice.
fn setup(wg: vec3<u32>) -> u32 {
  let b = wg.z / p.S;
  let s = wg.z % p.S;
  m0 = wg.y * BM;
  n0 = wg.x * BN;
  aBase = b * p.strideA;
  bBase = b * p.strideB;
  let kBeg = s * p.kChunk;
  kEnd = min(p.K, kBeg + p.kChunk);
  return kBeg;
}

// ---- `main`: vec4 global loads (A4/B4/C4 alias bindings 1-3), register-prefetched double buffer ----

@group(0) @binding(1) var<storage, read> A4: array<vec4<TA>>;
@group(0) @binding(2) var<storage, read> B4: array<vec4<TB>>;
@group(0) @binding(3) var<storage, read_write> C4: array<vec4<f32>>;

// fetchA / fetchB / fetchBh (global vec4 loads of a slab) and putA / putB / putBh (their stores into
// workgroup memory, transposing where needed) are in the linked library kernels/matmul_stage.wgsl.

fn store4v(cBase: u32, row: u32, col: u32, v: vec4<f32>) {
  if (row >= p.M || col >= p.N) { return; }
  let i = (cBase + row * p.N + col) / 4u;
  var o = p.alpha * v;
  if (p.beta != 0.0) { o += p.beta * C4[i]; }
  if (p.hasBias != 0u) {
    o += vec4(f32(bias[col]), f32(bias[col + 1u]), f32(bias[col + 2u]), f32(bias[col + 3u]));
  }
  C4[i] = o;
}

fn slab(buf: u32, tx: u32, ty: u32) {
  for (var kk = 0u; kk < BK; kk += 4u) {
    fmaStep(buf, kk, tx, ty);
    fmaStep(buf, kk + 1u, tx, ty);
    fmaStep(buf, kk + 2u, tx, ty);
    fmaStep(buf, kk + 3u, tx, ty);
  }
}

// Registers holding the next slab while the current one is multiplied (hb: HALF_B's raw octets).
var<private> pa0: vec4<f32>;
var<private> pa1: vec4<f32>;
var<private> pa2: vec4<f32>;
var<private> pa3: vec4<f32>;
var<private> pb0: vec4<f32>;
var<private> pb1: vec4<f32>;
var<private> pb2: vec4<f32>;
var<private> pb3: vec4<f32>;
var<private> hb0: vec4<u32>;
var<private> hb1: vec4<u32>;

// Multiplies slab `cur` (already in shared memory) while fetching the slab at k1 into registers, then
// stores those into the other buffer. Called with literal `cur` so shared-memory offsets are constants.
fn pipelinedSlab(cur: u32, k1: u32, tid: u32, tx: u32, ty: u32) {
  // Slabs past the end read as zeros and are never multiplied.
  pa0 = fetchA(tid, k1);
  if (GA > 1u) { pa1 = fetchA(tid + NT, k1); }
  if (GA > 2u) { pa2 = fetchA(tid + 2u * NT, k1); pa3 = fetchA(tid + 3u * NT, k1); }
  if (HALF_B) {
    if (tid < QB) { hb0 = fetchBh(tid, k1); }
    if (tid + NT < QB) { hb1 = fetchBh(tid + NT, k1); }
  } else {
    pb0 = fetchB(tid, k1);
    if (GB > 1u) { pb1 = fetchB(tid + NT, k1); }
    if (GB > 2u) { pb2 = fetchB(tid + 2u * NT, k1); pb3 = fetchB(tid + 3u * NT, k1); }
  }
  slab(cur, tx, ty);
  let nxt = 1u - cur;
  putA(nxt, tid, pa0);
  if (GA > 1u) { putA(nxt, tid + NT, pa1); }
  if (GA > 2u) { putA(nxt, tid + 2u * NT, pa2); putA(nxt, tid + 3u * NT, pa3); }
  if (HALF_B) {
    if (tid < QB) { putBh(nxt, tid, hb0); }
    if (tid + NT < QB) { putBh(nxt, tid + NT, hb1); }
  } else {
    putB(nxt, tid, pb0);
    if (GB > 1u) { putB(nxt, tid + NT, pb1); }
    if (GB > 2u) { putB(nxt, tid + 2u * NT, pb2); putB(nxt, tid + 3u * NT, pb3); }
  }
}

@compute @workgroup_size(NT)
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let tx = tid % TX;
  let ty = tid / TX;
  let kBeg = setup(wg);
  // From uniforms and workgroup_id, not the private kEnd: barriers below need uniform control flow (Tint).
  let kStop = min(p.K, kBeg + p.kChunk);
  let nTiles = (max(kStop, kBeg) - kBeg + BK - 1u) / BK;
  if (nTiles > 0u) {
    for (var i = 0u; i < GA; i++) { putA(0u, tid + i * NT, fetchA(tid + i * NT, kBeg)); }
    if (HALF_B) {
      for (var q = tid; q < QB; q += NT) { putBh(0u, q, fetchBh(q, kBeg)); }
    } else {
      for (var i = 0u; i < GB; i++) { putB(0u, tid + i * NT, fetchB(tid + i * NT, kBeg)); }
    }
    workgroupBarrier();
  }
  // Two slabs per trip so each call sees a literal buffer index; one barrier per slab.
  for (var t = 0u; t < nTiles; t += 2u) {
    pipelinedSlab(0u, kBeg + (t + 1u) * BK, tid, tx, ty);
    workgroupBarrier();
    if (t + 1u < nTiles) {
      pipelinedSlab(1u, kBeg + (t + 2u) * BK, tid, tx, ty);
      workgroupBarrier();
    }
  }
  let cBase = wg.z * p.M * p.N;
  let r0 = m0 + ty * 4u;
  let r1 = m0 + BM / 2u + ty * 4u;
  var q0 = n0 + tx * 4u;
  var q1 = n0 + BN / 2u + tx * 4u;
  if (COLS8) {
    q0 = n0 + tx * 8u;
    q1 = q0 + 4u;
  }
  store4v(cBase, r0, q0, c0);
  store4v(cBase, r0, q1, c1);
  store4v(cBase, r0 + 1u, q0, c2);
  store4v(cBase, r0 + 1u, q1, c3);
  store4v(cBase, r0 + 2u, q0, c4);
  store4v(cBase, r0 + 2u, q1, c5);
  store4v(cBase, r0 + 3u, q0, c6);
  store4v(cBase, r0 + 3u, q1, c7);
  store4v(cBase, r1, q0, c8);
  store4v(cBase, r1, q1, c9);
  store4v(cBase, r1 + 1u, q0, c10);
  store4v(cBase, r1 + 1u, q1, c11);
  store4v(cBase, r1 + 2u, q0, c12);
  store4v(cBase, r1 + 2u, q1, c13);
  store4v(cBase, r1 + 3u, q0, c14);
  store4v(cBase, r1 + 3u, q1, c15);
}

@compute @workgroup_size(NT)
fn simple(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let tx = tid % TX;
  let ty = tid / TX;
  let kBeg = setup(wg);
  let kStop = min(p.K, kBeg + p.kChunk);
  for (var k0 = kBeg; k0 < kStop; k0 += BK) {
    for (var e = tid; e < BM * BK; e += NT) { storeA(0u, e, loadA(e, k0)); }
    for (var e = tid; e < BN * BK; e += NT) { storeB(0u, e, loadB(e, k0)); }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) { fmaStep(0u, kk, tx, ty); }
    workgroupBarrier();
  }
  writeBlock(wg.z, tx, ty);
}
