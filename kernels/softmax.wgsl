// softmax — row softmax over the last dimension (f32) and its backward; one workgroup per row.
//
//   fwd:  y[r, i]  = exp(x[r, i] − M_r) / S_r,   M_r = max_j x[r, j],  S_r = Σ_j exp(x[r, j] − M_r)
//   bwd:  dx[r, i] = y[r, i] · (g[r, i] − Σ_j g[r, j] · y[r, j])
//
// fwd reads the row twice: pass 1 keeps an online (max, sum) per invocation — when a larger value
// arrives the running sum is rescaled, so one exp per element — and merges them with
// block_max_sum; pass 2 writes. Entries ending in 4 read and write vec4 (needs V % 4 == 0, so every
// row starts on a 16-byte boundary); fwd4's pass 1 has two loads in flight per iteration.
//
// Bindings (group 0): 0 uniform Params { rows: u32, v: u32 }
//   fwd:  1 x: array<f32> read [rows, V]        2 y: array<f32> read_write [rows, V]
//   fwd4: 5 x4: array<vec4<f32>> read           6 y4: array<vec4<f32>> read_write
//   bwd:  2 y (read here)   3 g: array<f32> read [rows, V]    4 dx: array<f32> read_write [rows, V]
//   bwd4: 6 y4 (read here)  7 g4: array<vec4<f32>> read       8 dx4: array<vec4<f32>> read_write
// Workgroup WG (override, power of two); grid: one workgroup per row, rows folded into y past 65535
// (row = wg.x + wg.y · num_workgroups.x; surplus workgroups return at once).
// Linked with row_reduce_{workgroup,subgroup}.wgsl (block_max_sum, block_sum): see src/ops/reduce.ts.

override WG: u32 = 256;
const NEG_BIG: f32 = -3.4028234e38; // -FLT_MAX: an "empty" running max that never makes inf − inf

struct Params {
  rows: u32,
  v: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@group(0) @binding(5) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> y4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> g4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> dx4: array<vec4<f32>>;

fn row_of(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.x + wid.y * nwg.x;
}

fn max4(v: vec4<f32>) -> f32 {
  return max(max(v.x, v.y), max(v.z, v.w));
}

fn sum4(v: vec4<f32>) -> f32 {
  return (v.x + v.y) + (v.z + v.w);
}

@compute @workgroup_size(WG)
fn fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
  let row = row_of(wid, nwg);
  if (row >= p.rows) { return; }
  let base = row * p.v;
  var m = NEG_BIG;
  var s = 0.0;
  for (var i = lid; i < p.v; i += WG) {
    let v = x[base + i];
    if (v > m) {
      s = s * exp(m - v) + 1.0;
      m = v;
    } else {
      s += exp(v - m);
    }
  }
  let ms = block_max_sum(m, s, lid);
  let inv = 1.0 / ms.y;
  for (var i = lid; i < p.v; i += WG) { y[base + i] = exp(x[base + i] - ms.x) * inv; }
}

@compute @workgroup_size(WG)
fn fwd4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = row_of(wid, nwg);
  if (row >= p.rows) { return; }
  let n4 = p.v / 4u;
  let base = row * n4;
  var m = NEG_BIG;
  var s = 0.0;
  // Two vec4 loads per iteration keep more memory requests in flight; a leftover one follows.
  var i = lid;
  for (; i + WG < n4; i += 2u * WG) {
    let a = x4[base + i];
    let b = x4[base + i + WG];
    let vm = max(max4(a), max4(b));
    if (vm > m) {
      s *= exp(m - vm);
      m = vm;
    }
    s += sum4(exp(a - vec4<f32>(m))) + sum4(exp(b - vec4<f32>(m)));
  }
  if (i < n4) {
    let a = x4[base + i];
    let vm = max4(a);
    if (vm > m) {
      s *= exp(m - vm);
      m = vm;
    }
    s += sum4(exp(a - vec4<f32>(m)));
  }
  let ms = block_max_sum(m, s, lid);
  let inv = 1.0 / ms.y;
  for (var j = lid; j < n4; j += WG) { y4[base + j] = exp(x4[base + j] - vec4<f32>(ms.x)) * inv; }
}

@compute @workgroup_size(WG)
fn bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
  let row = row_of(wid, nwg);
  if (row >= p.rows) { return; }
  let base = row * p.v;
  var d = 0.0;
  for (var i = lid; i < p.v; i += WG) { d += g[base + i] * y[base + i]; }
  let dot = block_sum(d, lid);
  for (var i = lid; i < p.v; i += WG) { dx[base + i] = y[base + i] * (g[base + i] - dot); }
}

@compute @workgroup_size(WG)
fn bwd4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = row_of(wid, nwg);
  if (row >= p.rows) { return; }
  let n4 = p.v / 4u;
  let base = row * n4;
  var d = 0.0;
  for (var i = lid; i < n4; i += WG) { d += dot(g4[base + i], y4[base + i]); }
  let total = block_sum(d, lid);
  for (var i = lid; i < n4; i += WG) { dx4[base + i] = y4[base + i] * (g4[base + i] - vec4<f32>(total)); }
}
