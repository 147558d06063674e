// attention_decode_one — decode attention (one new token per sequence) over the KV cache in ONE
// launch: split-K flash attention whose last finishing split merges the partial results itself, so
// the merge pass of attention_decode.wgsl (a second dependent launch, ≥ 3 µs on an H200) disappears.
//
//   split s of (sequence b, head group): keys [s·per, (s+1)·per) ∩ visible; o_s = Σ_j exp2(x_j − m_s)·v_j,
//   m_s = max_j x_j, l_s = Σ_j exp2(x_j − m_s), x_j = q·k_j·scale·log2 e (GW query heads of one kv
//   head per workgroup: K/V read once for them)
//   out[b, h] = Σ_s exp2(m_s − M)·o_s / Σ_s exp2(m_s − M)·l_s,  M = max_s m_s
// Visible keys of sequence b: j < n = min(len[b], maxT), and n − 1 − j < window when window ≠ 0.
// Splits have a FIXED size `per` (host: a multiple of KB), so a workgroup issues its K/V and q loads
// before len[b] arrives (rows clamped into its head's block of the cache; keys outside the visible
// range are never read from workgroup memory). Active splits: sFirst = floor(start/per) ..
// sLast = ceil(n/per) − 1, nact = sLast − sFirst + 1; the others exit at once. nact == 1: the split
// writes out = o / l directly. Otherwise each active split writes (o_s, m_s, l_s), then
// storageBarrier (device-scope memory barrier in naga's SPIR-V / Metal / HLSL backends: the partials
// are visible before the counter moves) and one atomicAdd on cnt[b, group]; the split that sees
// nact − 1 merges all nact partials and stores 0 back to the counter (it is zero at every launch).
// K and V are read as vec4<KW>: KW = u32 with F16 (8 halves per load, unpack2x16float, no shader-f16
// needed in this module) or KW = f32 (4 floats per load).
//
// Bindings (group 0): 0 uniform One (below)
//   1 q4: array<vec4<f32>> read [B, H, D/4]        2 kc, 3 vc: array<vec4<KW>> read [B, Hkv, maxT, U]
//   4 len: array<u32> read [B]                      5 part4: array<vec4<f32>> rw [B, H, nsplit, D/4]
//   6 ml: array<f32> rw [B, H, nsplit, 2]           7 out4: array<vec4<f32>> rw [B, H, D/4]
//   8 cnt: array<atomic<u32>> rw [B · H/GW] (zero between launches)
//   U = D/8 (F16) or D/4 units per key row.
// Workgroup 256, grid [nsplit, H / GW, B]. A block of KB = 512 / (D/4) keys (K and V, 8 KiB each as
// f32) is loaded per trip, one block ahead; K is staged with row stride D/4 + 1 vec4 (conflict-free
// per-key dot products). Scores: one (head, key) per thread; P·V: one (head, vec4 of dims) per thread,
// each with its own running max and sum. Workgroup memory ≤ 8.5 + 8 + 4 + 2 KiB; the merge reuses fk
// for (m, l, weight) of ≤ 64 splits per head (host: nsplit ≤ 64).
// Overrides: D (≤ 128, % 8 == 0 with F16, % 4 == 0), GW (query heads per workgroup, ≤ 8), F16.

struct One {
  B: u32,
  H: u32,
  Hkv: u32,
  maxT: u32,
  window: u32,
  scale2: f32, // scale · log2(e)
  per: u32, // keys per split
  nsplit: u32, // grid x
}

@group(0) @binding(0) var<uniform> p: One;
@group(0) @binding(1) var<storage, read> q4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> kc: array<vec4<KW>>;
@group(0) @binding(3) var<storage, read> vc: array<vec4<KW>>;
@group(0) @binding(4) var<storage, read> len: array<u32>;
@group(0) @binding(5) var<storage, read_write> part4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> ml: array<f32>;
@group(0) @binding(7) var<storage, read_write> out4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> cnt: array<atomic<u32>>;

