// rope — rotary position embedding, Hugging Face "rotate_half" convention (not interleaved):
// for x [B, T, H, D], half = D/2 and each d < half, with angle = f32(position[b, t]) · invFreq[d],
//   out[d]        = x[d]·cos − x[d + half]·sin
//   out[d + half] = x[d + half]·cos + x[d]·sin
// sign = −1 rotates by −angle: that is the backward (the transpose of a rotation is its inverse).
//
// The angle is the plain f32 product, as HF forms it (inv_freq @ position_ids in float32). Before
// cos/sin it is reduced to about [−π, π] with a two-part 2π (the head has 8 significant bits, so
// k·TWO_PI_HI is exact for |k| < 2^16): GPU sin/cos are only specified on [−π, π], and fast hardware
// versions lose accuracy with the argument's size — at position 100 000 the angle is ~10^5 rad.
//
// Bindings (group 0): 0 uniform Params { bt: u32, heads: u32, half: u32, sign: f32, n: u32 }
//   scalar:  1 x array<f32> read [B, T, H, D]   2 pos array<i32> read [B, T]   3 inv array<f32> read [half]
//            4 out array<f32> rw [B, T, H, D]
//   vec4:    11 x4 [B, T, H, D/4]  13 inv4 [half/4]  14 out4 — array<vec4<f32>>; pos is shared (2)
// The *4 entries need half % 4 == 0 (D % 8 == 0: every Llama head dim); each thread rotates four
// consecutive pairs with vec4 loads.
// Workgroup 256; one thread per pair (or per four pairs): n = B·T·H·half (or /4) threads, grid
// ceil(n / 256) folded into y past 65535 (index = x + y · nx · 256).
// bt = B·T (rows of pos). out may not alias x.

struct Params {
  bt: u32,
  heads: u32,
  half: u32,
  sign: f32,
  n: u32,
}

const INV_TWO_PI: f32 = 0.15915494309189535;
const TWO_PI_HI: f32 = 6.28125;
const TWO_PI_LO: f32 = 0.0019353071795864769; // 2π − TWO_PI_HI

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> pos: array<i32>;
@group(0) @binding(3) var<storage, read> inv: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(11) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(13) var<storage, read> inv4: array<vec4<f32>>;
@group(0) @binding(14) var<storage, read_write> out4: array<vec4<f32>>;

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

// a − 2π·round(a / 2π): the same angle, in about [−π, π].
fn reduce_angle(a: vec4<f32>) -> vec4<f32> {
  let k = round(a * INV_TWO_PI);
  return (a - k * TWO_PI_HI) - k * TWO_PI_LO;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= p.n) { return; }
  let d = i % p.half;
  let row = i / p.half; // (b·T + t)·H + h
  let a = reduce_angle(vec4<f32>(f32(pos[row / p.heads]) * inv[d])).x;
  let c = cos(a);
  let s = p.sign * sin(a);
  let lo = row * 2u * p.half + d;
  let x0 = x[lo];
  let x1 = x[lo + p.half];
  out[lo] = x0 * c - x1 * s;
  out[lo + p.half] = x1 * c + x0 * s;
}

@compute @workgroup_size(256)
fn main4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= p.n) { return; }
  let hv = p.half / 4u;
  let d = i % hv;
  let row = i / hv;
  let a = reduce_angle(f32(pos[row / p.heads]) * inv4[d]);
  let c = cos(a);
  let s = p.sign * sin(a);
  let lo = row * 2u * hv + d;
  let x0 = x4[lo];
  let x1 = x4[lo + hv];
  out4[lo] = x0 * c - x1 * s;
  out4[lo + hv] = x1 * c + x0 * s;
}
