// attention_forward — flash attention forward: out = softmax(scale · q·kᵀ + mask) · v, tiled with an
// online softmax so no T×S matrix is ever stored; also writes the log-sum-exp for the backward pass.
//
// Letters: B batch, T queries, S keys, H query heads, Hkv kv heads (head h reads kv head h / (H/Hkv)),
// D head dim (override; D % 4 == 0, D ≤ 128). Mask: query i sees key j iff
// (causal == 0 or j ≤ i + S − T) and (window == 0 or i + S − T − j < window).
//
// Bindings (group 0): 0 uniform Params (below)
//   1 q:   array<vec4<f32>> read        [B, T, H, D / 4]   (vec4: 128-bit global loads; D % 4 == 0)
//   2 k:   array<vec4<f32>> read        [B, S, Hkv, D / 4]
//   3 v:   array<vec4<f32>> read        [B, S, Hkv, D / 4]
//   4 out: array<vec4<f32>> read_write  [B, T, H, D / 4]
//   5 lse: array<f32> read_write  [B, H, T]   natural-log log-sum-exp of the scaled, masked scores
// Workgroup 128 = 16 × 8 threads (tx = lid % 16, ty = lid / 16); grid [ceil(T / 64), H, B], or
// [ceil(ceil(T / 64) / 2), H, B] with PAIR.
//
// FlashAttention-2 split written like kernels/matmul.wgsl: a workgroup owns 64 queries of one head
// and walks the 64-key tiles its mask lets through. Thread (tx, ty) owns query rows ty·4 + i and
// 32 + ty·4 + i (i < 4): scores for keys tx + 16j (j < 4) in 8 vec4 registers s0..s7 and output
// columns 4·tx and 64 + 4·tx (+0..3) in 16 vec4 registers o0..o15. Every register is a named
// variable (no dynamically indexed private arrays, which compilers may put in local memory).
//   S = (scale · log2 e · Q) · Kᵀ: head dim in 4·CW-wide chunks staged double-buffered in `stage`
//     (one barrier per chunk; the next chunk's global loads are in flight during the FMAs);
//     per head-dim vec4 a thread loads 8 Q and 4 K vec4 for 128 FMAs (pure FMAs, no dot()).
//   Softmax: row maxima through `red` (one barrier), P written transposed to `ps` (one barrier).
//   O += P · V: VK-key V chunks double-buffered in `stage`; per key 2 P and 2 V vec4 loads feed
//     64 FMAs (the matmul's ratio).
// Barriers per 64-key tile at D = 128: 14 (CW 4) or 8 (CW 8). Tiles without a masked element skip
// the mask arithmetic. Shared-memory layouts are XOR-swizzled so the transposing accesses stay free
// of bank conflicts. Workgroup memory: 32 KiB at CW 4 (fits lavapipe), 48 KiB at CW 8.
// Softmax runs in base 2 (scores pre-multiplied by scale · log2 e, exp2) — one multiply saved per score.
// H200, B1 T1024 H32 D128 causal (bench/workbench/attention_forward.ts): CW 8 + PAIR 0.47 ms = 18.4
// TFLOP/s (Hkv 8) / 0.48 ms (Hkv 32); non-causal 0.85 ms = 20.2. The previous kernel (256 threads,
// private arrays, 25 barriers per tile, one tile per workgroup): 5.4 ms.

