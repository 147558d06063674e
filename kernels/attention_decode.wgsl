// attention_decode — KV-cache write and split-K ("flash-decoding") attention for one new token per
// sequence. The cache is [B, Hkv, maxT, D] so a run of keys of one head is one contiguous block.
//
//   write:   cache[b, g, pos[b] + t, :] = ST(k[b, t, g, :]) (same for v); rows ≥ maxT are dropped
//   partial: for key split s of sequence b and heads h0 .. h0+GW−1 (one kv head): the unnormalised
//            o = Σ_j exp2(s_j − m)·v_j, m = max_j s_j and l = Σ_j exp2(s_j − m) over the split's keys
//   combine: out[b, h] = Σ_s exp2(m_s − M)·o_s / Σ_s exp2(m_s − M)·l_s,  M = max_s m_s
// Keys visible to sequence b: j < len[b] and (window == 0 or len[b] − 1 − j < window). Splits with no
// visible key write m = −1e30, l = 0, o = 0 and drop out of the combine, so the host needs no lengths.
//
// Bindings (group 0): 0 uniform Params (below; each entry reads the fields it needs)
//   write:   1 k: array<f32> read [B, T, Hkv, D]   2 v: same   3 pos: array<u32> read [B]
//            4 kc: array<vec4<ST>> read_write [B, Hkv, maxT, D / 4]   5 vc: same
//   partial: 7 q: array<f32> read [B, H, D]   4 kc, 5 vc   6 len: array<u32> read [B]
//            8 part: array<f32> read_write [B, H, nsplit, D]   9 ml: array<f32> read_write [B, H, nsplit, 2]
//   combine: 8 part, 9 ml   10 out: array<f32> read_write [B, H, D]
//   rope_write (decode: RoPE of q and k and the cache write of k and v in one launch), for the new token
//            of each sequence b: qout[b, h] = rope(q[b, h], rpos[b]); cache[b, g, pos[b]] = rope(k[b, g]),
//            v[b, g] — rope exactly as kernels/rope.wgsl (rotate_half, angle f32(position)·invFreq, the
//            same two-part 2π reduction), so decode matches the unfused path bit for bit on a device.
//            Bindings: 11 qkv4: array<vec4<f32>> read [B, (H + 2·Hkv)·D / 4] (the fused q|k|v projection:
//            q heads, then k heads, then v heads; one buffer keeps the entry at 7 storage bindings, under
//            WebGPU's default limit of 8); 13 rpos: array<i32> [B];
//            14 inv4: array<vec4<f32>> [D/8]; 3 pos, 4 kc, 5 vc as `write`; 12 qout4 rw [B, H, D/4].
//            Uniform RopeW (below, binding 0). Workgroup 256, one thread per 4 rotation pairs of one
//            head: n = B·(H + 2·Hkv)·D/8 threads, grid grid1d(n) (index = x + y · nx · 256). D % 8 == 0.
//   split128: the same contract as `partial` (same bindings, part/ml layout, combine) with a flat
//            structure for short splits (≤ 128 keys, p.split): thread t scores key s0 + t against the GW
//            heads (registers, fixed-trip loops), 16 threads per head reduce max and Σ exp2 through
//            workgroup memory, then threads own (head, 4 dims) and sum p·v over the split's keys. No
//            dynamically indexed private arrays (which NVIDIA places in local memory).
//            Workgroup 128, grid [nsplit, H / GW, B]; workgroup memory 8.5 KiB.
// Workgroups: write 256 (one vec4 each), grid grid1d(B·T·Hkv·D / 4) (index = x + y · nx · 256); partial 64, grid
// [nsplit, H / GW, B]; combine 64, grid [H, B]. Overrides: D (≤ 128), GW (query heads per partial
// workgroup, ≤ 8, divides H / Hkv: the heads sharing a kv head share each K/V block read).
// partial stages 32 keys at a time in workgroup memory as f32 with row stride D + 1 (conflict-free
// per-key dot products): 16.5 KiB + q 4 KiB + scores 1 KiB. Cache reads are vec4 (8 or 16 bytes) and
// run one phase ahead in registers. Assumes D % 4 == 0.