override D: u32 = 64u;
override GW: u32 = 1u;
override F16: bool = true;
override KB: u32 = 512u / (D / 4u); // keys per block
override U: u32 = select(D / 4u, D / 8u, F16); // loads per key row
const NEG = -1e30;
const WG = 256u;

var<workgroup> fk: array<vec4<f32>, KB * (D / 4u + 1u)>; // K block; the merge's (m, l, w) per split
var<workgroup> fv: array<vec4<f32>, 512>; // V block, row stride D/4
var<workgroup> fq: array<vec4<f32>, 256>; // [GW][D/4] query rows, pre-scaled by scale2
var<workgroup> fs: array<f32, GW * KB>; // [GW][KB] scores of the block
var<workgroup> seqLen: u32;
var<workgroup> isLast: u32;

// Load e (< KB·U) of the block starting at key j0, as raw bits; the row is clamped into the head's
// cache block (its value is then never used).
fn load(fromV: bool, base: u32, j0: u32, e: u32) -> vec4<u32> {
  if (e >= KB * U) { return vec4<u32>(0u); }
  let at = base + min(j0 + e / U, p.maxT - 1u) * U + e % U;
  if (fromV) { return bitcast<vec4<u32>>(vc[at]); }
  return bitcast<vec4<u32>>(kc[at]);
}

// Stages load e of a block as f32: K at row stride D/4 + 1, V at D/4.
fn stage(e: u32, k: vec4<u32>, v: vec4<u32>) {
  if (e >= KB * U) { return; }
  let D4 = D / 4u;
  let row = e / U;
  if (F16) {
    let c = 2u * (e % U);
    fk[row * (D4 + 1u) + c] = vec4<f32>(unpack2x16float(k.x), unpack2x16float(k.y));
    fk[row * (D4 + 1u) + c + 1u] = vec4<f32>(unpack2x16float(k.z), unpack2x16float(k.w));
    fv[row * D4 + c] = vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y));
    fv[row * D4 + c + 1u] = vec4<f32>(unpack2x16float(v.z), unpack2x16float(v.w));
  } else {
    let c = e % U;
    fk[row * (D4 + 1u) + c] = bitcast<vec4<f32>>(k);
    fv[row * D4 + c] = bitcast<vec4<f32>>(v);
  }
}

// Running softmax state of one (head, vec4 of dims) pair.
struct Acc {
  o: vec4<f32>,
  m: f32,
  l: f32,
}

// Folds keys j0 .. j1 − 1 of the block (scores of head g in fs, V in fv) into a.
fn fold(a: Acc, g: u32, d4: u32, j0: u32, j1: u32) -> Acc {
  var mx = a.m;
  for (var j = j0; j < j1; j++) { mx = max(mx, fs[g * KB + j]); }
  let alpha = exp2(a.m - mx);
  var o = a.o * alpha;
  var l = a.l * alpha;
  for (var j = j0; j < j1; j++) {
    let pj = exp2(fs[g * KB + j] - mx);
    l += pj;
    o += pj * fv[j * (D / 4u) + d4];
  }
  return Acc(o, mx, l);
}

