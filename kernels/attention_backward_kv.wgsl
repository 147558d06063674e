// attention_backward_kv — A LIBRARY, not a kernel: grad_kv's side of kernels/attention_backward.wgsl
// (the query range and dS slot numbering of a key tile, P and dS of a tile, the dS tile and dk/dv
// stores, the sum_kv entry, the merged phase B of MERGE_B, and the SPLIT roles below). The launcher appends it, after
// attention_backward_tiles.wgsl, through the kernel spec's `libs`; the declarations it uses are in the
// kernel file.

// Queries [first, end) that can see any key of the tile starting at k0 (first is tile-aligned). Both
// grad_kv's loop and the dS slot numbering use it, so grad_q_ds finds exactly the tiles written.
fn qRange(k0: u32) -> vec2<u32> {
  let off = i32(p.S) - i32(p.T);
  var qFirst = 0u;
  if (p.causal != 0u) { qFirst = (u32(clamp(i32(k0) - off, 0, i32(p.T))) / 64u) * 64u; }
  var qEnd = p.T;
  if (p.window != 0u) {
    qEnd = u32(clamp(i32(min(k0 + 63u, p.S - 1u)) + i32(p.window) - off, 0, i32(p.T)));
  }
  return vec2(qFirst, qEnd);
}

// Query tiles in a qRange (dS slots of that key tile).
fn pairs(r: vec2<u32>) -> u32 {
  return select(0u, (r.y + 63u) / 64u - r.x / 64u, r.y > r.x);
}

// exp2(x · scale2 − l2) where visible, else 0; `fixed` (the tile row, i.e. a key in grad_kv and a
// query in grad_q) with the four columns c0 .. c0 + 3.
fn probs(x: vec4<f32>, l2: vec4<f32>, fixed: u32, c0: u32, kv: bool) -> vec4<f32> {
  let e = exp2(fma(x, vec4(p.scale2), -l2));
  var m: vec4<bool>;
  for (var j = 0u; j < 4u; j++) {
    if (kv) { m[j] = visible(c0 + j, fixed); } else { m[j] = visible(fixed, c0 + j); }
  }
  return select(vec4(0.0), e, m);
}

// P and dS of the current tile from s, p (rows = keys, columns = queries): P into s*, dS into p*.
fn softmaxKV(lid: u32) {
  let tx = lid % 16u;
  let ty = lid / 16u;
  var l2: vec4<f32>;
  var dl: vec4<f32>;
  for (var j = 0u; j < 4u; j++) {
    let x = ld[(bb * p.H + hq) * p.T + min(qt0 + 4u * tx + j, p.T - 1u)];
    l2[j] = x.x;
    dl[j] = x.y;
  }
  let q4 = qt0 + 4u * tx;
  let k4 = kt0 + 4u * ty;
  s0 = probs(s0, l2, k4, q4, true);
  s1 = probs(s1, l2, k4 + 1u, q4, true);
  s2 = probs(s2, l2, k4 + 2u, q4, true);
  s3 = probs(s3, l2, k4 + 3u, q4, true);
  p0 = s0 * (p0 - dl);
  p1 = s1 * (p1 - dl);
  p2 = s2 * (p2 - dl);
  p3 = s3 * (p3 - dl);
}

// grad_kv: this thread's dS rows 4ty + i (keys), query vec4 tx, from p0..p3, to the tile at `base`.
fn storeDS(base: u32, lid: u32) {
  let at = base + (lid / 16u) * 64u + lid % 16u;
  dsb[at] = p0;
  dsb[at + 16u] = p1;
  dsb[at + 32u] = p2;
  dsb[at + 48u] = p3;
}

// Key rows first + 4ty + i (< rows), columns tx + 16g (vec4), times `scale`, to dk (buf 1, from a*)
// or dv (buf 2, from v*) at vec4 base + row · stride + column. dq has its own storeQ so grad_kv's
// "auto" layout leaves dq out (8 storage buffers at most per entry).
fn storeRows(buf: u32, rows: u32, first: u32, base: u32, stride: u32, lid: u32, scale: f32) {
  let tx = lid % 16u;
  let ty = lid / 16u;
  for (var i = 0u; i < 4u; i++) {
    let row = first + 4u * ty + i;
    for (var g = 0u; g < DV; g++) {
      let d4 = tx + 16u * g;
      if (row >= rows || d4 >= D4) { continue; }
      let x = accAt(i * 2u + g + select(0u, 8u, buf == 2u)) * scale;
      let at = base + row * stride + d4;
      if (buf == 1u) { dk[at] = x; } else { dv[at] = x; }
    }
  }
}

