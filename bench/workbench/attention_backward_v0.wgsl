// FROZEN COPY (bench only, not launched by src/): kernels/attention_backward.wgsl + attention_backward_tiles.wgsl
// at commit 6549409 (two-pass backward: 7.68 ms at B1 T2048 H32/8 D128 causal on the H200), kept so
// bench/workbench/attention_backward.ts can check and time later kernels against it on the device.

// attention_backward — flash attention backward (recompute P from the saved log-sum-exp; no T×S matrix).
//
// With P = softmax(scale · q·kᵀ + mask) per row, dO the output gradient and Δ_i = Σ_d dO_id · O_id:
//   dS = P ⊙ (dO·vᵀ − Δ),  dq = scale · dS·k,  dk = scale · dSᵀ·q,  dv = Pᵀ·dO
// No float atomics in WGSL, so dq (per query tile) and dk/dv (per key tile) are separate entries that
// both recompute S and dP. dk/dv sum over the G = H/Hkv query heads of a kv head: a grad_kv workgroup
// takes HPW of them; with HPW < G each workgroup writes its own partial slot and `sum_kv` adds them.
//
// Entries (launch in this order; all share the binding table):
//   delta:   Δ [B, H, T]                          workgroup 256, grid grid1d(B·T·H rows)
//   grad_kv: dk, dv of 64 keys × HPW query heads    workgroup 256, grid [H / HPW, ceil(S / 64), B]
//   sum_kv:  dk, dv = Σ of the R = G/HPW slots      workgroup 256, grid grid1d(B·S·Hkv·D/4) (HPW < G)
//   grad_q:  dq of 64 queries of one head           workgroup 256, grid [H, ceil(T / 64), B]
//   (grad_kv / grad_q grids with x and y swapped when HEAVY_FIRST is false)
// Bindings (group 0): 0 uniform Params (as attention_forward plus `scale`, `nx`, `R`)
//   1 q [B,T,H,D]  2 k [B,S,Hkv,D]  3 v [B,S,Hkv,D]  4 out [B,T,H,D]  5 lse [B,H,T]  6 dout [B,T,H,D]
//   7 delta [B,H,T]  8 dq [B,T,H,D]  9 dk, 10 dv: [B,S,H/HPW,D] (partial slots; [B,S,Hkv,D] when HPW = G)
//   11 dk, 12 dv [B,S,Hkv,D] (sum_kv's output). All f32, as array<vec4<f32>> (D % 4 == 0) except lse
//   and delta (array<f32>), declared read_write (one table for all entries; layouts are "auto", so each
//   entry binds only what it uses, at most 8 storage buffers).
//
// One 64×64 score tile per step, 256 threads: thread (tx, ty) = (lid % 16, lid / 16) owns score rows
// 4ty + i and columns 4tx + j (i, j < 4) in explicit vec4 registers (s* for S, p* for dP: no private
// arrays, which naga's SPIR-V leaves to local memory), and gradient rows 4ty + i, columns
// 4tx + 64g .. + 3 (g < DV) in a*/v*. Rows are queries in grad_q and keys in grad_kv: the same code.
// Phase A (S = X1·Y1ᵀ, dP = X2·Y2ᵀ over D): 16-wide d chunks of all four operands are staged transposed
// ([d][row], PADA pad vec4 per d row) so one vec4 read gives 4 rows and each d is 32 FMAs per 4 reads;
// NBUF = 2 double-buffers the chunks (one barrier per chunk), 1 single-buffers them (two).
// Phase B (acc += Tᵀ·Y over the tile's 64 rows of Y): the P or dS tile goes to `sm` as [col][row] with
// the vec4 column index XOR-swizzled by (col / 4) (conflict-free transposed stores), Y is staged 16
// rows at a time as [row][DS4] vec4, the next chunk prefetched.
// Workgroup memory: SMEM vec4 = max(NBUF·4·16·(16 + PADA), 1024 + NBUF·16·DS4), computed by the
// launcher: 24 KiB with its default NBUF 1, PADA 1 at D 128 (32 KiB with NBUF 2, PADA 0 still fits
// lavapipe). Grids put the tile index in y (HEAVY_FIRST) so every head's longest causal tiles start
// first. Assumes D % 4 == 0, D ≤ 128.
// H200, B1 T1024 H32 D128 causal (bench/workbench/attention_backward.ts): 2.09 ms with Hkv 8 (10.3
// TFLOP/s in the 2.5×-forward convention), 2.2 ms with Hkv 32; T2048 Hkv 8: 7.7 ms (11.2).
// The tile machinery (mask, loads, phases A and B, gradient stores) is in
// attention_backward_tiles.wgsl, which the launcher appends (kernel spec `libs`).

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
}

