// sampling — next-token choice on the GPU, so decode never reads back per token (DESIGN.md, "Deno
// WebGPU facts"), plus the small helpers the decode loop needs on the GPU.
//
//   argmax_partial (greedy, first of two): workgroup g of row b reduces x over its slice of V
//            (SLICE = 4096 tokens) to (max, lowest index of the max) → scratch[(b·G + g)·2 + {0, 1}]
//            (the index bit-cast to f32), so a 152K vocabulary is scanned by ~38 workgroups, not one.
//   sample:  per row b of logits [B, V]: x = logits with HF's repetition penalty on tokens seen so far
//            (x > 0 ? x / penalty : x · penalty). mode 0 (greedy): token = the best of the G partials
//            of argmax_partial, lowest index on ties. mode 1: x /= temperature; keep x ≥ t where t is found by bisection — top-k: the
//            largest t with count(x ≥ t) ≥ topK; top-p: then the largest t with Σ_{x≥t} e^(x−m) ≥
//            topP · Σ_{kept by top-k} e^(x−m) — and draw from the kept tokens ∝ e^(x−m) with
//            u = rand(seed, rngStep, b), walking the kept mass in index order. The bisections run over
//            the candidates x ≥ m − CUT (compacted in index order) when that provably gives the same
//            set (top-k with ≥ k candidates; top-p whose mass the candidates reach even against the
//            largest possible tail), else over all V: a 150K vocabulary costs a few full passes, not 67. The token goes to
//            tokens[b] (the next step's embedding input) and out[b·K + col]; with the penalty on it is
//            also marked in seen. col = p.col + step[0] and the draw's rngStep = p.rngStep + step[0]:
//            `step` is a GPU counter that advance() moves, so every decode step of a chunk records the
//            same commands and uniforms (Gpu.replay can repeat one recorded step).
//   mark:    seen[b, ids[b, t]] = 1 for ids ≥ 0 (the prompt; padding is −1)
//   advance: positions[b] += 1, rows[b] += 1, lengths[b] += 1 (the next decode step's positions), and
//            step[0] += 1 when p.hasStep
//   fill_uniform: dst[i] = ST(lo + (hi − lo) · rand(seed, i)) (random weights for benches, no upload)
//
// Bindings (group 0): 0 uniform Params (below)
//   sample: 1 logits: array<f32> read [B, V]   2 seen: array<u32> read_write [B, V] (touched only when
//           usePenalty)   3 tokens: array<i32> read_write [B]   4 out: array<u32> read_write [B, K]
//           5 scratch: array<f32> read_write — mode 0: [B, G, 2] partials of argmax_partial (which
//           binds 1, 2 and 5 the same way); mode 1: [3, B, V]: the scaled logits, the compacted
//           candidates, their token ids (bit-cast u32)   11 step: array<u32> read_write [1] (read)
//   mark:   6 ids: array<i32> read [B, T]   2 seen
//   advance: 7 positions: array<i32> read_write [B]   8 rows, 9 lengths: array<u32> read_write [B]
//            11 step
//   fill_uniform: 10 dst: array<ST> read_write [n]
// Workgroups: sample WG threads (override; the launcher picks up to 1024 so one row's passes over a
// large vocabulary have many loads in flight), one workgroup per row, grid [B]; argmax_partial WG,
// grid [G, B]
// with G = ceil(V / 4096) ≤ 256; mark / fill_uniform 256, grid
// grid1d(n) (index = x + y · nx · 256); advance 64, grid [ceil(B / 64)].
// Reductions use workgroup memory only (no subgroup builtins), so every device runs this file.
// Bisection: 32 halvings of [min, max] leave an interval far below f32 spacing of typical logits.

