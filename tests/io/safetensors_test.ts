import { assert, assertEquals, assertRejects } from "../assert.ts";
import { type FileSystem, memoryFs } from "../../src/io/fs.ts";
import { openSafetensors, writeSafetensors } from "../../src/io/safetensors.ts";
import { bf16ToF32, f32ToBf16, toF16, toF32 } from "../../src/io/dtypes.ts";

/** Hand-built file: header JSON (unpadded) + data bytes. */
function rawFile(header: unknown, data: Uint8Array, lenOverride?: number): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(lenOverride ?? json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const vals = (n: number, k = 1) => Float32Array.from({ length: n }, (_, i) => (i - n / 2) * 0.37 * k + 0.1);

/** Counts readFile/readRange bytes so the streaming test can prove one tensor's bytes were read. */
function counting(fs: FileSystem) {
  const c = { whole: 0, ranged: 0 };
  return {
    c,
    fs: {
      ...fs,
      readFile: (p: string) => (c.whole++, fs.readFile(p)),
      readRange: (p: string, o: number, l: number) => ((c.ranged += l), fs.readRange(p, o, l)),
    } as FileSystem,
  };
}

Deno.test("safetensors: F32/F16/BF16 round trip through one file, header aligned, metadata kept", async () => {
  const fs = memoryFs();
  const a = vals(7), b = vals(33, 3), c = vals(6, 100);
  await writeSafetensors(fs, "m/model.safetensors", [
    { name: "b16", dtype: "F16", shape: [3, 11], data: b },
    { name: "bf", dtype: "BF16", shape: [2, 3], data: c },
    { name: "a32", dtype: "F32", shape: [7], data: a },
  ], { format: "pt" });
  const bytes = fs.files.get("m/model.safetensors")!;
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assertEquals((8 + n) % 8, 0, "data starts 8-byte aligned");
  const src = await openSafetensors(fs, "m");
  assertEquals(src.metadata, { format: "pt" });
  assertEquals([...src.tensors.keys()].sort(), ["a32", "b16", "bf"]);
  assertEquals(src.tensors.get("b16")!.shape, [3, 11]);
  assertEquals(src.tensors.get("a32")!.offset, 8 + n, "widest dtype written first");
  assertEquals([...(await src.read("a32", "f32"))], [...a]);
  assertEquals([...(await src.read("b16", "f32"))], [...new Float32Array(new Float16Array(b))]);
  assertEquals([...(await src.read("b16", "f16"))], [...new Float16Array(b)]);
  assertEquals([...(await src.read("bf", "f32"))], [...bf16ToF32(f32ToBf16(c))]);
  // bf16 keeps 8 mantissa bits: relative error ≤ 2^-9
  const bf = await src.read("bf", "f32");
  for (let i = 0; i < c.length; i++) {
    assert(Math.abs(bf[i] - c[i]) <= Math.abs(c[i]) / 256, `bf16 ${bf[i]} vs ${c[i]}`);
  }
  assert(!fs.files.has("m/model.safetensors.tmp"), "temp file renamed away");
});

Deno.test("safetensors: bf16 rounding is nearest-even, raw Uint16Array bits are written as given", async () => {
  // 1 + 2^-8 is halfway between bf16 1 and 1 + 2^-7: ties go to even (1); 1 + 3·2^-8 rounds up to 1 + 2^-6.
  assertEquals([...bf16ToF32(f32ToBf16(new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -8, -2.5])))], [
    1,
    1 + 2 ** -6,
    -2.5,
  ]);
  const fs = memoryFs();
  await writeSafetensors(fs, "x.safetensors", [{
    name: "t",
    dtype: "BF16",
    shape: [2],
    data: new Uint16Array([0x3f80, 0xc000]),
  }]);
  const src = await openSafetensors(fs, "x.safetensors");
  assertEquals([...(await src.read("t", "f32"))], [1, -2]);
  assertEquals([...(await src.readBytes("t"))], [0x80, 0x3f, 0x00, 0xc0]);
});