override D: u32 = 64u;
override NBUF: u32 = 2u;
override PADA: u32 = 0u;
override HPW: u32 = 1u; // query heads per grad_kv workgroup (divides G)
override WANT_K: bool = true; // grad_kv: compute dk (dP and phase B2 are only for dk)
override WANT_V: bool = true;
override SMEM: u32 = 2048u;
override HEAVY_FIRST: bool = true; // tile index in grid y (slowest in dispatch order), heads in x
override DV: u32 = (D + 63u) / 64u; // 64-column groups of the head dim (≤ 2)
override D4: u32 = D / 4u;
override DS4: u32 = 16u * DV; // vec4 per staged phase-B row
override NC: u32 = (D + 15u) / 16u; // phase-A chunks
override RS: u32 = 16u + PADA; // vec4 per d row of a phase-A operand
override AOP: u32 = 16u * RS; // vec4 per phase-A operand chunk
const LOG2E = 1.4426950408889634;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
@group(0) @binding(6) var<storage, read_write> dout: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> delta_: array<f32>;
@group(0) @binding(8) var<storage, read_write> dq: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> dk: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> dv: array<vec4<f32>>;
@group(0) @binding(11) var<storage, read_write> dkSum: array<vec4<f32>>;
@group(0) @binding(12) var<storage, read_write> dvSum: array<vec4<f32>>;

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
  delta_[((bt / p.T) * p.H + h) * p.T + bt % p.T] = sum;
}

// P and dS of the current tile from s, p (rows = keys, columns = queries): P into s*, dS into p*.
fn softmaxKV(lid: u32) {
  let tx = lid % 16u;
  let ty = lid / 16u;
  var l2: vec4<f32>;
  var dl: vec4<f32>;
  for (var j = 0u; j < 4u; j++) {
    let t = min(qt0 + 4u * tx + j, p.T - 1u);
    l2[j] = lse[(bb * p.H + hq) * p.T + t] * LOG2E;
    dl[j] = delta_[(bb * p.H + hq) * p.T + t];
  }
  let q4 = qt0 + 4u * tx;
  let k4 = kt0 + 4u * ty;
  s0 = probs(s0, l2, k4, q4, true);
  s1 = probs(s1, l2, k4 + 1u, q4, true);
  s2 = probs(s2, l2, k4 + 2u, q4, true);
  s3 = probs(s3, l2, k4 + 3u, q4, true);
  p0 = s0 * (p0 - dl);
  p1 = s1 * (p1 - dl);
  p2 = s2 * (p2 - dl);
  p3 = s3 * (p3 - dl);
}

