/**
 * Host cost of the GPU runtime, the limit of decode speed (bench/RESULTS.md: a decode step is a few
 * hundred small dispatches): per-dispatch recording time (bind groups cached, as in a steady decode),
 * what creating a bind group would add, submit cost per dispatch, and the latency of one readback.
 *
 *   deno run -A bench/dispatch.ts [--json]
 */
import { createGpu, Uniforms } from "../src/gpu/mod.ts";

const gpu = await createGpu();
const [a, b, c] = [0, 1, 2].map(() => gpu.pool.acquire(4096));
const spec = { file: "elementwise", entry: "add", types: { ST: "f32" as const, DT: "f32" as const } };
const STEP = 400; // about one decode step of a 24-layer model
const REPS = 20;

function record(n: number): void {
  for (let i = 0; i < n; i++) gpu.dispatch(spec, { 1: a, 2: b, 3: c }, [1], new Uniforms().u32(256).f32(0));
}

async function time(): Promise<{ recordUs: number; submitUs: number }> {
  record(STEP); // warm-up: pipeline and bind groups
  await gpu.sync();
  let rec = 0, sub = 0;
  for (let r = 0; r < REPS; r++) {
    let t = performance.now();
    record(STEP);
    rec += performance.now() - t;
    t = performance.now();
    gpu.flush();
    sub += performance.now() - t;
  }
  await gpu.sync();
  return { recordUs: (rec / (REPS * STEP)) * 1000, submitUs: (sub / (REPS * STEP)) * 1000 };
}

/** What an uncached dispatch would add: createBindGroup alone, for the same kernel. */
function bindGroupUs(): number {
  const module = gpu.device.createShaderModule({ code: gpu.sourceOf(spec) });
  const layout = gpu.device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "add" } })
    .getBindGroupLayout(0);
  const u = gpu.device.createBuffer({ size: 256, usage: GPUBufferUsage.UNIFORM });
  const entries = [
    { binding: 0, resource: { buffer: u } },
    ...[a, b, c].map((buffer, k) => ({ binding: k + 1, resource: { buffer } })),
  ];
  const n = 2000, t = performance.now();
  for (let i = 0; i < n; i++) gpu.device.createBindGroup({ layout, entries });
  const us = ((performance.now() - t) / n) * 1000;
  u.destroy();
  return us;
}

const warm = await time();
const bindGroup = bindGroupUs();
const t = performance.now();
for (let i = 0; i < 5; i++) await gpu.read(c, 4);
const readbackMs = (performance.now() - t) / 5;
const out = {
  device: gpu.info.description,
  dispatchesPerStep: STEP,
  warm,
  bindGroupUs: bindGroup,
  readbackMs,
};
if (Deno.args.includes("--json")) console.log(JSON.stringify(out));
else {
  console.log(`${out.device}: ${STEP} dispatches per submit`);
  console.log(`  record, bind groups cached:   ${warm.recordUs.toFixed(2)} µs/dispatch`);
  console.log(`  createBindGroup (uncached):   ${bindGroup.toFixed(2)} µs each`);
  console.log(`  submit (finish + queue):      ${warm.submitUs.toFixed(2)} µs/dispatch`);
  console.log(`  one readback:                 ${readbackMs.toFixed(2)} ms`);
}
gpu.destroy();
