// reduce — deterministic (fixed-order) sums over f32 arrays whose results stay on the GPU.
//
//   partial_sums:  partials[base + g] = Σ f(x[k]) over workgroup g's contiguous chunk of WG · ITEMS
//                  elements; f(v) = v, or v² when SQUARE. Fixed chunks, so a fixed order.
//   partial_sums4: the same over WG · ITEMS vec4s per chunk; the (n % 4) tail goes to the last chunk.
//   finish_sum:    out[0] = scale · Σ_{k < count} f(partials[k]), one workgroup (f as above, so a short
//                  array is reduced in one launch by binding it as `partials`).
//   broadcast:     out[i] = scale · g[0] for i < n (gradient of sum and mean).
//   sum_rows:      out[c] = (accumulate ? out[c] : 0) + Σ_r x[r, c] for x [rows, cols].
//
// Bindings (group 0): 0 uniform Params (below)
//   partial_sums:  1 x: array<f32> read [n]        3 partials: array<f32> read_write [≥ base + groups]
//   partial_sums4: 1 x (tail)  2 x4: array<vec4<f32>> read [n / 4]   3 partials
//   finish_sum:    3 partials (read only) [count]  4 out: array<f32> read_write [1]
//   broadcast:     5 g: array<f32> read [1]        4 out [n]
//   sum_rows:      1 x [rows, cols]                4 out [cols]
// Workgroup WG (override, power of two); sum_rows 64 × 4 (columns × row lanes). Grid: partial_sums(4)
// ceil(n / (WG · ITEMS)) (n / 4 for the vec4 entry), broadcast ceil(n / WG), sum_rows ceil(cols / 64),
// each folded into y past 65535 (index = x + y · num_workgroups.x; surplus groups return at once);
// finish_sum one workgroup.
// Linked with row_reduce_{workgroup,subgroup}.wgsl (block_sum): see rowSpec in src/ops/reduce.ts.

override WG: u32 = 256;
override ITEMS: u32 = 16;
override SQUARE: bool = false;

struct Params {
  n: u32,
  base: u32,
  count: u32,
  scale: f32,
  rows: u32,
  cols: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> g: array<f32>;

var<workgroup> lanes: array<f32, 256>;

fn f(v: f32) -> f32 {
  if (SQUARE) { return v * v; }
  return v;
}

fn f4(v: vec4<f32>) -> f32 {
  if (SQUARE) { return dot(v, v); }
  return (v.x + v.y) + (v.z + v.w);
}

fn group_of(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.x + wid.y * nwg.x;
}

@compute @workgroup_size(WG)
fn partial_sums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let grp = group_of(wid, nwg);
  let start = grp * WG * ITEMS;
  if (start >= p.n) { return; }
  var acc = 0.0;
  for (var k = 0u; k < ITEMS; k++) {
    let i = start + k * WG + lid;
    if (i < p.n) { acc += f(x[i]); }
  }
  let total = block_sum(acc, lid);
  if (lid == 0u) { partials[p.base + grp] = total; }
}

@compute @workgroup_size(WG)
fn partial_sums4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let grp = group_of(wid, nwg);
  let n4 = p.n / 4u;
  let start = grp * WG * ITEMS;
  if (start >= n4) { return; }
  var acc = 0.0;
  for (var k = 0u; k < ITEMS; k++) {
    let i = start + k * WG + lid;
    if (i < n4) { acc += f4(x4[i]); }
  }
  // The last chunk also takes the (< 4) elements past the last whole vec4.
  if (start + WG * ITEMS >= n4 && lid < p.n % 4u) { acc += f(x[4u * n4 + lid]); }
  let total = block_sum(acc, lid);
  if (lid == 0u) { partials[p.base + grp] = total; }
}

@compute @workgroup_size(WG)
fn finish_sum(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var i = lid; i < p.count; i += WG) { acc += f(partials[i]); }
  let total = block_sum(acc, lid);
  if (lid == 0u) { out[0] = p.scale * total; }
}

@compute @workgroup_size(WG)
fn broadcast(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
  let i = group_of(wid, nwg) * WG + lid;
  if (i < p.n) { out[i] = p.scale * g[0]; }
}

@compute @workgroup_size(64, 4)
fn sum_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) l: vec3<u32>) {
  let c = group_of(wid, nwg) * 64u + l.x;
  var acc = 0.0;
  if (c < p.cols) {
    for (var r = l.y; r < p.rows; r += 4u) { acc += x[r * p.cols + c]; }
  }
  lanes[l.y * 64u + l.x] = acc;
  workgroupBarrier();
  if (l.y == 0u && c < p.cols) {
    let total = (lanes[l.x] + lanes[64u + l.x]) + (lanes[128u + l.x] + lanes[192u + l.x]);
    out[c] = select(0.0, out[c], p.accumulate != 0u) + total;
  }
}
