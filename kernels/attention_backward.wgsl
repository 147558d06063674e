// attention_backward — flash attention backward (recompute P from the saved log-sum-exp; no T×S matrix).
//
// With P = softmax(scale · q·kᵀ + mask) per row, dO the output gradient and Δ_i = Σ_d dO_id · O_id:
//   dS = P ⊙ (dO·vᵀ − Δ),  dq = scale · dS·k,  dk = scale · dSᵀ·q,  dv = Pᵀ·dO
// No float atomics in WGSL, so dq (per query tile) and dk/dv (per key tile) come from separate entries.
// With DS_OUT, grad_kv also writes each 64×64 dS tile it computes to `dsb` and grad_q_ds forms
// dq = scale · dS·k from those tiles (1 product per tile instead of grad_q's 3: S, dP and dS·k); the
// price is B·H·(tile pairs)·16 KiB of memory, so the launcher falls back to grad_q past a budget.
// dk/dv sum over the G = H/Hkv query heads of a kv head: a grad_kv workgroup takes HPW of them; with
// HPW < G each workgroup writes its own partial slot and `sum_kv` adds them.
//
// Entries (launch in this order; all share the binding table):
//   delta:     (lse·log2 e, Δ) [B, H, T]            workgroup 256, grid grid1d(B·T·H rows)
//   grad_kv:   dk, dv of 64 keys × HPW query heads  workgroup 256, grid [H / HPW, ceil(S / 64), B]
//              (+ the dS tiles with DS_OUT)
//   sum_kv:    dk, dv = Σ of the R = G/HPW slots    workgroup 256, grid grid1d(B·S·Hkv·D/4) (HPW < G)
//   grad_q:    dq of 64 queries of one head          workgroup 256, grid [H, ceil(T / 64), B]
//   grad_q_ds: the same from the stored dS tiles     (same grid; instead of grad_q, after grad_kv)
//   (grad_kv / grad_q grids with x and y swapped when HEAVY_FIRST is false)
// Bindings (group 0): 0 uniform Params (as attention_forward plus `scale`, `nx`, `R`, `nslot`)
//   1 q [B,T,H,D]  2 k [B,S,Hkv,D]  3 v [B,S,Hkv,D]  4 out [B,T,H,D]  5 lse [B,H,T]  6 dout [B,T,H,D]
//   7 ld [B,H,T] vec2 (lse·log2 e, Δ)  8 dq [B,T,H,D]  9 dk, 10 dv: [B,S,H/HPW,D] (partial slots;
//   [B,S,Hkv,D] when HPW = G)  11 dk, 12 dv [B,S,Hkv,D] (sum_kv's output)  13 dsb [B,H,nslot,64,64]
//   (dS tiles: slot of key tile j, query tile i = Σ_{j'<j} pairs(j') + i − first query tile of j;
//   rows keys, columns queries). All f32, as array<vec4<f32>> (D % 4 == 0) except lse (array<f32>) and
//   ld, declared read_write (one table for all entries; layouts are "auto", so each entry binds only
//   what it uses, at most 8 storage buffers: lse and Δ share `ld` so grad_kv fits dsb).
//
// One 64×64 score tile per step, 256 threads: thread (tx, ty) = (lid % 16, lid / 16) owns score rows
// 4ty + i and columns 4tx + j (i, j < 4) in explicit vec4 registers (s* for S, p* for dP: no private
// arrays, which naga's SPIR-V leaves to local memory), and gradient rows 4ty + i, columns
// 4tx + 64g .. + 3 (g < DV) in a*/v*. Rows are queries in grad_q and keys in grad_kv: the same code.
// Phase A (S = X1·Y1ᵀ, dP = X2·Y2ᵀ over D): AD-wide (16 or 32) d chunks of all four operands are staged
// transposed ([d][row], PADA pad vec4 per d row) so one vec4 read gives 4 rows and each d is 32 FMAs
// per 4 reads; NBUF = 2 double-buffers the chunks (one barrier per chunk), 1 single-buffers them (two).
// Phase B (acc += Tᵀ·Y over the tile's 64 rows of Y): the P or dS tile goes to `sm` as [col][row] with
// the vec4 column index XOR-swizzled by (col / 4) (conflict-free transposed stores), Y is staged 16
// rows at a time as [row][DS4] vec4, the next chunk prefetched. MERGE_B (grad_kv with dk and dv): P
// and dS tiles side by side and dO and q rows staged together, so dv and dk take one phase B. SPLIT
// (with MERGE_B): half the threads do S, P, dv and half dP, dS, dk, each on 8 × 4 score and 8 × 8
// gradient blocks (attention_backward_kv.wgsl): fewer workgroup-memory reads per FMA.
// Workgroup memory: SMEM vec4 = max(NBUF·4·AD·(16 + PADA), 1024 + NBUF·16·DS4), with MERGE_B
// 2048 + NBUF·32·DS4 for the second part; computed by the launcher: 24 KiB with its default NBUF 1,
// PADA 1, AD 16 at D 128 (fits lavapipe's 32 KiB); grad_kv with MERGE_B and AD 32: 48 KiB (H200).
// Grids put the tile index in y (HEAVY_FIRST) so every head's longest causal tiles start first.
// Assumes D % 4 == 0, D ≤ 128.
// H200, B1 H32 D128 causal (bench/workbench/attention_backward.ts), two-pass kernel → this:
// T2048 Hkv 8: 7.89 → 4.52 ms (10.9 → 19.0 TFLOP/s in the 2.5×-forward convention; grad_kv 3.71,
// grad_q_ds 0.78); T1024 Hkv 8: 2.08 → 1.24 ms (17.3); Hkv 32: 3.10 → 1.24 ms. At T2048 the dS tiles
// alone gave 5.37 ms, + MERGE_B 4.88, + AD 32 4.68 (same-run figure), + SPLIT 4.60, + HPW = G 4.52.
// The tile machinery (mask, loads, phases A and B, gradient stores) is in
// attention_backward_tiles.wgsl, grad_kv's side (query ranges, P/dS, MERGE_B, SPLIT) in
// attention_backward_kv.wgsl; the launcher appends both (kernel spec `libs`).

