// attention_forward_tiles — A LIBRARY, not a kernel: the tile steps of kernels/attention_forward.wgsl
// (global loads and their prefetch registers, the swizzled staging stores, the S = Q·Kᵀ and O += P·V
// chunks, masking, the online-softmax update and the output store). The launcher (src/ops/attention.ts)
// appends it to that file through the kernel spec's `libs`; the declarations these functions use
// (Params, overrides, bindings, `stage`, `ps`, the named vec4 registers) and the layouts they follow are
// described there. Split off so the kernel file reads as declarations + the flash loop.

// Vec4 e (< 64·CW) of Q chunk c: row e / CW, head-dim columns 4·(CW·c + e % CW) .. + 3; zero outside.
fn fetchQ(e: u32, c: u32) -> vec4<f32> {
  let t = q0 + e / CW;
  let d = 4u * (c * CW + e % CW);
  if (t >= p.T || d >= D) { return vec4<f32>(0.0); }
  return q[(qBase + t * p.H * D + d) / 4u] * p.scale2;
}

fn fetchK(e: u32, k0: u32, c: u32) -> vec4<f32> {
  let s = k0 + e / CW;
  let d = 4u * (c * CW + e % CW);
  if (s >= p.S || d >= D) { return vec4<f32>(0.0); }
  return k[(kBase + s * p.Hkv * D + d) / 4u];
}

// Vec4 e (< 128·CW) of the VK-key V chunk at key s0: key s0 + e / 32, columns 4(e % 32) .. + 3.
fn fetchV(e: u32, s0: u32) -> vec4<f32> {
  let s = s0 + e / 32u;
  let d = 4u * (e % 32u);
  if (s >= p.S || d >= D) { return vec4<f32>(0.0); }
  return v[(kBase + s * p.Hkv * D + d) / 4u];
}

fn prefetchQK(k0: u32, c: u32) {
  pf0 = fetchQ(tid, c);
  pf1 = fetchQ(tid + 128u, c);
  pf4 = fetchK(tid, k0, c);
  pf5 = fetchK(tid + 128u, k0, c);
  if (CW == 8u) {
    pf2 = fetchQ(tid + 256u, c);
    pf3 = fetchQ(tid + 384u, c);
    pf6 = fetchK(tid + 256u, k0, c);
    pf7 = fetchK(tid + 384u, k0, c);
  }
}

fn prefetchV(s0: u32) {
  pf0 = fetchV(tid, s0);
  pf1 = fetchV(tid + 128u, s0);
  pf2 = fetchV(tid + 256u, s0);
  pf3 = fetchV(tid + 384u, s0);
  if (CW == 8u) {
    pf4 = fetchV(tid + 512u, s0);
    pf5 = fetchV(tid + 640u, s0);
    pf6 = fetchV(tid + 768u, s0);
    pf7 = fetchV(tid + 896u, s0);
  }
}

// XOR swizzle of a K row's CW vec4: keys tx + 16j of one head-dim vec4 land in distinct bank groups.
fn kSwizzle(key: u32) -> u32 {
  if (CW == 8u) { return key & 7u; }
  return (key >> 1u) & 3u;
}

fn kSlot(e: u32) -> u32 {
  let key = e / CW;
  return BUF / 2u + key * CW + ((e % CW) ^ kSwizzle(key));
}

fn putQK(buf: u32) {
  stage[buf * BUF + tid] = pf0;
  stage[buf * BUF + tid + 128u] = pf1;
  stage[buf * BUF + kSlot(tid)] = pf4;
  stage[buf * BUF + kSlot(tid + 128u)] = pf5;
  if (CW == 8u) {
    stage[buf * BUF + tid + 256u] = pf2;
    stage[buf * BUF + tid + 384u] = pf3;
    stage[buf * BUF + kSlot(tid + 256u)] = pf6;
    stage[buf * BUF + kSlot(tid + 384u)] = pf7;
  }
}

fn putV(buf: u32) {
  stage[buf * BUF + tid] = pf0;
  stage[buf * BUF + tid + 128u] = pf1;
  stage[buf * BUF + tid + 256u] = pf2;
  stage[buf * BUF + tid + 384u] = pf3;
  if (CW == 8u) {
    stage[buf * BUF + tid + 512u] = pf4;
    stage[buf * BUF + tid + 640u] = pf5;
    stage[buf * BUF + tid + 768u] = pf6;
    stage[buf * BUF + tid + 896u] = pf7;
  }
}