// exp2(x · scale2 − l2) where visible, else 0; `fixed` (the tile row, i.e. a key in grad_kv and a
// query in grad_q) with the four columns c0 .. c0 + 3.
fn probs(x: vec4<f32>, l2: vec4<f32>, fixed: u32, c0: u32, kv: bool) -> vec4<f32> {
  let e = exp2(fma(x, vec4(p.scale2), -l2));
  var m: vec4<bool>;
  for (var j = 0u; j < 4u; j++) {
    if (kv) { m[j] = visible(c0 + j, fixed); } else { m[j] = visible(fixed, c0 + j); }
  }
  return select(vec4(0.0), e, m);
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
  let off = i32(p.S) - i32(p.T);
  // Queries that can see any key of this tile (workgroup-uniform).
  var qFirst = 0u;
  if (p.causal != 0u) { qFirst = (u32(clamp(i32(k0) - off, 0, i32(p.T))) / 64u) * 64u; }
  var qEnd = p.T;
  if (p.window != 0u) {
    qEnd = u32(clamp(i32(min(k0 + 63u, p.S - 1u)) + i32(p.window) - off, 0, i32(p.T)));
  }
  a0 = vec4(0.0); a1 = vec4(0.0); a2 = vec4(0.0); a3 = vec4(0.0);
  a4 = vec4(0.0); a5 = vec4(0.0); a6 = vec4(0.0); a7 = vec4(0.0);
  v0 = vec4(0.0); v1 = vec4(0.0); v2 = vec4(0.0); v3 = vec4(0.0);
  v4 = vec4(0.0); v5 = vec4(0.0); v6 = vec4(0.0); v7 = vec4(0.0);
  for (var hh = 0u; hh < HPW; hh++) {
    hq = slot * HPW + hh;
    kvh = hq / G;
    // Loop counters are function variables: reads of private ones count as non-uniform.
    for (var t0 = qFirst; t0 < qEnd; t0 += 64u) {
      qt0 = t0;
      phaseA(true, lid);
      softmaxKV(lid);
      if (WANT_V) {
        putTile(lid, s0, s1, s2, s3);
        phaseB(1u, true, lid); // dv += Pᵀ · dO
      }
      if (WANT_K) {
        putTile(lid, p0, p1, p2, p3);
        phaseB(2u, false, lid); // dk += dSᵀ · q
      }
    }
  }
  // Slot `slot` of `slots` per (b, s): the kv head itself when HPW = G.
  let base = (bb * p.S * slots + slot) * D4;
  if (WANT_K) { storeRows(1u, p.S, kt0, base, slots * D4, lid, p.scale); }
  if (WANT_V) { storeRows(2u, p.S, kt0, base, slots * D4, lid, 1.0); }
}

@compute @workgroup_size(256)
fn sum_kv(@builtin(global_invocation_id) gid: vec3<u32>) {
  let e = gid.x + gid.y * p.nx * 256u; // vec4 (row, d4) of [B·S·Hkv, D/4]
  if (e >= p.B * p.S * p.Hkv * D4) { return; }
  let row = e / D4;
  let d4 = e % D4;
  var sk = vec4(0.0);
  var sv = vec4(0.0);
  for (var r = 0u; r < p.R; r++) {
    let at = (row * p.R + r) * D4 + d4;
    if (WANT_K) { sk += dk[at]; }
    if (WANT_V) { sv += dv[at]; }
  }
  if (WANT_K) { dkSum[e] = sk; }
  if (WANT_V) { dvSum[e] = sv; }
}

@compute @workgroup_size(256)
fn grad_q(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>) {
  let tx = lid % 16u;
  let ty = lid / 16u;
  bb = wg.z;
  hq = select(wg.y, wg.x, HEAVY_FIRST); // grid [H, query tiles, B] with HEAVY_FIRST, else [tiles, H, B]
  kvh = hq / (p.H / p.Hkv);
  // Last query tiles first: under a causal mask they see the most keys, so the long workgroups start
  // early and the short ones fill the tail.
  let q0 = select(nwg.x - 1u - wg.x, nwg.y - 1u - wg.y, HEAVY_FIRST) * 64u;
  qt0 = q0;
  // Same key range as the forward pass (from the local q0: loop bounds must be uniform for Tint).
  let posLo = i32(q0) + i32(p.S) - i32(p.T);
  let posHi = i32(min(q0 + 63u, p.T - 1u)) + i32(p.S) - i32(p.T);
  var kEnd = p.S;
  if (p.causal != 0u) { kEnd = u32(clamp(posHi + 1, 0, i32(p.S))); }
  var kFirst = 0u;
  if (p.window != 0u) { kFirst = (u32(max(posLo - i32(p.window) + 1, 0)) / 64u) * 64u; }
  var l2: vec4<f32>;
  var dl: vec4<f32>;
  for (var i = 0u; i < 4u; i++) {
    let t = min(qt0 + 4u * ty + i, p.T - 1u);
    l2[i] = lse[(bb * p.H + hq) * p.T + t] * LOG2E;
    dl[i] = delta_[(bb * p.H + hq) * p.T + t];
  }
  a0 = vec4(0.0); a1 = vec4(0.0); a2 = vec4(0.0); a3 = vec4(0.0);
  a4 = vec4(0.0); a5 = vec4(0.0); a6 = vec4(0.0); a7 = vec4(0.0);
  let q4 = qt0 + 4u * ty;
  for (var j0 = kFirst; j0 < kEnd; j0 += 64u) {
    kt0 = j0;
    phaseA(false, lid);
    let k4 = kt0 + 4u * tx;
    // dS rows = queries; s_i, p_i hold row 4ty + i, columns (keys) 4tx + j.
    let d0 = probs(s0, vec4(l2.x), q4, k4, false) * (p0 - dl.x);
    let d1 = probs(s1, vec4(l2.y), q4 + 1u, k4, false) * (p1 - dl.y);
    let d2 = probs(s2, vec4(l2.z), q4 + 2u, k4, false) * (p2 - dl.z);
    let d3 = probs(s3, vec4(l2.w), q4 + 3u, k4, false) * (p3 - dl.w);
    putTile(lid, d0, d1, d2, d3);
    phaseB(0u, false, lid); // dq += dS · k
  }
  storeQ(lid);
}

