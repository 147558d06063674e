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
// The tile steps (loads, staging, S and P·V chunks, mask, softmax update, store) are in
// attention_forward_tiles.wgsl, which the launcher appends (kernel spec `libs`).

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