struct Params {
  B: u32,
  V: u32,
  K: u32, // out row stride
  col: u32, // out column of this step
  seed: u32,
  rngStep: u32,
  temperature: f32,
  topK: u32, // 0 = off
  topP: f32, // ≥ 1 = off
  penalty: f32,
  usePenalty: u32,
  mode: u32, // 0 greedy, 1 sample
  T: u32, // mark: ids per row
  n: u32, // mark / fill_uniform: element count
  nx: u32, // x workgroups of a grid1d grid
  lo: f32,
  hi: f32,
  G: u32, // argmax partials per row
  hasStep: u32, // advance: also move step[0]
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> seen: array<u32>;
@group(0) @binding(3) var<storage, read_write> tokens: array<i32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;
@group(0) @binding(5) var<storage, read_write> scratch: array<f32>;
@group(0) @binding(6) var<storage, read> ids: array<i32>;
@group(0) @binding(7) var<storage, read_write> positions: array<i32>;
@group(0) @binding(8) var<storage, read_write> rows: array<u32>;
@group(0) @binding(9) var<storage, read_write> lengths: array<u32>;
@group(0) @binding(10) var<storage, read_write> dst: array<ST>;
@group(0) @binding(11) var<storage, read_write> step: array<u32>;

override WG: u32 = 256u; // threads of sample / argmax_partial: a power of two ≤ 1024

const SLICE = 4096u;
var<workgroup> red: array<f32, WG>;
var<workgroup> redIdx: array<u32, WG>;
var<workgroup> pick: vec2<f32>; // (thread whose chunk holds the draw, residual mass)
var<workgroup> nCand: u32;
var<workgroup> useCand: u32;
// Tokens more than CUT below the max (after temperature) are candidates for no filter decision unless
// the exactness test in `sample` says so: e^(−16) ≈ 1.1e-7 of the top token's mass each.
const CUT = 16.0;

fn pcg(v: u32) -> u32 {
  let s = v * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}

// Uniform in [0, 1) with 24 random bits; the TS reference computes the same bits.
fn rand(a: u32, b: u32, c: u32) -> f32 {
  return f32(pcg(pcg(pcg(a) ^ b) + c) >> 8u) / 16777216.0;
}

fn penalised(b: u32, i: u32) -> f32 {
  var x = logits[b * p.V + i];
  if (p.usePenalty != 0u && seen[b * p.V + i] != 0u) {
    x = select(x * p.penalty, x / p.penalty, x > 0.0);
  }
  return x;
}

// op 0: sum, 1: max, 2: min. Every thread gets the result.
fn reduce(lid: u32, v: f32, op: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      let o = red[lid + s];
      if (op == 0u) { red[lid] += o; } else if (op == 1u) { red[lid] = max(red[lid], o); } else { red[lid] = min(red[lid], o); }
    }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

// Tree reduction of (red, redIdx) to slot 0: larger value wins, the lower index on ties; index
// 0xffffffff marks an empty slot.
fn argmaxReduce(lid: u32) {
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      let o = red[lid + s];
      let oi = redIdx[lid + s];
      if (oi != 0xffffffffu && (redIdx[lid] == 0xffffffffu || o > red[lid] || (o == red[lid] && oi < redIdx[lid]))) {
        red[lid] = o;
        redIdx[lid] = oi;
      }
    }
    workgroupBarrier();
  }
}

@compute @workgroup_size(WG)
fn argmax_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let g = wid.x;
  let b = wid.y;
  let lid = l.x;
  var best = -3.4e38;
  var bi = 0xffffffffu;
  let end = min(p.V, (g + 1u) * SLICE);
  for (var i = g * SLICE + lid; i < end; i += WG) {
    let x = penalised(b, i);
    if (x > best || bi == 0xffffffffu) { best = x; bi = i; }
  }
  red[lid] = best;
  redIdx[lid] = bi;
  workgroupBarrier();
  argmaxReduce(lid);
  if (lid == 0u) {
    scratch[(b * p.G + g) * 2u] = red[0];
    scratch[(b * p.G + g) * 2u + 1u] = bitcast<f32>(redIdx[0]);
  }
}

fn emit(b: u32, tok: u32) {
  tokens[b] = i32(tok);
  out[b * p.K + p.col + step[0]] = tok;
  if (p.usePenalty != 0u) { seen[b * p.V + tok] = 1u; }
}

