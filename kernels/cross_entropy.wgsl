// cross_entropy — per-row softmax cross-entropy on f32 logits [rows, V] with i32 labels, its gradient
// (optionally in place), argmax-correct flags, and the small scalar kernels around it.
//
//   rows / rows4 (one workgroup per logits row r; label ℓ = labels[off + r], off = row_offset):
//     valid row (0 ≤ ℓ < V, ℓ ≠ ignore):  loss[off + r] = M + log S − x[ℓ]   (M = max, S = Σ exp(x − M))
//       WRITE_GRAD:   dst[r, i] = (exp(x[r, i] − M) / S − [i == ℓ]) · grad_scale[0]
//       WANT_ARGMAX:  correct[off + r] = 1 if the first index of the row maximum is ℓ, else 0
//     ignored row (ℓ == ignore): loss 0, dst row 0, correct 0
//     label out of range (not ignore): loss NaN (a loud signal: PyTorch raises here), dst row 0, correct 0
//     dst may be the logits buffer itself (in place): each element is read then written by the same
//     invocation, and x[ℓ] is captured before the barrier that precedes any write.
//     Pass 1 is one online pass (max, Σ exp(x − max), first argmax); pass 2 re-reads the row and writes.
//     rows4 reads vec4 (V % 4 == 0), two loads in flight per iteration of pass 1.
//   count_valid: scalar_out[0] = #{ i < n : labels[i] ≠ ignore } as f32 (exact up to 2^24 labels)
//   finish:      scalar_out[0] = Σ_{i<n} loss[i] / count[0], or 0 when count is 0 (fixed order)
//   make_scale:  scalar_out[0] = alpha · (use_grad ? grad_in[0] : 1) / count[0], or 0 when count is 0
//
// Bindings (group 0): 0 uniform Params (below)
//   1 logits: array<f32> read_write [rows, V]      7 logits4: array<vec4<f32>> read_write (rows4)
//   2 labels: array<i32> read [≥ off + rows]       3 loss: array<f32> read_write [≥ off + rows]
//   4 grad_scale: array<f32> read [1]              5 dst: array<f32> read_write [rows, V]
//   8 dst4: array<vec4<f32>> read_write (rows4)    6 correct: array<u32> read_write [≥ off + rows]
//   9 scalar_out: array<f32> read_write [1]        10 count: array<f32> read [1]
//   11 grad_in: array<f32> read [1]
// Bindings behind a false override stay in the pipeline layout: launchers bind a stand-in buffer.
// Workgroup WG (override, power of two). Grid: rows/rows4 one workgroup per row (folded into y past
// 65535; surplus workgroups return); count_valid, finish, make_scale one workgroup.
// Linked with row_reduce_{workgroup,subgroup}.wgsl (block_max_sum, block_min_u32, block_sum).

override WG: u32 = 256;
override WRITE_GRAD: bool = false;
override WANT_ARGMAX: bool = false;
const NEG_BIG: f32 = -3.4028234e38; // -FLT_MAX: an "empty" running max that never makes inf − inf
const NONE: u32 = 0xffffffffu;

// A NaN that is not a constant expression: Tint rejects NaN in const-evaluation.
var<private> NAN_BITS: u32 = 0x7fc00000u;