// attention_backward_tiles — A LIBRARY, not a kernel: the 64×64 tile machinery of
// kernels/attention_backward.wgsl (mask, operand loads, phase A: S and dP over the head dim staged
// transposed; phase B: acc += Tᵀ·Y over the tile's rows with the swizzled P / dS tile; the gradient
// stores). The launcher (src/ops/attention_backward.ts) appends it to that file through the kernel
// spec's `libs`; the declarations these functions use (Params, overrides, bindings, `sm`, the named vec4
// registers) and the phase layouts are described there. Split off so the kernel file reads as
// declarations + entry points.

fn visible(i: u32, j: u32) -> bool {
  let pos = i32(i) + i32(p.S) - i32(p.T);
  let jj = i32(j);
  return i < p.T && j < p.S && (p.causal == 0u || jj <= pos) && (p.window == 0u || pos - jj < i32(p.window));
}

// vec4 d4 of query row t (q or dout) / key row s (k or v) of the current heads; 0 past the tensor.
fn ldQ(t: u32, d4: u32) -> vec4<f32> {
  if (t >= p.T || d4 >= D4) { return vec4<f32>(0.0); }
  return q[((bb * p.T + t) * p.H + hq) * D4 + d4];
}
fn ldO(t: u32, d4: u32) -> vec4<f32> {
  if (t >= p.T || d4 >= D4) { return vec4<f32>(0.0); }
  return dout[((bb * p.T + t) * p.H + hq) * D4 + d4];
}
fn ldK(s: u32, d4: u32) -> vec4<f32> {
  if (s >= p.S || d4 >= D4) { return vec4<f32>(0.0); }
  return k[((bb * p.S + s) * p.Hkv + kvh) * D4 + d4];
}
fn ldV(s: u32, d4: u32) -> vec4<f32> {
  if (s >= p.S || d4 >= D4) { return vec4<f32>(0.0); }
  return v[((bb * p.S + s) * p.Hkv + kvh) * D4 + d4];
}

// ---- Phase A: s = X1·Y1ᵀ, p = X2·Y2ᵀ (grad_q: X = q, dout; Y = k, v. grad_kv: X = k, v; Y = q, dout).

// This thread's share of d chunk `ch`: row lid / 4, vec4 lid % 4 of each operand (coalesced loads).
fn loadA(forKV: bool, wantP: bool, ch: u32, lid: u32) {
  let row = lid / 4u;
  let d4 = 4u * ch + lid % 4u;
  if (forKV) {
    r0 = ldK(kt0 + row, d4);
    r1 = ldQ(qt0 + row, d4);
    if (wantP) {
      r2 = ldV(kt0 + row, d4);
      r3 = ldO(qt0 + row, d4);
    }
  } else {
    r0 = ldQ(qt0 + row, d4);
    r1 = ldK(kt0 + row, d4);
    r2 = ldO(qt0 + row, d4);
    r3 = ldV(kt0 + row, d4);
  }
}

fn putT(o: u32, row: u32, x: vec4<f32>) {
  let at = o + row / 4u;
  let c = row % 4u;
  sm[at][c] = x.x;
  sm[at + RS][c] = x.y;
  sm[at + 2u * RS][c] = x.z;
  sm[at + 3u * RS][c] = x.w;
}