struct Params {
  B: u32,
  T: u32,
  S: u32,
  H: u32,
  Hkv: u32,
  causal: u32,
  window: u32,
  scale2: f32, // scale · log2(e)
  scale: f32,
  nx: u32, // workgroups along x in the 1-d grids (folding past 65535)
  R: u32, // partial slots per kv head (sum_kv)
  nslot: u32, // dS tile slots per (b, h) (DS_OUT, grad_q_ds)
}

override D: u32 = 64u;
override NBUF: u32 = 2u;
override PADA: u32 = 0u;
override HPW: u32 = 1u; // query heads per grad_kv workgroup (divides G)
override WANT_K: bool = true; // grad_kv: compute dk (dP and phase B2 are only for dk)
override WANT_V: bool = true;
override DS_OUT: bool = false; // grad_kv: write the dS tiles for grad_q_ds
override MERGE_B: bool = false; // grad_kv, dk and dv: one phase B for both (SMEM ≥ 2048 + NBUF·32·DS4)
override SPLIT: bool = false; // grad_kv with MERGE_B: S/P/dv and dP/dS/dk in two thread roles
override SMEM: u32 = 2048u;
override HEAVY_FIRST: bool = true; // tile index in grid y (slowest in dispatch order), heads in x
override DV: u32 = (D + 63u) / 64u; // 64-column groups of the head dim (≤ 2)
override D4: u32 = D / 4u;
override DS4: u32 = 16u * DV; // vec4 per staged phase-B row
override AD: u32 = 16u; // d per phase-A chunk: 16, or 32 (half the chunks and barriers, twice the memory)
override NC: u32 = (D + AD - 1u) / AD; // phase-A chunks
override RS: u32 = 16u + PADA; // vec4 per d row of a phase-A operand
override AOP: u32 = AD * RS; // vec4 per phase-A operand chunk
const LOG2E = 1.4426950408889634;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
@group(0) @binding(6) var<storage, read_write> dout: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> ld: array<vec2<f32>>;
@group(0) @binding(8) var<storage, read_write> dq: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> dk: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> dv: array<vec4<f32>>;
@group(0) @binding(11) var<storage, read_write> dkSum: array<vec4<f32>>;
@group(0) @binding(12) var<storage, read_write> dvSum: array<vec4<f32>>;
@group(0) @binding(13) var<storage, read_write> dsb: array<vec4<f32>>;

var<workgroup> sm: array<vec4<f32>, SMEM>;