@compute @workgroup_size(256)
fn sum_kv(@builtin(global_invocation_id) gid: vec3<u32>) {
  let e = gid.x + gid.y * p.nx * 256u; // vec4 (row, d4) of [B·S·Hkv, D/4]
  if (e >= p.B * p.S * p.Hkv * D4) { return; }
  let row = e / D4;
  let d4 = e % D4;
  var sk = vec4(0.0);
  var sv = vec4(0.0);
  for (var r = 0u; r < p.R; r++) {
    let at = (row * p.R + r) * D4 + d4;
    if (WANT_K) { sk += dk[at]; }
    if (WANT_V) { sv += dv[at]; }
  }
  if (WANT_K) { dkSum[e] = sk; }
  if (WANT_V) { dvSum[e] = sv; }
}

// MERGE_B (grad_kv with dk and dv): dv += Pᵀ·dO and dk += dSᵀ·q in one pass over the 64 query rows
// (half phase B's barriers). P at sm[0, 1024), dS at [1024, 2048) (putTile), dO and q rows staged at
// 2048 + buf·32·DS4 and 16·DS4 above. The caller has written both tiles since phase A's final barrier.
fn loadBKV(n0: u32, lid: u32) {
  r0 = ldB(1u, n0, lid);
  r1 = ldB(1u, n0, lid + 256u);
  r2 = ldB(2u, n0, lid);
  r3 = ldB(2u, n0, lid + 256u);
}

fn storeBKV(buf: u32, lid: u32) {
  let o = 2048u + buf * 32u * DS4;
  sm[o + lid] = r0;
  sm[o + 16u * DS4 + lid] = r2;
  if (lid + 256u < 16u * DS4) {
    sm[o + lid + 256u] = r1;
    sm[o + 16u * DS4 + lid + 256u] = r3;
  }
}

fn phaseBKV(lid: u32) {
  let tx = lid % 16u;
  let ty = lid / 16u;
  loadBKV(0u, lid);
  storeBKV(0u, lid);
  workgroupBarrier();
  for (var nc = 0u; nc < 4u; nc++) {
    let more = nc + 1u < 4u;
    if (more) { loadBKV(16u * (nc + 1u), lid); }
    let o = 2048u + (nc % NBUF) * 32u * DS4 + tx;
    for (var n = 0u; n < 16u; n++) {
      let col = 16u * nc + n;
      let at = col * 16u + (ty ^ (col / 4u));
      let yo = o + n * DS4;
      let yq = yo + 16u * DS4;
      var yo1 = vec4(0.0);
      var yq1 = vec4(0.0);
      if (DV > 1u) {
        yo1 = sm[yo + 16u];
        yq1 = sm[yq + 16u];
      }
      stepB(true, sm[at], sm[yo], yo1);
      stepB(false, sm[1024u + at], sm[yq], yq1);
    }
    if (NBUF == 1u) { workgroupBarrier(); }
    if (more) { storeBKV((nc + 1u) % NBUF, lid); }
    workgroupBarrier();
  }
}

// ---- SPLIT (grad_kv with MERGE_B): the 256 threads in two roles of 128 (whole subgroups), role 0
// S = K·Qᵀ → P → dv += Pᵀ·dO, role 1 dP = V·dOᵀ → dS → dk += dSᵀ·q. Thread (tx, ty) = (lr % 16,
// lr / 16) of a role (lr = lid % 128) owns 8 keys × 4 queries of its score tile (keys 8ty + i in s0..s3
// for i < 4 and p0..p3 for i ≥ 4, queries 4tx + j in the components) and 8 keys × 8 columns of its
// gradient (key 8ty + i, column vec4 tx + 16g at a*/v* index 2i + g, a* for i < 4, v* above): per
// phase-A d 3 vec4 reads for 32 FMAs (6 for 32 in the shared layout), per phase-B row 4 for 64
// (6 for 64). The price: role 1 reads P back from `sm` (one barrier more per tile).