struct Params {
  B: u32,
  T: u32,
  H: u32,
  Hkv: u32,
  maxT: u32,
  window: u32,
  scale2: f32, // scale · log2(e)
  split: u32, // keys per split
  nsplit: u32,
  n: u32, // vec4s written by `write` (B·T·Hkv·D / 4)
  nx: u32, // x workgroups of the `write` grid
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> kin: array<f32>;
@group(0) @binding(2) var<storage, read> vin: array<f32>;
@group(0) @binding(3) var<storage, read> pos: array<u32>;
@group(0) @binding(4) var<storage, read_write> kc: array<vec4<ST>>;
@group(0) @binding(5) var<storage, read_write> vc: array<vec4<ST>>;
@group(0) @binding(6) var<storage, read> len: array<u32>;
@group(0) @binding(7) var<storage, read> q: array<f32>;
@group(0) @binding(8) var<storage, read_write> part: array<f32>;
@group(0) @binding(9) var<storage, read_write> ml: array<f32>;
@group(0) @binding(10) var<storage, read_write> out: array<f32>;

override D: u32 = 64u;
override GW: u32 = 1u;
override NV: u32 = (BLOCK * D / 4u + 63u) / 64u; // vec4s per thread per 32-key block (≤ 16)
const NEG = -1e30;
const BLOCK = 32u;

var<workgroup> kvs: array<f32, 4128>; // 32 keys × (D + 1), K then V
var<workgroup> qs: array<vec4<f32>, 256>; // [GW][D / 4], pre-scaled
var<workgroup> sc: array<f32, 256>; // GW × 32 scores, then probabilities
var<workgroup> seqLen: u32;

@compute @workgroup_size(256)
fn write(@builtin(global_invocation_id) gid: vec3<u32>) {
  let e = gid.x + gid.y * p.nx * 256u; // vec4 e: elements 4e .. 4e + 3 of k / v
  if (e >= p.n) { return; }
  let d4 = e % (D / 4u);
  let g = (e / (D / 4u)) % p.Hkv;
  let bt = e / (D / 4u * p.Hkv);
  let b = bt / p.T;
  let row = pos[b] + bt % p.T;
  if (row >= p.maxT) { return; }
  let at = ((b * p.Hkv + g) * p.maxT + row) * (D / 4u) + d4;
  kc[at] = vec4<ST>(vec4<f32>(kin[4u * e], kin[4u * e + 1u], kin[4u * e + 2u], kin[4u * e + 3u]));
  vc[at] = vec4<ST>(vec4<f32>(vin[4u * e], vin[4u * e + 1u], vin[4u * e + 2u], vin[4u * e + 3u]));
}

// Vec4 i of each thread's share of a 32-key block (vec4 e = lid + 64i: key e / (D/4)); 0 past the split.
fn blockVec(fromV: bool, base: u32, j0: u32, s1: u32, e: u32) -> vec4<f32> {
  let kk = e / (D / 4u);
  if (e >= BLOCK * D / 4u || j0 + kk >= s1) { return vec4<f32>(0.0); }
  let at = base + j0 * (D / 4u) + e;
  if (fromV) { return vec4<f32>(vc[at]); }
  return vec4<f32>(kc[at]);
}

// Writes a staged vec4 into kvs (row stride D + 1: the per-key dot products below are conflict-free).
fn stageVec(e: u32, x: vec4<f32>) {
  if (e >= BLOCK * D / 4u) { return; }
  let at = (e / (D / 4u)) * (D + 1u) + 4u * (e % (D / 4u));
  kvs[at] = x.x;
  kvs[at + 1u] = x.y;
  kvs[at + 2u] = x.z;
  kvs[at + 3u] = x.w;
}

@compute @workgroup_size(64)
fn partial(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let b = wg.z;
  let h0 = wg.y * GW;
  let kvh = h0 / (p.H / p.Hkv);
  let split = wg.x;
  if (lid == 0u) { seqLen = len[b]; }
  let n = workgroupUniformLoad(&seqLen);
  var s0 = split * p.split;
  let s1 = min(s0 + p.split, n);
  if (p.window != 0u && n > p.window) { s0 = max(s0, n - p.window); }
  let cache = (b * p.Hkv + kvh) * p.maxT * (D / 4u); // in vec4s

  for (var e = lid; e < GW * D / 4u; e += 64u) {
    let at = (b * p.H + h0) * D + 4u * e;
    qs[e] = vec4<f32>(q[at], q[at + 1u], q[at + 2u], q[at + 3u]) * p.scale2;
  }
  var m = array<f32, 8>(NEG, NEG, NEG, NEG, NEG, NEG, NEG, NEG);
  var l = array<f32, 8>();
  var o = array<f32, 16>(); // [GW][2]: dims lid and lid + 64
  // Global loads run one phase ahead: V of this block during the scores, K of the next during P·V.
  var kr: array<vec4<f32>, 16>;
  var vr: array<vec4<f32>, 16>;
  for (var i = 0u; i < NV; i++) { kr[i] = blockVec(false, cache, s0, s1, lid + 64u * i); }

  for (var j0 = s0; j0 < s1; j0 += BLOCK) {
    workgroupBarrier(); // previous block's readers are done with kvs and sc (and qs is written)
    for (var i = 0u; i < NV; i++) { stageVec(lid + 64u * i, kr[i]); }
    workgroupBarrier();
    for (var i = 0u; i < NV; i++) { vr[i] = blockVec(true, cache, j0, s1, lid + 64u * i); }
    for (var e = lid; e < GW * BLOCK; e += 64u) {
      let g = e / BLOCK;
      let kk = e % BLOCK;
      var acc = 0.0;
      for (var d4 = 0u; d4 < D / 4u; d4++) {
        let qv = qs[g * (D / 4u) + d4]; // broadcast: one vec4 load feeds 4 FMAs
        let at = kk * (D + 1u) + 4u * d4;
        acc += qv.x * kvs[at] + qv.y * kvs[at + 1u] + qv.z * kvs[at + 2u] + qv.w * kvs[at + 3u];
      }
      sc[e] = select(NEG, acc, j0 + kk < s1);
    }
    workgroupBarrier();
    // Every thread keeps its own copy of m and l per head (cheap: 32 broadcast reads per head).
    var mNew: array<f32, 8>;
    for (var g = 0u; g < GW; g++) {
      mNew[g] = m[g];
      for (var kk = 0u; kk < BLOCK; kk++) { mNew[g] = max(mNew[g], sc[g * BLOCK + kk]); }
      let alpha = exp2(m[g] - mNew[g]);
      m[g] = mNew[g];
      l[g] *= alpha;
      o[g * 2u] *= alpha;
      o[g * 2u + 1u] *= alpha;
    }
    workgroupBarrier(); // all maxima read before scores become probabilities and K becomes V
    for (var e = lid; e < GW * BLOCK; e += 64u) {
      sc[e] = select(0.0, exp2(sc[e] - mNew[e / BLOCK]), j0 + e % BLOCK < s1);
    }
    for (var i = 0u; i < NV; i++) { stageVec(lid + 64u * i, vr[i]); }
    for (var i = 0u; i < NV; i++) { kr[i] = blockVec(false, cache, j0 + BLOCK, s1, lid + 64u * i); }
    workgroupBarrier();
    for (var g = 0u; g < GW; g++) {
      for (var kk = 0u; kk < BLOCK; kk++) {
        let pv = sc[g * BLOCK + kk];
        l[g] += pv;
        for (var c = 0u; c < 2u; c++) {
          let d = lid + 64u * c;
          if (d < D) { o[g * 2u + c] += pv * kvs[kk * (D + 1u) + d]; }
        }
      }
    }
  }

  for (var g = 0u; g < GW; g++) {
    let row = (b * p.H + h0 + g) * p.nsplit + split;
    for (var c = 0u; c < 2u; c++) {
      let d = lid + 64u * c;
      if (d < D) { part[row * D + d] = o[g * 2u + c]; }
    }
    if (lid == 0u) {
      ml[row * 2u] = m[g];
      ml[row * 2u + 1u] = l[g];
    }
  }
}

@compute @workgroup_size(64)
fn combine(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let row0 = (wg.y * p.H + wg.x) * p.nsplit;
  var mx = NEG;
  for (var s = 0u; s < p.nsplit; s++) { mx = max(mx, ml[(row0 + s) * 2u]); }
  var sum = 0.0;
  for (var s = 0u; s < p.nsplit; s++) { sum += exp2(ml[(row0 + s) * 2u] - mx) * ml[(row0 + s) * 2u + 1u]; }
  for (var d = lid; d < D; d += 64u) {
    var acc = 0.0;
    for (var s = 0u; s < p.nsplit; s++) { acc += exp2(ml[(row0 + s) * 2u] - mx) * part[(row0 + s) * D + d]; }
    out[(wg.y * p.H + wg.x) * D + d] = acc / sum;
  }
}

struct RopeW {
  B: u32,
  H: u32,
  Hkv: u32,
  maxT: u32,
  hv: u32, // D / 8: vec4s per half head
  n: u32,
  nx: u32,
}

@group(0) @binding(0) var<uniform> rw: RopeW;
@group(0) @binding(11) var<storage, read> qkv4: array<vec4<f32>>;
@group(0) @binding(12) var<storage, read_write> qout4: array<vec4<f32>>;
@group(0) @binding(13) var<storage, read> rpos: array<i32>;
@group(0) @binding(14) var<storage, read> inv4: array<vec4<f32>>;

const INV_TWO_PI: f32 = 0.15915494309189535;
const TWO_PI_HI: f32 = 6.28125;
const TWO_PI_LO: f32 = 0.0019353071795864769; // 2π − TWO_PI_HI

// As kernels/rope.wgsl: a − 2π·round(a / 2π), with 2π in two parts.
fn reduce_angle(a: vec4<f32>) -> vec4<f32> {
  let k = round(a * INV_TWO_PI);
  return (a - k * TWO_PI_HI) - k * TWO_PI_LO;
}

@compute @workgroup_size(256)
fn rope_write(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * rw.nx * 256u;
  if (i >= rw.n) { return; }
  let heads = rw.H + 2u * rw.Hkv;
  let d = i % rw.hv;
  let slot = (i / rw.hv) % heads;
  let b = i / (rw.hv * heads);
  // Half head `slot` of row b starts at vec4 (b·heads + slot)·2·hv: q heads, k heads, v heads in order.
  let lo = (b * heads + slot) * 2u * rw.hv + d;
  let x0 = qkv4[lo];
  let x1 = qkv4[lo + rw.hv];
  if (slot < rw.H + rw.Hkv) {
    let a = reduce_angle(f32(rpos[b]) * inv4[d]);
    let c = cos(a);
    let s = sin(a);
    let y0 = x0 * c - x1 * s;
    let y1 = x1 * c + x0 * s;
    if (slot < rw.H) {
      let at = (b * rw.H + slot) * 2u * rw.hv + d;
      qout4[at] = y0;
      qout4[at + rw.hv] = y1;
      return;
    }
    let r = pos[b];
    if (r >= rw.maxT) { return; }
    let at = ((b * rw.Hkv + slot - rw.H) * rw.maxT + r) * 2u * rw.hv + d;
    kc[at] = vec4<ST>(y0);
    kc[at + rw.hv] = vec4<ST>(y1);
    return;
  }
  let g = slot - rw.H - rw.Hkv;
  let r = pos[b];
  if (r >= rw.maxT) { return; }
  let at = ((b * rw.Hkv + g) * rw.maxT + r) * 2u * rw.hv + d;
  vc[at] = vec4<ST>(x0);
  vc[at + rw.hv] = vec4<ST>(x1);
}

// ---- split128 ----

var<workgroup> q8: array<vec4<f32>, 256>; // [GW][D / 4] pre-scaled query rows
var<workgroup> p8: array<f32, 1024>; // [8][128] scores, then probabilities
var<workgroup> r8: array<f32, 128>;

// Tree over the 16 lanes of each head's slot range of r8 (all 128 invocations call it).
fn reduce16(t: u32, isMax: bool) {
  for (var w = 8u; w > 0u; w /= 2u) {
    workgroupBarrier();
    if (t % 16u < w) {
      let a = r8[t];
      let b = r8[t + w];
      r8[t] = select(a + b, max(a, b), isMax);
    }
  }
  workgroupBarrier();
}

@compute @workgroup_size(128)
fn split128(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let b = wg.z;
  let h0 = wg.y * GW;
  let kvh = h0 / (p.H / p.Hkv);
  let split = wg.x;
  if (t == 0u) { seqLen = len[b]; }
  let n = workgroupUniformLoad(&seqLen);
  var s0 = split * p.split;
  let s1 = min(s0 + p.split, n);
  if (p.window != 0u && n > p.window) { s0 = max(s0, n - p.window); }
  let cache = (b * p.Hkv + kvh) * p.maxT * (D / 4u); // in vec4s
  let D4 = D / 4u;
  for (var e = t; e < GW * D4; e += 128u) {
    let at = (b * p.H + h0) * D + 4u * e;
    q8[e] = vec4<f32>(q[at], q[at + 1u], q[at + 2u], q[at + 3u]) * p.scale2;
  }
  workgroupBarrier();

  // Scores of key j = s0 + t for every head of the group.
  let j = s0 + t;
  var score = array<f32, 8>(NEG, NEG, NEG, NEG, NEG, NEG, NEG, NEG);
  if (j < s1) {
    var acc = array<f32, 8>();
    for (var d4 = 0u; d4 < D4; d4++) {
      let kv = vec4<f32>(kc[cache + j * D4 + d4]);
      for (var g = 0u; g < 8u; g++) {
        if (g < GW) { acc[g] += dot(q8[g * D4 + d4], kv); }
      }
    }
    for (var g = 0u; g < 8u; g++) { score[g] = acc[g]; }
  }
  for (var g = 0u; g < 8u; g++) { p8[g * 128u + t] = score[g]; }
  workgroupBarrier();

  // Head hg = t / 16 takes entries lane, lane + 16, … of its row: max, then probabilities and their sum.
  let hg = t / 16u;
  let lane = t % 16u;
  var mx = NEG;
  for (var i = lane; i < 128u; i += 16u) { mx = max(mx, p8[hg * 128u + i]); }
  r8[t] = mx;
  reduce16(t, true);
  let m = r8[hg * 16u];
  workgroupBarrier(); // every head's max read before r8 is reused
  var sum = 0.0;
  for (var i = lane; i < 128u; i += 16u) {
    let k = s0 + i;
    let pv = select(0.0, exp2(p8[hg * 128u + i] - m), k < s1);
    p8[hg * 128u + i] = pv;
    sum += pv;
  }
  r8[t] = sum;
  reduce16(t, false);
  let l = r8[hg * 16u];

  // o[g, 4·d4 .. 4·d4 + 3] = Σ_j p[g, j]·v_j for the (head, vec4) pairs of this invocation.
  for (var e = t; e < GW * D4; e += 128u) {
    let g = e / D4;
    let d4 = e % D4;
    var o = vec4<f32>(0.0);
    for (var k = s0; k < s1; k++) {
      o += p8[g * 128u + (k - s0)] * vec4<f32>(vc[cache + k * D4 + d4]);
    }
    let row = (b * p.H + h0 + g) * p.nsplit + split;
    part[row * D + 4u * d4] = o.x;
    part[row * D + 4u * d4 + 1u] = o.y;
    part[row * D + 4u * d4 + 2u] = o.z;
    part[row * D + 4u * d4 + 3u] = o.w;
  }
  if (lane == 0u && hg < GW) {
    let row = (b * p.H + h0 + hg) * p.nsplit + split;
    ml[row * 2u] = select(NEG, m, s0 < s1);
    ml[row * 2u + 1u] = l;
  }
}
