// embedding — row gather out[n] = w[ids[n]] and its backward, a deterministic scatter-add
// dw[v] = Σ_{n: ids[n] = v} g[n] (in increasing n) without float atomics.
//
// Backward scheme: one workgroup per position n. Position n "owns" row v = ids[n] when no earlier
// position holds v (a strided scan of ids[0..n) by the workgroup). Non-owners exit; the owner writes
// dw[v] = g[n], then scans ids[n+1..N) a chunk of WG at a time and adds g[m] for every match, in order
// of m. Each column of dw[v] is only ever touched by one thread of one workgroup, so no atomics are
// needed and the sum order is fixed. Rows of dw that no id hits must be zeroed by the launcher first.
// Cost: O(N²/WG) id compares in all — fine for a training batch's N ≤ a few 10⁴ — plus one read of g.
//
// Bindings (group 0): 0 uniform Params { n: u32 (ids), vocab: u32, cols: u32 (C, or C/4 for *4) }
//   forward:   1 ids array<i32> read [N]   2 w array<WT> read [V, C]   3 out array<f32> rw [N, C]
//   backward:  1 ids                        4 g array<f32> read [N, C]  5 dw array<f32> rw [V, C]
//   vec4:      12 w4 array<vec4<WT>>, 13 out4, 14 g4, 15 dw4 — the same data in vec4 units (C % 4 == 0)
// Types: WT = table storage (f32 | f16); out and dw are f32.
// forward*: workgroup 256, one output element (or vec4) per thread, grid ceil(N·cols / 256) folded
//   into y past 65535 (index = x + y · nx · 256). An id outside [0, V) yields NaN in its row, so a bad
//   token id poisons the loss instead of silently reading another row.
// backward*: workgroup WG (override, default 256) per position, grid N folded into (x, y)
//   (n = x + y · nx). Ids outside [0, V) are skipped (their forward row was already NaN).

// A NaN that is not a constant expression: Tint rejects NaN in const-evaluation.
var<private> NAN_BITS: u32 = 0x7fc00000u;

struct Params {
  n: u32,
  vocab: u32,
  cols: u32,
}

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
@group(0) @binding(2) var<storage, read> w: array<WT>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;
@group(0) @binding(5) var<storage, read_write> dw: array<f32>;
@group(0) @binding(12) var<storage, read> w4: array<vec4<WT>>;
@group(0) @binding(13) var<storage, read_write> out4: array<vec4<f32>>;
@group(0) @binding(14) var<storage, read> g4: array<vec4<f32>>;
@group(0) @binding(15) var<storage, read_write> dw4: array<vec4<f32>>;

var<workgroup> hits: array<u32, WG>;
var<workgroup> count: atomic<u32>;
var<workgroup> count_seen: u32;

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

fn valid(id: i32) -> bool {
  return id >= 0 && u32(id) < p.vocab;
}

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= p.n * p.cols) { return; }
  let id = ids[i / p.cols];
  out[i] = select(bitcast<f32>(NAN_BITS), f32(w[u32(id) * p.cols + i % p.cols]), valid(id));
}

@compute @workgroup_size(256)
fn forward4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= p.n * p.cols) { return; }
  let id = ids[i / p.cols];
  if (!valid(id)) {
    out4[i] = vec4<f32>(bitcast<f32>(NAN_BITS));
    return;
  }
  out4[i] = vec4<f32>(w4[u32(id) * p.cols + i % p.cols]);
}

// Count of `hit`s across the workgroup (each thread passes its own), uniform, and reset for reuse.
fn count_hits(tid: u32, hit: bool) -> u32 {
  if (hit) { atomicAdd(&count, 1u); }
  workgroupBarrier();
  if (tid == 0u) { count_seen = atomicExchange(&count, 0u); }
  return workgroupUniformLoad(&count_seen);
}

// Shared by backward and backward4: returns the owned row, or −1 when this position is not the first
// occurrence of its id (or the id is invalid). Uniform across the workgroup.
fn owned_row(n: u32, tid: u32) -> i32 {
  let id = ids[n];
  if (!valid(id)) { return -1; }
  var earlier = false;
  for (var m = tid; m < n; m += WG) {
    earlier = earlier || ids[m] == id;
  }
  if (count_hits(tid, earlier) > 0u) { return -1; }
  return id;
}

@compute @workgroup_size(WG)
fn backward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let n = wid.x + wid.y * nwg.x;
  if (n >= p.n) { return; }
  let id = owned_row(n, tid);
  if (id < 0) { return; }
  let row = u32(id) * p.cols;
  for (var c = tid; c < p.cols; c += WG) { dw[row + c] = g[n * p.cols + c]; }
  for (var m0 = n + 1u; m0 < p.n; m0 += WG) {
    let m = m0 + tid;
    let hit = m < p.n && ids[m] == id;
    hits[tid] = select(0u, 1u, hit);
    if (count_hits(tid, hit) > 0u) {
      for (var j = 0u; j < WG; j++) {
        if (hits[j] != 0u) {
          let src = (m0 + j) * p.cols;
          for (var c = tid; c < p.cols; c += WG) { dw[row + c] += g[src + c]; }
        }
      }
    }
    workgroupBarrier(); // hits[] is rewritten by the next chunk
  }
}

@compute @workgroup_size(WG)
fn backward4(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let n = wid.x + wid.y * nwg.x;
  if (n >= p.n) { return; }
  let id = owned_row(n, tid);
  if (id < 0) { return; }
  let row = u32(id) * p.cols;
  for (var c = tid; c < p.cols; c += WG) { dw4[row + c] = g4[n * p.cols + c]; }
  for (var m0 = n + 1u; m0 < p.n; m0 += WG) {
    let m = m0 + tid;
    let hit = m < p.n && ids[m] == id;
    hits[tid] = select(0u, 1u, hit);
    if (count_hits(tid, hit) > 0u) {
      for (var j = 0u; j < WG; j++) {
        if (hits[j] != 0u) {
          let src = (m0 + j) * p.cols;
          for (var c = tid; c < p.cols; c += WG) { dw4[row + c] += g4[src + c]; }
        }
      }
    }
    workgroupBarrier(); // hits[] is rewritten by the next chunk
  }
}