// Role-0/1 thread: (tx, ty) and the offsets of its X (K or V) and Y (Q or dO) operands in a phase-A chunk.
fn splitA(lid: u32) -> vec2<u32> {
  let role = lid / 128u;
  let lr = lid % 128u;
  return vec2(2u * role * AOP + 2u * (lr / 16u), (2u * role + 1u) * AOP + lr % 16u);
}

fn stepSplit(ox: u32, oy: u32) {
  let x0 = sm[ox];
  let x1 = sm[ox + 1u];
  let y = sm[oy];
  s0 = fma(vec4(x0.x), y, s0);
  s1 = fma(vec4(x0.y), y, s1);
  s2 = fma(vec4(x0.z), y, s2);
  s3 = fma(vec4(x0.w), y, s3);
  p0 = fma(vec4(x1.x), y, p0);
  p1 = fma(vec4(x1.y), y, p1);
  p2 = fma(vec4(x1.z), y, p2);
  p3 = fma(vec4(x1.w), y, p3);
}

// The 8 × 4 block in s*, p* to the transposed tile at sm[o, o + 1024) (putTile's layout: column c =
// 4tx + j, key vec4 2ty (s*) and 2ty + 1 (p*) XOR c / 4 = tx).
fn putTile8(o: u32, tx: u32, ty: u32) {
  let c = o + 64u * tx;
  let a = (2u * ty) ^ tx;
  let b = (2u * ty + 1u) ^ tx;
  sm[c + a] = vec4(s0.x, s1.x, s2.x, s3.x);
  sm[c + 16u + a] = vec4(s0.y, s1.y, s2.y, s3.y);
  sm[c + 32u + a] = vec4(s0.z, s1.z, s2.z, s3.z);
  sm[c + 48u + a] = vec4(s0.w, s1.w, s2.w, s3.w);
  sm[c + b] = vec4(p0.x, p1.x, p2.x, p3.x);
  sm[c + 16u + b] = vec4(p0.y, p1.y, p2.y, p3.y);
  sm[c + 32u + b] = vec4(p0.z, p1.z, p2.z, p3.z);
  sm[c + 48u + b] = vec4(p0.w, p1.w, p2.w, p3.w);
}

// Role 0: P from S, to the tile at sm[0, 1024).
fn probsSplit(tx: u32, ty: u32) {
  var l2: vec4<f32>;
  for (var j = 0u; j < 4u; j++) { l2[j] = ld[(bb * p.H + hq) * p.T + min(qt0 + 4u * tx + j, p.T - 1u)].x; }
  let q4 = qt0 + 4u * tx;
  let k8 = kt0 + 8u * ty;
  s0 = probs(s0, l2, k8, q4, true);
  s1 = probs(s1, l2, k8 + 1u, q4, true);
  s2 = probs(s2, l2, k8 + 2u, q4, true);
  s3 = probs(s3, l2, k8 + 3u, q4, true);
  p0 = probs(p0, l2, k8 + 4u, q4, true);
  p1 = probs(p1, l2, k8 + 5u, q4, true);
  p2 = probs(p2, l2, k8 + 6u, q4, true);
  p3 = probs(p3, l2, k8 + 7u, q4, true);
  putTile8(0u, tx, ty);
}

