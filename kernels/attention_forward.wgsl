// attention_forward — flash attention forward: out = softmax(scale · q·kᵀ + mask) · v, tiled with an
// online softmax so no T×S matrix is ever stored; also writes the log-sum-exp for the backward pass.
//
// Letters: B batch, T queries, S keys, H query heads, Hkv kv heads (head h reads kv head h / (H/Hkv)),
// D head dim (override; D % 4 == 0, D ≤ 128). Mask: query i sees key j iff
// (causal == 0 or j ≤ i + S − T) and (window == 0 or i + S − T − j < window).
//
// Bindings (group 0): 0 uniform Params (below)
//   1 q:   array<f32> read        [B, T, H, D]
//   2 k:   array<f32> read        [B, S, Hkv, D]
//   3 v:   array<f32> read        [B, S, Hkv, D]
//   4 out: array<f32> read_write  [B, T, H, D]
//   5 lse: array<f32> read_write  [B, H, T]   natural-log log-sum-exp of the scaled, masked scores
// Workgroup 256 = 16 × 16 threads (tx = lid % 16, ty = lid / 16); grid [ceil(T / 64), H, B].
// One workgroup owns 64 queries of one head and walks the 64-key tiles its mask lets through (causal
// and window ranges skip whole tiles). Thread (tx, ty) owns score rows ty + 16i and columns tx + 16j
// (i, j < 4) of each 64×64 tile and output rows ty + 16i, columns tx + 16c (c < DG) — a 4×4 and a
// 4×DG register tile, so each workgroup-memory load feeds 2–4 FMAs.
// Per key tile: S = Q·Kᵀ over 16-wide D chunks staged in workgroup memory; row maxima through `red`;
// probabilities to `pt`; O += P·V over 16-key V chunks staged in workgroup memory.
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
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;

override D: u32 = 64u;
override DG: u32 = (D + 15u) / 16u; // 16-column groups of the head dim (≤ 8)
const NEG = -1e30; // finite "minus infinity": exp2(NEG − m) is 0 and NEG − NEG is not NaN

// Q chunk at [0, 320), K chunk at [320, 640): 64 rows × 4 vec4 (+1 pad vec4 against bank conflicts).
// In the P·V phase the same memory holds a V chunk: 16 keys × D/4 vec4.
var<workgroup> stage: array<vec4<f32>, 640>;
var<workgroup> pt: array<f32, 4096>; // probabilities [64 queries][64 keys]
var<workgroup> red: array<f32, 1024>; // per-row partials [64 rows][16 threads]

fn visible(i: u32, j: u32) -> bool {
  let pos = i32(i) + i32(p.S) - i32(p.T);
  let jj = i32(j);
  return j < p.S && (p.causal == 0u || jj <= pos) && (p.window == 0u || pos - jj < i32(p.window));
}

// Four consecutive head-dim elements (zero past the row or the head dim) of a [*, N, heads, D] tensor.
fn loadQ(base: u32, t: u32, d: u32) -> vec4<f32> {
  if (t >= p.T) { return vec4<f32>(0.0); }
  let i = base + t * p.H * D + d;
  return vec4<f32>(q[i], q[i + 1u], q[i + 2u], q[i + 3u]);
}

fn loadK(base: u32, s: u32, d: u32) -> vec4<f32> {
  if (s >= p.S) { return vec4<f32>(0.0); }
  let i = base + s * p.Hkv * D + d;
  return vec4<f32>(k[i], k[i + 1u], k[i + 2u], k[i + 3u]);
}

