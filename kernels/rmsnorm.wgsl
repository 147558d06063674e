// rmsnorm — Hugging Face LlamaRMSNorm over rows of C values, and its backward.
//
//   forward:    y = w ⊙ x · rinv                       rinv = 1 / sqrt(mean(x²) + eps)
//   backward:   dx = rinv·(w⊙g) − x · rinv³ · Σ(w⊙g⊙x) / C,   and rinv[row] for dw_partial
//   dw_partial: part[k, c] = Σ_{row i in chunk k} g[i, c] · x[i, c] · rinv[i]
//   dw_sum:     dw[c] = Σ_k part[k, c]
//   add_forward: s = x + d, y = w ⊙ s · rinv(s) — the residual add fused into the next norm (decode);
//                writes both s (the new residual stream) and y
// Every sum has a fixed order (block_sum's in the workgroup, rows in order within a chunk, chunks in
// order), so results repeat bit for bit for a given shape and device; dw needs no float atomics.
// Linked with row_reduce_{subgroup,workgroup}.wgsl (block_sum; subgroup builtins where the device has
// them) by rowSpec() in src/ops/reduce.ts: every entry point must be built from the linked source.
// Entry points ending in 4 move vec4 (C % 4 == 0); the others are the scalar fallback.
//
// Bindings (group 0): 0 uniform Params { rows: u32, cols: u32, eps: f32, chunk: u32, nchunks: u32 }
//   scalar:  1 x array<f32> read [rows, C]        2 w array<WT> read [C]        3 y array<f32> rw [rows, C]
//            4 g array<f32> read [rows, C]        5 dx array<f32> rw [rows, C]
//            6 rinv array<f32> rw [rows]          7 part array<f32> rw [nchunks, C]   8 dw array<f32> rw [C]
//            9 delta array<f32> read [rows, C]    10 resid array<f32> rw [rows, C] (add_forward: s)
//   vec4:    11 x4, 12 w4: array<vec4<WT>>, 13 y4, 14 g4, 15 dx4, 17 part4, 19 delta4, 20 resid4 — the same data
//            in vec4 units
// Distinct binding numbers (not aliases of one binding) keep the module valid under every WGSL
// implementation; the launcher passes a record keyed by binding number.
// Types: WT = weight storage (f32 | f16); all math and accumulation in f32.
// forward*/backward*/add_forward*: one workgroup of WG threads (override, power of two; the launcher picks 64–1024
//   from C) per row; grid = rows, folded into (x, y) past 65535 (row = x + y · nx). Threads stride
//   over the row.
// dw_partial*: 64 threads, one column (or vec4 column) each; grid (ceil(cols / 64), nchunks); chunk k
//   covers rows [k · chunk, min((k + 1) · chunk, rows)).
// dw_sum: 64 threads, one column each; grid ceil(C / 64).

struct Params {
  rows: u32,
  cols: u32,
  eps: f32,
  chunk: u32,
  nchunks: u32,
}

override WG: u32 = 256u;
// vec4s per thread that forward4/backward4 keep in registers between the reduction and the write, so
// a row is read from memory once when C ≤ 16·WG (the launcher sizes WG for that); longer rows re-read
// the rest (from cache, usually).
const CACHE: u32 = 4u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<WT>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<storage, read_write> rinv: array<f32>;
@group(0) @binding(7) var<storage, read_write> part: array<f32>;
@group(0) @binding(8) var<storage, read_write> dw: array<f32>;
@group(0) @binding(11) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(12) var<storage, read> w4: array<vec4<WT>>;
@group(0) @binding(13) var<storage, read_write> y4: array<vec4<f32>>;
@group(0) @binding(14) var<storage, read> g4: array<vec4<f32>>;
@group(0) @binding(15) var<storage, read_write> dx4: array<vec4<f32>>;
@group(0) @binding(17) var<storage, read_write> part4: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read> delta: array<f32>;
@group(0) @binding(10) var<storage, read_write> resid: array<f32>;
@group(0) @binding(19) var<storage, read> delta4: array<vec4<f32>>;
@group(0) @binding(20) var<storage, read_write> resid4: array<vec4<f32>>;

fn row_inv_rms(sum_sq: f32) -> f32 {
  return inverseSqrt(sum_sq / f32(p.cols) + p.eps);
}

@compute @workgroup_size(WG)
fn forward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  var ss = 0.0;
  for (var c = tid; c < p.cols; c += WG) {
    let v = x[base + c];
    ss += v * v;
  }
  let r = row_inv_rms(block_sum(ss, tid));
  for (var c = tid; c < p.cols; c += WG) {
    y[base + c] = f32(w[c]) * (x[base + c] * r);
  }
}

@compute @workgroup_size(WG)
fn forward4(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let cv = p.cols / 4u;
  let base = row * cv;
  var xs: array<vec4<f32>, CACHE>;
  var ss = 0.0;
  for (var k = 0u; k < CACHE; k++) {
    let c = tid + k * WG;
    if (c < cv) {
      xs[k] = x4[base + c];
      ss += dot(xs[k], xs[k]);
    }
  }
  for (var c = tid + CACHE * WG; c < cv; c += WG) {
    let v = x4[base + c];
    ss += dot(v, v);
  }
  let r = row_inv_rms(block_sum(ss, tid));
  for (var k = 0u; k < CACHE; k++) {
    let c = tid + k * WG;
    if (c < cv) { y4[base + c] = vec4<f32>(w4[c]) * (xs[k] * r); }
  }
  for (var c = tid + CACHE * WG; c < cv; c += WG) {
    y4[base + c] = vec4<f32>(w4[c]) * (x4[base + c] * r);
  }
}

