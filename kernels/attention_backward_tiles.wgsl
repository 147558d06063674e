// attention_backward_tiles — A LIBRARY, not a kernel: the 64×64 tile machinery of
// kernels/attention_backward.wgsl (mask, operand loads, phase A: S and dP over the head dim staged
// transposed; phase B: acc += Tᵀ·Y over the tile's rows with the swizzled P / dS tile; grad_q_ds's dS
// tile loads; the gradient stores). grad_kv's own pieces are in attention_backward_kv.wgsl. The launcher (src/ops/attention_backward.ts) appends it to that file through the kernel
// spec's `libs`; the declarations these functions use (Params, overrides, bindings, `sm`, the named vec4
// registers) and the phase layouts are described there. Split off so the kernel file reads as
// declarations + entry points.

fn visible(i: u32, j: u32) -> bool {
  let pos = i32(i) + i32(p.S) - i32(p.T);
  let jj = i32(j);
  return i < p.T && j < p.S && (p.causal == 0u || jj <= pos) && (p.window == 0u || pos - jj < i32(p.window));
}

// vec4 d4 of query row t (q or dout) / key row s (k or v) of the current heads; 0 past the tensor.
fn ldQ(t: u32, d4: u32) -> vec4<f32> {
  if (t >= p.T || d4 >= D4) { return vec4<f32>(0.0); }
  return q[((bb * p.T + t) * p.H + hq) * D4 + d4];
}
fn ldO(t: u32, d4: u32) -> vec4<f32> {
  if (t >= p.T || d4 >= D4) { return vec4<f32>(0.0); }
  return dout[((bb * p.T + t) * p.H + hq) * D4 + d4];
}
fn ldK(s: u32, d4: u32) -> vec4<f32> {
  if (s >= p.S || d4 >= D4) { return vec4<f32>(0.0); }
  return k[((bb * p.S + s) * p.Hkv + kvh) * D4 + d4];
}
fn ldV(s: u32, d4: u32) -> vec4<f32> {
  if (s >= p.S || d4 >= D4) { return vec4<f32>(0.0); }
  return v[((bb * p.S + s) * p.Hkv + kvh) * D4 + d4];
}

// ---- Phase A: s = X1·Y1ᵀ, p = X2·Y2ᵀ (grad_q: X = q, dout; Y = k, v. grad_kv: X = k, v; Y = q, dout).

// This thread's share of d chunk `ch`: row lid / 4, vec4 lid % 4 of each operand (coalesced loads),
// into r0..r3; with AD = 32 also vec4 4 + lid % 4 (the chunk's second 16 d) into r4..r7.
fn loadA(forKV: bool, wantP: bool, ch: u32, lid: u32) {
  let row = lid / 4u;
  let d4 = (AD / 4u) * ch + lid % 4u;
  if (forKV) {
    r0 = ldK(kt0 + row, d4);
    r1 = ldQ(qt0 + row, d4);
    if (wantP) {
      r2 = ldV(kt0 + row, d4);
      r3 = ldO(qt0 + row, d4);
    }
    if (AD == 32u) {
      r4 = ldK(kt0 + row, d4 + 4u);
      r5 = ldQ(qt0 + row, d4 + 4u);
      if (wantP) {
        r6 = ldV(kt0 + row, d4 + 4u);
        r7 = ldO(qt0 + row, d4 + 4u);
      }
    }
  } else {
    r0 = ldQ(qt0 + row, d4);
    r1 = ldK(kt0 + row, d4);
    r2 = ldO(qt0 + row, d4);
    r3 = ldV(kt0 + row, d4);
    if (AD == 32u) {
      r4 = ldQ(qt0 + row, d4 + 4u);
      r5 = ldK(kt0 + row, d4 + 4u);
      r6 = ldO(qt0 + row, d4 + 4u);
      r7 = ldV(kt0 + row, d4 + 4u);
    }
  }
}

fn putT(o: u32, row: u32, x: vec4<f32>) {
  let at = o + row / 4u;
  let c = row % 4u;
  sm[at][c] = x.x;
  sm[at + RS][c] = x.y;
  sm[at + 2u * RS][c] = x.z;
  sm[at + 3u * RS][c] = x.w;
}

fn storeA(wantP: bool, buf: u32, lid: u32) {
  let o = buf * 4u * AOP + 4u * (lid % 4u) * RS;
  let row = lid / 4u;
  putT(o, row, r0);
  putT(o + AOP, row, r1);
  if (wantP) {
    putT(o + 2u * AOP, row, r2);
    putT(o + 3u * AOP, row, r3);
  }
  if (AD == 32u) {
    let o2 = o + 16u * RS;
    putT(o2, row, r4);
    putT(o2 + AOP, row, r5);
    if (wantP) {
      putT(o2 + 2u * AOP, row, r6);
      putT(o2 + 3u * AOP, row, r7);
    }
  }
}

