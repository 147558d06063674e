// attention_backward — flash attention backward (recompute P from the saved log-sum-exp; no T×S matrix).
//
// With P = softmax(scale · q·kᵀ + mask) per row, dO the output gradient and Δ_i = Σ_d dO_id · O_id:
//   dS = P ⊙ (dO·vᵀ − Δ),  dq = scale · dS·k,  dk = scale · dSᵀ·q,  dv = Pᵀ·dO
// and dk/dv sum over the H/Hkv query heads of each kv head (no float atomics in WGSL, so one workgroup
// owns a key tile and loops over those heads and every query tile itself).
//
// Entries (launch in this order; all share the binding table):
//   delta: Δ [B, H, T]                       workgroup 256, grid grid1d(B·T·H rows)
//   grad_kv: dk, dv for 64 keys of one kv head  workgroup 256, grid [ceil(S / 64), Hkv, B]
//   grad_q:  dq for 64 queries of one head      workgroup 256, grid [ceil(T / 64), H, B]
// Bindings (group 0): 0 uniform Params (as attention_forward plus `scale`, `nx`)
//   1 q [B,T,H,D]  2 k [B,S,Hkv,D]  3 v [B,S,Hkv,D]  4 out [B,T,H,D]  5 lse [B,H,T]  6 dout [B,T,H,D]
//   7 delta [B,H,T] (written by `delta`)  8 dq [B,T,H,D]  9 dk [B,S,Hkv,D]  10 dv [B,S,Hkv,D]
//   all f32, as array<vec4<f32>> (128-bit global access; D % 4 == 0) except lse and delta (array<f32>),
//   declared read_write (one table for three entries). Layouts are "auto", so each entry
//   binds only what it uses: delta {4, 6, 7}; grad_kv {1, 2, 3, 5, 6, 7, 9, 10}; grad_q {1, 2, 3, 5, 6, 7, 8}.
// Register tiling as in the forward: thread (tx, ty) = (lid % 16, lid / 16) owns rows ty + 16i and
// columns tx + 16j of each 64×64 score tile, rows ty + 16i and columns 64g + 4tx .. + 3 (g < DV) of
// the gradient tile. Chunks are staged in workgroup memory with the next one prefetched to registers.
// Workgroup memory: 10 KiB stage + 16 KiB pt = 26 KiB. Assumes D % 4 == 0, D ≤ 128.

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
  nx: u32, // workgroups along x in the `delta` grid (folding past 65535)
}

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

override D: u32 = 64u;
override DV: u32 = (D + 63u) / 64u; // 64-column groups of the head dim (≤ 2)
const LOG2E = 1.4426950408889634;

var<workgroup> stage: array<vec4<f32>, 640>; // two [64 rows][4 + 1 pad] vec4 chunks, or [16 rows][D/4]
// P or dS tile [64][64], four columns to a vec4 (readers load 4; each writer stores one component).
var<workgroup> pt: array<vec4<f32>, 1024>;

fn visible(i: u32, j: u32) -> bool {
  let pos = i32(i) + i32(p.S) - i32(p.T);
  let jj = i32(j);
  return i < p.T && j < p.S && (p.causal == 0u || jj <= pos) && (p.window == 0u || pos - jj < i32(p.window));
}

// Buffer ids for fetch(): the switch folds away at each call site, keeping one copy of the tiling code.
const Q = 0u;
const K = 1u;
const V = 2u;
const DO = 3u;

fn fetch(buf: u32, i: u32) -> vec4<f32> {
  switch buf {
    case 0u: { return q[i]; }
    case 1u: { return k[i]; }
    case 2u: { return v[i]; }
    default: { return dout[i]; }
  }
}

// A row-chunk view of a [B, N, heads, D] tensor: element (row, d) is at base + row · stride + d.
struct Rows {
  buf: u32,
  base: u32,
  first: u32,
  count: u32,
  stride: u32,
}

