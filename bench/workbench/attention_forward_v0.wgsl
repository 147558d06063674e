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
// Workgroup 256 = 16 × 16 threads (tx = lid % 16, ty = lid / 16); grid [ceil(T / 64), H, B].
// One workgroup owns 64 queries of one head and walks the 64-key tiles its mask lets through (causal
// and window ranges skip whole tiles). Thread (tx, ty) owns score rows ty + 16i and columns tx + 16j
// (i, j < 4) of each 64×64 tile, and output rows ty + 16i, columns 64g + 4tx .. + 3 (g < DV): a 4×4
// and a 4×(4·DV) register tile, so every vec4 load from workgroup memory feeds 8–16 FMAs.
// Per key tile: S = Q·Kᵀ over 16-wide D chunks staged in workgroup memory; row maxima through `red`;
// probabilities to `pt`; O += P·V over 16-key V chunks staged in workgroup memory. Global loads of
// the next chunk are issued before the FMAs of the current one (register prefetch).
// Per tile and thread (D = 128): 2048 FMAs for S, 2048 for P·V, 448 vec4 workgroup loads, 25 barriers.
// Workgroup memory: 10 KiB stage + 16 KiB pt + 4 KiB red = 30 KiB (fits lavapipe's 32 KiB).
// Softmax runs in base 2 (scores pre-multiplied by scale · log2 e, exp2) — one multiply saved per score.

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
override DV: u32 = (D + 63u) / 64u; // 64-column groups of the head dim (≤ 2)
const NEG = -1e30; // finite "minus infinity": exp2(NEG − m) is 0 and NEG − NEG is not NaN

// Q chunk at [0, 320), K chunk at [320, 640): 64 rows × 4 vec4 (+1 pad vec4 against bank conflicts).
// In the P·V phase the same memory holds a V chunk: 16 keys × D/4 vec4.
var<workgroup> stage: array<vec4<f32>, 640>;
// Probabilities [64 queries][64 keys] and per-row partials [64 rows][16 threads], four to a vec4 so the
// readers load 4 at once; each writer stores one component (a scalar store, so no write races).
var<workgroup> pt: array<vec4<f32>, 1024>;
var<workgroup> red: array<vec4<f32>, 256>;

fn visible(i: u32, j: u32) -> bool {
  let pos = i32(i) + i32(p.S) - i32(p.T);
  let jj = i32(j);
  return j < p.S && (p.causal == 0u || jj <= pos) && (p.window == 0u || pos - jj < i32(p.window));
}

// Four consecutive head-dim elements (zero past the row or the head dim) of a [*, N, heads, D] tensor.
fn loadQ(base: u32, t: u32, d: u32) -> vec4<f32> {
  if (t >= p.T || d >= D) { return vec4<f32>(0.0); }
  let i = base + t * p.H * D + d;
  return q[i / 4u];
}

fn loadK(base: u32, s: u32, d: u32) -> vec4<f32> {
  if (s >= p.S || d >= D) { return vec4<f32>(0.0); }
  let i = base + s * p.Hkv * D + d;
  return k[i / 4u];
}

fn loadV(base: u32, s: u32, d: u32) -> vec4<f32> {
  if (s >= p.S || d >= D) { return vec4<f32>(0.0); }
  let i = base + s * p.Hkv * D + d;
  return v[i / 4u];
}

// Vec4 e of the 16-key V chunk starting at key s0 (key s0 + e / (D/4), columns 4 · (e % (D/4)) + 0..3).
fn loadVChunk(base: u32, s0: u32, e: u32) -> vec4<f32> {
  let dv4 = D / 4u;
  if (e >= 16u * dv4) { return vec4<f32>(0.0); }
  return loadV(base, s0 + e / dv4, 4u * (e % dv4));
}