fn stepA(wantP: bool, o: u32, tx: u32, ty: u32) {
  let x = sm[o + ty];
  let y = sm[o + AOP + tx];
  s0 = fma(vec4(x.x), y, s0);
  s1 = fma(vec4(x.y), y, s1);
  s2 = fma(vec4(x.z), y, s2);
  s3 = fma(vec4(x.w), y, s3);
  if (wantP) {
    let x2 = sm[o + 2u * AOP + ty];
    let y2 = sm[o + 3u * AOP + tx];
    p0 = fma(vec4(x2.x), y2, p0);
    p1 = fma(vec4(x2.y), y2, p1);
    p2 = fma(vec4(x2.z), y2, p2);
    p3 = fma(vec4(x2.w), y2, p3);
  }
}

// Ends with a barrier: `sm` is free for the caller when it returns.
fn phaseA(forKV: bool, lid: u32) {
  let wantP = !forKV || WANT_K || DS_OUT;
  let tx = lid % 16u;
  let ty = lid / 16u;
  let sp = splitA(lid); // SPLIT (grad_kv): this role's operand offsets
  s0 = vec4(0.0);
  s1 = vec4(0.0);
  s2 = vec4(0.0);
  s3 = vec4(0.0);
  p0 = vec4(0.0);
  p1 = vec4(0.0);
  p2 = vec4(0.0);
  p3 = vec4(0.0);
  loadA(forKV, wantP, 0u, lid);
  storeA(wantP, 0u, lid);
  workgroupBarrier();
  for (var ch = 0u; ch < NC; ch++) {
    let more = ch + 1u < NC;
    if (more) { loadA(forKV, wantP, ch + 1u, lid); }
    let o = (ch % NBUF) * 4u * AOP;
    for (var c = 0u; c < AD; c++) {
      let oc = o + c * RS;
      if (SPLIT && forKV) { stepSplit(oc + sp.x, oc + sp.y); } else { stepA(wantP, oc, tx, ty); }
    }
    if (NBUF == 1u) { workgroupBarrier(); }
    if (more) { storeA(wantP, (ch + 1u) % NBUF, lid); }
    workgroupBarrier();
  }
}

// ---- Phase B: acc(row 4ty + i) += Σ_n T[n][row] · Y[n][cols] over the 64 tile rows n of Y.

// The transposed tile T (P or dS) at sm[0, 1024): column `col` of the score tile (n above) holds
// rows 4ty..4ty+3 at vec4 col · 16 + (ty ^ (col / 4)).
// (MERGE_B: a second tile, dS, at sm[1024, 2048): `o` = 1024.)
fn putTile(lid: u32, o: u32, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>) {
  let tx = lid % 16u;
  let ty = lid / 16u;
  let at = o + 64u * tx + (ty ^ tx);
  sm[at] = vec4(x0.x, x1.x, x2.x, x3.x);
  sm[at + 16u] = vec4(x0.y, x1.y, x2.y, x3.y);
  sm[at + 32u] = vec4(x0.z, x1.z, x2.z, x3.z);
  sm[at + 48u] = vec4(x0.w, x1.w, x2.w, x3.w);
}

// Vec4 e of rows n0 .. n0 + 15 of Y (0: k, 1: dout, 2: q); 0 past them.
fn ldB(which: u32, n0: u32, e: u32) -> vec4<f32> {
  let n = n0 + e / DS4;
  let d4 = e % DS4;
  if (e >= 16u * DS4) { return vec4(0.0); }
  if (which == 0u) { return ldK(kt0 + n, d4); }
  if (which == 1u) { return ldO(qt0 + n, d4); }
  return ldQ(qt0 + n, d4);
}

// This thread's vec4 e = lid and lid + 256 of those rows.
fn loadB(which: u32, n0: u32, lid: u32) {
  r0 = ldB(which, n0, lid);
  r1 = ldB(which, n0, lid + 256u);
}

fn storeB(buf: u32, lid: u32) {
  let o = 1024u + buf * 16u * DS4;
  sm[o + lid] = r0;
  if (lid + 256u < 16u * DS4) { sm[o + lid + 256u] = r1; }
}