@compute @workgroup_size(256)
fn flash1(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let b = wg.z;
  let h0 = wg.y * GW;
  let kvh = h0 / (p.H / p.Hkv);
  let s = wg.x;
  let D4 = D / 4u;
  let base = (b * p.Hkv + kvh) * p.maxT * U;
  let j00 = s * p.per;
  // Everything that does not depend on the length is issued first: len, q, the first K/V block.
  if (t == 0u) { seqLen = len[b]; }
  for (var e = t; e < GW * D4; e += WG) { fq[e] = q4[(b * p.H + h0) * D4 + e] * p.scale2; }
  var k0 = load(false, base, j00, t);
  var k1 = load(false, base, j00, t + WG);
  var v0 = load(true, base, j00, t);
  var v1 = load(true, base, j00, t + WG);
  let n = min(workgroupUniformLoad(&seqLen), p.maxT);
  var start = 0u;
  if (p.window != 0u && n > p.window) { start = n - p.window; }
  let sFirst = start / p.per;
  let nact = (n + p.per - 1u) / p.per - sFirst;
  if (s < sFirst || s >= sFirst + nact) { return; }
  let lo = max(start, j00);
  let hi = min(n, j00 + p.per);

  var a = Acc(vec4<f32>(0.0), NEG, 0.0); // pair t = (head t / (D/4), vec4 t % (D/4)); GW·D/4 ≤ 256
  for (var j0 = j00; j0 < hi; j0 += KB) {
    stage(t, k0, v0);
    stage(t + WG, k1, v1);
    workgroupBarrier();
    let j1 = j0 + KB;
    if (j1 < hi) {
      k0 = load(false, base, j1, t);
      k1 = load(false, base, j1, t + WG);
      v0 = load(true, base, j1, t);
      v1 = load(true, base, j1, t + WG);
    }
    // This block's visible keys, relative to j0 (an empty range only before a window's start).
    let jl = max(lo, j0) - j0;
    let jh = min(hi, j1) - j0;
    for (var e = t; e < GW * KB; e += WG) {
      let jj = e % KB;
      if (jj >= jl && jj < jh) {
        let g = e / KB;
        var acc = 0.0;
        for (var d4 = 0u; d4 < D4; d4++) { acc += dot(fq[g * D4 + d4], fk[jj * (D4 + 1u) + d4]); }
        fs[e] = acc;
      }
    }
    workgroupBarrier();
    if (t < GW * D4) { a = fold(a, t / D4, t % D4, jl, jh); }
    workgroupBarrier(); // the block is consumed before the next one is staged
  }

  if (nact == 1u) {
    if (t < GW * D4) { out4[(b * p.H + h0) * D4 + t] = a.o / a.l; }
    return;
  }
  partial(a, b, h0, t, s);
  storageBarrier();
  let ci = b * (p.H / GW) + wg.y;
  if (t == 0u) { isLast = select(0u, 1u, atomicAdd(&cnt[ci], 1u) == nact - 1u); }
  if (workgroupUniformLoad(&isLast) == 0u) { return; }
  storageBarrier(); // the other splits' partials are visible to this one
  merge(t, b, h0, sFirst, nact);
  if (t == 0u) { atomicStore(&cnt[ci], 0u); }
}

// Writes pair e = (head g, vec4 d4) of split s: unnormalised o, and (m, l) once per head.
fn partial(a: Acc, b: u32, h0: u32, e: u32, s: u32) {
  let D4 = D / 4u;
  if (e >= GW * D4) { return; }
  let row = (b * p.H + h0 + e / D4) * p.nsplit + s;
  part4[row * D4 + e % D4] = a.o;
  if (e % D4 == 0u) {
    ml[row * 2u] = a.m;
    ml[row * 2u + 1u] = a.l;
  }
}

// The last split: out = Σ_s w_s·o_s / Σ_s w_s·l_s, w_s = exp2(m_s − M), over splits sFirst .. + nact − 1.
fn merge(t: u32, b: u32, h0: u32, sFirst: u32, nact: u32) {
  let D4 = D / 4u;
  // (m, l) of every (head, split) into workgroup memory (fk is free now).
  for (var e = t; e < GW * nact; e += WG) {
    let row = (b * p.H + h0 + e / nact) * p.nsplit + sFirst + e % nact;
    fk[e] = vec4<f32>(ml[row * 2u], ml[row * 2u + 1u], 0.0, 0.0);
  }
  workgroupBarrier();
  for (var e = t; e < GW * D4; e += WG) {
    let g = e / D4;
    let d4 = e % D4;
    var mx = NEG;
    for (var i = 0u; i < nact; i++) { mx = max(mx, fk[g * nact + i].x); }
    var l = 0.0;
    var o = vec4<f32>(0.0);
    let row0 = (b * p.H + h0 + g) * p.nsplit + sFirst;
    for (var i = 0u; i < nact; i++) {
      let c = fk[g * nact + i];
      let w = exp2(c.x - mx);
      l += w * c.y;
      o += w * part4[(row0 + i) * D4 + d4];
    }
    out4[(b * p.H + h0 + g) * D4 + d4] = o / l;
  }
}
