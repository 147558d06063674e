export { createGpu, type GpuOptions, NoAdapterError } from "./device.ts";
export { type Binding, Gpu, type GpuInfo, type KernelSpec, type KernelTime, Recording } from "./gpu.ts";
export { bucketSize, BufferPool, type PoolStats } from "./pool.ts";
export { Uniforms } from "./uniforms.ts";
export { type DType, dtypeBytes, type HostArray, hostArray, viewAs } from "./dtype.ts";
export { type Ceiling, measuredCeiling } from "./ceilings.ts";