fn loadV(base: u32, s: u32, d: u32) -> vec4<f32> {
  if (s >= p.S) { return vec4<f32>(0.0); }
  let i = base + s * p.Hkv * D + d;
  return vec4<f32>(v[i], v[i + 1u], v[i + 2u], v[i + 3u]);
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let tx = lid % 16u;
  let ty = lid / 16u;
  let b = wg.z;
  let h = wg.y;
  let q0 = wg.x * 64u;
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

  var m: array<f32, 4>;
  var l: array<f32, 4>;
  var o: array<f32, 32>;
  for (var i = 0u; i < 4u; i++) {
    m[i] = NEG;
    l[i] = 0.0;
  }
  for (var c = 0u; c < 32u; c++) { o[c] = 0.0; }

  for (var k0 = kFirst; k0 < kEnd; k0 += 64u) {
    // S = (scale2 · Q) · Kᵀ for this 64×64 tile.
    var s: array<f32, 16>;
    for (var e = 0u; e < 16u; e++) { s[e] = 0.0; }
    let lr = lid / 4u;
    let lc = lid % 4u;
    for (var d0 = 0u; d0 < D; d0 += 16u) {
      let d = d0 + 4u * lc;
      var qv = vec4<f32>(0.0);
      var kv = vec4<f32>(0.0);
      if (d < D) {
        qv = loadQ(qBase, q0 + lr, d) * p.scale2;
        kv = loadK(kBase, k0 + lr, d);
      }
      stage[lr * 5u + lc] = qv;
      stage[320u + lr * 5u + lc] = kv;
      workgroupBarrier();
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
      red[(ty + 16u * i) * 16u + tx] = mx;
    }
    workgroupBarrier();
    for (var i = 0u; i < 4u; i++) {
      let r = ty + 16u * i;
      var mNew = m[i];
      for (var t = 0u; t < 16u; t++) { mNew = max(mNew, red[r * 16u + t]); }
      let alpha = exp2(m[i] - mNew);
      m[i] = mNew;
      l[i] *= alpha;
      for (var c = 0u; c < DG; c++) { o[i * 8u + c] *= alpha; }
      for (var j = 0u; j < 4u; j++) {
        let e = i * 4u + j;
        let pv = select(0.0, exp2(s[e] - mNew), (vis & (1u << e)) != 0u);
        l[i] += pv;
        pt[r * 64u + tx + 16u * j] = pv;
      }
    }
    workgroupBarrier();

    // O += P · V, 16 keys at a time.
    let dv4 = D / 4u;
    for (var kc = 0u; kc < 64u; kc += 16u) {
      for (var e = lid; e < 16u * dv4; e += 256u) {
        stage[e] = loadV(kBase, k0 + kc + e / dv4, 4u * (e % dv4));
      }
      workgroupBarrier();
      for (var jj = 0u; jj < 16u; jj++) {
        var pr: array<f32, 4>;
        for (var i = 0u; i < 4u; i++) { pr[i] = pt[(ty + 16u * i) * 64u + kc + jj]; }
        for (var c = 0u; c < DG; c++) {
          // Columns ≥ D read leftovers; their accumulators are never written out.
          let col = tx + 16u * c;
          let vv = stage[jj * dv4 + col / 4u][col % 4u];
          for (var i = 0u; i < 4u; i++) { o[i * 8u + c] += pr[i] * vv; }
        }
      }
      workgroupBarrier();
    }
  }

  // Row sums: each thread holds the sum over its own 4 columns per tile; add the 16 partials.
  for (var i = 0u; i < 4u; i++) { red[(ty + 16u * i) * 16u + tx] = l[i]; }
  workgroupBarrier();
  for (var i = 0u; i < 4u; i++) {
    let r = ty + 16u * i;
    let t = q0 + r;
    if (t >= p.T) { continue; }
    var sum = 0.0;
    for (var u = 0u; u < 16u; u++) { sum += red[r * 16u + u]; }
    let inv = 1.0 / sum;
    for (var c = 0u; c < DG; c++) {
      let col = tx + 16u * c;
      if (col < D) { out[qBase + t * p.H * D + col] = o[i * 8u + c] * inv; }
    }
    if (tx == 0u) { lse[(b * p.H + h) * p.T + t] = (m[i] + log2(sum)) * 0.69314718055994530942; }
  }
}