// Role 1: dS = P ⊙ (dP − Δ) with P read back from the tile, to the tile at sm[1024, 2048) and (DS_OUT)
// to dsb at `dsAt` (storeDS's layout: key row n at 16n).
fn dsSplit(tx: u32, ty: u32, dsAt: u32) {
  var dl: vec4<f32>;
  for (var j = 0u; j < 4u; j++) { dl[j] = ld[(bb * p.H + hq) * p.T + min(qt0 + 4u * tx + j, p.T - 1u)].y; }
  let c = 64u * tx;
  let a = (2u * ty) ^ tx;
  let b = (2u * ty + 1u) ^ tx;
  var t0 = sm[c + a];
  var t1 = sm[c + 16u + a];
  var t2 = sm[c + 32u + a];
  var t3 = sm[c + 48u + a];
  s0 = vec4(t0.x, t1.x, t2.x, t3.x) * (s0 - dl);
  s1 = vec4(t0.y, t1.y, t2.y, t3.y) * (s1 - dl);
  s2 = vec4(t0.z, t1.z, t2.z, t3.z) * (s2 - dl);
  s3 = vec4(t0.w, t1.w, t2.w, t3.w) * (s3 - dl);
  t0 = sm[c + b];
  t1 = sm[c + 16u + b];
  t2 = sm[c + 32u + b];
  t3 = sm[c + 48u + b];
  p0 = vec4(t0.x, t1.x, t2.x, t3.x) * (p0 - dl);
  p1 = vec4(t0.y, t1.y, t2.y, t3.y) * (p1 - dl);
  p2 = vec4(t0.z, t1.z, t2.z, t3.z) * (p2 - dl);
  p3 = vec4(t0.w, t1.w, t2.w, t3.w) * (p3 - dl);
  putTile8(1024u, tx, ty);
  if (DS_OUT) {
    let at = dsAt + 128u * ty + tx;
    dsb[at] = s0;
    dsb[at + 16u] = s1;
    dsb[at + 32u] = s2;
    dsb[at + 48u] = s3;
    dsb[at + 64u] = p0;
    dsb[at + 80u] = p1;
    dsb[at + 96u] = p2;
    dsb[at + 112u] = p3;
  }
}

// After phase A (which ends with a barrier): P, dS, then dv += Pᵀ·dO (role 0) and dk += dSᵀ·q
// (role 1) over the 64 query rows, staged as in phaseBKV. Ends with a barrier.
fn phaseBSplit(lid: u32, dsAt: u32) {
  let role = lid / 128u;
  let lr = lid % 128u;
  let tx = lr % 16u;
  let ty = lr / 16u;
  if (role == 0u) { probsSplit(tx, ty); }
  loadBKV(0u, lid);
  storeBKV(0u, lid);
  workgroupBarrier();
  if (role == 1u) { dsSplit(tx, ty, dsAt); }
  workgroupBarrier();
  let to = role * 1024u;
  for (var nc = 0u; nc < 4u; nc++) {
    let more = nc + 1u < 4u;
    if (more) { loadBKV(16u * (nc + 1u), lid); }
    let o = 2048u + (nc % NBUF) * 32u * DS4 + role * 16u * DS4 + tx;
    for (var n = 0u; n < 16u; n++) {
      let col = 16u * nc + n;
      let at = to + col * 16u;
      let sw = col / 4u;
      let y0 = sm[o + n * DS4];
      var y1 = vec4(0.0);
      if (DV > 1u) { y1 = sm[o + n * DS4 + 16u]; }
      stepB(false, sm[at + ((2u * ty) ^ sw)], y0, y1); // keys 8ty .. + 3 into a*
      stepB(true, sm[at + ((2u * ty + 1u) ^ sw)], y0, y1); // keys 8ty + 4 .. + 7 into v*
    }
    if (NBUF == 1u) { workgroupBarrier(); }
    if (more) { storeBKV((nc + 1u) % NBUF, lid); }
    workgroupBarrier();
  }
}

// Role 0's dv or role 1's dk (times `scale`) rows kt0 + 8ty + i to slot vec4 base + row · stride + column.
fn storeSplit(base: u32, stride: u32, lid: u32) {
  let role = lid / 128u;
  let lr = lid % 128u;
  for (var i = 0u; i < 8u; i++) {
    let row = kt0 + 8u * (lr / 16u) + i;
    for (var g = 0u; g < DV; g++) {
      let d4 = lr % 16u + 16u * g;
      if (row >= p.S || d4 >= D4) { continue; }
      let x = accAt(2u * i + g); // a* for i < 4, v* for i ≥ 4 (8 + 2(i − 4) + g)
      let at = base + row * stride + d4;
      if (role == 1u) { dk[at] = x * p.scale; } else { dv[at] = x; }
    }
  }
}