fn load4(r: Rows, row: u32, d: u32) -> vec4<f32> {
  let t = r.first + row;
  if (t >= r.count || d >= D) { return vec4<f32>(0.0); }
  let i = r.base + t * r.stride + d;
  return fetch(r.buf, i / 4u);
}

// 4×4 register tile of X·Yᵀ over the head dim: result[i·4 + j] = xScale · ⟨X[ty+16i], Y[tx+16j]⟩.
// The next 16-column chunk's global loads are issued before the current chunk's FMAs.
fn dotTile(x: Rows, xScale: f32, y: Rows, lid: u32) -> array<f32, 16> {
  let tx = lid % 16u;
  let ty = lid / 16u;
  let lr = lid / 4u;
  let lc = lid % 4u;
  var s = array<f32, 16>(); // explicit: Naga does not re-zero a `var` without initializer per loop pass
  var xv = load4(x, lr, 4u * lc) * xScale;
  var yv = load4(y, lr, 4u * lc);
  for (var d0 = 0u; d0 < D; d0 += 16u) {
    stage[lr * 5u + lc] = xv;
    stage[320u + lr * 5u + lc] = yv;
    workgroupBarrier();
    xv = load4(x, lr, d0 + 16u + 4u * lc) * xScale;
    yv = load4(y, lr, d0 + 16u + 4u * lc);
    for (var c = 0u; c < 4u; c++) {
      var xa: array<vec4<f32>, 4>;
      var ya: array<vec4<f32>, 4>;
      for (var i = 0u; i < 4u; i++) { xa[i] = stage[(ty + 16u * i) * 5u + c]; }
      for (var j = 0u; j < 4u; j++) { ya[j] = stage[320u + (tx + 16u * j) * 5u + c]; }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { s[i * 4u + j] += dot(xa[i], ya[j]); }
      }
    }
    workgroupBarrier();
  }
  return s;
}

// Stores `val` as element (row ty + 16i, column tx + 16j) of the 64×64 tile in pt.
fn putTile(lid: u32, i: u32, j: u32, val: f32) {
  pt[(lid / 16u + 16u * i) * 16u + (lid % 16u) / 4u + 4u * j][lid % 4u] = val;
}

// Vec4 e of the 16-row chunk of Y starting at tile row n0 (row n0 + e / (D/4), columns 4 · (e % (D/4))).
fn chunk4(y: Rows, n0: u32, e: u32) -> vec4<f32> {
  let dv4 = D / 4u;
  if (e >= 16u * dv4) { return vec4<f32>(0.0); }
  return load4(y, n0 + e / dv4, 4u * (e % dv4));
}

// acc[i·2 + g] += Σ_n pt[ty+16i][n] · Y[n][64g + 4tx .. + 3] over the tile's 64 columns n (rows of Y),
// staging Y 16 rows at a time (next chunk prefetched into registers). pt must be published (barrier).
fn accumulate(acc: ptr<function, array<vec4<f32>, 8>>, y: Rows, lid: u32) {
  let tx = lid % 16u;
  let ty = lid / 16u;
  let dv4 = D / 4u;
  var y0 = chunk4(y, 0u, lid);
  var y1 = chunk4(y, 0u, lid + 256u);
  for (var n0 = 0u; n0 < 64u; n0 += 16u) {
    if (lid < 16u * dv4) { stage[lid] = y0; }
    if (lid + 256u < 16u * dv4) { stage[lid + 256u] = y1; }
    workgroupBarrier();
    if (n0 < 48u) {
      y0 = chunk4(y, n0 + 16u, lid);
      y1 = chunk4(y, n0 + 16u, lid + 256u);
    }
    for (var n = 0u; n < 16u; n += 4u) {
      var pr: array<vec4<f32>, 4>;
      for (var i = 0u; i < 4u; i++) { pr[i] = pt[(ty + 16u * i) * 16u + (n0 + n) / 4u]; }
      for (var e = 0u; e < 4u; e++) {
        for (var g = 0u; g < DV; g++) {
          // Column groups past D read leftovers; their accumulators are never written out.
          let yv = stage[(n + e) * dv4 + g * 16u + tx];
          for (var i = 0u; i < 4u; i++) { (*acc)[i * 2u + g] += pr[i][e] * yv; }
        }
      }
    }
    workgroupBarrier();
  }
}

