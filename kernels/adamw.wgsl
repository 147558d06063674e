// adamw — one fused AdamW step for one parameter tensor, with gradient clipping by global norm.
//
// Matches torch.optim.AdamW (foreach=False) after torch.nn.utils.clip_grad_norm_:
//   clip = min(1, max_norm / (sqrt(norm_sq) + 1e-6))          (max_norm ≤ 0: no clipping)
//   g    = grad · clip
//   p    = p − lr · weight_decay · p                          (decoupled weight decay)
//   m    = β1 · m + (1 − β1) · g
//   v    = β2 · v + (1 − β2) · g²
//   p    = p − (lr / bc1) · m / (sqrt(v) / sqrt(bc2) + eps)   bc1 = 1 − β1^t, bc2 = 1 − β2^t
// The global norm is read from a GPU scalar (ops/reduce sumSquares over all gradients), so clipping
// needs no readback and happens in this same pass.
//
// Bindings (group 0):
//   0 uniform Params { n, lr, beta1, beta2, eps, weight_decay, bc1, bc2_sqrt, max_norm }
//   1 param:   array<f32> read_write [n]
//   2 grad:    array<f32> read       [n]
//   3 m:       array<f32> read_write [n]
//   4 v:       array<f32> read_write [n]
//   5 norm_sq: array<f32> read       [1]
// Workgroup 256; grid ceil(n / 256) folded into y past 65535 (index = x + y · nx · 256).

struct Params {
  n: u32,
  lr: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  weight_decay: f32,
  bc1: f32,
  bc2_sqrt: f32,
  max_norm: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read> norm_sq: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  var clip = 1.0;
  if (p.max_norm > 0.0) {
    clip = min(1.0, p.max_norm / (sqrt(norm_sq[0]) + 1e-6));
  }
  let g = grad[i] * clip;
  var w = param[i];
  w = w - p.lr * p.weight_decay * w;
  let mi = p.beta1 * m[i] + (1.0 - p.beta1) * g;
  let vi = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
  m[i] = mi;
  v[i] = vi;
  param[i] = w - (p.lr / p.bc1) * mi / (sqrt(vi) / p.bc2_sqrt + p.eps);
}