// Score tiles (row i, columns j in the components), gradient accumulators (row i, column group g at
// index 2i + g), staged loads, and the workgroup's coordinates.
var<private> s0: vec4<f32>;
var<private> s1: vec4<f32>;
var<private> s2: vec4<f32>;
var<private> s3: vec4<f32>;
var<private> p0: vec4<f32>;
var<private> p1: vec4<f32>;
var<private> p2: vec4<f32>;
var<private> p3: vec4<f32>;
var<private> a0: vec4<f32>;
var<private> a1: vec4<f32>;
var<private> a2: vec4<f32>;
var<private> a3: vec4<f32>;
var<private> a4: vec4<f32>;
var<private> a5: vec4<f32>;
var<private> a6: vec4<f32>;
var<private> a7: vec4<f32>;
var<private> v0: vec4<f32>;
var<private> v1: vec4<f32>;
var<private> v2: vec4<f32>;
var<private> v3: vec4<f32>;
var<private> v4: vec4<f32>;
var<private> v5: vec4<f32>;
var<private> v6: vec4<f32>;
var<private> v7: vec4<f32>;
var<private> r0: vec4<f32>;
var<private> r1: vec4<f32>;
var<private> r2: vec4<f32>;
var<private> r3: vec4<f32>;
var<private> r4: vec4<f32>;
var<private> r5: vec4<f32>;
var<private> r6: vec4<f32>;
var<private> r7: vec4<f32>;
var<private> bb: u32; // batch
var<private> hq: u32; // query head
var<private> kvh: u32; // kv head
var<private> qt0: u32; // first query of the tile
var<private> kt0: u32; // first key of the tile

@compute @workgroup_size(256)
fn delta(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x + gid.y * p.nx * 256u; // row (b·T + t)·H + h
  if (r >= p.B * p.T * p.H) { return; }
  var sum = 0.0;
  for (var d4 = 0u; d4 < D4; d4++) { sum += dot(dout[r * D4 + d4], out[r * D4 + d4]); }
  let h = r % p.H;
  let bt = r / p.H;
  let at = ((bt / p.T) * p.H + h) * p.T + bt % p.T;
  ld[at] = vec2(lse[at] * LOG2E, sum);
}

@compute @workgroup_size(256)
fn grad_kv(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>) {
  bb = wg.z;
  // HEAVY_FIRST: grid [slots, key tiles, B], so the first key tiles of every head (which see the most
  // queries under a causal mask) start first and short ones fill the tail; else [key tiles, slots, B].
  let tile = select(wg.x, wg.y, HEAVY_FIRST);
  let slot = select(wg.y, wg.x, HEAVY_FIRST);
  let slots = select(nwg.y, nwg.x, HEAVY_FIRST);
  // The loop bounds below come from this local, not from the private kt0: Tint's uniformity analysis
  // treats every read of a private variable as non-uniform, and phaseB's barriers need uniform loops.
  let k0 = tile * 64u;
  kt0 = k0;
  let G = p.H / p.Hkv;
  let qr = qRange(k0); // queries that can see any key of this tile (workgroup-uniform)
  var slot0 = 0u; // this key tile's first dS slot
  if (DS_OUT) {
    for (var j = 0u; j < tile; j++) { slot0 += pairs(qRange(j * 64u)); }
  }
  a0 = vec4(0.0); a1 = vec4(0.0); a2 = vec4(0.0); a3 = vec4(0.0);
  a4 = vec4(0.0); a5 = vec4(0.0); a6 = vec4(0.0); a7 = vec4(0.0);
  v0 = vec4(0.0); v1 = vec4(0.0); v2 = vec4(0.0); v3 = vec4(0.0);
  v4 = vec4(0.0); v5 = vec4(0.0); v6 = vec4(0.0); v7 = vec4(0.0);
  for (var hh = 0u; hh < HPW; hh++) {
    hq = slot * HPW + hh;
    kvh = hq / G;
    // Loop counters are function variables: reads of private ones count as non-uniform.
    for (var t0 = qr.x; t0 < qr.y; t0 += 64u) {
      qt0 = t0;
      phaseA(true, lid);
      let dsAt = ((bb * p.H + hq) * p.nslot + slot0 + (t0 - qr.x) / 64u) * 1024u;
      if (SPLIT) {
        phaseBSplit(lid, dsAt); // P, dS and both products, one role each
        continue;
      }
      softmaxKV(lid);
      if (DS_OUT) { storeDS(dsAt, lid); }
      if (MERGE_B) {
        putTile(lid, 0u, s0, s1, s2, s3);
        putTile(lid, 1024u, p0, p1, p2, p3);
        phaseBKV(lid); // both products below in one pass
        continue;
      }
      if (WANT_V) {
        putTile(lid, 0u, s0, s1, s2, s3);
        phaseB(1u, true, lid); // dv += Pᵀ · dO
      }
      if (WANT_K) {
        putTile(lid, 0u, p0, p1, p2, p3);
        phaseB(2u, false, lid); // dk += dSᵀ · q
      }
    }
  }
  // Slot `slot` of `slots` per (b, s): the kv head itself when HPW = G.
  let base = (bb * p.S * slots + slot) * D4;
  if (SPLIT) {
    storeSplit(base, slots * D4, lid);
  } else {
    if (WANT_K) { storeRows(1u, p.S, kt0, base, slots * D4, lid, p.scale); }
    if (WANT_V) { storeRows(2u, p.S, kt0, base, slots * D4, lid, 1.0); }
  }
}