// Row scores += q · (four keys), as four vec4 FMAs (no dot(): that would cost a multiply and an add
// on top of the FMAs). kx .. kw hold head-dim component x .. w of the four keys.
fn rowFma(s: vec4<f32>, qv: vec4<f32>, kx: vec4<f32>, ky: vec4<f32>, kz: vec4<f32>, kw: vec4<f32>) -> vec4<f32> {
  return fma(vec4<f32>(qv.w), kw, fma(vec4<f32>(qv.z), kz, fma(vec4<f32>(qv.y), ky, fma(vec4<f32>(qv.x), kx, s))));
}

// Scores += the chunk in buffer `buf` (4·CW head-dim columns).
fn sChunk(buf: u32) {
  let qb = buf * BUF + ty * 4u * CW;
  let kb = buf * BUF + BUF / 2u + tx * CW;
  let sw = kSwizzle(tx);
  for (var d4 = 0u; d4 < CW; d4++) {
    let kx = kb + (d4 ^ sw);
    let k0v = stage[kx];
    let k1v = stage[kx + 16u * CW];
    let k2v = stage[kx + 32u * CW];
    let k3v = stage[kx + 48u * CW];
    let ka = vec4<f32>(k0v.x, k1v.x, k2v.x, k3v.x);
    let kb2 = vec4<f32>(k0v.y, k1v.y, k2v.y, k3v.y);
    let kc = vec4<f32>(k0v.z, k1v.z, k2v.z, k3v.z);
    let kd = vec4<f32>(k0v.w, k1v.w, k2v.w, k3v.w);
    s0 = rowFma(s0, stage[qb + d4], ka, kb2, kc, kd);
    s1 = rowFma(s1, stage[qb + CW + d4], ka, kb2, kc, kd);
    s2 = rowFma(s2, stage[qb + 2u * CW + d4], ka, kb2, kc, kd);
    s3 = rowFma(s3, stage[qb + 3u * CW + d4], ka, kb2, kc, kd);
    s4 = rowFma(s4, stage[qb + 32u * CW + d4], ka, kb2, kc, kd);
    s5 = rowFma(s5, stage[qb + 33u * CW + d4], ka, kb2, kc, kd);
    s6 = rowFma(s6, stage[qb + 34u * CW + d4], ka, kb2, kc, kd);
    s7 = rowFma(s7, stage[qb + 35u * CW + d4], ka, kb2, kc, kd);
  }
}

// O += P · V for the VK keys kc·VK .. + VK − 1 whose V chunk is in buffer `buf`.
fn pvChunk(buf: u32, kc: u32) {
  for (var kk = 0u; kk < VK; kk++) {
    let key = kc * VK + kk;
    let sw = key & 7u;
    let pa = ps[key * 16u + (ty ^ sw)];
    let pb = ps[key * 16u + 8u + (ty ^ sw)];
    let va = stage[buf * BUF + kk * 32u + tx];
    let vb = stage[buf * BUF + kk * 32u + 16u + tx];
    o0 = fma(vec4<f32>(pa.x), va, o0);
    o1 = fma(vec4<f32>(pa.x), vb, o1);
    o2 = fma(vec4<f32>(pa.y), va, o2);
    o3 = fma(vec4<f32>(pa.y), vb, o3);
    o4 = fma(vec4<f32>(pa.z), va, o4);
    o5 = fma(vec4<f32>(pa.z), vb, o5);
    o6 = fma(vec4<f32>(pa.w), va, o6);
    o7 = fma(vec4<f32>(pa.w), vb, o7);
    o8 = fma(vec4<f32>(pb.x), va, o8);
    o9 = fma(vec4<f32>(pb.x), vb, o9);
    o10 = fma(vec4<f32>(pb.y), va, o10);
    o11 = fma(vec4<f32>(pb.y), vb, o11);
    o12 = fma(vec4<f32>(pb.z), va, o12);
    o13 = fma(vec4<f32>(pb.z), vb, o13);
    o14 = fma(vec4<f32>(pb.w), va, o14);
    o15 = fma(vec4<f32>(pb.w), vb, o15);
  }
}

// Masked scores of local row `row` for keys kv (the thread's four keys) become MASKED.
fn maskRow(s: vec4<f32>, row: u32, kv: vec4<i32>) -> vec4<f32> {
  let pos = vec4<i32>(i32(q0 + row) + i32(p.S) - i32(p.T));
  var ok = kv < vec4<i32>(i32(p.S));
  if (p.causal != 0u) { ok = ok & (kv <= pos); }
  if (p.window != 0u) { ok = ok & (pos - kv < vec4<i32>(i32(p.window))); }
  return select(vec4<f32>(MASKED), s, ok);
}

fn max4(x: vec4<f32>) -> f32 {
  return max(max(x.x, x.y), max(x.z, x.w));
}