@compute @workgroup_size(WG)
fn backward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  var acc = vec2<f32>(0.0);
  for (var c = tid; c < p.cols; c += WG) {
    let xv = x[base + c];
    acc += vec2<f32>(xv * xv, f32(w[c]) * g[base + c] * xv);
  }
  let r = row_inv_rms(block_sum(acc.x, tid));
  let k = block_sum(acc.y, tid) * r * r * r / f32(p.cols);
  for (var c = tid; c < p.cols; c += WG) {
    dx[base + c] = f32(w[c]) * g[base + c] * r - x[base + c] * k;
  }
  if (tid == 0u) { rinv[row] = r; }
}

@compute @workgroup_size(WG)
fn backward4(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let cv = p.cols / 4u;
  let base = row * cv;
  var xs: array<vec4<f32>, CACHE>;
  var wgs: array<vec4<f32>, CACHE>; // w ⊙ g
  var acc = vec2<f32>(0.0);
  for (var k = 0u; k < CACHE; k++) {
    let c = tid + k * WG;
    if (c < cv) {
      xs[k] = x4[base + c];
      wgs[k] = vec4<f32>(w4[c]) * g4[base + c];
      acc += vec2<f32>(dot(xs[k], xs[k]), dot(wgs[k], xs[k]));
    }
  }
  for (var c = tid + CACHE * WG; c < cv; c += WG) {
    let xv = x4[base + c];
    acc += vec2<f32>(dot(xv, xv), dot(vec4<f32>(w4[c]) * g4[base + c], xv));
  }
  let r = row_inv_rms(block_sum(acc.x, tid));
  let m = block_sum(acc.y, tid) * r * r * r / f32(p.cols);
  for (var k = 0u; k < CACHE; k++) {
    let c = tid + k * WG;
    if (c < cv) { dx4[base + c] = wgs[k] * r - xs[k] * m; }
  }
  for (var c = tid + CACHE * WG; c < cv; c += WG) {
    dx4[base + c] = vec4<f32>(w4[c]) * g4[base + c] * r - x4[base + c] * m;
  }
  if (tid == 0u) { rinv[row] = r; }
}

@compute @workgroup_size(64)
fn dw_partial(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= p.cols) { return; }
  let k = gid.y;
  let end = min((k + 1u) * p.chunk, p.rows);
  var s = 0.0;
  for (var i = k * p.chunk; i < end; i++) {
    s += g[i * p.cols + c] * x[i * p.cols + c] * rinv[i];
  }
  part[k * p.cols + c] = s;
}

@compute @workgroup_size(64)
fn dw_partial4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let cv = p.cols / 4u;
  let c = gid.x;
  if (c >= cv) { return; }
  let k = gid.y;
  let end = min((k + 1u) * p.chunk, p.rows);
  var s = vec4<f32>(0.0);
  for (var i = k * p.chunk; i < end; i++) {
    s += g4[i * cv + c] * x4[i * cv + c] * rinv[i];
  }
  part4[k * cv + c] = s;
}

@compute @workgroup_size(64)
fn dw_sum(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= p.cols) { return; }
  var s = 0.0;
  for (var k = 0u; k < p.nchunks; k++) {
    s += part[k * p.cols + c];
  }
  dw[c] = s;
}

@compute @workgroup_size(WG)
fn add_forward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  var ss = 0.0;
  for (var c = tid; c < p.cols; c += WG) {
    let v = x[base + c] + delta[base + c];
    resid[base + c] = v;
    ss += v * v;
  }
  let r = row_inv_rms(block_sum(ss, tid));
  for (var c = tid; c < p.cols; c += WG) {
    // Recomputed, not re-read from s: the same f32 sum, and no read-after-write across invocations.
    y[base + c] = f32(w[c]) * ((x[base + c] + delta[base + c]) * r);
  }
}

@compute @workgroup_size(WG)
fn add_forward4(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let cv = p.cols / 4u;
  let base = row * cv;
  var xs: array<vec4<f32>, CACHE>;
  var ss = 0.0;
  for (var k = 0u; k < CACHE; k++) {
    let c = tid + k * WG;
    if (c < cv) {
      xs[k] = x4[base + c] + delta4[base + c];
      resid4[base + c] = xs[k];
      ss += dot(xs[k], xs[k]);
    }
  }
  for (var c = tid + CACHE * WG; c < cv; c += WG) {
    let v = x4[base + c] + delta4[base + c];
    resid4[base + c] = v;
    ss += dot(v, v);
  }
  let r = row_inv_rms(block_sum(ss, tid));
  for (var k = 0u; k < CACHE; k++) {
    let c = tid + k * WG;
    if (c < cv) { y4[base + c] = vec4<f32>(w4[c]) * (xs[k] * r); }
  }
  for (var c = tid + CACHE * WG; c < cv; c += WG) {
    y4[base + c] = vec4<f32>(w4[c]) * ((x4[base + c] + delta4[base + c]) * r);
  }
}