fn storeA(wantP: bool, buf: u32, lid: u32) {
  let o = buf * 4u * AOP + 4u * (lid % 4u) * RS;
  let row = lid / 4u;
  putT(o, row, r0);
  putT(o + AOP, row, r1);
  if (wantP) {
    putT(o + 2u * AOP, row, r2);
    putT(o + 3u * AOP, row, r3);
  }
}

fn stepA(wantP: bool, o: u32, tx: u32, ty: u32) {
  let x = sm[o + ty];
  let y = sm[o + AOP + tx];
  s0 = fma(vec4(x.x), y, s0);
  s1 = fma(vec4(x.y), y, s1);
  s2 = fma(vec4(x.z), y, s2);
  s3 = fma(vec4(x.w), y, s3);
  if (wantP) {
    let x2 = sm[o + 2u * AOP + ty];
    let y2 = sm[o + 3u * AOP + tx];
    p0 = fma(vec4(x2.x), y2, p0);
    p1 = fma(vec4(x2.y), y2, p1);
    p2 = fma(vec4(x2.z), y2, p2);
    p3 = fma(vec4(x2.w), y2, p3);
  }
}

// Ends with a barrier: `sm` is free for the caller when it returns.
fn phaseA(forKV: bool, lid: u32) {
  let wantP = !forKV || WANT_K;
  let tx = lid % 16u;
  let ty = lid / 16u;
  s0 = vec4(0.0);
  s1 = vec4(0.0);
  s2 = vec4(0.0);
  s3 = vec4(0.0);
  p0 = vec4(0.0);
  p1 = vec4(0.0);
  p2 = vec4(0.0);
  p3 = vec4(0.0);
  loadA(forKV, wantP, 0u, lid);
  storeA(wantP, 0u, lid);
  workgroupBarrier();
  for (var ch = 0u; ch < NC; ch++) {
    let more = ch + 1u < NC;
    if (more) { loadA(forKV, wantP, ch + 1u, lid); }
    let o = (ch % NBUF) * 4u * AOP;
    for (var c = 0u; c < 16u; c++) { stepA(wantP, o + c * RS, tx, ty); }
    if (NBUF == 1u) { workgroupBarrier(); }
    if (more) { storeA(wantP, (ch + 1u) % NBUF, lid); }
    workgroupBarrier();
  }
}

// ---- Phase B: acc(row 4ty + i) += Σ_n T[n][row] · Y[n][cols] over the 64 tile rows n of Y.

// The transposed tile T (P or dS) at sm[0, 1024): column `col` of the score tile (n above) holds
// rows 4ty..4ty+3 at vec4 col · 16 + (ty ^ (col / 4)).
fn putTile(lid: u32, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>) {
  let tx = lid % 16u;
  let ty = lid / 16u;
  let at = 64u * tx + (ty ^ tx);
  sm[at] = vec4(x0.x, x1.x, x2.x, x3.x);
  sm[at + 16u] = vec4(x0.y, x1.y, x2.y, x3.y);
  sm[at + 32u] = vec4(x0.z, x1.z, x2.z, x3.z);
  sm[at + 48u] = vec4(x0.w, x1.w, x2.w, x3.w);
}

// Rows n0 .. n0 + 15 of Y (0: k, 1: dout, 2: q): this thread's vec4 e = lid and lid + 256.
fn loadB(which: u32, n0: u32, lid: u32) {
  for (var u = 0u; u < 2u; u++) {
    let e = lid + 256u * u;
    let n = n0 + e / DS4;
    let d4 = e % DS4;
    var x = vec4(0.0);
    if (e < 16u * DS4) {
      if (which == 0u) { x = ldK(kt0 + n, d4); } else if (which == 1u) { x = ldO(qt0 + n, d4); } else { x = ldQ(qt0 + n, d4); }
    }
    if (u == 0u) { r0 = x; } else { r1 = x; }
  }
}

fn storeB(buf: u32, lid: u32) {
  let o = 1024u + buf * 16u * DS4;
  sm[o + lid] = r0;
  if (lid + 256u < 16u * DS4) { sm[o + lid + 256u] = r1; }
}

