// row_reduce_workgroup — workgroup-wide reductions through workgroup memory (works on every adapter).
//
// A LIBRARY, not a kernel: the launchers append this file (or row_reduce_subgroup.wgsl, same functions,
// when the device has subgroups) to softmax.wgsl / cross_entropy.wgsl / reduce.wgsl; see rowSpec() in
// src/ops/reduce.ts. Why two files instead of two entry points: a module that mentions a subgroup
// builtin anywhere fails to build on a device without the "subgroups" feature (naga validates the whole
// module), so the subgroup code must live in a module of its own.
//
// Contract shared by both libraries:
//   - the including file declares `override WG: u32` (power of two, ≥ 2) and uses @workgroup_size(WG);
//   - every invocation of the workgroup calls the function in uniform control flow with its
//     local_invocation_index; every invocation receives the result;
//   - each function ends with a barrier, so the scratch arrays can be reused by the next call;
//   - the order of combination is fixed (deterministic results for a given device and WG).
//
//   block_sum(v, lid) -> f32            Σ v
//   block_max(v, lid) -> f32            max v
//   block_min_u32(v, lid) -> u32        min v
//   block_max_sum(m, s, lid) -> vec2    online-softmax merge of per-invocation (max m, Σ exp(x − m) = s):
//                                       (M, Σ s·exp(m − M)), M = max m

var<workgroup> red_a: array<f32, WG>;
var<workgroup> red_b: array<f32, WG>;
var<workgroup> red_u: array<u32, WG>;

fn block_sum(v: f32, lid: u32) -> f32 {
  red_a[lid] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { red_a[lid] += red_a[lid + stride]; }
    workgroupBarrier();
  }
  let r = red_a[0];
  workgroupBarrier();
  return r;
}

fn block_max(v: f32, lid: u32) -> f32 {
  red_a[lid] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { red_a[lid] = max(red_a[lid], red_a[lid + stride]); }
    workgroupBarrier();
  }
  let r = red_a[0];
  workgroupBarrier();
  return r;
}

fn block_min_u32(v: u32, lid: u32) -> u32 {
  red_u[lid] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { red_u[lid] = min(red_u[lid], red_u[lid + stride]); }
    workgroupBarrier();
  }
  let r = red_u[0];
  workgroupBarrier();
  return r;
}

fn block_max_sum(m: f32, s: f32, lid: u32) -> vec2<f32> {
  red_a[lid] = m;
  red_b[lid] = s;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      let m1 = red_a[lid];
      let m2 = red_a[lid + stride];
      let mm = max(m1, m2);
      // Empty invocations carry m = -FLT_MAX, s = 0: exp(-huge) = 0 keeps them neutral, never NaN.
      red_b[lid] = red_b[lid] * exp(m1 - mm) + red_b[lid + stride] * exp(m2 - mm);
      red_a[lid] = mm;
    }
    workgroupBarrier();
  }
  let r = vec2<f32>(red_a[0], red_b[0]);
  workgroupBarrier();
  return r;
}