// Sets bb, hq, kvh, qt0 for a grad_q / grad_q_ds workgroup; returns its first query. Last query tiles
// first: under a causal mask they see the most keys, so the long workgroups start early and the short
// ones fill the tail. Grid [H, query tiles, B] with HEAVY_FIRST, else [tiles, H, B].
fn qTile(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
  bb = wg.z;
  hq = select(wg.y, wg.x, HEAVY_FIRST);
  kvh = hq / (p.H / p.Hkv);
  let q0 = select(nwg.x - 1u - wg.x, nwg.y - 1u - wg.y, HEAVY_FIRST) * 64u;
  qt0 = q0;
  return q0;
}

// Keys [first, end) the query tile at q0 sees, as in the forward pass (first is tile-aligned). Callers
// pass the local q0: loop bounds must be uniform for Tint, and private variables never are.
fn kRange(q0: u32) -> vec2<u32> {
  let posLo = i32(q0) + i32(p.S) - i32(p.T);
  let posHi = i32(min(q0 + 63u, p.T - 1u)) + i32(p.S) - i32(p.T);
  var kEnd = p.S;
  if (p.causal != 0u) { kEnd = u32(clamp(posHi + 1, 0, i32(p.S))); }
  var kFirst = 0u;
  if (p.window != 0u) { kFirst = (u32(max(posLo - i32(p.window) + 1, 0)) / 64u) * 64u; }
  return vec2(kFirst, kEnd);
}

@compute @workgroup_size(256)
fn grad_q(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>) {
  let tx = lid % 16u;
  let ty = lid / 16u;
  let q0 = qTile(wg, nwg);
  let kr = kRange(q0);
  var l2: vec4<f32>;
  var dl: vec4<f32>;
  for (var i = 0u; i < 4u; i++) {
    let x = ld[(bb * p.H + hq) * p.T + min(qt0 + 4u * ty + i, p.T - 1u)];
    l2[i] = x.x;
    dl[i] = x.y;
  }
  a0 = vec4(0.0); a1 = vec4(0.0); a2 = vec4(0.0); a3 = vec4(0.0);
  a4 = vec4(0.0); a5 = vec4(0.0); a6 = vec4(0.0); a7 = vec4(0.0);
  let q4 = qt0 + 4u * ty;
  for (var j0 = kr.x; j0 < kr.y; j0 += 64u) {
    kt0 = j0;
    phaseA(false, lid);
    let k4 = kt0 + 4u * tx;
    // dS rows = queries; s_i, p_i hold row 4ty + i, columns (keys) 4tx + j.
    let d0 = probs(s0, vec4(l2.x), q4, k4, false) * (p0 - dl.x);
    let d1 = probs(s1, vec4(l2.y), q4 + 1u, k4, false) * (p1 - dl.y);
    let d2 = probs(s2, vec4(l2.z), q4 + 2u, k4, false) * (p2 - dl.z);
    let d3 = probs(s3, vec4(l2.w), q4 + 3u, k4, false) * (p3 - dl.w);
    putTile(lid, 0u, d0, d1, d2, d3);
    phaseB(0u, false, lid); // dq += dS · k
  }
  storeQ(lid);
}

// dq from grad_kv's dS tiles: per key tile one phase B (dq += dS · k); the next tile's dS is fetched
// into s0..s3 while this one's product runs. A key tile whose qRange misses this query tile has no
// slot (grad_kv skipped it: fully masked) and contributes a zero tile.
@compute @workgroup_size(256)
fn grad_q_ds(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>) {
  let q0 = qTile(wg, nwg);
  let kr = kRange(q0);
  var slot0 = 0u; // first dS slot of key tile j0 (slots are numbered key tile by key tile)
  for (var j = 0u; j < kr.x; j += 64u) { slot0 += pairs(qRange(j)); }
  a0 = vec4(0.0); a1 = vec4(0.0); a2 = vec4(0.0); a3 = vec4(0.0);
  a4 = vec4(0.0); a5 = vec4(0.0); a6 = vec4(0.0); a7 = vec4(0.0);
  fetchDS(kr.x, slot0, lid);
  for (var j0 = kr.x; j0 < kr.y; j0 += 64u) {
    kt0 = j0;
    putDS(lid);
    slot0 += pairs(qRange(j0));
    if (j0 + 64u < kr.y) { fetchDS(j0 + 64u, slot0, lid); }
    phaseB(0u, false, lid); // dq += dS · k
  }
  storeQ(lid);
}