fn stepB(toV: bool, t: vec4<f32>, y0: vec4<f32>, y1: vec4<f32>) {
  if (toV) {
    v0 = fma(vec4(t.x), y0, v0);
    v2 = fma(vec4(t.y), y0, v2);
    v4 = fma(vec4(t.z), y0, v4);
    v6 = fma(vec4(t.w), y0, v6);
    if (DV > 1u) {
      v1 = fma(vec4(t.x), y1, v1);
      v3 = fma(vec4(t.y), y1, v3);
      v5 = fma(vec4(t.z), y1, v5);
      v7 = fma(vec4(t.w), y1, v7);
    }
  } else {
    a0 = fma(vec4(t.x), y0, a0);
    a2 = fma(vec4(t.y), y0, a2);
    a4 = fma(vec4(t.z), y0, a4);
    a6 = fma(vec4(t.w), y0, a6);
    if (DV > 1u) {
      a1 = fma(vec4(t.x), y1, a1);
      a3 = fma(vec4(t.y), y1, a3);
      a5 = fma(vec4(t.z), y1, a5);
      a7 = fma(vec4(t.w), y1, a7);
    }
  }
}

// The caller has written the tile (putTile) since phase A's final barrier. Ends with a barrier.
fn phaseB(which: u32, toV: bool, lid: u32) {
  let tx = lid % 16u;
  let ty = lid / 16u;
  loadB(which, 0u, lid);
  storeB(0u, lid);
  workgroupBarrier();
  for (var nc = 0u; nc < 4u; nc++) {
    let more = nc + 1u < 4u;
    if (more) { loadB(which, 16u * (nc + 1u), lid); }
    let o = 1024u + (nc % NBUF) * 16u * DS4 + tx;
    for (var n = 0u; n < 16u; n++) {
      let col = 16u * nc + n;
      let t = sm[col * 16u + (ty ^ (col / 4u))];
      var y1 = vec4(0.0);
      if (DV > 1u) { y1 = sm[o + n * DS4 + 16u]; }
      stepB(toV, t, sm[o + n * DS4], y1);
    }
    if (NBUF == 1u) { workgroupBarrier(); }
    if (more) { storeB((nc + 1u) % NBUF, lid); }
    workgroupBarrier();
  }
}

// Accumulator 2i + g of the a* set (sel < 8) or the v* set (sel - 8).
fn accAt(sel: u32) -> vec4<f32> {
  switch sel {
    case 0u: { return a0; }
    case 1u: { return a1; }
    case 2u: { return a2; }
    case 3u: { return a3; }
    case 4u: { return a4; }
    case 5u: { return a5; }
    case 6u: { return a6; }
    case 7u: { return a7; }
    case 8u: { return v0; }
    case 9u: { return v1; }
    case 10u: { return v2; }
    case 11u: { return v3; }
    case 12u: { return v4; }
    case 13u: { return v5; }
    case 14u: { return v6; }
    default: { return v7; }
  }
}

// Key rows first + 4ty + i (< rows), columns tx + 16g (vec4), times `scale`, to dk (buf 1, from a*)
// or dv (buf 2, from v*) at vec4 base + row · stride + column. dq has its own storeQ so grad_kv's
// "auto" layout leaves dq out (8 storage buffers at most per entry).
fn storeRows(buf: u32, rows: u32, first: u32, base: u32, stride: u32, lid: u32, scale: f32) {
  let tx = lid % 16u;
  let ty = lid / 16u;
  for (var i = 0u; i < 4u; i++) {
    let row = first + 4u * ty + i;
    for (var g = 0u; g < DV; g++) {
      let d4 = tx + 16u * g;
      if (row >= rows || d4 >= D4) { continue; }
      let x = accAt(i * 2u + g + select(0u, 8u, buf == 2u)) * scale;
      let at = base + row * stride + d4;
      if (buf == 1u) { dk[at] = x; } else { dv[at] = x; }
    }
  }
}

fn storeQ(lid: u32) {
  let tx = lid % 16u;
  let ty = lid / 16u;
  for (var i = 0u; i < 4u; i++) {
    let t = qt0 + 4u * ty + i;
    for (var g = 0u; g < DV; g++) {
      let d4 = tx + 16u * g;
      if (t >= p.T || d4 >= D4) { continue; }
      dq[((bb * p.T + t) * p.H + hq) * D4 + d4] = accAt(i * 2u + g) * p.scale;
    }
  }
}
