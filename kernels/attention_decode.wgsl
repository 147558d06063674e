// attention_decode — KV-cache write and split-K ("flash-decoding") attention for one new token per
// sequence. The cache is [B, Hkv, maxT, D] so a run of keys of one head is one contiguous block.
//
//   write:   cache[b, g, pos[b] + t, :] = ST(k[b, t, g, :]) (same for v); rows ≥ maxT are dropped
//   flash:   for key split s of sequence b and heads h0 .. h0+GW−1 (one kv head, K/V read once for
//            the GW heads): the unnormalised o = Σ_j exp2(s_j − m)·v_j, m = max_j s_j and
//            l = Σ_j exp2(s_j − m) over the split's keys (s_j = q·k_j·scale·log2 e)
//   merge:   out[b, h] = Σ_s exp2(m_s − M)·o_s / Σ_s exp2(m_s − M)·l_s,  M = max_s m_s
// Keys visible to sequence b: j < len[b] and (window == 0 or len[b] − 1 − j < window). The splits
// adapt to the real length on the GPU (span() below): the visible keys are cut into nact ≤ nsplit
// runs of per = max(p.split, ceil(visible / nsplit)) keys; workgroups of splits ≥ nact exit at once
// and merge reads only the nact written partials. nsplit == 1: flash writes out = o / l itself (no
// merge launch).
//
// Bindings (group 0): 0 uniform Params (below; each entry reads the fields it needs)
//   write:   1 k: array<f32> read [B, T, Hkv, D]   2 v: same   3 pos: array<u32> read [B]
//            4 kc: array<vec4<ST>> read_write [B, Hkv, maxT, D / 4]   5 vc: same
//   flash:   7 q4: array<vec4<f32>> read [B, H, D / 4]   4 kc, 5 vc   6 len: array<u32> read [B]
//            8 part4: array<vec4<f32>> rw [B, H, nsplit, D / 4]   9 ml: array<f32> rw [B, H, nsplit, 2]
//            10 out4: array<vec4<f32>> rw [B, H, D / 4] (written only when nsplit == 1)
//   merge:   6 len, 8 part4, 9 ml, 10 out4
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
// Workgroups and grids: write 256, grid grid1d(B·T·Hkv·D / 4) (index = x + y · nx · 256).
//   flash 128, grid [nsplit, H / GW, B]. A block of KB = 512 / (D / 4) keys is loaded per trip, 4 vec4
//   of K and 4 of V per thread, one contiguous coalesced run each, issued one block ahead; K is staged
//   as f32 with row stride D/4 + 1 vec4 (conflict-free per-key dot products), V with stride D/4. Scores
//   run one (head, key) per thread; P·V one (head, vec4 of dims) per thread (≤ 2 per thread), each
//   keeping its own running max and sum, so the softmax needs no extra barrier. Workgroup memory
//   ≤ 12.4 + 8 + 4 + 8 KiB (D = 8 worst case; 17 KiB at D = 128).
//   merge 128, grid [H, B]: threads are (split lane, vec4 of dims), 128 / (D / 4) split lanes; split
//   weights in workgroup memory (nsplit ≤ 1024).
// Overrides: D (≤ 128, % 4 == 0), GW (query heads per workgroup, ≤ 8, divides H / Hkv).

