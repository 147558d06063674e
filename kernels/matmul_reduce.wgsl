// matmul_reduce — the reductions that finish a matmul (kernels/matmul.wgsl):
//
//   splitk_reduce: C[b, i] = alpha · Σ_s part[b·S + s, i] + beta · C[b, i] + bias[i % N]
//                  (sums the split-K partial products; S = 0 gives beta · C + bias)
//   colsum:        C[n] = Σ_r X[r, n] for r < M (the bias gradient: column sums of dC, batch folded
//                  into rows; also sums per-batch weight gradients of a shared B)
//
// Bindings (group 0): 0 uniform Params (below)
//   splitk_reduce: 1 part: array<f32> read [batch·S, M, N]   2 C: array<f32> read_write [batch, M, N]
//                  3 bias: array<TBIAS> read [N] (any buffer when hasBias = 0)
//   colsum:        1 part (X) read [M, N]   2 C write [N]
// Params.total is batch·M·N (splitk_reduce). Types: TBIAS (f32 or f16), prepended by the runtime.
// Workgroup 256; grid1d over total / N workgroups' threads (index = x + y · nx · 256).

struct Params {
  M: u32,
  N: u32,
  S: u32,
  total: u32,
  alpha: f32,
  beta: f32,
  hasBias: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<TBIAS>;

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

@compute @workgroup_size(256)
fn splitk_reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= p.total) { return; }
  let mn = p.M * p.N;
  let b = i / mn;
  let r = i % mn;
  var acc = 0.0;
  for (var s = 0u; s < p.S; s++) { acc += part[(b * p.S + s) * mn + r]; }
  var v = p.alpha * acc;
  // beta = 0 must not read C: it may hold garbage (NaN · 0 = NaN).
  if (p.beta != 0.0) { v += p.beta * C[i]; }
  if (p.hasBias != 0u) { v += f32(bias[r % p.N]); }
  C[i] = v;
}

@compute @workgroup_size(256)
fn colsum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = flat(gid, nwg);
  if (n >= p.N) { return; }
  var acc = 0.0;
  for (var r = 0u; r < p.M; r++) { acc += part[r * p.N + n]; }
  C[n] = acc;
}