fn sum4(x: vec4<f32>) -> f32 {
  return (x.x + x.y) + (x.z + x.w);
}

// This thread's partial (over its 4 keys) of the max or sum of local row `row`, into `red`.
fn putRed(row: u32, x: f32) {
  stage[BUF + row * 4u + tx / 4u][tx % 4u] = x;
}

fn redMax(row: u32) -> f32 {
  let b = BUF + row * 4u;
  return max4(max(max(stage[b], stage[b + 1u]), max(stage[b + 2u], stage[b + 3u])));
}

// Online-softmax update of the rows in `s0..s7`; writes P (transposed) to `ps`.
fn softmaxUpdate() {
  let mA = max(ma, vec4<f32>(redMax(ty * 4u), redMax(ty * 4u + 1u), redMax(ty * 4u + 2u), redMax(ty * 4u + 3u)));
  let mB = max(mb, vec4<f32>(redMax(ty * 4u + 32u), redMax(ty * 4u + 33u), redMax(ty * 4u + 34u), redMax(ty * 4u + 35u)));
  let alA = exp2(ma - mA);
  let alB = exp2(mb - mB);
  ma = mA;
  mb = mB;
  let p0 = exp2(s0 - vec4<f32>(mA.x));
  let p1 = exp2(s1 - vec4<f32>(mA.y));
  let p2 = exp2(s2 - vec4<f32>(mA.z));
  let p3 = exp2(s3 - vec4<f32>(mA.w));
  let p4 = exp2(s4 - vec4<f32>(mB.x));
  let p5 = exp2(s5 - vec4<f32>(mB.y));
  let p6 = exp2(s6 - vec4<f32>(mB.z));
  let p7 = exp2(s7 - vec4<f32>(mB.w));
  la = la * alA + vec4<f32>(sum4(p0), sum4(p1), sum4(p2), sum4(p3));
  lb = lb * alB + vec4<f32>(sum4(p4), sum4(p5), sum4(p6), sum4(p7));
  o0 *= alA.x;
  o1 *= alA.x;
  o2 *= alA.y;
  o3 *= alA.y;
  o4 *= alA.z;
  o5 *= alA.z;
  o6 *= alA.w;
  o7 *= alA.w;
  o8 *= alB.x;
  o9 *= alB.x;
  o10 *= alB.y;
  o11 *= alB.y;
  o12 *= alB.z;
  o13 *= alB.z;
  o14 *= alB.w;
  o15 *= alB.w;
  // Key tx + 16j: vec4 (key·16 + (ty ^ (key & 7))) holds rows ty·4 .. + 3; key & 7 == tx & 7.
  let sw = tx & 7u;
  let a = ty ^ sw;
  let b = 8u + (ty ^ sw);
  ps[tx * 16u + a] = vec4<f32>(p0.x, p1.x, p2.x, p3.x);
  ps[tx * 16u + b] = vec4<f32>(p4.x, p5.x, p6.x, p7.x);
  ps[(tx + 16u) * 16u + a] = vec4<f32>(p0.y, p1.y, p2.y, p3.y);
  ps[(tx + 16u) * 16u + b] = vec4<f32>(p4.y, p5.y, p6.y, p7.y);
  ps[(tx + 32u) * 16u + a] = vec4<f32>(p0.z, p1.z, p2.z, p3.z);
  ps[(tx + 32u) * 16u + b] = vec4<f32>(p4.z, p5.z, p6.z, p7.z);
  ps[(tx + 48u) * 16u + a] = vec4<f32>(p0.w, p1.w, p2.w, p3.w);
  ps[(tx + 48u) * 16u + b] = vec4<f32>(p4.w, p5.w, p6.w, p7.w);
}

// Final row sums (the 16 partials of local row `row`, in `ps` after the loop).
fn rowSum(row: u32) -> f32 {
  let b = row * 4u;
  return sum4((ps[b] + ps[b + 1u]) + (ps[b + 2u] + ps[b + 3u]));
}

fn store(row: u32, m: f32, l: f32, oa: vec4<f32>, ob: vec4<f32>, b: u32, h: u32) {
  let t = q0 + row;
  if (t >= p.T) { return; }
  let inv = 1.0 / l;
  let base = (qBase + t * p.H * D) / 4u;
  if (4u * tx < D) { out[base + tx] = oa * inv; }
  if (64u + 4u * tx < D) { out[base + 16u + tx] = ob * inv; }
  if (tx == 0u) { lse[(b * p.H + h) * p.T + t] = (m + log2(l)) * 0.69314718055994530942; }
}
