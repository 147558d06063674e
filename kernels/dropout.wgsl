// dropout — out = x · keep / (1 − p), keep = hash(seed, i) ≥ p (inverted dropout, as torch).
//
// The mask is a pure function of (seed, index): backward regenerates it instead of storing it, and
// the reference (src/reference/dropout.ts) computes the identical mask on the CPU.
// Hash: PCG output permutation of (i · 0x9E3779B1 + seed), mapped to [0, 1) with 24 bits.
//
// Bindings (group 0): 0 uniform Params { n: u32, seed: u32, p: f32 }
//   1 x: array<f32> read [n]    2 out: array<f32> read_write [n]
// Workgroup 256; grid ceil(n / 256) folded into y past 65535 (index = x + y · nx · 256).

struct Params {
  n: u32,
  seed: u32,
  p: f32,
}

@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= u.n) { return; }
  let r = f32(pcg(i * 0x9E3779B1u + u.seed) >> 8u) / 16777216.0;
  out[i] = select(0.0, x[i] / (1.0 - u.p), r >= u.p);
}
