// swiglu — the Llama MLP gate: out = silu(gate) ⊙ up, silu(z) = z·σ(z), σ(z) = 1 / (1 + e^−z),
// and its backward for an upstream gradient g:
//   dgate = g ⊙ up ⊙ σ(gate)·(1 + gate·(1 − σ(gate))),   dup = g ⊙ silu(gate).
// Elementwise over n values; f32 activations. Entry points ending in 4 move vec4 (n % 4 == 0, the
// common case: F is a multiple of 4), the others are the scalar fallback.
//
// Bindings (group 0): 0 uniform Params { n: u32 }   (n counts elements, or vec4s for the *4 entries)
//   scalar:  1 gate array<f32> read [n]   2 up array<f32> read [n]   3 out array<f32> rw [n]
//            4 g array<f32> read [n]      5 dgate array<f32> rw [n]  6 dup array<f32> rw [n]
//   vec4:    11 gate4, 12 up4, 13 out4, 14 g4, 15 dgate4, 16 dup4 — array<vec4<f32>> [n]
// Workgroup 256, one element (or vec4) per thread; grid ceil(n / 256) workgroups folded into y past
// 65535 (index = x + y · nx · 256).
// Large |gate|: e^−z overflows to +inf for z < −88, giving σ = 0 and silu = −0 — the exact limits.

struct Params {
  n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;
@group(0) @binding(5) var<storage, read_write> dgate: array<f32>;
@group(0) @binding(6) var<storage, read_write> dup: array<f32>;
@group(0) @binding(11) var<storage, read> gate4: array<vec4<f32>>;
@group(0) @binding(12) var<storage, read> up4: array<vec4<f32>>;
@group(0) @binding(13) var<storage, read_write> out4: array<vec4<f32>>;
@group(0) @binding(14) var<storage, read> g4: array<vec4<f32>>;
@group(0) @binding(15) var<storage, read_write> dgate4: array<vec4<f32>>;
@group(0) @binding(16) var<storage, read_write> dup4: array<vec4<f32>>;

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

fn sigmoid(z: f32) -> f32 {
  return 1.0 / (1.0 + exp(-z));
}

fn sigmoid4(z: vec4<f32>) -> vec4<f32> {
  return 1.0 / (1.0 + exp(-z));
}

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= p.n) { return; }
  let z = gate[i];
  out[i] = z * sigmoid(z) * up[i];
}

@compute @workgroup_size(256)
fn forward4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= p.n) { return; }
  let z = gate4[i];
  out4[i] = z * sigmoid4(z) * up4[i];
}

@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= p.n) { return; }
  let z = gate[i];
  let s = sigmoid(z);
  dup[i] = g[i] * z * s;
  dgate[i] = g[i] * up[i] * s * (1.0 + z * (1.0 - s));
}

@compute @workgroup_size(256)
fn backward4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= p.n) { return; }
  let z = gate4[i];
  let s = sigmoid4(z);
  let gv = g4[i];
  dup4[i] = gv * z * s;
  dgate4[i] = gv * up4[i] * s * (1.0 + z * (1.0 - s));
}