struct Params {
  rows: u32,
  v: u32,
  ignore: i32,
  row_offset: u32,
  n: u32,
  use_grad: u32,
  alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(4) var<storage, read> grad_scale: array<f32>;
@group(0) @binding(5) var<storage, read_write> dst: array<f32>;
@group(0) @binding(6) var<storage, read_write> correct: array<u32>;
@group(0) @binding(7) var<storage, read_write> logits4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> dst4: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> scalar_out: array<f32>;
@group(0) @binding(10) var<storage, read> count: array<f32>;
@group(0) @binding(11) var<storage, read> grad_in: array<f32>;

var<workgroup> wg_label: i32;
var<workgroup> wg_xlabel: f32;

// Row state after pass 1, shared by rows and rows4.
struct RowStats {
  m: f32,      // row max
  inv_s: f32,  // 1 / Σ exp(x − m)
  log_s: f32,
}

fn max4(v: vec4<f32>) -> f32 {
  return max(max(v.x, v.y), max(v.z, v.w));
}

fn sum4(v: vec4<f32>) -> f32 {
  return (v.x + v.y) + (v.z + v.w);
}

// Index (0..3) of the first component equal to vm: ties keep the lowest index, like torch.argmax.
fn first_of(v: vec4<f32>, vm: f32) -> u32 {
  return select(select(select(3u, 2u, v.z == vm), 1u, v.y == vm), 0u, v.x == vm);
}

// Loads the row's label so that every invocation sees it as uniform (it decides whole-row branches).
fn row_label(row: u32, lid: u32) -> i32 {
  if (lid == 0u) { wg_label = labels[p.row_offset + row]; }
  return workgroupUniformLoad(&wg_label);
}

// Ignored or out-of-range row: loss 0 or NaN, zero gradient row, not correct.
fn skip_row(row: u32, label: i32, lid: u32) {
  if (lid == 0u) {
    loss[p.row_offset + row] = select(bitcast<f32>(NAN_BITS), 0.0, label == p.ignore);
    if (WANT_ARGMAX) { correct[p.row_offset + row] = 0u; }
  }
}

// After pass 1: merges the per-invocation (max, sum, first argmax) and writes loss and correct.
fn finish_row(row: u32, label: i32, m: f32, s: f32, best: u32, lid: u32) -> RowStats {
  let ms = block_max_sum(m, s, lid);
  let log_s = log(ms.y);
  if (lid == 0u) { loss[p.row_offset + row] = ms.x + log_s - wg_xlabel; }
  if (WANT_ARGMAX) {
    let first = block_min_u32(select(NONE, best, m == ms.x), lid);
    if (lid == 0u) { correct[p.row_offset + row] = select(0u, 1u, first == u32(label)); }
  }
  return RowStats(ms.x, 1.0 / ms.y, log_s);
}

@compute @workgroup_size(WG)
fn rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let base = row * p.v;
  let label = row_label(row, lid);
  if (label == p.ignore || label < 0 || u32(label) >= p.v) {
    skip_row(row, label, lid);
    if (WRITE_GRAD) { for (var i = lid; i < p.v; i += WG) { dst[base + i] = 0.0; } }
    return;
  }
  // Captured before block_max_sum's barriers, i.e. before any invocation may overwrite it in place.
  if (lid == 0u) { wg_xlabel = logits[base + u32(label)]; }
  var m = NEG_BIG;
  var s = 0.0;
  var best = NONE;
  for (var i = lid; i < p.v; i += WG) {
    let v = logits[base + i];
    if (v > m) {
      s = s * exp(m - v) + 1.0;
      m = v;
      best = i;
    } else {
      s += exp(v - m);
    }
  }
  let st = finish_row(row, label, m, s, best, lid);
  if (WRITE_GRAD) {
    let k = grad_scale[0];
    for (var i = lid; i < p.v; i += WG) {
      let prob = exp(logits[base + i] - st.m) * st.inv_s;
      dst[base + i] = (prob - select(0.0, 1.0, i == u32(label))) * k;
    }
  }
}

@compute @workgroup_size(WG)
fn rows4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let n4 = p.v / 4u;
  let base = row * n4;
  let label = row_label(row, lid);
  if (label == p.ignore || label < 0 || u32(label) >= p.v) {
    skip_row(row, label, lid);
    if (WRITE_GRAD) { for (var i = lid; i < n4; i += WG) { dst4[base + i] = vec4<f32>(0.0); } }
    return;
  }
  if (lid == 0u) { wg_xlabel = logits4[base + u32(label) / 4u][u32(label) % 4u]; }
  var m = NEG_BIG;
  var s = 0.0;
  var best = NONE;
  // Two vec4 loads per iteration (indices i and i + WG of this invocation) keep more memory requests
  // in flight; the odd one left over, if any, is done after the loop.
  var i = lid;
  for (; i + WG < n4; i += 2u * WG) {
    let a = logits4[base + i];
    let b = logits4[base + i + WG];
    let am = max4(a);
    let vm = max(am, max4(b));
    if (vm > m) {
      s *= exp(m - vm);
      m = vm;
      best = select(4u * (i + WG) + first_of(b, vm), 4u * i + first_of(a, vm), am == vm);
    }
    s += sum4(exp(a - vec4<f32>(m))) + sum4(exp(b - vec4<f32>(m)));
  }
  if (i < n4) {
    let a = logits4[base + i];
    let vm = max4(a);
    if (vm > m) {
      s *= exp(m - vm);
      m = vm;
      best = 4u * i + first_of(a, vm);
    }
    s += sum4(exp(a - vec4<f32>(m)));
  }
  let st = finish_row(row, label, m, s, best, lid);
  if (WRITE_GRAD) {
    let k = grad_scale[0];
    let lab = vec4<u32>(u32(label));
    for (var j = lid; j < n4; j += WG) {
      let prob = exp(logits4[base + j] - vec4<f32>(st.m)) * st.inv_s;
      let idx = vec4<u32>(4u * j) + vec4<u32>(0u, 1u, 2u, 3u);
      dst4[base + j] = (prob - select(vec4<f32>(0.0), vec4<f32>(1.0), idx == lab)) * k;
    }
  }
}

@compute @workgroup_size(WG)
fn count_valid(@builtin(local_invocation_index) lid: u32) {
  var c = 0.0;
  for (var i = lid; i < p.n; i += WG) { c += select(0.0, 1.0, labels[i] != p.ignore); }
  let total = block_sum(c, lid);
  if (lid == 0u) { scalar_out[0] = total; }
}

@compute @workgroup_size(WG)
fn finish(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var i = lid; i < p.n; i += WG) { s += loss[i]; }
  let total = block_sum(s, lid);
  if (lid == 0u) {
    let c = count[0];
    scalar_out[0] = select(0.0, total / c, c > 0.0);
  }
}

@compute @workgroup_size(1)
fn make_scale() {
  let c = count[0];
  let g = select(1.0, grad_in[0], p.use_grad != 0u);
  scalar_out[0] = select(0.0, p.alpha * g / c, c > 0.0);
}