// Writes rows ty + 16i (< count) of a 64-row gradient tile, times `scale`, into dq, or dk / dv. dq has
// its own function so grad_kv's binding layout ("auto") does not include dq: every entry stays within
// 8 storage buffers, the WebGPU default limit.
fn storeQ(acc: ptr<function, array<vec4<f32>, 8>>, r: Rows, lid: u32, scale: f32) {
  for (var i = 0u; i < 4u; i++) {
    for (var g = 0u; g < DV; g++) {
      let at = tileAt(r, lid, i, g);
      if (at < 0) { continue; }
      let val = (*acc)[i * 2u + g] * scale;
      dq[u32(at) / 4u] = val;
    }
  }
}

fn storeKV(acc: ptr<function, array<vec4<f32>, 8>>, toV: bool, r: Rows, lid: u32, scale: f32) {
  for (var i = 0u; i < 4u; i++) {
    for (var g = 0u; g < DV; g++) {
      let at = tileAt(r, lid, i, g);
      if (at < 0) { continue; }
      let val = (*acc)[i * 2u + g] * scale;
      if (toV) { dv[u32(at) / 4u] = val; } else { dk[u32(at) / 4u] = val; }
    }
  }
}

// Flat index of (row ty + 16i, column 64g + 4tx) of a gradient tile, or −1 past the rows or D.
fn tileAt(r: Rows, lid: u32, i: u32, g: u32) -> i32 {
  let t = r.first + lid / 16u + 16u * i;
  let col = 64u * g + 4u * (lid % 16u);
  if (t >= r.count || col >= D) { return -1; }
  return i32(r.base + t * r.stride + col);
}

@compute @workgroup_size(256)
fn delta(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x + gid.y * p.nx * 256u; // row (b·T + t)·H + h
  if (r >= p.B * p.T * p.H) { return; }
  var sum = 0.0;
  for (var d4 = 0u; d4 < D / 4u; d4++) { sum += dot(dout[r * D / 4u + d4], out[r * D / 4u + d4]); }
  let h = r % p.H;
  let bt = r / p.H;
  delta_[((bt / p.T) * p.H + h) * p.T + bt % p.T] = sum;
}

@compute @workgroup_size(256)
fn grad_kv(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let tx = lid % 16u;
  let ty = lid / 16u;
  let b = wg.z;
  let kvh = wg.y;
  let k0 = wg.x * 64u;
  let G = p.H / p.Hkv;
  let off = i32(p.S) - i32(p.T);
  let kRows = Rows(K, (b * p.S * p.Hkv + kvh) * D, k0, p.S, p.Hkv * D);
  let vRows = Rows(V, kRows.base, k0, p.S, p.Hkv * D);

  // Queries that can see any key of this tile (workgroup-uniform).
  var qFirst = 0u;
  if (p.causal != 0u) { qFirst = (u32(clamp(i32(k0) - off, 0, i32(p.T))) / 64u) * 64u; }
  var qEnd = p.T;
  if (p.window != 0u) {
    qEnd = u32(clamp(i32(min(k0 + 63u, p.S - 1u)) + i32(p.window) - off, 0, i32(p.T)));
  }

  var gk = array<vec4<f32>, 8>();
  var gv = array<vec4<f32>, 8>();
  for (var h = kvh * G; h < (kvh + 1u) * G; h++) {
    let qBase = (b * p.T * p.H + h) * D;
    for (var q0 = qFirst; q0 < qEnd; q0 += 64u) {
      let qRows = Rows(Q, qBase, q0, p.T, p.H * D);
      let oRows = Rows(DO, qBase, q0, p.T, p.H * D);
      // Pᵀ tile: keys down, queries across.
      var pT = dotTile(kRows, 1.0, qRows, lid);
      var lse2: array<f32, 4>;
      var dl: array<f32, 4>;
      for (var j = 0u; j < 4u; j++) {
        let t = min(q0 + tx + 16u * j, p.T - 1u);
        lse2[j] = lse[(b * p.H + h) * p.T + t] * LOG2E;
        dl[j] = delta_[(b * p.H + h) * p.T + t];
      }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
          let e = i * 4u + j;
          let ok = visible(q0 + tx + 16u * j, k0 + ty + 16u * i);
          pT[e] = select(0.0, exp2(pT[e] * p.scale2 - lse2[j]), ok);
          putTile(lid, i, j, pT[e]);
        }
      }
      workgroupBarrier();
      accumulate(&gv, oRows, lid); // dv += Pᵀ · dO
      let dpT = dotTile(vRows, 1.0, oRows, lid); // (dO · vᵀ)ᵀ
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
          let e = i * 4u + j;
          putTile(lid, i, j, pT[e] * (dpT[e] - dl[j]));
        }
      }
      workgroupBarrier();
      accumulate(&gk, qRows, lid); // dk += dSᵀ · q (scaled at the end)
    }
  }
  storeKV(&gk, false, kRows, lid, p.scale);
  storeKV(&gv, true, vRows, lid, 1.0);
}

