// row_reduce_subgroup — workgroup-wide reductions through subgroup builtins, then one small pass over
// the per-subgroup partials in workgroup memory. Same functions and contract as
// row_reduce_workgroup.wgsl (read that header); appended instead of it when gpu.info.subgroups.
//
// Subgroup layout: invocations are assumed to form subgroups in order of local_invocation_index
// (subgroup k = indices [k·size, (k+1)·size)), as every Vulkan/Metal/D3D12 driver we know does for a
// 1-D workgroup; the partial of subgroup k goes to slot k, so the final combination order is fixed.
// The subgroup size is measured (subgroupAdd(1u)) because builtins like subgroup_size are entry-point
// inputs only. A subgroup larger than WG simply has WG active invocations and one slot.
// naga has no subgroupElect(): the lowest active invocation is found with subgroupBroadcastFirst.

var<workgroup> red_a: array<f32, WG>;
var<workgroup> red_b: array<f32, WG>;
var<workgroup> red_u: array<u32, WG>;

// (slot of this invocation's subgroup, number of subgroups in the workgroup, is-first-lane as 0/1)
fn sg_layout(lid: u32) -> vec3<u32> {
  let size = subgroupAdd(1u);
  let first = subgroupBroadcastFirst(lid);
  return vec3<u32>(first / size, (WG + size - 1u) / size, select(0u, 1u, first == lid));
}

fn block_sum(v: f32, lid: u32) -> f32 {
  let t = subgroupAdd(v);
  let l = sg_layout(lid);
  if (l.z == 1u) { red_a[l.x] = t; }
  workgroupBarrier();
  var r = 0.0;
  for (var i = 0u; i < l.y; i++) { r += red_a[i]; }
  workgroupBarrier();
  return r;
}

fn block_max(v: f32, lid: u32) -> f32 {
  let t = subgroupMax(v);
  let l = sg_layout(lid);
  if (l.z == 1u) { red_a[l.x] = t; }
  workgroupBarrier();
  var r = red_a[0];
  for (var i = 1u; i < l.y; i++) { r = max(r, red_a[i]); }
  workgroupBarrier();
  return r;
}

fn block_min_u32(v: u32, lid: u32) -> u32 {
  let t = subgroupMin(v);
  let l = sg_layout(lid);
  if (l.z == 1u) { red_u[l.x] = t; }
  workgroupBarrier();
  var r = red_u[0];
  for (var i = 1u; i < l.y; i++) { r = min(r, red_u[i]); }
  workgroupBarrier();
  return r;
}

fn block_max_sum(m: f32, s: f32, lid: u32) -> vec2<f32> {
  let mm = subgroupMax(m);
  // Empty invocations carry m = -FLT_MAX, s = 0: exp(-huge) = 0 keeps them neutral, never NaN.
  let ss = subgroupAdd(s * exp(m - mm));
  let l = sg_layout(lid);
  if (l.z == 1u) {
    red_a[l.x] = mm;
    red_b[l.x] = ss;
  }
  workgroupBarrier();
  var big = red_a[0];
  for (var i = 1u; i < l.y; i++) { big = max(big, red_a[i]); }
  var sum = 0.0;
  for (var i = 0u; i < l.y; i++) { sum += red_b[i] * exp(red_a[i] - big); }
  workgroupBarrier();
  return vec2<f32>(big, sum);
}