struct Params {
  B: u32,
  T: u32,
  H: u32,
  Hkv: u32,
  maxT: u32,
  window: u32,
  scale2: f32, // scale · log2(e)
  split: u32, // the fewest keys per split (flash, merge)
  nsplit: u32, // splits per (sequence, head) the grid holds
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
@group(0) @binding(9) var<storage, read_write> ml: array<f32>;

override D: u32 = 64u;
override GW: u32 = 1u;
const NEG = -1e30;

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

// ---- flash / merge ----

@group(0) @binding(7) var<storage, read> q4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> part4: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> out4: array<vec4<f32>>;

override KB: u32 = 512u / (D / 4u); // keys per block: 4 vec4 of K and 4 of V per thread
// Workbench diagnosis only (0 in use): 1 skips the scores and P·V (loads and staging only), 2 skips
// the K/V loads (stages zeros).
override MODE: u32 = 0u;

var<workgroup> fk: array<vec4<f32>, KB * (D / 4u + 1u)>; // K block, row stride D/4 + 1
var<workgroup> fv: array<vec4<f32>, 512>; // V block, row stride D/4
var<workgroup> fq: array<vec4<f32>, 256>; // [GW][D/4] query rows, pre-scaled by scale2
var<workgroup> fs: array<f32, GW * KB>; // [GW][KB] scores of the block

// The visible keys of a sequence of length n and how flash cuts them (merge recomputes the same).
struct Span {
  start: u32, // first visible key
  per: u32, // keys per split
  nact: u32, // splits that hold keys
}

fn span(n: u32) -> Span {
  var start = 0u;
  if (p.window != 0u && n > p.window) { start = n - p.window; }
  let vis = n - start;
  let per = max(p.split, (vis + p.nsplit - 1u) / p.nsplit);
  return Span(start, per, (vis + per - 1u) / per);
}

// Vec4 e of the block of keys j0 .. s1 − 1 (0 past it): rows are contiguous, so a block is one run.
fn fload(fromV: bool, base: u32, j0: u32, s1: u32, e: u32) -> vec4<f32> {
  let D4 = D / 4u;
  if (MODE == 2u || e >= KB * D4 || j0 + e / D4 >= s1) { return vec4<f32>(0.0); }
  if (fromV) { return vec4<f32>(vc[base + j0 * D4 + e]); }
  return vec4<f32>(kc[base + j0 * D4 + e]);
}

fn fstage(e: u32, k: vec4<f32>, v: vec4<f32>) {
  let D4 = D / 4u;
  if (e >= KB * D4) { return; }
  fk[(e / D4) * (D4 + 1u) + e % D4] = k;
  fv[e] = v;
}

// Running softmax state of one (head, vec4 of dims) pair.
struct Acc {
  o: vec4<f32>,
  m: f32,
  l: f32,
}

// Folds the block's kb keys into a: new max, rescale, Σ p·v (scores of head g in fs, V in fv).
fn fold(a: Acc, g: u32, d4: u32, kb: u32) -> Acc {
  var mx = a.m;
  for (var j = 0u; j < kb; j++) { mx = max(mx, fs[g * KB + j]); }
  let alpha = exp2(a.m - mx);
  var o = a.o * alpha;
  var l = a.l * alpha;
  for (var j = 0u; j < kb; j++) {
    let pj = exp2(fs[g * KB + j] - mx);
    l += pj;
    o += pj * fv[j * (D / 4u) + d4];
  }
  return Acc(o, mx, l);
}

fn fwrite(a: Acc, b: u32, h: u32, d4: u32, split: u32) {
  let D4 = D / 4u;
  if (p.nsplit == 1u) {
    out4[(b * p.H + h) * D4 + d4] = a.o / a.l;
    return;
  }
  let row = (b * p.H + h) * p.nsplit + split;
  part4[row * D4 + d4] = a.o;
  if (d4 == 0u) {
    ml[row * 2u] = a.m;
    ml[row * 2u + 1u] = a.l;
  }
}

@compute @workgroup_size(128)
fn flash(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let b = wg.z;
  let h0 = wg.y * GW;
  let kvh = h0 / (p.H / p.Hkv);
  let split = wg.x;
  if (t == 0u) { seqLen = len[b]; }
  let n = workgroupUniformLoad(&seqLen);
  let sp = span(n);
  if (split >= sp.nact) { return; }
  let s0 = sp.start + split * sp.per;
  let s1 = min(s0 + sp.per, n);
  let D4 = D / 4u;
  let base = (b * p.Hkv + kvh) * p.maxT * D4; // in vec4s
  for (var e = t; e < GW * D4; e += 128u) { fq[e] = q4[(b * p.H + h0) * D4 + e] * p.scale2; }
  // The first block's loads; later blocks are issued while the previous one is computed.
  var k0 = fload(false, base, s0, s1, t);
  var k1 = fload(false, base, s0, s1, t + 128u);
  var k2 = fload(false, base, s0, s1, t + 256u);
  var k3 = fload(false, base, s0, s1, t + 384u);
  var v0 = fload(true, base, s0, s1, t);
  var v1 = fload(true, base, s0, s1, t + 128u);
  var v2 = fload(true, base, s0, s1, t + 256u);
  var v3 = fload(true, base, s0, s1, t + 384u);
  var a0 = Acc(vec4<f32>(0.0), NEG, 0.0);
  var a1 = a0;
  for (var j0 = s0; j0 < s1; j0 += KB) {
    let kb = min(KB, s1 - j0);
    fstage(t, k0, v0);
    fstage(t + 128u, k1, v1);
    fstage(t + 256u, k2, v2);
    fstage(t + 384u, k3, v3);
    workgroupBarrier();
    let j1 = j0 + KB;
    k0 = fload(false, base, j1, s1, t);
    k1 = fload(false, base, j1, s1, t + 128u);
    k2 = fload(false, base, j1, s1, t + 256u);
    k3 = fload(false, base, j1, s1, t + 384u);
    v0 = fload(true, base, j1, s1, t);
    v1 = fload(true, base, j1, s1, t + 128u);
    v2 = fload(true, base, j1, s1, t + 256u);
    v3 = fload(true, base, j1, s1, t + 384u);
    for (var e = t; e < select(GW * KB, 0u, MODE == 1u); e += 128u) {
      let g = e / KB;
      let jj = e % KB;
      if (jj < kb) {
        var acc = 0.0;
        for (var d4 = 0u; d4 < D4; d4++) { acc += dot(fq[g * D4 + d4], fk[jj * (D4 + 1u) + d4]); }
        fs[e] = acc;
      }
    }
    workgroupBarrier();
    if (t < GW * D4 && MODE != 1u) { a0 = fold(a0, t / D4, t % D4, kb); }
    if (t + 128u < GW * D4) { a1 = fold(a1, (t + 128u) / D4, (t + 128u) % D4, kb); }
    workgroupBarrier(); // the block is consumed before the next one is staged
  }
  if (t < GW * D4) { fwrite(a0, b, h0 + t / D4, t % D4, split); }
  if (t + 128u < GW * D4) { fwrite(a1, b, h0 + (t + 128u) / D4, (t + 128u) % D4, split); }
}

var<workgroup> cm: array<f32, 1024>; // per split: m, then its weight exp2(m − M)
var<workgroup> cl: array<f32, 1024>; // per split: l
var<workgroup> cacc: array<vec4<f32>, 128>;

@compute @workgroup_size(128)
fn merge(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let h = wg.x;
  let b = wg.y;
  if (t == 0u) { seqLen = len[b]; }
  let nact = span(workgroupUniformLoad(&seqLen)).nact;
  let row0 = (b * p.H + h) * p.nsplit;
  for (var s = t; s < nact; s += 128u) {
    cm[s] = ml[(row0 + s) * 2u];
    cl[s] = ml[(row0 + s) * 2u + 1u];
  }
  workgroupBarrier();
  var mx = NEG;
  for (var s = 0u; s < nact; s++) { mx = max(mx, cm[s]); }
  var l = 0.0;
  for (var s = 0u; s < nact; s++) { l += exp2(cm[s] - mx) * cl[s]; }
  workgroupBarrier(); // every thread has read the maxima
  for (var s = t; s < nact; s += 128u) { cm[s] = exp2(cm[s] - mx); }
  workgroupBarrier();
  // Thread (lane sl, vec4 d4) sums splits sl, sl + SG, …, four loads in flight per trip.
  let D4 = D / 4u;
  let SG = 128u / D4;
  let sl = t / D4;
  let d4 = t % D4;
  var acc = vec4<f32>(0.0);
  if (sl < SG) {
    var s = sl;
    for (; s + 3u * SG < nact; s += 4u * SG) {
      let x0 = part4[(row0 + s) * D4 + d4];
      let x1 = part4[(row0 + s + SG) * D4 + d4];
      let x2 = part4[(row0 + s + 2u * SG) * D4 + d4];
      let x3 = part4[(row0 + s + 3u * SG) * D4 + d4];
      acc += cm[s] * x0 + cm[s + SG] * x1 + cm[s + 2u * SG] * x2 + cm[s + 3u * SG] * x3;
    }
    for (; s < nact; s += SG) { acc += cm[s] * part4[(row0 + s) * D4 + d4]; }
  }
  cacc[t] = acc;
  workgroupBarrier();
  if (t < D4) {
    var sum = cacc[t];
    for (var i = 1u; i < SG; i++) { sum += cacc[i * D4 + t]; }
    out4[(b * p.H + h) * D4 + t] = sum / l;
  }
}