@compute @workgroup_size(256)
fn grad_q(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let tx = lid % 16u;
  let ty = lid / 16u;
  let b = wg.z;
  let h = wg.y;
  // Last query tiles first: under a causal mask they see the most keys, so the long workgroups start
  // early and the short ones fill the tail.
  let q0 = (nwg.x - 1u - wg.x) * 64u;
  let kvh = h / (p.H / p.Hkv);
  let qRows = Rows(Q, (b * p.T * p.H + h) * D, q0, p.T, p.H * D);
  let oRows = Rows(DO, qRows.base, q0, p.T, p.H * D);
  let kBase = (b * p.S * p.Hkv + kvh) * D;

  // Same key range as the forward pass.
  let posLo = i32(q0) + i32(p.S) - i32(p.T);
  let posHi = i32(min(q0 + 63u, p.T - 1u)) + i32(p.S) - i32(p.T);
  var kEnd = p.S;
  if (p.causal != 0u) { kEnd = u32(clamp(posHi + 1, 0, i32(p.S))); }
  var kFirst = 0u;
  if (p.window != 0u) { kFirst = (u32(max(posLo - i32(p.window) + 1, 0)) / 64u) * 64u; }

  var lse2: array<f32, 4>;
  var dl: array<f32, 4>;
  for (var i = 0u; i < 4u; i++) {
    let t = min(q0 + ty + 16u * i, p.T - 1u);
    lse2[i] = lse[(b * p.H + h) * p.T + t] * LOG2E;
    dl[i] = delta_[(b * p.H + h) * p.T + t];
  }
  var g = array<vec4<f32>, 8>();
  for (var k0 = kFirst; k0 < kEnd; k0 += 64u) {
    let kRows = Rows(K, kBase, k0, p.S, p.Hkv * D);
    let vRows = Rows(V, kBase, k0, p.S, p.Hkv * D);
    let s = dotTile(qRows, p.scale2, kRows, lid);
    let dp = dotTile(oRows, 1.0, vRows, lid);
    for (var i = 0u; i < 4u; i++) {
      for (var j = 0u; j < 4u; j++) {
        let e = i * 4u + j;
        let ok = visible(q0 + ty + 16u * i, k0 + tx + 16u * j);
        let pv = select(0.0, exp2(s[e] - lse2[i]), ok);
        putTile(lid, i, j, pv * (dp[e] - dl[i]));
      }
    }
    workgroupBarrier();
    accumulate(&g, kRows, lid); // dq += dS · k
  }
  storeQ(&g, qRows, lid, p.scale);
}