Deno.test("safetensors: sharded write + index, streaming read touches only that tensor's bytes", async () => {
  const mem = memoryFs();
  const ts = Array.from(
    { length: 5 },
    (_, i) => ({ name: `layers.${i}.w`, dtype: "F32" as const, shape: [4, 8], data: vals(32, i + 1) }),
  );
  await writeSafetensors(mem, "ck", ts, undefined, { maxShardBytes: 300 });
  const index = JSON.parse(await mem.readText("ck/model.safetensors.index.json"));
  assertEquals(index.metadata.total_size, 5 * 128);
  assertEquals(index.weight_map["layers.0.w"], "model-00001-of-00003.safetensors");
  assertEquals(index.weight_map["layers.4.w"], "model-00003-of-00003.safetensors");
  const { fs, c } = counting(mem);
  const src = await openSafetensors(fs, "ck");
  assertEquals(src.metadata.total_size, "640");
  assertEquals(src.tensors.get("layers.3.w")!.file, "ck/model-00002-of-00003.safetensors");
  const before = c.ranged;
  assertEquals([...(await src.read("layers.3.w", "f32"))], [...ts[3].data]);
  assertEquals(c.ranged - before, 128, "exactly one tensor's bytes read");
  assertEquals(c.whole, 0, "no whole-file reads");
  // the index may also be named directly
  assertEquals((await openSafetensors(mem, "ck/model.safetensors.index.json")).tensors.size, 5);
});

Deno.test("safetensors: index errors name the index and the tensor", async () => {
  const fs = memoryFs();
  await writeSafetensors(fs, "ck/a.safetensors", [{
    name: "x",
    dtype: "F32",
    shape: [1],
    data: new Float32Array([1]),
  }]);
  fs.files.set(
    "ck/model.safetensors.index.json",
    new TextEncoder().encode(JSON.stringify({ weight_map: { x: "a.safetensors", y: "a.safetensors" } })),
  );
  await assertRejects(
    () => openSafetensors(fs, "ck"),
    /index\.json: weight_map puts "y" in a\.safetensors, but that shard has no such tensor/,
  );
  fs.files.set(
    "ck/model.safetensors.index.json",
    new TextEncoder().encode(JSON.stringify({ weight_map: { x: "b.safetensors" } })),
  );
  await assertRejects(() => openSafetensors(fs, "ck"), /shard b\.safetensors is missing/);
  await assertRejects(
    () => openSafetensors(fs, "nothing"),
    /nothing: no model\.safetensors or model\.safetensors\.index\.json/,
  );
});