@compute @workgroup_size(WG)
fn sample(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let b = wid.x;
  let lid = l.x;
  if (p.mode == 0u) {
    if (lid < p.G) {
      red[lid] = scratch[(b * p.G + lid) * 2u];
      redIdx[lid] = bitcast<u32>(scratch[(b * p.G + lid) * 2u + 1u]);
    } else {
      red[lid] = -3.4e38;
      redIdx[lid] = 0xffffffffu;
    }
    workgroupBarrier();
    argmaxReduce(lid);
    if (lid == 0u) { emit(b, redIdx[0]); }
    return;
  }
  // Pass 1: the scaled logits into scratch, their max and min.
  let base = b * p.V;
  var mx = -3.4e38;
  var mn = 3.4e38;
  for (var i = lid; i < p.V; i += WG) {
    let x = penalised(b, i) / p.temperature;
    scratch[base + i] = x;
    mx = max(mx, x);
    mn = min(mn, x);
  }
  let m = reduce(lid, mx, 1u);
  let lowest = reduce(lid, mn, 2u);
  if (!(p.topK > 0u && p.topK < p.V) && p.topP >= 1.0) {
    draw(lid, b, base, p.V, false, lowest, m); // plain temperature sampling: nothing to filter
    return;
  }
  // Candidates: x ≥ m − CUT, compacted in index order (per-thread counts, exclusive scan, write).
  let cut = m - CUT;
  let chunk = (p.V + WG - 1u) / WG;
  let i0 = lid * chunk;
  let i1 = min(p.V, i0 + chunk);
  var cnt = 0u;
  for (var i = i0; i < i1; i++) { cnt += select(0u, 1u, scratch[base + i] >= cut); }
  redIdx[lid] = cnt;
  workgroupBarrier();
  if (lid == 0u) {
    var acc = 0u;
    for (var j = 0u; j < WG; j++) {
      let c = redIdx[j];
      redIdx[j] = acc;
      acc += c;
    }
    nCand = acc;
  }
  workgroupBarrier();
  let cbase = p.B * p.V + base; // compacted values
  let ibase = 2u * p.B * p.V + base; // their token ids (bit-cast)
  var at = redIdx[lid];
  for (var i = i0; i < i1; i++) {
    let x = scratch[base + i];
    if (x >= cut) {
      scratch[cbase + at] = x;
      scratch[ibase + at] = bitcast<f32>(i);
      at++;
    }
  }
  let n = workgroupUniformLoad(&nCand);
  // The candidates decide exactly when top-k keeps only candidates (n ≥ topK), or, without top-k,
  // when the top-p mass is reached inside them even if every other token had e^(−CUT) of mass.
  var zc = 0.0;
  for (var i = lid; i < n; i += WG) { zc += exp(scratch[cbase + i] - m); }
  zc = reduce(lid, zc, 0u);
  if (lid == 0u) {
    let byK = p.topK > 0u && p.topK < p.V && n >= p.topK;
    let byP = !(p.topK > 0u && p.topK < p.V) && zc >= p.topP * (zc + f32(p.V - n) * exp(-CUT));
    useCand = select(0u, 1u, byK || byP);
  }
  let cand = workgroupUniformLoad(&useCand) == 1u;
  let start = select(base, cbase, cand);
  let len = select(p.V, n, cand);
  var t = select(lowest, cut, cand);
  if (p.topK > 0u && p.topK < p.V) {
    var lo = t;
    var hi = m;
    for (var it = 0u; it < 32u; it++) {
      let mid = lo + 0.5 * (hi - lo);
      var c = 0.0;
      for (var i = lid; i < len; i += WG) { c += select(0.0, 1.0, scratch[start + i] >= mid); }
      if (reduce(lid, c, 0u) >= f32(p.topK)) { lo = mid; } else { hi = mid; }
    }
    t = lo;
  }
  if (p.topP < 1.0) {
    var z = 0.0;
    for (var i = lid; i < len; i += WG) {
      let x = scratch[start + i];
      z += select(0.0, exp(x - m), x >= t);
    }
    let want = p.topP * reduce(lid, z, 0u);
    var lo = t;
    var hi = m;
    for (var it = 0u; it < 32u; it++) {
      let mid = lo + 0.5 * (hi - lo);
      var s = 0.0;
      for (var i = lid; i < len; i += WG) {
        let x = scratch[start + i];
        s += select(0.0, exp(x - m), x >= mid);
      }
      if (reduce(lid, s, 0u) >= want) { lo = mid; } else { hi = mid; }
    }
    t = lo;
  }
  draw(lid, b, start, len, cand, t, m);
}

// Draws among values[start .. start + len) ≥ t with weights e^(x − m): contiguous chunks per thread so
// the walk goes in index order; `cand`: the entries are compacted candidates whose token ids follow
// at start + B·V.
fn draw(lid: u32, b: u32, start: u32, len: u32, cand: bool, t: f32, m: f32) {
  let chunk = (len + WG - 1u) / WG;
  let i0 = min(len, lid * chunk);
  let i1 = min(len, i0 + chunk);
  var mine = 0.0;
  for (var i = i0; i < i1; i++) {
    let x = scratch[start + i];
    mine += select(0.0, exp(x - m), x >= t);
  }
  red[lid] = mine;
  workgroupBarrier();
  if (lid == 0u) {
    var u = 0.0;
    for (var j = 0u; j < WG; j++) { u += red[j]; }
    u *= rand(p.seed, p.rngStep + step[0], b);
    var owner = 0u;
    var last = 0u;
    var found = false;
    for (var j = 0u; j < WG; j++) {
      if (red[j] > 0.0) { last = j; }
      if (!found && red[j] > 0.0) {
        if (u < red[j]) { owner = j; found = true; } else { u -= red[j]; }
      }
    }
    if (!found) { owner = last; u = red[last]; } // rounding pushed the draw past the end
    pick = vec2<f32>(f32(owner), u);
  }
  workgroupBarrier();
  if (lid == u32(pick.x)) {
    var acc = 0.0;
    var at = i0;
    for (var i = i0; i < i1; i++) {
      let x = scratch[start + i];
      if (x >= t) {
        at = i;
        acc += exp(x - m);
        if (acc > pick.y) { break; }
      }
    }
    emit(b, select(at, bitcast<u32>(scratch[start + p.B * p.V + at]), cand));
  }
}

@compute @workgroup_size(256)
fn mark(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.nx * 256u;
  if (i >= p.n) { return; }
  let id = ids[i];
  if (id >= 0 && u32(id) < p.V) { seen[(i / p.T) * p.V + u32(id)] = 1u; }
}

@compute @workgroup_size(64)
fn advance(@builtin(global_invocation_id) gid: vec3<u32>) {
  let b = gid.x;
  if (b >= p.B) { return; }
  positions[b] += 1;
  rows[b] += 1u;
  lengths[b] += 1u;
  if (b == 0u && p.hasStep != 0u) { step[0] += 1u; }
}

@compute @workgroup_size(256)
fn fill_uniform(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.nx * 256u;
  if (i >= p.n) { return; }
  dst[i] = ST(p.lo + (p.hi - p.lo) * rand(p.seed, i, 0x9e3779b9u));
}
