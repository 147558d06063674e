// elementwise — pointwise ops over flat arrays of n elements.
//
//   add:   out = a + b          mul:  out = a * b          scale: out = alpha * a
//   axpy:  a  += alpha * b      (in place; gradient accumulation)
//   convert: out = DT(a)        (f32 ↔ f16; `cast` is a WGSL keyword)
//   fill:  out = alpha
//   mul_scalar: out = a * b[0]  (a scalar that lives on the GPU, e.g. an incoming loss gradient)
//   inv_count:  out = 1 / max(a, 1)  (a mean's denominator without readback; count 0 gives 1)
//
// Bindings (group 0): 0 uniform Params { n: u32, alpha: f32 }
//   add/mul:  1 a: array<ST> read   2 b: array<ST> read   3 out: array<ST> write      [n]
//   scale:    1 a: array<ST> read   3 out: array<ST> write                          [n]
//   axpy:     4 acc: array<ST> read_write (a)   2 b: array<ST> read                 [n]
//   convert:  1 a: array<ST> read   5 dst: array<DT> write                          [n]
//   fill:     3 out: array<ST> write                                               [n]
//   mul_scalar: 1 a [n] read   2 b [1] read   3 out [n] write
//   inv_count:  1 a [n] read   3 out [n] write
// Binding numbers are shared across entries; the launcher passes buffers in binding order
// (1, 2, 3, … skipping the ones an entry does not use), see src/ops/elementwise.ts.
// Types: ST (storage element), DT (cast destination), aliases prepended by the runtime.
// Workgroup 256; grid: ceil(n / 256) workgroups, folded into y past 65535 (index = x + y · nx · 256).

struct Params {
  n: u32,
  alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<ST>;
@group(0) @binding(2) var<storage, read> b: array<ST>;
@group(0) @binding(3) var<storage, read_write> out: array<ST>;
@group(0) @binding(4) var<storage, read_write> acc: array<ST>;
@group(0) @binding(5) var<storage, read_write> dst: array<DT>;

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

@compute @workgroup_size(256)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i < p.n) { out[i] = a[i] + b[i]; }
}

@compute @workgroup_size(256)
fn mul(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i < p.n) { out[i] = a[i] * b[i]; }
}

@compute @workgroup_size(256)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i < p.n) { out[i] = ST(p.alpha) * a[i]; }
}

@compute @workgroup_size(256)
fn axpy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i < p.n) { acc[i] = acc[i] + ST(p.alpha) * b[i]; }
}

@compute @workgroup_size(256)
fn convert(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i < p.n) { dst[i] = DT(a[i]); }
}

@compute @workgroup_size(256)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i < p.n) { out[i] = ST(p.alpha); }
}

@compute @workgroup_size(256)
fn mul_scalar(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i < p.n) { out[i] = a[i] * b[0]; }
}

@compute @workgroup_size(256)
fn inv_count(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i < p.n) { out[i] = ST(1) / max(a[i], ST(1)); }
}
