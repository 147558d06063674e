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
//            4 kc: array<ST> read_write [B, Hkv, maxT, D]   5 vc: same
//   partial: 7 q: array<f32> read [B, H, D]   4 kc, 5 vc   6 len: array<u32> read [B]
//            8 part: array<f32> read_write [B, H, nsplit, D]   9 ml: array<f32> read_write [B, H, nsplit, 2]
//   combine: 8 part, 9 ml   10 out: array<f32> read_write [B, H, D]
// Workgroups: write 256, grid grid1d(B·T·Hkv·D) (index = x + y · nx · 256); partial 64, grid
// [nsplit, H / GW, B]; combine 64, grid [H, B]. Overrides: D (≤ 128), GW (query heads per partial
// workgroup, ≤ 8, divides H / Hkv: the heads sharing a kv head share each K/V block read).
// partial stages 32 keys at a time in workgroup memory as f32 with row stride D + 1 (conflict-free
// per-key dot products): 16.5 KiB + q 4 KiB + scores 1 KiB.

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
  n: u32, // elements written by `write`
  nx: u32, // x workgroups of the `write` grid
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> kin: array<f32>;
@group(0) @binding(2) var<storage, read> vin: array<f32>;
@group(0) @binding(3) var<storage, read> pos: array<u32>;
@group(0) @binding(4) var<storage, read_write> kc: array<ST>;
@group(0) @binding(5) var<storage, read_write> vc: array<ST>;
@group(0) @binding(6) var<storage, read> len: array<u32>;
@group(0) @binding(7) var<storage, read> q: array<f32>;
@group(0) @binding(8) var<storage, read_write> part: array<f32>;
@group(0) @binding(9) var<storage, read_write> ml: array<f32>;
@group(0) @binding(10) var<storage, read_write> out: array<f32>;

override D: u32 = 64u;
override GW: u32 = 1u;
const NEG = -1e30;
const BLOCK = 32u;

var<workgroup> kvs: array<f32, 4128>; // 32 keys × (D + 1), K then V
var<workgroup> qs: array<f32, 1024>; // GW × D, pre-scaled
var<workgroup> sc: array<f32, 256>; // GW × 32 scores, then probabilities
var<workgroup> seqLen: u32;

@compute @workgroup_size(256)
fn write(@builtin(global_invocation_id) gid: vec3<u32>) {
  let e = gid.x + gid.y * p.nx * 256u;
  if (e >= p.n) { return; }
  let d = e % D;
  let g = (e / D) % p.Hkv;
  let bt = e / (D * p.Hkv);
  let b = bt / p.T;
  let row = pos[b] + bt % p.T;
  if (row >= p.maxT) { return; }
  let at = ((b * p.Hkv + g) * p.maxT + row) * D + d;
  kc[at] = ST(kin[e]);
  vc[at] = ST(vin[e]);
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
  let cache = (b * p.Hkv + kvh) * p.maxT * D;

  for (var e = lid; e < GW * D; e += 64u) { qs[e] = q[(b * p.H + h0) * D + e] * p.scale2; }
  var m = array<f32, 8>(NEG, NEG, NEG, NEG, NEG, NEG, NEG, NEG);
  var l = array<f32, 8>();
  var o = array<f32, 16>(); // [GW][2]: dims lid and lid + 64

  for (var j0 = s0; j0 < s1; j0 += BLOCK) {
    workgroupBarrier(); // previous block's readers are done with kvs and sc (and qs is written)
    for (var e = lid; e < BLOCK * D; e += 64u) {
      let kk = e / D;
      var x = 0.0;
      if (j0 + kk < s1) { x = f32(kc[cache + (j0 + kk) * D + e % D]); }
      kvs[kk * (D + 1u) + e % D] = x;
    }
    workgroupBarrier();
    for (var e = lid; e < GW * BLOCK; e += 64u) {
      let g = e / BLOCK;
      let kk = e % BLOCK;
      var acc = 0.0;
      for (var d = 0u; d < D; d++) { acc += qs[g * D + d] * kvs[kk * (D + 1u) + d]; }
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
    for (var e = lid; e < BLOCK * D; e += 64u) {
      let kk = e / D;
      var x = 0.0;
      if (j0 + kk < s1) { x = f32(vc[cache + (j0 + kk) * D + e % D]); }
      kvs[kk * (D + 1u) + e % D] = x;
    }
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