@compute @workgroup_size(256)
fn main(
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
  let qBase = (b * p.T * p.H + h) * D;
  let kBase = (b * p.S * p.Hkv + kvh) * D;

  // Key range this query tile can see (workgroup-uniform, so barriers inside the loop are legal).
  let posLo = i32(q0) + i32(p.S) - i32(p.T);
  let posHi = i32(min(q0 + 63u, p.T - 1u)) + i32(p.S) - i32(p.T);
  var kEnd = p.S;
  if (p.causal != 0u) { kEnd = u32(clamp(posHi + 1, 0, i32(p.S))); }
  var kFirst = 0u;
  if (p.window != 0u) { kFirst = (u32(max(posLo - i32(p.window) + 1, 0)) / 64u) * 64u; }

  // Explicit initial values throughout: Naga does not re-zero a `var` without initializer per loop pass.
  var m = array<f32, 4>(NEG, NEG, NEG, NEG);
  var l = array<f32, 4>();
  var o = array<vec4<f32>, 8>(); // [row i][column group g] at i · 2 + g
  let lr = lid / 4u; // this thread's staging row and vec4 within a 16-wide chunk
  let lc = lid % 4u;
  let dv4 = D / 4u;

  for (var k0 = kFirst; k0 < kEnd; k0 += 64u) {
    // S = (scale2 · Q) · Kᵀ for this 64×64 tile, 16 head-dim columns at a time; the next chunk's global
    // loads are issued before the current chunk's FMAs so their latency hides behind them.
    var s = array<f32, 16>();
    var qv = loadQ(qBase, q0 + lr, 4u * lc) * p.scale2;
    var kv = loadK(kBase, k0 + lr, 4u * lc);
    for (var d0 = 0u; d0 < D; d0 += 16u) {
      stage[lr * 5u + lc] = qv;
      stage[320u + lr * 5u + lc] = kv;
      workgroupBarrier();
      qv = loadQ(qBase, q0 + lr, d0 + 16u + 4u * lc) * p.scale2;
      kv = loadK(kBase, k0 + lr, d0 + 16u + 4u * lc);
      for (var c = 0u; c < 4u; c++) {
        var qa: array<vec4<f32>, 4>;
        var ka: array<vec4<f32>, 4>;
        for (var i = 0u; i < 4u; i++) { qa[i] = stage[(ty + 16u * i) * 5u + c]; }
        for (var j = 0u; j < 4u; j++) { ka[j] = stage[320u + (tx + 16u * j) * 5u + c]; }
        for (var i = 0u; i < 4u; i++) {
          for (var j = 0u; j < 4u; j++) { s[i * 4u + j] += dot(qa[i], ka[j]); }
        }
      }
      workgroupBarrier();
    }
    // First V chunk in flight during the softmax (vec4 e of the chunk: key e / dv4, column 4 · (e % dv4)).
    var vv0 = loadVChunk(kBase, k0, lid);
    var vv1 = loadVChunk(kBase, k0, lid + 256u);

    // Mask, then this thread's partial row maxima.
    var vis = 0u;
    for (var i = 0u; i < 4u; i++) {
      var mx = NEG;
      for (var j = 0u; j < 4u; j++) {
        if (visible(q0 + ty + 16u * i, k0 + tx + 16u * j)) {
          vis |= 1u << (i * 4u + j);
          mx = max(mx, s[i * 4u + j]);
        }
      }
      red[(ty + 16u * i) * 4u + tx / 4u][tx % 4u] = mx;
    }
    workgroupBarrier();
    for (var i = 0u; i < 4u; i++) {
      let r = ty + 16u * i;
      var mv = max(max(red[r * 4u], red[r * 4u + 1u]), max(red[r * 4u + 2u], red[r * 4u + 3u]));
      let mNew = max(m[i], max(max(mv.x, mv.y), max(mv.z, mv.w)));
      let alpha = exp2(m[i] - mNew);
      m[i] = mNew;
      l[i] *= alpha;
      for (var g = 0u; g < DV; g++) { o[i * 2u + g] *= alpha; }
      for (var j = 0u; j < 4u; j++) {
        let e = i * 4u + j;
        let pv = select(0.0, exp2(s[e] - mNew), (vis & (1u << e)) != 0u);
        l[i] += pv;
        pt[r * 16u + tx / 4u + 4u * j][tx % 4u] = pv; // key tx + 16j
      }
    }

    // O += P · V, 16 keys at a time: per 4 keys, 4 vec4 P loads and 4·DV vec4 V loads feed 16·DV vec4 FMAs.
    for (var kc = 0u; kc < 64u; kc += 16u) {
      if (lid < 16u * dv4) { stage[lid] = vv0; }
      if (lid + 256u < 16u * dv4) { stage[lid + 256u] = vv1; }
      workgroupBarrier(); // also publishes pt on the first chunk
      if (kc < 48u) {
        vv0 = loadVChunk(kBase, k0 + kc + 16u, lid);
        vv1 = loadVChunk(kBase, k0 + kc + 16u, lid + 256u);
      }
      for (var jj = 0u; jj < 16u; jj += 4u) {
        var pr: array<vec4<f32>, 4>;
        for (var i = 0u; i < 4u; i++) { pr[i] = pt[(ty + 16u * i) * 16u + (kc + jj) / 4u]; }
        for (var e = 0u; e < 4u; e++) {
          for (var g = 0u; g < DV; g++) {
            // Column groups past D read leftovers; their accumulators are never written out.
            let vv = stage[(jj + e) * dv4 + g * 16u + tx];
            for (var i = 0u; i < 4u; i++) { o[i * 2u + g] += pr[i][e] * vv; }
          }
        }
      }
      workgroupBarrier();
    }
  }

  // Row sums: each thread holds the sum over its own columns of every tile; add the 16 partials.
  for (var i = 0u; i < 4u; i++) { red[(ty + 16u * i) * 4u + tx / 4u][tx % 4u] = l[i]; }
  workgroupBarrier();
  for (var i = 0u; i < 4u; i++) {
    let r = ty + 16u * i;
    let t = q0 + r;
    if (t >= p.T) { continue; }
    let sv = red[r * 4u] + red[r * 4u + 1u] + red[r * 4u + 2u] + red[r * 4u + 3u];
    let sum = sv.x + sv.y + sv.z + sv.w;
    let inv = 1.0 / sum;
    for (var g = 0u; g < DV; g++) {
      let col = g * 64u + 4u * tx;
      if (col < D) {
        out[(qBase + t * p.H * D + col) / 4u] = o[i * 2u + g] * inv;
      }
    }
    if (tx == 0u) { lse[(b * p.H + h) * p.T + t] = (m[i] + log2(sum)) * 0.69314718055994530942; }
  }
}