fn stepB(toV: bool, t: vec4<f32>, y0: vec4<f32>, y1: vec4<f32>) {
  if (toV) {
    v0 = fma(vec4(t.x), y0, v0);
    v2 = fma(vec4(t.y), y0, v2);
    v4 = fma(vec4(t.z), y0, v4);
    v6 = fma(vec4(t.w), y0, v6);
    if (DV > 1u) {
      v1 = fma(vec4(t.x), y1, v1);
      v3 = fma(vec4(t.y), y1, v3);
      v5 = fma(vec4(t.z), y1, v5);
      v7 = fma(vec4(t.w), y1, v7);
    }
  } else {
    a0 = fma(vec4(t.x), y0, a0);
    a2 = fma(vec4(t.y), y0, a2);
    a4 = fma(vec4(t.z), y0, a4);
    a6 = fma(vec4(t.w), y0, a6);
    if (DV > 1u) {
      a1 = fma(vec4(t.x), y1, a1);
      a3 = fma(vec4(t.y), y1, a3);
      a5 = fma(vec4(t.z), y1, a5);
      a7 = fma(vec4(t.w), y1, a7);
    }
  }
}

// The caller has written the tile (putTile) since phase A's final barrier. Ends with a barrier.
fn phaseB(which: u32, toV: bool, lid: u32) {
  let tx = lid % 16u;
  let ty = lid / 16u;
  loadB(which, 0u, lid);
  storeB(0u, lid);
  workgroupBarrier();
  for (var nc = 0u; nc < 4u; nc++) {
    let more = nc + 1u < 4u;
    if (more) { loadB(which, 16u * (nc + 1u), lid); }
    let o = 1024u + (nc % NBUF) * 16u * DS4 + tx;
    for (var n = 0u; n < 16u; n++) {
      let col = 16u * nc + n;
      let t = sm[col * 16u + (ty ^ (col / 4u))];
      var y1 = vec4(0.0);
      if (DV > 1u) { y1 = sm[o + n * DS4 + 16u]; }
      stepB(toV, t, sm[o + n * DS4], y1);
    }
    if (NBUF == 1u) { workgroupBarrier(); }
    if (more) { storeB((nc + 1u) % NBUF, lid); }
    workgroupBarrier();
  }
}

// ---- dS tiles (DS_OUT; layout in the kernel header): 1024 vec4 per tile, row (key) n at 16n.

// grad_q_ds: the dS tile of key tile j0 for query tile qt0 (first dS slot of j0: slot0) into s0..s3,
// this thread's vec4 lid + 256u; zeros when j0's qRange misses qt0.
fn fetchDS(j0: u32, slot0: u32, lid: u32) {
  let r = qRange(j0);
  s0 = vec4(0.0);
  s1 = vec4(0.0);
  s2 = vec4(0.0);
  s3 = vec4(0.0);
  if (qt0 < r.x || qt0 >= r.y) { return; }
  let at = ((bb * p.H + hq) * p.nslot + slot0 + (qt0 - r.x) / 64u) * 1024u + lid;
  s0 = dsb[at];
  s1 = dsb[at + 256u];
  s2 = dsb[at + 512u];
  s3 = dsb[at + 768u];
}

// s0..s3 to sm as phase B's transposed tile: key n's query vec4 c at 16n + (c ^ (n / 4)).
fn putDS(lid: u32) {
  let c = lid % 16u;
  for (var u = 0u; u < 4u; u++) {
    let n = lid / 16u + 16u * u;
    var x = s0;
    if (u == 1u) { x = s1; } else if (u == 2u) { x = s2; } else if (u == 3u) { x = s3; }
    sm[n * 16u + (c ^ (n / 4u))] = x;
  }
}

// Accumulator 2i + g of the a* set (sel < 8) or the v* set (sel - 8).
fn accAt(sel: u32) -> vec4<f32> {
  switch sel {
    case 0u: { return a0; }
    case 1u: { return a1; }
    case 2u: { return a2; }
    case 3u: { return a3; }
    case 4u: { return a4; }
    case 5u: { return a5; }
    case 6u: { return a6; }
    case 7u: { return a7; }
    case 8u: { return v0; }
    case 9u: { return v1; }
    case 10u: { return v2; }
    case 11u: { return v3; }
    case 12u: { return v4; }
    case 13u: { return v5; }
    case 14u: { return v6; }
    default: { return v7; }
  }
}

fn storeQ(lid: u32) {
  let tx = lid % 16u;
  let ty = lid / 16u;
  for (var i = 0u; i < 4u; i++) {
    let t = qt0 + 4u * ty + i;
    for (var g = 0u; g < DV; g++) {
      let d4 = tx + 16u * g;
      if (t >= p.T || d4 >= D4) { continue; }
      dq[((bb * p.T + t) * p.H + hq) * D4 + d4] = accAt(i * 2u + g) * p.scale;
    }
  }
}