struct Params {
  B: u32,
  T: u32,
  S: u32,
  H: u32,
  Hkv: u32,
  causal: u32,
  window: u32,
  scale2: f32, // scale · log2(e)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;

override D: u32 = 64u;
// Head-dim chunk width in vec4 (4 or 8): 8 halves the S-phase barriers and doubles the V chunk but
// needs 48 KiB of workgroup memory; the launcher picks it from the device's limit.
override CW: u32 = 4u;
override BUF: u32 = 128u * CW; // vec4 per staging buffer
override VK: u32 = 4u * CW; // keys per V chunk
// Head-dim chunks, rounded up to an even count so the double buffer's parity is static.
override NC: u32 = 2u * ((D + 8u * CW - 1u) / (8u * CW));
// Causal balance: workgroup x runs query tiles nQ − 1 − x and x (grid x = ceil(nQ / 2)), so every
// workgroup walks about the same number of key tiles. Off: one tile per workgroup, last tile first.
override PAIR: bool = false;
const NEG = -1e30; // running-max start: finite, so NEG − NEG is 0, not NaN
const MASKED = -2e30; // a masked score: exp2(MASKED − m) is 0 even while m is still NEG

// Two buffers of BUF vec4. S phase, buffer b: Q chunk at b·BUF + row·CW + d4 (64 rows × CW vec4), K chunk
// at b·BUF + BUF/2 + key·CW + (d4 ^ kSwizzle(key)). P·V phase: V chunk at b·BUF + key·32 + c4
// (VK keys × 32 vec4, zero past D). Between the two phases buffer 1 holds the row-max partials
// (`red`, vec4 BUF + row·4 + tx / 4, component tx % 4).
var<workgroup> stage: array<vec4<f32>, 2u * BUF>;
// P transposed: vec4 key·16 + (row / 4 ^ (key & 7)) holds rows row..row+3 (row % 4 == 0) of one key.
var<workgroup> ps: array<vec4<f32>, 1024>;

var<private> s0: vec4<f32>;
var<private> s1: vec4<f32>;
var<private> s2: vec4<f32>;
var<private> s3: vec4<f32>;
var<private> s4: vec4<f32>;
var<private> s5: vec4<f32>;
var<private> s6: vec4<f32>;
var<private> s7: vec4<f32>;
var<private> o0: vec4<f32>;
var<private> o1: vec4<f32>;
var<private> o2: vec4<f32>;
var<private> o3: vec4<f32>;
var<private> o4: vec4<f32>;
var<private> o5: vec4<f32>;
var<private> o6: vec4<f32>;
var<private> o7: vec4<f32>;
var<private> o8: vec4<f32>;
var<private> o9: vec4<f32>;
var<private> o10: vec4<f32>;
var<private> o11: vec4<f32>;
var<private> o12: vec4<f32>;
var<private> o13: vec4<f32>;
var<private> o14: vec4<f32>;
var<private> o15: vec4<f32>;
// Running max and this thread's partial row sum: rows ty·4 + i in .i of ma / la, 32 + ty·4 + i in mb / lb.
var<private> ma: vec4<f32>;
var<private> mb: vec4<f32>;
var<private> la: vec4<f32>;
var<private> lb: vec4<f32>;
// Prefetch registers: the next Q chunk (pf0..) and K chunk (pf4..), CW / 2 each, or V chunk (pf0..,
// CW of them).
var<private> pf0: vec4<f32>;
var<private> pf1: vec4<f32>;
var<private> pf2: vec4<f32>;
var<private> pf3: vec4<f32>;
var<private> pf4: vec4<f32>;
var<private> pf5: vec4<f32>;
var<private> pf6: vec4<f32>;
var<private> pf7: vec4<f32>;

// Per-workgroup and per-thread constants.
var<private> tid: u32;
var<private> tx: u32;
var<private> ty: u32;
var<private> q0: u32;
var<private> qBase: u32;
var<private> kBase: u32;

// Vec4 e (< 64·CW) of Q chunk c: row e / CW, head-dim columns 4·(CW·c + e % CW) .. + 3; zero outside.
fn fetchQ(e: u32, c: u32) -> vec4<f32> {
  let t = q0 + e / CW;
  let d = 4u * (c * CW + e % CW);
  if (t >= p.T || d >= D) { return vec4<f32>(0.0); }
  return q[(qBase + t * p.H * D + d) / 4u] * p.scale2;
}

fn fetchK(e: u32, k0: u32, c: u32) -> vec4<f32> {
  let s = k0 + e / CW;
  let d = 4u * (c * CW + e % CW);
  if (s >= p.S || d >= D) { return vec4<f32>(0.0); }
  return k[(kBase + s * p.Hkv * D + d) / 4u];
}

// Vec4 e (< 128·CW) of the VK-key V chunk at key s0: key s0 + e / 32, columns 4(e % 32) .. + 3.
fn fetchV(e: u32, s0: u32) -> vec4<f32> {
  let s = s0 + e / 32u;
  let d = 4u * (e % 32u);
  if (s >= p.S || d >= D) { return vec4<f32>(0.0); }
  return v[(kBase + s * p.Hkv * D + d) / 4u];
}

fn prefetchQK(k0: u32, c: u32) {
  pf0 = fetchQ(tid, c);
  pf1 = fetchQ(tid + 128u, c);
  pf4 = fetchK(tid, k0, c);
  pf5 = fetchK(tid + 128u, k0, c);
  if (CW == 8u) {
    pf2 = fetchQ(tid + 256u, c);
    pf3 = fetchQ(tid + 384u, c);
    pf6 = fetchK(tid + 256u, k0, c);
    pf7 = fetchK(tid + 384u, k0, c);
  }
}

fn prefetchV(s0: u32) {
  pf0 = fetchV(tid, s0);
  pf1 = fetchV(tid + 128u, s0);
  pf2 = fetchV(tid + 256u, s0);
  pf3 = fetchV(tid + 384u, s0);
  if (CW == 8u) {
    pf4 = fetchV(tid + 512u, s0);
    pf5 = fetchV(tid + 640u, s0);
    pf6 = fetchV(tid + 768u, s0);
    pf7 = fetchV(tid + 896u, s0);
  }
}

// XOR swizzle of a K row's CW vec4: keys tx + 16j of one head-dim vec4 land in distinct bank groups.
fn kSwizzle(key: u32) -> u32 {
  if (CW == 8u) { return key & 7u; }
  return (key >> 1u) & 3u;
}

fn kSlot(e: u32) -> u32 {
  let key = e / CW;
  return BUF / 2u + key * CW + ((e % CW) ^ kSwizzle(key));
}

fn putQK(buf: u32) {
  stage[buf * BUF + tid] = pf0;
  stage[buf * BUF + tid + 128u] = pf1;
  stage[buf * BUF + kSlot(tid)] = pf4;
  stage[buf * BUF + kSlot(tid + 128u)] = pf5;
  if (CW == 8u) {
    stage[buf * BUF + tid + 256u] = pf2;
    stage[buf * BUF + tid + 384u] = pf3;
    stage[buf * BUF + kSlot(tid + 256u)] = pf6;
    stage[buf * BUF + kSlot(tid + 384u)] = pf7;
  }
}

fn putV(buf: u32) {
  stage[buf * BUF + tid] = pf0;
  stage[buf * BUF + tid + 128u] = pf1;
  stage[buf * BUF + tid + 256u] = pf2;
  stage[buf * BUF + tid + 384u] = pf3;
  if (CW == 8u) {
    stage[buf * BUF + tid + 512u] = pf4;
    stage[buf * BUF + tid + 640u] = pf5;
    stage[buf * BUF + tid + 768u] = pf6;
    stage[buf * BUF + tid + 896u] = pf7;
  }
}

// Row scores += q · (four keys), as four vec4 FMAs (no dot(): that would cost a multiply and an add
// on top of the FMAs). kx .. kw hold head-dim component x .. w of the four keys.
fn rowFma(s: vec4<f32>, qv: vec4<f32>, kx: vec4<f32>, ky: vec4<f32>, kz: vec4<f32>, kw: vec4<f32>) -> vec4<f32> {
  return fma(vec4<f32>(qv.w), kw, fma(vec4<f32>(qv.z), kz, fma(vec4<f32>(qv.y), ky, fma(vec4<f32>(qv.x), kx, s))));
}

// Scores += the chunk in buffer `buf` (4·CW head-dim columns).
fn sChunk(buf: u32) {
  let qb = buf * BUF + ty * 4u * CW;
  let kb = buf * BUF + BUF / 2u + tx * CW;
  let sw = kSwizzle(tx);
  for (var d4 = 0u; d4 < CW; d4++) {
    let kx = kb + (d4 ^ sw);
    let k0v = stage[kx];
    let k1v = stage[kx + 16u * CW];
    let k2v = stage[kx + 32u * CW];
    let k3v = stage[kx + 48u * CW];
    let ka = vec4<f32>(k0v.x, k1v.x, k2v.x, k3v.x);
    let kb2 = vec4<f32>(k0v.y, k1v.y, k2v.y, k3v.y);
    let kc = vec4<f32>(k0v.z, k1v.z, k2v.z, k3v.z);
    let kd = vec4<f32>(k0v.w, k1v.w, k2v.w, k3v.w);
    s0 = rowFma(s0, stage[qb + d4], ka, kb2, kc, kd);
    s1 = rowFma(s1, stage[qb + CW + d4], ka, kb2, kc, kd);
    s2 = rowFma(s2, stage[qb + 2u * CW + d4], ka, kb2, kc, kd);
    s3 = rowFma(s3, stage[qb + 3u * CW + d4], ka, kb2, kc, kd);
    s4 = rowFma(s4, stage[qb + 32u * CW + d4], ka, kb2, kc, kd);
    s5 = rowFma(s5, stage[qb + 33u * CW + d4], ka, kb2, kc, kd);
    s6 = rowFma(s6, stage[qb + 34u * CW + d4], ka, kb2, kc, kd);
    s7 = rowFma(s7, stage[qb + 35u * CW + d4], ka, kb2, kc, kd);
  }
}

// O += P · V for the VK keys kc·VK .. + VK − 1 whose V chunk is in buffer `buf`.
fn pvChunk(buf: u32, kc: u32) {
  for (var kk = 0u; kk < VK; kk++) {
    let key = kc * VK + kk;
    let sw = key & 7u;
    let pa = ps[key * 16u + (ty ^ sw)];
    let pb = ps[key * 16u + 8u + (ty ^ sw)];
    let va = stage[buf * BUF + kk * 32u + tx];
    let vb = stage[buf * BUF + kk * 32u + 16u + tx];
    o0 = fma(vec4<f32>(pa.x), va, o0);
    o1 = fma(vec4<f32>(pa.x), vb, o1);
    o2 = fma(vec4<f32>(pa.y), va, o2);
    o3 = fma(vec4<f32>(pa.y), vb, o3);
    o4 = fma(vec4<f32>(pa.z), va, o4);
    o5 = fma(vec4<f32>(pa.z), vb, o5);
    o6 = fma(vec4<f32>(pa.w), va, o6);
    o7 = fma(vec4<f32>(pa.w), vb, o7);
    o8 = fma(vec4<f32>(pb.x), va, o8);
    o9 = fma(vec4<f32>(pb.x), vb, o9);
    o10 = fma(vec4<f32>(pb.y), va, o10);
    o11 = fma(vec4<f32>(pb.y), vb, o11);
    o12 = fma(vec4<f32>(pb.z), va, o12);
    o13 = fma(vec4<f32>(pb.z), vb, o13);
    o14 = fma(vec4<f32>(pb.w), va, o14);
    o15 = fma(vec4<f32>(pb.w), vb, o15);
  }
}

// Masked scores of local row `row` for keys kv (the thread's four keys) become MASKED.
fn maskRow(s: vec4<f32>, row: u32, kv: vec4<i32>) -> vec4<f32> {
  let pos = vec4<i32>(i32(q0 + row) + i32(p.S) - i32(p.T));
  var ok = kv < vec4<i32>(i32(p.S));
  if (p.causal != 0u) { ok = ok & (kv <= pos); }
  if (p.window != 0u) { ok = ok & (pos - kv < vec4<i32>(i32(p.window))); }
  return select(vec4<f32>(MASKED), s, ok);
}

fn max4(x: vec4<f32>) -> f32 {
  return max(max(x.x, x.y), max(x.z, x.w));
}

fn sum4(x: vec4<f32>) -> f32 {
  return (x.x + x.y) + (x.z + x.w);
}

// This thread's partial (over its 4 keys) of the max or sum of local row `row`, into `red`.
fn putRed(row: u32, x: f32) {
  stage[BUF + row * 4u + tx / 4u][tx % 4u] = x;
}

fn redMax(row: u32) -> f32 {
  let b = BUF + row * 4u;
  return max4(max(max(stage[b], stage[b + 1u]), max(stage[b + 2u], stage[b + 3u])));
}

// Online-softmax update of the rows in `s0..s7`; writes P (transposed) to `ps`.
fn softmaxUpdate() {
  let mA = max(ma, vec4<f32>(redMax(ty * 4u), redMax(ty * 4u + 1u), redMax(ty * 4u + 2u), redMax(ty * 4u + 3u)));
  let mB = max(mb, vec4<f32>(redMax(ty * 4u + 32u), redMax(ty * 4u + 33u), redMax(ty * 4u + 34u), redMax(ty * 4u + 35u)));
  let alA = exp2(ma - mA);
  let alB = exp2(mb - mB);
  ma = mA;
  mb = mB;
  let p0 = exp2(s0 - vec4<f32>(mA.x));
  let p1 = exp2(s1 - vec4<f32>(mA.y));
  let p2 = exp2(s2 - vec4<f32>(mA.z));
  let p3 = exp2(s3 - vec4<f32>(mA.w));
  let p4 = exp2(s4 - vec4<f32>(mB.x));
  let p5 = exp2(s5 - vec4<f32>(mB.y));
  let p6 = exp2(s6 - vec4<f32>(mB.z));
  let p7 = exp2(s7 - vec4<f32>(mB.w));
  la = la * alA + vec4<f32>(sum4(p0), sum4(p1), sum4(p2), sum4(p3));
  lb = lb * alB + vec4<f32>(sum4(p4), sum4(p5), sum4(p6), sum4(p7));
  o0 *= alA.x;
  o1 *= alA.x;
  o2 *= alA.y;
  o3 *= alA.y;
  o4 *= alA.z;
  o5 *= alA.z;
  o6 *= alA.w;
  o7 *= alA.w;
  o8 *= alB.x;
  o9 *= alB.x;
  o10 *= alB.y;
  o11 *= alB.y;
  o12 *= alB.z;
  o13 *= alB.z;
  o14 *= alB.w;
  o15 *= alB.w;
  // Key tx + 16j: vec4 (key·16 + (ty ^ (key & 7))) holds rows ty·4 .. + 3; key & 7 == tx & 7.
  let sw = tx & 7u;
  let a = ty ^ sw;
  let b = 8u + (ty ^ sw);
  ps[tx * 16u + a] = vec4<f32>(p0.x, p1.x, p2.x, p3.x);
  ps[tx * 16u + b] = vec4<f32>(p4.x, p5.x, p6.x, p7.x);
  ps[(tx + 16u) * 16u + a] = vec4<f32>(p0.y, p1.y, p2.y, p3.y);
  ps[(tx + 16u) * 16u + b] = vec4<f32>(p4.y, p5.y, p6.y, p7.y);
  ps[(tx + 32u) * 16u + a] = vec4<f32>(p0.z, p1.z, p2.z, p3.z);
  ps[(tx + 32u) * 16u + b] = vec4<f32>(p4.z, p5.z, p6.z, p7.z);
  ps[(tx + 48u) * 16u + a] = vec4<f32>(p0.w, p1.w, p2.w, p3.w);
  ps[(tx + 48u) * 16u + b] = vec4<f32>(p4.w, p5.w, p6.w, p7.w);
}

// Final row sums (the 16 partials of local row `row`, in `ps` after the loop).
fn rowSum(row: u32) -> f32 {
  let b = row * 4u;
  return sum4((ps[b] + ps[b + 1u]) + (ps[b + 2u] + ps[b + 3u]));
}

fn store(row: u32, m: f32, l: f32, oa: vec4<f32>, ob: vec4<f32>, b: u32, h: u32) {
  let t = q0 + row;
  if (t >= p.T) { return; }
  let inv = 1.0 / l;
  let base = (qBase + t * p.H * D) / 4u;
  if (4u * tx < D) { out[base + tx] = oa * inv; }
  if (64u + 4u * tx < D) { out[base + 16u + tx] = ob * inv; }
  if (tx == 0u) { lse[(b * p.H + h) * p.T + t] = (m + log2(l)) * 0.69314718055994530942; }
}

// One 64-query tile `qt` of head h, batch b: the whole flash loop and the output.
fn queryTile(qt: u32, b: u32, h: u32) {
  let qStart = qt * 64u;
  q0 = qStart;
  let kvh = h / (p.H / p.Hkv);
  qBase = (b * p.T * p.H + h) * D;
  kBase = (b * p.S * p.Hkv + kvh) * D;

  // Key range this query tile can see (workgroup-uniform, so the barriers below are legal).
  let posLo = i32(qStart) + i32(p.S) - i32(p.T);
  let posHi = i32(min(qStart + 63u, p.T - 1u)) + i32(p.S) - i32(p.T);
  var kEnd = p.S;
  if (p.causal != 0u) { kEnd = u32(clamp(posHi + 1, 0, i32(p.S))); }
  var kFirst = 0u;
  if (p.window != 0u) { kFirst = (u32(max(posLo - i32(p.window) + 1, 0)) / 64u) * 64u; }

  ma = vec4<f32>(NEG);
  mb = vec4<f32>(NEG);
  la = vec4<f32>(0.0);
  lb = vec4<f32>(0.0);
  o0 = vec4<f32>(0.0); o1 = vec4<f32>(0.0); o2 = vec4<f32>(0.0); o3 = vec4<f32>(0.0);
  o4 = vec4<f32>(0.0); o5 = vec4<f32>(0.0); o6 = vec4<f32>(0.0); o7 = vec4<f32>(0.0);
  o8 = vec4<f32>(0.0); o9 = vec4<f32>(0.0); o10 = vec4<f32>(0.0); o11 = vec4<f32>(0.0);
  o12 = vec4<f32>(0.0); o13 = vec4<f32>(0.0); o14 = vec4<f32>(0.0); o15 = vec4<f32>(0.0);

  prefetchQK(kFirst, 0u);
  putQK(0u);
  workgroupBarrier();
  for (var k0 = kFirst; k0 < kEnd; k0 += 64u) {
    s0 = vec4<f32>(0.0); s1 = vec4<f32>(0.0); s2 = vec4<f32>(0.0); s3 = vec4<f32>(0.0);
    s4 = vec4<f32>(0.0); s5 = vec4<f32>(0.0); s6 = vec4<f32>(0.0); s7 = vec4<f32>(0.0);
    // S phase: chunk c in buffer 0, c + 1 in buffer 1; the chunk after the last is V chunk 0.
    for (var c = 0u; c < NC; c += 2u) {
      prefetchQK(k0, c + 1u);
      sChunk(0u);
      putQK(1u);
      workgroupBarrier();
      if (c + 2u < NC) { prefetchQK(k0, c + 2u); } else { prefetchV(k0); }
      sChunk(1u);
      if (c + 2u < NC) { putQK(0u); } else { putV(0u); }
      workgroupBarrier();
    }

    // Mask only tiles that hold a masked element: keys past S, a causal diagonal, a window edge.
    let needMask = k0 + 64u > p.S || (p.causal != 0u && i32(k0) + 63 > posLo) ||
      (p.window != 0u && posHi - i32(k0) >= i32(p.window));
    if (needMask) {
      let kv = vec4<i32>(i32(k0 + tx)) + vec4<i32>(0, 16, 32, 48);
      s0 = maskRow(s0, ty * 4u, kv);
      s1 = maskRow(s1, ty * 4u + 1u, kv);
      s2 = maskRow(s2, ty * 4u + 2u, kv);
      s3 = maskRow(s3, ty * 4u + 3u, kv);
      s4 = maskRow(s4, ty * 4u + 32u, kv);
      s5 = maskRow(s5, ty * 4u + 33u, kv);
      s6 = maskRow(s6, ty * 4u + 34u, kv);
      s7 = maskRow(s7, ty * 4u + 35u, kv);
    }
    putRed(ty * 4u, max4(s0));
    putRed(ty * 4u + 1u, max4(s1));
    putRed(ty * 4u + 2u, max4(s2));
    putRed(ty * 4u + 3u, max4(s3));
    putRed(ty * 4u + 32u, max4(s4));
    putRed(ty * 4u + 33u, max4(s5));
    putRed(ty * 4u + 34u, max4(s6));
    putRed(ty * 4u + 35u, max4(s7));
    workgroupBarrier();
    softmaxUpdate();
    workgroupBarrier(); // publishes ps; `red` (buffer 1) is free for V chunk 1

    // P · V phase: V chunk kc in buffer kc % 2; after the last, the next tile's first Q/K chunk.
    for (var kc = 0u; kc < 64u / VK; kc += 2u) {
      prefetchV(k0 + (kc + 1u) * VK);
      pvChunk(0u, kc);
      putV(1u);
      workgroupBarrier();
      if (kc + 2u < 64u / VK) { prefetchV(k0 + (kc + 2u) * VK); } else { prefetchQK(k0 + 64u, 0u); }
      pvChunk(1u, kc + 1u);
      if (kc + 2u < 64u / VK) { putV(0u); } else { putQK(0u); }
      workgroupBarrier();
    }
  }

  // Row sums: add the 16 per-thread partials of each row (ps is free after the loop's last barrier).
  ps[(ty * 4u) * 4u + tx / 4u][tx % 4u] = la.x;
  ps[(ty * 4u + 1u) * 4u + tx / 4u][tx % 4u] = la.y;
  ps[(ty * 4u + 2u) * 4u + tx / 4u][tx % 4u] = la.z;
  ps[(ty * 4u + 3u) * 4u + tx / 4u][tx % 4u] = la.w;
  ps[(ty * 4u + 32u) * 4u + tx / 4u][tx % 4u] = lb.x;
  ps[(ty * 4u + 33u) * 4u + tx / 4u][tx % 4u] = lb.y;
  ps[(ty * 4u + 34u) * 4u + tx / 4u][tx % 4u] = lb.z;
  ps[(ty * 4u + 35u) * 4u + tx / 4u][tx % 4u] = lb.w;
  workgroupBarrier();
  store(ty * 4u, ma.x, rowSum(ty * 4u), o0, o1, b, h);
  store(ty * 4u + 1u, ma.y, rowSum(ty * 4u + 1u), o2, o3, b, h);
  store(ty * 4u + 2u, ma.z, rowSum(ty * 4u + 2u), o4, o5, b, h);
  store(ty * 4u + 3u, ma.w, rowSum(ty * 4u + 3u), o6, o7, b, h);
  store(ty * 4u + 32u, mb.x, rowSum(ty * 4u + 32u), o8, o9, b, h);
  store(ty * 4u + 33u, mb.y, rowSum(ty * 4u + 33u), o10, o11, b, h);
  store(ty * 4u + 34u, mb.z, rowSum(ty * 4u + 34u), o12, o13, b, h);
  store(ty * 4u + 35u, mb.w, rowSum(ty * 4u + 35u), o14, o15, b, h);
}

@compute @workgroup_size(128)
fn main(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  tid = lid;
  tx = lid % 16u;
  ty = lid / 16u;
  if (PAIR) {
    let last = (p.T + 63u) / 64u - 1u - wg.x;
    queryTile(last, wg.z, wg.y);
    if (wg.x < last) { queryTile(wg.x, wg.z, wg.y); }
  } else {
    queryTile(nwg.x - 1u - wg.x, wg.z, wg.y);
  }
}