Deno.test("safetensors: header errors are one clear line naming file and tensor", async () => {
  const d = new Uint8Array(16);
  const ok = {
    a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
    b: { dtype: "F32", shape: [2], data_offsets: [8, 16] },
  };
  const cases: [string, Uint8Array, RegExp][] = [
    [
      "tiny",
      new Uint8Array(5),
      /tiny\.safetensors: truncated: 5 bytes, shorter than the 8-byte header length/,
    ],
    [
      "pastEof",
      rawFile(ok, d, 5000),
      /pastEof\.safetensors: header length 5000 runs past the end of the file/,
    ],
    ["huge", rawFile(ok, d, 2 ** 40), /huge\.safetensors: header length \d+ is not plausible/],
    [
      "json",
      (() => {
        const f = rawFile(ok, d);
        f[8] = 0x5b; // '[' makes it invalid JSON
        return f;
      })(),
      /json\.safetensors: header is not valid JSON/,
    ],
    [
      "truncated",
      rawFile(ok, d).subarray(0, rawFile(ok, d).length - 3),
      /truncated\.safetensors: tensor "b": data_offsets \[8, 16\] run past the end of the data \(13 bytes\): truncated file\?/,
    ],
    [
      "badOffsets",
      rawFile({ a: { dtype: "F32", shape: [2], data_offsets: [8, 0] } }, d),
      /badOffsets\.safetensors: tensor "a": data_offsets \[8, 0\] end before they begin/,
    ],
    [
      "notPair",
      rawFile({ a: { dtype: "F32", shape: [2], data_offsets: [0] } }, d),
      /notPair\.safetensors: tensor "a": data_offsets \[0\] is not \[begin, end\]/,
    ],
    [
      "overlap",
      rawFile({
        a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
        b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
      }, d),
      /overlap\.safetensors: tensor "b" \[4, 12\] overlaps tensor "a" \[0, 8\]/,
    ],
    [
      "dtype",
      rawFile({ a: { dtype: "Q4_K", shape: [2], data_offsets: [0, 8] } }, d),
      /dtype\.safetensors: tensor "a": unknown dtype "Q4_K" \(known: BOOL, .*BF16/,
    ],
    [
      "size",
      rawFile({ a: { dtype: "F16", shape: [3], data_offsets: [0, 8] } }, d),
      /size\.safetensors: tensor "a": data_offsets \[0, 8\] hold 8 bytes but F16\[3\] needs 6/,
    ],
    [
      "shape",
      rawFile({ a: { dtype: "F16", shape: [-1], data_offsets: [0, 8] } }, d),
      /shape\.safetensors: tensor "a": shape \[-1\] is not a list of non-negative integers/,
    ],
  ];
  for (const [name, bytes, re] of cases) {
    const fs = memoryFs({ [`${name}.safetensors`]: bytes });
    const err = await assertRejects(() => openSafetensors(fs, `${name}.safetensors`), re);
    assert(!err.message.includes("\n"), `${name}: one line`);
  }
  await assertRejects(
    () => openSafetensors(memoryFs(), "gone.safetensors"),
    /gone\.safetensors: no such file/,
  );
});

Deno.test("safetensors: BF16 → f16 beyond ±65504 throws naming the tensor, clamp saturates, f32 keeps it", async () => {
  const fs = memoryFs();
  const data = new Float32Array([1, -70000, 3, 65504]);
  await writeSafetensors(fs, "w.safetensors", [{
    name: "model.norm.weight",
    dtype: "BF16",
    shape: [4],
    data,
  }]);
  const src = await openSafetensors(fs, "w.safetensors");
  const err = await assertRejects(
    () => src.read("model.norm.weight", "f16"),
    /w\.safetensors: tensor "model\.norm\.weight" \(BF16\) holds -70144 at element 1, outside the f16 range ±65504/,
  );
  assert(!err.message.includes("\n"));
  assertEquals([...(await src.read("model.norm.weight", "f16", { clamp: true }))], [1, -65504, 3, 65504]);
  assertEquals([...(await src.read("model.norm.weight", "f32"))], [1, -70144, 3, 65536]);
  await assertRejects(() => src.read("nope", "f32"), /no tensor "nope"/);
});

Deno.test("dtypes: integer, f64 and f8 decoding", () => {
  const le = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  assertEquals([...toF32(le(new BigInt64Array([-3n, 5n])), "I64")], [-3, 5]);
  assertEquals([...toF32(le(new Int32Array([-7, 9])), "I32")], [-7, 9]);
  assertEquals([...toF32(le(new Float64Array([0.5, -2])), "F64")], [0.5, -2]);
  assertEquals([...toF32(new Uint8Array([0xff, 1]), "I8")], [-1, 1]);
  // e4m3fn: 0x38 = 1.0, 0x7e = 448 (max), 0x01 = 2^-9; e5m2: 0x3c = 1.0, 0x7c = inf
  assertEquals([...toF32(new Uint8Array([0x38, 0x7e, 0x01, 0xb8]), "F8_E4M3")], [1, 448, 2 ** -9, -1]);
  assertEquals([...toF32(new Uint8Array([0x3c, 0x7b, 0x7c]), "F8_E5M2")], [1, 57344, Infinity]);
  // an odd byte offset must still decode (copy instead of a misaligned view)
  const buf = new Uint8Array(9);
  buf.set(le(new Float32Array([1.5, -4])), 1);
  assertEquals([...toF32(buf.subarray(1), "F32")], [1.5, -4]);
});

Deno.test("dtypes: table conversions agree with V8's own f16 rounding on every 16-bit pattern", () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const bytes = new Uint8Array(all.buffer);
  // f16 → f32: every pattern, NaNs compared as NaN
  const got = toF32(bytes, "F16"), want = new Float16Array(all.buffer);
  for (let i = 0; i < 65536; i++) {
    if (!(Object.is(got[i], want[i]) || (Number.isNaN(got[i]) && Number.isNaN(want[i])))) {
      throw new Error(`f16 ${i.toString(16)}: ${got[i]} vs ${want[i]}`);
    }
  }
  // bf16 → f16 with clamp: equal to rounding the f32 value, except overflow saturating to ±65504
  const h = toF16(bytes, "BF16", true, () => new Error("unreachable"));
  const f = bf16ToF32(all);
  for (let i = 0; i < 65536; i++) {
    const v = f[i];
    const w = Number.isFinite(v) && Math.abs(v) > 65504 ? Math.sign(v) * 65504 : new Float16Array([v])[0];
    if (!(Object.is(h[i], w) || (Number.isNaN(h[i]) && Number.isNaN(w)))) {
      throw new Error(`bf16 ${i.toString(16)}: ${h[i]} vs ${w}`);
    }
  }
});
