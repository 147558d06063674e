// matmul_stage — library of kernels/matmul.wgsl (appended by the runtime, KernelSpec.libs): how `main`
// moves one BK-deep slab of A and B from global memory (vec4 loads through the A4/B4 views declared in
// matmul.wgsl; HALF_B: 8 halves per vec4<u32> load) into the workgroup tiles As and Bs, transposing
// an operand stored K-contiguous (A, or Bᵀ) on the way. Uses matmul.wgsl's overrides, bindings,
// workgroup arrays and per-workgroup origin (m0, n0, aBase, bBase, kEnd); not a kernel on its own.

// Slab vec4 q of A: transposed A is contiguous along m (BM/4 vec4 per k), plain A along k.
fn fetchA(q: u32, k0: u32) -> vec4<f32> {
  if (TRANS_A) {
    let k = k0 + q / (BM / 4u);
    let m = m0 + 4u * (q % (BM / 4u));
    if (k >= kEnd || m >= p.M) { return vec4(0.0); }
    return vec4<f32>(A4[(aBase + k * p.M + m) / 4u]);
  }
  let m = m0 + q / (BK / 4u);
  let k = k0 + 4u * (q % (BK / 4u));
  if (m >= p.M || k >= kEnd) { return vec4(0.0); }
  return vec4<f32>(A4[(aBase + m * p.K + k) / 4u]);
}

fn fetchB(q: u32, k0: u32) -> vec4<f32> {
  if (TRANS_B) {
    let n = n0 + q / (BK / 4u);
    let k = k0 + 4u * (q % (BK / 4u));
    if (n >= p.N || k >= kEnd) { return vec4(0.0); }
    return vec4<f32>(B4[(bBase + n * p.K + k) / 4u]);
  }
  let k = k0 + q / (BN / 4u);
  let n = n0 + 4u * (q % (BN / 4u));
  if (k >= kEnd || n >= p.N) { return vec4(0.0); }
  return vec4<f32>(B4[(bBase + k * p.N + n) / 4u]);
}

// HALF_B: octet q of the B slab, 8 halves along B's contiguous dimension (k for Bᵀ, n otherwise), as
// (n, k) in the tile. Bᵀ octets go to consecutive n (B_NFAST: every scalar store of a warp hits its own
// bank) or to consecutive k of one n (two threads read one 32-byte sector). Octets never straddle kEnd
// or N: K (or N), kChunk and BK are multiples of 8.
fn octetB(q: u32) -> vec2<u32> {
  if (!TRANS_B) { return vec2(8u * (q % (BN / 8u)), q / (BN / 8u)); }
  if (B_NFAST) { return vec2(q % BN, 8u * (q / BN)); }
  let per = max(BK / 8u, 1u);
  return vec2(q / per, 8u * (q % per));
}

fn fetchBh(q: u32, k0: u32) -> vec4<u32> {
  let nk = octetB(q);
  let n = n0 + nk.x;
  let k = k0 + nk.y;
  if (n >= p.N || k >= kEnd) { return vec4(0u); }
  var i = bBase + k * p.N + n;
  if (TRANS_B) { i = bBase + n * p.K + k; }
  return vec4<u32>(B4[i / 8u]); // the identity for TB = u32 (type-checks for f32/f16)
}

fn putA(buf: u32, q: u32, v: vec4<f32>) {
  if (TRANS_A) {
    As[(buf * BK + q / (BM / 4u)) * SA + q % (BM / 4u)] = v;
    return;
  }
  // Transposing store: 4 consecutive k of one m go to 4 k rows.
  let m = q / (BK / 4u);
  let r = (buf * BK + 4u * (q % (BK / 4u))) * SA + m / 4u;
  As[r][m % 4u] = v.x;
  As[r + SA][m % 4u] = v.y;
  As[r + 2u * SA][m % 4u] = v.z;
  As[r + 3u * SA][m % 4u] = v.w;
}

// Transposing store of Bᵀ: 4 consecutive k (from k) of column n go to 4 k rows.
fn putBT(buf: u32, n: u32, k: u32, v: vec4<f32>) {
  let r = (buf * BK + k) * SB + n / 4u;
  Bs[r][n % 4u] = v.x;
  Bs[r + SB][n % 4u] = v.y;
  Bs[r + 2u * SB][n % 4u] = v.z;
  Bs[r + 3u * SB][n % 4u] = v.w;
}

fn putB(buf: u32, q: u32, v: vec4<f32>) {
  if (TRANS_B) {
    putBT(buf, q / (BK / 4u), 4u * (q % (BK / 4u)), v);
    return;
  }
  Bs[(buf * BK + q / (BN / 4u)) * SB + q % (BN / 4u)] = v;
}

fn putBh(buf: u32, q: u32, w: vec4<u32>) {
  let lo = vec4(unpack2x16float(w.x), unpack2x16float(w.y));
  let hi = vec4(unpack2x16float(w.z), unpack2x16float(w.w));
  let nk = octetB(q);
  if (TRANS_B) {
    putBT(buf, nk.x, nk.y, lo);
    putBT(buf, nk.x, nk.y + 4u, hi);
    return;
  }
  let r = (buf * BK + nk.y) * SB;
  if (COLS8) {
    // Column permutation: slot c holds columns 8c..8c+3, slot c + TX columns 8c+4..8c+7, so each of the
    // two stores of a warp writes consecutive vec4 (no 2-way bank conflict) and thread tx owns the 8
    // consecutive columns 8tx..8tx+7 (see `main`'s epilogue).
    Bs[r + nk.x / 8u] = lo;
    Bs[r + nk.x / 8u + TX] = hi;
    return;
  }
  Bs[r + nk.x / 4u] = lo;
  Bs[r + nk.x / 4u + 1u] = hi;
}
